package broker

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Field limits (tencent-im.md §6).
const (
	maxGroupName        = 30
	maxGroupIntro       = 240
	maxGroupNotice      = 300
	maxGroupFace        = 100
	maxGroupDefined     = 10
	maxGroupDefinedVal  = 512
	maxMemberDefined    = 5
	maxMemberDefinedVal = 64
	maxDefinedKey       = 16
	maxNameCard         = 50
	muteForever         = 4294967295
)

var applyOptions = map[string]bool{"FreeAccess": true, "NeedPermission": true, "DisableApply": true}

func badParams(format string, args ...any) error {
	return imerr.GroupBadParams.New(format, args...)
}

func noPermission(format string, args ...any) error {
	return imerr.GroupNoPermission.New(format, args...)
}

func checkText(field, v string, max int) error {
	if len(v) > max || !utf8.ValidString(v) {
		return badParams("%s must be valid UTF-8 of at most %d bytes", field, max)
	}
	return nil
}

// checkDefined validates app-defined fields: keys [A-Za-z0-9_] of at most 16
// bytes, bounded values and count.
func checkDefined(field string, items []wire.KVItem, maxItems, maxVal int) error {
	if len(items) > maxItems {
		return badParams("%s has more than %d keys", field, maxItems)
	}
	for _, it := range items {
		if it.Key == "" || len(it.Key) > maxDefinedKey {
			return badParams("%s key %q must be 1 to %d bytes", field, it.Key, maxDefinedKey)
		}
		for _, c := range it.Key {
			if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return badParams("%s key %q may hold only [A-Za-z0-9_]", field, it.Key)
			}
		}
		if err := checkText(field+"."+it.Key, it.Value, maxVal); err != nil {
			return err
		}
	}
	return nil
}

// mergeDefined applies updates to app-defined fields; an empty value deletes a key.
func mergeDefined(cur, upd []wire.KVItem) []wire.KVItem {
	out := append([]wire.KVItem(nil), cur...)
	for _, u := range upd {
		i := 0
		for ; i < len(out) && out[i].Key != u.Key; i++ {
		}
		switch {
		case i < len(out) && u.Value == "":
			out = append(out[:i], out[i+1:]...)
		case i < len(out):
			out[i].Value = u.Value
		case u.Value != "":
			out = append(out, u)
		}
	}
	return out
}

// lockGroup loads a group and takes its op lock; the caller unlocks g.op.
func (b *Broker) lockGroup(gid string) (*group, error) {
	if err := ids.CheckGroupID(gid, false); err != nil {
		return nil, imerr.GroupInvalid.New("invalid GroupId: %v", err)
	}
	g, err := b.loadGroup(gid)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	g.op.Lock()
	if g.destroyed {
		g.op.Unlock()
		return nil, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	return g, nil
}

type createReq struct {
	GroupId         string
	Type            string
	Name            string
	Introduction    string
	Notification    string
	FaceUrl         string
	MaxMemberCount  int
	ApplyJoinOption string
	AppDefinedData  []wire.KVItem
	Owner_Account   string // app admin only: create for another owner
	MemberList      []struct {
		Member_Account string
		Role           string
	}
}

// reqGroupCreate creates a group; the creator becomes its owner. [IM-GROUP-OPS]
func (b *Broker) reqGroupCreate(ctx context.Context, r *reqCtx) (any, error) {
	var q createReq
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	pol := b.policies[q.Type]
	if pol == nil {
		return nil, badParams("unknown group Type %q", q.Type)
	}
	for _, c := range []struct {
		f, v string
		max  int
	}{{"Name", q.Name, maxGroupName}, {"Introduction", q.Introduction, maxGroupIntro}, {"Notification", q.Notification, maxGroupNotice}, {"FaceUrl", q.FaceUrl, maxGroupFace}} {
		if err := checkText(c.f, c.v, c.max); err != nil {
			return nil, err
		}
	}
	if q.Name == "" {
		return nil, badParams("Name is required")
	}
	if err := checkDefined("AppDefinedData", q.AppDefinedData, maxGroupDefined, maxGroupDefinedVal); err != nil {
		return nil, err
	}
	maxMembers := pol.MaxMembers
	if q.MaxMemberCount < 0 || q.MaxMemberCount > pol.MaxMembers {
		return nil, badParams("MaxMemberCount must be 0 to %d for %s", pol.MaxMembers, q.Type)
	} else if q.MaxMemberCount > 0 {
		maxMembers = q.MaxMemberCount
	}
	if q.ApplyJoinOption == "" {
		q.ApplyJoinOption = "NeedPermission"
	}
	if !applyOptions[q.ApplyJoinOption] {
		return nil, badParams("ApplyJoinOption must be FreeAccess, NeedPermission or DisableApply")
	}
	owner := r.user
	if q.Owner_Account != "" && r.admin {
		if ids.CheckUserID(q.Owner_Account) != nil {
			return nil, badParams("invalid Owner_Account")
		}
		owner = q.Owner_Account
	}
	if len(q.MemberList) > b.cfg.Groups.MaxInitialMembers {
		return nil, badParams("MemberList holds at most %d members", b.cfg.Groups.MaxInitialMembers)
	}
	if len(q.MemberList) > 0 && pol.Kind == kindAVChatRoom {
		return nil, noPermission("AVChatRoom members join by themselves")
	}
	now := time.Now()
	g := &group{members: map[string]*member{}, apps: map[string]*application{}, policy: pol,
		memEpoch: uint64(now.UnixMilli()), sendRate: b.sendLimiter()}
	g.info = groupInfo{Type: q.Type, Name: q.Name, Introduction: q.Introduction, Notification: q.Notification,
		FaceUrl: q.FaceUrl, Owner_Account: owner, CreateTime: now.Unix(), LastInfoTime: now.Unix(),
		MaxMemberNum: maxMembers, ApplyJoinOption: q.ApplyJoinOption, MuteAllMember: "Off", AppDefinedData: q.AppDefinedData}
	g.members[owner] = &member{Member_Account: owner, Role: roleOwner, JoinTime: now.Unix()}
	for _, m := range q.MemberList {
		if ids.CheckUserID(m.Member_Account) != nil {
			return nil, badParams("invalid Member_Account %q", m.Member_Account)
		}
		role := roleMember
		switch {
		case m.Role == "Admin" && pol.hasAdmins():
			role = roleAdmin
		case m.Role != "" && m.Role != roleMember:
			return nil, badParams("Role of %s must be Member%s", m.Member_Account, map[bool]string{true: " or Admin"}[pol.hasAdmins()])
		}
		if m.Member_Account != owner {
			g.members[m.Member_Account] = &member{Member_Account: m.Member_Account, Role: role, JoinTime: now.Unix()}
		}
	}
	if len(g.members) > maxMembers {
		return nil, imerr.GroupFull.New("%d members exceed the limit of %d", len(g.members), maxMembers)
	}
	for uid := range g.members {
		if err := b.checkJoinLimit(uid); err != nil {
			return nil, err
		}
	}
	if err := b.beforeCreateGroup(ctx, r.user, owner, &q); err != nil { // before claimGroupID takes any lock
		return nil, err
	}
	gid, err := b.claimGroupID(q.GroupId, g)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	g.info.GroupId = gid
	sets := map[string][]byte{groupKey(gid): mustJSON(g.info)}
	var memberIDs []string
	for uid, m := range g.members {
		sets[memberKey(gid, uid)] = mustJSON(m)
		sets[joinedKey(uid, gid)] = []byte(q.Type)
		memberIDs = append(memberIDs, uid)
	}
	_, _, err = b.commitGroupChange(ctx, g, groupChange{
		sets: sets, eventName: wire.EventGroupTip, userCopies: b.userCopiesFor(g, memberIDs...),
		build: func(seq uint64, now time.Time) any {
			return wire.GroupTip{GroupId: gid, MsgSeq: seq, MsgTime: now.Unix(), TipType: tipCreated, Operator_Account: r.user, MemberList: g.memberIDs(), Type: q.Type}
		},
	})
	if err != nil {
		b.groups.forget(gid, g)
		return nil, err
	}
	b.afterCreateGroup(g, r.user)
	return map[string]any{"GroupId": gid, "Type": q.Type}, nil
}

// claimGroupID reserves a custom or generated id for g, returning with g.op
// held and g registered, so nobody else can create or use it meanwhile.
func (b *Broker) claimGroupID(custom string, g *group) (_ string, err error) {
	// Lock order g.op -> groups.mu (destroy holds op and takes the registry
	// lock): g is not registered yet, so taking its op first never waits.
	g.op.Lock()
	defer func() {
		if err != nil {
			g.op.Unlock()
		}
	}()
	b.groups.mu.Lock()
	defer b.groups.mu.Unlock()
	free := func(gid string) (bool, error) {
		if _, ok := b.groups.loaded[gid]; ok {
			return false, nil
		}
		_, exists, err := b.store.Get(groupKey(gid))
		return !exists, err
	}
	gid := custom
	if custom != "" {
		if err := ids.CheckGroupID(custom, true); err != nil {
			return "", imerr.GroupInvalid.New("invalid GroupId: %v", err)
		}
		ok, err := free(custom)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", imerr.GroupIDTaken.New("GroupId %s is taken", custom)
		}
	} else {
		for {
			var rnd [8]byte
			_, _ = rand.Read(rnd[:])
			gid = ids.GeneratedGroupPrefix + strings.ToUpper(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(rnd[:]))
			if ok, err := free(gid); err != nil {
				return "", err
			} else if ok {
				break
			}
		}
	}
	b.groups.loaded[gid] = g
	return gid, nil
}

// forget removes a group from the registry (failed create, destroy).
// Callers hold g.op: lock order g.op -> groups.mu -> g.mu.
func (gs *groups) forget(gid string, g *group) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.loaded[gid] == g {
		delete(gs.loaded, gid)
	}
	g.mu.Lock()
	g.destroyed = true
	g.mu.Unlock()
}

// checkJoinLimit refuses users already in max_joined_per_user groups (10037).
func (b *Broker) checkJoinLimit(uid string) error {
	kvs, err := b.store.Scan(joinedPrefix(uid), "", b.cfg.Groups.MaxJoinedPerUser)
	if err != nil {
		return err
	}
	if len(kvs) >= b.cfg.Groups.MaxJoinedPerUser {
		return imerr.GroupTooManyJoined.New("%s is already in %d groups", uid, len(kvs))
	}
	return nil
}

// groupView is a group's info as replies show it.
func (b *Broker) groupView(g *group) map[string]any {
	g.mu.RLock() // g.mu -> store: a Pebble read of the head, never a commit
	defer g.mu.RUnlock()
	head := g.memSeq
	if g.policy.stored() {
		if p, err := b.store.Head(groupStream(g.info.GroupId)); err == nil {
			head = p.Seq
		}
	}
	diff := "write"
	if g.policy.readDiffusion(len(g.members), b.cfg.Groups.ReadDiffusionAbove) {
		diff = "read"
	}
	return map[string]any{
		"GroupId": g.info.GroupId, "Type": g.info.Type, "Name": g.info.Name, "Introduction": g.info.Introduction,
		"Notification": g.info.Notification, "FaceUrl": g.info.FaceUrl, "Owner_Account": g.info.Owner_Account,
		"CreateTime": g.info.CreateTime, "InfoSeq": g.info.InfoSeq, "LastInfoTime": g.info.LastInfoTime,
		"LastMsgTime": g.info.LastMsgTime, "NextMsgSeq": head + 1, "MemberNum": len(g.members),
		"MaxMemberNum": g.info.MaxMemberNum, "ApplyJoinOption": g.info.ApplyJoinOption,
		"MuteAllMember": g.info.MuteAllMember, "AppDefinedData": nonNil(g.info.AppDefinedData),
		"Diffusion": diff, "HistoryBeforeJoin": g.policy.HistoryBeforeJoin,
	}
}

func nonNil(items []wire.KVItem) []wire.KVItem {
	if items == nil {
		return []wire.KVItem{}
	}
	return items
}

// reqGroupInfo returns the profiles of up to 50 groups. Members (and the
// app admin) see any group; others see all but Work groups.
func (b *Broker) reqGroupInfo(_ context.Context, r *reqCtx) (any, error) {
	var q struct{ GroupIdList []string }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if len(q.GroupIdList) == 0 || len(q.GroupIdList) > 50 {
		return nil, badParams("GroupIdList must hold 1 to 50 ids")
	}
	out := make([]map[string]any, 0, len(q.GroupIdList))
	for _, gid := range q.GroupIdList {
		item := map[string]any{"GroupId": gid}
		g, err := b.lockGroup(gid)
		if err != nil {
			e := imerr.As(err)
			item["ErrorCode"], item["ErrorInfo"] = e.Code, e.Info
			out = append(out, item)
			continue
		}
		visible := r.admin || g.role(r.user) != "" || g.policy.Kind != kindPrivate
		g.op.Unlock()
		if !visible {
			item["ErrorCode"], item["ErrorInfo"] = imerr.GroupNoPermission.Code, "not a member of this Work group"
		} else {
			item = b.groupView(g)
			item["ErrorCode"], item["ErrorInfo"] = 0, ""
		}
		out = append(out, item)
	}
	return map[string]any{"GroupInfo": out}, nil
}

// reqGroupMembers lists members, paged by Offset/Limit, for members and the app admin.
func (b *Broker) reqGroupMembers(_ context.Context, r *reqCtx) (any, error) {
	var q struct {
		GroupId       string
		Limit, Offset int
	}
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > b.cfg.Groups.MaxPageSize {
		q.Limit = b.cfg.Groups.MaxPageSize
	}
	if q.Offset < 0 {
		return nil, badParams("Offset must not be negative")
	}
	g, err := b.lockGroup(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !r.admin && g.role(r.user) == "" {
		return nil, noPermission("only members list members")
	}
	all := g.memberIDs()
	list := []*member{}
	for i := q.Offset; i < len(all) && len(list) < q.Limit; i++ {
		list = append(list, g.members[all[i]])
	}
	next := q.Offset + len(list)
	if next >= len(all) {
		next = 0
	}
	return map[string]any{"GroupId": q.GroupId, "MemberNum": len(all), "MemberList": list, "Next": next}, nil
}

// reqGroupJoined lists the caller's groups with their own member info.
func (b *Broker) reqGroupJoined(_ context.Context, r *reqCtx) (any, error) {
	var q struct{ Limit, Offset int }
	if err := r.decode(&q, imerr.GroupBadParams); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > b.cfg.Groups.MaxPageSize {
		q.Limit = b.cfg.Groups.MaxPageSize
	}
	kvs, err := b.store.Scan(joinedPrefix(r.user), "", b.cfg.Groups.MaxJoinedPerUser+1)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for i := max(q.Offset, 0); i < len(kvs) && len(list) < q.Limit; i++ {
		gid := strings.TrimPrefix(kvs[i].Name, joinedPrefix(r.user))
		g, err := b.loadGroup(gid)
		if err != nil || g == nil {
			continue
		}
		g.mu.RLock()
		m := g.members[r.user]
		item := map[string]any{"GroupId": gid, "Type": g.info.Type, "Name": g.info.Name, "FaceUrl": g.info.FaceUrl}
		if m != nil {
			item["SelfInfo"] = map[string]any{"Role": m.Role, "JoinTime": m.JoinTime, "NameCard": m.NameCard, "MuteUntil": m.MuteUntil}
		}
		g.mu.RUnlock()
		list = append(list, item)
	}
	return map[string]any{"TotalCount": len(kvs), "GroupIdList": list}, nil
}
