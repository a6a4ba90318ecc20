package wire

import "testing"

// TestRecallMarker: the marker keeps every other field as stored (numbers
// exact), in name order as markers always were, and refuses a second recall.
func TestRecallMarker(t *testing.T) {
	stored := `{"Event":"C2CMsg","Msg":{"From_Account":"alice","To_Account":"bob","MsgSeq":4294967295,"MsgRandom":7,"MsgTime":1700000000,` +
		`"MsgKey":"4294967295_7_1700000000","MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}],"CloudCustomData":"x","IsNeedReadReceipt":1}}`
	m, err := RecallMarker([]byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"From_Account":"alice","IsNeedReadReceipt":1,"MsgBody":[],"MsgFlagBits":8,"MsgKey":"4294967295_7_1700000000","MsgRandom":7,` +
		`"MsgSeq":4294967295,"MsgTime":1700000000,"To_Account":"bob"}`
	if string(m.Msg) != want || string(m.Event) != `{"Event":"C2CMsg","Msg":`+want+`}` {
		t.Fatalf("marker:\n%s\n%s", m.Msg, m.Event)
	}
	if m.From_Account != "alice" || m.To_Account != "bob" || m.MsgTime != 1700000000 {
		t.Fatalf("marker fields %+v", m)
	}
	if _, err := RecallMarker(m.Event); err == nil {
		t.Fatal("a recalled message recalled again")
	}
}
