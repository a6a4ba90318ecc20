package test

// Member tips in live rooms (docs/protocol.md, "Member tips in live rooms"):
// groups.member_tips_per_second bounds the MemberJoin / MemberQuit tips an
// AVChatRoom or BChatRoom publishes on im/g/{gid}; faster changes are
// merged. Stored groups are not limited.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

// ltTip is a member tip as the room topic carries it.
type ltTip struct {
	seq     uint64
	members []string
	count   int // MemberCount, or len(members) when absent
	op      string
	at      time.Time
}

func ltParse(e Event) ltTip {
	m := gtMsg(e)
	tip := ltTip{seq: e.Seq, at: time.Now()}
	for _, u := range m["MemberList"].([]any) {
		tip.members = append(tip.members, u.(string))
	}
	tip.count = len(tip.members)
	if n, ok := m["MemberCount"].(float64); ok {
		tip.count = int(n)
	}
	tip.op, _ = m["Operator_Account"].(string)
	return tip
}

// ltCollect reads tips of tipType from ch until they stand for want members
// in all (deadline 15 s); other events are ignored.
func ltCollect(t *testing.T, ch chan Event, tipType string, want int) []ltTip {
	t.Helper()
	var tips []ltTip
	total := 0
	deadline := time.After(15 * time.Second)
	for total < want {
		select {
		case e := <-ch:
			if gtTip(tipType)(e) {
				tip := ltParse(e)
				tips = append(tips, tip)
				total += tip.count
			}
		case <-deadline:
			t.Fatalf("%s tips for %d of %d members after 15s (%d tips)", tipType, total, want, len(tips))
		}
	}
	if total != want {
		t.Fatalf("%s tips stand for %d members, want %d", tipType, total, want)
	}
	return tips
}

// ltStreamTip waits for c's own copy of a member tip on its user stream.
func ltStreamTip(t *testing.T, c *Client, tipType string) Event {
	t.Helper()
	var got Event
	gtWait(t, c.User+" (im/u)", c.Events, func(e Event) bool {
		if gtTip(tipType)(e) {
			got = e
			return true
		}
		return false
	})
	return got
}

// TestE2E_LiveTipsMerged: in a live room at 2 member tips per second, a
// lone join is announced at once in its own tip; 60 members joining (then
// quitting) together produce a bounded number of merged tips that together
// name every one of them, capped lists carrying MemberCount.
func TestE2E_LiveTipsMerged(t *testing.T) {
	const rate, maxList = 2, 10
	n := scaled(60, 30)
	b := StartBroker(t, func(c *config.Config) {
		c.Groups.MemberTipsPerSecond, c.Groups.MemberTipsMaxList = rate, maxList
	})
	admin := b.Connect("administrator", "administrator")
	gid := gtCreate(t, admin, map[string]any{"Type": "AVChatRoom"})
	_, room := gtSub(t, admin, "im/g/"+gidLevel(gid))

	// A lone join in a quiet room: its own tip, at once, with the group seq
	// also on the joiner's stream (the unmerged path).
	solo := b.Connect("solo", "solo")
	gtOK(t, "solo joins", solo.Req("group.join", gtG(gid)))
	first := ltCollect(t, room, "MemberJoin", 1)[0]
	if len(first.members) != 1 || first.members[0] != "solo" || first.op != "solo" || first.seq == 0 {
		t.Fatalf("lone join tip: %+v", first)
	}
	if own := ltStreamTip(t, solo, "MemberJoin"); gtMsg(own)["MsgSeq"] != float64(first.seq) {
		t.Fatalf("solo's own copy %s is not the room tip %d", own.Raw, first.seq)
	}

	users := make([]*Client, n)
	parallel(n, 16, func(i int) {
		u := fmt.Sprintf("lt%03d", i)
		users[i] = b.Connect(u, u)
	})
	check := func(tipType, verb string) []ltTip {
		t.Helper()
		start := time.Now()
		parallel(n, 16, func(i int) {
			gtOK(t, users[i].User+" "+verb, users[i].Req("group."+verb, gtG(gid)))
		})
		tips := ltCollect(t, room, tipType, n)
		elapsed := tips[len(tips)-1].at.Sub(start)
		// One tip at once, then at most one per 1/rate seconds.
		if limit := int(elapsed.Seconds()*rate) + 2; len(tips) > limit {
			t.Fatalf("%d members %s in %v: %d %s tips, more than %d", n, verb, elapsed, len(tips), tipType, limit)
		}
		if len(tips) >= n {
			t.Fatalf("%d %s tips for %d members: nothing was merged", len(tips), tipType, n)
		}
		named := map[string]bool{}
		for _, tip := range tips {
			if len(tip.members) > maxList || (tip.count > len(tip.members) && len(tip.members) != maxList) {
				t.Fatalf("tip list not capped at %d: %+v", maxList, tip)
			}
			if len(tip.members) > 1 && tip.op != "" {
				t.Fatalf("merged tip of self-joins names one operator: %+v", tip)
			}
			for _, u := range tip.members {
				if named[u] {
					t.Fatalf("%s named twice", u)
				}
				named[u] = true
			}
		}
		// Every member named by some tip's count; a cut list stands for the rest.
		t.Logf("%d members %s: %d %s tips in %v", n, verb, len(tips), tipType, elapsed)
		// Merged changes give the users concerned a private copy without
		// a group seq; the at-once one shares its tip's seq.
		for _, c := range users {
			own := ltStreamTip(t, c, tipType)
			if seq, ok := gtMsg(own)["MsgSeq"]; ok {
				found := false
				for _, tip := range tips {
					found = found || (float64(tip.seq) == seq && len(tip.members) == 1 && tip.members[0] == c.User)
				}
				if !found {
					t.Fatalf("%s: own copy %s has a group seq of no lone tip", c.User, own.Raw)
				}
			}
		}
		return tips
	}
	joins := check("MemberJoin", "join")
	quits := check("MemberQuit", "quit")

	// The room's seqs stay gap-free: the tips took consecutive seqs and a
	// message after them takes the next one.
	all := append(append([]ltTip{first}, joins...), quits...)
	for i := 1; i < len(all); i++ {
		if all[i].seq != all[i-1].seq+1 {
			t.Fatalf("tip seqs %d then %d", all[i-1].seq, all[i].seq)
		}
	}
	r := gtMustSend(t, admin, gid)
	gtWait(t, "admin (im/g)", room, func(e Event) bool {
		if gtGroupMsg(r)(e) && e.Seq != all[len(all)-1].seq+1 {
			t.Fatalf("message seq %d after tip %d", e.Seq, all[len(all)-1].seq)
		}
		return gtGroupMsg(r)(e)
	})
}

// TestE2E_LiveTipsMergeNetEffect: inside one merge window a member who joins
// and leaves again is not announced, and a member who leaves and comes back
// is not either: the room is told net changes.
func TestE2E_LiveTipsMergeNetEffect(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.MemberTipsPerSecond = 1 })
	admin := b.Connect("administrator", "administrator")
	gid := gtCreate(t, admin, map[string]any{"Type": "BChatRoom"})
	_, room := gtSub(t, admin, "im/g/"+gidLevel(gid))
	stay, flip, back := b.Connect("stay", "stay"), b.Connect("flip", "flip"), b.Connect("back", "back")
	gtOK(t, "back joins", back.Req("group.join", gtG(gid))) // at once: opens a 1 s window
	ltCollect(t, room, "MemberJoin", 1)
	// Inside the window (1 s; these take milliseconds):
	gtOK(t, "stay joins", stay.Req("group.join", gtG(gid)))
	gtOK(t, "flip joins", flip.Req("group.join", gtG(gid)))
	gtOK(t, "flip quits", flip.Req("group.quit", gtG(gid)))
	gtOK(t, "back quits", back.Req("group.quit", gtG(gid)))
	gtOK(t, "back rejoins", back.Req("group.join", gtG(gid)))
	tips := ltCollect(t, room, "MemberJoin", 1)
	if len(tips[0].members) != 1 || tips[0].members[0] != "stay" {
		t.Fatalf("merged tip: %+v, want only stay", tips[0])
	}
	// Nothing else was announced: a message sent now comes next on the
	// topic, with the seq after the merged tip.
	r := gtMustSend(t, admin, gid)
	skipped := gtWait(t, "admin (im/g)", room, func(e Event) bool {
		if gtGroupMsg(r)(e) {
			if e.Seq != tips[0].seq+1 {
				t.Fatalf("message seq %d after tip %d", e.Seq, tips[0].seq)
			}
			return true
		}
		return false
	})
	gtNone(t, "extra member tip", skipped, func(e Event) bool { return e.Event == "GroupTip" })
}

// TestE2E_LiveTipsOff: member_tips_per_second 0 publishes no member tips in
// live rooms; the joiner and the leaver still get their own copy.
func TestE2E_LiveTipsOff(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Groups.MemberTipsPerSecond = 0 })
	admin := b.Connect("administrator", "administrator")
	gid := gtCreate(t, admin, map[string]any{"Type": "AVChatRoom"})
	_, room := gtSub(t, admin, "im/g/"+gidLevel(gid))
	carol := b.Connect("carol", "carol")
	gtOK(t, "carol joins", carol.Req("group.join", gtG(gid)))
	if own := ltStreamTip(t, carol, "MemberJoin"); gtMsg(own)["MsgSeq"] != nil {
		t.Fatalf("private copy with a group seq: %s", own.Raw)
	}
	gtOK(t, "carol quits", carol.Req("group.quit", gtG(gid)))
	ltStreamTip(t, carol, "MemberQuit")
	r := gtMustSend(t, admin, gid)
	skipped := gtWait(t, "admin (im/g)", room, gtGroupMsg(r))
	gtNone(t, "member tip with tips off", skipped, func(e Event) bool { return e.Event == "GroupTip" })
}

// TestE2E_LiveTipsStoredGroupsUnchanged: Public and ChatRoom groups (stored,
// roamed tips) announce every join in its own tip, however fast and
// whatever member_tips_per_second says.
func TestE2E_LiveTipsStoredGroupsUnchanged(t *testing.T) {
	const n = 12
	b := StartBroker(t, func(c *config.Config) { c.Groups.MemberTipsPerSecond = 1 })
	admin := b.Connect("administrator", "administrator")
	users := make([]*Client, n)
	for i := range users {
		u := fmt.Sprintf("st%02d", i)
		users[i] = b.Connect(u, u)
	}
	for _, typ := range []string{"Public", "ChatRoom"} {
		gid := gtCreate(t, admin, map[string]any{"Type": typ, "ApplyJoinOption": "FreeAccess"})
		_, room := gtSub(t, admin, "im/g/"+gidLevel(gid))
		var wg sync.WaitGroup
		for _, c := range users {
			wg.Add(1)
			go func(c *Client) {
				defer wg.Done()
				gtOK(t, c.User+" joins "+typ, c.Req("group.join", gtG(gid)))
			}(c)
		}
		wg.Wait()
		tips := ltCollect(t, room, "MemberJoin", n)
		if len(tips) != n {
			t.Fatalf("%s: %d MemberJoin tips for %d joins", typ, len(tips), n)
		}
		for _, tip := range tips {
			if len(tip.members) != 1 || tip.seq == 0 {
				t.Fatalf("%s: tip %+v", typ, tip)
			}
		}
		for _, c := range users {
			if own := ltStreamTip(t, c, "MemberJoin"); gtMsg(own)["MsgSeq"] == nil {
				t.Fatalf("%s: %s's copy has no group seq: %s", typ, c.User, own.Raw)
			}
		}
	}
}

// TestE2E_LiveTipsJoinStorm: members join a live room and subscribe at once,
// while the earlier ones listen (a show starting). Unlimited (1,000 tips a
// second stands for that here) every join is delivered to everyone already
// there, about N²/2 deliveries; at the default 2 per second the members
// receive a few merged tips each.
func TestE2E_LiveTipsJoinStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	n := scaled(1000, 200)
	storm := func(rate int) (deliveries int64, elapsed time.Duration) {
		b := StartBroker(t, func(c *config.Config) { c.Groups.MemberTipsPerSecond = rate })
		defer b.Stop()
		admin := b.Connect("administrator", "administrator")
		gid := gtCreate(t, admin, map[string]any{"Type": "AVChatRoom"})
		topic := "im/g/" + gidLevel(gid)
		// The admin counts the members the room's tips stand for.
		var announced atomic.Int64
		if tok := admin.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
			e := Event{Raw: string(m.Payload())}
			if json.Unmarshal(m.Payload(), &e) == nil && gtTip("MemberJoin")(e) {
				announced.Add(int64(ltParse(e).count))
			}
		}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("admin subscribes: %v", tok.Error())
		}
		var tips, markers atomic.Int64
		marker := Random()
		markerText := []byte(fmt.Sprintf(`"MsgRandom":%d,`, marker))
		clients := make([]paho.Client, n)
		defer parallel(n, 32, func(i int) {
			if clients[i] != nil {
				clients[i].Disconnect(0)
			}
		})
		start := time.Now()
		parallel(n, 32, func(i int) {
			u := fmt.Sprintf("js%04d", i)
			c := paho.NewClient(b.ClientOpts(u, u, b.Sig(u)))
			if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Errorf("%s connect: %v", u, tok.Error())
				return
			}
			clients[i] = c
			replied := make(chan []byte, 1)
			c.Subscribe("im/u/"+u+"/rpc", 0, func(_ paho.Client, m paho.Message) { replied <- m.Payload() }).WaitTimeout(10 * time.Second)
			c.Publish("im/req/group.join", 1, false, fmt.Sprintf(`{"GroupId":%q}`, gid))
			select {
			case rep := <-replied:
				if !bytes.Contains(rep, []byte(`"ErrorCode":0,`)) {
					t.Errorf("%s joins: %s", u, rep)
					return
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s: no join reply", u)
				return
			}
			c.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
				switch {
				case bytes.Contains(m.Payload(), []byte(`"TipType":"MemberJoin"`)):
					tips.Add(1)
				case bytes.Contains(m.Payload(), markerText):
					markers.Add(1)
				}
			}).WaitTimeout(10 * time.Second)
		})
		if t.Failed() {
			t.FailNow()
		}
		// Every join gets announced within 1/rate seconds; then a marker
		// message reaches each member behind every tip it was sent.
		waitFor(t, 30*time.Second, "every join to be announced", func() bool { return announced.Load() == int64(n) })
		admin.Publish1("im/send/group/"+gidLevel(gid), Text("marker", marker))
		waitFor(t, 30*time.Second, "the marker to reach every member", func() bool { return markers.Load() == int64(n) })
		return tips.Load(), time.Since(start)
	}
	limited, tl := storm(2)
	unlimited, tu := storm(1000)
	t.Logf("%d members joining and listening: %d MemberJoin deliveries in %v at 2 tips/s; %d in %v at 1,000 tips/s (N²/2 = %d)",
		n, limited, tl, unlimited, tu, n*n/2)
	// The room sends at most 2 tips a second (one more for a burst), each
	// to at most n members: a bound that holds however long a loaded
	// machine makes the storm take. Unlimited, the same storm costs about
	// N²/2 deliveries, far more than that bound at any plausible duration.
	if bound := int64(n) * (int64(2*tl.Seconds()) + 2); limited > bound || limited >= unlimited {
		t.Fatalf("merged tips cost %d deliveries in %v (at most %d at 2 tips/s); unlimited %d", limited, tl, bound, unlimited)
	}
}
