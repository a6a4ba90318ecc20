package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Tencent compatibility of the REST API as server SDKs call it (issue 16):
// the older field names they still send, the conversations imports and
// REST sends leave alone, and the member fields of get_group_info.

const gsvc = "group_open_http_svc/"

// restSend sends text from -> to over REST sendmsg.
func restSend(b *Broker, from, to, text string) {
	b.tb.Helper()
	m := restText(text, Random())
	m["From_Account"], m["To_Account"] = from, to
	b.v4OK("openim/sendmsg", m)
}

// session is uid's recentcontact item with peer.
func session(b *Broker, uid, peer string) map[string]any {
	b.tb.Helper()
	for _, s := range items(b.v4OK("recentcontact/get_list", map[string]any{"From_Account": uid}), "SessionItem") {
		if s["To_Account"] == peer {
			return s
		}
	}
	b.tb.Fatalf("%s has no conversation with %s", uid, peer)
	return nil
}

// TestRESTOlderFieldNames: the field names older Tencent clients send are
// accepted beside the current ones, and answers carry the names of each
// command's page (both where Tencent's answers carry both).
// [REST-COMPAT-NAMES]
func TestRESTOlderFieldNames(t *testing.T) {
	b := StartBroker(t)
	b.importAccounts("alice", "bob")
	restSend(b, "alice", "bob", "one")
	restSend(b, "bob", "alice", "two")

	// admin_getroammsg with From_Account/To_Account.
	out := b.v4OK("openim/admin_getroammsg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MaxCnt": 10,
		"MinTime": 0, "MaxTime": time.Now().Unix() + 10})
	if out["MsgCnt"] != float64(2) {
		t.Fatalf("admin_getroammsg with From_Account/To_Account: %v", out)
	}

	// importmsg SyncFromOldSystem 1 (Tencent's older "realtime"): counted unread.
	imp := restText("imported", Random())
	imp["SyncFromOldSystem"], imp["From_Account"], imp["To_Account"], imp["MsgTimeStamp"] = 1, "carol", "bob", time.Now().Unix()
	b.v4OK("openim/importmsg", imp)
	if s := session(b, "bob", "carol"); s["UnreadMsgNum"] != float64(1) {
		t.Fatalf("a realtime import (1) is counted unread: %v", s)
	}
	imp["SyncFromOldSystem"] = 3
	wantCode(t, "SyncFromOldSystem 3", b.v4("openim/importmsg", imp), 90001)

	// ShutUpTime, ShutUpAllMember; ShuttedUinList, ShutUpAllMember, ShutUpUntil.
	b.v4OK(gsvc+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "old1", "Name": "old names",
		"MemberList": []map[string]any{{"Member_Account": "bob"}, {"Member_Account": "carol"}}})
	b.v4OK(gsvc+"forbid_send_msg", map[string]any{"GroupId": "old1", "Members_Account": []string{"bob"}, "ShutUpTime": 600})
	shut := items(b.v4OK(gsvc+"get_group_shutted_uin", map[string]any{"GroupId": "old1"}), "ShuttedUinList")
	if len(shut) != 1 || shut[0]["Member_Account"] != "bob" || shut[0]["ShuttedUntil"].(float64) < float64(time.Now().Unix()+500) {
		t.Fatalf("forbid_send_msg with ShutUpTime: %v", shut)
	}
	b.v4OK(gsvc+"modify_group_member_info", map[string]any{"GroupId": "old1", "Member_Account": "carol", "ShutUpTime": 300})
	b.v4OK(gsvc+"modify_group_base_info", map[string]any{"GroupId": "old1", "ShutUpAllMember": "On"})
	info := items(b.v4OK(gsvc+"get_group_info", map[string]any{"GroupIdList": []string{"old1"}}), "GroupInfo")[0]
	if info["MuteAllMember"] != "On" || info["ShutUpAllMember"] != "On" {
		t.Fatalf("modify_group_base_info with ShutUpAllMember: %v", info)
	}
	for _, m := range items(info, "MemberList") {
		if m["Member_Account"] == "carol" && (m["ShutUpUntil"] == nil || m["ShutUpUntil"].(float64) == 0 || m["ShutUpUntil"] != m["MuteUntil"]) {
			t.Fatalf("modify_group_member_info with ShutUpTime: %v", m)
		}
	}
	send := map[string]any{"GroupId": "old1", "From_Account": "carol", "Random": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "muted"}}}}
	wantCode(t, "muted by ShutUpTime", b.v4(gsvc+"send_group_msg", send), 10017)
}

// TestRESTImportAndSendKeepSenderConversation: an import and a REST send
// are the app acting for the sender, not the sender reading: the sender's
// unread count of the conversation stays, and a history import older than
// the conversation's last message does not move its time back.
// [REST-COMPAT-CONV]
func TestRESTImportAndSendKeepSenderConversation(t *testing.T) {
	b := StartBroker(t)
	b.importAccounts("alice", "bob")
	restSend(b, "bob", "alice", "b1")
	restSend(b, "bob", "alice", "b2")
	before := session(b, "alice", "bob")
	if before["UnreadMsgNum"] != float64(2) {
		t.Fatalf("alice's conversation with bob: %v", before)
	}
	imp := restText("from the old system", Random())
	imp["SyncFromOldSystem"], imp["From_Account"], imp["To_Account"], imp["MsgTimeStamp"] = 2, "alice", "bob", time.Now().Unix()-86400
	b.v4OK("openim/importmsg", imp)
	after := session(b, "alice", "bob")
	if after["UnreadMsgNum"] != float64(2) || after["MsgTime"] != before["MsgTime"] {
		t.Fatalf("a history import changed the sender's conversation: before %v, after %v", before, after)
	}
	if s := session(b, "bob", "alice"); s["MsgTime"].(float64) < before["MsgTime"].(float64) || s["UnreadMsgNum"] != float64(0) {
		t.Fatalf("a history import moved bob's conversation back or counted unread: %v", s)
	}
	restSend(b, "alice", "bob", "over REST")
	if s := session(b, "alice", "bob"); s["UnreadMsgNum"] != float64(2) {
		t.Fatalf("a REST sendmsg zeroed the sender's unread count: %v", s)
	}
	// A message alice sends herself (MQTT) still marks what came before read.
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", Text("typed", Random()))
	if s := session(b, "alice", "bob"); s["UnreadMsgNum"] != float64(0) {
		t.Fatalf("alice's own message should read the conversation: %v", s)
	}
}

// TestRESTGroupInfoMemberList: get_group_info lists members with Tencent's
// member fields (MsgFlag, MsgSeq, LastSendMsgTime…) under the
// ResponseFilter's member filters; MsgFlag changes are stored.
// [REST-COMPAT-GROUPINFO]
func TestRESTGroupInfoMemberList(t *testing.T) {
	b := StartBroker(t)
	b.v4OK(gsvc+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "gi1", "Name": "info",
		"MemberList": []map[string]any{{"Member_Account": "bob"}, {"Member_Account": "carol"}}})
	b.v4OK(gsvc+"modify_group_member_info", map[string]any{"GroupId": "gi1", "Member_Account": "bob", "MsgFlag": "AcceptNotNotify",
		"AppMemberDefinedData": []map[string]any{{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": "v2"}}})
	wantCode(t, "bad MsgFlag", b.v4(gsvc+"modify_group_member_info", map[string]any{"GroupId": "gi1", "Member_Account": "bob", "MsgFlag": "Loud"}), 10004)
	send := map[string]any{"GroupId": "gi1", "From_Account": "bob", "Random": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "hi"}}}}
	sent := b.v4OK(gsvc+"send_group_msg", send)

	byUser := func(list []map[string]any) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, m := range list {
			out[m["Member_Account"].(string)] = m
		}
		return out
	}
	// No ResponseFilter: every member with every field.
	info := items(b.v4OK(gsvc+"get_group_info", map[string]any{"GroupIdList": []string{"gi1"}}), "GroupInfo")[0]
	ms := byUser(items(info, "MemberList"))
	bob := ms["bob"]
	if len(ms) != 3 || bob["MsgFlag"] != "AcceptNotNotify" || ms["carol"]["MsgFlag"] != "AcceptAndNotify" ||
		bob["LastSendMsgTime"] != sent["MsgTime"] || ms["carol"]["LastSendMsgTime"] != float64(0) ||
		bob["MsgSeq"] == nil || bob["Role"] != "Member" || ms["alice"]["Role"] != "Owner" || bob["JoinTime"] == nil {
		t.Fatalf("get_group_info MemberList: %v", items(info, "MemberList"))
	}
	// The member fields, roles and app-defined keys asked for, only.
	info = items(b.v4OK(gsvc+"get_group_info", map[string]any{"GroupIdList": []string{"gi1"}, "ResponseFilter": map[string]any{
		"MemberInfoFilter": []string{"MsgFlag"}, "MemberRoleFilter": []string{"Member"}, "AppDefinedDataFilter_GroupMember": []string{"k2"}}}), "GroupInfo")[0]
	ms = byUser(items(info, "MemberList"))
	bob = ms["bob"]
	if len(ms) != 2 || ms["alice"] != nil || bob["MsgFlag"] != "AcceptNotNotify" || bob["Role"] != nil || bob["JoinTime"] != nil ||
		jsonAt(bob, "AppMemberDefinedData", 0, "Key") != "k2" || len(bob["AppMemberDefinedData"].([]any)) != 1 {
		t.Fatalf("filtered MemberList: %v", items(info, "MemberList"))
	}
	// A ResponseFilter without member filters: no MemberList.
	info = items(b.v4OK(gsvc+"get_group_info", map[string]any{"GroupIdList": []string{"gi1"},
		"ResponseFilter": map[string]any{"GroupBaseInfoFilter": []string{"Name"}}}), "GroupInfo")[0]
	if info["MemberList"] != nil {
		t.Fatalf("MemberList without a member filter: %v", info)
	}
	wantCode(t, "bad MemberRoleFilter", b.v4(gsvc+"get_group_info", map[string]any{"GroupIdList": []string{"gi1"},
		"ResponseFilter": map[string]any{"MemberRoleFilter": []string{"King"}}}), 10004)
	// get_group_member_info has the same fields and filters.
	page := b.v4OK(gsvc+"get_group_member_info", map[string]any{"GroupId": "gi1", "MemberRoleFilter": []string{"Owner"}})
	if ml := items(page, "MemberList"); len(ml) != 1 || ml[0]["Member_Account"] != "alice" || ml[0]["MsgFlag"] != "AcceptAndNotify" {
		t.Fatalf("get_group_member_info with MemberRoleFilter: %v", page)
	}
}

// TestE2E_GeneratedGroupIDTopics: a server-assigned GroupId looks like
// Tencent's "@TGS#…"; '#' is an MQTT wildcard, so its topics carry the id
// escaped (%23): a paho client subscribes to im/g/@TGS%23…, publishes to
// im/send/group/@TGS%23…, and receives its own and REST-sent messages with
// the real GroupId in the payload. [REST-COMPAT-TGS]
func TestE2E_GeneratedGroupIDTopics(t *testing.T) {
	b := StartBroker(t)
	gid := b.v4OK(gsvc+"create_group", map[string]any{"Owner_Account": "alice", "Type": "ChatRoom", "Name": "meeting",
		"MemberList": []map[string]any{{"Member_Account": "bob"}}})["GroupId"].(string)
	if !strings.HasPrefix(gid, "@TGS#") || len(gid) <= len("@TGS#") {
		t.Fatalf("generated GroupId %q", gid)
	}
	level := strings.ReplaceAll(gid, "#", "%23")
	bob := b.Connect("bob", "bob")
	tok := bob.Subscribe("im/g/"+level, 1, nil).(*paho.SubscribeToken)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil || tok.Result()["im/g/"+level] == 0x80 {
		t.Fatalf("subscribe im/g/%s: %v %v (0x80: refused)", level, tok.Error(), tok.Result())
	}
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/group/"+level, Text("over MQTT", Random()))
	send := map[string]any{"GroupId": gid, "From_Account": "alice", "Random": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "over REST"}}}}
	b.v4OK(gsvc+"send_group_msg", send)
	got := map[string]bool{}
	for len(got) < 2 {
		e := bob.NextEvent()
		if e.Event != "GroupMsg" {
			continue
		}
		var m struct{ Msg struct{ GroupId string } }
		_ = json.Unmarshal([]byte(e.Raw), &m)
		if m.Msg.GroupId != gid {
			t.Fatalf("payload GroupId %q, want %q: %s", m.Msg.GroupId, gid, e.Raw)
		}
		got[string(e.Msg.MsgBody)] = true
	}
	// group.sync replays on the same escaped topic.
	r := bob.Req("group.sync", map[string]any{"GroupId": gid, "Since": 0})
	if code(r) != 0 {
		t.Fatalf("group.sync of %s: %v", gid, r)
	}
	// A custom id may not take the generated form; an imported group keeps
	// the id it had at Tencent, "@TGS#" included, and works over MQTT.
	wantCode(t, "custom @TGS# id", b.v4(gsvc+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "Name": "x", "GroupId": "@TGS#MINE"}), 10015)
	const old = "@TGS#2FROMTENCENT"
	if out := b.v4OK(gsvc+"import_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "Name": "migrated", "GroupId": old}); out["GroupId"] != old {
		t.Fatalf("import_group with a Tencent id: %v", out)
	}
	alice.Publish1("im/send/group/"+gidLevel(old), Text("in the migrated group", Random()))
	if h := items(b.v4OK(gsvc+"group_msg_get_simple", map[string]any{"GroupId": old, "ReqMsgNumber": 1}), "RspMsgList"); len(h) != 1 || h[0]["From_Account"] != "alice" {
		t.Fatalf("history of the migrated group: %v", h)
	}
}

// TestRESTGroupMsgPriority: send_group_msg's MsgPriority is kept and
// group_msg_get_simple gives Tencent's number (1 High … 4 Lowest; 2 when
// none was given); an unknown priority is 10004. [REST-COMPAT-PRIORITY]
func TestRESTGroupMsgPriority(t *testing.T) {
	b := StartBroker(t)
	b.v4OK(gsvc+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "prio", "Name": "prio"})
	want := map[float64]float64{}
	for _, p := range []string{"High", "", "Low", "Lowest", "Normal"} {
		send := map[string]any{"GroupId": "prio", "From_Account": "alice", "Random": Random(),
			"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": p}}}}
		if p != "" {
			send["MsgPriority"] = p
		}
		seq := b.v4OK(gsvc+"send_group_msg", send)["MsgSeq"].(float64)
		want[seq] = map[string]float64{"High": 1, "": 2, "Normal": 2, "Low": 3, "Lowest": 4}[p]
	}
	seen := 0
	for _, m := range items(b.v4OK(gsvc+"group_msg_get_simple", map[string]any{"GroupId": "prio", "ReqMsgNumber": 20}), "RspMsgList") {
		if w, ok := want[m["MsgSeq"].(float64)]; ok {
			seen++
			if m["MsgPriority"] != w {
				t.Fatalf("message %v: MsgPriority %v, want %v", m["MsgSeq"], m["MsgPriority"], w)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("%d of the %d messages in the history", seen, len(want))
	}
	wantCode(t, "MsgPriority Urgent", b.v4(gsvc+"send_group_msg", map[string]any{"GroupId": "prio", "From_Account": "alice", "Random": Random(),
		"MsgPriority": "Urgent", "MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "x"}}}}), 10004)
}
