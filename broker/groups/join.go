package groups

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// joining is how addMembers records new members beyond the defaults.
type joining struct {
	deletes []string                         // more records to delete in the same commit (a handled application)
	shape   func(m *Member)                  // adjusts each new member's record (imports: role, join time)
	updates func(uid string) *storage.Update // a record update per new member in the same commit (imports: unread)
}

// addMembers commits new members (join, approval, invite, import): checks
// size and per-user limits, restores kept mutes, and emits one MemberJoin
// tip, all in one commit.
func (s *Service) addMembers(ctx context.Context, g *group, operator string, uids []string, j joining) error {
	gid := g.info.GroupId
	if len(g.members)+len(uids) > g.info.MaxMemberNum {
		return imerr.GroupFull.New("group %s is full (%d members)", gid, g.info.MaxMemberNum)
	}
	g.mu.RLock() // FollowLive moves it holding only g.mu
	head := g.memSeq
	g.mu.RUnlock()
	if g.policy.stored() {
		p, err := s.store.Head(convs.GroupStream(gid))
		if err != nil {
			return fmt.Errorf("head of group %s: %w", gid, err)
		}
		head = p.Seq
	}
	now := time.Now().Unix()
	c := change{sets: map[string][]byte{}, deletes: append([]string(nil), j.deletes...)}
	added := make([]*Member, 0, len(uids))
	for _, uid := range uids {
		if err := s.checkJoinLimit(uid); err != nil {
			return err
		}
		m := &Member{Member_Account: uid, Role: roleMember, JoinTime: now, JoinSeq: head}
		if v, ok, _ := s.store.Get(muteKey(gid, uid)); ok {
			if until, err := strconv.ParseInt(string(v), 10, 64); err == nil && until > now {
				m.MuteUntil = until
			}
			c.deletes = append(c.deletes, muteKey(gid, uid))
		}
		if j.shape != nil {
			j.shape(m)
		}
		c.sets[memberKey(gid, uid)] = mustJSON(m)
		c.sets[joinedKey(uid, gid)] = []byte(g.info.Type)
		// A pending application ends with joining, however it happened
		// (free join after the option changed, invitation): it used to stay
		// listed, and handling it later was a no-op that left the record.
		if _, ok := g.apps[uid]; ok {
			c.deletes = append(c.deletes, applicationKey(gid, uid))
		}
		if j.updates != nil {
			if u := j.updates(uid); u != nil {
				c.updates = append(c.updates, *u)
			}
		}
		added = append(added, m)
	}
	// The new members get the tip on their streams too (extra copies). A
	// busy live room announces them later, merged (livetips.go): then they
	// get a private copy now.
	if err := s.commitMemberChange(ctx, g, tipMemberJoin, operator, uids, c); err != nil {
		return err
	}
	g.apply(func() {
		for _, m := range added {
			g.members[m.Member_Account] = m
			delete(g.apps, m.Member_Account)
		}
	})
	return nil
}

// JoinRequest is group.join (Tencent apply_join_group).
type JoinRequest struct {
	GroupId, ApplyMsg string
}

// JoinResponse says whether the actor joined or applied.
type JoinResponse struct {
	GroupId    string
	JoinResult string // Joined or Pending
}

// Join joins or applies, per type: Work groups are invite-only; Public
// groups follow ApplyJoinOption; Meeting and live rooms are free.
func (s *Service) Join(ctx context.Context, a ops.Actor, q *JoinRequest) (*JoinResponse, error) {
	if err := checkText("ApplyMsg", q.ApplyMsg, 300); err != nil {
		return nil, err
	}
	if err := s.beforeApply(ctx, q.GroupId, a.User); err != nil { // before the group's lock
		return nil, err
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if a.User == "" {
		return nil, noPermission("guests cannot join")
	}
	if g.role(a.User) != "" {
		return nil, imerr.GroupAlreadyMember.New("%s is already a member", a.User)
	}
	switch {
	case g.policy.Kind == kindPrivate:
		return nil, noPermission("Work groups are joined by invitation only")
	case g.policy.Kind == kindPublic && g.info.ApplyJoinOption == "DisableApply":
		return nil, noPermission("this group does not take applications")
	case g.policy.Kind == kindPublic && g.info.ApplyJoinOption == "NeedPermission" && !a.Admin:
		if len(g.members) >= g.info.MaxMemberNum {
			return nil, imerr.GroupFull.New("group %s is full", q.GroupId)
		}
		app := &Application{Applicant_Account: a.User, ApplyMsg: q.ApplyMsg, ApplyTime: time.Now().Unix()}
		if _, err := s.store.Commit(ctx, storage.Batch{Sets: map[string][]byte{applicationKey(q.GroupId, a.User): mustJSON(app)}}); err != nil {
			return nil, fmt.Errorf("commit application to %s: %w", q.GroupId, err)
		}
		g.apply(func() { g.apps[a.User] = app })
		var managers []string
		for uid, m := range g.members {
			if g.policy.isManager(m.Role) {
				managers = append(managers, uid)
			}
		}
		if err := s.notifyUsers(ctx, managers, wire.GroupTip{GroupId: q.GroupId, TipType: tipJoinApplication, Operator_Account: a.User, ApplyMsg: q.ApplyMsg}); err != nil {
			return nil, err
		}
		return &JoinResponse{GroupId: q.GroupId, JoinResult: "Pending"}, nil
	}
	if err := s.addMembers(ctx, g, a.User, []string{a.User}, joining{}); err != nil {
		return nil, err
	}
	s.afterJoined(ctx, g, "Apply", a.User, []string{a.User})
	return &JoinResponse{GroupId: q.GroupId, JoinResult: "Joined"}, nil
}

// GroupRequest names a group (group.applications, group.quit, group.destroy).
type GroupRequest struct {
	GroupId string
}

// ApplicationsResponse lists a group's pending applications.
type ApplicationsResponse struct {
	GroupId         string
	ApplicationList []Application
}

// Applications lists pending applications, for owner, admins and the app admin.
func (s *Service) Applications(_ context.Context, a ops.Actor, q *GroupRequest) (*ApplicationsResponse, error) {
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !a.Admin && !g.policy.isManager(g.role(a.User)) {
		return nil, noPermission("only the owner and admins see applications")
	}
	list := []Application{}
	for _, app := range g.apps {
		list = append(list, *app)
	}
	return &ApplicationsResponse{GroupId: q.GroupId, ApplicationList: list}, nil
}

// HandleApplicationRequest is group.handle_application.
type HandleApplicationRequest struct {
	GroupId, Applicant_Account, HandleResult string // HandleResult: Agree or Reject
}

// HandleApplication approves or rejects an application.
func (s *Service) HandleApplication(ctx context.Context, a ops.Actor, q *HandleApplicationRequest) (*Empty, error) {
	if q.HandleResult != "Agree" && q.HandleResult != "Reject" {
		return nil, badParams("HandleResult must be Agree or Reject")
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !a.Admin && !g.policy.isManager(g.role(a.User)) {
		return nil, noPermission("only the owner and admins handle applications")
	}
	if _, ok := g.apps[q.Applicant_Account]; !ok {
		return nil, badParams("no pending application from %q", q.Applicant_Account)
	}
	key := applicationKey(q.GroupId, q.Applicant_Account)
	if q.HandleResult == "Agree" {
		if g.role(q.Applicant_Account) == "" {
			if err := s.addMembers(ctx, g, a.User, []string{q.Applicant_Account}, joining{deletes: []string{key}}); err != nil {
				return nil, err
			}
			s.afterJoined(ctx, g, "Apply", a.User, []string{q.Applicant_Account})
		}
	} else if _, err := s.store.Commit(ctx, storage.Batch{Deletes: []string{key}}); err != nil {
		return nil, fmt.Errorf("commit rejection of %s in %s: %w", q.Applicant_Account, q.GroupId, err)
	}
	g.apply(func() { delete(g.apps, q.Applicant_Account) })
	if err := s.notifyUsers(ctx, []string{q.Applicant_Account}, wire.GroupTip{GroupId: q.GroupId, TipType: tipApplicationHandled, Operator_Account: a.User, Result: q.HandleResult}); err != nil {
		return nil, err
	}
	return &Empty{}, nil
}

// InviteRequest is group.invite (Tencent add_group_member).
type InviteRequest struct {
	GroupId    string
	MemberList []struct{ Member_Account string }
}

// InviteResponse has each invited member's result: 0 failed, 1 added, 2
// already a member.
type InviteResponse struct {
	GroupId    string
	MemberList []MemberResult
}

// MemberResult is one member's result of an invitation or import.
type MemberResult struct {
	Member_Account string
	Result         int
}

// Invite adds members directly: Work group members, or the app admin in
// any type but AVChatRoom.
func (s *Service) Invite(ctx context.Context, a ops.Actor, q *InviteRequest) (*InviteResponse, error) {
	if len(q.MemberList) == 0 || len(q.MemberList) > s.cfg.MaxInitialMembers {
		return nil, badParams("MemberList must hold 1 to %d members", s.cfg.MaxInitialMembers)
	}
	dest := make([]string, 0, len(q.MemberList))
	for _, m := range q.MemberList {
		dest = append(dest, m.Member_Account)
	}
	refused, err := s.beforeInvite(ctx, q.GroupId, a.User, dest) // before the group's lock
	if err != nil {
		return nil, err
	}
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !g.policy.canInvite(g.role(a.User), a.Admin) {
		return nil, noPermission("%s may not invite to this %s group", a.User, g.info.Type)
	}
	results := make([]MemberResult, 0, len(q.MemberList))
	var add []string
	seen := map[string]bool{}
	for _, m := range q.MemberList {
		res := 1
		switch {
		case ids.CheckUserID(m.Member_Account) != nil || seen[m.Member_Account] || refused[m.Member_Account]:
			res = 0
		case g.role(m.Member_Account) != "":
			res = 2
		default:
			add = append(add, m.Member_Account)
		}
		seen[m.Member_Account] = true
		results = append(results, MemberResult{Member_Account: m.Member_Account, Result: res})
	}
	if len(add) > 0 {
		if err := s.addMembers(ctx, g, a.User, add, joining{}); err != nil {
			return nil, err
		}
		s.afterJoined(ctx, g, "Invited", a.User, add)
	}
	return &InviteResponse{GroupId: q.GroupId, MemberList: results}, nil
}
