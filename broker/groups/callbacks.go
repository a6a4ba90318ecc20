package groups

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/internal/ids"
)

// The Group.* event callbacks (tencent-im.md §5; docs/callbacks.md "Event
// commands"). Before-callbacks run before the group's lock is taken, so a
// slow callback server never holds up the group; after-callbacks are
// queued and never block.
const (
	cbBeforeCreate = "Group.CallbackBeforeCreateGroup"
	cbAfterCreate  = "Group.CallbackAfterCreateGroup"
	cbBeforeApply  = "Group.CallbackBeforeApplyJoinGroup"
	cbBeforeInvite = "Group.CallbackBeforeInviteJoinGroup"
	cbNewMember    = "Group.CallbackAfterNewMemberJoin"
	cbMemberExit   = "Group.CallbackAfterMemberExit"
	cbFull         = "Group.CallbackAfterGroupFull"
	cbDestroyed    = "Group.CallbackAfterGroupDestroyed"
	cbInfoChanged  = "Group.CallbackAfterGroupInfoChanged"
	cbRecall       = "Group.CallbackAfterRecallMsg"
)

// memberItem is a {Member_Account} of a callback's member list.
type memberItem struct {
	Member_Account string
}

func memberItems(uids []string) []memberItem {
	out := make([]memberItem, 0, len(uids))
	for _, u := range uids {
		out = append(out, memberItem{Member_Account: u})
	}
	return out
}

// beforeVerdict runs a before-callback that can only allow or reject,
// mapped to an error by callbacks.GroupVerdicts. Drop (2) is a send-only
// verdict and counts as a reject here.
func (s *Service) beforeVerdict(ctx context.Context, command string, fields map[string]any) (callbacks.Decision, error) {
	if !s.cb.Enabled(command) {
		return callbacks.Decision{}, nil
	}
	d := s.cb.Before(ctx, command, fields)
	if d.Action == callbacks.Allow {
		return d, nil
	}
	return d, callbacks.GroupVerdicts.Refusal(d)
}

// peekType reads a group's type without its op lock (before-callbacks run
// before the lock); ok is false when there is no such group, and the
// locked path then reports the error.
func (s *Service) peekType(gid string) (string, bool) {
	if ids.CheckGroupID(gid, false) != nil {
		return "", false
	}
	g, err := s.load(gid)
	if err != nil || g == nil {
		return "", false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.info.Type, !g.destroyed
}

// beforeCreate: Group.CallbackBeforeCreateGroup.
func (s *Service) beforeCreate(ctx context.Context, operator, owner string, q *CreateRequest) error {
	if !s.cb.Enabled(cbBeforeCreate) {
		return nil
	}
	members := make([]memberItem, 0, len(q.MemberList))
	for _, m := range q.MemberList {
		members = append(members, memberItem{Member_Account: m.Member_Account})
	}
	_, err := s.beforeVerdict(ctx, cbBeforeCreate, map[string]any{"Operator_Account": operator, "Owner_Account": owner,
		"Type": q.Type, "Name": q.Name, "CreateGroupNum": 0, "MemberList": members})
	return err
}

// beforeApply: Group.CallbackBeforeApplyJoinGroup.
func (s *Service) beforeApply(ctx context.Context, gid, requestor string) error {
	if !s.cb.Enabled(cbBeforeApply) || requestor == "" {
		return nil
	}
	typ, ok := s.peekType(gid)
	if !ok {
		return nil
	}
	_, err := s.beforeVerdict(ctx, cbBeforeApply, map[string]any{"GroupId": gid, "Type": typ, "Requestor_Account": requestor})
	return err
}

// beforeInvite: Group.CallbackBeforeInviteJoinGroup. It rejects the whole
// invitation, or returns the members the app refused (RefusedMembers_Account).
func (s *Service) beforeInvite(ctx context.Context, gid, operator string, members []string) (map[string]bool, error) {
	if !s.cb.Enabled(cbBeforeInvite) {
		return nil, nil
	}
	typ, ok := s.peekType(gid)
	if !ok {
		return nil, nil
	}
	d, err := s.beforeVerdict(ctx, cbBeforeInvite, map[string]any{"GroupId": gid, "Type": typ, "Operator_Account": operator,
		"DestinationMembers": memberItems(members)})
	if err != nil || d.Reply == nil {
		return nil, err
	}
	var rep struct{ RefusedMembers_Account []string }
	_ = json.Unmarshal(d.Reply, &rep)
	refused := map[string]bool{}
	for _, u := range rep.RefusedMembers_Account {
		refused[u] = true
	}
	return refused, nil
}

// afterCreate: Group.CallbackAfterCreateGroup (g.op held).
func (s *Service) afterCreate(ctx context.Context, g *group, operator string) {
	if !s.cb.Enabled(cbAfterCreate) {
		return
	}
	defined := g.info.AppDefinedData
	if defined == nil {
		defined = []wire.KVItem{}
	}
	s.cb.After(ctx, cbAfterCreate, map[string]any{"GroupId": g.info.GroupId, "Type": g.info.Type, "Name": g.info.Name,
		"Owner_Account": g.info.Owner_Account, "Operator_Account": operator, "MemberList": memberItems(g.memberIDs()),
		"UserDefinedDataList": defined})
}

// afterJoined: Group.CallbackAfterNewMemberJoin (JoinType Apply or
// Invited) and, when the group is now full, Group.CallbackAfterGroupFull.
// g.op held.
func (s *Service) afterJoined(ctx context.Context, g *group, joinType, operator string, uids []string) {
	if len(uids) == 0 {
		return
	}
	g.mu.RLock()
	gid, typ, full := g.info.GroupId, g.info.Type, len(g.members) >= g.info.MaxMemberNum
	g.mu.RUnlock()
	s.cb.After(ctx, cbNewMember, map[string]any{"GroupId": gid, "Type": typ, "JoinType": joinType,
		"Operator_Account": operator, "NewMemberList": memberItems(uids)})
	if full {
		s.cb.After(ctx, cbFull, map[string]any{"GroupId": gid})
	}
}

// afterExit: Group.CallbackAfterMemberExit (g.op held).
func (s *Service) afterExit(ctx context.Context, g *group, tipType, operator string, uids []string) {
	exit := "Quit"
	if tipType == tipMemberKicked {
		exit = "Kicked"
	}
	s.cb.After(ctx, cbMemberExit, map[string]any{"GroupId": g.info.GroupId, "Type": g.info.Type, "ExitType": exit,
		"Operator_Account": operator, "ExitMemberList": memberItems(uids)})
}

// afterDestroyed: Group.CallbackAfterGroupDestroyed.
func (s *Service) afterDestroyed(ctx context.Context, info groupInfo, members []string) {
	s.cb.After(ctx, cbDestroyed, map[string]any{"GroupId": info.GroupId, "Type": info.Type,
		"Owner_Account": info.Owner_Account, "Name": info.Name, "MemberList": memberItems(members)})
}

// afterInfoChanged: Group.CallbackAfterGroupInfoChanged, when Name,
// Introduction, Notification or FaceUrl changed (only those are sent).
func (s *Service) afterInfoChanged(ctx context.Context, gid, typ, operator string, changed *wire.GroupInfoChange) {
	fields := map[string]any{"GroupId": gid, "Type": typ, "Operator_Account": operator}
	n := 0
	for _, f := range []struct {
		name string
		v    *string
	}{{"Name", changed.Name}, {"Introduction", changed.Introduction}, {"Notification", changed.Notification}, {"FaceUrl", changed.FaceUrl}} {
		if f.v != nil {
			fields[f.name] = *f.v
			n++
		}
	}
	if n > 0 {
		s.cb.After(ctx, cbInfoChanged, fields)
	}
}

// recalledSeq is one MsgSeqList item of Group.CallbackAfterRecallMsg.
type recalledSeq struct {
	MsgSeq uint64
}

// afterRecall: Group.CallbackAfterRecallMsg.
func (s *Service) afterRecall(ctx context.Context, gid, typ, operator string, seq uint64) {
	s.cb.After(ctx, cbRecall, map[string]any{"GroupId": gid, "Type": typ, "Operator_Account": operator,
		"MsgSeqList": []recalledSeq{{MsgSeq: seq}}, "TopicId": ""})
}
