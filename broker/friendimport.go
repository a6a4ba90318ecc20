package broker

import (
	"context"
	"encoding/json"
	"time"

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

// ImportFriends puts friends in from's list as they were in an old system
// (Tencent sns/friend_import): one-way, without the peer's approval or
// AllowType, with the given AddTime; the blacklist and list limits still
// apply and no relation callback fires. The answer is friend.add's
// (ResultItem, Fail_Account). [IM-REL-IMPORT]
func (b *Broker) ImportFriends(ctx context.Context, from string, items []FriendImportItem) (map[string]any, error) {
	if ids.CheckUserID(from) != nil {
		return nil, imerr.SnsBadParams.New("invalid From_Account")
	}
	if len(items) == 0 || len(items) > maxFriendImport {
		return nil, imerr.SnsBadParams.New("AddFriendItem must hold 1 to %d items", maxFriendImport)
	}
	var rs relResults
	for _, it := range items {
		if err := rs.add(it.To_Account, b.importFriend(ctx, from, it)); err != nil {
			return nil, err
		}
	}
	return rs.reply(), nil
}

func (b *Broker) importFriend(ctx context.Context, a string, it FriendImportItem) error {
	to := it.To_Account
	if err := b.checkFriendAdd(a, to, it.Remark, it.AddWording, it.AddSource); err != nil {
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
	unlock := b.lockUsers(a, to)
	defer unlock()
	now := time.Now().Unix()
	rb, err := b.friendAddable(a, to, groups, now)
	if err != nil {
		return err
	}
	added := it.AddTime
	if added == 0 {
		added = now
	}
	rec := friendRec{Remark: it.Remark, GroupName: groups, AddTime: added, AddSource: it.AddSource, AddWording: it.AddWording}
	rb.setFriend(a, to, rec)
	// friendAdded's events, without its callback.
	rb.event(a, eventFriendAdded, map[string]any{"From_Account": a, "To_Account": to, "Initiator_Account": a,
		"Remark": rec.Remark, "GroupName": nonNilStrs(rec.GroupName), "AddSource": rec.AddSource, "AddWording": rec.AddWording, "AddTime": rec.AddTime})
	rb.event(to, eventFriendAdded, map[string]any{"From_Account": a, "To_Account": to, "Initiator_Account": a})
	rb.delPending(a, to)
	return b.commitRel(ctx, rb)
}
