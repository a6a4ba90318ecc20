package test

// End-to-end tests of conversations (tencent-im.md §7): read reports and
// receipts, unread counts and the conversation list, conv.delete and
// ClearRamble, recall, roaming history, multi-device consistency and
// SyncOtherMachine. Helpers are prefixed cv; more tests in conv_more_test.go.

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// cvWait reads c's stream until an event matching want arrives (5 s
// deadline) and returns it with the events that came before it.
func cvWait(t *testing.T, c *Client, want func(Event) bool) (Event, []Event) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var skipped []Event
	for {
		select {
		case e := <-c.Events:
			if want(e) {
				return e, skipped
			}
			skipped = append(skipped, e)
		case <-deadline:
			t.Fatalf("%s: the awaited event did not arrive within 5s (%d others did)", c.User, len(skipped))
			return Event{}, nil
		}
	}
}

// cvIs matches an event by name and Msg fields (compared as printed).
func cvIs(name string, kv ...any) func(Event) bool {
	return func(e Event) bool {
		if e.Event != name {
			return false
		}
		m := gtMsg(e)
		for i := 0; i+1 < len(kv); i += 2 {
			if cvStr(m[kv[i].(string)]) != cvStr(kv[i+1]) {
				return false
			}
		}
		return true
	}
}

// cvStr prints a value, JSON numbers as integers where they are.
func cvStr(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// cvRand matches the C2C or group message with MsgRandom r.
func cvRand(r uint32) func(Event) bool {
	return func(e Event) bool { return (e.Event == "C2CMsg" || e.Event == "GroupMsg") && e.Msg.MsgRandom == r }
}

// cvBody is a text message body with extra top-level fields.
func cvBody(text string, random uint32, extra map[string]any) map[string]any {
	m := Text(text, random)
	maps.Copy(m, extra)
	return m
}

// cvSendC2C publishes a C2C text from c to `to` and returns its MsgRandom.
// The PUBACK comes after the commit, so the message is stored on return.
func cvSendC2C(c *Client, to, text string, extra map[string]any) uint32 {
	r := Random()
	c.Publish1("im/send/c2c/"+to, cvBody(text, r, extra))
	return r
}

// cvSendGroup publishes a group text and fails on any refusal or drop.
func cvSendGroup(t *testing.T, c *Client, gid, text string, extra map[string]any) uint32 {
	t.Helper()
	r := Random()
	c.Publish1("im/send/group/"+gid, cvBody(text, r, extra))
	for _, rep := range gtFlush(t, c) {
		if rep["Op"] == "send" {
			t.Fatalf("%s sends to %s: %v", c.User, gid, rep)
		}
	}
	return r
}

// cvNum reads a JSON number.
func cvNum(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// cvList returns c's conversation list reply.
func cvList(t *testing.T, c *Client) map[string]any {
	t.Helper()
	return gtOK(t, c.User+" conv.list", c.Req("conv.list", map[string]any{}))
}

// cvConv finds a conversation (Type 1: peer, Type 2: group) in c's list; nil if absent.
func cvConv(t *testing.T, c *Client, typ int, id string) map[string]any {
	t.Helper()
	for _, it := range cvList(t, c)["ConvList"].([]any) {
		cv := it.(map[string]any)
		if cvNum(cv["Type"]) == typ && (cv["Peer_Account"] == id || cv["GroupId"] == id) {
			return cv
		}
	}
	return nil
}

// cvUnread checks c's unread count for one conversation.
func cvUnread(t *testing.T, c *Client, typ int, id string, want int) map[string]any {
	t.Helper()
	cv := cvConv(t, c, typ, id)
	if cv == nil {
		t.Fatalf("%s: no conversation %d/%s in the list", c.User, typ, id)
	}
	if got := cvNum(cv["UnreadMsgNum"]); got != want {
		t.Fatalf("%s: conversation %d/%s has UnreadMsgNum %d, want %d (%v)", c.User, typ, id, got, want, cv)
	}
	return cv
}

// cvLastText is the text of a conversation's LastMsg ("" if none).
func cvLastText(cv map[string]any) string {
	m, _ := cv["LastMsg"].(map[string]any)
	return cvText(m)
}

// cvText is the first text element of a message ("" if none).
func cvText(m map[string]any) string {
	body, _ := m["MsgBody"].([]any)
	if len(body) == 0 {
		return ""
	}
	c, _ := body[0].(map[string]any)["MsgContent"].(map[string]any)
	s, _ := c["Text"].(string)
	return s
}

// cvC2C is a C2C conversation target; cvGroup a group one.
func cvC2C(peer string, kv ...any) map[string]any {
	m := map[string]any{"Type": 1, "Peer_Account": peer}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func cvGroup(gid string, kv ...any) map[string]any {
	m := map[string]any{"Type": 2, "GroupId": gid}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// cvHistory runs one msg.history page and returns the reply and its messages.
func cvHistory(t *testing.T, c *Client, body map[string]any) (map[string]any, []map[string]any) {
	t.Helper()
	r := gtOK(t, c.User+" msg.history", c.Req("msg.history", body))
	var list []map[string]any
	for _, it := range r["MsgList"].([]any) {
		list = append(list, it.(map[string]any))
	}
	if cvNum(r["MsgCnt"]) != len(list) {
		t.Fatalf("MsgCnt %v but %d messages", r["MsgCnt"], len(list))
	}
	return r, list
}

// cvHistoryAll pages msg.history with MaxCnt per page until Complete and
// returns every message (newest first) and the page sizes. Each page must
// continue strictly below the previous one.
func cvHistoryAll(t *testing.T, c *Client, target map[string]any, maxCnt int) ([]map[string]any, []int) {
	t.Helper()
	var all []map[string]any
	var pages []int
	last := uint64(0)
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("history paging does not end")
		}
		body := maps.Clone(target)
		body["MaxCnt"], body["LastSeq"] = maxCnt, last
		r, list := cvHistory(t, c, body)
		pages = append(pages, len(list))
		for _, m := range list {
			seq := uint64(cvNum(m["Seq"]))
			if last != 0 && seq >= last {
				t.Fatalf("page %d: Seq %d is not below LastSeq %d", i, seq, last)
			}
			last = seq
			all = append(all, m)
		}
		if len(list) > 0 && uint64(cvNum(r["LastSeq"])) != last {
			t.Fatalf("page %d: LastSeq %v, want the oldest returned %d", i, r["LastSeq"], last)
		}
		if r["Complete"] == true {
			return all, pages
		}
		if len(list) == 0 {
			t.Fatalf("page %d: empty but not Complete: %v", i, r)
		}
	}
}

// cvTexts returns the texts of history messages.
func cvTexts(list []map[string]any) []string {
	var out []string
	for _, m := range list {
		out = append(out, cvText(m["Msg"].(map[string]any)))
	}
	return out
}

// cvPassSecond waits (polling the clock, 3 s deadline) until the wall clock
// is past Unix second sec, so anything stamped from now on is later.
func cvPassSecond(t *testing.T, sec int64) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Second)
	for time.Now().Unix() <= sec {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the clock did not pass %d", sec)
		}
	}
}

// cvMarker proves absence on to's stream: from sends a C2C marker, and the
// events to receives before it are returned.
func cvMarker(t *testing.T, from, to *Client) []Event {
	t.Helper()
	r := cvSendC2C(from, to.User, "marker", nil)
	_, skipped := cvWait(t, to, cvRand(r))
	return skipped
}

// TestE2E_ReadReportsC2C: unread counts for the recipient only; a partial
// read (Seq of the reader's stream) leaves exactly the conversation's later
// incoming messages; the reader's devices get ConvRead, the peer a
// C2CReadReceipt naming the last message read; later messages count again.
func TestE2E_ReadReportsC2C(t *testing.T) {
	b := StartBroker(t)
	phone := b.Connect("alice:phone", "alice")
	pc := b.Connect("alice:pc", "alice")
	bob := b.Connect("bob", "bob")
	carol := b.Connect("carol", "carol")

	m1 := cvSendC2C(bob, "alice", "m1", nil)
	m2 := cvSendC2C(bob, "alice", "m2", nil)
	c1 := cvSendC2C(carol, "alice", "c1", nil) // another conversation in between
	m3 := cvSendC2C(bob, "alice", "m3", nil)
	ev := map[uint32]Event{}
	for _, r := range []uint32{m1, m2, c1, m3} {
		ev[r], _ = cvWait(t, phone, cvRand(r))
	}

	l := cvList(t, phone)
	if cvNum(l["TotalCount"]) != 2 || cvNum(l["AllUnreadMsgNum"]) != 4 {
		t.Fatalf("alice's list: %v", l)
	}
	cv := cvUnread(t, phone, 1, "bob", 3)
	if cvLastText(cv) != "m3" || cvNum(cv["LastUserSeq"]) != int(ev[m3].Seq) || cvNum(cv["LastMsgTime"]) != int(ev[m3].Msg.MsgTime) {
		t.Fatalf("alice's conversation with bob: %v", cv)
	}
	cvUnread(t, phone, 1, "carol", 1)
	// The sender counts nothing.
	if cv := cvUnread(t, bob, 1, "alice", 0); cvLastText(cv) != "m3" {
		t.Fatalf("bob's conversation with alice: %v", cv)
	}
	if l := cvList(t, bob); cvNum(l["AllUnreadMsgNum"]) != 0 {
		t.Fatalf("bob's list: %v", l)
	}

	// Partial read up to m1: m2 and m3 remain (carol's c1 is not this conversation).
	r := gtOK(t, "read up to m1", phone.Req("msg.read", cvC2C("bob", "Seq", ev[m1].Seq)))
	if cvNum(r["UnreadMsgNum"]) != 2 {
		t.Fatalf("read reply: %v", r)
	}
	cvUnread(t, phone, 1, "bob", 2)
	cvUnread(t, pc, 1, "carol", 1)
	if l := cvList(t, pc); cvNum(l["AllUnreadMsgNum"]) != 3 {
		t.Fatalf("alice's list after a partial read: %v", l)
	}
	cvWait(t, pc, cvIs("ConvRead", "Type", 1, "Peer_Account", "bob", "Seq", ev[m1].Seq, "UnreadMsgNum", 2))
	cvWait(t, phone, cvIs("ConvRead", "Peer_Account", "bob"))
	cvWait(t, bob, cvIs("C2CReadReceipt", "Peer_Account", "alice", "MsgKey", ev[m1].Msg.MsgKey, "LastReadTime", ev[m1].Msg.MsgTime))

	// Read up to c1's Seq (after m2, before m3): only m3 remains.
	gtOK(t, "read up to c1's seq", phone.Req("msg.read", cvC2C("bob", "Seq", ev[c1].Seq)))
	cvUnread(t, phone, 1, "bob", 1)
	cvWait(t, pc, cvIs("ConvRead", "Peer_Account", "bob", "UnreadMsgNum", 1))

	// Everything (no position).
	r = gtOK(t, "read all", pc.Req("msg.read", cvC2C("bob")))
	if cvNum(r["UnreadMsgNum"]) != 0 {
		t.Fatalf("read reply: %v", r)
	}
	cvUnread(t, phone, 1, "bob", 0)
	cvWait(t, phone, cvIs("ConvRead", "Peer_Account", "bob", "UnreadMsgNum", 0))
	cvWait(t, bob, cvIs("C2CReadReceipt", "Peer_Account", "alice", "MsgKey", ev[m3].Msg.MsgKey))
	cvUnread(t, phone, 1, "carol", 1) // other conversations are untouched

	// New messages count again.
	m4 := cvSendC2C(bob, "alice", "m4", nil)
	m5 := cvSendC2C(bob, "alice", "m5", nil)
	cvWait(t, phone, cvRand(m4))
	e5, _ := cvWait(t, phone, cvRand(m5))
	cvUnread(t, phone, 1, "bob", 2)
	// A Seq at or past the last message reads everything.
	gtOK(t, "read up to m5", phone.Req("msg.read", cvC2C("bob", "Seq", e5.Seq)))
	cvUnread(t, phone, 1, "bob", 0)
	cvWait(t, bob, cvIs("C2CReadReceipt", "Peer_Account", "alice", "MsgKey", e5.Msg.MsgKey))

	// Replying reads the conversation: bob's m6 is read once alice answers.
	m6 := cvSendC2C(bob, "alice", "m6", nil)
	cvWait(t, pc, cvRand(m6))
	cvUnread(t, pc, 1, "bob", 1)
	cvSendC2C(pc, "bob", "answer", nil)
	if cv := cvUnread(t, pc, 1, "bob", 0); cvLastText(cv) != "answer" {
		t.Fatalf("after answering: %v", cv)
	}
	// ...and bob's counts only what alice sent.
	cvUnread(t, bob, 1, "alice", 1)

	// Bad targets.
	gtCode(t, "read without Type", phone.Req("msg.read", map[string]any{"Peer_Account": "bob"}), 60003)
	gtCode(t, "read with a bad peer", phone.Req("msg.read", cvC2C("b b")), 20003)
}

// TestE2E_ReadGroupUnread: a Public group counts unread for the members who
// did not send; partial reads by MsgSeq (group position) and by Seq (the
// reader's stream) leave the right remainder; NoUnread and NoLastMsg are
// respected; a ChatRoom counts nothing.
func TestE2E_ReadGroupUnread(t *testing.T) {
	b := StartBroker(t)
	alice, pad := b.Connect("alice", "alice"), b.Connect("alice:pad", "alice")
	bob, carol := b.Connect("bob", "bob"), b.Connect("carol", "carol")
	pub := gtCreate(t, alice, map[string]any{"Type": "Public", "MemberList": gtMembers("bob", "carol")})
	room := gtCreate(t, alice, map[string]any{"Type": "ChatRoom", "MemberList": gtMembers("bob")})

	var g [3]Event
	for i := range g {
		r := cvSendGroup(t, bob, pub, fmt.Sprintf("g%d", i+1), nil)
		g[i], _ = cvWait(t, carol, cvRand(r))
	}
	cvWait(t, alice, cvRand(g[2].Msg.MsgRandom))
	cv := cvUnread(t, alice, 2, pub, 3)
	if cvLastText(cv) != "g3" || cvNum(cv["LastSeq"]) != int(g[2].Msg.MsgSeq) {
		t.Fatalf("alice's group conversation: %v", cv)
	}
	cvUnread(t, carol, 2, pub, 3)
	cvUnread(t, bob, 2, pub, 0)

	// alice reads up to g1 by group position: g2 and g3 remain.
	r := gtOK(t, "alice reads up to g1 (MsgSeq)", alice.Req("msg.read", cvGroup(pub, "MsgSeq", g[0].Msg.MsgSeq)))
	if cvNum(r["UnreadMsgNum"]) != 2 {
		t.Fatalf("read reply: %v", r)
	}
	cvUnread(t, alice, 2, pub, 2)
	cvWait(t, pad, cvIs("ConvRead", "Type", 2, "GroupId", pub, "MsgSeq", g[0].Msg.MsgSeq))
	// carol reads up to g2 by her stream's Seq: g3 remains.
	gtOK(t, "carol reads up to g2 (Seq)", carol.Req("msg.read", cvGroup(pub, "Seq", g[1].Seq)))
	cvUnread(t, carol, 2, pub, 1)
	// alice reads everything.
	gtOK(t, "alice reads all", alice.Req("msg.read", cvGroup(pub)))
	cvUnread(t, alice, 2, pub, 0)
	cvUnread(t, carol, 2, pub, 1)
	// A non-member may not report reads.
	dave := b.Connect("dave", "dave")
	gtCode(t, "non-member reads", dave.Req("msg.read", cvGroup(pub)), 10007)

	// NoUnread: last message changes, unread does not.
	cvSendGroup(t, bob, pub, "quiet", map[string]any{"SendMsgControl": []string{"NoUnread"}})
	if cv := cvUnread(t, alice, 2, pub, 0); cvLastText(cv) != "quiet" {
		t.Fatalf("NoUnread: %v", cv)
	}
	// NoLastMsg: unread counts, the last message stays.
	cvSendGroup(t, bob, pub, "hidden", map[string]any{"SendMsgControl": []string{"NoLastMsg"}})
	if cv := cvUnread(t, alice, 2, pub, 1); cvLastText(cv) != "quiet" {
		t.Fatalf("NoLastMsg: %v", cv)
	}
	cvUnread(t, carol, 2, pub, 2)

	// ChatRoom: listed with its last message, never unread.
	cvSendGroup(t, bob, room, "room msg", nil)
	if cv := cvUnread(t, alice, 2, room, 0); cvLastText(cv) != "room msg" {
		t.Fatalf("ChatRoom conversation: %v", cv)
	}
}

// TestE2E_ConvNoUnreadNoLastMsgC2C: SendMsgControl on C2C sends.
func TestE2E_ConvNoUnreadNoLastMsgC2C(t *testing.T) {
	b := StartBroker(t)
	alice, bob := b.Connect("alice", "alice"), b.Connect("bob", "bob")
	cvSendC2C(bob, "alice", "one", nil)
	cvSendC2C(bob, "alice", "two", map[string]any{"SendMsgControl": []string{"NoUnread"}})
	if cv := cvUnread(t, alice, 1, "bob", 1); cvLastText(cv) != "two" {
		t.Fatalf("NoUnread: %v", cv)
	}
	r := cvSendC2C(bob, "alice", "three", map[string]any{"SendMsgControl": []string{"NoLastMsg"}})
	if cv := cvUnread(t, alice, 1, "bob", 2); cvLastText(cv) != "two" {
		t.Fatalf("NoLastMsg: %v", cv)
	}
	if cv := cvUnread(t, bob, 1, "alice", 0); cvLastText(cv) != "two" {
		t.Fatalf("NoLastMsg, sender's side: %v", cv)
	}
	// Both flags: nothing changes but the stream.
	cvSendC2C(bob, "alice", "four", map[string]any{"SendMsgControl": []string{"NoUnread", "NoLastMsg"}})
	if cv := cvUnread(t, alice, 1, "bob", 2); cvLastText(cv) != "two" {
		t.Fatalf("both flags: %v", cv)
	}
	// The messages are still delivered and roamed.
	cvWait(t, alice, cvRand(r))
	_, list := cvHistory(t, alice, cvC2C("bob"))
	if got := strings.Join(cvTexts(list), ","); got != "four,three,two,one" {
		t.Fatalf("history %s", got)
	}
}

// TestE2E_ConvDelete: conv.delete removes a conversation from the list and
// tells the user's other devices; a new message brings it back counting
// from zero; ClearRamble 1 hides the earlier history from this user only.
func TestE2E_ConvDelete(t *testing.T) {
	b := StartBroker(t)
	phone, pc := b.Connect("alice:phone", "alice"), b.Connect("alice:pc", "alice")
	bob, carol := b.Connect("bob", "bob"), b.Connect("carol", "carol")
	cvSendC2C(bob, "alice", "b1", nil)
	cvSendC2C(bob, "alice", "b2", nil)
	cvSendC2C(carol, "alice", "c1", nil)
	if l := cvList(t, phone); cvNum(l["TotalCount"]) != 2 || cvNum(l["AllUnreadMsgNum"]) != 3 {
		t.Fatalf("list: %v", l)
	}

	gtOK(t, "delete bob", phone.Req("conv.delete", cvC2C("bob")))
	cvWait(t, pc, cvIs("ConvDeleted", "Type", 1, "Peer_Account", "bob", "ClearRamble", 0))
	cvWait(t, phone, cvIs("ConvDeleted", "Peer_Account", "bob"))
	if cvConv(t, pc, 1, "bob") != nil {
		t.Fatal("the deleted conversation is still listed")
	}
	if l := cvList(t, pc); cvNum(l["TotalCount"]) != 1 || cvNum(l["AllUnreadMsgNum"]) != 1 {
		t.Fatalf("list after delete: %v", l)
	}
	// bob still has his side.
	cvUnread(t, bob, 1, "alice", 0)
	// Without ClearRamble the history stays.
	if _, list := cvHistory(t, phone, cvC2C("bob")); len(list) != 2 {
		t.Fatalf("history after a plain delete: %v", cvTexts(list))
	}
	// A new message brings the conversation back, counting afresh.
	cvSendC2C(bob, "alice", "b3", nil)
	if cv := cvUnread(t, phone, 1, "bob", 1); cvLastText(cv) != "b3" {
		t.Fatalf("conversation back: %v", cv)
	}

	// ClearRamble: alice no longer sees b1..b3; bob still does.
	gtOK(t, "delete bob, clearing history", phone.Req("conv.delete", cvC2C("bob", "ClearRamble", 1)))
	cvWait(t, pc, cvIs("ConvDeleted", "Peer_Account", "bob", "ClearRamble", 1))
	if r, list := cvHistory(t, phone, cvC2C("bob")); len(list) != 0 || r["Complete"] != true {
		t.Fatalf("history after ClearRamble: %v", r)
	}
	cvSendC2C(bob, "alice", "b4", nil)
	if _, list := cvHistory(t, pc, cvC2C("bob")); strings.Join(cvTexts(list), ",") != "b4" {
		t.Fatalf("alice's history after ClearRamble and b4: %v", cvTexts(list))
	}
	if _, list := cvHistory(t, bob, cvC2C("alice")); strings.Join(cvTexts(list), ",") != "b4,b3,b2,b1" {
		t.Fatalf("bob's history: %v", cvTexts(list))
	}
	// Paging below the cleared point shows nothing either.
	if _, list := cvHistory(t, phone, cvC2C("bob", "LastSeq", 3)); len(list) != 0 {
		t.Fatalf("paging into cleared history: %v", cvTexts(list))
	}

	// Group conversations: delete with ClearRamble hides the group's history.
	gid := gtCreate(t, phone, map[string]any{"Type": "Public", "MemberList": gtMembers("bob")})
	cvSendGroup(t, bob, gid, "before", nil)
	cvUnread(t, pc, 2, gid, 1)
	gtOK(t, "delete the group conversation", pc.Req("conv.delete", cvGroup(gid, "ClearRamble", 1)))
	cvWait(t, phone, cvIs("ConvDeleted", "Type", 2, "GroupId", gid, "ClearRamble", 1))
	if cvConv(t, phone, 2, gid) != nil {
		t.Fatal("the deleted group conversation is still listed")
	}
	cvSendGroup(t, bob, gid, "after", nil)
	if _, list := cvHistory(t, phone, cvGroup(gid)); strings.Join(cvTexts(list), ",") != "after" {
		t.Fatalf("group history after ClearRamble: %v", cvTexts(list))
	}
	if _, list := cvHistory(t, bob, cvGroup(gid)); strings.Join(cvTexts(list), ",") != "after,before" {
		t.Fatalf("bob's group history: %v", cvTexts(list))
	}
	cvUnread(t, phone, 2, gid, 1)
}

// TestE2E_ConvCountsSurviveRestart: unread counts, read positions and last
// messages are stored, not cached.
func TestE2E_ConvCountsSurviveRestart(t *testing.T) {
	b := StartBroker(t)
	alice, bob := b.Connect("alice", "alice"), b.Connect("bob", "bob")
	gid := gtCreate(t, alice, map[string]any{"Type": "Public", "MemberList": gtMembers("bob")})
	var first Event
	for i := range 3 {
		r := cvSendC2C(bob, "alice", fmt.Sprintf("m%d", i), nil)
		if e, _ := cvWait(t, alice, cvRand(r)); i == 0 {
			first = e
		}
	}
	cvSendGroup(t, bob, gid, "g1", nil)
	cvSendGroup(t, bob, gid, "g2", nil)
	gtOK(t, "partial read", alice.Req("msg.read", cvC2C("bob", "Seq", first.Seq)))
	cvUnread(t, alice, 1, "bob", 2)
	before := cvList(t, alice)
	alice.Disconnect(0)
	bob.Disconnect(0)
	b.Stop()

	b2 := StartWith(t, b.Cfg)
	alice, bob = b2.Connect("alice", "alice"), b2.Connect("bob", "bob")
	after := cvList(t, alice)
	delete(before, "Id")
	delete(after, "Id")
	if a, bb := mustJSON(after), mustJSON(before); string(a) != string(bb) {
		t.Fatalf("list after restart:\n%s\nbefore:\n%s", a, bb)
	}
	if cvNum(after["AllUnreadMsgNum"]) != 4 {
		t.Fatalf("list after restart: %v", after)
	}
	cvSendC2C(bob, "alice", "m3", nil)
	cvUnread(t, alice, 1, "bob", 3)
	cvSendGroup(t, bob, gid, "g3", nil)
	cvUnread(t, alice, 2, gid, 3)
	gtOK(t, "read all", alice.Req("msg.read", cvC2C("bob")))
	cvUnread(t, alice, 1, "bob", 0)
}

// TestE2E_RecallC2C: the sender recalls within the window; every device of
// both users gets MsgRecalled, an offline one when it syncs; history and the
// conversation list keep the message as a marker; errors 20022, 20023 and
// 10007 (not the sender).
func TestE2E_RecallC2C(t *testing.T) {
	b := StartBroker(t)
	phone, pc := b.Connect("alice:phone", "alice"), b.Connect("alice:pc", "alice")
	pad := b.Connect("alice:pad", "alice")
	bob := b.Connect("bob", "bob")
	r1 := cvSendC2C(bob, "alice", "secret", map[string]any{"CloudCustomData": "ccd"})
	m1, _ := cvWait(t, pad, cvRand(r1))
	pad.Disconnect(0) // offline from here

	gtOK(t, "bob recalls", bob.Req("msg.recall", cvC2C("alice", "MsgKey", m1.Msg.MsgKey)))
	want := cvIs("MsgRecalled", "Type", 1, "From_Account", "bob", "To_Account", "alice", "MsgKey", m1.Msg.MsgKey)
	for _, c := range []*Client{phone, pc, bob} {
		cvWait(t, c, want)
	}
	// History: the marker, no body, no custom data.
	for _, c := range []*Client{phone, bob} {
		peer := map[string]string{"alice": "bob", "bob": "alice"}[c.User]
		_, list := cvHistory(t, c, cvC2C(peer))
		if len(list) != 1 {
			t.Fatalf("%s's history: %v", c.User, list)
		}
		m := list[0]["Msg"].(map[string]any)
		if cvNum(m["MsgFlagBits"]) != 8 || len(m["MsgBody"].([]any)) != 0 || m["CloudCustomData"] != nil || m["MsgKey"] != m1.Msg.MsgKey {
			t.Fatalf("%s's history shows %v", c.User, list[0])
		}
	}
	// The conversation's last message is the marker too.
	for _, c := range []*Client{phone, bob} {
		peer := map[string]string{"alice": "bob", "bob": "alice"}[c.User]
		cv := cvConv(t, c, 1, peer)
		if last := cv["LastMsg"].(map[string]any); cvNum(last["MsgFlagBits"]) != 8 || cvLastText(cv) != "" {
			t.Fatalf("%s's last message after the recall: %v", c.User, cv)
		}
	}

	gtCode(t, "recall again", bob.Req("msg.recall", cvC2C("alice", "MsgKey", m1.Msg.MsgKey)), 20023)
	gtCode(t, "unknown MsgKey", bob.Req("msg.recall", cvC2C("alice", "MsgKey", "1_2_3")), 20022)
	r2 := cvSendC2C(bob, "alice", "kept", nil)
	m2, _ := cvWait(t, phone, cvRand(r2))
	gtCode(t, "the recipient recalls", phone.Req("msg.recall", cvC2C("bob", "MsgKey", m2.Msg.MsgKey)), 10007)
	carol := b.Connect("carol", "carol")
	gtCode(t, "an outsider recalls", carol.Req("msg.recall", cvC2C("bob", "MsgKey", m2.Msg.MsgKey)), 20022)
	gtCode(t, "recall without a type", bob.Req("msg.recall", map[string]any{"Peer_Account": "alice", "MsgKey": m2.Msg.MsgKey}), 60003)
	// alice recalls her own message.
	r3 := cvSendC2C(phone, "bob", "mine", nil)
	m3, _ := cvWait(t, bob, cvRand(r3))
	gtOK(t, "alice recalls hers", pc.Req("msg.recall", cvC2C("bob", "MsgKey", m3.Msg.MsgKey)))
	cvWait(t, bob, cvIs("MsgRecalled", "From_Account", "alice", "MsgKey", m3.Msg.MsgKey))
	_, list := cvHistory(t, bob, cvC2C("alice"))
	if got := cvTexts(list); strings.Join(got, ",") != ",kept," {
		t.Fatalf("history after two recalls: %q", got)
	}

	// The offline device finds the recall in its stream.
	pad = b.Connect("alice:pad", "alice")
	evs := pad.SyncAll(m1.Seq)
	found := false
	for _, e := range evs {
		found = found || want(e)
	}
	if !found {
		t.Fatalf("the offline device did not get MsgRecalled on sync (%d events)", len(evs))
	}
}

// TestE2E_RecallWindow: past conversations.recall_window the sender gets
// 20016 (C2C) or 10031 (group); the owner and the app admin still recall.
func TestE2E_RecallWindow(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Conversations.RecallWindow = time.Nanosecond })
	alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
	admin := b.Connect("administrator", "administrator")
	gid := gtCreate(t, alice, map[string]any{"Type": "Public", "MemberList": gtMembers("bob", "carol")})

	r := cvSendC2C(bob, "alice", "late", nil)
	m, _ := cvWait(t, alice, cvRand(r))
	rg := cvSendGroup(t, carol, gid, "late group", nil)
	g, _ := cvWait(t, bob, cvRand(rg))
	ra := cvSendC2C(admin, "bob", "from the admin", nil)
	ma, _ := cvWait(t, bob, cvRand(ra))
	cvPassSecond(t, max(m.Msg.MsgTime, g.Msg.MsgTime, ma.Msg.MsgTime))

	gtCode(t, "C2C recall after the window", bob.Req("msg.recall", cvC2C("alice", "MsgKey", m.Msg.MsgKey)), 20016)
	gtCode(t, "group recall after the window", carol.Req("msg.recall", cvGroup(gid, "MsgSeq", g.Msg.MsgSeq)), 10031)
	// The app admin has no window.
	gtOK(t, "the admin recalls its C2C message", admin.Req("msg.recall", cvC2C("bob", "MsgKey", ma.Msg.MsgKey)))
	cvWait(t, bob, cvIs("MsgRecalled", "From_Account", "administrator", "MsgKey", ma.Msg.MsgKey))
	gtOK(t, "the admin recalls a group message", admin.Req("msg.recall", cvGroup(gid, "MsgSeq", g.Msg.MsgSeq)))
	cvWait(t, bob, cvIs("GroupTip", "TipType", "MsgRecalled", "RecalledMsgSeq", g.Msg.MsgSeq, "Operator_Account", "administrator"))
	// The owner recalls a member's message at any time.
	rg2 := cvSendGroup(t, carol, gid, "another", nil)
	g2, _ := cvWait(t, bob, cvRand(rg2))
	cvPassSecond(t, g2.Msg.MsgTime)
	gtOK(t, "the owner recalls after the window", alice.Req("msg.recall", cvGroup(gid, "MsgSeq", g2.Msg.MsgSeq)))
}

// TestE2E_RecallGroup: sender, owner and admin recall rules; the MsgRecalled
// tip takes its own group seq; history shows the marker; live rooms refuse.
func TestE2E_RecallGroup(t *testing.T) {
	b := StartBroker(t)
	alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
	dave, erin := b.Connect("dave", "dave"), b.Connect("erin", "erin")
	admin := func(u string) any { return map[string]any{"Member_Account": u, "Role": "Admin"} }
	gid := gtCreate(t, alice, map[string]any{"Type": "Public",
		"MemberList": append([]any{admin("bob"), admin("erin")}, gtMembers("carol", "dave")...)})

	send := func(c *Client, text string) Event {
		t.Helper()
		r := cvSendGroup(t, c, gid, text, nil)
		e, _ := cvWait(t, dave, cvRand(r))
		return e
	}
	recalled := func(e Event, by string) {
		t.Helper()
		tip, _ := cvWait(t, dave, cvIs("GroupTip", "TipType", "MsgRecalled", "RecalledMsgSeq", e.Msg.MsgSeq, "Operator_Account", by))
		if m := gtMsg(tip); cvNum(m["MsgSeq"]) <= int(e.Msg.MsgSeq) || m["GroupId"] != gid {
			t.Fatalf("recall tip: %s", tip.Raw)
		}
	}

	own := send(carol, "carol's own")
	gtOK(t, "the sender recalls", carol.Req("msg.recall", cvGroup(gid, "MsgSeq", own.Msg.MsgSeq)))
	recalled(own, "carol")
	head := send(carol, "probe") // the tip took exactly one seq
	if head.Msg.MsgSeq != own.Msg.MsgSeq+2 {
		t.Fatalf("seq after the recall tip: %d, recalled %d", head.Msg.MsgSeq, own.Msg.MsgSeq)
	}
	gtCode(t, "again", carol.Req("msg.recall", cvGroup(gid, "MsgSeq", own.Msg.MsgSeq)), 20023)
	gtCode(t, "no such seq", carol.Req("msg.recall", cvGroup(gid, "MsgSeq", 9999)), 20022)
	gtCode(t, "a tip is not a message", alice.Req("msg.recall", cvGroup(gid, "MsgSeq", own.Msg.MsgSeq+1)), 20022)

	byOwner := send(carol, "owner removes this")
	gtCode(t, "another member recalls", dave.Req("msg.recall", cvGroup(gid, "MsgSeq", byOwner.Msg.MsgSeq)), 10007)
	gtOK(t, "the owner recalls a member's", alice.Req("msg.recall", cvGroup(gid, "MsgSeq", byOwner.Msg.MsgSeq)))
	recalled(byOwner, "alice")

	ownerMsg := send(alice, "the owner's")
	gtCode(t, "an admin recalls the owner's", bob.Req("msg.recall", cvGroup(gid, "MsgSeq", ownerMsg.Msg.MsgSeq)), 10007)
	adminMsg := send(erin, "erin's")
	gtCode(t, "an admin recalls another admin's", bob.Req("msg.recall", cvGroup(gid, "MsgSeq", adminMsg.Msg.MsgSeq)), 10007)
	byAdmin := send(dave, "dave's")
	gtOK(t, "an admin recalls a member's", bob.Req("msg.recall", cvGroup(gid, "MsgSeq", byAdmin.Msg.MsgSeq)))
	recalled(byAdmin, "bob")
	frank := b.Connect("frank", "frank")
	gtCode(t, "a non-member recalls", frank.Req("msg.recall", cvGroup(gid, "MsgSeq", ownerMsg.Msg.MsgSeq)), 10007)

	// History: markers in place, other messages intact, tips not listed.
	_, list := cvHistory(t, carol, cvGroup(gid))
	var got []string
	for _, m := range list {
		msg := m["Msg"].(map[string]any)
		if cvNum(msg["MsgFlagBits"]) == 8 {
			if len(msg["MsgBody"].([]any)) != 0 {
				t.Fatalf("recalled message keeps its body: %v", m)
			}
			got = append(got, "(recalled)")
		} else {
			got = append(got, cvText(msg))
		}
		if m["Event"] != "GroupMsg" || cvNum(m["Seq"]) != cvNum(msg["MsgSeq"]) {
			t.Fatalf("history entry %v", m)
		}
	}
	if s := strings.Join(got, ","); s != "(recalled),erin's,the owner's,(recalled),probe,(recalled)" {
		t.Fatalf("history: %s", s)
	}
	// The conversation's last message (dave's, recalled) is the marker.
	if cv := cvConv(t, carol, 2, gid); cvLastText(cv) != "" || cvNum(cv["LastMsg"].(map[string]any)["MsgFlagBits"]) != 8 {
		t.Fatalf("carol's conversation after the recall of its last message: %v", cv)
	}

	// Live rooms keep nothing to recall.
	live := gtCreate(t, alice, map[string]any{"Type": "AVChatRoom"})
	gtCode(t, "AVChatRoom recall", alice.Req("msg.recall", cvGroup(live, "MsgSeq", 1)), 10007)
	bc := gtCreate(t, alice, map[string]any{"Type": "BChatRoom"})
	gtCode(t, "BChatRoom recall", alice.Req("msg.recall", cvGroup(bc, "MsgSeq", 1)), 10007)
}

// cvMsgRandoms is the MsgRandoms of history messages.
func cvMsgRandoms(list []map[string]any) []uint32 {
	var out []uint32
	for _, m := range list {
		out = append(out, uint32(cvNum(m["Msg"].(map[string]any)["MsgRandom"])))
	}
	return out
}

// TestE2E_HistoryC2CPaging: newest first, paged with LastSeq until
// Complete, from both sides; MinTime and MaxTime filter.
func TestE2E_HistoryC2CPaging(t *testing.T) {
	b := StartBroker(t)
	alice, bob := b.Connect("alice", "alice"), b.Connect("bob", "bob")
	const n = 25
	var sent []uint32 // oldest first
	for i := range n {
		from, to := alice, "bob"
		if i%3 == 0 {
			from, to = bob, "alice"
		}
		sent = append(sent, cvSendC2C(from, to, fmt.Sprintf("h%d", i), nil))
	}
	cvWait(t, alice, cvRand(sent[n-1]))
	for _, c := range []*Client{alice, bob} {
		peer := map[string]string{"alice": "bob", "bob": "alice"}[c.User]
		all, pages := cvHistoryAll(t, c, cvC2C(peer), 10)
		if fmt.Sprint(pages) != "[10 10 5]" {
			t.Fatalf("%s: page sizes %v", c.User, pages)
		}
		got := cvMsgRandoms(all)
		for i, r := range got {
			if r != sent[n-1-i] {
				t.Fatalf("%s: message %d is %d, want %d (newest first)", c.User, i, r, sent[n-1-i])
			}
		}
		for i, m := range all {
			if cvNum(m["Seq"]) != n-i || m["Event"] != "C2CMsg" {
				t.Fatalf("%s: entry %d: %v", c.User, i, m)
			}
		}
	}
	// An exact page boundary: 25 in pages of 5, and one page of all.
	if _, pages := cvHistoryAll(t, alice, cvC2C("bob"), 5); fmt.Sprint(pages) != "[5 5 5 5 5]" {
		t.Fatalf("pages of 5: %v", pages)
	}
	if r, list := cvHistory(t, alice, cvC2C("bob", "MaxCnt", 100)); len(list) != n || r["Complete"] != true {
		t.Fatalf("one page of all: %d %v", len(list), r["Complete"])
	}
	if r, list := cvHistory(t, alice, cvC2C("bob", "MaxCnt", 25)); len(list) != n || r["Complete"] != true {
		t.Fatalf("a page of exactly all: %d %v", len(list), r["Complete"])
	}
	// Another conversation does not leak in.
	carol := b.Connect("carol", "carol")
	if _, list := cvHistory(t, carol, cvC2C("bob")); len(list) != 0 {
		t.Fatalf("carol sees %d messages of alice and bob", len(list))
	}

	// Time filters: a second batch stamped strictly later.
	last, _ := cvWait(t, bob, cvRand(sent[n-1]))
	cvPassSecond(t, last.Msg.MsgTime)
	var later []uint32
	for i := range 3 {
		later = append(later, cvSendC2C(bob, "alice", fmt.Sprintf("late%d", i), nil))
	}
	first, _ := cvWait(t, alice, cvRand(later[0]))
	r, list := cvHistory(t, alice, cvC2C("bob", "MinTime", first.Msg.MsgTime))
	if fmt.Sprint(cvMsgRandoms(list)) != fmt.Sprint([]uint32{later[2], later[1], later[0]}) || r["Complete"] != true {
		t.Fatalf("MinTime: %v %v", cvTexts(list), r)
	}
	// MinTime with paging: Complete only once the window is exhausted.
	r, list = cvHistory(t, alice, cvC2C("bob", "MinTime", first.Msg.MsgTime, "MaxCnt", 2))
	if len(list) != 2 || r["Complete"] != false {
		t.Fatalf("MinTime page 1: %v %v", cvTexts(list), r)
	}
	r, list = cvHistory(t, alice, cvC2C("bob", "MinTime", first.Msg.MsgTime, "MaxCnt", 2, "LastSeq", r["LastSeq"]))
	if len(list) != 1 || r["Complete"] != true || cvText(list[0]["Msg"].(map[string]any)) != "late0" {
		t.Fatalf("MinTime page 2: %v %v", cvTexts(list), r)
	}
	all, _ := cvHistoryAll(t, alice, cvC2C("bob", "MaxTime", last.Msg.MsgTime), 10)
	if len(all) != n || cvMsgRandoms(all)[0] != sent[n-1] {
		t.Fatalf("MaxTime: %d messages, newest %v", len(all), cvTexts(all[:1]))
	}
	if r, list := cvHistory(t, alice, cvC2C("bob", "MinTime", last.Msg.MsgTime+1000)); len(list) != 0 || r["Complete"] != true {
		t.Fatalf("MinTime in the future: %v", r)
	}
}

// TestE2E_HistoryGroup: group history by group position, paged; a member
// who joined later cannot page into what came before.
func TestE2E_HistoryGroup(t *testing.T) {
	b := StartBroker(t)
	alice, bob, dave := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("dave", "dave")
	gid := gtCreate(t, alice, map[string]any{"Type": "Public", "ApplyJoinOption": "FreeAccess", "MemberList": gtMembers("bob")})
	var before, after []uint32
	for i := range 12 {
		before = append(before, cvSendGroup(t, []*Client{alice, bob}[i%2], gid, fmt.Sprintf("b%d", i), nil))
	}
	gtOK(t, "dave joins", dave.Req("group.join", gtG(gid)))
	for i := range 7 {
		after = append(after, cvSendGroup(t, bob, gid, fmt.Sprintf("a%d", i), nil))
	}
	all, pages := cvHistoryAll(t, bob, cvGroup(gid), 5)
	if fmt.Sprint(pages) != "[5 5 5 4]" {
		t.Fatalf("bob's pages: %v", pages)
	}
	want := append(append([]uint32{}, before...), after...)
	for i, r := range cvMsgRandoms(all) {
		if r != want[len(want)-1-i] {
			t.Fatalf("bob's history entry %d is %d, want %d", i, r, want[len(want)-1-i])
		}
	}
	for _, m := range all {
		if m["Event"] != "GroupMsg" || cvNum(m["Seq"]) != cvNum(m["Msg"].(map[string]any)["MsgSeq"]) {
			t.Fatalf("group history entry: %v", m)
		}
	}
	// dave sees only what came after his join, in every paging.
	dall, dpages := cvHistoryAll(t, dave, cvGroup(gid), 3)
	if fmt.Sprint(dpages) != "[3 3 1]" || fmt.Sprint(cvMsgRandoms(dall)) != fmt.Sprint([]uint32{after[6], after[5], after[4], after[3], after[2], after[1], after[0]}) {
		t.Fatalf("dave's history: %v %v", dpages, cvTexts(dall))
	}
	firstBefore := all[len(all)-1]
	lastBefore := all[len(after)] // the newest message before dave joined
	for _, seq := range []any{lastBefore["Seq"], cvNum(lastBefore["Seq"]) + 1, firstBefore["Seq"]} {
		if r, list := cvHistory(t, dave, cvGroup(gid, "LastSeq", seq)); len(list) != 0 || r["Complete"] != true {
			t.Fatalf("dave pages below his join (LastSeq %v): %v", seq, cvTexts(list))
		}
	}
	// Non-members and live rooms.
	frank := b.Connect("frank", "frank")
	gtCode(t, "a non-member reads history", frank.Req("msg.history", cvGroup(gid)), 10007)
	live := gtCreate(t, alice, map[string]any{"Type": "AVChatRoom"})
	gtCode(t, "AVChatRoom history", alice.Req("msg.history", cvGroup(live)), 10044)
}

// TestE2E_MultiDeviceConsistency: two devices of one user see the same sent
// copies, read state and recalls, and replay identical streams.
func TestE2E_MultiDeviceConsistency(t *testing.T) {
	b := StartBroker(t)
	phone, pc := b.Connect("alice:phone", "alice"), b.Connect("alice:pc", "alice")
	bob := b.Connect("bob", "bob")
	gid := gtCreate(t, phone, map[string]any{"Type": "Private", "MemberList": gtMembers("bob")})

	s1 := cvSendC2C(phone, "bob", "from the phone", nil)
	s2 := cvSendC2C(pc, "bob", "from the pc", nil)
	b1 := cvSendC2C(bob, "alice", "to alice", nil)
	g1 := cvSendGroup(t, bob, gid, "to the group", nil)
	live := map[*Client][]Event{}
	for _, c := range []*Client{phone, pc} {
		for _, r := range []uint32{s1, s2, b1, g1} {
			e, skipped := cvWait(t, c, cvRand(r))
			live[c] = append(append(live[c], skipped...), e)
		}
	}
	e1, _ := cvWait(t, bob, cvRand(b1))

	gtOK(t, "the pc reads bob", pc.Req("msg.read", cvC2C("bob")))
	gtOK(t, "the phone reads the group", phone.Req("msg.read", cvGroup(gid)))
	gtOK(t, "bob recalls", bob.Req("msg.recall", cvC2C("alice", "MsgKey", e1.Msg.MsgKey)))
	for _, c := range []*Client{phone, pc} {
		for _, want := range []func(Event) bool{
			cvIs("ConvRead", "Type", 1, "Peer_Account", "bob"),
			cvIs("ConvRead", "Type", 2, "GroupId", gid),
			cvIs("MsgRecalled", "MsgKey", e1.Msg.MsgKey),
		} {
			e, skipped := cvWait(t, c, want)
			live[c] = append(append(live[c], skipped...), e)
		}
		// Both see the same conversation state.
		cvUnread(t, c, 1, "bob", 0)
		cvUnread(t, c, 2, gid, 0)
	}
	if a, p := cvRaws(live[phone]), cvRaws(live[pc]); a != p {
		t.Fatalf("live streams differ:\nphone %s\npc    %s", a, p)
	}
	phone.Disconnect(0)
	pc.Disconnect(0)
	phone, pc = b.Connect("alice:phone", "alice"), b.Connect("alice:pc", "alice")
	a, p := phone.SyncAll(0), pc.SyncAll(0)
	if cvRaws(a) != cvRaws(p) || len(a) < len(live[phone]) {
		t.Fatalf("replays differ or are short: %d and %d events, %d live", len(a), len(p), len(live[phone]))
	}
	// The replay holds what was delivered live, byte for byte, in order.
	j := 0
	for _, e := range a {
		if j < len(live[phone]) && e.Raw == live[phone][j].Raw {
			j++
		}
	}
	if j != len(live[phone]) {
		t.Fatalf("live event %d (%s) is not in the replay", j, live[phone][j].Raw)
	}
}

func cvRaws(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Raw)
	}
	return strings.Join(s, "\n")
}

// TestE2E_MsgSyncOtherMachine2: with SyncOtherMachine 2 the sender's
// devices get no copy, yet the recipient does and history keeps it; the
// default (omitted) and 1 give the copy.
func TestE2E_MsgSyncOtherMachine2(t *testing.T) {
	b := StartBroker(t)
	phone, pc := b.Connect("alice:phone", "alice"), b.Connect("alice:pc", "alice")
	bob := b.Connect("bob", "bob")
	r := cvSendC2C(phone, "bob", "no echo", map[string]any{"SyncOtherMachine": 2})
	e, _ := cvWait(t, bob, cvRand(r))
	for _, c := range []*Client{phone, pc} {
		gtNone(t, c.User+" gets a copy", cvMarker(t, bob, c), cvRand(r))
	}
	_, list := cvHistory(t, pc, cvC2C("bob"))
	if got := strings.Join(cvTexts(list), ","); got != "marker,marker,no echo" {
		t.Fatalf("history: %v", cvTexts(list))
	}
	// The conversation is the sender's too, with no unread.
	cvUnread(t, phone, 1, "bob", 2) // bob's markers
	cvUnread(t, bob, 1, "alice", 1)
	// It can still be recalled, and the recall reaches the sender's devices.
	gtOK(t, "recall", phone.Req("msg.recall", cvC2C("bob", "MsgKey", e.Msg.MsgKey)))
	cvWait(t, pc, cvIs("MsgRecalled", "MsgKey", e.Msg.MsgKey))
	// SyncOtherMachine 1 echoes.
	r1 := cvSendC2C(phone, "bob", "echo", map[string]any{"SyncOtherMachine": 1})
	cvWait(t, pc, cvRand(r1))
}
