package groups

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imbroker/imbroker/broker/ops"
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

// CreateRequest is group.create (Tencent create_group).
type CreateRequest struct {
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
	MemberList      []InitialMember
}

// InitialMember is one member of a new group.
type InitialMember struct {
	Member_Account string
	Role           string
}

// CreateResponse answers group.create.
type CreateResponse struct {
	GroupId string
	Type    string
}

// Create creates a group; the creator becomes its owner, or Owner_Account
// when the app admin names one. [IM-GROUP-OPS]
func (s *Service) Create(ctx context.Context, a ops.Actor, q *CreateRequest) (*CreateResponse, error) {
	return s.create(ctx, a, q, 0, false)
}

// create creates a group, with createTime as its CreateTime (imports) or now.
func (s *Service) create(ctx context.Context, a ops.Actor, q *CreateRequest, createTime int64, imported bool) (*CreateResponse, error) {
	pol := s.policies[q.Type]
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
	applyOption := q.ApplyJoinOption
	if applyOption == "" {
		applyOption = "NeedPermission"
	}
	if !applyOptions[applyOption] {
		return nil, badParams("ApplyJoinOption must be FreeAccess, NeedPermission or DisableApply")
	}
	owner := a.User
	if q.Owner_Account != "" && a.Admin {
		if ids.CheckUserID(q.Owner_Account) != nil {
			return nil, badParams("invalid Owner_Account")
		}
		owner = q.Owner_Account
	}
	if len(q.MemberList) > s.cfg.MaxInitialMembers {
		return nil, badParams("MemberList holds at most %d members", s.cfg.MaxInitialMembers)
	}
	if len(q.MemberList) > 0 && pol.Kind == kindAVChatRoom {
		return nil, noPermission("AVChatRoom members join by themselves")
	}
	now := time.Now()
	if createTime <= 0 {
		createTime = now.Unix()
	}
	g := &group{members: map[string]*Member{}, apps: map[string]*Application{}, policy: pol,
		memEpoch: uint64(now.UnixMilli()), sendRate: s.sendLimiter()}
	g.info = groupInfo{Type: q.Type, Name: q.Name, Introduction: q.Introduction, Notification: q.Notification,
		FaceUrl: q.FaceUrl, Owner_Account: owner, CreateTime: createTime, LastInfoTime: now.Unix(),
		MaxMemberNum: maxMembers, ApplyJoinOption: applyOption, MuteAllMember: "Off", AppDefinedData: q.AppDefinedData}
	g.members[owner] = &Member{Member_Account: owner, Role: roleOwner, JoinTime: now.Unix()}
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
			g.members[m.Member_Account] = &Member{Member_Account: m.Member_Account, Role: role, JoinTime: now.Unix()}
		}
	}
	if len(g.members) > maxMembers {
		return nil, imerr.GroupFull.New("%d members exceed the limit of %d", len(g.members), maxMembers)
	}
	for uid := range g.members {
		if err := s.checkJoinLimit(uid); err != nil {
			return nil, err
		}
	}
	if err := s.beforeCreate(ctx, a.User, owner, q); err != nil { // before claimID takes any lock
		return nil, err
	}
	gid, err := s.claimID(q.GroupId, g, imported)
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
	_, _, err = s.commit(ctx, g, change{
		sets: sets, userCopies: s.userCopiesFor(g, memberIDs...),
		events: []event{tipEvent(wire.GroupTip{GroupId: gid, TipType: tipCreated, Operator_Account: a.User, MemberList: g.memberIDs(), Type: q.Type})},
	})
	if err != nil {
		s.reg.forget(gid, g)
		return nil, err
	}
	s.afterCreate(ctx, g, a.User)
	return &CreateResponse{GroupId: gid, Type: q.Type}, nil
}

// claimID reserves a custom or generated id for g, returning with g.op
// held and g registered, so nobody else can create or use it meanwhile.
func (s *Service) claimID(custom string, g *group, imported bool) (_ string, err error) {
	// Lock order g.op -> reg.mu (destroy holds op and takes the registry
	// lock): g is not registered yet, so taking its op first never waits.
	g.op.Lock()
	defer func() {
		if err != nil {
			g.op.Unlock()
		}
	}()
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	free := func(gid string) (bool, error) {
		if _, ok := s.reg.loaded[gid]; ok {
			return false, nil
		}
		_, exists, err := s.store.Get(groupKey(gid))
		if err != nil {
			return false, fmt.Errorf("look up group %s: %w", gid, err)
		}
		return !exists, nil
	}
	gid := custom
	if custom != "" {
		// An imported group keeps its id, a generated "@TGS#" one included
		// (a migration from Tencent); only new custom ids avoid "@TGS".
		if err := ids.CheckGroupID(custom, !imported); err != nil {
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
	s.reg.loaded[gid] = g
	return gid, nil
}

// checkJoinLimit refuses users already in max_joined_per_user groups (10037).
func (s *Service) checkJoinLimit(uid string) error {
	kvs, err := s.store.Scan(joinedPrefix(uid), "", s.cfg.MaxJoinedPerUser)
	if err != nil {
		return fmt.Errorf("count the groups of %s: %w", uid, err)
	}
	if len(kvs) >= s.cfg.MaxJoinedPerUser {
		return imerr.GroupTooManyJoined.New("%s is already in %d groups", uid, len(kvs))
	}
	return nil
}
