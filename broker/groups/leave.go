package groups

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// removeMembers commits members leaving (kick or quit): their records go,
// mutes are kept, everyone concerned gets the tip, and their live
// subscriptions to the group topic end at once.
func (s *Service) removeMembers(ctx context.Context, g *group, operator, tipType string, uids []string, newOwner *string) error {
	gid := g.info.GroupId
	now := time.Now().Unix()
	c := change{sets: map[string][]byte{}}
	for _, uid := range uids {
		c.deletes = append(c.deletes, memberKey(gid, uid), joinedKey(uid, gid))
		if m := g.members[uid]; m != nil && m.MuteUntil > now {
			c.sets[muteKey(gid, uid)] = strconv.AppendInt(nil, m.MuteUntil, 10)
		}
	}
	info := g.info
	if newOwner != nil {
		info.Owner_Account = *newOwner
		c.sets[groupKey(gid)] = mustJSON(info)
	}
	// The leavers are members until the commit, so they get the tip too.
	// A busy live room announces a quit later, merged (livetips.go): then
	// the leaver gets a private copy now.
	if err := s.commitMemberChange(ctx, g, tipType, operator, uids, c); err != nil {
		return err
	}
	g.apply(func() {
		g.info = info
		for _, uid := range uids {
			delete(g.members, uid)
		}
	})
	// op -> the MQTT side's client and subscription locks, which it never
	// holds while it calls into the groups service.
	s.conns.DropGroupSubscriptions(gid, uids...)
	s.afterExit(ctx, g, tipType, operator, uids)
	return nil
}

// KickRequest is group.kick (Tencent delete_group_member).
type KickRequest struct {
	GroupId             string
	MemberToDel_Account []string
	Reason              string
}

// Kick removes members: owners kick anyone but themselves, admins only
// ordinary members; AVChatRoom has no kick (mute instead).
func (s *Service) Kick(ctx context.Context, a ops.Actor, q *KickRequest) (*Empty, error) {
	if len(q.MemberToDel_Account) == 0 || len(q.MemberToDel_Account) > 500 {
		return nil, badParams("MemberToDel_Account must hold 1 to 500 members")
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	// The app admin kicks anyone but the owner, except in an AVChatRoom, which has no kick.
	if err := g.checkTargets(a, q.MemberToDel_Account, false, kindAVChatRoom, "kick"); err != nil {
		return nil, err
	}
	return done(s.removeMembers(ctx, g, a.User, tipMemberKicked, dedupe(q.MemberToDel_Account), nil))
}

// Quit leaves a group. Only a Work group's owner may leave (the group
// becomes ownerless); other owners get 10009.
func (s *Service) Quit(ctx context.Context, a ops.Actor, q *GroupRequest) (*Empty, error) {
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	role := g.role(a.User)
	if role == "" {
		return nil, noPermission("%s is not a member", a.User)
	}
	var newOwner *string
	if role == roleOwner {
		if !g.policy.ownerMayQuit() {
			return nil, imerr.GroupOwnerQuit.New("the owner cannot quit a %s group: transfer or destroy it", g.info.Type)
		}
		none := ""
		newOwner = &none
	}
	return done(s.removeMembers(ctx, g, a.User, tipMemberQuit, []string{a.User}, newOwner))
}

// Destroy disbands a group: Work groups by the app admin only, others by
// the owner or the app admin. Every member is told on their user stream;
// the group's history is deleted.
func (s *Service) Destroy(ctx context.Context, a ops.Actor, q *GroupRequest) (*Empty, error) {
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !a.Admin && (!g.policy.ownerMayDestroy() || g.role(a.User) != roleOwner) {
		return nil, noPermission("%s may not destroy this %s group", a.User, g.info.Type)
	}
	gid := g.info.GroupId
	members := g.memberIDs()
	deletes := []string{groupKey(gid)}
	for _, uid := range members {
		deletes = append(deletes, memberKey(gid, uid), joinedKey(uid, gid))
	}
	for uid := range g.apps {
		deletes = append(deletes, applicationKey(gid, uid))
	}
	// Mutes kept for former members go with the group.
	if err := storage.ScanAll(s.store, muteKey(gid, ""), func(name string, _ []byte) error {
		deletes = append(deletes, name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list kept mutes of %s: %w", gid, err)
	}
	tip := wire.GroupTip{GroupId: gid, TipType: tipDestroyed, Operator_Account: a.User, Type: g.info.Type, MsgTime: time.Now().Unix()}
	payload, err := wire.EncodeEvent(wire.EventGroupTip, tip)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", tipDestroyed, err)
	}
	batch := storage.Batch{Deletes: deletes, Drops: []string{convs.GroupStream(gid)}}
	for _, uid := range members {
		batch.Appends = append(batch.Appends, storage.Append{Stream: convs.UserStream(uid), Payload: payload})
	}
	if _, err := s.store.Commit(ctx, batch); err != nil {
		return nil, fmt.Errorf("commit destruction of %s: %w", gid, err)
	}
	s.reg.forget(gid, g)
	s.forgetLive(gid)
	s.conns.DropGroupSubscriptions(gid)
	s.afterDestroyed(ctx, g.info, members)
	return &Empty{}, nil
}

// checkTargets checks that every target is a member a may kick (mute=false)
// or mute.
func (g *group) checkTargets(a ops.Actor, uids []string, mute bool, noAdmin kind, verb string) error {
	for _, uid := range uids {
		target := g.role(uid)
		if target == "" {
			return badParams("%q is not a member", uid)
		}
		if err := g.checkTarget(a, uid, target, mute, noAdmin, verb); err != nil {
			return err
		}
	}
	return nil
}

// checkTarget checks that a may kick (mute=false) or mute uid, a member
// whose role is target: by the type's role rules, or as the app admin for
// anyone but the owner in types other than noAdmin (where the action does
// not exist).
func (g *group) checkTarget(a ops.Actor, uid, target string, mute bool, noAdmin kind, verb string) error {
	if !(a.Admin && target != roleOwner && g.policy.Kind != noAdmin) && !g.policy.canRemove(g.role(a.User), target, mute) {
		return noPermission("%s may not %s %s in this %s group", a.User, verb, uid, g.info.Type)
	}
	return nil
}
