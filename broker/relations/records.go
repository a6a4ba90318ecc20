package relations

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/imbroker/imbroker/storage"
)

// The relation records (KV; docs/architecture.md "Storage layout"). A
// relation change is one storage batch, so it never half-applies. Every
// change of a user's relation records runs under that user's relation lock
// (and the peer's, for changes that touch both), so limits are checked and
// records read-modify-written without racing another change.
//
//	pf/{uid}          uid's profile: the tags set so far
//	ac/{uid}          an imported account: {"UserID","ImportTime"}
//	fr/{uid}/{peer}   peer is in uid's friend list: friendRec
//	fw/{peer}/{uid}   the reverse index ("uid watches peer"): who gets peer's ProfileChanged / StatusChanged
//	fq/{uid}/{from}   a friend request from `from` waiting for uid's answer: pendingRec
//	fs/{from}/{uid}   the same request, under its sender (friend.pending SendOut)
//	fg/{uid}/{name}   one of uid's friend lists: friendGroupRec (membership is in friendRec.GroupName)
//	bl/{uid}/{peer}   peer is on uid's blacklist: blackRec
//	ps/{uid}          the last state announced with StatusChanged
//	nsp/{uid}         uid's global mutes: noSpeaking
//	kk/{uid}          when the app last kicked uid: kickRec (older UserSigs no longer log in)

func profileKey(uid string) string           { return "pf/" + uid }
func accountKey(uid string) string           { return "ac/" + uid }
func friendKey(uid, peer string) string      { return "fr/" + uid + "/" + peer }
func friendPrefix(uid string) string         { return "fr/" + uid + "/" }
func watcherKey(uid, watcher string) string  { return "fw/" + uid + "/" + watcher }
func watcherPrefix(uid string) string        { return "fw/" + uid + "/" }
func pendingKey(to, from string) string      { return "fq/" + to + "/" + from }
func pendingPrefix(to string) string         { return "fq/" + to + "/" }
func sentKey(from, to string) string         { return "fs/" + from + "/" + to }
func sentPrefix(from string) string          { return "fs/" + from + "/" }
func friendGroupKey(uid, name string) string { return "fg/" + uid + "/" + name }
func friendGroupPrefix(uid string) string    { return "fg/" + uid + "/" }
func blackKey(uid, peer string) string       { return "bl/" + uid + "/" + peer }
func blackPrefix(uid string) string          { return "bl/" + uid + "/" }
func presenceKey(uid string) string          { return "ps/" + uid }
func noSpeakingKey(uid string) string        { return "nsp/" + uid }
func kickKey(uid string) string              { return "kk/" + uid }

// accountPrefix is every account record.
const accountPrefix = "ac/"

// userStream is a user's event stream.
func userStream(uid string) string { return "u/" + uid }

// friendRec is one entry of a friend list.
type friendRec struct {
	Remark     string   `json:"Remark,omitempty"`
	GroupName  []string `json:"GroupName,omitempty"`
	AddTime    int64    `json:"AddTime"`
	AddSource  string   `json:"AddSource,omitempty"`
	AddWording string   `json:"AddWording,omitempty"`
}

// pendingRec is a friend request waiting for an answer.
type pendingRec struct {
	From_Account string
	To_Account   string
	AddTime      int64
	AddType      string
	AddSource    string   `json:",omitempty"`
	AddWording   string   `json:",omitempty"`
	Remark       string   `json:",omitempty"` // the requester's, applied when the request is accepted
	GroupName    []string `json:",omitempty"` // likewise
}

// public is the request as its target sees it (no requester remark or lists).
func (p pendingRec) public() map[string]any {
	return map[string]any{"From_Account": p.From_Account, "To_Account": p.To_Account, "AddTime": p.AddTime,
		"AddType": p.AddType, "AddSource": p.AddSource, "AddWording": p.AddWording}
}

type friendGroupRec struct {
	CreateTime int64
}

type blackRec struct {
	AddBlackTimeStamp int64
}

// mustJSON marshals one of our own plain records.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only our own plain structs and maps are marshalled
	}
	return b
}

func nonNilStrs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// has reports whether a KV record exists.
func (s *Service) has(key string) (bool, error) {
	_, ok, err := s.store.Get(key)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	return ok, nil
}

// getJSON reads a KV record into v.
func (s *Service) getJSON(key string, v any) (bool, error) {
	raw, ok, err := s.store.Get(key)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// count counts the records under prefix, up to limit.
func (s *Service) count(prefix string, limit int) (int, error) {
	kvs, err := s.store.Scan(prefix, "", limit)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", prefix, err)
	}
	return len(kvs), nil
}

// scan visits every record under prefix with the rest of its name, in order.
func (s *Service) scan(prefix string, fn func(rest string, v []byte) error) error {
	return storage.ScanAll(s.store, prefix, func(name string, v []byte) error {
		return fn(strings.TrimPrefix(name, prefix), v)
	})
}

// watchers lists the users who have uid in their friend list.
func (s *Service) watchers(uid string) ([]string, error) {
	var out []string
	err := s.scan(watcherPrefix(uid), func(w string, _ []byte) error {
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list watchers of %s: %w", uid, err)
	}
	return out, nil
}

// loadFriends returns uid's friend list in UserID order.
func (s *Service) loadFriends(uid string) ([]string, []friendRec, error) {
	var peers []string
	var recs []friendRec
	err := s.scan(friendPrefix(uid), func(peer string, v []byte) error {
		var f friendRec
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("decode friend %s of %s: %w", peer, uid, err)
		}
		peers, recs = append(peers, peer), append(recs, f)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load friends of %s: %w", uid, err)
	}
	return peers, recs, nil
}

// friendGroups lists uid's friend lists.
func (s *Service) friendGroups(uid string) ([]string, error) {
	var out []string
	err := s.scan(friendGroupPrefix(uid), func(name string, _ []byte) error {
		out = append(out, name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load friend lists of %s: %w", uid, err)
	}
	return out, nil
}
