package convs

import (
	"encoding/json"
	"testing"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// entries is a Reader over a few pair-stream entries.
type entries map[string]map[uint64][]byte

func (e entries) Read(stream string, after uint64, limit int) (storage.Pos, []storage.Entry, error) {
	if p, ok := e[stream][after+1]; ok && limit > 0 {
		return storage.Pos{}, []storage.Entry{{Stream: stream, Pos: storage.Pos{Seq: after + 1}, Payload: p}}, nil
	}
	return storage.Pos{}, nil, nil
}

// A C2C update refers to the pair-stream entry instead of copying the
// message, also over a record written before (LastMsg inline); NoLastMsg
// leaves either form alone; LastMsgOf reads the referred message (a C2C
// event, or any other stored event such as a recall marker), and leaves an
// inline one as it is.
func TestLastMsgByReference(t *testing.T) {
	msg := []byte(`{"From_Account":"alice","MsgKey":"1_2_3","MsgBody":[]}`)
	marker := json.RawMessage(`{"From_Account":"alice","MsgFlagBits":8,"MsgKey":"4_5_6"}`)
	ev, _ := wire.EncodeEvent(wire.EventC2CMsg, marker)
	r := entries{PairStream("alice", "bob"): {7: wire.C2CEvent(msg), 9: ev}}

	old := State{Type: TypeC2C, Peer_Account: "alice", LastMsg: json.RawMessage(`{"old":1}`), LastMsgTime: 5, LastSeq: 3}
	u := Update{UID: "bob", Conv: C2CID("alice"), Msg: msg, MsgTime: 6, SeqFrom: 1, UserSeqFrom: 0, MsgRef: true}
	st := old
	u.apply(&st, []storage.Pos{{Seq: 40}, {Seq: 7}})
	if st.LastMsg != nil || st.LastMsgRef != 7 || st.LastSeq != 7 || st.LastMsgTime != 6 {
		t.Fatalf("by reference: %+v", st)
	}
	if err := LastMsgOf(r, "bob", &st); err != nil || string(st.LastMsg) != string(msg) {
		t.Fatalf("LastMsgOf: %s, %v", st.LastMsg, err)
	}
	hidden := u
	hidden.NoLastMsg = true
	st = old
	hidden.apply(&st, []storage.Pos{{Seq: 41}, {Seq: 8}})
	if string(st.LastMsg) != `{"old":1}` || st.LastMsgRef != 0 || st.LastSeq != 8 {
		t.Fatalf("NoLastMsg over an inline record: %+v", st)
	}
	if err := LastMsgOf(r, "bob", &st); err != nil || string(st.LastMsg) != `{"old":1}` {
		t.Fatalf("LastMsgOf of an inline record: %s, %v", st.LastMsg, err)
	}
	st = State{Type: TypeC2C, Peer_Account: "alice", LastMsgRef: 9}
	if err := LastMsgOf(r, "bob", &st); err != nil || string(st.LastMsg) != string(marker) {
		t.Fatalf("LastMsgOf of a replaced entry: %s, %v", st.LastMsg, err)
	}
	st = State{Type: TypeC2C, Peer_Account: "alice", LastMsgRef: 10}
	if err := LastMsgOf(r, "bob", &st); err != nil || st.LastMsg != nil {
		t.Fatalf("LastMsgOf of a missing entry: %s, %v", st.LastMsg, err)
	}
}
