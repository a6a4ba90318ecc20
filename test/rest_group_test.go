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
	if rl := items(rec, "RecallRetList"); len(rl) != 2 || rl[0]["RetCode"].(float64) != 0 || rl[1]["RetCode"].(float64) == 0 {
		t.Fatalf("group_msg_recall: %v", rec)
	}

	hist = b.v4OK(g+"group_msg_get_simple", map[string]any{"GroupId": "rest1", "ReqMsgSeq": seq, "ReqMsgNumber": 1})
	if rsp := items(hist, "RspMsgList"); len(rsp) != 1 || rsp[0]["MsgFlagBits"].(float64) != 8 {
		t.Fatalf("recalled message in history: %v", hist)
	}
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
