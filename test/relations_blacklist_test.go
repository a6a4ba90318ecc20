package test

import (
	"context"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/imbroker/imbroker/config"
)

// Blacklist, the C2C relation checks, online status and restart
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

// relStatus queries one user's status with detail.
func relStatus(t *testing.T, c *Client, user string) (state string, platforms []string) {
	t.Helper()
	r := relOK(t, "status.query", c.Req("status.query", map[string]any{"To_Account": []any{user}, "IsNeedDetail": 1}))
	res := relList(r, "QueryResult")
	if len(res) != 1 || res[0]["To_Account"] != user {
		t.Fatalf("status.query: %v", r)
	}
	for _, d := range res[0]["Detail"].([]any) {
		m := d.(map[string]any)
		if m["Status"] != "Online" {
			t.Fatalf("detail: %v", r)
		}
		platforms = append(platforms, m["Platform"].(string))
	}
	return res[0]["State"].(string), platforms
}

// relAwaitStatus polls status.query until user's state and devices are as
// wanted (a client's own DISCONNECT has no answer to wait for).
func relAwaitStatus(t *testing.T, c *Client, user, state string, platforms ...string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for {
		s, p := relStatus(t, c, user)
		if s == state && strings.Join(p, ",") == strings.Join(platforms, ",") {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("status of %s: %s %v, want %s %v", user, s, p, state, platforms)
		}
	}
}

func TestE2E_RelStatusQuery(t *testing.T) {
	b := StartBroker(t)
	bob := b.Connect("bob", "bob")
	phone := b.Connect("alice:phone", "alice")
	b.Connect("alice:pc", "alice")
	carol := b.Connect("carol", "carol")
	relMakeFriends(t, bob, phone) // status events are off by default: none may come of this

	relAwaitStatus(t, bob, "alice", "Online", "phone", "pc")
	relAwaitStatus(t, bob, "carol", "Online", "Unknown")
	relAwaitStatus(t, bob, "nobody", "Offline")
	r := relOK(t, "several", bob.Req("status.query", map[string]any{"To_Account": []any{"alice", "b b", "nobody"}}))
	res := relList(r, "QueryResult")
	if len(res) != 2 || res[0]["State"] != "Online" || res[1]["State"] != "Offline" || res[0]["Detail"] != nil ||
		relStr(r["ErrorList"]) != `[{"ErrorCode":70107,"To_Account":"b b"}]` {
		t.Fatalf("several: %v", r)
	}
	relCode(t, "none", bob.Req("status.query", map[string]any{"To_Account": []any{}}), 70402)
	many := make([]any, 501)
	for i := range many {
		many[i] = "u"
	}
	relCode(t, "501", bob.Req("status.query", map[string]any{"To_Account": many}), 70402)

	// A takeover of alice:pc by its own ClientID keeps her online with two devices.
	pc2 := b.Connect("alice:pc", "alice")
	relAwaitStatus(t, bob, "alice", "Online", "phone", "pc")
	phone.Disconnect(100)
	relAwaitStatus(t, bob, "alice", "Online", "pc")
	pc2.Disconnect(100)
	relAwaitStatus(t, bob, "alice", "Offline")
	carol.Disconnect(100)
	relAwaitStatus(t, bob, "carol", "Offline")
	relNone(t, bob.SyncAll(0), relIs("StatusChanged"), "StatusChanged with status_events off")
}

func TestE2E_RelStatusEvents(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Relations.StatusEvents = true })
	bob := b.Connect("bob", "bob")
	phone := b.Connect("alice:phone", "alice")
	dave := b.Connect("dave", "dave")
	erin := b.Connect("erin", "erin")
	carol := b.Connect("carol", "carol")
	relMakeFriends(t, bob, phone) // two-way
	relItem(t, "dave watches alice", relAdd(dave, "alice", "Add_Type_Single", nil), "alice", 0)
	relAllow(t, erin, "AllowAny")
	relItem(t, "alice has erin", relAdd(phone, "erin", "Add_Type_Single", nil), "erin", 0)

	status := func(state string) func(Event) bool {
		return relIs("StatusChanged", "To_Account", "alice", "State", state)
	}
	phone.Disconnect(100)
	relWait(t, bob, status("Offline"))
	phone = b.Connect("alice:phone", "alice")
	relWait(t, bob, status("Online"))
	// A second device, a takeover of it, and the first device leaving change nothing.
	b.Connect("alice:pc", "alice")
	pc := b.Connect("alice:pc", "alice")
	relNone(t, relMarker(t, carol, bob), relIs("StatusChanged"), "StatusChanged for a second device or a takeover")
	phone.Disconnect(100)
	relAwaitStatus(t, carol, "alice", "Online", "pc")
	pc.Disconnect(100)
	relWait(t, bob, status("Offline"))

	// Every announcement, in order, for everyone who has alice as a friend:
	// nothing in between (no takeover flip), nothing for anyone else.
	want := "Offline,Online,Offline"
	for _, c := range []*Client{bob, dave} {
		var got []string
		seen := map[uint64]bool{} // live copies not read yet come with the replay
		for _, e := range c.SyncAll(0) {
			if !seen[e.Seq] && relIs("StatusChanged", "To_Account", "alice")(e) {
				seen[e.Seq] = true
				got = append(got, relMsg(e)["State"].(string))
			}
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("%s's StatusChanged: %v, want %s", c.User, got, want)
		}
	}
	for _, c := range []*Client{erin, carol} {
		relNone(t, c.SyncAll(0), relIs("StatusChanged"), "StatusChanged to "+c.User+", who does not have alice as a friend")
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
