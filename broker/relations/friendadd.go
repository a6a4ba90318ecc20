package relations

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Friend requests and their answers (Tencent sns/friend_add, the friend
// response) [IM-REL-FRIENDS]: docs/relations.md.

// Friend (SNS) enum values (Tencent names).
const (
	addTypeSingle   = "Add_Type_Single"
	addTypeBoth     = "Add_Type_Both"
	respAgree       = "Response_Action_Agree"
	respAgreeAndAdd = "Response_Action_AgreeAndAdd"
	respReject      = "Response_Action_Reject"
	pendComeIn      = "Pendency_Type_ComeIn"
	pendSendOut     = "Pendency_Type_SendOut"
)

// Relation events (user streams).
const (
	eventFriendAdded        = "FriendAdded"        // to both users of the pair: From_Account's list gained To_Account
	eventFriendDeleted      = "FriendDeleted"      // to both users of the pair
	eventFriendRequest      = "FriendRequest"      // to the target and the requester's devices
	eventFriendResponse     = "FriendResponse"     // to the requester and the responder's devices
	eventFriendUpdated      = "FriendUpdated"      // remark / lists of one friend changed: the owner's devices
	eventFriendGroupUpdated = "FriendGroupUpdated" // friend lists created, filled or deleted: the owner's devices
)

// FriendAddItem is one friend of friend.add.
type FriendAddItem struct {
	To_Account string
	Remark     string
	GroupName  json.RawMessage // a string (Tencent's) or an array of strings
	AddSource  string
	AddWording string
}

// FriendAddRequest is friend.add (Tencent sns/friend_add).
type FriendAddRequest struct {
	AddFriendItem []FriendAddItem
	AddType       string // Add_Type_Both (default) or Add_Type_Single
	ForceAddFlags int    // 1: the app admin adds at once, whatever the peer's AllowType (REST only)
}

// FriendAdd adds friends (Tencent sns/friend_add), per the target's
// AllowType: AllowAny adds at once (Add_Type_Both: both lists), NeedConfirm
// records a request the target answers with friend.response (item result
// 30539), DenyAny refuses (30516). With ForceAddFlags 1 from the app admin
// (REST), the AllowType is not looked at: the friend is added at once.
// A client's ForceAddFlags is refused (Tencent: "admin force-add flag").
// [IM-REL-FRIENDS]
func (s *Service) FriendAdd(ctx context.Context, a ops.Actor, q *FriendAddRequest) (*Results, error) {
	if len(q.AddFriendItem) == 0 || len(q.AddFriendItem) > maxRelItems {
		return nil, imerr.SnsBadParams.New("AddFriendItem must hold 1 to %d items", maxRelItems)
	}
	addType := q.AddType
	switch addType {
	case "":
		addType = addTypeBoth
	case addTypeSingle, addTypeBoth:
	default:
		return nil, imerr.SnsBadParams.New("AddType must be %s or %s", addTypeSingle, addTypeBoth)
	}
	force := false
	switch q.ForceAddFlags {
	case 0:
	case 1:
		if !a.ViaAdmin && !a.Admin {
			return nil, imerr.SnsAdminRequired.New("ForceAddFlags is for the app admin (REST)")
		}
		force = true
	default:
		return nil, imerr.SnsBadParams.New("ForceAddFlags must be 0 or 1")
	}
	prof, err := s.loadProfile(a.User)
	if err != nil {
		return nil, err
	}
	if profileString(prof, tagAdminForbidType) == adminForbidSendOut {
		return nil, imerr.SnsForbidden.New("the app admin forbade your friend requests (AdminForbidType)")
	}
	refused := s.prevFriendAdd(ctx, a.User, q.AddFriendItem, addType, q.ForceAddFlags) // Sns.CallbackPrevFriendAdd, before any lock
	var rs Results
	for _, it := range q.AddFriendItem {
		err, ok := refused[it.To_Account]
		if !ok {
			err = s.addFriend(ctx, a.User, it, addType, force)
		}
		if err := rs.add(it.To_Account, err); err != nil {
			return nil, err
		}
	}
	return rs.done(), nil
}

// checkFriendAdd checks the fields friend_add and friend_import share: the
// peer, the Remark and AddWording lengths, the AddSource form.
func (s *Service) checkFriendAdd(a, to, remark, wording, source string) error {
	if err := checkPeer(a, to); err != nil {
		return err
	}
	if err := checkRelText("Remark", remark, s.cfg.MaxRemarkBytes); err != nil {
		return err
	}
	if err := checkRelText("AddWording", wording, s.cfg.MaxAddWordingBytes); err != nil {
		return err
	}
	return checkAddSource(source)
}

// friendAddable checks that a may add to as a friend (not yet friends, no
// blacklist either way, a's list not full) and starts the batch with any
// friend lists to create. Callers hold s.lockUsers(a, to). Shared by
// friend_add and friend_import.
func (s *Service) friendAddable(a, to string, groups []string, now int64) (*relBatch, error) {
	if ok, err := s.has(friendKey(a, to)); err != nil || ok {
		return nil, orErr(err, imerr.SnsBadParams.New("%s is already your friend", to))
	}
	if ok, err := s.has(blackKey(a, to)); err != nil || ok {
		return nil, orErr(err, imerr.SnsPeerBlacklisted.New("%s is on your blacklist", to))
	}
	if ok, err := s.has(blackKey(to, a)); err != nil || ok {
		return nil, orErr(err, imerr.SnsYouBlacklisted.New("you are on %s's blacklist", to))
	}
	if err := s.friendsFull(a, imerr.SnsFriendsFull); err != nil {
		return nil, err
	}
	rb := newRelBatch()
	if err := s.ensureGroups(rb, a, groups, now); err != nil {
		return nil, err
	}
	return rb, nil
}

func (s *Service) addFriend(ctx context.Context, a string, it FriendAddItem, addType string, force bool) error {
	to := it.To_Account
	if err := s.checkFriendAdd(a, to, it.Remark, it.AddWording, it.AddSource); err != nil {
		return err
	}
	groups, err := groupNames(it.GroupName)
	if err != nil {
		return err
	}
	unlock := s.lockUsers(a, to)
	defer unlock()
	now := time.Now().Unix()
	rb, err := s.friendAddable(a, to, groups, now)
	if err != nil {
		return err
	}
	prof, err := s.loadProfile(to)
	if err != nil {
		return err
	}
	allow := profileString(prof, tagAllowType)
	if force {
		allow = allowAllowAny
	}
	switch allow {
	case allowDenyAny:
		return imerr.SnsPeerDeniesAll.New("%s accepts no friend requests", to)
	case allowAllowAny:
	default: // NeedConfirm
		return s.requestFriend(ctx, pendingRec{From_Account: a, To_Account: to, AddTime: now, AddType: addType,
			AddSource: it.AddSource, AddWording: it.AddWording, Remark: it.Remark, GroupName: groups})
	}
	rec := friendRec{Remark: it.Remark, GroupName: groups, AddTime: now, AddSource: it.AddSource, AddWording: it.AddWording}
	rb.forced = force
	rb.setFriend(a, to, rec)
	rb.friendAdded(a, to, a, rec)
	rb.delPending(a, to)
	if addType == addTypeBoth {
		back, err := s.has(friendKey(to, a))
		if err != nil {
			return err
		}
		if !back {
			if err := s.friendsFull(to, imerr.SnsPeerFriendsFull); err != nil {
				return err
			}
			peer := friendRec{AddTime: now, AddSource: it.AddSource, AddWording: it.AddWording}
			rb.setFriend(to, a, peer)
			rb.friendAdded(to, a, a, peer)
		}
		rb.delPending(to, a)
	}
	return s.commit(ctx, rb)
}

// requestFriend records p for its target to answer and returns 30539 (the
// item's result) once it is stored. The requester's lists are created when
// the request is accepted. Callers hold both users' locks.
func (s *Service) requestFriend(ctx context.Context, p pendingRec) error {
	again, err := s.has(pendingKey(p.To_Account, p.From_Account))
	if err != nil {
		return err
	}
	if !again {
		for _, prefix := range []string{pendingPrefix(p.To_Account), sentPrefix(p.From_Account)} {
			n, err := s.count(prefix, s.cfg.MaxPending)
			if err != nil {
				return err
			}
			if n >= s.cfg.MaxPending {
				return imerr.SnsPendingFull.New("too many pending friend requests (%d)", s.cfg.MaxPending)
			}
		}
	}
	rb := newRelBatch()
	rb.setPending(p)
	rb.event(p.To_Account, eventFriendRequest, p.public())
	rb.event(p.From_Account, eventFriendRequest, p.public())
	if err := s.commit(ctx, rb); err != nil {
		return err
	}
	return imerr.SnsPending.New("waiting for %s to accept", p.To_Account)
}

// FriendResponseItem answers one friend request.
type FriendResponseItem struct {
	To_Account     string // the requester
	ResponseAction string
	Remark         string
	GroupName      json.RawMessage
}

// FriendResponseRequest is friend.response.
type FriendResponseRequest struct {
	ResponseFriendItem []FriendResponseItem
}

// FriendResponse answers friend requests (Tencent's friend response):
// Agree puts the responder in the requester's list, AgreeAndAdd makes the
// friendship two-way, Reject drops the request.
func (s *Service) FriendResponse(ctx context.Context, a ops.Actor, q *FriendResponseRequest) (*Results, error) {
	if len(q.ResponseFriendItem) == 0 || len(q.ResponseFriendItem) > maxRelItems {
		return nil, imerr.SnsBadParams.New("ResponseFriendItem must hold 1 to %d items", maxRelItems)
	}
	refused := s.prevFriendResponse(ctx, a.User, q.ResponseFriendItem) // Sns.CallbackPrevFriendResponse, before any lock
	var rs Results
	for _, it := range q.ResponseFriendItem {
		err, ok := refused[it.To_Account]
		if !ok {
			err = s.respondFriend(ctx, a.User, it)
		}
		if err := rs.add(it.To_Account, err); err != nil {
			return nil, err
		}
	}
	return rs.done(), nil
}

func (s *Service) respondFriend(ctx context.Context, self string, it FriendResponseItem) error {
	from := it.To_Account // the requester
	if err := checkPeer(self, from); err != nil {
		return err
	}
	switch it.ResponseAction {
	case respAgree, respAgreeAndAdd, respReject:
	default:
		return imerr.SnsBadParams.New("ResponseAction must be %s, %s or %s", respAgreeAndAdd, respAgree, respReject)
	}
	if err := checkRelText("Remark", it.Remark, s.cfg.MaxRemarkBytes); err != nil {
		return err
	}
	groups, err := groupNames(it.GroupName)
	if err != nil {
		return err
	}
	unlock := s.lockUsers(self, from)
	defer unlock()
	var p pendingRec
	if ok, err := s.getJSON(pendingKey(self, from), &p); err != nil || !ok {
		return orErr(err, imerr.SnsBadParams.New("no friend request from %s", from))
	}
	now := time.Now().Unix()
	rb := newRelBatch()
	rb.delPending(from, self)
	resp := map[string]any{"From_Account": self, "To_Account": from, "ResponseAction": it.ResponseAction}
	rb.event(from, eventFriendResponse, resp)
	rb.event(self, eventFriendResponse, resp)
	if it.ResponseAction == respReject {
		return s.commit(ctx, rb)
	}
	if ok, err := s.has(friendKey(from, self)); err != nil {
		return err
	} else if !ok {
		if err := s.friendsFull(from, imerr.SnsPeerFriendsFull); err != nil {
			return err
		}
		// The requester's lists are created if their limit still allows;
		// otherwise the friend is added without them.
		reqGroups := p.GroupName
		if err := s.ensureGroups(rb, from, reqGroups, now); err != nil {
			if imerr.As(err).Code == imerr.Internal.Code {
				return err
			}
			reqGroups = nil
		}
		rec := friendRec{Remark: p.Remark, GroupName: reqGroups, AddTime: now, AddSource: p.AddSource, AddWording: p.AddWording}
		rb.setFriend(from, self, rec)
		rb.friendAdded(from, self, from, rec)
	}
	if it.ResponseAction == respAgreeAndAdd {
		if ok, err := s.has(friendKey(self, from)); err != nil {
			return err
		} else if !ok {
			if err := s.friendsFull(self, imerr.SnsFriendsFull); err != nil {
				return err
			}
			if err := s.ensureGroups(rb, self, groups, now); err != nil {
				return err
			}
			rec := friendRec{Remark: it.Remark, GroupName: groups, AddTime: now, AddSource: p.AddSource, AddWording: p.AddWording}
			rb.setFriend(self, from, rec)
			rb.friendAdded(self, from, self, rec)
		}
		rb.delPending(self, from) // a request of ours to them is answered too
	}
	return s.commit(ctx, rb)
}

// FriendPendingRequest is friend.pending.
type FriendPendingRequest struct {
	PendencyType string // Pendency_Type_ComeIn (default): received; Pendency_Type_SendOut: sent
}

// PendencyItem is one friend request; To_Account is the other user.
type PendencyItem struct {
	To_Account string
	AddTime    int64
	AddType    string
	AddSource  string
	AddWording string
	*SentFields
}

// SentFields are what a request's sender also sees of it.
type SentFields struct {
	Remark    string
	GroupName []string
}

// FriendPendingResponse lists friend requests.
type FriendPendingResponse struct {
	PendencyItem []PendencyItem
	TotalCount   int
}

// FriendPending lists friend requests: received (Pendency_Type_ComeIn,
// default) or sent (Pendency_Type_SendOut).
func (s *Service) FriendPending(_ context.Context, a ops.Actor, q *FriendPendingRequest) (*FriendPendingResponse, error) {
	prefix, out := pendingPrefix(a.User), true
	switch q.PendencyType {
	case "", pendComeIn:
		out = false
	case pendSendOut:
		prefix = sentPrefix(a.User)
	default:
		return nil, imerr.SnsBadParams.New("PendencyType must be %s or %s", pendComeIn, pendSendOut)
	}
	items := []PendencyItem{}
	if err := s.scan(prefix, func(peer string, v []byte) error {
		var p pendingRec
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		it := PendencyItem{To_Account: peer, AddTime: p.AddTime, AddType: p.AddType, AddSource: p.AddSource, AddWording: p.AddWording}
		if out {
			it.SentFields = &SentFields{Remark: p.Remark, GroupName: nonNilStrs(p.GroupName)}
		}
		items = append(items, it)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list friend requests of %s: %w", a.User, err)
	}
	return &FriendPendingResponse{PendencyItem: items, TotalCount: len(items)}, nil
}
