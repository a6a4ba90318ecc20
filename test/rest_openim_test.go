package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
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

// TestRESTBatchSendOneOperation: batchsendmsg is one operation: one stamp
// (every copy has the reply's MsgKey), a recipient listed twice gets one
// copy, and a resend of the same batch stores nothing. [IM-BATCHSEND]
func TestRESTBatchSendOneOperation(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	req := restText("once", Random())
	req["From_Account"], req["To_Account"] = "alice", []string{"bob", "carol", "bob"}
	key := b.v4OK("openim/batchsendmsg", req)["MsgKey"]
	if again := b.v4OK("openim/batchsendmsg", req)["MsgKey"]; again != key {
		t.Fatalf("resend answered MsgKey %v, first %v", again, key)
	}
	for _, c := range []*Client{bob, carol} {
		var got []string
		seen := map[uint64]bool{} // the live copy and the replayed one: as a client, by Seq
		for _, e := range c.SyncAll(0) {
			if e.Event == "C2CMsg" && !seen[e.Seq] {
				seen[e.Seq] = true
				got = append(got, e.Msg.MsgKey)
			}
		}
		if len(got) != 1 || got[0] != key {
			t.Fatalf("%s has %v, want one copy with MsgKey %v", c.User, got, key)
		}
	}
}

// TestRESTRoamWithdrawRead: admin_getroammsg pages a conversation's
// history; admin_msgwithdraw reaches an offline client as MsgRecalled on
// sync; get_c2c_unread_msg_num and admin_set_msg_read. [REST-C2C-ADMIN]
func TestRESTRoamWithdrawRead(t *testing.T) {
	b := StartBroker(t)
	b.importAccounts("carol")
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

// TestRESTBatchSendNoCallbacks: batchsendmsg fires no third-party
// callbacks (Tencent), while sendmsg fires both C2C send callbacks.
// [REST-BATCHSEND-NOCB]
func TestRESTBatchSendNoCallbacks(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Token, c.Callbacks.Timeout = cb.URL, "s3cret", 300*time.Millisecond
		c.Callbacks.Commands = config.CallbackCommands // every command imbroker sends
	})
	bob := b.Connect("bob", "bob")

	batch := restText("batch-no-callback", Random())
	batch["From_Account"], batch["To_Account"] = "alice", []string{"bob"}
	b.v4OK("openim/batchsendmsg", batch)
	if e := bob.NextEvent(); !strings.Contains(string(e.Msg.MsgBody), "batch-no-callback") {
		t.Fatalf("bob got %s", e.Raw)
	}

	single := restText("single-with-callback", Random())
	single["From_Account"], single["To_Account"] = "alice", "bob"
	b.v4OK("openim/sendmsg", single)
	if e := bob.NextEvent(); !strings.Contains(string(e.Msg.MsgBody), "single-with-callback") {
		t.Fatalf("bob got %s", e.Raw)
	}
	// Collect callbacks until sendmsg's after-send one: sendmsg's two
	// arrive, batchsendmsg's never do.
	sawBefore := false
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-cb.got:
			raw, _ := json.Marshal(r.Body)
			if strings.Contains(string(raw), "batch-no-callback") {
				t.Fatalf("batchsendmsg fired %s: %s", r.Command, raw)
			}
			if r.Command == "C2C.CallbackBeforeSendMsg" && strings.Contains(string(raw), "single-with-callback") {
				sawBefore = true
			}
			if r.Command == "C2C.CallbackAfterSendMsg" && strings.Contains(string(raw), "single-with-callback") {
				if !sawBefore {
					t.Fatal("sendmsg: no before-send callback")
				}
				return
			}
		case <-deadline:
			t.Fatal("sendmsg: no after-send callback within 5s")
		}
	}
}

// TestRESTImportMsg: importmsg stores a message with its old MsgTimeStamp;
// mode 2 (history) counts no unread, mode 5 (realtime) does; both are in
// the pair's roaming history and reach the recipient's stream. [REST-IMPORTMSG]
func TestRESTImportMsg(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	unread := func() float64 {
		return b.v4OK("openim/get_c2c_unread_msg_num", map[string]any{"To_Account": "bob"})["AllC2CUnreadMsgNum"].(float64)
	}
	hist := restText("old history", Random())
	hist["SyncFromOldSystem"], hist["From_Account"], hist["To_Account"], hist["MsgTimeStamp"], hist["MsgSeq"] = 2, "alice", "bob", 1600000000, 7
	b.v4OK("openim/importmsg", hist)
	e := nextEventOf(bob, "C2CMsg")
	if e.Msg.MsgTime != 1600000000 || e.Msg.MsgSeq != 7 || !strings.Contains(string(e.Msg.MsgBody), "old history") {
		t.Fatalf("imported history: %s", e.Raw)
	}
	if n := unread(); n != 0 {
		t.Fatalf("mode 2 counted %v unread", n)
	}
	rt := restText("old realtime", Random())
	rt["SyncFromOldSystem"], rt["From_Account"], rt["To_Account"], rt["MsgTimeStamp"] = 5, "alice", "bob", 1600000100
	b.v4OK("openim/importmsg", rt)
	if e := nextEventOf(bob, "C2CMsg"); e.Msg.MsgTime != 1600000100 {
		t.Fatalf("imported realtime: %s", e.Raw)
	}
	if n := unread(); n != 1 {
		t.Fatalf("mode 5: unread %v, want 1", n)
	}
	roam := b.v4OK("openim/admin_getroammsg", map[string]any{"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10})
	s := string(mustJSON(roam))
	if !strings.Contains(s, `"MsgTimeStamp":1600000000`) || !strings.Contains(s, `"MsgTimeStamp":1600000100`) {
		t.Fatalf("roaming history: %s", s)
	}

	noTime := restText("x", Random())
	noTime["SyncFromOldSystem"], noTime["From_Account"], noTime["To_Account"] = 2, "alice", "bob"
	wantCode(t, "no MsgTimeStamp", b.v4("openim/importmsg", noTime), 90006)
	noTime["MsgTimeStamp"], noTime["SyncFromOldSystem"] = 1600000000, 3
	wantCode(t, "bad SyncFromOldSystem", b.v4("openim/importmsg", noTime), 90001)
	noTime["SyncFromOldSystem"] = 2
	delete(noTime, "From_Account")
	wantCode(t, "no From_Account", b.v4("openim/importmsg", noTime), 90008)
}

// TestRESTModifyC2CMsg: modify_c2c_msg overwrites a stored message in the
// pair's history and tells both users (MsgModified). [REST-MODIFYMSG]
func TestRESTModifyC2CMsg(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	req := restText("original text", Random())
	req["From_Account"], req["To_Account"] = "alice", "bob"
	key := b.v4OK("openim/sendmsg", req)["MsgKey"].(string)
	nextEventOf(bob, "C2CMsg")
	nextEventOf(alice, "C2CMsg")

	body := []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "edited text"}}}
	b.v4OK("openim/modify_c2c_msg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgKey": key, "MsgBody": body, "CloudCustomData": "cc2"})
	for _, c := range []*Client{alice, bob} {
		if e := nextEventOf(c, "MsgModified"); e.Msg.MsgKey != key || e.Msg.From_Account != "alice" || e.Msg.To_Account != "bob" {
			t.Fatalf("%s: %s", c.User, e.Raw)
		}
	}
	roam := string(mustJSON(b.v4OK("openim/admin_getroammsg", map[string]any{"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10})))
	if !strings.Contains(roam, "edited text") || strings.Contains(roam, "original text") || !strings.Contains(roam, `"cc2"`) {
		t.Fatalf("history after modify: %s", roam)
	}
	// Only the custom data: the body stays.
	b.v4OK("openim/modify_c2c_msg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgKey": key, "CloudCustomData": "cc3"})
	roam = string(mustJSON(b.v4OK("openim/admin_getroammsg", map[string]any{"Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 10})))
	if !strings.Contains(roam, "edited text") || !strings.Contains(roam, `"cc3"`) {
		t.Fatalf("history after second modify: %s", roam)
	}

	bad := []any{map[string]any{"MsgType": "TIMNoSuchElem", "MsgContent": map[string]any{}}}
	wantCode(t, "bad MsgBody", b.v4("openim/modify_c2c_msg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgKey": key, "MsgBody": bad}), 90002)
	wantCode(t, "unknown MsgKey", b.v4("openim/modify_c2c_msg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgKey": "1_2_3", "MsgBody": body}), 20022)
	wantCode(t, "not the sender", b.v4("openim/modify_c2c_msg", map[string]any{"From_Account": "bob", "To_Account": "alice", "MsgKey": key, "MsgBody": body}), 20022)
	wantCode(t, "no MsgKey", b.v4("openim/modify_c2c_msg", map[string]any{"From_Account": "alice", "To_Account": "bob"}), 90054)
}
