package broker

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

func convSamples() []convState {
	msg, _ := json.Marshal(wire.C2CMsg{From: "alice", To: "bob", MsgSeq: 7, MsgRandom: 9, MsgTime: 1795634951, MsgKey: "7_9_1795634951",
		MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"<b>hi</b> & \u2028 张三 \"q\""}}]`)})
	return []convState{
		{},
		{Type: convC2C, Peer_Account: "alice"},
		{Type: convC2C, Peer_Account: "alice", LastMsg: msg, LastMsgTime: 1795634951, LastSeq: 12, LastUserSeq: 40,
			UnreadMsgNum: 3, RecvTotal: 77, ReadUserSeq: 37, ReadSeq: 9},
		{Type: convGroup, GroupId: "@TGS#1<&>\"x\\", ReadSeq: 5, DeletedSeq: 5},
		{Type: convGroup, GroupId: "g1", LastMsg: json.RawMessage(`{"MsgSeq":3,"Text":"a<b"}`), LastMsgTime: -1,
			LastSeq: 1<<64 - 1, UnreadMsgNum: -2},
		{Type: convC2C, Peer_Account: "bad\x01utf8\xff"},
	}
}

// encodeConv writes what json.Marshal wrote, so every reader (conv.list,
// the REST unread queries, older binaries) reads the records as before.
func TestEncodeConvMatchesEncodingJSON(t *testing.T) {
	for i, st := range convSamples() {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeConv(&st); string(got) != string(want) {
			t.Errorf("sample %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// Records written by earlier versions (encoding/json) decode, and decode
// to what was encoded (round trip through encodeConv too).
func TestDecodeConvOldAndNewRecords(t *testing.T) {
	for i, st := range convSamples() {
		old, _ := json.Marshal(st)
		for _, raw := range [][]byte{old, encodeConv(&st)} {
			var got convState
			if err := decodeConv(raw, &got); err != nil {
				t.Fatalf("sample %d: %v", i, err)
			}
			var want convState
			_ = json.Unmarshal(old, &want) // what the previous code read
			if !reflect.DeepEqual(got, want) {
				t.Errorf("sample %d: decoded %+v, want %+v", i, got, want)
			}
		}
	}
	// An old record without the later fields keeps the defaults given.
	st := convState{Type: convC2C, Peer_Account: "alice"}
	if err := decodeConv([]byte(`{"LastMsgTime":5,"UnreadMsgNum":2}`), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != convC2C || st.Peer_Account != "alice" || st.UnreadMsgNum != 2 || st.LastMsgTime != 5 {
		t.Fatalf("decoded %+v", st)
	}
}

func TestDecodeConvCorruptIsAnError(t *testing.T) {
	for _, raw := range []string{"", "{", "\x00\x01\x02", `{"Type":"x"}`, `[1,2]`, `{"LastSeq":-1}`} {
		var st convState
		err := decodeConv([]byte(raw), &st)
		if err == nil || !strings.Contains(err.Error(), "conversation record") {
			t.Errorf("%q: error %v, want a conversation record error", raw, err)
		}
	}
}

// The committer hands a hot record's decoded form from one update to the
// next; the result must be the same as reading the stored bytes back, and
// the shared form must never be changed.
func TestConvUpdateDecodedEqualsStored(t *testing.T) {
	msg := json.RawMessage(`{"MsgKey":"k"}`)
	in := convUpdate{uid: "bob", conv: c2cConvID("alice"), state: convState{Type: convC2C, Peer_Account: "alice"}, msg: msg,
		msgTime: 100, seqFrom: 1, userSeqFrom: 0, incoming: true, countsUnread: true}
	out := in
	out.uid, out.conv, out.state, out.incoming = "alice", c2cConvID("bob"), convState{Type: convC2C, Peer_Account: "bob"}, false
	for _, u := range []convUpdate{in, out} {
		fn := u.storageUpdate().Decoded
		var raw []byte
		var prev any
		found := false
		for i := uint64(1); i <= 5; i++ {
			pos := []storage.Pos{{Epoch: 1, Seq: 10 * i}, {Epoch: 1, Seq: i}}
			var before convState
			if prev != nil {
				before = *prev.(*convState)
			}
			viaPrev, next := fn(nil, prev, prev != nil, pos)
			viaBytes, _ := fn(raw, nil, found, pos)
			if string(viaPrev) != string(viaBytes) {
				t.Fatalf("%s message %d: from the decoded record %s, from the stored one %s", u.uid, i, viaPrev, viaBytes)
			}
			if prev != nil && !reflect.DeepEqual(before, *prev.(*convState)) {
				t.Fatal("the shared decoded record was changed")
			}
			raw, prev, found = viaBytes, next, true
		}
		var st convState
		if err := decodeConv(raw, &st); err != nil {
			t.Fatal(err)
		}
		if u.incoming && (st.UnreadMsgNum != 5 || st.RecvTotal != 5 || st.LastSeq != 5 || st.LastUserSeq != 50) {
			t.Fatalf("incoming: %+v", st)
		}
		if !u.incoming && (st.UnreadMsgNum != 0 || st.ReadSeq != 5 || st.ReadUserSeq != 50) {
			t.Fatalf("outgoing: %+v", st)
		}
	}
	// A stored record that does not decode is rebuilt from the message, as
	// before, rather than failing the commit or panicking.
	nv, _ := in.storageUpdate().Decoded([]byte("\xffgarbage"), nil, true, []storage.Pos{{Seq: 1}, {Seq: 2}})
	var st convState
	if err := decodeConv(nv, &st); err != nil || st.Peer_Account != "alice" || st.UnreadMsgNum != 1 {
		t.Fatalf("rebuilt %s: %+v %v", nv, st, err)
	}
}
