package test

// More conversation end-to-end tests: recall, roaming history, multi-device
// consistency, SyncOtherMachine, read-diffusion groups. Helpers (cv…) are
// in conv_test.go.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

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
	// The app admin recalls in anyone's conversation, naming the sender.
	gtOK(t, "the admin recalls bob's message", admin.Req("msg.recall", cvC2C("alice", "MsgKey", m.Msg.MsgKey, "From_Account", "bob")))
	for _, c := range []*Client{alice, bob} {
		cvWait(t, c, cvIs("MsgRecalled", "From_Account", "bob", "To_Account", "alice", "MsgKey", m.Msg.MsgKey, "Operator_Account", "administrator"))
	}
	// Others cannot name a sender: carol's own conversation with alice has no such message.
	gtCode(t, "carol names bob as the sender", carol.Req("msg.recall", cvC2C("alice", "MsgKey", m.Msg.MsgKey, "From_Account", "bob")), 20022)
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
	if r, list := cvHistory(t, alice, cvC2C("bob", "MaxCnt", 500)); len(list) != n || r["Complete"] != true {
		t.Fatalf("MaxCnt above 100 (the most a page holds): %d %v", len(list), r["Complete"])
	}
	if r, list := cvHistory(t, alice, cvC2C("bob")); len(list) != 20 || r["Complete"] != false {
		t.Fatalf("default page: %d %v", len(list), r["Complete"])
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
	cvUnread(t, bob, 1, "alice", 0)
	// It can still be recalled, and the recall reaches the sender's devices.
	gtOK(t, "recall", phone.Req("msg.recall", cvC2C("bob", "MsgKey", e.Msg.MsgKey)))
	cvWait(t, pc, cvIs("MsgRecalled", "MsgKey", e.Msg.MsgKey))
	// SyncOtherMachine 1 echoes.
	r1 := cvSendC2C(phone, "bob", "echo", map[string]any{"SyncOtherMachine": 1})
	cvWait(t, pc, cvRand(r1))
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
				c.Publish1("im/send/group/"+gid, Text(fmt.Sprintf("g%d", i), Random()))
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

// TestE2E_ReadAfterRetentionTrim: a partial read whose range retention has
// trimmed from the reader's stream still answers (it used to spin forever
// when the conversation's last message was trimmed but newer events were
// kept), and history and recall treat trimmed messages as gone.
func TestE2E_ReadAfterRetentionTrim(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) {
		c.Retention = config.Retention{MaxPerStream: 3, SweepInterval: 10 * time.Millisecond}
	})
	alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
	r1 := cvSendC2C(bob, "alice", "m1", nil) // u/alice Seq 1
	cvSendC2C(bob, "alice", "m2", nil)       // Seq 2: the conversation's last message
	m1, _ := cvWait(t, alice, cvRand(r1))
	var c0 Event
	for i := range 5 { // Seq 3..7; pair stream alice:carol keeps c2..c4
		r := cvSendC2C(carol, "alice", fmt.Sprintf("c%d", i), nil)
		if i == 0 {
			c0, _ = cvWait(t, alice, cvRand(r))
		}
	}
	// Wait for the sweep to keep only the 3 newest of each stream.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for stream, want := range map[string]uint64{"u/alice": 5, "c/alice:carol": 3} {
		for {
			_, low, err := b.App.Broker.StreamBounds(stream)
			if err != nil {
				t.Fatal(err)
			}
			if low >= want {
				break
			}
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("retention did not trim %s (low %d)", stream, low)
			}
		}
	}
	gtOK(t, "read bob up to m1 (trimmed)", alice.Req("msg.read", cvC2C("bob", "Seq", m1.Seq)))
	gtOK(t, "read carol up to a trimmed seq", alice.Req("msg.read", cvC2C("carol", "Seq", c0.Seq)))
	gtCode(t, "recall a trimmed message", carol.Req("msg.recall", cvC2C("alice", "MsgKey", c0.Msg.MsgKey)), 20022)
	all, _ := cvHistoryAll(t, alice, cvC2C("carol"), 2)
	if got := strings.Join(cvTexts(all), ","); got != "c4,c3,c2" {
		t.Fatalf("history after the trim: %s", got)
	}
}
