package peers

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bus is an in-memory bus: every publish reaches every subscription of the
// subject, in order, on the subscription's own goroutine (as NATS does);
// drop discards the publishes it matches.
type bus struct {
	mu   sync.Mutex
	subs map[string][]chan []byte
	drop func(subject string, data []byte) bool
}

func (b *bus) Publish(subject string, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drop != nil && b.drop(subject, data) {
		return nil
	}
	for _, ch := range b.subs[subject] {
		select {
		case ch <- data:
		default: // a slow consumer: dropped, as NATS does
		}
	}
	return nil
}

func (b *bus) Subscribe(subject string, fn func([]byte)) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[string][]chan []byte{}
	}
	ch := make(chan []byte, 1024)
	done := make(chan struct{})
	b.subs[subject] = append(b.subs[subject], ch)
	go func() {
		defer close(done)
		for d := range ch {
			fn(d)
		}
	}()
	return func() {
		b.mu.Lock()
		b.subs[subject] = slices.DeleteFunc(b.subs[subject], func(c chan []byte) bool { return c == ch })
		close(ch)
		b.mu.Unlock()
		<-done
	}, nil
}

func (b *bus) setDrop(f func(string, []byte) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drop = f
}

// local records what the peers asked of this node's connections.
type local struct {
	mu        sync.Mutex
	takeovers []string
	kicks     []string
	live      []string // streams delivered
}

func (l *local) KickLocal(user, clientID, reason, by string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kicks = append(l.kicks, user+"/"+clientID+"/"+reason)
	return 1
}
func (l *local) TakeOver(user, clientID string, at int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.takeovers = append(l.takeovers, clientID)
}
func (l *local) DeliverLocal(entries []storage.Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range entries {
		l.live = append(l.live, e.Stream)
	}
}
func (l *local) NotifyLocal(string, string, []byte) int { return 0 }
func (l *local) DropLocal(string, ...string)            {}

func start(t *testing.T, b *bus, name string) (*Peers, *local) {
	t.Helper()
	l := &local{}
	p, err := Start(Options{Bus: b, Node: name, Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond,
		Local: l, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

func devices(p *Peers, user string) string {
	var out []string
	for _, d := range p.Devices(user) {
		out = append(out, d.Node+"/"+d.ClientID)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("not within 5s: " + what)
		}
		time.Sleep(5 * time.Millisecond) // the heartbeat is a timer: nothing else to wait on
	}
}

// A node that starts late learns the others' connections; a lost
// announcement is repaired from a snapshot at the next heartbeat; a
// node's restart replaces what it held; bye and silence drop a node.
func TestPeers(t *testing.T) {
	b := &bus{}
	a, al := start(t, b, "a")
	a.Started("alice", "alice:web", 1)
	a.Started("bob", "bob", 2)
	c, cl := start(t, b, "c") // late: hello, then a's snapshot
	eventually(t, "the late node learns a's connections", func() bool {
		return devices(c, "alice")+";"+devices(c, "bob") == "a/alice:web;a/bob"
	})

	// An end lost on the bus: the next heartbeat's number shows the gap.
	b.setDrop(func(subj string, data []byte) bool { return strings.Contains(string(data), `"Op":"end"`) })
	a.Ended("bob", "bob", 2)
	b.setDrop(nil)
	eventually(t, "the lost end repaired by a snapshot", func() bool { return devices(c, "bob") == "" })

	// The same ClientID on c: a, which holds it, is told to take it over.
	c.Started("alice", "alice:web", 5)
	eventually(t, "a sees alice on c", func() bool { return devices(a, "alice") == "c/alice:web" })
	eventually(t, "a told to take alice:web over", func() bool {
		al.mu.Lock()
		defer al.mu.Unlock()
		return slices.Equal(al.takeovers, []string{"alice:web"})
	})

	// A start lost on the bus: the snapshot that repairs the gap still
	// takes the ClientID over.
	a.Started("dan", "dan:pc", 10)
	b.setDrop(func(subj string, data []byte) bool { return strings.Contains(string(data), `"Op":"start"`) })
	c.Started("dan", "dan:pc", 11)
	b.setDrop(nil)
	eventually(t, "a told to take dan:pc over after the snapshot", func() bool {
		al.mu.Lock()
		defer al.mu.Unlock()
		return slices.Contains(al.takeovers, "dan:pc") // alice:web may come again: TakeOver ends only an older connection
	})

	// A kick reaches every node but the publisher.
	a.KickUser("alice", ReasonAdmin, "admin")
	eventually(t, "c kicks alice's connections", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return slices.Equal(cl.kicks, []string{"alice//admin"})
	})
	if al.kicks != nil {
		t.Fatalf("the kicking node kicked through the bus too: %v", al.kicks)
	}

	// A live event: delivered here at once, on the other node once.
	a.Live([]storage.Entry{{Stream: "g/room", Pos: storage.Pos{Epoch: 1, Seq: 1}, Payload: []byte("x")}})
	eventually(t, "c delivers the live event", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return slices.Equal(cl.live, []string{"g/room"})
	})
	a.Live([]storage.Entry{{Stream: "g/room2"}}) // a second one: the first was not delivered twice
	eventually(t, "c delivers the second live event", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return len(cl.live) == 2
	})
	al.mu.Lock()
	if !slices.Equal(al.live, []string{"g/room", "g/room2"}) || !slices.Equal(cl.live, []string{"g/room", "g/room2"}) {
		t.Fatalf("live deliveries: a %v, c %v; want each event once on each node", al.live, cl.live)
	}
	al.mu.Unlock()

	// c restarts (a new incarnation): a forgets what c held before.
	c.Stop()
	eventually(t, "c said bye: a forgets its connections", func() bool { return devices(a, "alice") == "" })
	c2, _ := start(t, b, "c")
	c2.Started("carol", "carol", 7)
	eventually(t, "a sees carol on the restarted c", func() bool { return devices(a, "carol") == "c/carol" })
	// c2 goes silent (its heartbeats are lost): a drops it after the timeout.
	b.setDrop(func(subj string, data []byte) bool { return strings.Contains(string(data), `"Node":"c"`) })
	eventually(t, "a silent node dropped", func() bool { return devices(a, "carol") == "" })
	b.setDrop(nil)
	eventually(t, "the node heard again: its snapshot restores carol", func() bool { return devices(a, "carol") == "c/carol" })

	// A snapshot of many connections comes in parts; a lost part is asked again.
	for i := range 3000 {
		c2.Started(fmt.Sprintf("user-%04d", i), fmt.Sprintf("user-%04d:device", i), int64(i+100))
	}
	var lost atomic.Bool
	b.setDrop(func(subj string, data []byte) bool {
		return strings.Contains(string(data), `"Part":1,`) && lost.CompareAndSwap(false, true)
	})
	a.mu.Lock()
	if v := a.remote["c"]; v != nil { // nil while a loaded machine made c look silent: it sends a snapshot when heard again
		v.synced = false // as after a gap: the next heartbeat asks for a snapshot
	}
	a.mu.Unlock()
	eventually(t, "a has c's 3,001 connections from a snapshot in parts", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		v := a.remote["c"] // nil while a loaded machine made c look silent
		return lost.Load() && v != nil && v.synced && len(v.users) == 3001
	})
	c2.Stop()
	a.Stop()
}
