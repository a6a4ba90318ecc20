package messages

import (
	"encoding/json"
	"strings"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
)

// CmdOfflinePush is our own after-style command (Tencent has no push
// callback in §5): a message was stored for a recipient with no live
// connection, so the app backend can forward it to APNs/FCM.
// docs/callbacks.md "Event commands".
const CmdOfflinePush = "Push.CallbackOfflinePush"

// offlinePushInfo is the part of a message's OfflinePushInfo the push uses.
type offlinePushInfo struct {
	PushFlag int
	Title    string
	Desc     string
	Ext      string
}

// pushText derives a message's push text as Tencent does: a text element's
// text, a custom element's Desc, and a bracketed label for the others.
func pushText(body json.RawMessage) string {
	var els []struct {
		MsgType    string
		MsgContent struct{ Text, Desc string }
	}
	if json.Unmarshal(body, &els) != nil {
		return ""
	}
	var sb strings.Builder
	for _, e := range els {
		switch e.MsgType {
		case "TIMTextElem":
			sb.WriteString(e.MsgContent.Text)
		case "TIMCustomElem":
			sb.WriteString(e.MsgContent.Desc)
		case "TIMLocationElem":
			sb.WriteString("[Location]")
		case "TIMFaceElem":
			sb.WriteString("[Face]")
		case "TIMImageElem":
			sb.WriteString("[Image]")
		case "TIMSoundElem":
			sb.WriteString("[Voice]")
		case "TIMVideoFileElem":
			sb.WriteString("[Video]")
		case "TIMFileElem":
			sb.WriteString("[File]")
		}
	}
	return sb.String()
}

// PushFields builds the body of an offline push (CmdOfflinePush) of a
// message from `from` to `to`, or nil when the message asks for no push
// (OfflinePushInfo.PushFlag 1). The caller adds what identifies the
// message (MsgKey; GroupId and MsgSeq).
func PushFields(to, from string, body, opi json.RawMessage) map[string]any {
	var info offlinePushInfo
	if len(opi) > 0 {
		_ = json.Unmarshal(opi, &info)
	}
	if info.PushFlag == 1 {
		return nil
	}
	desc := info.Desc
	if desc == "" {
		desc = pushText(body)
	}
	f := map[string]any{"To_Account": to, "From_Account": from, "Desc": desc}
	if info.Title != "" {
		f["Title"] = info.Title
	}
	if info.Ext != "" {
		f["Ext"] = info.Ext
	}
	return f
}

// pushC2C queues the offline push of a stored one-to-one message when its
// recipient has no live connection. UnreadMsgNum is the recipient's
// unread count of the conversation (one record read).
func (s *Service) pushC2C(msg *wire.C2CMsg) {
	if msg.To == msg.From || !s.cb.Enabled(CmdOfflinePush) || len(s.presence.OnlineDevices(msg.To)) > 0 {
		return
	}
	f := PushFields(msg.To, msg.From, msg.MsgBody, msg.OfflinePushInfo)
	if f == nil {
		return
	}
	f["MsgKey"] = msg.MsgKey
	if st, ok, err := convs.Load(s.store, msg.To, convs.C2CID(msg.From)); err == nil && ok {
		f["UnreadMsgNum"] = st.UnreadMsgNum
	}
	s.cb.After(CmdOfflinePush, f)
}
