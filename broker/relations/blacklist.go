package relations

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Blacklist (Tencent sns/black_list_*) and the C2C relation gate
// [IM-REL-BLACK]: docs/relations.md.

const (
	blackCheckSingle    = "BlackCheckResult_Type_Single"
	blackCheckBoth      = "BlackCheckResult_Type_Both"
	eventBlackListAdded = "BlackListAdded"   // to the owner's devices only
	eventBlackListDel   = "BlackListDeleted" // likewise
	blackPageDefault    = 100
)

// AccountsRequest names the accounts of black.add and black.delete.
type AccountsRequest struct {
	To_Account []string
}

// BlackAdd puts users on the blacklist (Tencent black_list_add). As
// Tencent does, it ends any friendship between the two, both ways, and drops
// pending friend requests between them. [IM-REL-BLACK]
func (s *Service) BlackAdd(ctx context.Context, a ops.Actor, q *AccountsRequest) (*Results, error) {
	if err := checkAccounts(q.To_Account); err != nil {
		return nil, err
	}
	var rs Results
	for _, to := range q.To_Account {
		if err := rs.add(to, s.blackAdd(ctx, a.User, to)); err != nil {
			return nil, err
		}
	}
	return rs.done(), nil
}

func (s *Service) blackAdd(ctx context.Context, a, to string) error {
	if err := checkPeer(a, to); err != nil {
		return err
	}
	unlock := s.lockUsers(a, to)
	defer unlock()
	if ok, err := s.has(blackKey(a, to)); err != nil || ok {
		return orErr(err, imerr.SnsBadParams.New("%s is already on your blacklist", to))
	}
	max := s.cfg.MaxBlacklist
	if n, err := s.count(blackPrefix(a), max); err != nil {
		return err
	} else if n >= max {
		return imerr.SnsBlacklistFull.New("your blacklist is full (%d)", max)
	}
	now := time.Now().Unix()
	rb := newRelBatch()
	rb.set(blackKey(a, to), mustJSON(blackRec{AddBlackTimeStamp: now}))
	for _, p := range [][2]string{{a, to}, {to, a}} {
		ok, err := s.has(friendKey(p[0], p[1]))
		if err != nil {
			return err
		}
		if ok {
			rb.delFriend(p[0], p[1])
			rb.friendDeleted(p[0], p[1], a)
		}
		rb.delPending(p[0], p[1])
	}
	rb.event(a, eventBlackListAdded, map[string]any{"To_Account": to, "AddBlackTimeStamp": now})
	rb.callback(cbSnsBlackAdd, a, to, a)
	return s.commit(ctx, rb)
}

// BlackDelete takes users off the blacklist (Tencent black_list_delete).
func (s *Service) BlackDelete(ctx context.Context, a ops.Actor, q *AccountsRequest) (*Results, error) {
	if err := checkAccounts(q.To_Account); err != nil {
		return nil, err
	}
	var rs Results
	for _, to := range q.To_Account {
		if err := rs.add(to, s.blackDelete(ctx, a.User, to)); err != nil {
			return nil, err
		}
	}
	return rs.done(), nil
}

func (s *Service) blackDelete(ctx context.Context, a, to string) error {
	if err := checkPeer(a, to); err != nil {
		return err
	}
	unlock := s.lockUsers(a)
	defer unlock()
	if ok, err := s.has(blackKey(a, to)); err != nil || !ok {
		return orErr(err, imerr.SnsBadParams.New("%s is not on your blacklist", to))
	}
	rb := newRelBatch()
	rb.del(blackKey(a, to))
	rb.event(a, eventBlackListDel, map[string]any{"To_Account": to})
	rb.callback(cbSnsBlackDelete, a, to, a)
	return s.commit(ctx, rb)
}

// BlackGetRequest is black.get.
type BlackGetRequest struct {
	StartIndex int
	MaxLimited int // 0: 100
}

// BlackListItem is one blacklisted user.
type BlackListItem struct {
	To_Account        string
	AddBlackTimeStamp int64
}

// BlackGetResponse is a page of the blacklist.
type BlackGetResponse struct {
	BlackListItem []BlackListItem
	StartIndex    int // where the next page starts; 0: none
	TotalCount    int
}

// BlackGet pages through the blacklist in UserID order (Tencent
// black_list_get): StartIndex in the reply is where the next page starts,
// 0 when there is none.
func (s *Service) BlackGet(_ context.Context, a ops.Actor, q *BlackGetRequest) (*BlackGetResponse, error) {
	if q.StartIndex < 0 || q.MaxLimited < 0 {
		return nil, imerr.SnsBadParams.New("StartIndex and MaxLimited must not be negative")
	}
	limit := q.MaxLimited
	if limit == 0 {
		limit = blackPageDefault
	}
	limit = min(limit, s.cfg.MaxBlacklist)
	items := []BlackListItem{}
	i := 0
	next := 0
	if err := s.scan(blackPrefix(a.User), func(peer string, v []byte) error {
		defer func() { i++ }()
		if i < q.StartIndex {
			return nil
		}
		if len(items) == limit {
			if next == 0 {
				next = i
			}
			return nil
		}
		var rec blackRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		items = append(items, BlackListItem{To_Account: peer, AddBlackTimeStamp: rec.AddBlackTimeStamp})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read blacklist of %s: %w", a.User, err)
	}
	return &BlackGetResponse{BlackListItem: items, StartIndex: next, TotalCount: i}, nil
}

// BlackCheckResponse answers black.check.
type BlackCheckResponse struct {
	BlackListCheckItem []CheckItem
	Fail_Account       []string
}

// BlackCheck reports blacklist relations (Tencent black_list_check).
func (s *Service) BlackCheck(_ context.Context, a ops.Actor, q *CheckRequest) (*BlackCheckResponse, error) {
	items, fail, err := s.checkRelations(a.User, q, relationCheck{key: blackKey, single: blackCheckSingle, both: blackCheckBoth,
		prefix: "BlackCheckResult_Type_", none: "NO"})
	if err != nil {
		return nil, err
	}
	return &BlackCheckResponse{BlackListCheckItem: items, Fail_Account: fail}, nil
}

// CheckC2C runs the relation checks of a C2C send from `from` to `to`
// [IM-REL-C2C]. A recipient who blacklisted the sender gets nothing, ever:
// with relations.blacklisted_send error the send fails with 20007; with
// success (default, Tencent's) drop is true: the sender must be told the
// message was sent, but nothing may be stored. With
// relations.require_friendship_for_c2c, non-friends get 20009 and one-way
// friends 20010 / 20011. Sending to yourself, and any send from or to the
// app admin, is exempt. First of all, with relations.require_accounts the
// recipient must be an account (90012).
func (s *Service) CheckC2C(from, to string) (drop bool, err error) {
	if err := s.checkAccounts(to); err != nil {
		return false, err
	}
	if from == to || from == s.admin || to == s.admin {
		return false, nil
	}
	blocked, err := s.has(blackKey(to, from))
	if err != nil {
		return false, fmt.Errorf("blacklist check: %w", err)
	}
	if blocked {
		if s.cfg.BlacklistedSend == config.BlacklistedSendError {
			return false, imerr.C2CBlacklisted.New("you are on %s's blacklist", to)
		}
		return true, nil
	}
	if !s.cfg.RequireFriendshipForC2C {
		return false, nil
	}
	mine, err := s.has(friendKey(from, to))
	if err != nil {
		return false, fmt.Errorf("friend check: %w", err)
	}
	theirs, err := s.has(friendKey(to, from))
	if err != nil {
		return false, fmt.Errorf("friend check: %w", err)
	}
	switch {
	case !mine && !theirs:
		return false, imerr.C2CNotFriends.New("%s is not your friend", to)
	case !theirs:
		return false, imerr.C2CNotTheirs.New("you are not in %s's friend list", to)
	case !mine:
		return false, imerr.C2CNotYours.New("%s is not in your friend list", to)
	}
	return false, nil
}
