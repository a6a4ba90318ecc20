package relations

import (
	"context"
	"slices"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Friend lists (Tencent sns/group_*): named lists a user sorts friends
// into; membership is kept in the friend records. [IM-REL-FRIENDS]

const needFriendYes = "Need_Friend_Type_Yes"

// FriendGroupAddRequest is friend.group_add.
type FriendGroupAddRequest struct {
	GroupName  []string
	To_Account []string
}

// FriendGroupAdd creates friend lists (those that do not exist yet) and
// puts the given friends in all of them (Tencent sns/group_add), in one
// commit.
func (s *Service) FriendGroupAdd(ctx context.Context, a ops.Actor, q *FriendGroupAddRequest) (*Results, error) {
	names, err := checkGroupNames(q.GroupName)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 || len(q.To_Account) > maxRelItems {
		return nil, imerr.SnsBadParams.New("GroupName must name at least one list and To_Account hold at most %d accounts", maxRelItems)
	}
	unlock := s.lockUsers(a.User)
	defer unlock()
	rb := newRelBatch()
	if err := s.ensureGroups(rb, a.User, names, time.Now().Unix()); err != nil {
		return nil, err
	}
	var rs Results
	added := []string{}
	for _, to := range q.To_Account {
		err := checkPeer(a.User, to)
		var rec friendRec
		if err == nil {
			if ok, gerr := s.getJSON(friendKey(a.User, to), &rec); gerr != nil {
				return nil, gerr
			} else if !ok {
				err = imerr.SnsBadParams.New("%s is not your friend", to)
			}
		}
		if err == nil {
			for _, n := range names {
				if !slices.Contains(rec.GroupName, n) {
					rec.GroupName = append(rec.GroupName, n)
				}
			}
			rb.set(friendKey(a.User, to), mustJSON(rec))
			added = append(added, to)
		}
		if err := rs.add(to, err); err != nil {
			return nil, err
		}
	}
	rb.event(a.User, eventFriendGroupUpdated, map[string]any{"Action": "Add", "GroupName": names, "Friend_Account": added})
	if err := s.commit(ctx, rb); err != nil {
		return nil, err
	}
	return rs.done(), nil
}

// FriendGroupDeleteRequest is friend.group_delete.
type FriendGroupDeleteRequest struct {
	GroupName []string
}

// FriendGroupDelete deletes friend lists; their friends stay friends.
func (s *Service) FriendGroupDelete(ctx context.Context, a ops.Actor, q *FriendGroupDeleteRequest) (*Empty, error) {
	names, err := checkGroupNames(q.GroupName)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, imerr.SnsBadParams.New("GroupName must name at least one list")
	}
	unlock := s.lockUsers(a.User)
	defer unlock()
	have, err := s.friendGroups(a.User)
	if err != nil {
		return nil, err
	}
	rb := newRelBatch()
	for _, n := range names {
		if !slices.Contains(have, n) {
			return nil, imerr.SnsBadParams.New("no friend list %q", n)
		}
		rb.del(friendGroupKey(a.User, n))
	}
	peers, recs, err := s.loadFriends(a.User)
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		kept := slices.DeleteFunc(slices.Clone(rec.GroupName), func(g string) bool { return slices.Contains(names, g) })
		if len(kept) != len(rec.GroupName) {
			rec.GroupName = kept
			rb.set(friendKey(a.User, peers[i]), mustJSON(rec))
		}
	}
	rb.event(a.User, eventFriendGroupUpdated, map[string]any{"Action": "Delete", "GroupName": names, "Friend_Account": []string{}})
	if err := s.commit(ctx, rb); err != nil {
		return nil, err
	}
	return &Empty{}, nil
}

// FriendGroupGetRequest is friend.group_get.
type FriendGroupGetRequest struct {
	GroupName  []string // none: every list
	NeedFriend string   // Need_Friend_Type_Yes: list each list's friends
}

// FriendGroupItem is one friend list.
type FriendGroupItem struct {
	GroupName    string
	FriendNumber int
	To_Account   *[]string `json:",omitempty"` // with NeedFriend only
}

// FriendGroupGetResponse lists friend lists.
type FriendGroupGetResponse struct {
	ResultItem []FriendGroupItem
}

// FriendGroupGet lists friend lists (all, or those named) with their
// sizes and, with NeedFriend Need_Friend_Type_Yes, their friends.
func (s *Service) FriendGroupGet(_ context.Context, a ops.Actor, q *FriendGroupGetRequest) (*FriendGroupGetResponse, error) {
	have, err := s.friendGroups(a.User)
	if err != nil {
		return nil, err
	}
	names := have
	if len(q.GroupName) > 0 {
		if names, err = checkGroupNames(q.GroupName); err != nil {
			return nil, err
		}
		for _, n := range names {
			if !slices.Contains(have, n) {
				return nil, imerr.SnsBadParams.New("no friend list %q", n)
			}
		}
	}
	peers, recs, err := s.loadFriends(a.User)
	if err != nil {
		return nil, err
	}
	members := map[string][]string{}
	for i, rec := range recs {
		for _, g := range rec.GroupName {
			members[g] = append(members[g], peers[i])
		}
	}
	items := []FriendGroupItem{}
	for _, n := range names {
		it := FriendGroupItem{GroupName: n, FriendNumber: len(members[n])}
		if q.NeedFriend == needFriendYes {
			list := nonNilStrs(members[n])
			it.To_Account = &list
		}
		items = append(items, it)
	}
	return &FriendGroupGetResponse{ResultItem: items}, nil
}
