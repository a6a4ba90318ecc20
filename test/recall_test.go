package test

// Recall (msg.recall) end to end: one-to-one and group, within the window
// and after it. Helpers (cv…) are in conv_test.go.

import (
	"strings"
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
	gtCode(t, "no such seq", carol.Req("msg.recall", cvGroup(gid, "MsgSeq", 9999)), 10030)
	gtCode(t, "a tip is not a message", alice.Req("msg.recall", cvGroup(gid, "MsgSeq", own.Msg.MsgSeq+1)), 10030)

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
