package rest

import "github.com/imbroker/imbroker/internal/ids"

// Relationship-chain codes (tencent-im.md §2).
const (
	codeSnsParams  = 30001
	codeConvParams = 50001
)

// moreEndpoints are the profile, relations and conversation APIs.
func moreEndpoints() []*endpoint {
	sns := func(cmd, op, summary string, fields ...string) *endpoint {
		h := asFrom(op, codeSnsParams)
		switch cmd {
		case "black_list_get":
			h = withDefaults(h, map[string]any{"CurruentSequence": 0}) // sic, Tencent's spelling
		case "group_add", "group_delete", "group_get":
			h = withDefaults(h, map[string]any{"CurrentSequence": 0})
		}
		return &endpoint{Path: "sns/" + cmd, Summary: summary, Request: append([]string{"From_Account"}, fields...), handle: h}
	}
	return []*endpoint{
		{Path: "profile/portrait_set", Summary: "set profile fields", Request: []string{"From_Account", "ProfileItem"}, handle: passOp("profile.set")},
		{Path: "profile/portrait_get", Summary: "read profile fields of up to 100 users", Request: []string{"To_Account", "TagList"}, handle: passOp("profile.get")},
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
		{Path: "recentcontact/get_list", Summary: "a user's conversation list", Request: []string{"From_Account", "StartIndex", "TimeStamp"}, handle: recentList},
		{Path: "recentcontact/delete", Summary: "delete a conversation", Request: []string{"From_Account", "Type", "To_Account", "ToGroupid", "ClearRamble"}, handle: recentDelete},
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

// fromAccount decodes and checks the required From_Account.
func fromAccount(c *call, code int) (string, error) {
	var q struct{ From_Account string }
	if err := c.decode(&q, code); err != nil {
		return "", err
	}
	if q.From_Account == "" || ids.CheckUserID(q.From_Account) != nil {
		return "", fail(code, "From_Account is missing or invalid")
	}
	return q.From_Account, nil
}

// asFrom runs op as From_Account with the body unchanged.
func asFrom(op string, code int) func(c *call) (map[string]any, error) {
	return func(c *call) (map[string]any, error) {
		from, err := fromAccount(c, code)
		if err != nil {
			return nil, err
		}
		return c.a.AdminRequest(c.ctx, op, from, c.body)
	}
}

func recentList(c *call) (map[string]any, error) {
	from, err := fromAccount(c, codeConvParams)
	if err != nil {
		return nil, err
	}
	var q struct{ StartIndex, Limit int }
	if err := c.decode(&q, codeConvParams); err != nil {
		return nil, err
	}
	res, err := c.op("conv.list", from, map[string]any{"Offset": q.StartIndex, "Limit": q.Limit})
	if err != nil {
		return nil, err
	}
	list := items(res, "ConvList")
	sessions := []map[string]any{}
	for _, cv := range list {
		s := map[string]any{"Type": cv["Type"], "MsgTime": cv["LastMsgTime"], "TopFlag": 0, "UnreadMsgNum": cv["UnreadMsgNum"]}
		if p, ok := cv["Peer_Account"]; ok {
			s["To_Account"] = p
		}
		if g, ok := cv["GroupId"]; ok {
			s["GroupId"] = g
		}
		sessions = append(sessions, s)
	}
	total := toInt(res["TotalCount"])
	next := q.StartIndex + len(list)
	complete := 0
	if next >= total {
		complete, next = 1, 0
	}
	return map[string]any{"SessionItem": sessions, "CompleteFlag": complete, "StartIndex": next, "TimeStamp": 0,
		"TopTimeStamp": 0, "TopStartIndex": 0}, nil
}

func recentDelete(c *call) (map[string]any, error) {
	from, err := fromAccount(c, codeConvParams)
	if err != nil {
		return nil, err
	}
	var q struct {
		Type        int
		To_Account  string
		ToGroupid   string
		ClearRamble int
	}
	if err := c.decode(&q, codeConvParams); err != nil {
		return nil, err
	}
	_, err = c.op("conv.delete", from, map[string]any{"Type": q.Type, "Peer_Account": q.To_Account, "GroupId": q.ToGroupid, "ClearRamble": q.ClearRamble})
	return nil, err
}

// items is m[field] as a list of objects.
func items(m map[string]any, field string) []map[string]any {
	list, _ := m[field].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, it := range list {
		if o, ok := it.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

// toInt reads a number decoded with UseNumber (or an int).
func toInt(v any) int {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		i, _ := n.Int64()
		return int(i)
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}
