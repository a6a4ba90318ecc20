package broker

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imbroker/imbroker/broker/wire"
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

// member is one member's stored record.
type member struct {
	Member_Account       string        `json:"Member_Account"`
	Role                 string        `json:"Role"`
	JoinTime             int64         `json:"JoinTime"`
	NameCard             string        `json:"NameCard"`
	MuteUntil            int64         `json:"MuteUntil"`
	AppMemberDefinedData []wire.KVItem `json:"AppMemberDefinedData"`
	JoinSeq              uint64        `json:"JoinSeq"` // group seq when joining: the history visibility line
}

// application is a pending join request.
type application struct {
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
	policy    *groupPolicy
	members   map[string]*member
	apps      map[string]*application
	destroyed bool

	// Live rooms are not stored: their seqs live in memory, and a restart
	// starts a new epoch (the history is gone).
	memEpoch, memSeq uint64

	sendRate *rate.Limiter // groups.rate_limit (sendLimiter)

	tips memberTips // live rooms: member tips waiting to be merged (under op)
}

// KV record names.
func groupKey(gid string) string            { return "g/" + gid }
func memberKey(gid, uid string) string      { return "gm/" + gid + "/" + uid }
func memberPrefix(gid string) string        { return "gm/" + gid + "/" }
func joinedKey(uid, gid string) string      { return "ug/" + uid + "/" + gid }
func joinedPrefix(uid string) string        { return "ug/" + uid + "/" }
func applicationKey(gid, uid string) string { return "ga/" + gid + "/" + uid }
func applicationPrefix(gid string) string   { return "ga/" + gid + "/" }
func groupStream(gid string) string         { return "g/" + gid }

// groups is the registry of loaded groups. Lookups take the read lock: the
// delivery ACL looks a group up for every copy it delivers (10,000 per
// message in a 10,000-member room), from every delivery worker at once.
type groups struct {
	mu     sync.RWMutex
	loaded map[string]*group
}

// loadGroup returns a group's state, loading it from the store on first
// use; nil when the group does not exist.
func (b *Broker) loadGroup(gid string) (*group, error) {
	b.groups.mu.RLock()
	g, ok := b.groups.loaded[gid]
	b.groups.mu.RUnlock()
	if ok {
		return g, nil
	}
	b.groups.mu.Lock() // groups.mu -> store: the group is read under the write lock
	defer b.groups.mu.Unlock()
	if g, ok := b.groups.loaded[gid]; ok {
		return g, nil
	}
	raw, ok, err := b.store.Get(groupKey(gid))
	if err != nil || !ok {
		return nil, err
	}
	g = &group{members: map[string]*member{}, apps: map[string]*application{}, sendRate: b.sendLimiter()}
	if err := json.Unmarshal(raw, &g.info); err != nil {
		return nil, fmt.Errorf("decode group %s: %w", gid, err)
	}
	g.policy = b.policies[g.info.Type]
	if g.policy == nil {
		return nil, fmt.Errorf("group %s has type %q, which the config no longer declares", gid, g.info.Type)
	}
	if err := scanAll(b.store, memberPrefix(gid), func(v []byte) error {
		m := &member{}
		if err := json.Unmarshal(v, m); err != nil {
			return err
		}
		g.members[m.Member_Account] = m
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load members of %s: %w", gid, err)
	}
	if err := scanAll(b.store, applicationPrefix(gid), func(v []byte) error {
		a := &application{}
		if err := json.Unmarshal(v, a); err != nil {
			return err
		}
		g.apps[a.Applicant_Account] = a
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load applications of %s: %w", gid, err)
	}
	g.memEpoch = uint64(time.Now().UnixMilli())
	b.groups.loaded[gid] = g
	return g, nil
}

// scanAll visits every KV record under prefix.
func scanAll(s *storage.Store, prefix string, fn func([]byte) error) error {
	after := ""
	for {
		kvs, err := s.Scan(prefix, after, 1000)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := fn(kv.Value); err != nil {
				return err
			}
		}
		if len(kvs) < 1000 {
			return nil
		}
		after = kvs[len(kvs)-1].Name
	}
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

// memberIDs returns the members, sorted (stable paging).
func (g *group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// sendLimiter is a group's send rate limit: groups.rate_limit messages per
// second, with a burst of one second's worth; a new group starts full.
func (b *Broker) sendLimiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(b.cfg.Groups.RateLimit), b.cfg.Groups.RateLimit)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only our own plain structs are marshalled
	}
	return b
}
