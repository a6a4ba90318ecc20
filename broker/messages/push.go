package messages

import (
	"context"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
)

// CmdOfflinePush is our own after-style command (Tencent has no push
// callback in §5): a message was stored for a recipient with no live
// connection, so the app backend can forward it to APNs/FCM.
// docs/callbacks.md "Event commands".
const CmdOfflinePush = "Push.CallbackOfflinePush"

// pushC2C queues the offline push of a stored one-to-one message when its
// recipient has no live connection. UnreadMsgNum is the recipient's
// unread count of the conversation (one record read).
func (s *Service) pushC2C(msg *wire.C2CMsg) {
	if msg.To == msg.From || !s.cb.Enabled(CmdOfflinePush) || len(s.presence.OnlineDevices(msg.To)) > 0 {
		return
	}
	f := wire.PushFields(msg.To, msg.From, msg.MsgBody, msg.OfflinePushInfo)
	if f == nil {
		return
	}
	f["MsgKey"] = msg.MsgKey
	if st, ok, err := convs.Load(s.store, msg.To, convs.C2CID(msg.From)); err == nil && ok {
		f["UnreadMsgNum"] = st.UnreadMsgNum
	}
	s.cb.After(context.Background(), CmdOfflinePush, f) // our own command: no origin
}
