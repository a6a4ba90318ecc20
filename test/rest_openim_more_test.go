package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// TestRESTBatchSendNoCallbacks: batchsendmsg fires no third-party
// callbacks (Tencent), while sendmsg fires both C2C send callbacks.
// [REST-BATCHSEND-NOCB]
func TestRESTBatchSendNoCallbacks(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Token, c.Callbacks.Timeout = cb.URL, "s3cret", 300*time.Millisecond
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

// TestRESTNoSpeaking: setnospeaking mutes an account globally; MQTT and
// REST sends are refused (20012 one-to-one, 10017 group), the app admin is
// never muted, and a timed mute expires. [REST-NOSPEAKING]
func TestRESTNoSpeaking(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	r := alice.Req("group.create", map[string]any{"Type": "Private", "Name": "ns", "MemberList": []any{map[string]any{"Member_Account": "bob"}}})
	gid := r["GroupId"].(string)
	const cfg = "openconfigsvr/"
	get := func(uid string) (float64, float64) {
		out := b.v4OK(cfg+"getnospeaking", map[string]any{"Get_Account": uid})
		return out["C2CmsgNospeakingTime"].(float64), out["GroupmsgNospeakingTime"].(float64)
	}
	if c, g := get("alice"); c != 0 || g != 0 {
		t.Fatalf("fresh account muted: %v %v", c, g)
	}
	wantCode(t, "no Set_Account", b.v4(cfg+"setnospeaking", map[string]any{"C2CmsgNospeakingTime": 1}), 60003)

	// C2C muted forever, group not.
	b.v4OK(cfg+"setnospeaking", map[string]any{"Set_Account": "alice", "C2CmsgNospeakingTime": 4294967295, "GroupmsgNospeakingTime": 0})
	if c, g := get("alice"); c != 4294967295 || g != 0 {
		t.Fatalf("get: %v %v", c, g)
	}
	alice.Publish1("im/send/c2c/bob", Text("muted", Random()))
	if rep := alice.NextReply(); rep["ErrorCode"].(float64) != 20012 {
		t.Fatalf("muted c2c: %v", rep)
	}
	req := restText("muted over REST", Random())
	req["From_Account"], req["To_Account"] = "alice", "bob"
	wantCode(t, "REST c2c by a muted sender", b.v4("openim/sendmsg", req), 20012)
	alice.Publish1("im/send/group/"+gid, Text("group ok", Random()))
	if e := nextEventOf(bob, "GroupMsg"); !strings.Contains(string(e.Msg.MsgBody), "group ok") {
		t.Fatalf("group: %s", e.Raw)
	}

	// The admin is never muted.
	b.v4OK(cfg+"setnospeaking", map[string]any{"Set_Account": b.Cfg.App.Admin, "C2CmsgNospeakingTime": 4294967295})
	adm := restText("from the admin", Random())
	adm["To_Account"] = "bob"
	b.v4OK("openim/sendmsg", adm)
	if e := nextEventOf(bob, "C2CMsg"); e.Msg.From_Account != b.Cfg.App.Admin {
		t.Fatalf("admin message: %s", e.Raw)
	}

	// Group muted for 3 s, C2C unmuted; then the mute expires.
	b.v4OK(cfg+"setnospeaking", map[string]any{"Set_Account": "alice", "C2CmsgNospeakingTime": 0, "GroupmsgNospeakingTime": 3})
	setAt := time.Now().Unix()
	if c, g := get("alice"); c != 0 || g < 2 || g > 3 {
		t.Fatalf("get: %v %v", c, g)
	}
	alice.Publish1("im/send/group/"+gid, Text("muted in group", Random()))
	if rep := alice.NextReply(); rep["ErrorCode"].(float64) != 10017 {
		t.Fatalf("muted group send: %v", rep)
	}
	alice.Publish1("im/send/c2c/bob", Text("unmuted", Random()))
	if e := nextEventOf(bob, "C2CMsg"); !strings.Contains(string(e.Msg.MsgBody), "unmuted") {
		t.Fatalf("c2c after unmute: %s", e.Raw)
	}
	// Wait for the wall clock to pass the mute's last second.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for time.Now().Unix() < setAt+3 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("clock did not advance")
		}
	}
	if c, g := get("alice"); c != 0 || g != 0 {
		t.Fatalf("after expiry: %v %v", c, g)
	}
	alice.Publish1("im/send/group/"+gid, Text("expired", Random()))
	if e := nextEventOf(bob, "GroupMsg"); !strings.Contains(string(e.Msg.MsgBody), "expired") {
		t.Fatalf("group after expiry: %s", e.Raw)
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

// TestRESTFriendImport: friend_import adds one-way friends without
// approval, with the old AddTime and remark. [REST-FRIEND-IMPORT]
func TestRESTFriendImport(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	out := b.v4OK("sns/friend_import", map[string]any{"From_Account": "alice", "AddFriendItem": []any{
		map[string]any{"To_Account": "bob", "Remark": "old pal", "RemarkTime": 1500000001, "AddTime": 1500000000,
			"AddSource": "AddSource_Type_Old", "GroupName": []string{"school"}},
		map[string]any{"To_Account": "carol", "AddSource": "AddSource_Type_Old",
			"CustomItem": []any{map[string]any{"Tag": "Tag_SNS_Custom_x", "Value": "v"}}},
	}})
	res := string(mustJSON(out))
	if !strings.Contains(res, `{"ResultCode":0,"ResultInfo":"","To_Account":"bob"}`) || !strings.Contains(res, `"Fail_Account":["carol"]`) {
		t.Fatalf("friend_import: %s", res)
	}
	if e := nextEventOf(bob, "FriendAdded"); !strings.Contains(e.Raw, `"From_Account":"alice"`) {
		t.Fatalf("bob: %s", e.Raw)
	}
	list := string(mustJSON(b.v4OK("sns/friend_get", map[string]any{"From_Account": "alice", "StartIndex": 0})))
	if !strings.Contains(list, `"bob"`) || !strings.Contains(list, "1500000000") || !strings.Contains(list, "old pal") || !strings.Contains(list, "school") {
		t.Fatalf("friend_get: %s", list)
	}
	// One-way: bob's list is empty.
	if s := string(mustJSON(b.v4OK("sns/friend_get", map[string]any{"From_Account": "bob", "StartIndex": 0}))); strings.Contains(s, `"alice"`) {
		t.Fatalf("bob's list: %s", s)
	}
	again := string(mustJSON(b.v4OK("sns/friend_import", map[string]any{"From_Account": "alice", "AddFriendItem": []any{map[string]any{"To_Account": "bob"}}})))
	if !strings.Contains(again, `"ResultCode":30001`) {
		t.Fatalf("import again: %s", again)
	}
	wantCode(t, "no items", b.v4("sns/friend_import", map[string]any{"From_Account": "alice"}), 30001)
	wantCode(t, "no From_Account", b.v4("sns/friend_import", map[string]any{"AddFriendItem": []any{map[string]any{"To_Account": "bob"}}}), 30001)
}
