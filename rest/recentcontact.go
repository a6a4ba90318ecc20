package rest

import (
	"encoding/json"
	"strconv"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/internal/imerr"
)

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
	res, err := c.convs.List(c.ctx, c.actor(from), &convs.ListRequest{Offset: q.StartIndex, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	sessions := []map[string]any{}
	for _, cv := range res.ConvList {
		s := map[string]any{"Type": cv.Type, "MsgTime": cv.LastMsgTime, "TopFlag": 0, "UnreadMsgNum": cv.UnreadMsgNum}
		if cv.Type == convs.TypeC2C {
			s["To_Account"] = cv.Peer_Account
		} else {
			s["GroupId"] = cv.GroupId
		}
		sessions = append(sessions, s)
	}
	next := q.StartIndex + len(res.ConvList)
	complete := 0
	if next >= res.TotalCount {
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
	_, err = c.convs.Delete(c.ctx, c.actor(from), &convs.DeleteRequest{ClearRamble: q.ClearRamble,
		Target: convs.Target{Type: json.RawMessage(strconv.Itoa(q.Type)), Peer_Account: q.To_Account, GroupId: q.ToGroupid}})
	return nil, err
}
