package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Blacklist (Tencent sns/black_list_*) and the C2C relation checks
// [IM-REL-BLACK]: docs/relations.md. bl/{uid}/{peer} holds blackRec.

// C2C relation codes (tencent-im.md §2, openim).
const (
	blackCheckSingle    = "BlackCheckResult_Type_Single"
	blackCheckBoth      = "BlackCheckResult_Type_Both"
	eventBlackListAdded = "BlackListAdded"   // to the owner's devices only
	eventBlackListDel   = "BlackListDeleted" // likewise
	blackPageDefault    = 100
)

func blackKey(uid, peer string) string { return "bl/" + uid + "/" + peer }
func blackPrefix(uid string) string    { return "bl/" + uid + "/" }

type blackRec struct {
	AddBlackTimeStamp int64
}

// reqBlackAdd puts users on the blacklist (Tencent black_list_add). As
// Tencent does, it ends any friendship between the two, both ways, and drops
// pending friend requests between them. [IM-REL-BLACK]
func (b *Broker) reqBlackAdd(ctx context.Context, r *reqCtx) (any, error) {
	tos, err := b.decodeAccounts(r)
	if err != nil {
		return nil, err
	}
	var rs relResults
	for _, to := range tos {
		if err := rs.add(to, b.blackAdd(ctx, r.user, to)); err != nil {
			return nil, err
		}
	}
	return rs.reply(), nil
}

func (b *Broker) decodeAccounts(r *reqCtx) ([]string, error) {
	var q struct{ To_Account []string }
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if len(q.To_Account) == 0 || len(q.To_Account) > maxRelItems {
		return nil, imerr.SnsBadParams.New("To_Account must hold 1 to %d accounts", maxRelItems)
	}
	return q.To_Account, nil
}

func (b *Broker) blackAdd(ctx context.Context, a, to string) error {
	if err := checkPeer(a, to); err != nil {
		return err
	}
	unlock := b.lockUsers(a, to)
	defer unlock()
	if ok, err := b.relHas(blackKey(a, to)); err != nil || ok {
		return orErr(err, imerr.SnsBadParams.New("%s is already on your blacklist", to))
	}
	max := b.cfg.Relations.MaxBlacklist
	if n, err := b.relCount(blackPrefix(a), max); err != nil {
		return err
	} else if n >= max {
		return imerr.SnsBlacklistFull.New("your blacklist is full (%d)", max)
	}
	now := time.Now().Unix()
	rb := newRelBatch()
	rb.set(blackKey(a, to), mustJSON(blackRec{AddBlackTimeStamp: now}))
	for _, p := range [][2]string{{a, to}, {to, a}} {
		ok, err := b.relHas(friendKey(p[0], p[1]))
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
	return b.commitRel(ctx, rb)
}

// reqBlackDelete takes users off the blacklist (Tencent black_list_delete).
func (b *Broker) reqBlackDelete(ctx context.Context, r *reqCtx) (any, error) {
	tos, err := b.decodeAccounts(r)
	if err != nil {
		return nil, err
	}
	var rs relResults
	for _, to := range tos {
		err := func() error {
			if err := checkPeer(r.user, to); err != nil {
				return err
			}
			unlock := b.lockUsers(r.user)
			defer unlock()
			if ok, err := b.relHas(blackKey(r.user, to)); err != nil || !ok {
				return orErr(err, imerr.SnsBadParams.New("%s is not on your blacklist", to))
			}
			rb := newRelBatch()
			rb.del(blackKey(r.user, to))
			rb.event(r.user, eventBlackListDel, map[string]any{"To_Account": to})
			rb.callback(cbSnsBlackDelete, r.user, to, r.user)
			return b.commitRel(ctx, rb)
		}()
		if err := rs.add(to, err); err != nil {
			return nil, err
		}
	}
	return rs.reply(), nil
}

// reqBlackGet pages through the blacklist in UserID order (Tencent
// black_list_get): StartIndex in the reply is where the next page starts,
// 0 when there is none.
func (b *Broker) reqBlackGet(_ context.Context, r *reqCtx) (any, error) {
	var q struct{ StartIndex, MaxLimited int }
	if err := r.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if q.StartIndex < 0 || q.MaxLimited < 0 {
		return nil, imerr.SnsBadParams.New("StartIndex and MaxLimited must not be negative")
	}
	if q.MaxLimited == 0 {
		q.MaxLimited = blackPageDefault
	}
	q.MaxLimited = min(q.MaxLimited, b.cfg.Relations.MaxBlacklist)
	items := []map[string]any{}
	i := 0
	next := 0
	if err := b.relScan(blackPrefix(r.user), func(peer string, v []byte) error {
		defer func() { i++ }()
		if i < q.StartIndex {
			return nil
		}
		if len(items) == q.MaxLimited {
			if next == 0 {
				next = i
			}
			return nil
		}
		var rec blackRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		items = append(items, map[string]any{"To_Account": peer, "AddBlackTimeStamp": rec.AddBlackTimeStamp})
		return nil
	}); err != nil {
		return nil, err
	}
	return map[string]any{"BlackListItem": items, "StartIndex": next, "TotalCount": i}, nil
}

// reqBlackCheck reports blacklist relations (Tencent black_list_check).
func (b *Broker) reqBlackCheck(_ context.Context, r *reqCtx) (any, error) {
	return b.checkRelations(r, relationCheck{key: blackKey, single: blackCheckSingle, both: blackCheckBoth,
		prefix: "BlackCheckResult_Type_", none: "NO", field: "BlackListCheckItem"})
}

// c2cRelationGate runs the relation checks of a C2C send [IM-REL-C2C]. A
// recipient who blacklisted the sender gets nothing, ever: with
// relations.blacklisted_send error the send fails with 20007; with success
// (default, Tencent's) the payload is still validated and the sender is
// told it was sent, but nothing is stored in any stream (stop is true, with
// the result to return). With relations.require_friendship_for_c2c,
// non-friends get 20009 and one-way friends 20010 / 20011. Sending to
// yourself, and any send from or to the app admin, is exempt.
func (b *Broker) c2cRelationGate(from, to string, payload []byte) (res wire.SendResult, stop bool, err error) {
	rc := b.cfg.Relations
	if from == to || from == b.cfg.App.Admin || to == b.cfg.App.Admin {
		return wire.SendResult{}, false, nil
	}
	blocked, err := b.relHas(blackKey(to, from))
	if err != nil {
		return wire.SendResult{}, true, fmt.Errorf("blacklist check: %w", err)
	}
	if blocked {
		if rc.BlacklistedSend == config.BlacklistedSendError {
			return wire.SendResult{}, true, imerr.C2CBlacklisted.New("you are on %s's blacklist", to)
		}
		req, _, err := wire.ParseSend(payload, b.cfg.Messages)
		if err != nil {
			return wire.SendResult{}, true, err
		}
		res = wire.SendResult{MsgSeq: req.MsgSeq, MsgTime: time.Now().Unix()}
		if res.MsgSeq == 0 {
			res.MsgSeq = rand.Uint32N(1<<31-1) + 1
		}
		res.MsgKey = fmt.Sprintf("%d_%d_%d", res.MsgSeq, *req.MsgRandom, res.MsgTime)
		return res, true, nil
	}
	if !rc.RequireFriendshipForC2C {
		return wire.SendResult{}, false, nil
	}
	mine, err := b.relHas(friendKey(from, to))
	if err != nil {
		return wire.SendResult{}, true, fmt.Errorf("friend check: %w", err)
	}
	theirs, err := b.relHas(friendKey(to, from))
	if err != nil {
		return wire.SendResult{}, true, fmt.Errorf("friend check: %w", err)
	}
	switch {
	case !mine && !theirs:
		return wire.SendResult{}, true, imerr.C2CNotFriends.New("%s is not your friend", to)
	case !theirs:
		return wire.SendResult{}, true, imerr.C2CNotTheirs.New("you are not in %s's friend list", to)
	case !mine:
		return wire.SendResult{}, true, imerr.C2CNotYours.New("%s is not in your friend list", to)
	}
	return wire.SendResult{}, false, nil
}
