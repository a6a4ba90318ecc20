package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// Profiles, friends and friend lists, and all relations across a restart
// (docs/relations.md). Helpers are prefixed rel; the blacklist and C2C
// checks are in relations_blacklist_test.go, online status in
// relations_status_test.go.

// relMsg is an event's Msg as a map.
func relMsg(e Event) map[string]any {
	var v struct{ Msg map[string]any }
	_ = json.Unmarshal([]byte(e.Raw), &v)
	return v.Msg
}

// relIs matches an event by name and Msg fields (compared as printed).
func relIs(name string, kv ...any) func(Event) bool {
	return func(e Event) bool {
		if e.Event != name {
			return false
		}
		m := relMsg(e)
		for i := 0; i+1 < len(kv); i += 2 {
			if relStr(m[kv[i].(string)]) != relStr(kv[i+1]) {
				return false
			}
		}
		return true
	}
}

// relStr prints a value the same way whether it came from JSON or Go.
func relStr(v any) string {
	switch x := v.(type) {
	case float64:
		return fmt.Sprintf("%d", int64(x))
	case int:
		return fmt.Sprintf("%d", x)
	case uint32:
		return fmt.Sprintf("%d", x)
	case []any, map[string]any, []string:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// relWait reads c's stream until an event matching want arrives (5 s
// deadline); it returns the event's Msg and the events skipped before it.
func relWait(t *testing.T, c *Client, want func(Event) bool) (map[string]any, []Event) {
	t.Helper()
	return relWaitWithin(t, c, 5*time.Second, want)
}

// relWaitWithin is relWait with its own bound.
func relWaitWithin(t *testing.T, c *Client, bound time.Duration, want func(Event) bool) (map[string]any, []Event) {
	t.Helper()
	deadline := time.After(bound)
	var skipped []Event
	for {
		select {
		case e := <-c.Events:
			if want(e) {
				return relMsg(e), skipped
			}
			skipped = append(skipped, e)
		case <-deadline:
			t.Fatalf("%s: the awaited event did not arrive within %s (%d others did: %s)", c.User, bound, len(skipped), relRaws(skipped))
			return nil, nil
		}
	}
}

func relRaws(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Raw)
	}
	return strings.Join(s, "\n")
}

// relNone fails if any of evs matches bad.
func relNone(t *testing.T, evs []Event, bad func(Event) bool, what string) {
	t.Helper()
	for _, e := range evs {
		if bad(e) {
			t.Fatalf("unexpected %s: %s", what, e.Raw)
		}
	}
}

// relMarker sends a C2C message from -> to and returns the events `to` got
// before it: everything committed for `to` before the send is among them.
func relMarker(t *testing.T, from, to *Client) []Event {
	t.Helper()
	r := Random()
	from.Publish1("im/send/c2c/"+to.User, Text("marker", r))
	_, skipped := relWait(t, to, func(e Event) bool { return e.Event == "C2CMsg" && e.Msg.MsgRandom == r })
	return skipped
}

// relOK checks a reply succeeded and returns it.
func relOK(t *testing.T, what string, r map[string]any) map[string]any {
	t.Helper()
	if code(r) != 0 {
		t.Fatalf("%s: %v", what, r)
	}
	return r
}

// relCode checks a reply's top-level code.
func relCode(t *testing.T, what string, r map[string]any, want int) {
	t.Helper()
	if code(r) != want {
		t.Fatalf("%s: code %d, want %d: %v", what, code(r), want, r)
	}
}

// relList returns a reply's array field as maps.
func relList(r map[string]any, key string) []map[string]any {
	var out []map[string]any
	arr, _ := r[key].([]any)
	for _, v := range arr {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// relItemCodes returns the ResultCode of each ResultItem by To_Account.
func relItemCodes(r map[string]any) map[string]int {
	out := map[string]int{}
	for _, it := range relList(r, "ResultItem") {
		out[it["To_Account"].(string)] = int(it["ResultCode"].(float64))
	}
	return out
}

// relItem checks one per-account result code of a batch reply.
func relItem(t *testing.T, what string, r map[string]any, to string, want int) {
	t.Helper()
	relOK(t, what, r)
	if got, ok := relItemCodes(r)[to]; !ok || got != want {
		t.Fatalf("%s: %s result %d (present %v), want %d: %v", what, to, got, ok, want, r)
	}
}

func relSet(c *Client, kv ...any) map[string]any {
	var items []any
	for i := 0; i+1 < len(kv); i += 2 {
		items = append(items, map[string]any{"Tag": kv[i], "Value": kv[i+1]})
	}
	return c.Req("profile.set", map[string]any{"ProfileItem": items})
}

// relAllow sets c's AllowType.
func relAllow(t *testing.T, c *Client, allow string) {
	t.Helper()
	relOK(t, "set AllowType", relSet(c, "Tag_Profile_IM_AllowType", "AllowType_Type_"+allow))
}

// relAdd is a friend.add of one account.
func relAdd(c *Client, to, addType string, extra map[string]any) map[string]any {
	it := map[string]any{"To_Account": to}
	for k, v := range extra {
		it[k] = v
	}
	body := map[string]any{"AddFriendItem": []any{it}}
	if addType != "" {
		body["AddType"] = addType
	}
	return c.Req("friend.add", body)
}

// relCheck returns the friend.check relation of c with to.
func relCheck(t *testing.T, c *Client, to, checkType string) string {
	t.Helper()
	r := relOK(t, "friend.check", c.Req("friend.check", map[string]any{"To_Account": []any{to}, "CheckType": checkType}))
	items := relList(r, "InfoItem")
	if len(items) != 1 {
		t.Fatalf("friend.check: %v", r)
	}
	return items[0]["Relation"].(string)
}

// relProfile reads one user's profile as Tag -> Value.
func relProfile(t *testing.T, c *Client, to string, tags ...string) map[string]any {
	t.Helper()
	if tags == nil {
		tags = []string{}
	}
	r := relOK(t, "profile.get", c.Req("profile.get", map[string]any{"To_Account": []any{to}, "TagList": tags}))
	items := relList(r, "UserProfileItem")
	if len(items) != 1 || items[0]["To_Account"] != to || items[0]["ResultCode"].(float64) != 0 {
		t.Fatalf("profile.get %s: %v", to, r)
	}
	out := map[string]any{}
	for _, it := range items[0]["ProfileItem"].([]any) {
		m := it.(map[string]any)
		out[m["Tag"].(string)] = m["Value"]
	}
	return out
}

// relFriends returns c's friend list as To_Account -> Tag -> Value.
func relFriends(t *testing.T, c *Client) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for start := 0; ; {
		r := relOK(t, "friend.get", c.Req("friend.get", map[string]any{"StartIndex": start}))
		for _, it := range relList(r, "UserDataItem") {
			vals := map[string]any{}
			for _, v := range it["ValueItem"].([]any) {
				m := v.(map[string]any)
				vals[m["Tag"].(string)] = m["Value"]
			}
			out[it["To_Account"].(string)] = vals
		}
		if r["CompleteFlag"].(float64) == 1 {
			if int(r["FriendNum"].(float64)) != len(out) {
				t.Fatalf("friend.get: FriendNum %v, listed %d", r["FriendNum"], len(out))
			}
			return out
		}
		start = int(r["NextStartIndex"].(float64))
	}
}

// relGroups returns c's friend lists as name -> members.
func relGroups(t *testing.T, c *Client) map[string]string {
	t.Helper()
	r := relOK(t, "group_get", c.Req("friend.group_get", map[string]any{"NeedFriend": "Need_Friend_Type_Yes"}))
	out := map[string]string{}
	for _, it := range relList(r, "ResultItem") {
		if int(it["FriendNumber"].(float64)) != len(it["To_Account"].([]any)) {
			t.Fatalf("group_get: %v", it)
		}
		out[it["GroupName"].(string)] = relStr(it["To_Account"])
	}
	return out
}

// relMakeFriends makes a and b two-way friends (b allows anyone).
func relMakeFriends(t *testing.T, a, b *Client) {
	t.Helper()
	relAllow(t, b, "AllowAny")
	relItem(t, "friend.add", relAdd(a, b.User, "Add_Type_Both", nil), b.User, 0)
}

func customProfile(c *config.Config) {
	c.Relations.CustomProfile = map[string]config.ProfileField{
		"Hobby": {Type: "string", Public: true},
		"Score": {Type: "uint"},
	}
}

func TestE2E_RelProfileSetGet(t *testing.T) {
	b := StartBroker(t, customProfile)
	alice := b.Connect("alice:phone", "alice")
	alicePC := b.Connect("alice:pc", "alice")
	bob := b.Connect("bob", "bob")
	admin := b.Connect("administrator", "administrator")

	// Unset fields read as their defaults; another user's private fields
	// (AdminForbidType, a custom field not public) are left out.
	p := relProfile(t, bob, "alice")
	want := map[string]any{"Tag_Profile_IM_Nick": "", "Tag_Profile_IM_Gender": "Gender_Type_Unknown", "Tag_Profile_IM_BirthDay": 0.0,
		"Tag_Profile_IM_AllowType": "AllowType_Type_NeedConfirm", "Tag_Profile_IM_Level": 0.0, "Tag_Profile_Custom_Hobby": ""}
	for k, v := range want {
		if p[k] != v {
			t.Fatalf("default %s = %v, want %v (%v)", k, p[k], v, p)
		}
	}
	for _, private := range []string{"Tag_Profile_IM_AdminForbidType", "Tag_Profile_Custom_Score"} {
		if _, ok := p[private]; ok {
			t.Fatalf("bob sees alice's private %s: %v", private, p)
		}
	}
	if len(p) != 12 { // 12 standard + 2 custom - 2 private
		t.Fatalf("bob sees %d fields: %v", len(p), p)
	}

	relOK(t, "set", relSet(alice,
		"Tag_Profile_IM_Nick", "Alice", "Tag_Profile_IM_Gender", "Gender_Type_Female", "Tag_Profile_IM_BirthDay", 19900101,
		"Tag_Profile_IM_Location", "Shenzhen", "Tag_Profile_IM_SelfSignature", "hi there", "Tag_Profile_IM_AllowType", "AllowType_Type_AllowAny",
		"Tag_Profile_IM_Language", 1, "Tag_Profile_IM_Image", "https://x/a.png", "Tag_Profile_IM_MsgSettings", 1,
		"Tag_Profile_Custom_Hobby", "chess", "Tag_Profile_Custom_Score", 4294967295))
	// Both of alice's devices see the change, with every field set.
	for _, dev := range []*Client{alice, alicePC} {
		m, _ := relWait(t, dev, relIs("ProfileChanged", "From_Account", "alice"))
		if n := len(m["ProfileItem"].([]any)); n != 11 {
			t.Fatalf("ProfileChanged on %s has %d items: %v", dev.User, n, m)
		}
	}
	own := relProfile(t, alice, "alice")
	if own["Tag_Profile_IM_Nick"] != "Alice" || own["Tag_Profile_IM_BirthDay"] != 19900101.0 || own["Tag_Profile_Custom_Score"] != 4294967295.0 ||
		own["Tag_Profile_IM_AdminForbidType"] != "AdminForbid_Type_None" || own["Tag_Profile_IM_Gender"] != "Gender_Type_Female" {
		t.Fatalf("own profile: %v", own)
	}
	other := relProfile(t, bob, "alice", "Tag_Profile_IM_Nick", "Tag_Profile_Custom_Hobby", "Tag_Profile_Custom_Score", "Tag_Profile_IM_AdminForbidType")
	if len(other) != 2 || other["Tag_Profile_IM_Nick"] != "Alice" || other["Tag_Profile_Custom_Hobby"] != "chess" {
		t.Fatalf("bob's view: %v", other)
	}

	// Refusals, each leaving the profile untouched.
	long := strings.Repeat("x", 501)
	for _, tc := range []struct {
		name  string
		kv    []any
		code  int
		admin bool
	}{
		{"unknown tag", []any{"Tag_Profile_IM_Bogus", "x"}, 40009, false},
		{"undeclared custom", []any{"Tag_Profile_Custom_Nope", "x"}, 40009, false},
		{"nick not a string", []any{"Tag_Profile_IM_Nick", 5}, 40001, false},
		{"birthday a string", []any{"Tag_Profile_IM_BirthDay", "1990"}, 40001, false},
		{"birthday negative", []any{"Tag_Profile_IM_BirthDay", -1}, 40001, false},
		{"birthday over uint32", []any{"Tag_Profile_IM_BirthDay", 4294967296}, 40001, false},
		{"language fraction", []any{"Tag_Profile_IM_Language", 1.5}, 40001, false},
		{"bad gender", []any{"Tag_Profile_IM_Gender", "Gender_Type_Other"}, 40001, false},
		{"bad allow type", []any{"Tag_Profile_IM_AllowType", "AllowType_Type_Maybe"}, 40001, false},
		{"nick too long", []any{"Tag_Profile_IM_Nick", long}, 40601, false},
		{"location over 16 bytes", []any{"Tag_Profile_IM_Location", strings.Repeat("y", 17)}, 40601, false},
		{"custom too long", []any{"Tag_Profile_Custom_Hobby", long}, 40601, false},
		{"custom uint a string", []any{"Tag_Profile_Custom_Score", "x"}, 40001, false},
		{"level by the user", []any{"Tag_Profile_IM_Level", 3}, 40008, false},
		{"role by the user", []any{"Tag_Profile_IM_Role", 3}, 40008, false},
		{"forbid by the user", []any{"Tag_Profile_IM_AdminForbidType", "AdminForbid_Type_None"}, 40008, false},
		{"good then bad", []any{"Tag_Profile_IM_Nick", "Changed", "Tag_Profile_IM_Level", 3}, 40008, false},
		{"empty", nil, 40001, false},
	} {
		relCode(t, tc.name, relSet(alice, tc.kv...), tc.code)
	}
	relCode(t, "From_Account by a user", alice.Req("profile.set", map[string]any{"From_Account": "bob",
		"ProfileItem": []any{map[string]any{"Tag": "Tag_Profile_IM_Nick", "Value": "x"}}}), 40004)
	relCode(t, "get unknown tag", alice.Req("profile.get", map[string]any{"To_Account": []any{"bob"}, "TagList": []any{"Tag_Profile_IM_Bogus"}}), 40009)
	relCode(t, "get nobody", alice.Req("profile.get", map[string]any{"To_Account": []any{}}), 40001)
	many := make([]any, 101)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	relCode(t, "get 101", alice.Req("profile.get", map[string]any{"To_Account": many}), 40001)
	r := relOK(t, "get bad id", alice.Req("profile.get", map[string]any{"To_Account": []any{"bad id", "bob"}, "TagList": []any{"Tag_Profile_IM_Nick"}}))
	if items := relList(r, "UserProfileItem"); len(items) != 2 || items[0]["ResultCode"].(float64) != 40001 || items[1]["ResultCode"].(float64) != 0 ||
		relStr(r["Fail_Account"]) != `["bad id"]` {
		t.Fatalf("bad id item: %v", r)
	}
	if p := relProfile(t, alice, "alice"); p["Tag_Profile_IM_Nick"] != "Alice" || p["Tag_Profile_IM_Level"] != 0.0 {
		t.Fatalf("a refused set changed the profile: %v", p)
	}

	// The app admin sets the admin-only fields of another user.
	relOK(t, "admin set", admin.Req("profile.set", map[string]any{"From_Account": "alice", "ProfileItem": []any{
		map[string]any{"Tag": "Tag_Profile_IM_Level", "Value": 7}, map[string]any{"Tag": "Tag_Profile_IM_Role", "Value": 2},
		map[string]any{"Tag": "Tag_Profile_IM_AdminForbidType", "Value": "AdminForbid_Type_SendOut"}}}))
	if p := relProfile(t, bob, "alice"); p["Tag_Profile_IM_Level"] != 7.0 || p["Tag_Profile_IM_Role"] != 2.0 || p["Tag_Profile_IM_AdminForbidType"] != nil {
		t.Fatalf("after admin set, bob sees %v", p)
	}
	if p := relProfile(t, admin, "alice"); p["Tag_Profile_IM_AdminForbidType"] != "AdminForbid_Type_SendOut" || p["Tag_Profile_Custom_Score"] != 4294967295.0 {
		t.Fatalf("the admin sees %v", p)
	}
	relWait(t, alicePC, relIs("ProfileChanged", "From_Account", "alice")) // the admin's change reaches alice's devices

	// Friends get the public part of a change; a private-only change reaches
	// only the user's own devices.
	relItem(t, "bob adds alice", relAdd(bob, "alice", "", nil), "alice", 0)
	relSet(alice, "Tag_Profile_Custom_Score", 1)
	relOK(t, "nick", relSet(alice, "Tag_Profile_IM_Nick", "Alice2", "Tag_Profile_Custom_Score", 2))
	m, skipped := relWait(t, bob, relIs("ProfileChanged", "From_Account", "alice"))
	if relStr(m["ProfileItem"]) != `[{"Tag":"Tag_Profile_IM_Nick","Value":"Alice2"}]` {
		t.Fatalf("bob's ProfileChanged: %v", m)
	}
	relNone(t, skipped, relIs("ProfileChanged"), "ProfileChanged for a private field")
}

func TestE2E_RelFriendAllowAny(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	relAllow(t, bob, "AllowAny")
	relAllow(t, carol, "AllowAny")

	// Add_Type_Both (the default) to a user who allows anyone: both lists at once.
	r := relAdd(alice, "bob", "", map[string]any{"Remark": "Bobby", "GroupName": "work", "AddSource": "AddSource_Type_Web", "AddWording": "hi"})
	relItem(t, "add bob", r, "bob", 0)
	if relStr(r["Fail_Account"]) != "[]" {
		t.Fatalf("Fail_Account: %v", r)
	}
	for _, c := range []*Client{alice, bob} {
		m, _ := relWait(t, c, relIs("FriendAdded", "From_Account", "alice", "To_Account", "bob", "Initiator_Account", "alice"))
		if (c == alice) != (m["Remark"] == "Bobby") {
			t.Fatalf("%s: FriendAdded alice->bob %v (the remark is alice's own)", c.User, m)
		}
		relWait(t, c, relIs("FriendAdded", "From_Account", "bob", "To_Account", "alice"))
	}
	if rel := relCheck(t, alice, "bob", "CheckResult_Type_Both"); rel != "CheckResult_Type_BothWay" {
		t.Fatal(rel)
	}
	if rel := relCheck(t, alice, "bob", "CheckResult_Type_Single"); rel != "CheckResult_Type_AWithB" {
		t.Fatal(rel)
	}

	// Add_Type_Single: only the adder's list.
	relItem(t, "add carol", relAdd(alice, "carol", "Add_Type_Single", nil), "carol", 0)
	if rel := relCheck(t, alice, "carol", ""); rel != "CheckResult_Type_AWithB" {
		t.Fatal(rel)
	}
	if rel := relCheck(t, carol, "alice", "CheckResult_Type_Both"); rel != "CheckResult_Type_BWithA" {
		t.Fatal(rel)
	}
	if rel := relCheck(t, carol, "alice", "CheckResult_Type_Single"); rel != "CheckResult_Type_NoRelation" {
		t.Fatal(rel)
	}

	fs := relFriends(t, alice)
	if len(fs) != 2 || fs["bob"]["Tag_SNS_IM_Remark"] != "Bobby" || relStr(fs["bob"]["Tag_SNS_IM_Group"]) != `["work"]` ||
		fs["bob"]["Tag_SNS_IM_AddSource"] != "AddSource_Type_Web" || fs["bob"]["Tag_SNS_IM_AddWording"] != "hi" ||
		fs["bob"]["Tag_SNS_IM_AddTime"].(float64) < float64(time.Now().Add(-time.Minute).Unix()) || relStr(fs["carol"]["Tag_SNS_IM_Group"]) != "[]" {
		t.Fatalf("alice's friends: %v", fs)
	}
	if fb := relFriends(t, bob); len(fb) != 1 || fb["alice"]["Tag_SNS_IM_Remark"] != "" {
		t.Fatalf("bob's friends: %v", fb)
	}
	// Paging: StartIndex 1 lists the second friend (in UserID order) and completes.
	r = relOK(t, "page", alice.Req("friend.get", map[string]any{"StartIndex": 1}))
	if items := relList(r, "UserDataItem"); len(items) != 1 || items[0]["To_Account"] != "carol" || r["CompleteFlag"].(float64) != 1 ||
		r["NextStartIndex"].(float64) != 2 || r["FriendNum"].(float64) != 2 {
		t.Fatalf("page 2: %v", r)
	}
	if groups := relGroups(t, alice); len(groups) != 1 || groups["work"] != `["bob"]` {
		t.Fatalf("lists: %v", groups)
	}

	// friend.update: remark and lists; the owner's devices hear of it.
	upd := func(to string, items ...any) map[string]any {
		var sns []any
		for i := 0; i+1 < len(items); i += 2 {
			sns = append(sns, map[string]any{"Tag": items[i], "Value": items[i+1]})
		}
		return alice.Req("friend.update", map[string]any{"UpdateItem": []any{map[string]any{"To_Account": to, "SnsItem": sns}}})
	}
	relItem(t, "update", upd("bob", "Tag_SNS_IM_Remark", "B", "Tag_SNS_IM_Group", []any{"family", "golf"}), "bob", 0)
	relWait(t, alice, relIs("FriendUpdated", "To_Account", "bob", "Remark", "B", "GroupName", []any{"family", "golf"}))
	if fs := relFriends(t, alice); fs["bob"]["Tag_SNS_IM_Remark"] != "B" || relStr(fs["bob"]["Tag_SNS_IM_Group"]) != `["family","golf"]` {
		t.Fatalf("after update: %v", fs["bob"])
	}
	relItem(t, "update remark too long", upd("bob", "Tag_SNS_IM_Remark", strings.Repeat("r", 97)), "bob", 30001)
	relItem(t, "update unknown tag", upd("bob", "Tag_SNS_IM_AddTime", 1), "bob", 30001)
	relItem(t, "update a non-friend", upd("dave", "Tag_SNS_IM_Remark", "d"), "dave", 30001)

	// Refused adds, per item.
	relItem(t, "self", relAdd(alice, "alice", "", nil), "alice", 30001)
	relItem(t, "already a friend", relAdd(alice, "bob", "", nil), "bob", 30001)
	relItem(t, "bad id", relAdd(alice, "b b", "", nil), "b b", 30001)
	relItem(t, "remark 97 bytes", relAdd(alice, "dave", "", map[string]any{"Remark": strings.Repeat("r", 97)}), "dave", 30001)
	relItem(t, "wording 257 bytes", relAdd(alice, "dave", "", map[string]any{"AddWording": strings.Repeat("w", 257)}), "dave", 30001)
	relItem(t, "bad AddSource", relAdd(alice, "dave", "", map[string]any{"AddSource": "Web"}), "dave", 30001)
	relCode(t, "bad AddType", relAdd(alice, "dave", "Add_Type_Maybe", nil), 30001)
	relCode(t, "no items", alice.Req("friend.add", map[string]any{"AddFriendItem": []any{}}), 30001)
	relCode(t, "bad CheckType", alice.Req("friend.check", map[string]any{"To_Account": []any{"bob"}, "CheckType": "x"}), 30001)

	// Delete_Type_Single removes only alice's entry; Delete_Type_Both both.
	r = relOK(t, "delete", alice.Req("friend.delete", map[string]any{"To_Account": []any{"bob"}}))
	relItem(t, "delete", r, "bob", 0)
	relWait(t, bob, relIs("FriendDeleted", "From_Account", "alice", "To_Account", "bob"))
	if rel := relCheck(t, alice, "bob", ""); rel != "CheckResult_Type_BWithA" {
		t.Fatal(rel)
	}
	relItem(t, "delete both", bob.Req("friend.delete", map[string]any{"To_Account": []any{"alice"}, "DeleteType": "Delete_Type_Both"}), "alice", 0)
	relWait(t, alice, relIs("FriendDeleted", "From_Account", "bob", "To_Account", "alice"))
	if rel := relCheck(t, alice, "bob", ""); rel != "CheckResult_Type_NoRelation" {
		t.Fatal(rel)
	}
	relItem(t, "delete again", alice.Req("friend.delete", map[string]any{"To_Account": []any{"bob"}}), "bob", 30001)
	// carol: one-way, deleted with Both from alice's side.
	relItem(t, "delete carol both", alice.Req("friend.delete", map[string]any{"To_Account": []any{"carol"}, "DeleteType": "Delete_Type_Both"}), "carol", 0)
	if fs := relFriends(t, alice); len(fs) != 0 {
		t.Fatalf("left: %v", fs)
	}
}

func TestE2E_RelFriendNeedConfirm(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob") // AllowType NeedConfirm: the default
	bobPC := b.Connect("bob:pc", "bob")

	add := func(c *Client) map[string]any {
		return relAdd(c, "bob", "", map[string]any{"Remark": "b", "GroupName": "pals", "AddWording": "let's be friends", "AddSource": "AddSource_Type_Search"})
	}
	r := add(alice)
	relItem(t, "request", r, "bob", 30539)
	if relStr(r["Fail_Account"]) != "[]" {
		t.Fatalf("a recorded request is not a failure: %v", r)
	}
	// bob, live on both devices, gets the request; so do alice's devices.
	for _, c := range []*Client{bob, bobPC, alice} {
		m, _ := relWait(t, c, relIs("FriendRequest", "From_Account", "alice", "To_Account", "bob"))
		if m["AddWording"] != "let's be friends" || m["AddSource"] != "AddSource_Type_Search" || m["Remark"] != nil {
			t.Fatalf("%s: FriendRequest %v", c.User, m)
		}
	}
	relItem(t, "request again", add(alice), "bob", 30539)
	pend := relOK(t, "pending", bob.Req("friend.pending", map[string]any{}))
	if items := relList(pend, "PendencyItem"); len(items) != 1 || items[0]["To_Account"] != "alice" || items[0]["AddWording"] != "let's be friends" ||
		pend["TotalCount"].(float64) != 1 {
		t.Fatalf("bob's pending: %v", pend)
	}
	sent := relOK(t, "sent", alice.Req("friend.pending", map[string]any{"PendencyType": "Pendency_Type_SendOut"}))
	if items := relList(sent, "PendencyItem"); len(items) != 1 || items[0]["To_Account"] != "bob" || items[0]["Remark"] != "b" {
		t.Fatalf("alice's sent requests: %v", sent)
	}
	if rel := relCheck(t, alice, "bob", ""); rel != "CheckResult_Type_NoRelation" {
		t.Fatal(rel)
	}

	// AgreeAndAdd: two-way. alice's entry carries her remark and list.
	resp := func(c *Client, to, action string) map[string]any {
		return c.Req("friend.response", map[string]any{"ResponseFriendItem": []any{
			map[string]any{"To_Account": to, "ResponseAction": action, "Remark": "Al"}}})
	}
	relItem(t, "agree and add", resp(bob, "alice", "Response_Action_AgreeAndAdd"), "alice", 0)
	relWait(t, alice, relIs("FriendResponse", "From_Account", "bob", "To_Account", "alice", "ResponseAction", "Response_Action_AgreeAndAdd"))
	m, _ := relWait(t, alice, relIs("FriendAdded", "From_Account", "alice", "To_Account", "bob", "Initiator_Account", "alice"))
	if m["Remark"] != "b" || relStr(m["GroupName"]) != `["pals"]` {
		t.Fatalf("alice's FriendAdded: %v", m)
	}
	relWait(t, alice, relIs("FriendAdded", "From_Account", "bob", "To_Account", "alice"))
	relWait(t, bobPC, relIs("FriendAdded", "From_Account", "bob", "To_Account", "alice", "Remark", "Al"))
	if rel := relCheck(t, alice, "bob", ""); rel != "CheckResult_Type_BothWay" {
		t.Fatal(rel)
	}
	if g := relGroups(t, alice); g["pals"] != `["bob"]` {
		t.Fatalf("alice's lists: %v", g)
	}
	for _, c := range []*Client{alice, bob} {
		if items := relList(relOK(t, "pending", c.Req("friend.pending", map[string]any{})), "PendencyItem"); len(items) != 0 {
			t.Fatalf("%s still has requests: %v", c.User, items)
		}
	}
	relItem(t, "answer twice", resp(bob, "alice", "Response_Action_Agree"), "alice", 30001)

	// Agree: one-way (the requester gets bob; bob does not get carol).
	carol := b.Connect("carol", "carol")
	relItem(t, "carol asks", add(carol), "bob", 30539)
	relItem(t, "agree", resp(bob, "carol", "Response_Action_Agree"), "carol", 0)
	relWait(t, carol, relIs("FriendAdded", "From_Account", "carol", "To_Account", "bob"))
	if rel := relCheck(t, carol, "bob", ""); rel != "CheckResult_Type_AWithB" {
		t.Fatal(rel)
	}

	// Reject: no relation, the request is gone.
	dave := b.Connect("dave", "dave")
	relItem(t, "dave asks", add(dave), "bob", 30539)
	relItem(t, "reject", resp(bob, "dave", "Response_Action_Reject"), "dave", 0)
	relWait(t, dave, relIs("FriendResponse", "From_Account", "bob", "ResponseAction", "Response_Action_Reject"))
	if rel := relCheck(t, dave, "bob", ""); rel != "CheckResult_Type_NoRelation" {
		t.Fatal(rel)
	}
	if items := relList(relOK(t, "sent", dave.Req("friend.pending", map[string]any{"PendencyType": "Pendency_Type_SendOut"})), "PendencyItem"); len(items) != 0 {
		t.Fatalf("dave's request survived the reject: %v", items)
	}
	relItem(t, "no request", resp(bob, "erin", "Response_Action_Agree"), "erin", 30001)
	relItem(t, "bad action", resp(bob, "dave", "Response_Action_Maybe"), "dave", 30001)
	relCode(t, "bad pendency type", bob.Req("friend.pending", map[string]any{"PendencyType": "x"}), 30001)
}

func TestE2E_RelFriendLimits(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) {
		c.Relations.MaxFriends, c.Relations.MaxPending, c.Relations.MaxFriendGroups = 2, 1, 2
	})
	cl := map[string]*Client{}
	for _, u := range []string{"a", "p1", "p2", "p3", "p4", "y", "q", "r1", "r2", "d", "f"} {
		cl[u] = b.Connect(u, u)
	}
	for _, u := range []string{"p1", "p2", "p3", "p4"} {
		relAllow(t, cl[u], "AllowAny")
	}
	relAllow(t, cl["d"], "DenyAny")
	relItem(t, "deny any", relAdd(cl["a"], "d", "", nil), "d", 30516)

	relItem(t, "a+p1", relAdd(cl["a"], "p1", "Add_Type_Single", nil), "p1", 0)
	relItem(t, "a+p2", relAdd(cl["a"], "p2", "Add_Type_Single", nil), "p2", 0)
	relItem(t, "own list full", relAdd(cl["a"], "p3", "Add_Type_Single", nil), "p3", 30010)

	// p4's list full: a two-way add to p4 fails as a whole (30014).
	relItem(t, "p4+p1", relAdd(cl["p4"], "p1", "Add_Type_Single", nil), "p1", 0)
	relItem(t, "p4+p2", relAdd(cl["p4"], "p2", "Add_Type_Single", nil), "p2", 0)
	relItem(t, "peer list full", relAdd(cl["y"], "p4", "Add_Type_Both", nil), "p4", 30014)
	if rel := relCheck(t, cl["y"], "p4", ""); rel != "CheckResult_Type_NoRelation" {
		t.Fatalf("half-applied add: %s", rel)
	}
	relItem(t, "one-way still fits", relAdd(cl["y"], "p4", "Add_Type_Single", nil), "p4", 0)

	// Pending requests: one per target here.
	relItem(t, "r1 asks q", relAdd(cl["r1"], "q", "", nil), "q", 30539)
	relItem(t, "r2 asks q", relAdd(cl["r2"], "q", "", nil), "q", 30012)
	relItem(t, "r1 asks again", relAdd(cl["r1"], "q", "", nil), "q", 30539)
	// ... and one outstanding per requester.
	relItem(t, "r1 asks r2", relAdd(cl["r1"], "r2", "", nil), "r2", 30012)

	// Friend lists: two here.
	relOK(t, "lists", cl["a"].Req("friend.group_add", map[string]any{"GroupName": []any{"g1", "g2"}}))
	relCode(t, "third list", cl["a"].Req("friend.group_add", map[string]any{"GroupName": []any{"g3"}}), 30011)
	relItem(t, "list on update", cl["a"].Req("friend.update", map[string]any{"UpdateItem": []any{map[string]any{"To_Account": "p1",
		"SnsItem": []any{map[string]any{"Tag": "Tag_SNS_IM_Group", "Value": []any{"g1", "g9"}}}}}}), "p1", 30011)
	relCode(t, "list name too long", cl["a"].Req("friend.group_add", map[string]any{"GroupName": []any{strings.Repeat("n", 31)}}), 30001)

	// AdminForbidType SendOut: the admin forbade f's friend requests.
	admin := b.Connect("administrator", "administrator")
	relOK(t, "forbid", admin.Req("profile.set", map[string]any{"From_Account": "f", "ProfileItem": []any{
		map[string]any{"Tag": "Tag_Profile_IM_AdminForbidType", "Value": "AdminForbid_Type_SendOut"}}}))
	relCode(t, "forbidden", relAdd(cl["f"], "p3", "", nil), 30540)
}

func TestE2E_RelFriendConcurrentAddsKeepTheLimit(t *testing.T) {
	const max, adders = 4, 10
	b := StartBroker(t, func(c *config.Config) { c.Relations.MaxFriends = max })
	star := b.Connect("star", "star")
	relAllow(t, star, "AllowAny")
	cs := make([]*Client, adders)
	for i := range cs {
		u := fmt.Sprintf("fan%d", i)
		cs[i] = b.Connect(u, u)
	}
	codes := make([]int, adders)
	parallel(adders, adders, func(i int) {
		codes[i] = relItemCodes(relAdd(cs[i], "star", "Add_Type_Both", nil))["star"]
	})
	ok := 0
	for i, c := range codes {
		switch c {
		case 0:
			ok++
		case 30014:
			if rel := relCheck(t, cs[i], "star", ""); rel != "CheckResult_Type_NoRelation" {
				t.Fatalf("fan%d: refused but %s", i, rel)
			}
		default:
			t.Fatalf("fan%d: code %d", i, c)
		}
	}
	if ok != max || len(relFriends(t, star)) != max {
		t.Fatalf("%d adds succeeded, star has %d friends, want %d", ok, len(relFriends(t, star)), max)
	}
}

func TestE2E_RelFriendLists(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	relMakeFriends(t, alice, bob)
	relMakeFriends(t, alice, carol)

	r := alice.Req("friend.group_add", map[string]any{"GroupName": []any{"work", "golf"}, "To_Account": []any{"bob", "zed"}})
	relItem(t, "group_add", r, "bob", 0)
	relItem(t, "group_add non-friend", r, "zed", 30001)
	relWait(t, alice, relIs("FriendGroupUpdated", "Action", "Add", "GroupName", []any{"work", "golf"}, "Friend_Account", []any{"bob"}))
	if g := relGroups(t, alice); len(g) != 2 || g["work"] != `["bob"]` || g["golf"] != `["bob"]` {
		t.Fatalf("lists: %v", g)
	}
	relItem(t, "carol to work", alice.Req("friend.update", map[string]any{"UpdateItem": []any{map[string]any{"To_Account": "carol",
		"SnsItem": []any{map[string]any{"Tag": "Tag_SNS_IM_Group", "Value": []any{"work"}}}}}}), "carol", 0)
	if g := relGroups(t, alice); g["work"] != `["bob","carol"]` {
		t.Fatalf("lists: %v", g)
	}
	// Adding to an existing list only adds members.
	relItem(t, "carol to golf", alice.Req("friend.group_add", map[string]any{"GroupName": []any{"golf"}, "To_Account": []any{"carol"}}), "carol", 0)
	r = relOK(t, "get golf", alice.Req("friend.group_get", map[string]any{"GroupName": []any{"golf"}}))
	if items := relList(r, "ResultItem"); len(items) != 1 || items[0]["FriendNumber"].(float64) != 2 || items[0]["To_Account"] != nil {
		t.Fatalf("golf without NeedFriend: %v", r)
	}

	relOK(t, "delete golf", alice.Req("friend.group_delete", map[string]any{"GroupName": []any{"golf"}}))
	relWait(t, alice, relIs("FriendGroupUpdated", "Action", "Delete", "GroupName", []any{"golf"}))
	if g := relGroups(t, alice); len(g) != 1 || g["work"] != `["bob","carol"]` {
		t.Fatalf("after delete: %v", g)
	}
	if fs := relFriends(t, alice); relStr(fs["bob"]["Tag_SNS_IM_Group"]) != `["work"]` || relStr(fs["carol"]["Tag_SNS_IM_Group"]) != `["work"]` {
		t.Fatalf("membership after delete: %v", fs)
	}
	relCode(t, "delete missing", alice.Req("friend.group_delete", map[string]any{"GroupName": []any{"nope"}}), 30001)
	relCode(t, "get missing", alice.Req("friend.group_get", map[string]any{"GroupName": []any{"nope"}}), 30001)
	relCode(t, "no names", alice.Req("friend.group_add", map[string]any{"GroupName": []any{}}), 30001)
	// A friend deleted leaves every list.
	relItem(t, "delete bob", alice.Req("friend.delete", map[string]any{"To_Account": []any{"bob"}}), "bob", 0)
	if g := relGroups(t, alice); g["work"] != `["carol"]` {
		t.Fatalf("after deleting bob: %v", g)
	}
}

func TestRelConfigValidation(t *testing.T) {
	t.Setenv(config.EnvSecretKey, "")
	_, err := config.Parse([]byte(`
relations:
  blacklisted_send: maybe
  max_friends: 0
  custom_profile:
    TooLongName: { type: string }
    Bad_Name: { type: uint }
    Score: { type: float }
`))
	if err == nil {
		t.Fatal("bad relations config accepted")
	}
	for _, want := range []string{"relations.blacklisted_send", "relations.max_friends", "relations.custom_profile.TooLongName:",
		"relations.custom_profile.Bad_Name:", "relations.custom_profile.Score.type"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	cfg, err := config.Parse([]byte("relations:\n  blacklisted_send: error\n  custom_profile:\n    Hobby: { type: string, public: true }\n"))
	if err != nil || cfg.Relations.BlacklistedSend != "error" || !cfg.Relations.CustomProfile["Hobby"].Public || cfg.Relations.MaxFriends != 3000 {
		t.Fatalf("good config: %+v %v", cfg.Relations, err)
	}
}

func TestE2E_RelSurviveRestart(t *testing.T) {
	b := StartBroker(t, customProfile)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	dave := b.Connect("dave", "dave")
	erin := b.Connect("erin", "erin")
	relOK(t, "profile", relSet(alice, "Tag_Profile_IM_Nick", "Alice", "Tag_Profile_Custom_Hobby", "chess", "Tag_Profile_IM_AllowType", "AllowType_Type_AllowAny"))
	relItem(t, "bob adds alice", relAdd(bob, "alice", "", map[string]any{"Remark": "A", "GroupName": "pals"}), "alice", 0)
	relItem(t, "dave asks bob", relAdd(dave, "bob", "", map[string]any{"AddWording": "hi bob"}), "bob", 30539)
	relItem(t, "alice blocks erin", alice.Req("black.add", map[string]any{"To_Account": []any{"erin"}}), "erin", 0)
	for _, c := range []*Client{alice, bob, dave, erin} {
		c.Disconnect(100)
	}
	b.Stop()

	b2 := StartWith(t, b.Cfg)
	alice, bob, dave, erin = b2.Connect("alice", "alice"), b2.Connect("bob", "bob"), b2.Connect("dave", "dave"), b2.Connect("erin", "erin")
	if p := relProfile(t, bob, "alice", "Tag_Profile_IM_Nick", "Tag_Profile_Custom_Hobby", "Tag_Profile_IM_AllowType"); p["Tag_Profile_IM_Nick"] != "Alice" ||
		p["Tag_Profile_Custom_Hobby"] != "chess" || p["Tag_Profile_IM_AllowType"] != "AllowType_Type_AllowAny" {
		t.Fatalf("profile after restart: %v", p)
	}
	if fs := relFriends(t, bob); len(fs) != 1 || fs["alice"]["Tag_SNS_IM_Remark"] != "A" || relStr(fs["alice"]["Tag_SNS_IM_Group"]) != `["pals"]` {
		t.Fatalf("bob's friends after restart: %v", fs)
	}
	if rel := relCheck(t, alice, "bob", ""); rel != "CheckResult_Type_BothWay" {
		t.Fatal(rel)
	}
	if g := relGroups(t, bob); g["pals"] != `["alice"]` {
		t.Fatalf("bob's lists after restart: %v", g)
	}
	pend := relList(relOK(t, "pending", bob.Req("friend.pending", map[string]any{})), "PendencyItem")
	if len(pend) != 1 || pend[0]["To_Account"] != "dave" || pend[0]["AddWording"] != "hi bob" {
		t.Fatalf("bob's requests after restart: %v", pend)
	}
	relItem(t, "answer after restart", bob.Req("friend.response", map[string]any{"ResponseFriendItem": []any{
		map[string]any{"To_Account": "dave", "ResponseAction": "Response_Action_AgreeAndAdd"}}}), "dave", 0)
	if rel := relCheck(t, dave, "bob", ""); rel != "CheckResult_Type_BothWay" {
		t.Fatal(rel)
	}
	if items := relList(relOK(t, "black.get", alice.Req("black.get", map[string]any{})), "BlackListItem"); len(items) != 1 || items[0]["To_Account"] != "erin" {
		t.Fatalf("blacklist after restart: %v", items)
	}
	erin.Publish1("im/send/c2c/alice", Text("still blocked", Random()))
	relNoC2C(t, relMarker(t, bob, alice), "erin", "alice")
}
