package test

import (
	"fmt"
	"strings"
	"testing"
)

func restText(s string, random uint32) map[string]any {
	m := Text(s, random)
	return m
}

// TestRESTSendMsg: sendmsg reaches a paho client live and by sync, as
// From_Account or as the admin; its MsgTime and MsgKey are the stored
// ones. [REST-SENDMSG]
func TestRESTSendMsg(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	req := restText("hello over REST", Random())
	req["SyncOtherMachine"], req["From_Account"], req["To_Account"], req["CloudCustomData"] = 1, "alice", "bob", "ccd"
	out := b.v4OK("openim/sendmsg", req)
	key, _ := out["MsgKey"].(string)
	if key == "" || out["MsgTime"].(float64) == 0 {
		t.Fatalf("sendmsg: %v", out)
	}
	e := bob.NextEvent()
	if e.Msg.MsgKey != key || e.Msg.From_Account != "alice" || e.Msg.CloudCustomData != "ccd" || !strings.Contains(string(e.Msg.MsgBody), "hello over REST") {
		t.Fatalf("live event: %s", e.Raw)
	}
	if int64(out["MsgTime"].(float64)) != e.Msg.MsgTime {
		t.Fatalf("MsgTime %v, stored %d", out["MsgTime"], e.Msg.MsgTime)
	}
	synced := false
	for _, ev := range bob.SyncAll(0) {
		synced = synced || ev.Msg.MsgKey == key
	}
	if !synced {
		t.Fatal("the message is not in bob's sync")
	}
	// SyncOtherMachine 1: alice's devices get it too.
	alice := b.Connect("alice", "alice")
	found := false
	for _, ev := range alice.SyncAll(0) {
		found = found || ev.Msg.MsgKey == key
	}
	if !found {
		t.Fatal("SyncOtherMachine 1: not in alice's stream")
	}

	// No From_Account: the admin sends.
	req = restText("from the admin", Random())
	req["To_Account"] = "bob"
	b.v4OK("openim/sendmsg", req)
	if e := bob.NextEvent(); e.Msg.From_Account != b.Cfg.App.Admin {
		t.Fatalf("admin message: %s", e.Raw)
	}

	noRandom := map[string]any{"To_Account": "bob", "MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "x"}}}}
	wantCode(t, "no MsgRandom", b.v4("openim/sendmsg", noRandom), 90005)
	noTo := restText("x", Random())
	wantCode(t, "no To_Account", b.v4("openim/sendmsg", noTo), 90003)
	badBody := map[string]any{"To_Account": "bob", "MsgRandom": 1, "MsgBody": []any{map[string]any{"MsgType": "Nope"}}}
	wantCode(t, "bad MsgBody", b.v4("openim/sendmsg", badBody), 90002)
	badFrom := restText("x", Random())
	badFrom["To_Account"], badFrom["From_Account"] = "bob", strings.Repeat("f", 40)
	wantCode(t, "bad From_Account", b.v4("openim/sendmsg", badFrom), 20003)
}

// TestRESTBatchSendMsg: one message to many, per-recipient ErrorList, at
// most 500 recipients. [REST-BATCH]
func TestRESTBatchSendMsg(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	bad := strings.Repeat("q", 40)
	req := restText("to all", Random())
	req["From_Account"], req["To_Account"] = "alice", []string{"bob", "carol", bad}
	out := b.v4OK("openim/batchsendmsg", req)
	if el := items(out, "ErrorList"); len(el) != 1 || el[0]["To_Account"] != bad || el[0]["ErrorCode"].(float64) != 20003 {
		t.Fatalf("ErrorList: %v", out)
	}
	if out["MsgKey"] == "" {
		t.Fatalf("MsgKey: %v", out)
	}
	for _, c := range []*Client{bob, carol} {
		if e := c.NextEvent(); e.Msg.From_Account != "alice" || !strings.Contains(string(e.Msg.MsgBody), "to all") {
			t.Fatalf("%s got %s", c.User, e.Raw)
		}
	}
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	req["To_Account"] = many
	wantCode(t, "501 recipients", b.v4("openim/batchsendmsg", req), 90011)
	req["To_Account"] = []string{bad}
	out = b.v4("openim/batchsendmsg", req)
	wantCode(t, "every recipient fails", out, 20003)
	if len(items(out, "ErrorList")) != 1 {
		t.Fatalf("ErrorList when all fail: %v", out)
	}
}

// TestRESTRoamWithdrawRead: admin_getroammsg pages a conversation's
// history; admin_msgwithdraw reaches an offline client as MsgRecalled on
// sync; get_c2c_unread_msg_num and admin_set_msg_read. [REST-C2C-ADMIN]
func TestRESTRoamWithdrawRead(t *testing.T) {
	b := StartBroker(t)
	var keys []string
	for i := 0; i < 3; i++ {
		req := restText(fmt.Sprintf("m%d", i), Random())
		req["From_Account"], req["To_Account"] = "alice", "carol"
		keys = append(keys, b.v4OK("openim/sendmsg", req)["MsgKey"].(string))
	}
	roam := func(body map[string]any) map[string]any {
		return b.v4OK("openim/admin_getroammsg", body)
	}
	page := roam(map[string]any{"Operator_Account": "carol", "Peer_Account": "alice", "MaxCnt": 2})
	list := items(page, "MsgList")
	if len(list) != 2 || page["MsgCnt"].(float64) != 2 || page["Complete"].(float64) != 0 || list[0]["MsgKey"] != keys[2] {
		t.Fatalf("first page: %v", page)
	}
	if page["LastMsgKey"] != keys[1] || list[0]["From_Account"] != "alice" || list[0]["To_Account"] != "carol" {
		t.Fatalf("first page fields: %v", page)
	}
	page = roam(map[string]any{"Operator_Account": "carol", "Peer_Account": "alice", "MaxCnt": 2,
		"MaxTime": page["LastMsgTime"], "LastMsgKey": page["LastMsgKey"]})
	list = items(page, "MsgList")
	if len(list) != 1 || list[0]["MsgKey"] != keys[0] || page["Complete"].(float64) != 1 {
		t.Fatalf("second page: %v", page)
	}
	wantCode(t, "unknown LastMsgKey", b.v4("openim/admin_getroammsg", map[string]any{"Operator_Account": "carol", "Peer_Account": "alice", "LastMsgKey": "1_2_3"}), 90054)

	unread := b.v4OK("openim/get_c2c_unread_msg_num", map[string]any{"To_Account": "carol"})
	ul := items(unread, "C2CUnreadMsgNumList")
	if unread["AllC2CUnreadMsgNum"].(float64) != 3 || len(ul) != 1 || ul[0]["Peer_Account"] != "alice" || ul[0]["C2CUnreadMsgNum"].(float64) != 3 {
		t.Fatalf("unread: %v", unread)
	}
	unread = b.v4OK("openim/get_c2c_unread_msg_num", map[string]any{"To_Account": "carol", "Peer_Account": []string{"alice", "dave"}})
	if len(items(unread, "C2CUnreadMsgNumList")) != 2 || unread["AllC2CUnreadMsgNum"].(float64) != 3 {
		t.Fatalf("unread with peers: %v", unread)
	}

	// Recall while carol is offline; she sees it on sync.
	b.v4OK("openim/admin_msgwithdraw", map[string]any{"From_Account": "alice", "To_Account": "carol", "MsgKey": keys[1]})
	wantCode(t, "withdraw again", b.v4("openim/admin_msgwithdraw", map[string]any{"From_Account": "alice", "To_Account": "carol", "MsgKey": keys[1]}), 20023)
	wantCode(t, "withdraw unknown", b.v4("openim/admin_msgwithdraw", map[string]any{"From_Account": "alice", "To_Account": "carol", "MsgKey": "1_1_1"}), 20022)
	wantCode(t, "withdraw no From", b.v4("openim/admin_msgwithdraw", map[string]any{"To_Account": "carol", "MsgKey": keys[0]}), 90008)
	carol := b.Connect("carol", "carol")
	recalled := false
	for _, ev := range carol.SyncAll(0) {
		recalled = recalled || (ev.Event == "MsgRecalled" && strings.Contains(ev.Raw, keys[1]))
	}
	if !recalled {
		t.Fatal("no MsgRecalled on carol's sync")
	}
	page = roam(map[string]any{"Operator_Account": "alice", "Peer_Account": "carol", "MaxCnt": 10})
	for _, m := range items(page, "MsgList") {
		if flag := m["MsgFlagBits"].(float64); (m["MsgKey"] == keys[1]) != (flag == 8) {
			t.Fatalf("MsgFlagBits: %v", m)
		}
	}

	b.v4OK("openim/admin_set_msg_read", map[string]any{"Report_Account": "carol", "Peer_Account": "alice"})
	if u := b.v4OK("openim/get_c2c_unread_msg_num", map[string]any{"To_Account": "carol"}); u["AllC2CUnreadMsgNum"].(float64) != 0 {
		t.Fatalf("after admin_set_msg_read: %v", u)
	}
	// alice gets the read receipt live (she connects after the fact: by sync).
	alice := b.Connect("alice", "alice")
	receipt := false
	for _, ev := range alice.SyncAll(0) {
		receipt = receipt || ev.Event == "C2CReadReceipt"
	}
	if !receipt {
		t.Fatal("no C2CReadReceipt for alice")
	}
	wantCode(t, "unread without To_Account", b.v4("openim/get_c2c_unread_msg_num", map[string]any{}), 90003)
}
