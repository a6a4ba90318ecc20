package rest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// maxBatchSend bounds batchsendmsg's recipients (Tencent).
const maxBatchSend = 500

// Status is the online status query (broker/relations).
type Status interface {
	StatusQuery(ctx context.Context, a ops.Actor, q *relations.StatusQueryRequest) (*relations.StatusQueryResponse, error)
}

// openimEndpoints are the openim service: one-to-one messages and online
// status.
func openimEndpoints() []*endpoint {
	msg := []string{"SyncOtherMachine", "From_Account", "To_Account", "MsgSeq", "MsgRandom", "MsgBody", "CloudCustomData",
		"OfflinePushInfo", "ForbidCallbackControl", "SendMsgControl", "IsNeedReadReceipt"}
	return []*endpoint{
		{Path: "openim/sendmsg", Summary: "send a one-to-one message", Request: msg, typed: typed(sendMsg)},
		{Path: "openim/batchsendmsg", Summary: "send one message to up to 500 users", Request: msg, handle: batchSendMsg},
		{Path: "openim/admin_getroammsg", Summary: "roaming history of a one-to-one conversation",
			Request: []string{"Operator_Account", "Peer_Account", "From_Account", "To_Account", "MaxCnt", "MinTime", "MaxTime", "LastMsgKey"}, typed: typed(getRoamMsg)},
		{Path: "openim/admin_msgwithdraw", Summary: "recall a one-to-one message", Request: []string{"From_Account", "To_Account", "MsgKey"}, typed: typed(msgWithdraw)},
		{Path: "openim/admin_set_msg_read", Summary: "mark a one-to-one conversation read",
			Request: []string{"Report_Account", "Peer_Account", "MsgReadTime"}, typed: typed(setMsgRead)},
		{Path: "openim/get_c2c_unread_msg_num", Summary: "one-to-one unread counts", Request: []string{"To_Account", "Peer_Account"}, typed: typed(c2cUnread)},
		{Path: "openim/importmsg", Summary: "import a one-to-one message from an old system",
			Request: []string{"SyncFromOldSystem", "From_Account", "To_Account", "MsgSeq", "MsgRandom", "MsgTimeStamp", "MsgBody", "CloudCustomData"}, typed: typed(importMsg)},
		{Path: "openim/modify_c2c_msg", Summary: "overwrite a stored one-to-one message",
			Request: []string{"From_Account", "To_Account", "MsgKey", "MsgBody", "CloudCustomData"}, typed: typed(modifyC2CMsg)},
		{Path: "openim/query_online_status", Summary: "online state of up to 500 users", Request: []string{"To_Account", "IsNeedDetail"},
			typed: typed(asAdmin(imerr.AccountBadParams, Relations.StatusQuery))},
		{Path: "openim/querystate", Summary: "old name of query_online_status", Request: []string{"To_Account", "IsNeedDetail"},
			typed: typed(asAdmin(imerr.AccountBadParams, Relations.StatusQuery))},
	}
}

// noReply is the reply of an endpoint that answers nothing but success.
type noReply struct{}

type sendMsgReply struct {
	MsgTime int64
	MsgKey  string
}

func sendMsg(c *call) (*sendMsgReply, error) {
	var q struct{ From_Account, To_Account string }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	from, err := sender(c, q.From_Account)
	if err != nil {
		return nil, err
	}
	if q.To_Account == "" {
		return nil, fail(imerr.ToMissing, "To_Account is required")
	}
	res, err := c.msgs.SendC2C(c.ctx, from, q.To_Account, c.body)
	if err != nil {
		return nil, err
	}
	return &sendMsgReply{MsgTime: res.MsgTime, MsgKey: res.MsgKey}, nil
}

func batchSendMsg(c *call) (map[string]any, error) {
	var q struct {
		From_Account string
		To_Account   []string
	}
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	from, err := sender(c, q.From_Account)
	if err != nil {
		return nil, err
	}
	switch {
	case len(q.To_Account) == 0:
		return nil, fail(imerr.ToMissing, "To_Account is required")
	case len(q.To_Account) > maxBatchSend:
		return nil, fail(imerr.TooManyTo, "To_Account holds more than 500 accounts")
	}
	res, err := c.msgs.BatchSendC2C(c.ctx, from, q.To_Account, c.body)
	if err != nil && code(err) == imerr.Internal.Code {
		return nil, err
	}
	type refused struct {
		To_Account string
		ErrorCode  int
	}
	errs := []refused{}
	for _, r := range res.Refused {
		errs = append(errs, refused{r.To, code(r.Err)})
	}
	// Also when every recipient was refused (err): the list says why.
	return map[string]any{"MsgKey": res.MsgKey, "ErrorList": errs}, err
}

// roamMsgReply is admin_getroammsg's page, with Tencent's field names.
type roamMsgReply struct {
	Complete    int // 1: nothing older
	MsgCnt      int
	LastMsgTime int64
	LastMsgKey  string // ask for the next page with it
	MsgList     []roamMsg
}

type roamMsg struct {
	From_Account, To_Account string
	MsgSeq, MsgRandom        uint32
	MsgTimeStamp             int64
	MsgFlagBits              int
	IsPeerRead               int
	MsgKey                   string
	MsgBody                  json.RawMessage
	CloudCustomData          string
}

// getRoamMsg is admin_getroammsg. The pair is Operator_Account and
// Peer_Account, or From_Account and To_Account, the names older Tencent
// clients send (the newer names win when both are given).
func getRoamMsg(c *call) (*roamMsgReply, error) {
	var q struct {
		convs.RoamRequest
		From_Account, To_Account string
	}
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	q.Operator_Account = cmp.Or(q.Operator_Account, q.From_Account)
	q.Peer_Account = cmp.Or(q.Peer_Account, q.To_Account)
	if q.Operator_Account == "" || q.Peer_Account == "" {
		return nil, fail(imerr.ToMissing, "Operator_Account and Peer_Account (or From_Account and To_Account) are required")
	}
	page, err := c.convs.Roam(c.ctx, &q.RoamRequest)
	if err != nil {
		return nil, err
	}
	out := &roamMsgReply{MsgCnt: page.MsgCnt, MsgList: []roamMsg{}}
	if page.Complete {
		out.Complete = 1
	}
	for _, raw := range page.MsgList {
		var e struct{ Msg wire.C2CMsg }
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("stored message: %w", err)
		}
		m := e.Msg
		body := m.MsgBody
		if len(body) == 0 {
			body = json.RawMessage("[]")
		}
		out.MsgList = append(out.MsgList, roamMsg{From_Account: m.From, To_Account: m.To, MsgSeq: m.MsgSeq, MsgRandom: m.MsgRandom,
			MsgTimeStamp: m.MsgTime, MsgFlagBits: m.MsgFlagBits, MsgKey: m.MsgKey, MsgBody: body, CloudCustomData: m.CloudCustomData})
		out.LastMsgTime, out.LastMsgKey = m.MsgTime, m.MsgKey
	}
	return out, nil
}

func msgWithdraw(c *call) (*noReply, error) {
	var q struct{ From_Account, To_Account, MsgKey string }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	if err := requireMsgRef(q.From_Account, q.To_Account, q.MsgKey); err != nil {
		return nil, err
	}
	_, err := c.convs.Recall(c.ctx, c.actor(c.admin), &convs.RecallRequest{Target: convs.C2CTarget(q.To_Account),
		From_Account: q.From_Account, MsgKey: q.MsgKey})
	return nil, err
}

func setMsgRead(c *call) (*noReply, error) {
	var q struct {
		Report_Account, Peer_Account string
		MsgReadTime                  int64
	}
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	if q.Report_Account == "" || q.Peer_Account == "" {
		return nil, fail(imerr.ToMissing, "Report_Account and Peer_Account are required")
	}
	if ids.CheckUserID(q.Report_Account) != nil {
		return nil, fail(imerr.BadAccount, "invalid Report_Account")
	}
	_, err := c.convs.Read(c.ctx, c.actor(q.Report_Account), &convs.ReadRequest{Target: convs.C2CTarget(q.Peer_Account)})
	return nil, err
}

type c2cUnreadReply struct {
	AllC2CUnreadMsgNum  int
	C2CUnreadMsgNumList []peerUnread
}

type peerUnread struct {
	Peer_Account    string
	C2CUnreadMsgNum int
}

func c2cUnread(c *call) (*c2cUnreadReply, error) {
	var q struct {
		To_Account   string
		Peer_Account []string
	}
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	if q.To_Account == "" {
		return nil, fail(imerr.ToMissing, "To_Account is required")
	}
	counts, total, err := c.convs.C2CUnread(q.To_Account, q.Peer_Account)
	if err != nil {
		return nil, err
	}
	out := &c2cUnreadReply{AllC2CUnreadMsgNum: total, C2CUnreadMsgNumList: []peerUnread{}}
	for _, u := range counts {
		out.C2CUnreadMsgNumList = append(out.C2CUnreadMsgNumList, peerUnread{u.Peer, u.Unread})
	}
	return out, nil
}

// requireMsgRef checks the three fields that name a stored C2C message
// (admin_msgwithdraw, modify_c2c_msg).
func requireMsgRef(from, to, msgKey string) error {
	switch {
	case from == "":
		return fail(imerr.FromMissing, "From_Account is required")
	case to == "":
		return fail(imerr.ToMissing, "To_Account is required")
	case msgKey == "":
		return fail(imerr.BadMsgKey, "MsgKey is required")
	}
	return nil
}

// importMsg stores a message with its old MsgTimeStamp. SyncFromOldSystem
// 2 (history): no unread count, no offline push; 1 or 5 (realtime: 1 on
// Tencent's older page, 5 on its newer one): counted as unread and pushed.
// None fires callbacks. The sender's conversation keeps its unread count
// and never goes back in time (messages.ImportC2C).
func importMsg(c *call) (*noReply, error) {
	var q struct {
		SyncFromOldSystem        int
		From_Account, To_Account string
		MsgTimeStamp             *int64
	}
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	switch {
	case q.From_Account == "":
		return nil, fail(imerr.FromMissing, "From_Account is required")
	case ids.CheckUserID(q.From_Account) != nil:
		return nil, fail(imerr.BadAccount, "invalid From_Account")
	case q.To_Account == "":
		return nil, fail(imerr.ToMissing, "To_Account is required")
	case q.MsgTimeStamp == nil || *q.MsgTimeStamp <= 0:
		return nil, fail(imerr.MsgTime, "MsgTimeStamp is required")
	case q.SyncFromOldSystem != 1 && q.SyncFromOldSystem != 2 && q.SyncFromOldSystem != 5:
		return nil, fail(imerr.BadJSON, "SyncFromOldSystem must be 2 (history), or 1 or 5 (realtime)")
	}
	_, err := c.msgs.ImportC2C(c.ctx, q.From_Account, q.To_Account, c.body, *q.MsgTimeStamp, q.SyncFromOldSystem != 2)
	return nil, err
}

func modifyC2CMsg(c *call) (*noReply, error) {
	var q struct {
		From_Account, To_Account, MsgKey string
		MsgBody                          json.RawMessage
		CloudCustomData                  *string
	}
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	if err := requireMsgRef(q.From_Account, q.To_Account, q.MsgKey); err != nil {
		return nil, err
	}
	if string(q.MsgBody) == "null" {
		q.MsgBody = nil
	}
	return nil, c.convs.ModifyC2C(c.ctx, q.From_Account, q.To_Account, q.MsgKey, q.MsgBody, q.CloudCustomData)
}
