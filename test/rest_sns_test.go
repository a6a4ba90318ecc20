package test

import (
	"strings"
	"testing"
)

// TestRESTRelations: profile, friends, friend lists and the blacklist over
// REST act for From_Account and reach its MQTT clients. [REST-SNS]
func TestRESTRelations(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	b.v4OK("profile/portrait_set", map[string]any{"From_Account": "bob",
		"ProfileItem": []map[string]any{{"Tag": "Tag_Profile_IM_AllowType", "Value": "AllowType_Type_AllowAny"}}})
	wantCode(t, "portrait_set unknown tag", b.v4("profile/portrait_set", map[string]any{"From_Account": "bob",
		"ProfileItem": []map[string]any{{"Tag": "Tag_Nope", "Value": "x"}}}), 40009)

	add := b.v4OK("sns/friend_add", map[string]any{"From_Account": "alice", "AddFriendItem": []map[string]any{{"To_Account": "bob", "AddSource": "AddSource_Type_Web"}}})
	if ri := items(add, "ResultItem"); len(ri) != 1 || ri[0]["To_Account"] != "bob" || ri[0]["ResultCode"].(float64) != 0 {
		t.Fatalf("friend_add: %v", add)
	}
	if e := alice.NextEvent(); e.Event != "FriendAdded" {
		t.Fatalf("alice got %s", e.Raw)
	}
	chk := b.v4OK("sns/friend_check", map[string]any{"From_Account": "alice", "To_Account": []string{"bob", "carol"}, "CheckType": "CheckResult_Type_Both"})
	if s := string(mustJSON(chk)); !strings.Contains(s, "CheckResult_Type_BothWay") || !strings.Contains(s, "CheckResult_Type_NoRelation") {
		t.Fatalf("friend_check: %v", chk)
	}
	if s := string(mustJSON(b.v4OK("sns/friend_get", map[string]any{"From_Account": "alice", "StartIndex": 0}))); !strings.Contains(s, `"bob"`) {
		t.Fatalf("friend_get: %s", s)
	}
	b.v4OK("sns/group_add", map[string]any{"From_Account": "alice", "GroupName": []string{"work"}, "To_Account": []string{"bob"}})
	if s := string(mustJSON(b.v4OK("sns/group_get", map[string]any{"From_Account": "alice", "NeedFriend": "Need_Friend_Type_Yes"}))); !strings.Contains(s, "work") {
		t.Fatalf("group_get: %s", s)
	}
	b.v4OK("sns/group_delete", map[string]any{"From_Account": "alice", "GroupName": []string{"work"}})
	b.v4OK("sns/friend_delete", map[string]any{"From_Account": "alice", "To_Account": []string{"bob"}, "DeleteType": "Delete_Type_Both"})

	b.v4OK("sns/black_list_add", map[string]any{"From_Account": "alice", "To_Account": []string{"carol"}})
	if s := string(mustJSON(b.v4OK("sns/black_list_get", map[string]any{"From_Account": "alice", "StartIndex": 0, "MaxLimited": 10}))); !strings.Contains(s, `"carol"`) || !strings.Contains(s, `"CurruentSequence"`) {
		t.Fatalf("black_list_get: %s", s)
	}
	if s := string(mustJSON(b.v4OK("sns/black_list_check", map[string]any{"From_Account": "alice", "To_Account": []string{"carol"}, "CheckType": "BlackCheckResult_Type_Both"}))); !strings.Contains(s, "BlackCheckResult_Type_AWithB") {
		t.Fatalf("black_list_check: %s", s)
	}
	b.v4OK("sns/black_list_delete", map[string]any{"From_Account": "alice", "To_Account": []string{"carol"}})
	wantCode(t, "no From_Account", b.v4("sns/friend_get", map[string]any{}), 30001)
}

// TestRESTRecentContact: recentcontact get_list and delete. [REST-RECENT]
func TestRESTRecentContact(t *testing.T) {
	b := StartBroker(t)
	req := Text("hi", Random())
	req["From_Account"], req["To_Account"] = "alice", "bob"
	b.v4OK("openim/sendmsg", req)
	list := b.v4OK("recentcontact/get_list", map[string]any{"From_Account": "bob", "StartIndex": 0})
	si := items(list, "SessionItem")
	if len(si) != 1 || si[0]["To_Account"] != "alice" || si[0]["Type"].(float64) != 1 || list["CompleteFlag"].(float64) != 1 {
		t.Fatalf("get_list: %v", list)
	}
	bob := b.Connect("bob", "bob")
	b.v4OK("recentcontact/delete", map[string]any{"From_Account": "bob", "Type": 1, "To_Account": "alice", "ClearRamble": 1})
	if e := bob.NextEvent(); e.Event != "ConvDeleted" {
		t.Fatalf("bob got %s", e.Raw)
	}
	if si := items(b.v4OK("recentcontact/get_list", map[string]any{"From_Account": "bob"}), "SessionItem"); len(si) != 0 {
		t.Fatalf("after delete: %v", si)
	}
	wantCode(t, "no From_Account", b.v4("recentcontact/get_list", map[string]any{}), 50001)
}
