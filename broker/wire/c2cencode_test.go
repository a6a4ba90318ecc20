package wire

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
)

func c2cSamples() []C2CMsg {
	body, err := ValidateBody(json.RawMessage(allElementsBody), 20)
	if err != nil {
		panic(err)
	}
	return []C2CMsg{
		{},
		{From: "alice", To: "bob", MsgSeq: 1, MsgRandom: 2, MsgTime: 3, MsgKey: "1_2_3", MsgBody: json.RawMessage(textBody)},
		{From: "alice", To: "bob", MsgSeq: 1<<32 - 1, MsgRandom: 1<<32 - 1, MsgTime: -5, MsgKey: "k", MsgBody: body,
			CloudCustomData: "<ccd> & \"quoted\" \u2028 \x01 \xff 张三", ClientMsgID: "cid", IsNeedReadReceipt: 1,
			SendMsgControl: []string{"NoUnread", "NoLastMsg"}, OfflinePushInfo: json.RawMessage(`{ "PushFlag" : 0,
				"Title":"a <b>", "Desc":"x\u2028y" }`), MsgFlagBits: 8},
		{From: "a", To: "b", MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a \"b\\\" <c> \u2029"}}]`),
			SendMsgControl: []string{}, OfflinePushInfo: json.RawMessage(`null`)},
		{From: "a", To: "b", MsgBody: json.RawMessage(`[ 1, "x y" ,{"k" :"v"} ]`)},
	}
}

// The stored event, the live delivery and the dedup value are what
// json.Marshal wrote before.
func TestEncodeC2CMatchesEncodingJSON(t *testing.T) {
	for i, m := range c2cSamples() {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := EncodeC2CMsg(&m)
		if string(got) != string(want) {
			t.Errorf("sample %d:\n got %s\nwant %s", i, got, want)
		}
		wantEv, _ := EncodeEvent(EventC2CMsg, m)
		if ev := C2CEvent(got); string(ev) != string(wantEv) {
			t.Errorf("sample %d event:\n got %s\nwant %s", i, ev, wantEv)
		}
	}
	for _, k := range [][3]int64{{0, 0, 0}, {1<<32 - 1, 1<<32 - 1, -1}, {7, 9, 1795634951}} {
		want := fmt.Sprintf("%d_%d_%d", uint32(k[0]), uint32(k[1]), k[2])
		if got := C2CMsgKey(uint32(k[0]), uint32(k[1]), k[2]); got != want {
			t.Errorf("msg key %q, want %q", got, want)
		}
	}
	sum := sha256.Sum256([]byte("x"))
	if got, want := string(AppendDedupKey("alice", "bob", 42, sum[:16])), fmt.Sprintf("c2c/%s/%s/%d/%x", "alice", "bob", 42, sum[:16]); got != want {
		t.Errorf("dedup key %q, want %q", got, want)
	}
}

func FuzzEncodeC2CMsg(f *testing.F) {
	f.Add("alice", "bob", "ccd", `[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`, `{"PushFlag":0}`)
	f.Add("a<", "b&", "\u2028", `[ {"a" : "x y"} ]`, ` null `)
	f.Fuzz(func(t *testing.T, from, to, ccd, body, opi string) {
		m := C2CMsg{From: from, To: to, CloudCustomData: ccd}
		if json.Valid([]byte(body)) {
			m.MsgBody = json.RawMessage(body)
		}
		if json.Valid([]byte(opi)) {
			m.OfflinePushInfo = json.RawMessage(opi)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Skip()
		}
		if got := EncodeC2CMsg(&m); string(got) != string(want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}
