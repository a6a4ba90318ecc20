package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
)

// nextEventOf waits for the next event named name on c, skipping others.
func nextEventOf(c *Client, name string) Event {
	c.tb.Helper()
	for {
		if e := c.NextEvent(); e.Event == name {
			return e
		}
	}
}

func TestE2E_ReadReceiptsPerMessage(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Conversations.ReceiptMaxMembers = 3 })
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")

	// C2C: bob acknowledges one of alice's messages; alice is told.
	msg := Text("please read", Random())
	msg["IsNeedReadReceipt"] = 1
	alice.Publish1("im/send/c2c/bob", msg)
	got := nextEventOf(bob, "C2CMsg")
	alice.Publish1("im/send/c2c/bob", Text("no receipt wanted", Random()))
	plain := nextEventOf(bob, "C2CMsg")
	if r := bob.Req("msg.receipt", map[string]any{"Type": 1, "Peer_Account": "alice", "MsgKeyList": []string{got.Msg.MsgKey}}); code(r) != 0 {
		t.Fatalf("c2c receipt: %v", r)
	}
	rc := nextEventOf(alice, "MsgReadReceipt")
	if want := fmt.Sprintf(`"MsgKeyList":["%s"]`, got.Msg.MsgKey); !contains(rc.Raw, want) || !contains(rc.Raw, `"Peer_Account":"bob"`) {
		t.Fatalf("alice's receipt: %s", rc.Raw)
	}
	for _, tc := range []struct {
		body map[string]any
		code int
	}{
		{map[string]any{"Type": 1, "Peer_Account": "alice", "MsgKeyList": []string{plain.Msg.MsgKey}}, 10062},
		{map[string]any{"Type": 1, "Peer_Account": "alice", "MsgKeyList": []string{"1_2_3"}}, 20022},
	} {
		if r := bob.Req("msg.receipt", tc.body); code(r) != tc.code {
			t.Errorf("receipt %v: %v, want %d", tc.body, r, tc.code)
		}
	}

	// Group (≤ receipt_max_members): counts and who read.
	carol := b.Connect("carol", "carol")
	r := alice.Req("group.create", map[string]any{"Type": "Private", "Name": "rr",
		"MemberList": []any{map[string]any{"Member_Account": "bob"}, map[string]any{"Member_Account": "carol"}}})
	gid := r["GroupId"].(string)
	gm := Text("group read me", Random())
	gm["IsNeedReadReceipt"] = 1
	alice.Publish1("im/send/group/"+gidLevel(gid), gm)
	seqOf := func(e Event) uint64 {
		var v struct{ Msg struct{ MsgSeq uint64 } }
		mustUnmarshal(t, e.Raw, &v)
		return v.Msg.MsgSeq
	}
	seq := seqOf(nextEventOf(bob, "GroupMsg"))
	if r := bob.Req("msg.receipt", map[string]any{"Type": 2, "GroupId": gid, "MsgSeqList": []uint64{seq}}); code(r) != 0 {
		t.Fatalf("group receipt: %v", r)
	}
	ev := nextEventOf(alice, "GroupMsgReadReceipt")
	if !contains(ev.Raw, `"ReadNum":1`) || !contains(ev.Raw, `"UnreadNum":1`) {
		t.Fatalf("alice's group receipt: %s", ev.Raw)
	}
	info := alice.Req("msg.receipt_info", map[string]any{"GroupId": gid, "MsgSeqList": []uint64{seq}})
	item := info["GroupMsgReceiptList"].([]any)[0].(map[string]any)
	if item["ReadNum"].(float64) != 1 || item["UnreadNum"].(float64) != 1 {
		t.Fatalf("receipt_info: %v", info)
	}
	detail := alice.Req("msg.receipt_detail", map[string]any{"GroupId": gid, "MsgSeq": seq})
	if fmt.Sprint(detail["ReadList"]) != "[bob]" || fmt.Sprint(detail["UnreadList"]) != "[carol]" {
		t.Fatalf("receipt_detail: %v", detail)
	}
	if r := carol.Req("msg.receipt_detail", map[string]any{"GroupId": gid, "MsgSeq": seq}); code(r) != 10007 {
		t.Fatalf("a plain member saw who read another's message: %v", r)
	}
	// A group above receipt_max_members: 10060.
	r = alice.Req("group.invite", map[string]any{"GroupId": gid, "MemberList": []any{map[string]any{"Member_Account": "dave"}}})
	if code(r) != 0 {
		t.Fatalf("invite: %v", r)
	}
	if r := bob.Req("msg.receipt", map[string]any{"Type": 2, "GroupId": gid, "MsgSeqList": []uint64{seq}}); code(r) != 10060 {
		t.Fatalf("large group receipt: %v", r)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func mustUnmarshal(t *testing.T, raw string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
