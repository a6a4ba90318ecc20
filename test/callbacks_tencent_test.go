package test

import (
	"testing"

	"github.com/imbroker/imbroker/config"
)

// Callbacks as Tencent enables and answers them (issue 16 point 1 and the
// OptPlatform of point 9): none is sent unless its command is enabled;
// Sns.CallbackPrevFriendAdd carries GroupName as a string, is not fired for
// REST calls, and only a code in 38000-39000 refuses; REST-started
// callbacks say OptPlatform=RESTAPI.

// TestE2E_CallbacksNoneByDefault: with a URL and callbacks.commands empty
// (the default), nothing is sent: the before-callbacks would be waited for
// by the send and the friend add, so an empty server after both proves it.
func TestE2E_CallbacksNoneByDefault(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) { c.Callbacks.URL = cb.URL })
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	alice.Publish1("im/send/c2c/bob", Text("hi", Random()))
	bob.NextEvent()
	relItem(t, "add", relAdd(alice, "bob", "", nil), "bob", 30539)
	b.v4OK("openim/sendmsg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgRandom": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "rest"}}}})
	select {
	case r := <-cb.got:
		t.Fatalf("a callback was sent with no command enabled: %s %v", r.Command, r.Body)
	default:
	}
}

func TestE2E_CallbackPrevFriendAddTencentRules(t *testing.T) {
	callbackPrevFriendAddScenario(t, func(mods ...func(*config.Config)) *Broker { return StartBroker(t, mods...) })
}

// callbackPrevFriendAddScenario is TestE2E_CallbackPrevFriendAddTencentRules
// on a broker from start (the cluster seam runs it forwarded too).
func callbackPrevFriendAddScenario(t *testing.T, start func(mods ...func(*config.Config)) *Broker) {
	cb := newCBServer(t)
	b := start(func(c *config.Config) {
		c.Callbacks.URL = cb.URL
		c.Callbacks.Commands = []string{"Sns.CallbackPrevFriendAdd", "Sns.CallbackFriendAdd"}
		c.Callbacks.Workers = 1
	})
	log := newCBLog(t, cb)
	users := map[string]*Client{}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		users[u] = b.Connect(u, u)
		if u != "alice" {
			relAllow(t, users[u], "AllowAny")
		}
	}
	alice := users["alice"]

	// GroupName is a string, as Tencent sends it; ForceAddFlags 0 from a client.
	r := relAdd(alice, "bob", "", map[string]any{"GroupName": "friends"})
	relItem(t, "add bob", r, "bob", 0)
	req := log.waitReq("Sns.CallbackPrevFriendAdd", nil)
	body := req.Body
	if g, ok := jsonAt(body, "FriendItem", 0, "GroupName").(string); !ok || g != "friends" {
		t.Fatalf("GroupName must be the string \"friends\": %v", body)
	}
	if body["ForceAddFlags"] != float64(0) {
		t.Fatalf("ForceAddFlags %v", body)
	}
	if req.Query["OptPlatform"] != "Unknown" {
		t.Fatalf("a client's callback OptPlatform %q", req.Query["OptPlatform"])
	}

	// ErrorCode 1 is "the app's backend failed": the on_failure policy
	// (allow) applies, it is no refusal.
	cbReply(cb, "Sns.CallbackPrevFriendAdd", `{"ActionStatus":"FAIL","ErrorCode":1,"ErrorInfo":"oops"}`)
	relItem(t, "ErrorCode 1 allows", relAdd(alice, "carol", "", nil), "carol", 0)
	log.wait("Sns.CallbackPrevFriendAdd", nil)
	// A code in 38000-39000 refuses every item with it.
	cbReply(cb, "Sns.CallbackPrevFriendAdd", `{"ActionStatus":"OK","ErrorCode":38123,"ErrorInfo":"no"}`)
	relItem(t, "38123 refuses", relAdd(alice, "dave", "", nil), "dave", 38123)
	log.wait("Sns.CallbackPrevFriendAdd", nil)
	// An item's non-zero ResultCode outside the range refuses it with 38000.
	cbReply(cb, "Sns.CallbackPrevFriendAdd", `{"ActionStatus":"OK","ErrorCode":0,"ResultItem":[{"To_Account":"dave","ResultCode":7}]}`)
	relItem(t, "item code 7", relAdd(alice, "dave", "", nil), "dave", 38000)
	log.wait("Sns.CallbackPrevFriendAdd", nil)

	// A REST friend_add fires no PrevFriendAdd; its FriendAdd says RESTAPI.
	cbReply(cb, "Sns.CallbackPrevFriendAdd", `{"ActionStatus":"OK","ErrorCode":38999,"ErrorInfo":"would refuse"}`)
	out := b.v4OK("sns/friend_add", map[string]any{"From_Account": "alice", "AddFriendItem": []any{map[string]any{"To_Account": "erin"}}})
	if c := items(out, "ResultItem"); len(c) != 1 || c[0]["ResultCode"] != float64(0) {
		t.Fatalf("REST add: %v", out)
	}
	req = log.waitReq("Sns.CallbackFriendAdd", func(m map[string]any) bool { return jsonAt(m, "PairList", 0, "To_Account") == "erin" })
	if req.Query["OptPlatform"] != "RESTAPI" {
		t.Fatalf("REST-started FriendAdd OptPlatform %q: %v", req.Query["OptPlatform"], req.Body)
	}
	if req.Body["ForceFlag"] != float64(0) {
		t.Fatalf("ForceFlag of an ordinary add: %v", req.Body)
	}
	// An admin force-add says so in ForceFlag.
	b.v4OK("sns/friend_add", map[string]any{"From_Account": "alice", "ForceAddFlags": 1, "AddFriendItem": []any{map[string]any{"To_Account": "frank"}}})
	req = log.waitReq("Sns.CallbackFriendAdd", func(m map[string]any) bool { return jsonAt(m, "PairList", 0, "To_Account") == "frank" })
	if req.Body["ForceFlag"] != float64(1) {
		t.Fatalf("ForceFlag of a force-add: %v", req.Body)
	}
	log.none("Sns.CallbackPrevFriendAdd", cbIs("From_Account", "alice"), "PrevFriendAdd for a REST call") // all earlier ones were consumed
}
