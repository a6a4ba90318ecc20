package test

// Roaming history (msg.history) end to end: one-to-one and group, paged
// newest first. Helpers (cv…) are in conv_test.go.

import (
	"fmt"
	"testing"
)

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
