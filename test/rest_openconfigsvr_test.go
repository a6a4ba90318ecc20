package test

import (
	"strings"
	"testing"
	"time"
)

// TestRESTGetAppInfo: getappinfo reports real counters. [REST-APPINFO]
func TestRESTGetAppInfo(t *testing.T) {
	b := StartBroker(t)
	b.Connect("bob", "bob")
	b.v4OK("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []string{"alice", "bob"}})
	for i := 0; i < 2; i++ {
		req := Text("count me", Random())
		req["From_Account"], req["To_Account"] = "alice", "bob"
		b.v4OK("openim/sendmsg", req)
	}
	b.v4OK("group_open_http_svc/create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "ai", "Name": "ai"})
	res := items(b.v4OK("openconfigsvr/getappinfo", map[string]any{}), "Result")
	if len(res) != 30 || res[0]["Date"] != time.Now().UTC().Format("20060102") {
		t.Fatalf("Result: %v", res)
	}
	want := map[string]string{"C2CUpMsgNum": "2", "UpMsgNum": "2", "RegistUserNumTotal": "2", "RegistUserNumOneDay": "2", "GroupAllGroupNum": "1",
		"GroupNewGroupNum": "1", "OnlineUserNum": "1", "ActiveUserNum": "1", "MaxOnlineNum": "1"}
	for k, v := range want {
		if res[0][k] != v {
			t.Fatalf("%s = %v, want %s (%v)", k, res[0][k], v, res[0])
		}
	}
	one := items(b.v4OK("openconfigsvr/getappinfo", map[string]any{"RequestField": []string{"C2CUpMsgNum"}}), "Result")
	if len(one[0]) != 2 || one[0]["C2CUpMsgNum"] != "2" || one[0]["Date"] == nil {
		t.Fatalf("RequestField: %v", one)
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
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("group ok", Random()))
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
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("muted in group", Random()))
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
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("expired", Random()))
	if e := nextEventOf(bob, "GroupMsg"); !strings.Contains(string(e.Msg.MsgBody), "expired") {
		t.Fatalf("group after expiry: %s", e.Raw)
	}
}
