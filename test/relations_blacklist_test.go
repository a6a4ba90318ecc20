package test

import (
	"context"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/imbroker/imbroker/config"
)

// The blacklist and the relation checks on one-to-one sends
// (docs/relations.md); helpers in relations_test.go.

// relSendOK sends from -> to and waits for the message at to.
func relSendOK(t *testing.T, from, to *Client) {
	t.Helper()
	r := Random()
	from.Publish1("im/send/c2c/"+to.User, Text("hello", r))
	relWait(t, to, func(e Event) bool { return e.Event == "C2CMsg" && e.Msg.MsgRandom == r })
}

// relSendErr sends from -> to (MQTT 3.1.1) and expects the refusal on rpc.
func relSendErr(t *testing.T, from *Client, to string, want int) {
	t.Helper()
	from.Publish1("im/send/c2c/"+to, Text("refused", Random()))
	r := from.NextReply()
	if r["Op"] != "send" || code(r) != want {
		t.Fatalf("send %s -> %s: %v, want code %d", from.User, to, r, want)
	}
}

// relNoErrorReply proves a 3.1.1 publish raised no rpc error: a request
// made after it is the first reply (errors are written before the PUBACK).
func relNoErrorReply(t *testing.T, c *Client) {
	t.Helper()
	c.Publish1("im/req/friend.check", map[string]any{"Id": "probe", "To_Account": []any{"x"}})
	if r := c.NextReply(); r["Id"] != "probe" {
		t.Fatalf("%s: unexpected reply %v", c.User, r)
	}
}

// relPublish5 publishes one message over MQTT 5 and returns the PUBACK.
func relPublish5(t *testing.T, c *paho5.Client, to string) *paho5.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, _ := c.Publish(ctx, &paho5.Publish{Topic: "im/send/c2c/" + to, QoS: 1, Payload: mustJSON(Text("v5", Random()))})
	if pr == nil {
		t.Fatal("no PUBACK")
	}
	return pr
}

// relNoC2C fails if evs hold a message from -> to.
func relNoC2C(t *testing.T, evs []Event, from, to string) {
	t.Helper()
	relNone(t, evs, func(e Event) bool { return e.Event == "C2CMsg" && e.Msg.From_Account == from && e.Msg.To_Account == to },
		"message "+from+" -> "+to)
}

func TestE2E_RelBlacklist(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	relMakeFriends(t, alice, bob)

	r := alice.Req("black.add", map[string]any{"To_Account": []any{"bob", "carol"}})
	relItem(t, "black.add bob", r, "bob", 0)
	relItem(t, "black.add carol", r, "carol", 0)
	// Blacklisting ends the friendship both ways (both hear of it); only
	// alice's devices hear of the blacklist itself.
	for _, c := range []*Client{alice, bob} {
		relWait(t, c, relIs("FriendDeleted", "From_Account", "alice", "To_Account", "bob", "Initiator_Account", "alice"))
		relWait(t, c, relIs("FriendDeleted", "From_Account", "bob", "To_Account", "alice", "Initiator_Account", "alice"))
	}
	m, _ := relWait(t, alice, relIs("BlackListAdded", "To_Account", "bob"))
	if m["AddBlackTimeStamp"].(float64) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("BlackListAdded: %v", m)
	}
	relNone(t, relMarker(t, carol, bob), relIs("BlackListAdded"), "BlackListAdded at the blacklisted user")
	if rel := relCheck(t, alice, "bob", ""); rel != "CheckResult_Type_NoRelation" {
		t.Fatal(rel)
	}
	relItem(t, "again", alice.Req("black.add", map[string]any{"To_Account": []any{"bob"}}), "bob", 30001)
	relItem(t, "self", alice.Req("black.add", map[string]any{"To_Account": []any{"alice"}}), "alice", 30001)

	// black.get pages in UserID order; StartIndex 0 in the reply means done.
	r = relOK(t, "get page 1", alice.Req("black.get", map[string]any{"MaxLimited": 1}))
	if items := relList(r, "BlackListItem"); len(items) != 1 || items[0]["To_Account"] != "bob" || r["StartIndex"].(float64) != 1 {
		t.Fatalf("page 1: %v", r)
	}
	r = relOK(t, "get page 2", alice.Req("black.get", map[string]any{"StartIndex": 1, "MaxLimited": 1}))
	if items := relList(r, "BlackListItem"); len(items) != 1 || items[0]["To_Account"] != "carol" || r["StartIndex"].(float64) != 0 ||
		items[0]["AddBlackTimeStamp"].(float64) == 0 {
		t.Fatalf("page 2: %v", r)
	}

	check := func(c *Client, to, typ string) string {
		r := relOK(t, "black.check", c.Req("black.check", map[string]any{"To_Account": []any{to}, "CheckType": typ}))
		return relList(r, "BlackListCheckItem")[0]["Relation"].(string)
	}
	if rel := check(alice, "bob", "BlackCheckResult_Type_Single"); rel != "BlackCheckResult_Type_AWithB" {
		t.Fatal(rel)
	}
	if rel := check(bob, "alice", "BlackCheckResult_Type_Both"); rel != "BlackCheckResult_Type_BWithA" {
		t.Fatal(rel)
	}
	if rel := check(bob, "alice", "BlackCheckResult_Type_Single"); rel != "BlackCheckResult_Type_NO" {
		t.Fatal(rel)
	}
	relItem(t, "bob blacklists alice", bob.Req("black.add", map[string]any{"To_Account": []any{"alice"}}), "alice", 0)
	if rel := check(alice, "bob", "BlackCheckResult_Type_Both"); rel != "BlackCheckResult_Type_BothWay" {
		t.Fatal(rel)
	}
	relCode(t, "bad check type", alice.Req("black.check", map[string]any{"To_Account": []any{"bob"}, "CheckType": "x"}), 30001)

	// No friend requests across a blacklist, in either direction.
	relAllow(t, carol, "AllowAny")
	relItem(t, "to someone you blacklisted", relAdd(alice, "carol", "", nil), "carol", 30515)
	relItem(t, "to someone who blacklisted you", relAdd(carol, "alice", "", nil), "alice", 30525)

	relItem(t, "delete", alice.Req("black.delete", map[string]any{"To_Account": []any{"carol"}}), "carol", 0)
	relWait(t, alice, relIs("BlackListDeleted", "To_Account", "carol"))
	relItem(t, "delete again", alice.Req("black.delete", map[string]any{"To_Account": []any{"carol"}}), "carol", 30001)
	relItem(t, "friends again", relAdd(alice, "carol", "", nil), "carol", 0)

	// Pending requests between the two are dropped.
	dave := b.Connect("dave", "dave")
	erin := b.Connect("erin", "erin")
	relItem(t, "erin asks dave", relAdd(erin, "dave", "", nil), "dave", 30539)
	relItem(t, "dave blacklists erin", dave.Req("black.add", map[string]any{"To_Account": []any{"erin"}}), "erin", 0)
	if items := relList(relOK(t, "pending", dave.Req("friend.pending", map[string]any{})), "PendencyItem"); len(items) != 0 {
		t.Fatalf("request survived the blacklist: %v", items)
	}
	if items := relList(relOK(t, "sent", erin.Req("friend.pending", map[string]any{"PendencyType": "Pendency_Type_SendOut"})), "PendencyItem"); len(items) != 0 {
		t.Fatalf("sent request survived the blacklist: %v", items)
	}
}

// TestE2E_RelBlacklistedSendSuccess: Tencent's default. The sender is told
// the message was sent; nothing is stored anywhere, so the recipient never
// sees it, live or by sync.
func TestE2E_RelBlacklistedSendSuccess(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	relItem(t, "black", bob.Req("black.add", map[string]any{"To_Account": []any{"alice"}}), "alice", 0)

	alice.Publish1("im/send/c2c/bob", Text("blocked", Random()))
	relNoErrorReply(t, alice)
	c5, _ := connect5(t, b, "alice:v5", "alice", b.Sig("alice"))
	if pr := relPublish5(t, c5, "bob"); pr.ReasonCode != 0 {
		t.Fatalf("v5 PUBACK 0x%02x %+v", pr.ReasonCode, pr.Properties)
	}
	relNoC2C(t, relMarker(t, carol, bob), "alice", "bob")
	relNoC2C(t, bob.SyncAll(0), "alice", "bob")
	relNoC2C(t, alice.SyncAll(0), "alice", "bob") // not in the sender's stream either
	for _, cv := range relList(relOK(t, "conv.list", bob.Req("conv.list", map[string]any{})), "ConvList") {
		if cv["Peer_Account"] == "alice" {
			t.Fatalf("bob has a conversation with alice: %v", cv)
		}
	}
	// Bob's other relation with alice: she still cannot befriend him.
	relItem(t, "befriend", relAdd(alice, "bob", "", nil), "bob", 30525)

	relItem(t, "unblock", bob.Req("black.delete", map[string]any{"To_Account": []any{"alice"}}), "alice", 0)
	relSendOK(t, alice, bob)
}

func TestE2E_RelBlacklistedSendError(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Relations.BlacklistedSend = "error" })
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	relItem(t, "black", bob.Req("black.add", map[string]any{"To_Account": []any{"alice"}}), "alice", 0)

	relSendErr(t, alice, "bob", 20007)
	c5, _ := connect5(t, b, "alice:v5", "alice", b.Sig("alice"))
	if pr := relPublish5(t, c5, "bob"); pr.ReasonCode != 0x87 || pr.Properties == nil || !strings.HasPrefix(pr.Properties.ReasonString, "20007") {
		t.Fatalf("v5 PUBACK 0x%02x %+v", pr.ReasonCode, pr.Properties)
	}
	relNoC2C(t, relMarker(t, carol, bob), "alice", "bob")
	relNoC2C(t, bob.SyncAll(0), "alice", "bob")
	// The blacklist is one-way: bob may still write to alice.
	relSendOK(t, bob, alice)
}

func TestE2E_RelFriendshipRequiredForC2C(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Relations.RequireFriendshipForC2C = true })
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")
	admin := b.Connect("administrator", "administrator")

	relSendErr(t, alice, "bob", 20009)
	relAllow(t, bob, "AllowAny")
	relItem(t, "one-way", relAdd(alice, "bob", "Add_Type_Single", nil), "bob", 0)
	relSendErr(t, alice, "bob", 20010) // alice has bob; bob does not have alice
	relSendErr(t, bob, "alice", 20011) // bob is in alice's list, alice not in his
	relAllow(t, alice, "AllowAny")
	relItem(t, "back", relAdd(bob, "alice", "Add_Type_Single", nil), "alice", 0)
	relSendOK(t, alice, bob)
	relSendOK(t, bob, alice)
	// The app admin is exempt both ways, and so is writing to yourself.
	relSendOK(t, admin, carol)
	relSendOK(t, carol, admin)
	relSendOK(t, carol, carol)
	relSendErr(t, carol, "alice", 20009)
}
