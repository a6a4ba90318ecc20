package messages

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
)

// ImportC2C stores a one-to-one message from an old system (Tencent
// openim/importmsg) on SendC2C's path, with msgTime (Unix seconds, > 0) as
// its MsgTime. An import fires no send callbacks, and the sender's
// SendMsgControl, OfflinePushInfo, SyncOtherMachine, ClientMsgID and
// IsNeedReadReceipt are ignored: realtime (SyncFromOldSystem 5) counts it
// as unread and pushes it offline as a new message; otherwise (2, history)
// neither. [IM-IMPORTMSG]
func (s *Service) ImportC2C(ctx context.Context, from, to string, payload []byte, msgTime int64, realtime bool) (wire.SendResult, error) {
	if msgTime <= 0 {
		return wire.SendResult{}, imerr.MsgTime.New("MsgTimeStamp is required")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return wire.SendResult{}, imerr.BadJSON.New("body is not a JSON object")
	}
	for _, k := range []string{"SendMsgControl", "OfflinePushInfo", "SyncOtherMachine", "ClientMsgID", "IsNeedReadReceipt"} {
		delete(m, k)
	}
	m["ForbidCallbackControl"] = json.RawMessage(`["ForbidBeforeSendMsgCallback","ForbidAfterSendMsgCallback"]`)
	if !realtime {
		m["SendMsgControl"] = json.RawMessage(`["NoUnread"]`)
		m["OfflinePushInfo"] = json.RawMessage(`{"PushFlag":1}`)
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return wire.SendResult{}, imerr.BadJSON.New("body: %v", err)
	}
	return s.sendC2C(ctx, from, to, payload, msgTime)
}
