package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
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

// TestRESTFriendDeleteAllIsOneCommit: friend_delete_all is one operation
// of the relations service, one commit for the whole list: every friend
// gets exactly one FriendDeleted, alice one per friend, and the app gets
// one Sns.CallbackFriendDelete naming every pair (a delete per friend
// would send one per friend). [REST-SNS-DELETE-ALL]
func TestRESTFriendDeleteAllIsOneCommit(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL = cb.URL
		c.Callbacks.Commands = config.CallbackCommands // every command imbroker sends
		c.Callbacks.Workers = 1                        // after-callbacks arrive in the order they were queued
	})
	log := newCBLog(t, cb)
	alice := b.Connect("alice", "alice")
	friends := []string{"bob", "carol", "dave"}
	var add []map[string]any
	clients := map[string]*Client{}
	for _, f := range friends {
		clients[f] = b.Connect(f, f)
		add = append(add, map[string]any{"To_Account": f})
	}
	b.v4OK("sns/friend_import", map[string]any{"From_Account": "alice", "AddFriendItem": add}) // fires no callback
	b.v4OK("sns/friend_delete_all", map[string]any{"From_Account": "alice"})

	body := log.wait("Sns.CallbackFriendDelete", nil)
	pairs, _ := body["PairList"].([]any)
	if len(pairs) != len(friends) {
		t.Fatalf("one callback should name all %d pairs: %v", len(friends), body)
	}
	for i, f := range friends {
		if jsonAt(body, "PairList", i, "From_Account") != "alice" || jsonAt(body, "PairList", i, "To_Account") != f {
			t.Fatalf("pair %d: %v", i, body)
		}
	}
	// A later callback through the same queue: nothing else was queued
	// before it.
	b.v4OK("sns/black_list_add", map[string]any{"From_Account": "alice", "To_Account": []string{"erin"}})
	log.wait("Sns.CallbackBlackListAdd", nil)
	log.none("Sns.CallbackFriendDelete", nil, "a second delete callback")

	deleted := relIs("FriendDeleted", "From_Account", "alice")
	for _, f := range friends {
		evs := relMarker(t, alice, clients[f])
		if n := relCount(evs, deleted); n != 1 {
			t.Fatalf("%s got %d FriendDeleted: %s", f, n, relRaws(evs))
		}
	}
	// Sync also hands over the live copies already received: count seqs.
	seqs := map[uint64]bool{}
	for _, e := range alice.SyncAll(0) {
		if deleted(e) {
			seqs[e.Seq] = true
		}
	}
	if len(seqs) != len(friends) {
		t.Fatalf("alice's stream holds %d FriendDeleted, want %d", len(seqs), len(friends))
	}
	if n := b.v4OK("sns/friend_get", map[string]any{"From_Account": "alice"})["FriendNum"].(float64); n != 0 {
		t.Fatalf("friends after: %v", n)
	}
}

func relCount(evs []Event, match func(Event) bool) int {
	n := 0
	for _, e := range evs {
		if match(e) {
			n++
		}
	}
	return n
}

// TestRESTFriendGetListPastFirstPage: friend_get_list reads the friends it
// is asked about wherever they are in the list (past friend_get's first
// page of 100 too), with their SNS and profile tags. [REST-SNS-GET-LIST]
func TestRESTFriendGetListPastFirstPage(t *testing.T) {
	b := StartBroker(t)
	var add []map[string]any
	for i := range 120 {
		add = append(add, map[string]any{"To_Account": fmt.Sprintf("f%03d", i), "Remark": fmt.Sprintf("r%03d", i)})
	}
	b.v4OK("sns/friend_import", map[string]any{"From_Account": "alice", "AddFriendItem": add})
	b.v4OK("profile/portrait_set", map[string]any{"From_Account": "f115", "ProfileItem": []map[string]any{{"Tag": "Tag_Profile_IM_Nick", "Value": "F"}}})
	out := b.v4OK("sns/friend_get_list", map[string]any{"From_Account": "alice", "To_Account": []string{"f115", "f000", "nobody"},
		"TagList": []string{"Tag_Profile_IM_Nick", "Tag_SNS_IM_Remark"}})
	info := items(out, "InfoItem")
	want := []string{`[{"Tag":"Tag_Profile_IM_Nick","Value":"F"},{"Tag":"Tag_SNS_IM_Remark","Value":"r115"}]`,
		`[{"Tag":"Tag_Profile_IM_Nick","Value":""},{"Tag":"Tag_SNS_IM_Remark","Value":"r000"}]`}
	if len(info) != 3 || info[2]["ResultCode"].(float64) != 30006 || fmt.Sprint(out["Fail_Account"]) != "[nobody]" {
		t.Fatalf("friend_get_list: %v", out)
	}
	for i, w := range want {
		if got := string(mustJSON(info[i]["SnsProfileItem"])); got != w || info[i]["ResultCode"].(float64) != 0 {
			t.Fatalf("item %d: %s, want %s (%v)", i, got, w, info[i])
		}
	}
}

// TestRESTFriendAddForce: ForceAddFlags 1 (the app admin's force-add)
// adds at once whatever the peer's AllowType; without it the request
// waits (30539); a client may not force (30004). [REST-SNS-FORCE-ADD]
func TestRESTFriendAddForce(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	carol := b.Connect("carol", "carol")
	relAllow(t, carol, "DenyAny")
	add := func(to string, force int) map[string]any {
		return b.v4OK("sns/friend_add", map[string]any{"From_Account": "alice", "ForceAddFlags": force,
			"AddFriendItem": []any{map[string]any{"To_Account": to, "AddSource": "AddSource_Type_Web"}}})
	}
	if c := items(add("bob", 0), "ResultItem"); c[0]["ResultCode"] != float64(30539) {
		t.Fatalf("NeedConfirm without force: %v", c)
	}
	for _, to := range []string{"bob", "carol"} {
		if c := items(add(to, 1), "ResultItem"); c[0]["ResultCode"] != float64(0) {
			t.Fatalf("force-add %s: %v", to, c)
		}
		out := b.v4OK("sns/friend_check", map[string]any{"From_Account": "alice", "To_Account": []string{to}, "CheckType": "CheckResult_Type_Both"})
		if r := jsonAt(out, "InfoItem", 0, "Relation"); r != "CheckResult_Type_BothWay" {
			t.Fatalf("alice and %s after force-add: %v", to, out)
		}
	}
	if r := alice.Req("friend.add", map[string]any{"ForceAddFlags": 1, "AddFriendItem": []any{map[string]any{"To_Account": "dave"}}}); code(r) != 30004 {
		t.Fatalf("a client's ForceAddFlags: %v", r)
	}
	wantCode(t, "ForceAddFlags 2", b.v4("sns/friend_add", map[string]any{"From_Account": "alice", "ForceAddFlags": 2,
		"AddFriendItem": []any{map[string]any{"To_Account": "dave"}}}), 30001)
}
