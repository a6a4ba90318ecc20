package broker

import (
	"context"
	"strconv"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// muteKey keeps a mute across leaving and rejoining (Tencent: the mute survives).
func muteKey(gid, uid string) string { return "gx/" + gid + "/" + uid }

// applyMembers updates g's in-memory state after a committed change.
// Callers hold g.op: op -> mu.
func (g *group) apply(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn()
}

// tip builds a groupChange.build for a tip.
func tipBuilder(t wire.GroupTip) func(uint64, time.Time) any {
	return func(seq uint64, now time.Time) any {
		t.MsgSeq, t.MsgTime = seq, now.Unix()
		return t
	}
}

type modifyReq struct {
	GroupId         string
	Name            *string
	Introduction    *string
	Notification    *string
	FaceUrl         *string
	MaxMemberNum    *int
	ApplyJoinOption *string
	AppDefinedData  []wire.KVItem
	MuteAllMember   *string
}

// reqGroupModify changes the group profile; who may depends on the type.
func (b *Broker) reqGroupModify(ctx context.Context, r *reqCtx) (any, error) {
	var q modifyReq
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	return nil, b.modifyGroup(ctx, r, q)
}

func (b *Broker) modifyGroup(ctx context.Context, r *reqCtx, q modifyReq) error {
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return err
	}
	defer g.op.Unlock()
	role := g.role(r.user)
	info := g.info
	changed := &wire.GroupInfoChange{}
	setText := func(field string, dst *string, v *string, max int, note **string) error {
		if v == nil {
			return nil
		}
		if err := checkText(field, *v, max); err != nil {
			return err
		}
		if field == "Name" && *v == "" {
			return badParams("Name must not be empty")
		}
		*dst = *v
		*note = v
		return nil
	}
	if q.Name != nil || q.Introduction != nil || q.Notification != nil || q.FaceUrl != nil || q.MaxMemberNum != nil ||
		q.ApplyJoinOption != nil || q.AppDefinedData != nil {
		if !r.admin && !g.policy.canEdit(role) {
			return noPermission("%s may not edit this %s group", r.user, g.info.Type)
		}
	}
	for _, f := range []error{
		setText("Name", &info.Name, q.Name, maxGroupName, &changed.Name),
		setText("Introduction", &info.Introduction, q.Introduction, maxGroupIntro, &changed.Introduction),
		setText("Notification", &info.Notification, q.Notification, maxGroupNotice, &changed.Notification),
		setText("FaceUrl", &info.FaceUrl, q.FaceUrl, maxGroupFace, &changed.FaceUrl),
	} {
		if f != nil {
			return f
		}
	}
	if q.MaxMemberNum != nil {
		if *q.MaxMemberNum < len(g.members) || *q.MaxMemberNum > g.policy.MaxMembers || *q.MaxMemberNum < 1 {
			return badParams("MaxMemberNum must be between the member count %d and %d", len(g.members), g.policy.MaxMembers)
		}
		info.MaxMemberNum = *q.MaxMemberNum
		changed.MaxMemberNum = q.MaxMemberNum
	}
	if q.ApplyJoinOption != nil {
		if !applyOptions[*q.ApplyJoinOption] {
			return badParams("ApplyJoinOption must be FreeAccess, NeedPermission or DisableApply")
		}
		info.ApplyJoinOption = *q.ApplyJoinOption
		changed.ApplyJoinOption = q.ApplyJoinOption
	}
	if q.AppDefinedData != nil {
		if err := checkDefined("AppDefinedData", q.AppDefinedData, maxGroupDefined, maxGroupDefinedVal); err != nil {
			return err
		}
		info.AppDefinedData = mergeDefined(info.AppDefinedData, q.AppDefinedData)
		if len(info.AppDefinedData) > maxGroupDefined {
			return badParams("AppDefinedData has more than %d keys", maxGroupDefined)
		}
		changed.AppDefinedData = &info.AppDefinedData
	}
	if q.MuteAllMember != nil {
		if *q.MuteAllMember != "On" && *q.MuteAllMember != "Off" {
			return badParams("MuteAllMember must be On or Off")
		}
		// Work groups have no mute at all (Tencent), not even for the app admin.
		if g.policy.Kind == kindPrivate || (!r.admin && !g.policy.isManager(role)) {
			return noPermission("%s may not mute this %s group", r.user, g.info.Type)
		}
		info.MuteAllMember = *q.MuteAllMember
		changed.MuteAllMember = q.MuteAllMember
	}
	if changed.Empty() {
		return nil
	}
	info.InfoSeq++
	info.LastInfoTime = time.Now().Unix()
	if _, _, err := b.commitGroupChange(ctx, g, groupChange{
		sets: map[string][]byte{groupKey(q.GroupId): mustJSON(info)}, eventName: wire.EventGroupTip, userCopies: b.userCopiesFor(g),
		build: tipBuilder(wire.GroupTip{GroupId: q.GroupId, TipType: tipInfoChanged, Operator_Account: r.user, Changed: changed}),
	}); err != nil {
		return err
	}
	g.apply(func() { g.info = info })
	b.afterGroupInfoChanged(q.GroupId, info.Type, r.user, changed)
	return nil
}

// reqGroupMuteAll is modify with only MuteAllMember.
func (b *Broker) reqGroupMuteAll(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId, MuteAllMember string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	return nil, b.modifyGroup(ctx, r, modifyReq{GroupId: q.GroupId, MuteAllMember: &q.MuteAllMember})
}

// addMembers commits new members (join, approval, invite): checks size and
// per-user limits, restores kept mutes, and emits one MemberJoin tip.
func (b *Broker) addMembers(ctx context.Context, g *group, operator string, uids []string, extraSets map[string][]byte, extraDeletes []string) error {
	gid := g.info.GroupId
	if len(g.members)+len(uids) > g.info.MaxMemberNum {
		return imerr.GroupFull.New("group %s is full (%d members)", gid, g.info.MaxMemberNum)
	}
	head := g.memSeq
	if g.policy.stored() {
		p, err := b.store.Head(groupStream(gid))
		if err != nil {
			return err
		}
		head = p.Seq
	}
	now := time.Now().Unix()
	sets := map[string][]byte{}
	for k, v := range extraSets {
		sets[k] = v
	}
	deletes := append([]string(nil), extraDeletes...)
	added := make([]*member, 0, len(uids))
	for _, uid := range uids {
		if err := b.checkJoinLimit(uid); err != nil {
			return err
		}
		m := &member{Member_Account: uid, Role: roleMember, JoinTime: now, JoinSeq: head}
		if v, ok, _ := b.store.Get(muteKey(gid, uid)); ok {
			if until, err := strconv.ParseInt(string(v), 10, 64); err == nil && until > now {
				m.MuteUntil = until
			}
			deletes = append(deletes, muteKey(gid, uid))
		}
		sets[memberKey(gid, uid)] = mustJSON(m)
		sets[joinedKey(uid, gid)] = []byte(g.info.Type)
		// A pending application ends with joining, however it happened
		// (free join after the option changed, invitation): it used to stay
		// listed, and handling it later was a no-op that left the record.
		if _, ok := g.apps[uid]; ok {
			deletes = append(deletes, applicationKey(gid, uid))
		}
		added = append(added, m)
	}
	// The new members get the tip on their streams too (extra copies). A
	// busy live room announces them later, merged (grouptips.go): then they
	// get a private copy now.
	if err := b.commitMemberChange(ctx, g, gid, tipMemberJoin, operator, uids, sets, deletes); err != nil {
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

// reqGroupJoin joins or applies, per type: Work groups are invite-only;
// Public groups follow ApplyJoinOption; Meeting and live rooms are free.
func (b *Broker) reqGroupJoin(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId, ApplyMsg string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if err := checkText("ApplyMsg", q.ApplyMsg, 300); err != nil {
		return nil, err
	}
	if err := b.beforeApplyJoin(ctx, q.GroupId, r.user); err != nil { // before the group's lock
		return nil, err
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if r.user == "" {
		return nil, noPermission("guests cannot join")
	}
	if g.role(r.user) != "" {
		return nil, imerr.GroupAlreadyMember.New("%s is already a member", r.user)
	}
	switch {
	case g.policy.Kind == kindPrivate:
		return nil, noPermission("Work groups are joined by invitation only")
	case g.policy.Kind == kindPublic && g.info.ApplyJoinOption == "DisableApply":
		return nil, noPermission("this group does not take applications")
	case g.policy.Kind == kindPublic && g.info.ApplyJoinOption == "NeedPermission" && !r.admin:
		if len(g.members) >= g.info.MaxMemberNum {
			return nil, imerr.GroupFull.New("group %s is full", q.GroupId)
		}
		app := &application{Applicant_Account: r.user, ApplyMsg: q.ApplyMsg, ApplyTime: time.Now().Unix()}
		if _, err := b.store.Commit(ctx, storage.Batch{Sets: map[string][]byte{applicationKey(q.GroupId, r.user): mustJSON(app)}}); err != nil {
			return nil, err
		}
		g.apply(func() { g.apps[r.user] = app })
		var managers []string
		for uid, m := range g.members {
			if g.policy.isManager(m.Role) {
				managers = append(managers, uid)
			}
		}
		if err := b.notifyUsers(ctx, managers, wire.GroupTip{GroupId: q.GroupId, TipType: tipJoinApplication, Operator_Account: r.user, ApplyMsg: q.ApplyMsg}); err != nil {
			return nil, err
		}
		return map[string]any{"GroupId": q.GroupId, "JoinResult": "Pending"}, nil
	}
	if err := b.addMembers(ctx, g, r.user, []string{r.user}, nil, nil); err != nil {
		return nil, err
	}
	b.afterMembersJoined(g, "Apply", r.user, []string{r.user})
	return map[string]any{"GroupId": q.GroupId, "JoinResult": "Joined"}, nil
}

// reqGroupApplications lists pending applications, for owner, admins and the app admin.
func (b *Broker) reqGroupApplications(_ context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !r.admin && !g.policy.isManager(g.role(r.user)) {
		return nil, noPermission("only the owner and admins see applications")
	}
	list := []*application{}
	for _, a := range g.apps {
		list = append(list, a)
	}
	return map[string]any{"GroupId": q.GroupId, "ApplicationList": list}, nil
}

// reqGroupHandleApplication approves or rejects an application.
func (b *Broker) reqGroupHandleApplication(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId, Applicant_Account, HandleResult string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.HandleResult != "Agree" && q.HandleResult != "Reject" {
		return nil, badParams("HandleResult must be Agree or Reject")
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !r.admin && !g.policy.isManager(g.role(r.user)) {
		return nil, noPermission("only the owner and admins handle applications")
	}
	if _, ok := g.apps[q.Applicant_Account]; !ok {
		return nil, badParams("no pending application from %q", q.Applicant_Account)
	}
	key := applicationKey(q.GroupId, q.Applicant_Account)
	if q.HandleResult == "Agree" {
		if g.role(q.Applicant_Account) == "" {
			if err := b.addMembers(ctx, g, r.user, []string{q.Applicant_Account}, nil, []string{key}); err != nil {
				return nil, err
			}
			b.afterMembersJoined(g, "Apply", r.user, []string{q.Applicant_Account})
		}
	} else if _, err := b.store.Commit(ctx, storage.Batch{Deletes: []string{key}}); err != nil {
		return nil, err
	}
	g.apply(func() { delete(g.apps, q.Applicant_Account) })
	if err := b.notifyUsers(ctx, []string{q.Applicant_Account}, wire.GroupTip{GroupId: q.GroupId, TipType: tipApplicationHandled, Operator_Account: r.user, Result: q.HandleResult}); err != nil {
		return nil, err
	}
	return nil, nil
}

// reqGroupInvite adds members directly: Work group members, or the app
// admin in any type but AVChatRoom. Result per member: 0 failed, 1 added,
// 2 already a member.
func (b *Broker) reqGroupInvite(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId    string
		MemberList []struct{ Member_Account string }
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if len(q.MemberList) == 0 || len(q.MemberList) > b.cfg.Groups.MaxInitialMembers {
		return nil, badParams("MemberList must hold 1 to %d members", b.cfg.Groups.MaxInitialMembers)
	}
	dest := make([]string, 0, len(q.MemberList))
	for _, m := range q.MemberList {
		dest = append(dest, m.Member_Account)
	}
	refused, err := b.beforeInvite(ctx, q.GroupId, r.user, dest) // before the group's lock
	if err != nil {
		return nil, err
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !g.policy.canInvite(g.role(r.user), r.admin) {
		return nil, noPermission("%s may not invite to this %s group", r.user, g.info.Type)
	}
	results := make([]map[string]any, 0, len(q.MemberList))
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
		results = append(results, map[string]any{"Member_Account": m.Member_Account, "Result": res})
	}
	if len(add) > 0 {
		if err := b.addMembers(ctx, g, r.user, add, nil, nil); err != nil {
			return nil, err
		}
		b.afterMembersJoined(g, "Invited", r.user, add)
	}
	return map[string]any{"GroupId": q.GroupId, "MemberList": results}, nil
}

// removeMembers commits members leaving (kick or quit): their records go,
// mutes are kept, everyone concerned gets the tip, and their live
// subscriptions to the group topic end at once.
func (b *Broker) removeMembers(ctx context.Context, g *group, operator, tipType string, uids []string, newOwner *string) error {
	gid := g.info.GroupId
	now := time.Now().Unix()
	sets := map[string][]byte{}
	var deletes []string
	for _, uid := range uids {
		deletes = append(deletes, memberKey(gid, uid), joinedKey(uid, gid))
		if m := g.members[uid]; m != nil && m.MuteUntil > now {
			sets[muteKey(gid, uid)] = strconv.AppendInt(nil, m.MuteUntil, 10)
		}
	}
	info := g.info
	if newOwner != nil {
		info.Owner_Account = *newOwner
		sets[groupKey(gid)] = mustJSON(info)
	}
	// The leavers are members until the commit, so they get the tip too.
	// A busy live room announces a quit later, merged (grouptips.go): then
	// the leaver gets a private copy now.
	if err := b.commitMemberChange(ctx, g, gid, tipType, operator, uids, sets, deletes); err != nil {
		return err
	}
	g.apply(func() {
		g.info = info
		for _, uid := range uids {
			delete(g.members, uid)
		}
	})
	b.dropGroupSubscriptions(gid, uids...)
	b.afterMembersExit(g, tipType, operator, uids)
	return nil
}

// reqGroupKick removes members: owners kick anyone but themselves, admins
// only ordinary members; AVChatRoom has no kick (mute instead).
func (b *Broker) reqGroupKick(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId             string
		MemberToDel_Account []string
		Reason              string
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if len(q.MemberToDel_Account) == 0 || len(q.MemberToDel_Account) > 500 {
		return nil, badParams("MemberToDel_Account must hold 1 to 500 members")
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	// The app admin kicks anyone but the owner, except in an AVChatRoom, which has no kick.
	if err := g.checkTargets(r, q.MemberToDel_Account, false, kindAVChatRoom, "kick"); err != nil {
		return nil, err
	}
	return nil, b.removeMembers(ctx, g, r.user, tipMemberKicked, dedupe(q.MemberToDel_Account), nil)
}

// reqGroupQuit leaves a group. Only a Work group's owner may leave (the
// group becomes ownerless); other owners get 10009.
func (b *Broker) reqGroupQuit(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	role := g.role(r.user)
	if role == "" {
		return nil, noPermission("%s is not a member", r.user)
	}
	var newOwner *string
	if role == roleOwner {
		if !g.policy.ownerMayQuit() {
			return nil, imerr.GroupOwnerQuit.New("the owner cannot quit a %s group: transfer or destroy it", g.info.Type)
		}
		none := ""
		newOwner = &none
	}
	return nil, b.removeMembers(ctx, g, r.user, tipMemberQuit, []string{r.user}, newOwner)
}

// memberUpdate commits one member record change with a tip.
func (b *Broker) memberUpdate(ctx context.Context, g *group, operator string, m member, tip wire.GroupTip, extraSets map[string][]byte) error {
	gid := g.info.GroupId
	sets := map[string][]byte{memberKey(gid, m.Member_Account): mustJSON(m)}
	for k, v := range extraSets {
		sets[k] = v
	}
	tip.GroupId, tip.Operator_Account = gid, operator
	if tip.MemberList == nil {
		tip.MemberList = []string{m.Member_Account}
	}
	if _, _, err := b.commitGroupChange(ctx, g, groupChange{
		sets: sets, eventName: wire.EventGroupTip, userCopies: b.userCopiesFor(g, tip.MemberList...), build: tipBuilder(tip),
	}); err != nil {
		return err
	}
	g.apply(func() { *g.members[m.Member_Account] = m })
	return nil
}

// reqGroupSetRole makes a member Admin or Member: the owner (or the app
// admin) only, in types that have admins.
func (b *Broker) reqGroupSetRole(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId, Member_Account, Role string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.Role != roleAdmin && q.Role != roleMember {
		return nil, badParams("Role must be Admin or Member")
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !g.policy.hasAdmins() {
		return nil, noPermission("%s groups have no admins", g.info.Type)
	}
	if !r.admin && g.role(r.user) != roleOwner {
		return nil, noPermission("only the owner sets roles")
	}
	target := g.role(q.Member_Account)
	if target == "" || target == roleOwner {
		return nil, badParams("%q is not a member whose role can change", q.Member_Account)
	}
	m := *g.members[q.Member_Account]
	m.Role = q.Role
	return nil, b.memberUpdate(ctx, g, r.user, m, wire.GroupTip{TipType: tipRoleChanged, Role: q.Role}, nil)
}

// reqGroupSetMember sets NameCard and app-defined member fields: one's own,
// or, for owner/admins, those of members below them.
func (b *Broker) reqGroupSetMember(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId, Member_Account string
		NameCard                *string
		AppMemberDefinedData    []wire.KVItem
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.Member_Account == "" {
		q.Member_Account = r.user
	}
	if q.NameCard != nil {
		if err := checkText("NameCard", *q.NameCard, maxNameCard); err != nil {
			return nil, err
		}
	}
	if err := checkDefined("AppMemberDefinedData", q.AppMemberDefinedData, maxMemberDefined, maxMemberDefinedVal); err != nil {
		return nil, err
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	target := g.role(q.Member_Account)
	if target == "" {
		return nil, badParams("%q is not a member", q.Member_Account)
	}
	if q.Member_Account != r.user && !r.admin && !g.policy.canRemove(g.role(r.user), target, false) &&
		!(g.policy.isManager(g.role(r.user)) && target == roleMember) {
		return nil, noPermission("%s may not change %s's member info", r.user, q.Member_Account)
	}
	m := *g.members[q.Member_Account]
	if q.NameCard != nil {
		m.NameCard = *q.NameCard
	}
	if q.AppMemberDefinedData != nil {
		m.AppMemberDefinedData = mergeDefined(m.AppMemberDefinedData, q.AppMemberDefinedData)
		if len(m.AppMemberDefinedData) > maxMemberDefined {
			return nil, badParams("AppMemberDefinedData has more than %d keys", maxMemberDefined)
		}
	}
	return nil, b.memberUpdate(ctx, g, r.user, m, wire.GroupTip{TipType: tipMemberInfo}, nil)
}

// reqGroupMute mutes members for MuteTime seconds (0 unmutes, 4294967295 is
// forever): owner over anyone, admins over members; none in Work groups.
func (b *Broker) reqGroupMute(ctx context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId         string
		Members_Account []string
		MuteTime        *int64
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.MuteTime == nil || *q.MuteTime < 0 || *q.MuteTime > muteForever {
		return nil, badParams("MuteTime must be 0 to 4294967295 seconds")
	}
	if len(q.Members_Account) == 0 || len(q.Members_Account) > 500 {
		return nil, badParams("Members_Account must hold 1 to 500 members")
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	// The app admin mutes anyone but the owner, except in Work groups,
	// which have no mute at all (Tencent forbid_send_msg: "Private: not
	// supported").
	if err := g.checkTargets(r, q.Members_Account, true, kindPrivate, "mute"); err != nil {
		return nil, err
	}
	until := int64(0)
	if *q.MuteTime == muteForever {
		until = 1<<62 - 1
	} else if *q.MuteTime > 0 {
		until = time.Now().Unix() + *q.MuteTime
	}
	sets := map[string][]byte{}
	updated := map[string]member{}
	for _, uid := range dedupe(q.Members_Account) {
		m := *g.members[uid]
		m.MuteUntil = until
		sets[memberKey(g.info.GroupId, uid)] = mustJSON(m)
		updated[uid] = m
	}
	members := dedupe(q.Members_Account)
	if _, _, err := b.commitGroupChange(ctx, g, groupChange{
		sets: sets, eventName: wire.EventGroupTip, userCopies: b.userCopiesFor(g, members...),
		build: tipBuilder(wire.GroupTip{GroupId: g.info.GroupId, TipType: tipMemberMuted, Operator_Account: r.user, MemberList: members, MuteTime: q.MuteTime}),
	}); err != nil {
		return nil, err
	}
	g.apply(func() {
		for uid, m := range updated {
			*g.members[uid] = m
		}
	})
	return nil, nil
}

// reqGroupTransfer hands ownership to a member; the old owner becomes a Member.
func (b *Broker) reqGroupTransfer(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId, NewOwner_Account string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !r.admin && g.role(r.user) != roleOwner {
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
	var oldOwner *member
	if old, ok := g.members[g.info.Owner_Account]; ok {
		o := *old
		o.Role = roleMember
		oldOwner = &o
		sets[memberKey(gid, o.Member_Account)] = mustJSON(o)
	}
	if _, _, err := b.commitGroupChange(ctx, g, groupChange{
		sets: sets, eventName: wire.EventGroupTip, userCopies: b.userCopiesFor(g, q.NewOwner_Account),
		build: tipBuilder(wire.GroupTip{GroupId: gid, TipType: tipOwnerChanged, Operator_Account: r.user, NewOwner_Account: q.NewOwner_Account}),
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
	return nil, nil
}

// reqGroupDestroy disbands a group: Work groups by the app admin only,
// others by the owner or the app admin. Every member is told on their user
// stream; the group's history is deleted.
func (b *Broker) reqGroupDestroy(ctx context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupId string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !r.admin && (!g.policy.ownerMayDestroy() || g.role(r.user) != roleOwner) {
		return nil, noPermission("%s may not destroy this %s group", r.user, g.info.Type)
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
	kept, err := b.store.Scan(muteKey(gid, ""), "", 1<<20)
	if err != nil {
		return nil, err
	}
	for _, kv := range kept {
		deletes = append(deletes, kv.Name)
	}
	tip := wire.GroupTip{GroupId: gid, TipType: tipDestroyed, Operator_Account: r.user, Type: g.info.Type}
	tip.MsgTime = time.Now().Unix()
	payload, err := wire.EncodeEvent(wire.EventGroupTip, tip)
	if err != nil {
		return nil, err
	}
	batch := storage.Batch{Deletes: deletes}
	batch.Drops = []string{groupStream(gid)}
	for _, uid := range members {
		batch.Appends = append(batch.Appends, storage.Append{Stream: userStream(uid), Payload: payload})
	}
	if _, err := b.store.Commit(ctx, batch); err != nil {
		return nil, err
	}
	b.groups.forget(gid, g)
	b.dropGroupSubscriptions(gid)
	b.afterGroupDestroyed(g.info, members)
	return nil, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// checkTargets checks that every target is a member r may kick (mute=false)
// or mute: by the type's role rules, or as the app admin for anyone but the
// owner in types other than noAdmin (where the action does not exist).
func (g *group) checkTargets(r *reqCtx, uids []string, mute bool, noAdmin groupKind, verb string) error {
	actor := g.role(r.user)
	for _, uid := range uids {
		target := g.role(uid)
		if target == "" {
			return badParams("%q is not a member", uid)
		}
		if !(r.admin && target != roleOwner && g.policy.Kind != noAdmin) && !g.policy.canRemove(actor, target, mute) {
			return noPermission("%s may not %s %s in this %s group", r.user, verb, uid, g.info.Type)
		}
	}
	return nil
}
