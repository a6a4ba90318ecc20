package convs

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

func convSamples() []State {
	msg, _ := json.Marshal(wire.C2CMsg{From: "alice", To: "bob", MsgSeq: 7, MsgRandom: 9, MsgTime: 1795634951, MsgKey: "7_9_1795634951",
		MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"<b>hi</b> & \u2028 张三 \"q\""}}]`)})
	return []State{
		{},
		{Type: TypeC2C, Peer_Account: "alice"},
		{Type: TypeC2C, Peer_Account: "alice", LastMsg: msg, LastMsgTime: 1795634951, LastSeq: 12, LastUserSeq: 40,
			UnreadMsgNum: 3, RecvTotal: 77, ReadUserSeq: 37, ReadSeq: 9},
		{Type: TypeGroup, GroupId: "@TGS#1<&>\"x\\", ReadSeq: 5, DeletedSeq: 5},
		{Type: TypeGroup, GroupId: "g1", LastMsg: json.RawMessage(`{"MsgSeq":3,"Text":"a<b"}`), LastMsgTime: -1,
			LastSeq: 1<<64 - 1, UnreadMsgNum: -2},
		{Type: TypeC2C, Peer_Account: "bad\x01utf8\xff"},
		{Type: TypeC2C, Peer_Account: "bob", LastMsgRef: 12, LastMsgTime: 1795634951, LastSeq: 13, LastUserSeq: 41, UnreadMsgNum: 1},
	}
}

// Encode writes what json.Marshal wrote, so every reader (conv.list,
// the REST unread queries, older binaries) reads the records as before.
func TestEncodeConvMatchesEncodingJSON(t *testing.T) {
	for i, st := range convSamples() {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := Encode(&st); string(got) != string(want) {
			t.Errorf("sample %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// Records written by earlier versions (encoding/json) decode, and decode
// to what was encoded (round trip through Encode too).
func TestDecodeConvOldAndNewRecords(t *testing.T) {
	for i, st := range convSamples() {
		old, _ := json.Marshal(st)
		for _, raw := range [][]byte{old, Encode(&st)} {
			var got State
			if err := Decode(raw, &got); err != nil {
				t.Fatalf("sample %d: %v", i, err)
			}
			var want State
			_ = json.Unmarshal(old, &want) // what the previous code read
			if !reflect.DeepEqual(got, want) {
				t.Errorf("sample %d: decoded %+v, want %+v", i, got, want)
			}
		}
	}
	// An old record without the later fields keeps the defaults given.
	st := State{Type: TypeC2C, Peer_Account: "alice"}
	if err := Decode([]byte(`{"LastMsgTime":5,"UnreadMsgNum":2}`), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != TypeC2C || st.Peer_Account != "alice" || st.UnreadMsgNum != 2 || st.LastMsgTime != 5 {
		t.Fatalf("decoded %+v", st)
	}
}

func TestDecodeConvCorruptIsAnError(t *testing.T) {
	for _, raw := range []string{"", "{", "\x00\x01\x02", `{"Type":"x"}`, `[1,2]`, `{"LastSeq":-1}`} {
		var st State
		err := Decode([]byte(raw), &st)
		if err == nil || !strings.Contains(err.Error(), "conversation record") {
			t.Errorf("%q: error %v, want a conversation record error", raw, err)
		}
	}
}

// Cache spares decoding a record only when its bytes are those the
// cached form was encoded to; the result is the same as decoding them.
func TestConvUpdateCacheEqualsDecoding(t *testing.T) {
	msg := json.RawMessage(`{"MsgKey":"k","Text":"<b>"}`)
	in := Update{UID: "bob", Conv: C2CID("alice"), State: State{Type: TypeC2C, Peer_Account: "alice"}, Msg: msg,
		MsgTime: 100, SeqFrom: 1, UserSeqFrom: 0, Incoming: true, CountsUnread: true}
	out := in
	out.UID, out.Conv, out.State, out.Incoming = "alice", C2CID("bob"), State{Type: TypeC2C, Peer_Account: "bob"}, false
	for _, u := range []Update{in, out} {
		name := Key(u.UID, u.Conv)
		cache := NewCache(16)
		viaCache, viaBytes := u.StorageUpdate(cache).Fn, u.StorageUpdate(nil).Fn
		update := func(fn func([]byte, bool, []storage.Pos) ([]byte, error), raw []byte, found bool, i uint64) []byte {
			t.Helper()
			nv, err := fn(raw, found, []storage.Pos{{Epoch: 1, Seq: 10 * i}, {Epoch: 1, Seq: i}})
			if err != nil {
				t.Fatal(err)
			}
			return nv
		}
		var raw []byte
		found := false
		for i := uint64(1); i <= 5; i++ {
			cached, decoded := update(viaCache, raw, found, i), update(viaBytes, raw, found, i)
			if string(cached) != string(decoded) {
				t.Fatalf("%s message %d: from the cached record %s, from the stored one %s", u.UID, i, cached, decoded)
			}
			raw, found = cached, true
		}
		var st State
		if err := Decode(raw, &st); err != nil {
			t.Fatal(err)
		}
		if u.Incoming && (st.UnreadMsgNum != 5 || st.RecvTotal != 5 || st.LastSeq != 5 || st.LastUserSeq != 50) {
			t.Fatalf("incoming: %+v", st)
		}
		if !u.Incoming && (st.UnreadMsgNum != 0 || st.ReadSeq != 5 || st.ReadUserSeq != 50) {
			t.Fatalf("outgoing: %+v", st)
		}
		// The cached form is what the next update starts from when the
		// bytes match (marked here), and ignored when they do not: another
		// writer changed the record.
		marked := cache.m[name]
		marked.st.RecvTotal = 1000
		cache.m[name] = marked
		if err := Decode(update(viaCache, raw, true, 6), &st); err != nil || st.RecvTotal < 1000 {
			t.Fatalf("cached form not used: %+v %v", st, err)
		}
		cache.m[name] = marked
		other := []byte(strings.Replace(string(raw), `"LastMsgTime":100`, `"LastMsgTime":99`, 1))
		if err := Decode(update(viaCache, other, true, 6), &st); err != nil || st.RecvTotal >= 1000 {
			t.Fatalf("cached form used for other bytes: %+v %v", st, err)
		}
	}
	// A stored record that does not decode is rebuilt from the message, as
	// before, rather than failing the commit or panicking.
	nv, err := in.StorageUpdate(NewCache(16)).Fn([]byte("\xffgarbage"), true, []storage.Pos{{Seq: 1}, {Seq: 2}})
	var st State
	if err != nil || Decode(nv, &st) != nil || st.Peer_Account != "alice" || st.UnreadMsgNum != 1 {
		t.Fatalf("rebuilt %s: %+v %v", nv, st, err)
	}
}

// The cache stays within its bound.
func TestConvCacheIsBounded(t *testing.T) {
	c := NewCache(16)
	for i := range 100 {
		c.put(Key("u", C2CID(strings.Repeat("p", i+1))), []byte("{}"), State{})
	}
	if n := len(c.m); n > 16 || n == 0 {
		t.Fatalf("%d records cached, bound 16", n)
	}
}

// FuzzConvRecord: the conversation record decoder never panics, and a
// record it accepts encodes (by hand, Encode) to valid JSON that decodes to
// the same state.
func FuzzConvRecord(f *testing.F) {
	for _, st := range convSamples() {
		f.Add(Encode(&st))
	}
	f.Add([]byte(`{"Type":1,"LastMsg":{"a":"<&>"},"UnreadMsgNum":-3}`))
	f.Add([]byte(`{"Type":2,"LastMsg":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var st State
		if Decode(raw, &st) != nil {
			return
		}
		enc := Encode(&st)
		if !json.Valid(enc) {
			t.Fatalf("%s: Encode gives invalid JSON %s", raw, enc)
		}
		var again State
		if err := Decode(enc, &again); err != nil {
			t.Fatalf("%s: Encode gives %s, which does not decode: %v", raw, enc, err)
		}
		if !sameJSON(st.LastMsg, again.LastMsg) {
			t.Fatalf("%s: LastMsg %s came back as %s", raw, st.LastMsg, again.LastMsg)
		}
		st.LastMsg, again.LastMsg = nil, nil
		if !reflect.DeepEqual(st, again) {
			t.Fatalf("%s: %+v came back as %+v", raw, st, again)
		}
	})
}

// sameJSON compares two JSON values by meaning (escapes and spacing aside).
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
