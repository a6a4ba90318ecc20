package rest

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
)

// importAdmin is the broker's import and modification side.
type importAdmin interface {
	ImportC2C(ctx context.Context, from, to string, payload []byte, msgTime int64) (wire.SendResult, error)
	ModifyC2C(ctx context.Context, from, to, msgKey string, body json.RawMessage, ccd *string) error
	ImportFriends(ctx context.Context, from string, items []broker.FriendImportItem) (map[string]any, error)
}

// codeMsgTimeMissing: importmsg without MsgTimeStamp (tencent-im.md §2).
const codeMsgTimeMissing = 90006

// noSpeakingAdmin is the broker's global mute (openconfigsvr).
type noSpeakingAdmin interface {
	SetNoSpeaking(ctx context.Context, uid string, c2c, group *uint32) error
	GetNoSpeaking(uid string) (c2c, group uint32, err error)
}

// importEndpoints: global mute, message import and modification, friend
// import.
func importEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "openconfigsvr/setnospeaking", Summary: "set an account's global mute",
			Request: []string{"Set_Account", "C2CmsgNospeakingTime", "GroupmsgNospeakingTime"}, handle: setNoSpeaking},
		{Path: "openconfigsvr/getnospeaking", Summary: "an account's global mute", Request: []string{"Get_Account"}, handle: getNoSpeaking},
		{Path: "openim/importmsg", Summary: "import a one-to-one message from an old system",
			Request: []string{"SyncFromOldSystem", "From_Account", "To_Account", "MsgSeq", "MsgRandom", "MsgTimeStamp", "MsgBody", "CloudCustomData"}, handle: importMsg},
		{Path: "openim/modify_c2c_msg", Summary: "overwrite a stored one-to-one message",
			Request: []string{"From_Account", "To_Account", "MsgKey", "MsgBody", "CloudCustomData"}, handle: modifyC2CMsg},
		{Path: "sns/friend_import", Summary: "import friends without approval",
			Request: []string{"From_Account", "AddFriendItem"}, handle: friendImport},
	}
}

func noSpeaking(c *call) (noSpeakingAdmin, error) {
	a, ok := c.a.(noSpeakingAdmin)
	if !ok {
		return nil, fail(codeInternal, "not supported")
	}
	return a, nil
}

func setNoSpeaking(c *call) (map[string]any, error) {
	var q struct {
		Set_Account                                  string
		C2CmsgNospeakingTime, GroupmsgNospeakingTime *uint32
	}
	if err := c.decode(&q, codeJSONParse); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Set_Account) != nil {
		return nil, fail(codeJSONParse, "Set_Account is missing or invalid")
	}
	if q.C2CmsgNospeakingTime == nil && q.GroupmsgNospeakingTime == nil {
		return nil, fail(codeJSONParse, "C2CmsgNospeakingTime or GroupmsgNospeakingTime is required")
	}
	a, err := noSpeaking(c)
	if err != nil {
		return nil, err
	}
	return nil, a.SetNoSpeaking(c.ctx, q.Set_Account, q.C2CmsgNospeakingTime, q.GroupmsgNospeakingTime)
}

func getNoSpeaking(c *call) (map[string]any, error) {
	var q struct{ Get_Account string }
	if err := c.decode(&q, codeJSONParse); err != nil {
		return nil, err
	}
	if ids.CheckUserID(q.Get_Account) != nil {
		return nil, fail(codeJSONParse, "Get_Account is missing or invalid")
	}
	a, err := noSpeaking(c)
	if err != nil {
		return nil, err
	}
	c2c, group, err := a.GetNoSpeaking(q.Get_Account)
	if err != nil {
		return nil, err
	}
	return map[string]any{"C2CmsgNospeakingTime": c2c, "GroupmsgNospeakingTime": group}, nil
}

func importer(c *call) (importAdmin, error) {
	a, ok := c.a.(importAdmin)
	if !ok {
		return nil, fail(codeInternal, "not supported")
	}
	return a, nil
}

// importMsg stores a message with its old MsgTimeStamp. SyncFromOldSystem
// 2 (history): no unread count, no offline push; 5 (realtime): counted as
// unread and pushed. Neither fires callbacks.
func importMsg(c *call) (map[string]any, error) {
	var q struct {
		SyncFromOldSystem        int
		From_Account, To_Account string
		MsgTimeStamp             *int64
	}
	if err := c.decode(&q, codeBodyJSON); err != nil {
		return nil, err
	}
	switch {
	case q.From_Account == "":
		return nil, fail(codeFromMissing, "From_Account is required")
	case ids.CheckUserID(q.From_Account) != nil:
		return nil, fail(codeBadAccount, "invalid From_Account")
	case q.To_Account == "":
		return nil, fail(codeToMissing, "To_Account is required")
	case q.MsgTimeStamp == nil || *q.MsgTimeStamp <= 0:
		return nil, fail(codeMsgTimeMissing, "MsgTimeStamp is required")
	case q.SyncFromOldSystem != 2 && q.SyncFromOldSystem != 5:
		return nil, fail(codeBodyJSON, "SyncFromOldSystem must be 2 (history) or 5 (realtime)")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(c.body, &m); err != nil {
		return nil, fail(codeBodyJSON, "body is not a JSON object")
	}
	for _, k := range []string{"SendMsgControl", "OfflinePushInfo", "SyncOtherMachine", "ClientMsgID", "IsNeedReadReceipt"} {
		delete(m, k)
	}
	m["ForbidCallbackControl"] = json.RawMessage(`["ForbidBeforeSendMsgCallback","ForbidAfterSendMsgCallback"]`)
	if q.SyncFromOldSystem == 2 {
		m["SendMsgControl"] = json.RawMessage(`["NoUnread"]`)
		m["OfflinePushInfo"] = json.RawMessage(`{"PushFlag":1}`)
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	a, err := importer(c)
	if err != nil {
		return nil, err
	}
	_, err = a.ImportC2C(c.ctx, q.From_Account, q.To_Account, payload, *q.MsgTimeStamp)
	return nil, err
}

func modifyC2CMsg(c *call) (map[string]any, error) {
	var q struct {
		From_Account, To_Account, MsgKey string
		MsgBody                          json.RawMessage
		CloudCustomData                  *string
	}
	if err := c.decode(&q, codeBodyJSON); err != nil {
		return nil, err
	}
	if err := requireMsgRef(q.From_Account, q.To_Account, q.MsgKey); err != nil {
		return nil, err
	}
	if string(q.MsgBody) == "null" {
		q.MsgBody = nil
	}
	a, err := importer(c)
	if err != nil {
		return nil, err
	}
	return nil, a.ModifyC2C(c.ctx, q.From_Account, q.To_Account, q.MsgKey, q.MsgBody, q.CloudCustomData)
}

func friendImport(c *call) (map[string]any, error) {
	var q struct {
		From_Account  string
		AddFriendItem []broker.FriendImportItem
	}
	if err := c.decode(&q, codeSnsParams); err != nil {
		return nil, err
	}
	if q.From_Account == "" {
		return nil, fail(codeSnsParams, "From_Account is required")
	}
	a, err := importer(c)
	if err != nil {
		return nil, err
	}
	return a.ImportFriends(c.ctx, q.From_Account, q.AddFriendItem)
}
