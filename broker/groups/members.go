package groups

import (
	"cmp"
	"context"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
)

// The changes of member records: role, name card and app-defined data,
// mutes, ownership. Each checks its rules, then commits its records and its
// tip together; ModifyMember (memberedit.go) commits several at once.

// memberUpdate commits changed member records with their tips, one group
// event each, in one batch; the members concerned get the tips on their
// user streams too.
func (s *Service) memberUpdate(ctx context.Context, g *group, operator string, ms []Member, tips []wire.GroupTip) error {
	gid := g.info.GroupId
	sets := make(map[string][]byte, len(ms))
	var concerned []string
	for _, m := range ms {
		sets[memberKey(gid, m.Member_Account)] = mustJSON(m)
	}
	events := make([]event, 0, len(tips))
	for _, t := range tips {
		t.GroupId, t.Operator_Account = gid, operator
		concerned = append(concerned, t.MemberList...)
		events = append(events, tipEvent(t))
	}
	if _, _, err := s.commit(ctx, g, change{sets: sets, events: events, userCopies: s.userCopiesFor(g, concerned...)}); err != nil {
		return err
	}
	g.apply(func() {
		for _, m := range ms {
			*g.members[m.Member_Account] = m
		}
	})
	return nil
}

// SetRoleRequest is group.set_role.
type SetRoleRequest struct {
	GroupId, Member_Account, Role string // Role: Admin or Member
}

// SetRole makes a member Admin or Member: the owner (or the app admin)
// only, in types that have admins.
func (s *Service) SetRole(ctx context.Context, a ops.Actor, q *SetRoleRequest) (*Empty, error) {
	if err := checkRoleValue(q.Role); err != nil {
		return nil, err
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	m := g.copyOf(q.Member_Account)
	tip, err := g.setRole(a, q.Member_Account, m, q.Role)
	if err != nil {
		return nil, err
	}
	return done(s.memberUpdate(ctx, g, a.User, []Member{*m}, []wire.GroupTip{tip}))
}

func checkRoleValue(role string) error {
	if role != roleAdmin && role != roleMember {
		return badParams("Role must be Admin or Member")
	}
	return nil
}

// copyOf is a copy of uid's record to change, or nil when uid is not a
// member; callers hold g.op.
func (g *group) copyOf(uid string) *Member {
	m, ok := g.members[uid]
	if !ok {
		return nil
	}
	c := *m
	return &c
}

// setRole checks that a may give uid role and sets it in m, uid's record as
// the change makes it so far (nil: not a member).
func (g *group) setRole(a ops.Actor, uid string, m *Member, role string) (wire.GroupTip, error) {
	if !g.policy.hasAdmins() {
		return wire.GroupTip{}, noPermission("%s groups have no admins", g.info.Type)
	}
	if !a.Admin && g.role(a.User) != roleOwner {
		return wire.GroupTip{}, noPermission("only the owner sets roles")
	}
	if m == nil || m.Role == roleOwner {
		return wire.GroupTip{}, badParams("%q is not a member whose role can change", uid)
	}
	m.Role = role
	return wire.GroupTip{TipType: tipRoleChanged, Role: role, MemberList: []string{m.Member_Account}}, nil
}

// SetMemberRequest is group.set_member: a member's NameCard and
// app-defined data (an empty value deletes a key).
type SetMemberRequest struct {
	GroupId, Member_Account string // Member_Account: the actor when empty
	NameCard                *string
	AppMemberDefinedData    []wire.KVItem
}

// SetMember sets NameCard and app-defined member fields: one's own, or, for
// owner/admins, those of members below them.
func (s *Service) SetMember(ctx context.Context, a ops.Actor, q *SetMemberRequest) (*Empty, error) {
	uid := q.Member_Account
	if uid == "" {
		uid = a.User
	}
	if err := checkMemberInfo(q.NameCard, q.AppMemberDefinedData); err != nil {
		return nil, err
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	m := g.copyOf(uid)
	tip, err := g.setMemberInfo(a, uid, m, q.NameCard, q.AppMemberDefinedData)
	if err != nil {
		return nil, err
	}
	return done(s.memberUpdate(ctx, g, a.User, []Member{*m}, []wire.GroupTip{tip}))
}

// checkMemberInfo validates a name card and app-defined member data.
func checkMemberInfo(nameCard *string, data []wire.KVItem) error {
	if nameCard != nil {
		if err := checkText("NameCard", *nameCard, maxNameCard); err != nil {
			return err
		}
	}
	return checkDefined("AppMemberDefinedData", data, maxMemberDefined, maxMemberDefinedVal)
}

// setMemberInfo checks that a may change uid's member info and changes it
// in m, uid's record as the change makes it so far (nil: not a member).
func (g *group) setMemberInfo(a ops.Actor, uid string, m *Member, nameCard *string, data []wire.KVItem) (wire.GroupTip, error) {
	if m == nil {
		return wire.GroupTip{}, badParams("%q is not a member", uid)
	}
	actor, target := g.role(a.User), m.Role
	if m.Member_Account != a.User && !a.Admin && !g.policy.canRemove(actor, target, false) &&
		!(g.policy.isManager(actor) && target == roleMember) {
		return wire.GroupTip{}, noPermission("%s may not change %s's member info", a.User, m.Member_Account)
	}
	if nameCard != nil {
		m.NameCard = *nameCard
	}
	if data != nil {
		m.AppMemberDefinedData = mergeDefined(m.AppMemberDefinedData, data)
		if len(m.AppMemberDefinedData) > maxMemberDefined {
			return wire.GroupTip{}, badParams("AppMemberDefinedData has more than %d keys", maxMemberDefined)
		}
	}
	return wire.GroupTip{TipType: tipMemberInfo, MemberList: []string{m.Member_Account}}, nil
}

// MuteRequest is group.mute (Tencent forbid_send_msg): MuteTime seconds, 0
// unmutes, 4294967295 is forever.
type MuteRequest struct {
	GroupId         string
	Members_Account []string
	MuteTime        *int64
	ShutUpTime      *int64 // Tencent's older name of MuteTime, still sent by clients; MuteTime wins
}

// Mute mutes members for MuteTime seconds: owner over anyone, admins over
// members; none in Work groups.
func (s *Service) Mute(ctx context.Context, a ops.Actor, q *MuteRequest) (*Empty, error) {
	q.MuteTime = cmp.Or(q.MuteTime, q.ShutUpTime)
	if err := checkMuteTime(q.MuteTime); err != nil {
		return nil, err
	}
	if len(q.Members_Account) == 0 || len(q.Members_Account) > 500 {
		return nil, badParams("Members_Account must hold 1 to 500 members")
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if err := g.checkMute(a, q.Members_Account); err != nil {
		return nil, err
	}
	members := dedupe(q.Members_Account)
	until := muteUntil(*q.MuteTime, time.Now())
	ms := make([]Member, 0, len(members))
	for _, uid := range members {
		m := *g.members[uid]
		m.MuteUntil = until
		ms = append(ms, m)
	}
	tip := wire.GroupTip{TipType: tipMemberMuted, MemberList: members, MuteTime: q.MuteTime}
	return done(s.memberUpdate(ctx, g, a.User, ms, []wire.GroupTip{tip}))
}

func checkMuteTime(t *int64) error {
	if t == nil || *t < 0 || *t > muteForever {
		return badParams("MuteTime must be 0 to 4294967295 seconds")
	}
	return nil
}

// checkMute checks that a may mute every one of uids. The app admin mutes
// anyone but the owner, except in Work groups, which have no mute at all
// (Tencent forbid_send_msg: "Private: not supported").
func (g *group) checkMute(a ops.Actor, uids []string) error {
	return g.checkTargets(a, uids, true, kindPrivate, "mute")
}

// muteUntil is the MuteUntil of a mute of muteTime seconds from now: 0
// unmuted, forever as the largest time that stays exact in every JSON reader
// of 64-bit integers.
func muteUntil(muteTime int64, now time.Time) int64 {
	switch {
	case muteTime == muteForever:
		return 1<<62 - 1
	case muteTime > 0:
		return now.Unix() + muteTime
	}
	return 0
}

// TransferRequest is group.transfer (Tencent change_group_owner).
type TransferRequest struct {
	GroupId, NewOwner_Account string
}

// Transfer hands ownership to a member; the old owner becomes a Member.
func (s *Service) Transfer(ctx context.Context, a ops.Actor, q *TransferRequest) (*Empty, error) {
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !a.Admin && g.role(a.User) != roleOwner {
		return nil, noPermission("only the owner transfers ownership")
	}
	if g.role(q.NewOwner_Account) == "" || q.NewOwner_Account == g.info.Owner_Account {
		return nil, badParams("NewOwner_Account must be another member")
	}
	gid := g.info.GroupId
	info := g.info
	info.Owner_Account = q.NewOwner_Account
	newOwner := *g.members[q.NewOwner_Account]
	newOwner.Role = roleOwner
	sets := map[string][]byte{groupKey(gid): mustJSON(info), memberKey(gid, newOwner.Member_Account): mustJSON(newOwner)}
	var oldOwner *Member
	if old, ok := g.members[g.info.Owner_Account]; ok {
		o := *old
		o.Role = roleMember
		oldOwner = &o
		sets[memberKey(gid, o.Member_Account)] = mustJSON(o)
	}
	if _, _, err := s.commit(ctx, g, change{
		sets: sets, userCopies: s.userCopiesFor(g, q.NewOwner_Account),
		events: []event{tipEvent(wire.GroupTip{GroupId: gid, TipType: tipOwnerChanged, Operator_Account: a.User, NewOwner_Account: q.NewOwner_Account})},
	}); err != nil {
		return nil, err
	}
	g.apply(func() {
		g.info = info
		*g.members[newOwner.Member_Account] = newOwner
		if oldOwner != nil {
			*g.members[oldOwner.Member_Account] = *oldOwner
		}
	})
	return &Empty{}, nil
}
