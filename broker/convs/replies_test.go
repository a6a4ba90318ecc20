package convs

import (
	"encoding/json"
	"testing"
)

// TestReplies pins each typed reply's JSON: the fields, names and order the
// replies had when they were maps (json.Marshal sorts map keys), lists never
// null.
func TestReplies(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"conv.list", &ListResponse{ConvList: []Item{
			itemOf(State{Type: TypeC2C, Peer_Account: "bob", LastMsg: json.RawMessage(`{"MsgKey":"k"}`), LastMsgTime: 5, UnreadMsgNum: 2, LastSeq: 3, LastUserSeq: 4, ReadSeq: 1, RecvTotal: 9}),
			itemOf(State{Type: TypeGroup, GroupId: "g1"}),
		}, TotalCount: 2, AllUnreadMsgNum: 2},
			`{"AllUnreadMsgNum":2,"ConvList":[` +
				`{"LastMsg":{"MsgKey":"k"},"LastMsgTime":5,"LastSeq":3,"LastUserSeq":4,"Peer_Account":"bob","ReadSeq":1,"Type":1,"UnreadMsgNum":2},` +
				`{"GroupId":"g1","LastMsg":null,"LastMsgTime":0,"LastSeq":0,"LastUserSeq":0,"ReadSeq":0,"Type":2,"UnreadMsgNum":0}],"TotalCount":2}`},
		{"conv.list empty", &ListResponse{ConvList: []Item{}}, `{"AllUnreadMsgNum":0,"ConvList":[],"TotalCount":0}`},
		{"msg.read", &ReadResponse{UnreadMsgNum: 3}, `{"UnreadMsgNum":3}`},
		{"msg.history", &HistoryResponse{Complete: true, MsgList: []json.RawMessage{}}, `{"Complete":true,"LastSeq":0,"MsgCnt":0,"MsgList":[]}`},
		{"msg.receipt_info", &ReceiptInfoResponse{GroupId: "g1", GroupMsgReceiptList: []ReceiptCount{{MsgSeq: 1, ErrorCode: 20022}, {MsgSeq: 2}}},
			`{"GroupId":"g1","GroupMsgReceiptList":[{"ErrorCode":20022,"MsgSeq":1},{"ErrorCode":0,"MsgSeq":2,"ReadNum":0,"UnreadNum":0}]}`},
		{"msg.receipt_detail", &ReceiptDetailResponse{GroupId: "g1", MsgSeq: 2, ReadList: []string{}, UnreadList: []string{"a"}},
			`{"GroupId":"g1","MsgSeq":2,"ReadList":[],"UnreadList":["a"]}`},
		{"no fields", &Empty{}, `{}`},
	} {
		got, err := json.Marshal(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", tc.name, got, err, tc.want)
		}
	}
}

func TestTargetResolve(t *testing.T) {
	for _, tc := range []struct {
		t    Target
		kind int
		conv string
		ok   bool
	}{
		{C2CTarget("bob"), TypeC2C, "c2c/bob", true},
		{Target{Type: json.RawMessage(`"C2C"`), Peer_Account: "bob"}, TypeC2C, "c2c/bob", true},
		{Target{Type: json.RawMessage(`2`), GroupId: "g1"}, TypeGroup, "group/g1", true},
		{Target{Type: json.RawMessage(`"Group"`), GroupId: "g1"}, TypeGroup, "group/g1", true},
		{Target{Type: json.RawMessage(`3`)}, 0, "", false},
		{C2CTarget("b/ob"), 0, "", false},
	} {
		kind, conv, err := tc.t.resolve()
		if kind != tc.kind || conv != tc.conv || (err == nil) != tc.ok {
			t.Errorf("%+v: %d %q %v", tc.t, kind, conv, err)
		}
	}
}
