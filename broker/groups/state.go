package groups

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// groupInfo is a group's stored profile (Tencent field names).
type groupInfo struct {
	GroupId         string        `json:"GroupId"`
	Type            string        `json:"Type"`
	Name            string        `json:"Name"`
	Introduction    string        `json:"Introduction"`
	Notification    string        `json:"Notification"`
	FaceUrl         string        `json:"FaceUrl"`
	Owner_Account   string        `json:"Owner_Account"`
	CreateTime      int64         `json:"CreateTime"`
	InfoSeq         uint64        `json:"InfoSeq"`
	LastInfoTime    int64         `json:"LastInfoTime"`
	LastMsgTime     int64         `json:"LastMsgTime"`
	MaxMemberNum    int           `json:"MaxMemberNum"`
	ApplyJoinOption string        `json:"ApplyJoinOption"`
	MuteAllMember   string        `json:"MuteAllMember"`
	AppDefinedData  []wire.KVItem `json:"AppDefinedData"`
}

// Member is one member's stored record, as group.members lists it.
type Member struct {
	Member_Account       string        `json:"Member_Account"`
	Role                 string        `json:"Role"`
	JoinTime             int64         `json:"JoinTime"`
	NameCard             string        `json:"NameCard"`
	MuteUntil            int64         `json:"MuteUntil"`
	AppMemberDefinedData []wire.KVItem `json:"AppMemberDefinedData"`
	JoinSeq              uint64        `json:"JoinSeq"`                   // group seq when joining: the history visibility line
	MsgFlag              string        `json:"MsgFlag,omitempty"`         // Tencent's receive option; "" = AcceptAndNotify (stored, not acted on)
	LastSendMsgTime      int64         `json:"LastSendMsgTime,omitempty"` // the member's last stored group message (Unix seconds)
}

// Application is a pending join request.
type Application struct {
	Applicant_Account string `json:"Applicant_Account"`
	ApplyMsg          string `json:"ApplyMsg"`
	ApplyTime         int64  `json:"ApplyTime"`
}

// group is a group's live state. op serializes every change and every
// message (so group seqs and membership checks are consistent); mu guards
// the fields for readers such as the delivery ACL, which must not wait for
// an fsync. Lock order: op, then mu; never two groups' op at once
// (docs/architecture.md, "Lock order").
type group struct {
	op sync.Mutex

	mu        sync.RWMutex
	info      groupInfo
	policy    *policy
	members   map[string]*Member
	apps      map[string]*Application
	destroyed bool

	// Live rooms are not stored: their seqs live in memory, and a restart
	// starts a new epoch (the history is gone).
	memEpoch, memSeq uint64

	sendRate *rate.Limiter // groups.rate_limit (sendLimiter)

	tips memberTips // live rooms: member tips waiting to be merged (under op)
}

// KV record names.
func groupKey(gid string) string            { return groupPrefix + gid }
func memberKey(gid, uid string) string      { return "gm/" + gid + "/" + uid }
func memberPrefix(gid string) string        { return "gm/" + gid + "/" }
func joinedKey(uid, gid string) string      { return "ug/" + uid + "/" + gid }
func joinedPrefix(uid string) string        { return "ug/" + uid + "/" }
func applicationKey(gid, uid string) string { return "ga/" + gid + "/" + uid }
func applicationPrefix(gid string) string   { return "ga/" + gid + "/" }
func muteKey(gid, uid string) string        { return "gx/" + gid + "/" + uid } // a mute kept across leaving and rejoining (Tencent: the mute survives)

// groupPrefix is every group's profile record.
const groupPrefix = "g/"

// registry is the loaded groups. Lookups take the read lock: the delivery
// ACL looks a group up for every copy it delivers (10,000 per message in a
// 10,000-member room), from every delivery worker at once.
type registry struct {
	mu     sync.RWMutex
	loaded map[string]*group
}

// load returns a group's state, loading it from the store on first use;
// nil when the group does not exist.
func (s *Service) load(gid string) (*group, error) {
	s.reg.mu.RLock()
	g, ok := s.reg.loaded[gid]
	s.reg.mu.RUnlock()
	if ok {
		return g, nil
	}
	s.reg.mu.Lock() // reg.mu -> store: the group is read under the write lock
	defer s.reg.mu.Unlock()
	if g, ok := s.reg.loaded[gid]; ok {
		return g, nil
	}
	raw, ok, err := s.store.Get(groupKey(gid))
	if err != nil {
		return nil, fmt.Errorf("load group %s: %w", gid, err)
	}
	if !ok {
		return nil, nil
	}
	g = &group{members: map[string]*Member{}, apps: map[string]*Application{}, sendRate: s.sendLimiter()}
	if err := json.Unmarshal(raw, &g.info); err != nil {
		return nil, fmt.Errorf("decode group %s: %w", gid, err)
	}
	g.policy = s.policies[g.info.Type]
	if g.policy == nil {
		return nil, fmt.Errorf("group %s has type %q, which the config no longer declares", gid, g.info.Type)
	}
	if err := storage.ScanAll(s.store, memberPrefix(gid), func(_ string, v []byte) error {
		m := &Member{}
		if err := json.Unmarshal(v, m); err != nil {
			return err
		}
		g.members[m.Member_Account] = m
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load members of %s: %w", gid, err)
	}
	if err := storage.ScanAll(s.store, applicationPrefix(gid), func(_ string, v []byte) error {
		a := &Application{}
		if err := json.Unmarshal(v, a); err != nil {
			return err
		}
		g.apps[a.Applicant_Account] = a
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load applications of %s: %w", gid, err)
	}
	g.memEpoch = uint64(time.Now().UnixMilli())
	if !g.policy.stored() {
		g.followLive(s.liveHead(gid)) // a room numbered by another node (cluster mode)
	}
	s.reg.loaded[gid] = g
	return g, nil
}

// existing loads an existing, not destroyed group (without its op lock).
func (s *Service) existing(gid string) (*group, error) {
	if err := ids.CheckGroupID(gid, false); err != nil {
		return nil, imerr.GroupInvalid.New("invalid GroupId: %v", err)
	}
	g, err := s.load(gid)
	if err != nil {
		return nil, err
	}
	if g == nil || g.isDestroyed() {
		return nil, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	return g, nil
}

// lock loads a group and takes its op lock; the caller unlocks g.op.
func (s *Service) lock(gid string) (*group, error) {
	if err := ids.CheckGroupID(gid, false); err != nil {
		return nil, imerr.GroupInvalid.New("invalid GroupId: %v", err)
	}
	g, err := s.load(gid)
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

// forget removes a group from the registry (failed create, destroy).
// Callers hold g.op: lock order g.op -> reg.mu -> g.mu.
func (r *registry) forget(gid string, g *group) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded[gid] == g {
		delete(r.loaded, gid)
	}
	g.mu.Lock()
	g.destroyed = true
	g.mu.Unlock()
}

// role returns uid's role, or "" for non-members. Callers hold g.mu or g.op.
func (g *group) role(uid string) string {
	if m, ok := g.members[uid]; ok {
		return m.Role
	}
	return ""
}

// isMember is safe for concurrent readers (delivery ACL).
func (g *group) isMember(uid string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.members[uid]
	return ok && !g.destroyed
}

func (g *group) isDestroyed() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.destroyed
}

// memberIDs returns the members, sorted (stable paging).
func (g *group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// apply updates g's in-memory state after a committed change. Callers
// hold g.op: op -> mu.
func (g *group) apply(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn()
}

// sendLimiter is a group's send rate limit: groups.rate_limit messages per
// second, with a burst of one second's worth; a new group starts full.
func (s *Service) sendLimiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateLimit)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only our own plain structs are marshalled
	}
	return b
}

// dedupe returns in without repeats, in first-seen order.
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
