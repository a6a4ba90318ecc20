package relations

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Friend lists: reading, checking, updating and deleting friends (Tencent
// sns/friend_*) [IM-REL-FRIENDS]: docs/relations.md.

// Friend (SNS) tags and enum values (Tencent names).
const (
	tagSnsGroup      = "Tag_SNS_IM_Group"
	tagSnsRemark     = "Tag_SNS_IM_Remark"
	tagSnsAddSource  = "Tag_SNS_IM_AddSource"
	tagSnsAddWording = "Tag_SNS_IM_AddWording"
	tagSnsAddTime    = "Tag_SNS_IM_AddTime"

	deleteTypeSingle = "Delete_Type_Single"
	deleteTypeBoth   = "Delete_Type_Both"

	friendPageSize = 100 // friend.get page
)

// valueItems is the record as friend.get shows it.
func (f friendRec) valueItems() []TagValue {
	return []TagValue{{tagSnsGroup, mustJSON(nonNilStrs(f.GroupName))}, {tagSnsRemark, mustJSON(f.Remark)},
		{tagSnsAddSource, mustJSON(f.AddSource)}, {tagSnsAddWording, mustJSON(f.AddWording)}, {tagSnsAddTime, mustJSON(f.AddTime)}}
}

// FriendDeleteRequest is friend.delete.
type FriendDeleteRequest struct {
	To_Account []string
	DeleteType string // Delete_Type_Single (default): from your list; Delete_Type_Both: from both lists
}

// deleteBoth reads a DeleteType.
func deleteBoth(deleteType string) (bool, error) {
	switch deleteType {
	case "", deleteTypeSingle:
		return false, nil
	case deleteTypeBoth:
		return true, nil
	}
	return false, imerr.SnsBadParams.New("DeleteType must be %s or %s", deleteTypeSingle, deleteTypeBoth)
}

// FriendDelete removes friends: Delete_Type_Single (default) from your
// list, Delete_Type_Both from both lists.
func (s *Service) FriendDelete(ctx context.Context, a ops.Actor, q *FriendDeleteRequest) (*Results, error) {
	if err := checkAccounts(q.To_Account); err != nil {
		return nil, err
	}
	both, err := deleteBoth(q.DeleteType)
	if err != nil {
		return nil, err
	}
	var rs Results
	for _, to := range q.To_Account {
		if err := rs.add(to, s.deleteFriend(ctx, a.User, to, both)); err != nil {
			return nil, err
		}
	}
	return rs.done(), nil
}

func (s *Service) deleteFriend(ctx context.Context, a, to string, both bool) error {
	if err := checkPeer(a, to); err != nil {
		return err
	}
	unlock := s.lockUsers(a, to)
	defer unlock()
	if ok, err := s.has(friendKey(a, to)); err != nil || !ok {
		return orErr(err, imerr.SnsBadParams.New("%s is not your friend", to))
	}
	rb := newRelBatch()
	if err := s.unfriend(rb, a, to, both); err != nil {
		return err
	}
	return s.commit(ctx, rb)
}

// unfriend adds to rb the end of a's friendship with to, who is in a's
// list, and with both of to's with a, if any. Callers hold both locks.
func (s *Service) unfriend(rb *relBatch, a, to string, both bool) error {
	rb.delFriend(a, to)
	rb.friendDeleted(a, to, a)
	if !both {
		return nil
	}
	back, err := s.has(friendKey(to, a))
	if err != nil {
		return err
	}
	if back {
		rb.delFriend(to, a)
		rb.friendDeleted(to, a, a)
	}
	return nil
}

// FriendDeleteAllRequest is Tencent's sns/friend_delete_all.
type FriendDeleteAllRequest struct {
	DeleteType string
}

// FriendDeleteAll empties a's friend list (Tencent sns/friend_delete_all)
// in one commit: every friend goes, or (on a failure) none does, and the
// FriendDeleted events and the one Sns.CallbackFriendDelete are those of
// that commit. With Delete_Type_Both a also leaves each friend's list.
func (s *Service) FriendDeleteAll(ctx context.Context, a ops.Actor, q *FriendDeleteAllRequest) (*Empty, error) {
	both, err := deleteBoth(q.DeleteType)
	if err != nil {
		return nil, err
	}
	// The friends' locks are needed too (their records change with Both,
	// their watcher records always); the list is read again under them
	// until no friend was added in between.
	locked := map[string]bool{}
	for {
		users := []string{a.User}
		for u := range locked {
			users = append(users, u)
		}
		unlock := s.lockUsers(users...)
		peers, _, err := s.loadFriends(a.User)
		if err != nil {
			unlock()
			return nil, err
		}
		missing := false
		for _, p := range peers {
			if !locked[p] {
				locked[p], missing = true, true
			}
		}
		if missing {
			unlock()
			continue
		}
		rb := newRelBatch()
		for _, p := range peers {
			if err := s.unfriend(rb, a.User, p, both); err != nil {
				unlock()
				return nil, err
			}
		}
		err = s.commit(ctx, rb)
		unlock()
		if err != nil {
			return nil, err
		}
		return &Empty{}, nil
	}
}

// FriendGetRequest is friend.get.
type FriendGetRequest struct {
	StartIndex int
}

// UserDataItem is one friend of friend.get.
type UserDataItem struct {
	To_Account string
	ValueItem  []TagValue
}

// FriendGetResponse is a page of the friend list.
type FriendGetResponse struct {
	UserDataItem     []UserDataItem
	FriendNum        int
	CompleteFlag     int // 1: this page is the last
	NextStartIndex   int
	StandardSequence int
	CustomSequence   int
}

// FriendGet pages through the friend list (Tencent sns/friend_get).
func (s *Service) FriendGet(_ context.Context, a ops.Actor, q *FriendGetRequest) (*FriendGetResponse, error) {
	if q.StartIndex < 0 {
		return nil, imerr.SnsBadParams.New("StartIndex must not be negative")
	}
	peers, recs, err := s.loadFriends(a.User)
	if err != nil {
		return nil, err
	}
	items := []UserDataItem{}
	i := q.StartIndex
	for ; i < len(peers) && len(items) < friendPageSize; i++ {
		items = append(items, UserDataItem{To_Account: peers[i], ValueItem: recs[i].valueItems()})
	}
	complete := 0
	if i >= len(peers) {
		complete, i = 1, len(peers)
	}
	return &FriendGetResponse{UserDataItem: items, FriendNum: len(peers), CompleteFlag: complete, NextStartIndex: i}, nil
}

// FriendGetListRequest is Tencent's sns/friend_get_list.
type FriendGetListRequest struct {
	To_Account []string
	TagList    []string // Tag_SNS_IM_* from the friend record, Tag_Profile_* from the friend's profile
}

// FriendInfoItem is one account of friend_get_list.
type FriendInfoItem struct {
	To_Account     string
	SnsProfileItem []TagValue
	ResultCode     int
	ResultInfo     string
}

// FriendGetListResponse answers friend_get_list.
type FriendGetListResponse struct {
	InfoItem     []FriendInfoItem
	Fail_Account []string
}

const (
	maxFriendGetList  = 100
	profileTagsPrefix = "Tag_Profile_"
)

// FriendGetList reads chosen friends of a (Tencent sns/friend_get_list):
// for each of To_Account, the tags of TagList in its order, SNS tags from
// a's friend record and profile tags (all of them, as the app admin sees
// them) from the friend's profile; tags that are neither are left out. It
// reads under a's relation lock, so the records come from one state of a's
// list. A non-friend gets ResultCode 30006.
func (s *Service) FriendGetList(_ context.Context, a ops.Actor, q *FriendGetListRequest) (*FriendGetListResponse, error) {
	if len(q.To_Account) == 0 || len(q.To_Account) > maxFriendGetList || len(q.TagList) == 0 {
		return nil, imerr.SnsBadParams.New("To_Account must hold 1 to %d accounts and TagList at least one tag", maxFriendGetList)
	}
	var profTags []string
	for _, t := range q.TagList {
		if len(t) > len(profileTagsPrefix) && t[:len(profileTagsPrefix)] == profileTagsPrefix {
			profTags = append(profTags, t)
		}
	}
	unlock := s.lockUsers(a.User)
	defer unlock()
	res := &FriendGetListResponse{InfoItem: []FriendInfoItem{}, Fail_Account: []string{}}
	checked := false // the profile tags, checked once a friend's profile is read
	for _, to := range q.To_Account {
		var rec friendRec
		ok := false
		if ids.CheckUserID(to) == nil {
			var err error
			if ok, err = s.getJSON(friendKey(a.User, to), &rec); err != nil {
				return nil, err
			}
		}
		if !ok {
			res.Fail_Account = append(res.Fail_Account, to)
			res.InfoItem = append(res.InfoItem, FriendInfoItem{To_Account: to, SnsProfileItem: []TagValue{},
				ResultCode: imerr.SnsNotFriend.Code, ResultInfo: "not a friend"})
			continue
		}
		tags := map[string]json.RawMessage{}
		for _, tv := range rec.valueItems() {
			tags[tv.Tag] = tv.Value
		}
		if len(profTags) > 0 {
			if !checked {
				for _, t := range profTags {
					if _, ok := s.profileTagOf(t); !ok {
						return nil, imerr.ProfileUnknownTag.New("unknown profile tag %q", t)
					}
				}
				checked = true
			}
			prof, err := s.loadProfile(to)
			if err != nil {
				return nil, err
			}
			for _, t := range profTags {
				if _, sns := tags[t]; sns {
					continue
				}
				v, ok := prof[t]
				if !ok {
					d, _ := s.profileTagOf(t)
					v = d.def()
				}
				tags[t] = v
			}
		}
		list := []TagValue{}
		for _, t := range q.TagList {
			if v, ok := tags[t]; ok {
				list = append(list, TagValue{t, v})
			}
		}
		res.InfoItem = append(res.InfoItem, FriendInfoItem{To_Account: to, SnsProfileItem: list})
	}
	return res, nil
}

// FriendUpdateItem changes one friend record.
type FriendUpdateItem struct {
	To_Account string
	SnsItem    []TagValue
}

// FriendUpdateRequest is friend.update.
type FriendUpdateRequest struct {
	UpdateItem []FriendUpdateItem
}

// FriendUpdate changes friend records (Tencent sns/friend_update):
// Tag_SNS_IM_Remark and Tag_SNS_IM_Group (the lists the friend is in).
func (s *Service) FriendUpdate(ctx context.Context, a ops.Actor, q *FriendUpdateRequest) (*Results, error) {
	if len(q.UpdateItem) == 0 || len(q.UpdateItem) > maxRelItems {
		return nil, imerr.SnsBadParams.New("UpdateItem must hold 1 to %d items", maxRelItems)
	}
	var rs Results
	for _, it := range q.UpdateItem {
		if err := rs.add(it.To_Account, s.updateFriend(ctx, a.User, it)); err != nil {
			return nil, err
		}
	}
	return rs.done(), nil
}

func (s *Service) updateFriend(ctx context.Context, self string, it FriendUpdateItem) error {
	if err := checkPeer(self, it.To_Account); err != nil {
		return err
	}
	if len(it.SnsItem) == 0 {
		return imerr.SnsBadParams.New("SnsItem is empty")
	}
	unlock := s.lockUsers(self)
	defer unlock()
	var rec friendRec
	if ok, err := s.getJSON(friendKey(self, it.To_Account), &rec); err != nil || !ok {
		return orErr(err, imerr.SnsBadParams.New("%s is not your friend", it.To_Account))
	}
	rb := newRelBatch()
	for _, si := range it.SnsItem {
		switch si.Tag {
		case tagSnsRemark:
			if json.Unmarshal(si.Value, &rec.Remark) != nil {
				return imerr.SnsBadParams.New("%s takes a string", si.Tag)
			}
			if err := checkRelText("Remark", rec.Remark, s.cfg.MaxRemarkBytes); err != nil {
				return err
			}
		case tagSnsGroup:
			groups, err := groupNames(si.Value)
			if err != nil {
				return err
			}
			if err := s.ensureGroups(rb, self, groups, time.Now().Unix()); err != nil {
				return err
			}
			rec.GroupName = groups
		default:
			return imerr.SnsBadParams.New("%s cannot be updated (only %s and %s)", si.Tag, tagSnsRemark, tagSnsGroup)
		}
	}
	rb.set(friendKey(self, it.To_Account), mustJSON(rec))
	rb.event(self, eventFriendUpdated, map[string]any{"To_Account": it.To_Account, "Remark": rec.Remark, "GroupName": nonNilStrs(rec.GroupName)})
	if err := s.commit(ctx, rb); err != nil {
		return fmt.Errorf("update friend %s of %s: %w", it.To_Account, self, err)
	}
	return nil
}
