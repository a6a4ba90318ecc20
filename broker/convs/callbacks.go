package convs

import (
	"context"
	"time"
)

// Event callback commands of conversations (tencent-im.md §5; docs/callbacks.md).
const (
	cbC2CMsgReport = "C2C.CallbackAfterMsgReport"
	cbC2CWithDraw  = "C2C.CallbackAfterMsgWithDraw"
)

// afterMsgReport: C2C.CallbackAfterMsgReport (a C2C read report).
func (s *Service) afterMsgReport(ctx context.Context, reporter, peer string, unread int) {
	s.cb.After(ctx, cbC2CMsgReport, map[string]any{"Report_Account": reporter, "Peer_Account": peer,
		"LastReadTime": time.Now().Unix(), "UnreadMsgNum": unread})
}

// afterWithDraw: C2C.CallbackAfterMsgWithDraw; UnreadMsgNum is the
// recipient's unread count of the conversation after the recall.
func (s *Service) afterWithDraw(ctx context.Context, from, to, msgKey string) {
	if !s.cb.Enabled(cbC2CWithDraw) {
		return
	}
	fields := map[string]any{"From_Account": from, "To_Account": to, "MsgKey": msgKey}
	if st, ok, err := Load(s.store, to, C2CID(from)); err == nil && ok {
		fields["UnreadMsgNum"] = st.UnreadMsgNum
	}
	s.cb.After(ctx, cbC2CWithDraw, fields)
}
