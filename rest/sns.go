package rest

import (
	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Relationship-chain codes (tencent-im.md §2).

// snsEndpoints are the sns service: friends, friend lists and the
// blacklist.
func snsEndpoints() []*endpoint {
	sns := func(cmd, op, summary string, fields ...string) *endpoint {
		h := asFrom(op, imerr.SnsBadParams)
		switch cmd {
		case "black_list_get":
			h = withDefaults(h, map[string]any{"CurruentSequence": 0}) // sic, Tencent's spelling
		case "group_add", "group_delete", "group_get":
			h = withDefaults(h, map[string]any{"CurrentSequence": 0})
		}
		return &endpoint{Path: "sns/" + cmd, Summary: summary, Request: append([]string{"From_Account"}, fields...), handle: h}
	}
	return []*endpoint{
		sns("friend_add", "friend.add", "add friends (per the peer's AllowType)", "AddFriendItem", "AddType"),
		sns("friend_update", "friend.update", "update friend fields", "UpdateItem"),
		sns("friend_delete", "friend.delete", "delete friends", "To_Account", "DeleteType"),
		sns("friend_check", "friend.check", "check friendships", "To_Account", "CheckType"),
		sns("friend_get", "friend.get", "page through the friend list", "StartIndex", "StandardSequence", "CustomSequence"),
		sns("black_list_add", "black.add", "blacklist users", "To_Account"),
		sns("black_list_delete", "black.delete", "remove users from the blacklist", "To_Account"),
		sns("black_list_get", "black.get", "page through the blacklist", "StartIndex", "MaxLimited", "LastSequence"),
		sns("black_list_check", "black.check", "check blacklist relations", "To_Account", "CheckType"),
		sns("group_add", "friend.group_add", "add friend lists", "GroupName", "To_Account"),
		sns("group_delete", "friend.group_delete", "delete friend lists", "GroupName"),
		sns("group_get", "friend.group_get", "read friend lists", "NeedFriend", "GroupName"),
		{Path: "sns/friend_get_list", Summary: "SNS and profile tags of chosen friends", Request: []string{"From_Account", "To_Account", "TagList"}, handle: friendGetList},
		{Path: "sns/friend_delete_all", Summary: "delete every friend of a user", Request: []string{"From_Account", "DeleteType"}, handle: friendDeleteAll},
		{Path: "sns/friend_import", Summary: "import friends without approval",
			Request: []string{"From_Account", "AddFriendItem"}, handle: friendImport},
	}
}

// withDefaults adds fields Tencent always returns that h's answer lacks.
func withDefaults(h func(*call) (map[string]any, error), def map[string]any) func(*call) (map[string]any, error) {
	return func(c *call) (map[string]any, error) {
		out, err := h(c)
		if err != nil {
			return out, err
		}
		if out == nil {
			out = map[string]any{}
		}
		for k, v := range def {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
		return out, nil
	}
}

// asFrom runs op as From_Account with the body unchanged.
func asFrom(op string, kind *imerr.Kind) func(c *call) (map[string]any, error) {
	return func(c *call) (map[string]any, error) {
		from, err := fromAccount(c, kind)
		if err != nil {
			return nil, err
		}
		return c.a.AdminRequest(c.ctx, op, from, c.body)
	}
}

const maxFriendDelete = 1000 // friend.delete accounts per call

func friendDeleteAll(c *call) (map[string]any, error) {
	from, err := fromAccount(c, imerr.SnsBadParams)
	if err != nil {
		return nil, err
	}
	var q struct{ DeleteType string }
	if err := c.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	var all []string
	for start := 0; ; {
		res, err := c.op("friend.get", from, map[string]any{"StartIndex": start})
		if err != nil {
			return nil, err
		}
		for _, it := range items(res, "UserDataItem") {
			if to, ok := it["To_Account"].(string); ok {
				all = append(all, to)
			}
		}
		next := toInt(res["NextStartIndex"])
		if toInt(res["CompleteFlag"]) == 1 || next <= start {
			break
		}
		start = next
	}
	for len(all) > 0 {
		n := min(len(all), maxFriendDelete)
		body := map[string]any{"To_Account": all[:n], "DeleteType": q.DeleteType}
		if _, err := c.op("friend.delete", from, body); err != nil {
			return nil, err
		}
		all = all[n:]
	}
	return nil, nil
}

const (
	maxFriendGetList = 100
)

// friendGetList answers sns/friend_get_list: for each of To_Account, the
// requested SNS tags (Tag_SNS_IM_*) from From_Account's friend record and
// profile tags (Tag_Profile_*) from the friend's profile.
func friendGetList(c *call) (map[string]any, error) {
	from, err := fromAccount(c, imerr.SnsBadParams)
	if err != nil {
		return nil, err
	}
	var q struct {
		To_Account []string
		TagList    []string
	}
	if err := c.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if len(q.To_Account) == 0 || len(q.To_Account) > maxFriendGetList || len(q.TagList) == 0 {
		return nil, fail(imerr.SnsBadParams, "To_Account must hold 1 to 100 accounts and TagList at least one tag")
	}
	sns := map[string]map[string]any{} // friend -> tag -> value
	for start := 0; ; {
		res, err := c.op("friend.get", from, map[string]any{"StartIndex": start})
		if err != nil {
			return nil, err
		}
		for _, it := range items(res, "UserDataItem") {
			to, _ := it["To_Account"].(string)
			tags := map[string]any{}
			for _, v := range items(it, "ValueItem") {
				tag, _ := v["Tag"].(string)
				tags[tag] = v["Value"]
			}
			sns[to] = tags
		}
		next := toInt(res["NextStartIndex"])
		if toInt(res["CompleteFlag"]) == 1 || next <= start {
			break
		}
		start = next
	}
	var profTags []string
	for _, t := range q.TagList {
		if len(t) > len("Tag_Profile_") && t[:len("Tag_Profile_")] == "Tag_Profile_" {
			profTags = append(profTags, t)
		}
	}
	prof := map[string]map[string]any{}
	var friends []string
	for _, to := range q.To_Account {
		if sns[to] != nil {
			friends = append(friends, to)
		}
	}
	if len(profTags) > 0 && len(friends) > 0 {
		res, err := c.op("profile.get", c.admin, map[string]any{"To_Account": friends, "TagList": profTags})
		if err != nil {
			return nil, err
		}
		for _, it := range items(res, "UserProfileItem") {
			to, _ := it["To_Account"].(string)
			tags := map[string]any{}
			for _, v := range items(it, "ProfileItem") {
				tag, _ := v["Tag"].(string)
				tags[tag] = v["Value"]
			}
			prof[to] = tags
		}
	}
	info := []map[string]any{}
	failed := []string{}
	for _, to := range q.To_Account {
		tags, ok := sns[to]
		if !ok {
			failed = append(failed, to)
			info = append(info, map[string]any{"To_Account": to, "SnsProfileItem": []any{}, "ResultCode": imerr.SnsNotFriend.Code, "ResultInfo": "not a friend"})
			continue
		}
		list := []map[string]any{}
		for _, t := range q.TagList {
			if v, ok := tags[t]; ok {
				list = append(list, map[string]any{"Tag": t, "Value": v})
			} else if v, ok := prof[to][t]; ok {
				list = append(list, map[string]any{"Tag": t, "Value": v})
			}
		}
		info = append(info, map[string]any{"To_Account": to, "SnsProfileItem": list, "ResultCode": 0, "ResultInfo": ""})
	}
	return map[string]any{"InfoItem": info, "Fail_Account": failed}, nil
}

func friendImport(c *call) (map[string]any, error) {
	var q struct {
		From_Account  string
		AddFriendItem []broker.FriendImportItem
	}
	if err := c.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if q.From_Account == "" {
		return nil, fail(imerr.SnsBadParams, "From_Account is required")
	}
	a, err := importer(c)
	if err != nil {
		return nil, err
	}
	return a.ImportFriends(c.ctx, q.From_Account, q.AddFriendItem)
}
