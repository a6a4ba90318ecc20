package groups

import (
	"cmp"
	"context"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
)

// The composite member operations of the REST API (Tencent
// modify_group_member_info, get_group_muted_account, get_role_in_group):
// each is one operation under the group's lock, so it sees one state and,
// for a change, commits once.

// ModifyMemberRequest is Tencent modify_group_member_info: any of one
// member's role, name card, app-defined data and mute.
type ModifyMemberRequest struct {
	GroupId, Member_Account string
	Role                    string // Admin or Member; "" leaves the role
	NameCard                *string
	AppMemberDefinedData    []wire.KVItem
	MuteTime                *int64  // seconds, as group.mute
	ShutUpTime              *int64  // Tencent's older name of MuteTime, still sent by clients; MuteTime wins
	MsgFlag                 *string // AcceptAndNotify, AcceptNotNotify or Discard: stored and shown, not acted on
}

// ModifyMember changes what q names of one member as one change: each part
// is checked by the rules of group.set_role, group.set_member and
// group.mute, in that order, each seeing the member as the parts before it
// left it; only when every part passed are the member's record and one tip
// per part (RoleChanged, MemberInfoChanged, MemberMuted, with consecutive
// seqs) committed, together. A part that is refused leaves nothing changed
// and no tip.
func (s *Service) ModifyMember(ctx context.Context, a ops.Actor, q *ModifyMemberRequest) (*Empty, error) {
	if q.GroupId == "" || q.Member_Account == "" {
		return nil, badParams("GroupId and Member_Account are required")
	}
	q.MuteTime = cmp.Or(q.MuteTime, q.ShutUpTime)
	uid := q.Member_Account
	// Each part's own checks come before the group's lock, as when the
	// parts were separate operations: the lock is taken by the first part
	// that needs it, so a request that is wrong twice is refused as before.
	var g *group
	lock := func() error {
		if g != nil {
			return nil
		}
		var err error
		g, err = s.lock(q.GroupId)
		return err
	}
	defer func() {
		if g != nil {
			g.op.Unlock()
		}
	}()
	var m *Member
	// member locks the group and copies uid's record into m, once.
	member := func() error {
		if err := lock(); err != nil {
			return err
		}
		if m == nil {
			m = g.copyOf(uid)
		}
		if m == nil {
			return badParams("%q is not a member", uid)
		}
		return nil
	}
	var tips []wire.GroupTip
	if q.Role != "" {
		if err := checkRoleValue(q.Role); err != nil {
			return nil, err
		}
		if err := lock(); err != nil {
			return nil, err
		}
		m = g.copyOf(uid)
		tip, err := g.setRole(a, uid, m, q.Role)
		if err != nil {
			return nil, err
		}
		tips = append(tips, tip)
	}
	if q.NameCard != nil || q.AppMemberDefinedData != nil {
		if err := checkMemberInfo(q.NameCard, q.AppMemberDefinedData); err != nil {
			return nil, err
		}
		if err := lock(); err != nil {
			return nil, err
		}
		if m == nil {
			m = g.copyOf(uid)
		}
		tip, err := g.setMemberInfo(a, uid, m, q.NameCard, q.AppMemberDefinedData)
		if err != nil {
			return nil, err
		}
		tips = append(tips, tip)
	}
	if q.MuteTime != nil {
		if err := checkMuteTime(q.MuteTime); err != nil {
			return nil, err
		}
		if err := member(); err != nil {
			return nil, err
		}
		if err := g.checkTarget(a, uid, m.Role, true, kindPrivate, "mute"); err != nil {
			return nil, err
		}
		m.MuteUntil = muteUntil(*q.MuteTime, time.Now())
		tips = append(tips, wire.GroupTip{TipType: tipMemberMuted, MemberList: []string{uid}, MuteTime: q.MuteTime})
	}
	if q.MsgFlag != nil {
		// The member's own receive option: no tip (nobody else is told).
		if err := checkMsgFlag(*q.MsgFlag); err != nil {
			return nil, err
		}
		if err := member(); err != nil {
			return nil, err
		}
		if !a.Admin && a.User != uid {
			return nil, noPermission("only %s sets their MsgFlag", uid)
		}
		m.MsgFlag = *q.MsgFlag
	}
	if m == nil || (len(tips) == 0 && q.MsgFlag == nil) {
		return &Empty{}, nil // nothing to change
	}
	return done(s.memberUpdate(ctx, g, a.User, []Member{*m}, tips))
}

// MutedResponse lists a group's muted members (Tencent
// get_group_muted_account).
type MutedResponse struct {
	MutedAccountList []MutedMember
}

// MutedMember is one muted member and the end of their mute (Unix seconds).
type MutedMember struct {
	Member_Account string
	MutedUntil     int64
}

// MutedMembers lists the members muted now, in member order, from one
// state of the group; for members and the app admin.
func (s *Service) MutedMembers(_ context.Context, a ops.Actor, q *GroupRequest) (*MutedResponse, error) {
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !a.Admin && g.role(a.User) == "" {
		return nil, noPermission("only members list members")
	}
	now := time.Now().Unix()
	out := &MutedResponse{MutedAccountList: []MutedMember{}}
	for _, uid := range g.memberIDs() {
		if until := g.members[uid].MuteUntil; until > now {
			out.MutedAccountList = append(out.MutedAccountList, MutedMember{Member_Account: uid, MutedUntil: until})
		}
	}
	return out, nil
}

// maxRoleQuery is how many users one get_role_in_group asks about.
const maxRoleQuery = 500

// RolesRequest is Tencent get_role_in_group.
type RolesRequest struct {
	GroupId      string
	User_Account []string
}

// RolesResponse has each asked user's role: Owner, Admin, Member or
// NotMember.
type RolesResponse struct {
	UserIdList []UserRole
}

// UserRole is one user's role in a group.
type UserRole struct {
	Member_Account string
	Role           string
}

// Roles returns the roles of up to 500 users in a group, from one state of
// the group; for members and the app admin.
func (s *Service) Roles(_ context.Context, a ops.Actor, q *RolesRequest) (*RolesResponse, error) {
	if len(q.User_Account) == 0 || len(q.User_Account) > maxRoleQuery {
		return nil, badParams("User_Account must hold 1 to %d accounts", maxRoleQuery)
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !a.Admin && g.role(a.User) == "" {
		return nil, noPermission("only members list members")
	}
	out := &RolesResponse{UserIdList: make([]UserRole, 0, len(q.User_Account))}
	for _, u := range q.User_Account {
		role := g.role(u)
		if role == "" {
			role = "NotMember"
		}
		out.UserIdList = append(out.UserIdList, UserRole{Member_Account: u, Role: role})
	}
	return out, nil
}
