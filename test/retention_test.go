package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
)

// Retention: the background sweep trims streams; sync, group.sync and
// group.history across the cutoff say so instead of skipping silently, and
// reads, history and recall treat trimmed messages as gone.

// rtRetention keeps the 5 newest events per stream and sweeps every 50ms.
func rtRetention(c *config.Config) {
	c.Retention.MaxPerStream = 5
	c.Retention.SweepInterval = 50 * time.Millisecond
	c.Groups.RateLimit = 100000
}

// rtWaitTrimmed waits until the sweep has trimmed stream to its 5 newest
// events and returns (head seq, low watermark).
func rtWaitTrimmed(t *testing.T, b *Broker, stream string) (uint64, uint64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		head, low, err := b.App.Broker.StreamBounds(stream)
		if err != nil {
			t.Fatal(err)
		}
		if head.Seq > 5 && low == head.Seq-4 {
			return head.Seq, low
		}
		select {
		case <-deadline:
			t.Fatalf("%s not trimmed to 5 events within 10s: head %+v low %d", stream, head, low)
		case <-poll.C:
		}
	}
}

// rtSync sends a sync request with body and collects the events replayed
// on events until the reply.
func rtSync(t *testing.T, c *Client, op string, events chan Event, body map[string]any) ([]Event, map[string]any) {
	t.Helper()
	id := fmt.Sprintf("rt-%d", Random())
	body["Id"] = id
	c.Publish1("im/req/"+op, body)
	var got []Event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			got = append(got, e)
		case r := <-c.Replies:
			if r["Id"] != id {
				continue
			}
			// Replayed events are written before the reply on the same
			// connection and paho routes in order: all are in.
			for {
				select {
				case e := <-events:
					got = append(got, e)
				default:
					return got, r
				}
			}
		case <-deadline:
			t.Fatalf("%s: %s got no reply", c.User, op)
		}
	}
}

func num(r map[string]any, k string) uint64 {
	f, _ := r[k].(float64)
	return uint64(f)
}

func TestE2E_RetentionSyncAcrossCutoff(t *testing.T) {
	b := StartBroker(t, rtRetention)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	const n = 12
	for i := 0; i < n; i++ {
		alice.Publish1("im/send/c2c/bob", Text(fmt.Sprintf("m%d", i), Random()))
	}
	for i := 0; i < n; i++ {
		bob.NextEvent() // the live copies: out of the way of the syncs below
	}
	head, low := rtWaitTrimmed(t, b, "u/bob")
	if head != n || low != n-4 {
		t.Fatalf("u/bob head %d low %d", head, low)
	}

	// From 0: events 1..7 are gone. The reply says so and replays nothing.
	evs, r := rtSync(t, bob, "sync", bob.Events, map[string]any{"Since": 0})
	if code(r) != 0 || len(evs) != 0 || r["Trimmed"] != true || r["Complete"] != false || r["Reset"] != false ||
		num(r, "OldestSeq") != low || num(r, "Seq") != 0 || num(r, "HeadSeq") != head {
		t.Fatalf("sync from 0: %d events, reply %v", len(evs), r)
	}
	// From OldestSeq-1: exactly what is kept.
	evs, r = rtSync(t, bob, "sync", bob.Events, map[string]any{"Since": num(r, "OldestSeq") - 1})
	if code(r) != 0 || r["Trimmed"] != false || r["Complete"] != true || num(r, "Seq") != head || num(r, "OldestSeq") != low {
		t.Fatalf("sync from OldestSeq-1: reply %v", r)
	}
	kept := checkSeqRun(t, evs, low, int(head-low+1))
	for i, e := range kept {
		if want := fmt.Sprintf(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"m%d"}}]`, int(low)-1+i); string(e.Msg.MsgBody) != want {
			t.Fatalf("seq %d body %s, want %s", e.Seq, e.Msg.MsgBody, want)
		}
	}
	// Inside what is kept nothing changes; a Since just inside the cutoff is not Trimmed.
	evs, r = rtSync(t, bob, "sync", bob.Events, map[string]any{"Since": head - 2})
	checkSeqRun(t, evs, head-1, 2)
	if r["Trimmed"] != false || r["Complete"] != true {
		t.Fatalf("sync inside: %v", r)
	}
	// A stale Epoch still resets, replaying from the oldest event kept.
	evs, r = rtSync(t, bob, "sync", bob.Events, map[string]any{"Since": 3, "Epoch": 1})
	if r["Reset"] != true || r["Trimmed"] != false || r["Complete"] != true || num(r, "OldestSeq") != low {
		t.Fatalf("stale epoch: %v", r)
	}
	checkSeqRun(t, evs, low, int(head-low+1))
	// The sender's stream is trimmed the same way; seqs go on after the cutoff.
	_, alow := rtWaitTrimmed(t, b, "u/alice")
	if alow != low {
		t.Fatalf("u/alice low %d", alow)
	}
	alice.Publish1("im/send/c2c/bob", Text("after", Random()))
	if e := bob.NextEvent(); e.Seq != head+1 {
		t.Fatalf("after the cutoff: %s", e.Raw)
	}
}

func TestE2E_RetentionGroupHistoryPagingAcrossCutoff(t *testing.T) {
	b := StartBroker(t, rtRetention)
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	gid := gtCreate(t, alice, map[string]any{"Type": "Private", "MemberList": gtMembers("bob")})
	for i := 0; i < 11; i++ {
		alice.Publish1("im/send/group/"+gidLevel(gid), Text(fmt.Sprintf("g%d", i), Random()))
	}
	head, low := rtWaitTrimmed(t, b, "g/"+gid)
	if head != 12 || low != 8 { // the GroupCreated tip, then 11 messages
		t.Fatalf("g/%s head %d low %d", gid, head, low)
	}

	// group.sync from 0 does not skip the gap silently: nothing replayed,
	// not Complete, Seq unchanged.
	_, ch := gtSub(t, bob.Client, "im/g/"+gidLevel(gid))
	evs, r := rtSync(t, bob, "group.sync", ch, gtG(gid, "Since", 0))
	if code(r) != 0 || len(evs) != 0 || r["Complete"] != false || num(r, "Seq") != 0 || num(r, "HeadSeq") != head {
		t.Fatalf("group.sync from 0: %d events, reply %v", len(evs), r)
	}
	// The group.sync reply carries Trimmed and OldestSeq once
	// broker/grouphistory.go passes them on (syncReply.groupReply); the
	// strict history check below comes with the same change.
	_, reportsRetention := r["Trimmed"]
	if reportsRetention && (r["Trimmed"] != true || num(r, "OldestSeq") != low) {
		t.Fatalf("group.sync from 0: %v", r)
	}
	evs, r = rtSync(t, bob, "group.sync", ch, gtG(gid, "Since", low-1))
	if code(r) != 0 || r["Complete"] != true || num(r, "Seq") != head {
		t.Fatalf("group.sync from OldestSeq-1: %v", r)
	}
	checkSeqRun(t, evs, low, int(head-low+1))

	// group.history, 3 per page, newest first, down across the cutoff.
	var got []uint64
	req := uint64(0)
	for page := 0; ; page++ {
		if page == 8 {
			t.Fatalf("group.history did not finish in 8 pages: %v", got)
		}
		r := gtOK(t, "group.history", bob.Req("group.history", gtG(gid, "ReqMsgSeq", req, "ReqMsgNumber", 3)))
		list, _ := r["RspMsgList"].([]any)
		smallest := uint64(0)
		for _, it := range list {
			seq := num(it.(map[string]any), "Seq")
			if seq < low {
				t.Fatalf("group.history returned trimmed seq %d (low %d)", seq, low)
			}
			if len(got) > 0 && seq >= got[len(got)-1] {
				t.Fatalf("group.history out of order or repeated: %d after %v", seq, got)
			}
			got = append(got, seq)
			smallest = seq
		}
		if r["IsFinished"] == true {
			break
		}
		if reportsRetention && smallest == low {
			t.Fatalf("group.history page reaching OldestSeq %d is not IsFinished: %v", low, r)
		}
		if smallest > 0 {
			req = smallest - 1
		} else if req > 3 { // an empty page: step down past it
			req -= 3
		} else {
			req = 1
		}
	}
	if len(got) != int(head-low+1) || got[0] != head || got[len(got)-1] != low {
		t.Fatalf("group.history gave %v, want %d..%d", got, head, low)
	}
}

// TestE2E_ReadAfterRetentionTrim: a partial read whose range retention has
// trimmed from the reader's stream still answers (it used to spin forever
// when the conversation's last message was trimmed but newer events were
// kept), and history and recall treat trimmed messages as gone.
func TestE2E_ReadAfterRetentionTrim(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) {
		c.Retention = config.Retention{MaxPerStream: 3, SweepInterval: 10 * time.Millisecond, SweepDuty: 1}
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

// A C2C conversation's last message stays in conv.list after retention
// deleted it from the history: the records refer to the pair-stream entry
// (convs.State.LastMsgRef), and the sweep copies the message into them
// before it trims the entry (convs.InlineLastMsgs).
func TestE2E_RetentionKeepsLastMsg(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) {
		c.Retention = config.Retention{MaxAge: 300 * time.Millisecond, SweepInterval: 20 * time.Millisecond, SweepDuty: 1}
	})
	alice, bob := b.Connect("alice", "alice"), b.Connect("bob", "bob")
	r := cvSendC2C(alice, "bob", "kept in the list", nil)
	m, _ := cvWait(t, bob, cvRand(r))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for { // every entry of the pair stream aged out and trimmed
		head, low, err := b.App.Broker.StreamBounds("c/alice:bob")
		if err != nil {
			t.Fatal(err)
		}
		if head.Seq == 1 && low == 2 {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("c/alice:bob not trimmed: head %+v low %d", head, low)
		}
	}
	for _, c := range []*Client{alice, bob} {
		peer := map[string]string{"alice": "bob", "bob": "alice"}[c.User]
		cv := cvConv(t, c, 1, peer)
		if cv == nil {
			t.Fatalf("%s: no conversation with %s", c.User, peer)
		}
		last, _ := cv["LastMsg"].(map[string]any)
		if last == nil || last["MsgKey"] != m.Msg.MsgKey || cvText(last) != "kept in the list" {
			t.Fatalf("%s: LastMsg after the trim: %v", c.User, cv["LastMsg"])
		}
	}
}
