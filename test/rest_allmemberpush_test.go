package test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
)

// pushEvent decodes an AllMemberPush event's Msg.
func pushEvent(t *testing.T, e Event) (taskID, to, text string) {
	t.Helper()
	if e.Event != "AllMemberPush" {
		t.Fatalf("event %s, want AllMemberPush: %s", e.Event, e.Raw)
	}
	var m struct {
		Msg struct {
			TaskId, To_Account, From_Account string
			MsgBody                          []struct{ MsgContent struct{ Text string } }
		}
	}
	if err := json.Unmarshal([]byte(e.Raw), &m); err != nil || len(m.Msg.MsgBody) != 1 {
		t.Fatalf("bad push event %s: %v", e.Raw, err)
	}
	return m.Msg.TaskId, m.Msg.To_Account, m.Msg.MsgBody[0].MsgContent.Text
}

func pushBody(text string, random uint32, cond map[string]any) map[string]any {
	q := Text(text, random)
	if cond != nil {
		q["Condition"] = cond
	}
	return q
}

// A push by tag reaches exactly the tagged users: live to those online
// (paho clients), on sync to those offline, with the TaskId im_push
// answered; untagged users get nothing; the same MsgRandom again is the
// same task and delivers nothing more. Pages of 2 users per commit.
func TestREST_AllMemberPushByTag(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Push.BatchUsers = 2 })
	b.v4OK("all_member_push/im_add_tag", map[string]any{"UserTags": []any{
		map[string]any{"To_Account": "alice", "Tags": []string{"vip", "sz"}},
		map[string]any{"To_Account": "bob", "Tags": []string{"free"}},
		map[string]any{"To_Account": "carol", "Tags": []string{"vip"}},
		map[string]any{"To_Account": "zed", "Tags": []string{"vip", "free"}},
	}})
	alice, bob, zed := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("zed", "zed")

	random := Random()
	out := b.v4OK("all_member_push/im_push", pushBody("for vips", random, map[string]any{"TagsOr": []string{"vip"}}))
	taskID, _ := out["TaskId"].(string)
	if taskID == "" {
		t.Fatalf("no TaskId: %v", out)
	}
	for _, c := range []*Client{alice, zed} {
		id, to, text := pushEvent(t, c.NextEvent())
		if id != taskID || to != c.User || text != "for vips" {
			t.Fatalf("%s got task %s to %s %q", c.User, id, to, text)
		}
	}
	// zed sorts last: its page committed after carol's, so carol's copy is
	// stored. carol was offline and catches up.
	carol := b.Connect("carol", "carol")
	evs := carol.SyncAll(0)
	if len(evs) != 1 {
		t.Fatalf("carol synced %d events, want 1", len(evs))
	}
	if id, _, _ := pushEvent(t, evs[0]); id != taskID {
		t.Fatalf("carol got task %s, want %s", id, taskID)
	}

	// The same MsgRandom: the same task, nothing new delivered.
	again := b.v4OK("all_member_push/im_push", pushBody("for vips", random, map[string]any{"TagsOr": []string{"vip"}}))
	if again["TaskId"] != taskID {
		t.Fatalf("retry answered %v, want %s", again["TaskId"], taskID)
	}
	// TagsAnd: only zed has both. bob (untagged for vip) must see only that.
	b.v4OK("all_member_push/im_push", pushBody("vip and free", Random(), map[string]any{"TagsAnd": []string{"vip", "free"}}))
	if _, to, text := pushEvent(t, zed.NextEvent()); to != "zed" || text != "vip and free" {
		t.Fatalf("zed got %q to %s", text, to)
	}
	// Both pushes are done (zed was the last page of each); bob and alice
	// got nothing more: a C2C message is their next event.
	for _, c := range []*Client{bob, alice} {
		zed.Publish1("im/send/c2c/"+c.User, Text("marker", Random()))
		if e := c.NextEvent(); e.Event != "C2CMsg" {
			t.Fatalf("%s: next event %s, want the marker C2CMsg", c.User, e.Raw)
		}
	}
}

// A push without a condition reaches every user: imported accounts that
// never logged in, users with a stream and users online; the sender gets
// no copy.
func TestREST_AllMemberPushAll(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) {
		c.Push.BatchUsers = 2
		c.Relations.RequireAccounts = false // eve: a user with a stream who is no account
	})
	b.v4OK("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []string{"ann", "ben", "cat"}})
	dan := b.Connect("dan", "dan")
	dan.Publish1("im/send/c2c/eve", Text("hi", Random())) // dan and eve now have streams
	if e := dan.NextEvent(); e.Event != "C2CMsg" {
		t.Fatalf("dan: %s", e.Raw)
	}
	fay := b.Connect("fay", "fay") // online: neither imported nor with a stream
	out := b.v4OK("all_member_push/im_push", map[string]any{"From_Account": "eve", "MsgRandom": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "to all"}}}})
	for _, c := range []*Client{dan, fay} {
		if _, to, text := pushEvent(t, c.NextEvent()); to != c.User || text != "to all" {
			t.Fatalf("%s got %q to %s", c.User, text, to)
		}
	}
	// fay is the last recipient in UserID order (eve, the sender, is
	// skipped): every earlier page is committed.
	for _, u := range []string{"ann", "ben", "cat"} {
		evs := b.Connect(u, u).SyncAll(0)
		if len(evs) != 1 {
			t.Fatalf("%s synced %d events, want 1", u, len(evs))
		}
		if id, _, _ := pushEvent(t, evs[0]); id != out["TaskId"] {
			t.Fatalf("%s: task %s, want %v", u, id, out["TaskId"])
		}
	}
	for _, e := range b.Connect("eve", "eve").SyncAll(0) {
		if e.Event == "AllMemberPush" {
			t.Fatalf("the sender got its own push: %s", e.Raw)
		}
	}
}

// Attributes: names, set, get, remove, a push by AttrsAnd / AttrsOr, and
// everything survives a restart.
func TestREST_AllMemberPushAttrs(t *testing.T) {
	b := StartBroker(t)
	b.v4OK("all_member_push/im_set_attr_name", map[string]any{"AttrNames": map[string]string{"0": "sex", "1": "city"}})
	b.v4OK("all_member_push/im_set_attr", map[string]any{"UserAttrs": []any{
		map[string]any{"To_Account": "amy", "Attrs": map[string]string{"sex": "f", "city": "sz"}},
		map[string]any{"To_Account": "bo", "Attrs": map[string]string{"sex": "m", "city": "sz"}},
	}})
	b.v4OK("all_member_push/im_remove_attr", map[string]any{"UserAttrs": []any{map[string]any{"To_Account": "bo", "Attrs": []string{"city"}}}})
	b.v4OK("all_member_push/im_add_tag", map[string]any{"UserTags": []any{map[string]any{"To_Account": "bo", "Tags": []string{"t1", "t2"}}}})
	b.v4OK("all_member_push/im_remove_tag", map[string]any{"UserTags": []any{map[string]any{"To_Account": "bo", "Tags": []string{"t1"}}}})
	b.Stop()
	b = StartWith(t, b.Cfg)

	names := b.v4OK("all_member_push/im_get_attr_name", map[string]any{})
	if got := jsonAt(names, "AttrNames", "1"); got != "city" {
		t.Fatalf("AttrNames after restart: %v", names)
	}
	attrs := b.v4OK("all_member_push/im_get_attr", map[string]any{"To_Account": []string{"amy", "bo", "nobody"}})
	ua := items(attrs, "UserAttrs")
	if len(ua) != 3 || jsonAt(ua[0], "Attrs", "city") != "sz" || jsonAt(ua[1], "Attrs", "city") != nil ||
		jsonAt(ua[1], "Attrs", "sex") != "m" || len(ua[2]["Attrs"].(map[string]any)) != 0 {
		t.Fatalf("UserAttrs after restart: %v", attrs)
	}
	tags := items(b.v4OK("all_member_push/im_get_tag", map[string]any{"To_Account": []string{"bo"}}), "UserTags")
	if got, _ := json.Marshal(tags[0]["Tags"]); string(got) != `["t2"]` {
		t.Fatalf("bo's tags after restart: %s", got)
	}

	amy, bo := b.Connect("amy", "amy"), b.Connect("bo", "bo")
	b.v4OK("all_member_push/im_push", pushBody("sz women", Random(), map[string]any{"AttrsAnd": map[string]string{"sex": "f", "city": "sz"}}))
	if _, to, _ := pushEvent(t, amy.NextEvent()); to != "amy" {
		t.Fatalf("amy: to %s", to)
	}
	b.v4OK("all_member_push/im_push", pushBody("men or sz", Random(), map[string]any{"AttrsOr": map[string]string{"sex": "m", "city": "nowhere"}}))
	if _, _, text := pushEvent(t, bo.NextEvent()); text != "men or sz" {
		t.Fatalf("bo's first push is %q: the AttrsAnd push reached him", text)
	}
	b.v4OK("all_member_push/im_remove_all_tags", map[string]any{"To_Account": []string{"bo"}})
	if tags := items(b.v4OK("all_member_push/im_get_tag", map[string]any{"To_Account": []string{"bo"}}), "UserTags"); len(tags[0]["Tags"].([]any)) != 0 {
		t.Fatalf("tags after im_remove_all_tags: %v", tags)
	}
}

// Bad input gets Tencent's codes and changes nothing.
func TestREST_AllMemberPushErrors(t *testing.T) {
	b := StartBroker(t)
	b.v4OK("all_member_push/im_set_attr_name", map[string]any{"AttrNames": map[string]string{"0": "sex"}})
	many := make([]string, 101)
	for i := range many {
		many[i] = "u" + strings.Repeat("x", i%5) + string(rune('a'+i%26))
	}
	body := []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "x"}}}
	cases := []struct {
		name, api string
		body      any
		code      int
	}{
		{"push without MsgRandom", "im_push", map[string]any{"MsgBody": body}, 90005},
		{"push without MsgBody", "im_push", map[string]any{"MsgRandom": 1}, 90002},
		{"push with a bad element", "im_push", map[string]any{"MsgRandom": 1, "MsgBody": []any{map[string]any{"MsgType": "TIMNoSuchElem"}}}, 90002},
		{"push MsgLifeTime over 7 days", "im_push", map[string]any{"MsgRandom": 1, "MsgBody": body, "MsgLifeTime": 604801}, 90026},
		{"push tags and attributes", "im_push", map[string]any{"MsgRandom": 1, "MsgBody": body,
			"Condition": map[string]any{"TagsOr": []string{"a"}, "AttrsOr": map[string]string{"sex": "f"}}}, 90033},
		{"push unknown attribute", "im_push", map[string]any{"MsgRandom": 1, "MsgBody": body, "Condition": map[string]any{"AttrsAnd": map[string]string{"age": "1"}}}, 90033},
		{"push 11 tags", "im_push", map[string]any{"MsgRandom": 1, "MsgBody": body, "Condition": map[string]any{"TagsOr": strings.Split("a b c d e f g h i j k", " ")}}, 90033},
		{"push bad From_Account", "im_push", map[string]any{"From_Account": "a/b", "MsgRandom": 1, "MsgBody": body}, 90008},
		{"push Condition not an object", "im_push", map[string]any{"MsgRandom": 1, "MsgBody": body, "Condition": "all"}, 90001},
		{"attr name index 10", "im_set_attr_name", map[string]any{"AttrNames": map[string]string{"10": "x"}}, 90033},
		{"attr name twice", "im_set_attr_name", map[string]any{"AttrNames": map[string]string{"1": "sex"}}, 90033},
		{"set unknown attr", "im_set_attr", map[string]any{"UserAttrs": []any{map[string]any{"To_Account": "a", "Attrs": map[string]string{"age": "1"}}}}, 90033},
		{"attr value too long", "im_set_attr", map[string]any{"UserAttrs": []any{map[string]any{"To_Account": "a", "Attrs": map[string]string{"sex": strings.Repeat("x", 51)}}}}, 90033},
		{"101 accounts", "im_get_tag", map[string]any{"To_Account": many}, 90018},
		{"no accounts", "im_get_attr", map[string]any{"To_Account": []string{}}, 60003},
		{"bad account", "im_remove_all_tags", map[string]any{"To_Account": []string{"a/b"}}, 20003},
		{"tag too long", "im_add_tag", map[string]any{"UserTags": []any{map[string]any{"To_Account": "a", "Tags": []string{strings.Repeat("t", 51)}}}}, 90033},
		{"11 tags in one call", "im_add_tag", map[string]any{"UserTags": []any{map[string]any{"To_Account": "a", "Tags": strings.Split("a b c d e f g h i j k", " ")}}}, 90033},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, b.v4("all_member_push/"+tc.api, tc.body), tc.code)
		})
	}
	// A user's 101st tag is refused and the call adds none of its tags.
	for i := 0; i < 10; i++ {
		tags := make([]string, 10)
		for j := range tags {
			tags[j] = "t" + string(rune('a'+i)) + string(rune('a'+j))
		}
		b.v4OK("all_member_push/im_add_tag", map[string]any{"UserTags": []any{map[string]any{"To_Account": "a", "Tags": tags}}})
	}
	wantCode(t, "101st tag", b.v4("all_member_push/im_add_tag", map[string]any{"UserTags": []any{
		map[string]any{"To_Account": "b", "Tags": []string{"new"}},
		map[string]any{"To_Account": "a", "Tags": []string{"one-too-many"}}}}), 90033)
	if tags := items(b.v4OK("all_member_push/im_get_tag", map[string]any{"To_Account": []string{"a", "b"}}), "UserTags"); len(tags[0]["Tags"].([]any)) != 100 || len(tags[1]["Tags"].([]any)) != 0 {
		t.Fatalf("after the refused call: a has %d tags, b %v", len(tags[0]["Tags"].([]any)), tags[1]["Tags"])
	}
}
