package rest

import "github.com/imbroker/imbroker/internal/imerr"

// recentContactEndpoints are the recentcontact service: a user's
// conversation list.
func recentContactEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "recentcontact/get_list", Summary: "a user's conversation list", Request: []string{"From_Account", "StartIndex", "TimeStamp"}, handle: recentList},
		{Path: "recentcontact/delete", Summary: "delete a conversation", Request: []string{"From_Account", "Type", "To_Account", "ToGroupid", "ClearRamble"}, handle: recentDelete},
	}
}

func recentList(c *call) (map[string]any, error) {
	from, err := fromAccount(c, imerr.ConversationBadParam)
	if err != nil {
		return nil, err
	}
	var q struct{ StartIndex, Limit int }
	if err := c.decode(&q, imerr.ConversationBadParam); err != nil {
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
	from, err := fromAccount(c, imerr.ConversationBadParam)
	if err != nil {
		return nil, err
	}
	var q struct {
		Type        int
		To_Account  string
		ToGroupid   string
		ClearRamble int
	}
	if err := c.decode(&q, imerr.ConversationBadParam); err != nil {
		return nil, err
	}
	_, err = c.op("conv.delete", from, map[string]any{"Type": q.Type, "Peer_Account": q.To_Account, "GroupId": q.ToGroupid, "ClearRamble": q.ClearRamble})
	return nil, err
}
