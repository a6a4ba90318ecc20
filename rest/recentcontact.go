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
		{Path: "recentcontact/get_list", Summary: "a user's conversation list", Request: []string{"From_Account", "StartIndex", "TimeStamp"}, typed: typed(recentList)},
		{Path: "recentcontact/delete", Summary: "delete a conversation", Request: []string{"From_Account", "Type", "To_Account", "ToGroupid", "ClearRamble"}, typed: typed(recentDelete)},
	}
}

// recentListReply is recentcontact/get_list's page. Tencent's pinned
// conversations (Top*) and time-based paging are not kept: always 0.
type recentListReply struct {
	SessionItem   []session
	CompleteFlag  int // 1: the last page
	StartIndex    int // where the next page starts (0 on the last)
	TimeStamp     int
	TopTimeStamp  int
	TopStartIndex int
}

type session struct {
	Type         int
	To_Account   string `json:",omitempty"` // C2C
	GroupId      string `json:",omitempty"` // group
	MsgTime      int64
	TopFlag      int
	UnreadMsgNum int
}

func recentList(c *call) (*recentListReply, error) {
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
	out := &recentListReply{SessionItem: []session{}}
	for _, cv := range res.ConvList {
		s := session{Type: cv.Type, MsgTime: cv.LastMsgTime, UnreadMsgNum: cv.UnreadMsgNum}
		if cv.Type == convs.TypeC2C {
			s.To_Account = cv.Peer_Account
		} else {
			s.GroupId = cv.GroupId
		}
		out.SessionItem = append(out.SessionItem, s)
	}
	out.StartIndex = q.StartIndex + len(res.ConvList)
	if out.StartIndex >= res.TotalCount {
		out.CompleteFlag, out.StartIndex = 1, 0
	}
	return out, nil
}

func recentDelete(c *call) (*noReply, error) {
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
