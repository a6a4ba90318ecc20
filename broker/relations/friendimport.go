package relations

import (
	"context"
	"encoding/json"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// maxFriendImport is Tencent's batch size of sns/friend_import.
const maxFriendImport = 1000

// FriendImportItem is one friend of sns/friend_import (Tencent names).
type FriendImportItem struct {
	To_Account string
	Remark     string
	RemarkTime int64 // accepted; there is no remark-time field to keep it in
	GroupName  json.RawMessage
	AddSource  string
	AddWording string
	AddTime    int64           // Unix seconds; 0: now
	CustomItem json.RawMessage // custom friend fields: refused when non-empty (none are defined)
}

// FriendImportRequest is Tencent's sns/friend_import; the actor is its
// From_Account.
type FriendImportRequest struct {
	AddFriendItem []FriendImportItem
}

// FriendImport puts friends in a's list as they were in an old system
// (Tencent sns/friend_import): one-way, without the peer's approval or
// AllowType, with the given AddTime; the blacklist and list limits still
// apply and no relation callback fires. The answer is friend.add's.
// [IM-REL-IMPORT]
func (s *Service) FriendImport(ctx context.Context, a ops.Actor, q *FriendImportRequest) (*Results, error) {
	if ids.CheckUserID(a.User) != nil {
		return nil, imerr.SnsBadParams.New("invalid From_Account")
	}
	if len(q.AddFriendItem) == 0 || len(q.AddFriendItem) > maxFriendImport {
		return nil, imerr.SnsBadParams.New("AddFriendItem must hold 1 to %d items", maxFriendImport)
	}
	var rs Results
	for _, it := range q.AddFriendItem {
		if err := rs.add(it.To_Account, s.importFriend(ctx, a.User, it)); err != nil {
			return nil, err
		}
	}
	return rs.done(), nil
}

func (s *Service) importFriend(ctx context.Context, a string, it FriendImportItem) error {
	to := it.To_Account
	if err := s.checkFriendAdd(a, to, it.Remark, it.AddWording, it.AddSource); err != nil {
		return err
	}
	var custom []json.RawMessage
	if len(it.CustomItem) > 0 && string(it.CustomItem) != "null" {
		if json.Unmarshal(it.CustomItem, &custom) != nil || len(custom) > 0 {
			return imerr.SnsBadParams.New("custom friend fields (CustomItem) are not supported")
		}
	}
	if it.AddTime < 0 {
		return imerr.SnsBadParams.New("AddTime must not be negative")
	}
	groups, err := groupNames(it.GroupName)
	if err != nil {
		return err
	}
	unlock := s.lockUsers(a, to)
	defer unlock()
	now := time.Now().Unix()
	rb, err := s.friendAddable(a, to, groups, now)
	if err != nil {
		return err
	}
	added := it.AddTime
	if added == 0 {
		added = now
	}
	rec := friendRec{Remark: it.Remark, GroupName: groups, AddTime: added, AddSource: it.AddSource, AddWording: it.AddWording}
	rb.setFriend(a, to, rec)
	rb.friendAddedEvents(a, to, a, rec)
	rb.delPending(a, to)
	return s.commit(ctx, rb)
}
