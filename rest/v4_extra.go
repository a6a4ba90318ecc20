package rest

import "time"

// extraEndpoints are composite APIs built from several broker operations.
func extraEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "sns/friend_get_list", Summary: "SNS and profile tags of chosen friends", Request: []string{"From_Account", "To_Account", "TagList"}, handle: friendGetList},
		{Path: "sns/friend_delete_all", Summary: "delete every friend of a user", Request: []string{"From_Account", "DeleteType"}, handle: friendDeleteAll},
		{Path: groupServicePath + "modify_group_member_info", Summary: "change a member's role, name card, data or mute",
			Request: []string{"GroupId", "Member_Account", "Role", "NameCard", "AppMemberDefinedData", "MuteTime"}, handle: modifyMember},
		{Path: groupServicePath + "get_group_muted_account", Summary: "muted members of a group", Request: []string{"GroupId"}, handle: mutedAccounts},
		{Path: groupServicePath + "get_appid_group_list", Summary: "every group of the app, paged", Request: []string{"Limit", "Next", "GroupType"}, handle: appGroupList},
		{Path: groupServicePath + "get_group_shutted_uin", Summary: "old name of get_group_muted_account", Request: []string{"GroupId"}, handle: mutedAccounts},
	}
}

const maxFriendDelete = 1000 // friend.delete accounts per call

func friendDeleteAll(c *call) (map[string]any, error) {
	from, err := fromAccount(c, codeSnsParams)
	if err != nil {
		return nil, err
	}
	var q struct{ DeleteType string }
	if err := c.decode(&q, codeSnsParams); err != nil {
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

func modifyMember(c *call) (map[string]any, error) {
	var q struct {
		GroupId, Member_Account, Role string
		NameCard                      *string
		AppMemberDefinedData          []map[string]any
		MuteTime                      *int64
	}
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if q.GroupId == "" || q.Member_Account == "" {
		return nil, fail(codeGroupParams, "GroupId and Member_Account are required")
	}
	if q.Role != "" {
		if _, err := c.op("group.set_role", c.admin, map[string]any{"GroupId": q.GroupId, "Member_Account": q.Member_Account, "Role": q.Role}); err != nil {
			return nil, err
		}
	}
	if q.NameCard != nil || q.AppMemberDefinedData != nil {
		body := map[string]any{"GroupId": q.GroupId, "Member_Account": q.Member_Account}
		if q.NameCard != nil {
			body["NameCard"] = *q.NameCard
		}
		if q.AppMemberDefinedData != nil {
			body["AppMemberDefinedData"] = q.AppMemberDefinedData
		}
		if _, err := c.op("group.set_member", c.admin, body); err != nil {
			return nil, err
		}
	}
	if q.MuteTime != nil {
		if _, err := c.op("group.mute", c.admin, map[string]any{"GroupId": q.GroupId, "Members_Account": []string{q.Member_Account}, "MuteTime": *q.MuteTime}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func mutedAccounts(c *call) (map[string]any, error) {
	var q struct{ GroupId string }
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	list := []map[string]any{}
	for offset := 0; ; {
		res, err := c.op("group.members", c.admin, map[string]any{"GroupId": q.GroupId, "Offset": offset})
		if err != nil {
			return nil, err
		}
		page := items(res, "MemberList")
		for _, m := range page {
			if until := toInt(m["MuteUntil"]); int64(until) > now {
				list = append(list, map[string]any{"Member_Account": m["Member_Account"], "MutedUntil": until})
			}
		}
		offset += len(page)
		if len(page) == 0 || offset >= toInt(res["MemberNum"]) {
			break
		}
	}
	return map[string]any{"MutedAccountList": list}, nil
}

const maxGroupListLimit = 10000

// appGroupList pages through every group; Next is the offset of the next
// page (0: none).
func appGroupList(c *call) (map[string]any, error) {
	var q struct {
		Limit     int
		Next      int
		GroupType string
	}
	if err := c.decode(&q, codeGroupParams); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > maxGroupListLimit {
		q.Limit = maxGroupListLimit
	}
	if q.Next < 0 {
		return nil, fail(codeGroupParams, "Next must not be negative")
	}
	gids, err := c.a.GroupIDs(q.GroupType)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	i := q.Next
	for ; i < len(gids) && len(list) < q.Limit; i++ {
		list = append(list, map[string]any{"GroupId": gids[i]})
	}
	if i >= len(gids) {
		i = 0
	}
	return map[string]any{"TotalCount": len(gids), "GroupIdList": list, "Next": i}, nil
}

const (
	maxFriendGetList = 100
	codeSnsNotFriend = 30006 // the account is not a friend
)

// friendGetList answers sns/friend_get_list: for each of To_Account, the
// requested SNS tags (Tag_SNS_IM_*) from From_Account's friend record and
// profile tags (Tag_Profile_*) from the friend's profile.
func friendGetList(c *call) (map[string]any, error) {
	from, err := fromAccount(c, codeSnsParams)
	if err != nil {
		return nil, err
	}
	var q struct {
		To_Account []string
		TagList    []string
	}
	if err := c.decode(&q, codeSnsParams); err != nil {
		return nil, err
	}
	if len(q.To_Account) == 0 || len(q.To_Account) > maxFriendGetList || len(q.TagList) == 0 {
		return nil, fail(codeSnsParams, "To_Account must hold 1 to 100 accounts and TagList at least one tag")
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
			info = append(info, map[string]any{"To_Account": to, "SnsProfileItem": []any{}, "ResultCode": codeSnsNotFriend, "ResultInfo": "not a friend"})
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
