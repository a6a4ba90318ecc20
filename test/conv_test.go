package test

// End-to-end tests of conversations (tencent-im.md §7): read reports and
// receipts, unread counts and the conversation list (paging, read-diffusion
// groups, concurrent counts), conv.delete and ClearRamble, restart. Helpers
// are prefixed cv; recall_test.go, history_test.go and multidevice_test.go
// use them too.

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
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
	c.Publish1("im/send/group/"+gidLevel(gid), cvBody(text, r, extra))
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
	// Recalling the NoLastMsg message leaves the shown last message alone.
	_, hist := cvHistory(t, bob, cvGroup(pub, "MaxCnt", 1))
	gtOK(t, "bob recalls hidden", bob.Req("msg.recall", cvGroup(pub, "MsgSeq", hist[0]["Seq"])))
	if cv := cvUnread(t, alice, 2, pub, 1); cvLastText(cv) != "quiet" {
		t.Fatalf("after recalling the NoLastMsg message: %v", cv)
	}

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
	r1 := cvSendC2C(bob, "alice", "one", nil)
	r2 := cvSendC2C(bob, "alice", "two", map[string]any{"SendMsgControl": []string{"NoUnread"}})
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
	// A partial read counts only what would have counted: "three" after
	// "one", not the NoUnread "two".
	e1, _ := cvWait(t, alice, cvRand(r1))
	if r := gtOK(t, "read up to one", alice.Req("msg.read", cvC2C("bob", "Seq", e1.Seq))); cvNum(r["UnreadMsgNum"]) != 1 {
		t.Fatalf("partial read over a NoUnread message: %v", r)
	}
	cvUnread(t, alice, 1, "bob", 1)
	// Nor is a read up to the shown last message ("two") a read of all:
	// the NoLastMsg "three" after it stays unread.
	e2, _ := cvWait(t, alice, cvRand(r2))
	gtOK(t, "read up to two", alice.Req("msg.read", cvC2C("bob", "Seq", e2.Seq)))
	cvUnread(t, alice, 1, "bob", 1)
	// Both flags: nothing changes but the stream.
	cvSendC2C(bob, "alice", "four", map[string]any{"SendMsgControl": []string{"NoUnread", "NoLastMsg"}})
	if cv := cvUnread(t, alice, 1, "bob", 1); cvLastText(cv) != "two" {
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

// TestE2E_ConvReadDiffusionGroup: a Public group under read diffusion (no
// per-member records) still lists with its last message and unread count;
// reads by MsgSeq and of everything keep it listed; a member who joined
// later counts only what came after; conv.delete hides it until a new
// message, which then counts alone.
func TestE2E_ConvReadDiffusionGroup(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.ReadDiffusionAbove = 2 })
	alice, pad := b.Connect("alice", "alice"), b.Connect("alice:pad", "alice")
	bob, dave := b.Connect("bob", "bob"), b.Connect("dave", "dave")
	gid := gtCreate(t, alice, map[string]any{"Type": "Public", "ApplyJoinOption": "FreeAccess", "MemberList": gtMembers("bob", "carol")})
	if d := gtInfoItem(alice, gid)["Diffusion"]; d != "read" {
		t.Fatalf("Diffusion %v, want read", d)
	}
	for i := 1; i <= 3; i++ {
		cvSendGroup(t, bob, gid, fmt.Sprintf("g%d", i), nil)
	}
	_, hist := cvHistory(t, alice, cvGroup(gid))
	g1 := cvNum(hist[2]["Seq"])
	if cv := cvUnread(t, alice, 2, gid, 3); cvLastText(cv) != "g3" {
		t.Fatalf("alice's conversation: %v", cv)
	}
	cvUnread(t, bob, 2, gid, 0)

	r := gtOK(t, "read up to g1", alice.Req("msg.read", cvGroup(gid, "MsgSeq", g1)))
	if cvNum(r["UnreadMsgNum"]) != 2 {
		t.Fatalf("read reply: %v", r)
	}
	cvUnread(t, alice, 2, gid, 2)
	cvWait(t, pad, cvIs("ConvRead", "Type", 2, "GroupId", gid, "MsgSeq", g1, "UnreadMsgNum", 2))
	gtOK(t, "read all", alice.Req("msg.read", cvGroup(gid)))
	if cv := cvUnread(t, alice, 2, gid, 0); cvLastText(cv) != "g3" {
		t.Fatalf("after reading everything: %v", cv)
	}
	cvSendGroup(t, bob, gid, "g4", nil)
	cvUnread(t, alice, 2, gid, 1)

	// dave joins now: nothing before counts, nothing is listed yet.
	gtOK(t, "dave joins", dave.Req("group.join", gtG(gid)))
	if cv := cvConv(t, dave, 2, gid); cv != nil {
		t.Fatalf("dave lists a group with no message since he joined: %v", cv)
	}
	cvSendGroup(t, bob, gid, "g5", nil)
	if cv := cvUnread(t, dave, 2, gid, 1); cvLastText(cv) != "g5" {
		t.Fatalf("dave's conversation: %v", cv)
	}
	cvUnread(t, alice, 2, gid, 2)

	// Delete: gone from the list until the next message, which counts alone.
	gtOK(t, "alice deletes", alice.Req("conv.delete", cvGroup(gid)))
	cvWait(t, pad, cvIs("ConvDeleted", "Type", 2, "GroupId", gid))
	if cv := cvConv(t, alice, 2, gid); cv != nil {
		t.Fatalf("the deleted conversation is listed: %v", cv)
	}
	if l := cvList(t, alice); cvNum(l["AllUnreadMsgNum"]) != 0 {
		t.Fatalf("list after delete: %v", l)
	}
	cvSendGroup(t, bob, gid, "g6", nil)
	if cv := cvUnread(t, alice, 2, gid, 1); cvLastText(cv) != "g6" {
		t.Fatalf("after a new message: %v", cv)
	}
	// A recalled last message shows as the marker (read from the stream).
	_, hist = cvHistory(t, bob, cvGroup(gid, "MaxCnt", 1))
	gtOK(t, "bob recalls g6", bob.Req("msg.recall", cvGroup(gid, "MsgSeq", hist[0]["Seq"])))
	if cv := cvConv(t, alice, 2, gid); cvLastText(cv) != "" || cvNum(cv["LastMsg"].(map[string]any)["MsgFlagBits"]) != 8 {
		t.Fatalf("after the recall: %v", cv)
	}
}

// TestE2E_ConvListPaging: Limit and Offset page the list, newest first,
// with the totals of the whole list.
func TestE2E_ConvListPaging(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	want := map[string]bool{}
	var newest Event
	for i := range 5 {
		u := fmt.Sprintf("u%d", i)
		want[u] = true
		c := b.Connect(u, u)
		for range i + 1 {
			cvSendC2C(c, "alice", "hi", nil)
		}
		if i == 4 {
			cvPassSecond(t, time.Now().Unix()) // u4 is strictly the newest
			r := cvSendC2C(c, "alice", "last", nil)
			newest, _ = cvWait(t, alice, cvRand(r))
		}
	}
	seen := map[string]bool{}
	prev := int64(1 << 62)
	for off := 0; off < 6; off += 2 {
		r := gtOK(t, "page", alice.Req("conv.list", map[string]any{"Limit": 2, "Offset": off}))
		if cvNum(r["TotalCount"]) != 5 || cvNum(r["AllUnreadMsgNum"]) != 1+2+3+4+6 {
			t.Fatalf("page at %d: %v", off, r)
		}
		list := r["ConvList"].([]any)
		if len(list) != min(2, 5-off) {
			t.Fatalf("page at %d has %d entries", off, len(list))
		}
		for i, it := range list {
			cv := it.(map[string]any)
			p := cv["Peer_Account"].(string)
			if seen[p] || !want[p] {
				t.Fatalf("page at %d lists %s again or unexpectedly", off, p)
			}
			if off == 0 && i == 0 && (p != "u4" || cvNum(cv["LastMsgTime"]) != int(newest.Msg.MsgTime)) {
				t.Fatalf("the newest conversation is not first: %v", cv)
			}
			seen[p] = true
			if tm := int64(cvNum(cv["LastMsgTime"])); tm > prev {
				t.Fatalf("list not newest first at %s", p)
			} else {
				prev = tm
			}
		}
	}
	if len(seen) != 5 {
		t.Fatalf("pages listed %v", seen)
	}
}

// TestE2E_ConvConcurrentCounts: messages committed concurrently, to one
// user and to one group, never lose a count, and reads racing them never
// mark what arrived after the read position.
func TestE2E_ConvConcurrentCounts(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.RateLimit = 100000 })
	alice := b.Connect("alice", "alice")
	const senders, each = 4, 25
	var names []string
	for i := range senders {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	gid := gtCreate(t, alice, map[string]any{"Type": "Private", "MemberList": gtMembers(names...)})
	clients := make([]*Client, senders)
	for i, u := range names {
		clients[i] = b.Connect(u, u)
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func(c *Client) {
			defer wg.Done()
			for i := range each {
				c.Publish1("im/send/c2c/alice", Text(fmt.Sprintf("c%d", i), Random()))
				c.Publish1("im/send/group/"+gidLevel(gid), Text(fmt.Sprintf("g%d", i), Random()))
			}
		}(c)
	}
	// Reads of everything race the sends: each leaves only later messages.
	for range 5 {
		gtOK(t, "read all", alice.Req("msg.read", cvC2C("s0")))
	}
	wg.Wait()
	gtOK(t, "read s0", alice.Req("msg.read", cvC2C("s0")))
	l := cvList(t, alice)
	if cvNum(l["AllUnreadMsgNum"]) != (senders-1)*each+senders*each {
		t.Fatalf("all unread %v, want %d", l["AllUnreadMsgNum"], (senders-1)*each+senders*each)
	}
	for _, u := range names[1:] {
		cvUnread(t, alice, 1, u, each)
	}
	cvUnread(t, alice, 1, "s0", 0)
	cvUnread(t, alice, 2, gid, senders*each)
}
