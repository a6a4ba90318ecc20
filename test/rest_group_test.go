package test

import (
	"strings"
	"testing"
)

// TestRESTGroups: the group APIs drive the group core as the admin;
// messages sent over REST reach members' paho clients. [REST-GROUP]
func TestRESTGroups(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	const g = "group_open_http_svc/"
	created := b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "rest1", "Name": "REST group",
		"MemberList": []map[string]any{{"Member_Account": "bob"}}})
	if created["GroupId"] != "rest1" {
		t.Fatalf("create_group: %v", created)
	}
	wantCode(t, "GroupId taken", b.v4(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "rest1", "Name": "x"}), 10021)

	info := b.v4OK(g+"get_group_info", map[string]any{"GroupIdList": []string{"rest1"}})
	if gi := items(info, "GroupInfo"); len(gi) != 1 || gi[0]["Name"] != "REST group" {
		t.Fatalf("get_group_info: %v", info)
	}
	add := b.v4OK(g+"add_group_member", map[string]any{"GroupId": "rest1", "MemberList": []map[string]any{{"Member_Account": "carol"}, {"Member_Account": "bob"}}})
	ml := items(add, "MemberList")
	if len(ml) != 2 || ml[0]["Result"].(float64) != 1 || ml[1]["Result"].(float64) != 2 {
		t.Fatalf("add_group_member: %v", add)
	}
	if mi := b.v4OK(g+"get_group_member_info", map[string]any{"GroupId": "rest1"}); mi["MemberNum"].(float64) != 3 {
		t.Fatalf("get_group_member_info: %v", mi)
	}
	roles := map[string]string{}
	for _, it := range items(b.v4OK(g+"get_role_in_group", map[string]any{"GroupId": "rest1", "User_Account": []string{"alice", "bob", "dave"}}), "UserIdList") {
		roles[it["Member_Account"].(string)] = it["Role"].(string)
	}
	if roles["alice"] != "Owner" || roles["bob"] != "Member" || roles["dave"] != "NotMember" {
		t.Fatalf("get_role_in_group: %v", roles)
	}
	if j := b.v4OK(g+"get_joined_group_list", map[string]any{"Member_Account": "carol"}); j["TotalCount"].(float64) != 1 {
		t.Fatalf("get_joined_group_list: %v", j)
	}

	// Drain bob's tips, then a message over REST reaches him live.
	for len(bob.Events) > 0 {
		<-bob.Events
	}
	send := map[string]any{"GroupId": "rest1", "From_Account": "alice", "Random": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "group over REST"}}}}
	sent := b.v4OK(g+"send_group_msg", send)
	seq := sent["MsgSeq"].(float64)
	if seq == 0 || sent["MsgTime"].(float64) == 0 {
		t.Fatalf("send_group_msg: %v", sent)
	}
	for {
		e := bob.NextEvent()
		if strings.Contains(string(e.Msg.MsgBody), "group over REST") {
			break
		}
	}
	hist := b.v4OK(g+"group_msg_get_simple", map[string]any{"GroupId": "rest1", "ReqMsgNumber": 5})
	rsp := items(hist, "RspMsgList")
	if len(rsp) == 0 || rsp[0]["From_Account"] != "alice" || rsp[0]["MsgSeq"].(float64) != seq || rsp[0]["IsSystemMsg"].(float64) != 0 ||
		rsp[0]["MsgTimeStamp"].(float64) == 0 || !strings.Contains(string(mustJSON(rsp[0]["MsgBody"])), "group over REST") {
		t.Fatalf("group_msg_get_simple: %v", hist)
	}
	rec := b.v4OK(g+"group_msg_recall", map[string]any{"GroupId": "rest1", "MsgSeqList": []map[string]any{{"MsgSeq": seq}, {"MsgSeq": 9999}}})
	if rl := items(rec, "RecallRetList"); len(rl) != 2 || rl[0]["RetCode"].(float64) != 0 || rl[1]["RetCode"].(float64) != 10030 {
		t.Fatalf("group_msg_recall (a missing seq answers Tencent's 10030): %v", rec)
	}
	if p := rsp[0]["MsgPriority"]; p != float64(2) {
		t.Fatalf("MsgPriority is Tencent's integer (2 Normal), got %#v", p)
	}

	// Recalled messages: left out by default, IsPlaceMsg 2 with
	// WithRecalledMsg 1 (Tencent's group_msg_get_simple); no MsgFlagBits.
	hist = b.v4OK(g+"group_msg_get_simple", map[string]any{"GroupId": "rest1", "ReqMsgSeq": seq, "ReqMsgNumber": 1})
	if rsp := items(hist, "RspMsgList"); len(rsp) != 0 {
		t.Fatalf("recalled message listed without WithRecalledMsg: %v", hist)
	}
	hist = b.v4OK(g+"group_msg_get_simple", map[string]any{"GroupId": "rest1", "ReqMsgSeq": seq, "ReqMsgNumber": 1, "WithRecalledMsg": 1})
	if rsp := items(hist, "RspMsgList"); len(rsp) != 1 || rsp[0]["IsPlaceMsg"] != float64(2) || rsp[0]["MsgFlagBits"] != nil ||
		rsp[0]["MsgSeq"] != seq || len(rsp[0]["MsgBody"].([]any)) != 0 {
		t.Fatalf("recalled message with WithRecalledMsg 1: %v", hist)
	}
	wantCode(t, "WithRecalledMsg 2", b.v4(g+"group_msg_get_simple", map[string]any{"GroupId": "rest1", "WithRecalledMsg": 2}), 10004)
	b.v4OK(g+"forbid_send_msg", map[string]any{"GroupId": "rest1", "Members_Account": []string{"bob"}, "MuteTime": 600})
	send["From_Account"], send["Random"] = "bob", Random()
	wantCode(t, "muted member sends", b.v4(g+"send_group_msg", send), 10017)
	b.v4OK(g+"modify_group_base_info", map[string]any{"GroupId": "rest1", "Name": "renamed"})
	b.v4OK(g+"change_group_owner", map[string]any{"GroupId": "rest1", "NewOwner_Account": "carol"})
	b.v4OK(g+"delete_group_member", map[string]any{"GroupId": "rest1", "MemberToDel_Account": []string{"bob"}})
	info = b.v4OK(g+"get_group_info", map[string]any{"GroupIdList": []string{"rest1"}})
	if gi := items(info, "GroupInfo"); gi[0]["Name"] != "renamed" || gi[0]["Owner_Account"] != "carol" {
		t.Fatalf("after modify and transfer: %v", info)
	}
	b.v4OK(g+"destroy_group", map[string]any{"GroupId": "rest1"})
	info = b.v4OK(g+"get_group_info", map[string]any{"GroupIdList": []string{"rest1"}})
	if gi := items(info, "GroupInfo"); gi[0]["ErrorCode"].(float64) != 10010 {
		t.Fatalf("after destroy: %v", info)
	}
}

// TestRESTGroupMemberInfo: modify_group_member_info and
// get_group_muted_account. [REST-GROUP-MEMBER]
func TestRESTGroupMemberInfo(t *testing.T) {
	b := StartBroker(t)
	const g = "group_open_http_svc/"
	b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "rest2", "Name": "members",
		"MemberList": []map[string]any{{"Member_Account": "bob"}, {"Member_Account": "carol"}}})
	b.v4OK(g+"modify_group_member_info", map[string]any{"GroupId": "rest2", "Member_Account": "bob", "Role": "Admin", "NameCard": "Bobby"})
	b.v4OK(g+"modify_group_member_info", map[string]any{"GroupId": "rest2", "Member_Account": "carol", "MuteTime": 600})
	roles := map[string]string{}
	for _, it := range items(b.v4OK(g+"get_role_in_group", map[string]any{"GroupId": "rest2", "User_Account": []string{"bob"}}), "UserIdList") {
		roles[it["Member_Account"].(string)] = it["Role"].(string)
	}
	if roles["bob"] != "Admin" {
		t.Fatalf("bob's role: %v", roles)
	}
	card := ""
	for _, m := range items(b.v4OK(g+"get_group_member_info", map[string]any{"GroupId": "rest2"}), "MemberList") {
		if m["Member_Account"] == "bob" {
			card, _ = m["NameCard"].(string)
		}
	}
	if card != "Bobby" {
		t.Fatalf("bob's NameCard %q", card)
	}
	// Each name answers with the field names of its own Tencent page.
	for _, api := range []struct{ path, list, until string }{
		{"get_group_muted_account", "MutedAccountList", "MutedUntil"},
		{"get_group_shutted_uin", "ShuttedUinList", "ShuttedUntil"},
	} {
		muted := items(b.v4OK(g+api.path, map[string]any{"GroupId": "rest2"}), api.list)
		if len(muted) != 1 || muted[0]["Member_Account"] != "carol" || muted[0][api.until].(float64) == 0 {
			t.Fatalf("%s: %v", api.path, muted)
		}
	}
	wantCode(t, "bad Role", b.v4(g+"modify_group_member_info", map[string]any{"GroupId": "rest2", "Member_Account": "bob", "Role": "Owner"}), 10004)
	wantCode(t, "no Member_Account", b.v4(g+"modify_group_member_info", map[string]any{"GroupId": "rest2"}), 10004)
}

// TestRESTAppGroupList: get_appid_group_list pages with Next and filters by
// GroupType. [REST-GROUP-LIST]
func TestRESTAppGroupList(t *testing.T) {
	b := StartBroker(t)
	const g = "group_open_http_svc/"
	for _, gr := range []struct{ id, typ string }{{"l1", "Public"}, {"l2", "Private"}, {"l3", "Public"}} {
		b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": gr.typ, "GroupId": gr.id, "Name": gr.id})
	}
	page := b.v4OK(g+"get_appid_group_list", map[string]any{"Limit": 2})
	if page["TotalCount"].(float64) != 3 || len(items(page, "GroupIdList")) != 2 || page["Next"].(float64) != 2 {
		t.Fatalf("first page: %v", page)
	}
	page = b.v4OK(g+"get_appid_group_list", map[string]any{"Limit": 2, "Next": page["Next"]})
	if gl := items(page, "GroupIdList"); len(gl) != 1 || gl[0]["GroupId"] != "l3" || page["Next"].(float64) != 0 {
		t.Fatalf("second page: %v", page)
	}
	pub := b.v4OK(g+"get_appid_group_list", map[string]any{"GroupType": "Public"})
	if pub["TotalCount"].(float64) != 2 {
		t.Fatalf("Public groups: %v", pub)
	}
	b.v4OK(g+"destroy_group", map[string]any{"GroupId": "l1"})
	if all := b.v4OK(g+"get_appid_group_list", map[string]any{}); all["TotalCount"].(float64) != 2 {
		t.Fatalf("after destroy: %v", all)
	}
}

// TestRESTGroupOnlineAndNotice: get_online_member_num counts members with a
// live connection; send_group_system_notification reaches the online
// members subscribed to im/u/{uid}/notice and is not stored. [REST-GROUP-ONLINE]
func TestRESTGroupOnlineAndNotice(t *testing.T) {
	b := StartBroker(t)
	const g = "group_open_http_svc/"
	b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "n1", "Name": "notice",
		"MemberList": []map[string]any{{"Member_Account": "bob"}, {"Member_Account": "carol"}}})
	if n := b.v4OK(g+"get_online_member_num", map[string]any{"GroupId": "n1"}); n["OnlineMemberNum"].(float64) != 0 {
		t.Fatalf("nobody online: %v", n)
	}
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	_ = b.Connect("dave", "dave") // online, not a member
	if n := b.v4OK(g+"get_online_member_num", map[string]any{"GroupId": "n1"}); n["OnlineMemberNum"].(float64) != 2 {
		t.Fatalf("bob and carol online: %v", n)
	}
	wantCode(t, "no group", b.v4(g+"get_online_member_num", map[string]any{"GroupId": "nope"}), 10010)

	// AVChatRoom: members join by themselves.
	b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "AVChatRoom", "GroupId": "av1", "Name": "live"})
	bob.Publish1("im/req/group.join", map[string]any{"Id": "j1", "GroupId": "av1"})
	for {
		if r := bob.NextReply(); r["Id"] == "j1" {
			if r["ErrorCode"].(float64) != 0 {
				t.Fatalf("join: %v", r)
			}
			break
		}
	}
	if n := b.v4OK(g+"get_online_member_num", map[string]any{"GroupId": "av1"}); n["OnlineMemberNum"].(float64) != 1 {
		t.Fatalf("AVChatRoom online: %v", n)
	}

	// Group tips (creations, joins) may still be arriving: wait for the
	// notices themselves rather than draining.
	b.v4OK(g+"send_group_system_notification", map[string]any{"GroupId": "n1", "ToMembers_Account": []string{"bob", "dave"}, "Content": "hello bob"})
	e := nextEventOf(bob, "GroupSystemNotification")
	if e.Seq != 0 || !strings.Contains(e.Raw, "hello bob") || !strings.Contains(e.Raw, `"GroupId":"n1"`) {
		t.Fatalf("bob's notice: %s", e.Raw)
	}
	b.v4OK(g+"send_group_system_notification", map[string]any{"GroupId": "n1", "Content": "to all"})
	// carol's first notice is "to all": the one for bob alone never reached her.
	for _, c := range []*Client{bob, carol} {
		if e := nextEventOf(c, "GroupSystemNotification"); !strings.Contains(e.Raw, "to all") {
			t.Fatalf("%s's notice: %s", c.User, e.Raw)
		}
	}
	if evs := bob.SyncAll(0); len(evs) > 0 {
		for _, e := range evs {
			if strings.Contains(e.Raw, "GroupSystemNotification") {
				t.Fatalf("notice stored: %s", e.Raw)
			}
		}
	}
	wantCode(t, "no content", b.v4(g+"send_group_system_notification", map[string]any{"GroupId": "n1"}), 10004)
	wantCode(t, "no group", b.v4(g+"send_group_system_notification", map[string]any{"GroupId": "nope", "Content": "x"}), 10010)
}

// TestRESTGroupUnreadAndDeleteBySender: set_unread_msg_num shows in
// recentcontact/get_list; delete_group_msg_by_sender recalls one sender's
// messages in the group history. [REST-GROUP-UNREAD]
func TestRESTGroupUnreadAndDeleteBySender(t *testing.T) {
	b := StartBroker(t)
	const g = "group_open_http_svc/"
	b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "u1", "Name": "unread",
		"MemberList": []map[string]any{{"Member_Account": "bob"}}})
	body := []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "x"}}}
	for i, from := range []string{"alice", "bob", "alice"} {
		b.v4OK(g+"send_group_msg", map[string]any{"GroupId": "u1", "From_Account": from, "Random": Random(), "MsgBody": body})
		_ = i
	}
	b.v4OK(g+"set_unread_msg_num", map[string]any{"GroupId": "u1", "Member_Account": "bob", "UnreadMsgNum": 7})
	list := b.v4OK("recentcontact/get_list", map[string]any{"From_Account": "bob"})
	si := items(list, "SessionItem")
	if len(si) != 1 || si[0]["GroupId"] != "u1" || si[0]["UnreadMsgNum"].(float64) != 7 {
		t.Fatalf("get_list after set_unread_msg_num: %v", list)
	}
	bob := b.Connect("bob", "bob")
	bob.Publish1("im/req/conv.list", map[string]any{"Id": "l1"})
	r := bob.NextReply()
	if r["AllUnreadMsgNum"].(float64) != 7 {
		t.Fatalf("conv.list: %v", r)
	}
	wantCode(t, "not a member", b.v4(g+"set_unread_msg_num", map[string]any{"GroupId": "u1", "Member_Account": "zed", "UnreadMsgNum": 1}), 10007)
	wantCode(t, "negative", b.v4(g+"set_unread_msg_num", map[string]any{"GroupId": "u1", "Member_Account": "bob", "UnreadMsgNum": -1}), 10004)

	b.v4OK(g+"delete_group_msg_by_sender", map[string]any{"GroupId": "u1", "Sender_Account": "alice"})
	hist := items(b.v4OK(g+"group_msg_get_simple", map[string]any{"GroupId": "u1", "ReqMsgNumber": 20, "WithRecalledMsg": 1}), "RspMsgList")
	msgs := 0
	for _, m := range hist {
		if m["IsSystemMsg"].(float64) != 0 {
			continue
		}
		msgs++
		recalled := m["IsPlaceMsg"].(float64) == 2
		if recalled != (m["From_Account"] == "alice") {
			t.Fatalf("after delete_group_msg_by_sender: %v", m)
		}
	}
	if msgs != 3 {
		t.Fatalf("history: %v", hist)
	}
	// Again: nothing left to replace, still a success.
	b.v4OK(g+"delete_group_msg_by_sender", map[string]any{"GroupId": "u1", "Sender_Account": "alice"})
	wantCode(t, "no sender", b.v4(g+"delete_group_msg_by_sender", map[string]any{"GroupId": "u1"}), 10004)
}

// TestRESTGroupImport: import_group keeps CreateTime; import_group_member
// keeps roles and join times; import_group_msg keeps SendTime as MsgTime;
// AVChatRoom is refused. [REST-GROUP-IMPORT]
func TestRESTGroupImport(t *testing.T) {
	b := StartBroker(t)
	const g = "group_open_http_svc/"
	wantCode(t, "AVChatRoom", b.v4(g+"import_group", map[string]any{"Owner_Account": "alice", "Type": "AVChatRoom", "GroupId": "i0", "Name": "x"}), 10007)
	out := b.v4OK(g+"import_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "i1", "Name": "imported", "CreateTime": 1500000000})
	if out["GroupId"] != "i1" {
		t.Fatalf("import_group: %v", out)
	}
	info := items(b.v4OK(g+"get_group_info", map[string]any{"GroupIdList": []string{"i1"}}), "GroupInfo")
	if info[0]["CreateTime"].(float64) != 1500000000 {
		t.Fatalf("CreateTime: %v", info)
	}
	bob := b.Connect("bob", "bob")
	res := b.v4OK(g+"import_group_member", map[string]any{"GroupId": "i1", "MemberList": []map[string]any{
		{"Member_Account": "bob", "Role": "Admin", "JoinTime": 1500000100, "UnreadMsgNum": 3},
		{"Member_Account": "carol"}, {"Member_Account": "alice"}, {"Member_Account": "dave", "Role": "Owner"}}})
	ml := items(res, "MemberList")
	if len(ml) != 4 || ml[0]["Result"].(float64) != 1 || ml[1]["Result"].(float64) != 1 || ml[2]["Result"].(float64) != 2 || ml[3]["Result"].(float64) != 0 {
		t.Fatalf("import_group_member: %v", res)
	}
	members := items(b.v4OK(g+"get_group_member_info", map[string]any{"GroupId": "i1"}), "MemberList")
	found := false
	for _, m := range members {
		if m["Member_Account"] == "bob" {
			found = m["Role"] == "Admin" && m["JoinTime"].(float64) == 1500000100
		}
	}
	if !found || len(members) != 3 {
		t.Fatalf("members: %v", members)
	}
	if e := bob.NextEvent(); e.Event != "GroupTip" {
		t.Fatalf("bob's join tip: %s", e.Raw)
	}
	wantCode(t, "too many", b.v4(g+"import_group_member", map[string]any{"GroupId": "i1", "MemberList": make([]map[string]any, 301)}), 10004)

	body := []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "old news"}}}
	msgs := []map[string]any{
		{"From_Account": "alice", "SendTime": 1500000200, "Random": 1, "MsgBody": body},
		{"From_Account": "carol", "SendTime": 1500000300, "Random": 2, "MsgBody": body},
	}
	wantCode(t, "not ascending", b.v4(g+"import_group_msg", map[string]any{"GroupId": "i1", "MsgList": []map[string]any{msgs[1], msgs[0]}}), 10004)
	imp := b.v4OK(g+"import_group_msg", map[string]any{"GroupId": "i1", "RecentContactFlag": 1, "MsgList": msgs})
	rl := items(imp, "ImportMsgResult")
	if len(rl) != 2 || rl[0]["Result"].(float64) != 0 || rl[1]["MsgSeq"].(float64) != rl[0]["MsgSeq"].(float64)+1 {
		t.Fatalf("import_group_msg: %v", imp)
	}
	hist := items(b.v4OK(g+"group_msg_get_simple", map[string]any{"GroupId": "i1", "ReqMsgNumber": 2}), "RspMsgList")
	if len(hist) != 2 || hist[0]["MsgTimeStamp"].(float64) != 1500000300 || hist[1]["MsgTimeStamp"].(float64) != 1500000200 {
		t.Fatalf("imported history: %v", hist)
	}
	for {
		e := bob.NextEvent()
		if e.Event == "GroupMsg" {
			if e.Msg.MsgTime != 1500000200 {
				t.Fatalf("bob's copy: %s", e.Raw)
			}
			break
		}
	}
	si := items(b.v4OK("recentcontact/get_list", map[string]any{"From_Account": "bob"}), "SessionItem")
	if len(si) != 1 || si[0]["UnreadMsgNum"].(float64) != 3 || si[0]["MsgTime"].(float64) != 1500000300 {
		t.Fatalf("bob's conversation (imported unread, imports count none): %v", si)
	}
	b.v4OK(g+"create_group", map[string]any{"Owner_Account": "alice", "Type": "AVChatRoom", "GroupId": "av2", "Name": "live"})
	wantCode(t, "AVChatRoom msgs", b.v4(g+"import_group_msg", map[string]any{"GroupId": "av2", "MsgList": msgs}), 10007)
	wantCode(t, "AVChatRoom members", b.v4(g+"import_group_member", map[string]any{"GroupId": "av2", "MemberList": []map[string]any{{"Member_Account": "bob"}}}), 10007)
}
