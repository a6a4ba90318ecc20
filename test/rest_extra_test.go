package test

import (
	"testing"
)

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
	for _, api := range []string{"get_group_muted_account", "get_group_shutted_uin"} {
		muted := items(b.v4OK(g+api, map[string]any{"GroupId": "rest2"}), "MutedAccountList")
		if len(muted) != 1 || muted[0]["Member_Account"] != "carol" || muted[0]["MutedUntil"].(float64) == 0 {
			t.Fatalf("%s: %v", api, muted)
		}
	}
	wantCode(t, "bad Role", b.v4(g+"modify_group_member_info", map[string]any{"GroupId": "rest2", "Member_Account": "bob", "Role": "Owner"}), 10004)
	wantCode(t, "no Member_Account", b.v4(g+"modify_group_member_info", map[string]any{"GroupId": "rest2"}), 10004)
}

// TestRESTFriendDeleteAll: every friend goes. [REST-SNS-DELETE-ALL]
func TestRESTFriendDeleteAll(t *testing.T) {
	b := StartBroker(t)
	for _, u := range []string{"bob", "carol"} {
		b.v4OK("profile/portrait_set", map[string]any{"From_Account": u,
			"ProfileItem": []map[string]any{{"Tag": "Tag_Profile_IM_AllowType", "Value": "AllowType_Type_AllowAny"}}})
	}
	b.v4OK("sns/friend_add", map[string]any{"From_Account": "alice", "AddFriendItem": []map[string]any{{"To_Account": "bob"}, {"To_Account": "carol"}}})
	if n := b.v4OK("sns/friend_get", map[string]any{"From_Account": "alice"})["FriendNum"].(float64); n != 2 {
		t.Fatalf("friends before: %v", n)
	}
	b.v4OK("sns/friend_delete_all", map[string]any{"From_Account": "alice", "DeleteType": "Delete_Type_Both"})
	if n := b.v4OK("sns/friend_get", map[string]any{"From_Account": "alice"})["FriendNum"].(float64); n != 0 {
		t.Fatalf("friends after: %v", n)
	}
	if n := b.v4OK("sns/friend_get", map[string]any{"From_Account": "bob"})["FriendNum"].(float64); n != 0 {
		t.Fatalf("bob's friends after Delete_Type_Both: %v", n)
	}
	b.v4OK("sns/friend_delete_all", map[string]any{"From_Account": "alice"}) // none left: still OK
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
	if len(res) != 1 {
		t.Fatalf("Result: %v", res)
	}
	want := map[string]string{"C2CUpMsgNum": "2", "UpMsgNum": "2", "RegistUserNumTotal": "2", "GroupAllGroupNum": "1", "OnlineUserNum": "1"}
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

// TestRESTFriendGetList: SNS and profile tags of chosen friends; a
// non-friend is listed in Fail_Account. [REST-SNS-GET-LIST]
func TestRESTFriendGetList(t *testing.T) {
	b := StartBroker(t)
	b.v4OK("profile/portrait_set", map[string]any{"From_Account": "bob", "ProfileItem": []map[string]any{
		{"Tag": "Tag_Profile_IM_AllowType", "Value": "AllowType_Type_AllowAny"}, {"Tag": "Tag_Profile_IM_Nick", "Value": "Bob"}}})
	b.v4OK("sns/friend_add", map[string]any{"From_Account": "alice", "AddFriendItem": []map[string]any{{"To_Account": "bob", "Remark": "bobby"}}})
	out := b.v4OK("sns/friend_get_list", map[string]any{"From_Account": "alice", "To_Account": []string{"bob", "carol"},
		"TagList": []string{"Tag_SNS_IM_Remark", "Tag_Profile_IM_Nick"}})
	info := items(out, "InfoItem")
	if len(info) != 2 || info[0]["ResultCode"].(float64) != 0 || info[1]["ResultCode"].(float64) == 0 {
		t.Fatalf("InfoItem: %v", out)
	}
	got := map[string]any{}
	for _, it := range items(info[0], "SnsProfileItem") {
		got[it["Tag"].(string)] = it["Value"]
	}
	if got["Tag_SNS_IM_Remark"] != "bobby" || got["Tag_Profile_IM_Nick"] != "Bob" {
		t.Fatalf("bob's tags: %v", got)
	}
	if fa, _ := out["Fail_Account"].([]any); len(fa) != 1 || fa[0] != "carol" {
		t.Fatalf("Fail_Account: %v", out)
	}
	wantCode(t, "no TagList", b.v4("sns/friend_get_list", map[string]any{"From_Account": "alice", "To_Account": []string{"bob"}}), 30001)
}
