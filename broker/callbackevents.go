package broker

import (
	"context"
	"encoding/json"
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/internal/ids"
)

// Event callback commands (tencent-im.md §5; docs/callbacks.md "Event commands").
const (
	cbStateChange       = "State.StateChange"
	cbGroupBeforeCreate = "Group.CallbackBeforeCreateGroup"
	cbGroupAfterCreate  = "Group.CallbackAfterCreateGroup"
	cbGroupBeforeApply  = "Group.CallbackBeforeApplyJoinGroup"
	cbGroupBeforeInvite = "Group.CallbackBeforeInviteJoinGroup"
	cbGroupNewMember    = "Group.CallbackAfterNewMemberJoin"
	cbGroupMemberExit   = "Group.CallbackAfterMemberExit"
	cbGroupFull         = "Group.CallbackAfterGroupFull"
	cbGroupDestroyed    = "Group.CallbackAfterGroupDestroyed"
	cbGroupInfoChanged  = "Group.CallbackAfterGroupInfoChanged"
	cbGroupRecall       = "Group.CallbackAfterRecallMsg"
)

// beforeVerdict runs a before-callback that can only allow or reject (the
// group and relation commands), mapped to an error by verdicts.Refusal.
// Drop (2) is a send-only verdict and counts as a reject here.
func (b *Broker) beforeVerdict(ctx context.Context, command string, fields map[string]any, verdicts callbacks.Verdicts) (callbacks.Decision, error) {
	if !b.callbacks.Enabled(command) {
		return callbacks.Decision{}, nil
	}
	d := b.callbacks.Before(ctx, command, fields)
	if d.Action == callbacks.Allow {
		return d, nil
	}
	return d, verdicts.Refusal(d)
}

// peekGroupType reads a group's type without its op lock (before-callbacks
// run before the lock); ok is false when there is no such group, and the
// locked path then reports the error.
func (b *Broker) peekGroupType(gid string) (string, bool) {
	if ids.CheckGroupID(gid, false) != nil {
		return "", false
	}
	g, err := b.loadGroup(gid)
	if err != nil || g == nil {
		return "", false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.info.Type, !g.destroyed
}

func memberItems(uids []string) []map[string]any {
	out := make([]map[string]any, 0, len(uids))
	for _, u := range uids {
		out = append(out, map[string]any{"Member_Account": u})
	}
	return out
}

// beforeCreateGroup: Group.CallbackBeforeCreateGroup.
func (b *Broker) beforeCreateGroup(ctx context.Context, operator, owner string, q *createReq) error {
	if !b.callbacks.Enabled(cbGroupBeforeCreate) {
		return nil
	}
	members := make([]map[string]any, 0, len(q.MemberList))
	for _, m := range q.MemberList {
		members = append(members, map[string]any{"Member_Account": m.Member_Account})
	}
	_, err := b.beforeVerdict(ctx, cbGroupBeforeCreate, map[string]any{"Operator_Account": operator, "Owner_Account": owner,
		"Type": q.Type, "Name": q.Name, "CreateGroupNum": 0, "MemberList": members}, callbacks.GroupVerdicts)
	return err
}

// beforeApplyJoin: Group.CallbackBeforeApplyJoinGroup.
func (b *Broker) beforeApplyJoin(ctx context.Context, gid, requestor string) error {
	if !b.callbacks.Enabled(cbGroupBeforeApply) || requestor == "" {
		return nil
	}
	typ, ok := b.peekGroupType(gid)
	if !ok {
		return nil
	}
	_, err := b.beforeVerdict(ctx, cbGroupBeforeApply, map[string]any{"GroupId": gid, "Type": typ, "Requestor_Account": requestor},
		callbacks.GroupVerdicts)
	return err
}

// beforeInvite: Group.CallbackBeforeInviteJoinGroup. It rejects the whole
// invitation, or returns the members the app refused (RefusedMembers_Account).
func (b *Broker) beforeInvite(ctx context.Context, gid, operator string, members []string) (map[string]bool, error) {
	if !b.callbacks.Enabled(cbGroupBeforeInvite) {
		return nil, nil
	}
	typ, ok := b.peekGroupType(gid)
	if !ok {
		return nil, nil
	}
	d, err := b.beforeVerdict(ctx, cbGroupBeforeInvite, map[string]any{"GroupId": gid, "Type": typ, "Operator_Account": operator,
		"DestinationMembers": memberItems(members)}, callbacks.GroupVerdicts)
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

// --- after-callbacks (queued; never block) ---

// stateLogin / stateEnded: State.StateChange. Takeovers never reach
// SessionEnded (hooks/session), so they are not logouts.
func (b *Broker) stateLogin(cl *mqtt.Client) {
	b.stateChange(cl, "Login", "Register")
}

func (b *Broker) stateEnded(cl *mqtt.Client, err error) {
	action, reason := "Disconnect", "LinkClose"
	cause := cl.StopCause()
	switch {
	case isCode(err, packets.CodeDisconnect) || isCode(cause, packets.CodeDisconnect):
		action, reason = "Logout", "Unregister"
	case isCode(err, packets.ErrKeepAliveTimeout) || isCode(cause, packets.ErrKeepAliveTimeout):
		reason = "TimeOut"
	}
	b.stateChange(cl, action, reason)
}

func isCode(err error, c packets.Code) bool {
	var got packets.Code
	return err != nil && errors.As(err, &got) && got.Code == c.Code && got.Reason == c.Reason
}

func (b *Broker) stateChange(cl *mqtt.Client, action, reason string) {
	if cl.Net.Inline || !b.callbacks.Enabled(cbStateChange) {
		return
	}
	user := userOf(cl)
	if user == "" {
		return // guests have no state
	}
	b.callbacks.After(cbStateChange, map[string]any{
		"Info":         map[string]any{"Action": action, "To_Account": user, "Reason": reason},
		"KickedDevice": []any{},
		"ClientID":     cl.ID,
	})
}

// afterCreateGroup: Group.CallbackAfterCreateGroup (g.op held).
func (b *Broker) afterCreateGroup(g *group, operator string) {
	if !b.callbacks.Enabled(cbGroupAfterCreate) {
		return
	}
	b.callbacks.After(cbGroupAfterCreate, map[string]any{"GroupId": g.info.GroupId, "Type": g.info.Type, "Name": g.info.Name,
		"Owner_Account": g.info.Owner_Account, "Operator_Account": operator, "MemberList": memberItems(g.memberIDs()),
		"UserDefinedDataList": nonNil(g.info.AppDefinedData)})
}

// afterMembersJoined: Group.CallbackAfterNewMemberJoin (JoinType Apply or
// Invited) and, when the group is now full, Group.CallbackAfterGroupFull.
// g.op held.
func (b *Broker) afterMembersJoined(g *group, joinType, operator string, uids []string) {
	if len(uids) == 0 {
		return
	}
	g.mu.RLock()
	gid, typ, full := g.info.GroupId, g.info.Type, len(g.members) >= g.info.MaxMemberNum
	g.mu.RUnlock()
	b.callbacks.After(cbGroupNewMember, map[string]any{"GroupId": gid, "Type": typ, "JoinType": joinType,
		"Operator_Account": operator, "NewMemberList": memberItems(uids)})
	if full {
		b.callbacks.After(cbGroupFull, map[string]any{"GroupId": gid})
	}
}

// afterMembersExit: Group.CallbackAfterMemberExit (g.op held).
func (b *Broker) afterMembersExit(g *group, tipType, operator string, uids []string) {
	exit := "Quit"
	if tipType == tipMemberKicked {
		exit = "Kicked"
	}
	b.callbacks.After(cbGroupMemberExit, map[string]any{"GroupId": g.info.GroupId, "Type": g.info.Type, "ExitType": exit,
		"Operator_Account": operator, "ExitMemberList": memberItems(uids)})
}

// afterGroupDestroyed: Group.CallbackAfterGroupDestroyed.
func (b *Broker) afterGroupDestroyed(info groupInfo, members []string) {
	b.callbacks.After(cbGroupDestroyed, map[string]any{"GroupId": info.GroupId, "Type": info.Type,
		"Owner_Account": info.Owner_Account, "Name": info.Name, "MemberList": memberItems(members)})
}

// afterGroupInfoChanged: Group.CallbackAfterGroupInfoChanged, when Name,
// Introduction, Notification or FaceUrl changed (only those are sent).
func (b *Broker) afterGroupInfoChanged(gid, typ, operator string, changed *wire.GroupInfoChange) {
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
		b.callbacks.After(cbGroupInfoChanged, fields)
	}
}

// afterGroupRecall: Group.CallbackAfterRecallMsg.
func (b *Broker) afterGroupRecall(gid, typ, operator string, seq uint64) {
	b.callbacks.After(cbGroupRecall, map[string]any{"GroupId": gid, "Type": typ, "Operator_Account": operator,
		"MsgSeqList": []map[string]any{{"MsgSeq": seq}}, "TopicId": ""})
}
