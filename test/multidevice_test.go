package test

// One user on several devices: the same sent copies, read state and
// recalls on each, and SyncOtherMachine. Helpers (cv…) are in conv_test.go.

import (
	"strings"
	"testing"
)

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
