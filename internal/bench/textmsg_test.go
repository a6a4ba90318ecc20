package bench

import (
	"encoding/json"
	"testing"
	"time"
)

// textMsg builds by hand what the broker parses as an IM text message:
// valid JSON with MsgRandom and one TIMTextElem whose Text is the send
// stamp the receiving side reads back.
func TestTextMsgIsTheIMTextMessage(t *testing.T) {
	before := time.Now().UnixNano()
	raw := textMsg(1<<20 | 7)
	var msg struct {
		MsgRandom int
		MsgBody   []struct {
			MsgType    string
			MsgContent struct{ Text string }
		}
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if msg.MsgRandom != 1<<20|7 || len(msg.MsgBody) != 1 || msg.MsgBody[0].MsgType != "TIMTextElem" {
		t.Fatalf("unexpected message %s", raw)
	}
	ts, ok := unstamp(msg.MsgBody[0].MsgContent.Text)
	if !ok || ts < before || ts > time.Now().UnixNano() {
		t.Fatalf("stamp %q does not read back as the send time", msg.MsgBody[0].MsgContent.Text)
	}
}
