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
