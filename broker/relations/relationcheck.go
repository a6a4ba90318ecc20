package relations

import (
	"context"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Relation checks (Tencent sns/friend_check and black_list_check): for
// each account, whether the relation holds one way, the other, both or
// neither.

const (
	checkSingle = "CheckResult_Type_Single"
	checkBoth   = "CheckResult_Type_Both"
)

// CheckRequest is friend.check and black.check.
type CheckRequest struct {
	To_Account []string
	CheckType  string
}

// CheckItem is one account's relation.
type CheckItem struct {
	To_Account string
	Relation   string
	ResultCode int
	ResultInfo string
}

// FriendCheckResponse answers friend.check.
type FriendCheckResponse struct {
	InfoItem     []CheckItem
	Fail_Account []string
}

// FriendCheck reports relations (Tencent sns/friend_check).
func (s *Service) FriendCheck(_ context.Context, a ops.Actor, q *CheckRequest) (*FriendCheckResponse, error) {
	items, fail, err := s.checkRelations(a.User, q, relationCheck{key: friendKey, single: checkSingle, both: checkBoth,
		prefix: "CheckResult_Type_", none: "NoRelation"})
	if err != nil {
		return nil, err
	}
	return &FriendCheckResponse{InfoItem: items, Fail_Account: fail}, nil
}

// relationCheck describes one kind of relation check (friends, blacklist).
type relationCheck struct {
	key          func(from, to string) string // the record that means "from relates to to"
	single, both string                       // CheckType values
	prefix, none string                       // Relation value spelling
}

// checkRelations answers friend_check and black_list_check: for each
// account, whether the relation holds one way, the other, both or neither.
func (s *Service) checkRelations(self string, q *CheckRequest, c relationCheck) ([]CheckItem, []string, error) {
	if len(q.To_Account) == 0 || len(q.To_Account) > maxRelCheck {
		return nil, nil, imerr.SnsBadParams.New("To_Account must hold 1 to %d accounts", maxRelCheck)
	}
	checkType := q.CheckType
	switch checkType {
	case "":
		checkType = c.both
	case c.single, c.both:
	default:
		return nil, nil, imerr.SnsBadParams.New("CheckType must be %s or %s", c.single, c.both)
	}
	items := []CheckItem{}
	fail := []string{}
	for _, to := range q.To_Account {
		if ids.CheckUserID(to) != nil {
			items = append(items, CheckItem{To_Account: to, ResultCode: imerr.SnsBadParams.Code, ResultInfo: "invalid To_Account"})
			fail = append(fail, to)
			continue
		}
		ab, err := s.has(c.key(self, to))
		if err != nil {
			return nil, nil, err
		}
		ba := false
		if checkType == c.both {
			if ba, err = s.has(c.key(to, self)); err != nil {
				return nil, nil, err
			}
		}
		items = append(items, CheckItem{To_Account: to, Relation: relation(c.prefix, c.none, ab, ba)})
	}
	return items, fail, nil
}

// relation names a check result: BothWay, AWithB (you -> them), BWithA or none.
func relation(prefix, none string, ab, ba bool) string {
	switch {
	case ab && ba:
		return prefix + "BothWay"
	case ab:
		return prefix + "AWithB"
	case ba:
		return prefix + "BWithA"
	}
	return prefix + none
}
