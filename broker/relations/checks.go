package relations

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

const (
	maxRelItems         = 100  // items of one changing request (friend.add, black.add, ...)
	maxRelCheck         = 1000 // accounts of one friend.check / black.check
	maxFriendGroupName  = 30   // friend list name bytes (Tencent)
	maxAddSourceKeyword = 8    // AddSource_Type_{keyword}
	addSourcePrefix     = "AddSource_Type_"
)

// checkAccounts bounds a To_Account list of a changing request.
func checkAccounts(tos []string) error {
	if len(tos) == 0 || len(tos) > maxRelItems {
		return imerr.SnsBadParams.New("To_Account must hold 1 to %d accounts", maxRelItems)
	}
	return nil
}

// checkPeer validates a To_Account of a relation request.
func checkPeer(self, to string) error {
	if ids.CheckUserID(to) != nil {
		return imerr.SnsBadParams.New("invalid To_Account %q", to)
	}
	if to == self {
		return imerr.SnsBadParams.New("To_Account is yourself")
	}
	return nil
}

// checkRelText bounds a remark or wording.
func checkRelText(field, v string, max int) error {
	if len(v) > max || !utf8.ValidString(v) {
		return imerr.SnsBadParams.New("%s must be valid UTF-8 of at most %d bytes", field, max)
	}
	return nil
}

func checkAddSource(s string) error {
	if s == "" {
		return nil
	}
	kw, ok := strings.CutPrefix(s, addSourcePrefix)
	good := ok && kw != "" && len(kw) <= maxAddSourceKeyword
	for _, c := range kw {
		good = good && (c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
	}
	if !good {
		return imerr.SnsBadParams.New("AddSource must be %s{keyword of 1 to %d letters or digits}", addSourcePrefix, maxAddSourceKeyword)
	}
	return nil
}

// checkGroupNames validates friend list names (deduplicated, in order).
func checkGroupNames(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		ok := n != "" && len(n) <= maxFriendGroupName && utf8.ValidString(n)
		for _, c := range n {
			ok = ok && c >= 0x20 && c != 0x7f
		}
		if !ok {
			return nil, imerr.SnsBadParams.New("friend list name %q must be 1 to %d bytes of printable UTF-8", n, maxFriendGroupName)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// groupNames reads a GroupName field: a string (Tencent's friend_add) or an
// array of strings.
func groupNames(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, nil
		}
		return checkGroupNames([]string{one})
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, imerr.SnsBadParams.New("GroupName must be a string or an array of strings")
	}
	return checkGroupNames(many)
}

// ensureGroups adds to rb the friend lists of names that uid lacks, if the
// limit allows them all: it returns 30011 otherwise. Call with uid's lock held.
func (s *Service) ensureGroups(rb *relBatch, uid string, names []string, now int64) error {
	if len(names) == 0 {
		return nil
	}
	have, err := s.friendGroups(uid)
	if err != nil {
		return err
	}
	n := len(have)
	for k := range rb.sets { // lists this batch already creates
		if strings.HasPrefix(k, friendGroupPrefix(uid)) && !slices.Contains(have, strings.TrimPrefix(k, friendGroupPrefix(uid))) {
			n++
		}
	}
	var create []string // all or none: a refusal leaves rb as it was
	for _, name := range names {
		if !slices.Contains(have, name) && rb.sets[friendGroupKey(uid, name)] == nil && !slices.Contains(create, name) {
			create = append(create, name)
		}
	}
	if n+len(create) > s.cfg.MaxFriendGroups {
		return imerr.SnsGroupsFull.New("at most %d friend lists", s.cfg.MaxFriendGroups)
	}
	for _, name := range create {
		rb.set(friendGroupKey(uid, name), mustJSON(friendGroupRec{CreateTime: now}))
	}
	return nil
}

// friendsFull checks uid's list against relations.max_friends.
func (s *Service) friendsFull(uid string, kind *imerr.Kind) error {
	max := s.cfg.MaxFriends
	n, err := s.count(friendPrefix(uid), max)
	if err != nil {
		return err
	}
	if n >= max {
		if kind == imerr.SnsFriendsFull {
			return kind.New("your friend list is full (%d)", max)
		}
		return kind.New("%s's friend list is full (%d)", uid, max)
	}
	return nil
}
