package test

import (
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// Online status (status.query, StatusChanged events; docs/relations.md);
// helpers in relations_test.go.

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
