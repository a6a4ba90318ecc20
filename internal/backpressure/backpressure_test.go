package backpressure

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

type fakeConn struct {
	net.Conn
	b    Backlog
	full atomic.Bool
}

func (c *fakeConn) Backlog() *Backlog { return &c.b }
func (c *fakeConn) Full() bool        { return c.full.Load() }

// client returns a mochi client (open) over a fake connection.
func client(t *testing.T) (*mqtt.Client, *fakeConn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	fc := &fakeConn{Conn: a}
	s := mqtt.New(&mqtt.Options{})
	t.Cleanup(func() { s.Close() })
	return s.NewClient(fc, "t", "c", false), fc
}

var publish = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}}

// delivered runs Delivering on its own goroutine and reports when it returns.
func delivered(g *Gate, cl *mqtt.Client, topic string) chan struct{} {
	done := make(chan struct{})
	go func() { g.Delivering(cl, topic); close(done) }()
	return done
}

func TestGate_HoldsAtHighMarkUntilWrittenToLow(t *testing.T) {
	g := New(Options{Queue: 8, Wait: time.Minute})
	cl, fc := client(t)
	for range 6 { // the high mark: 8 - 8/4
		g.Delivering(cl, "a")
	}
	done := delivered(g, cl, "a")
	select {
	case <-done:
		t.Fatal("the 7th copy was not held at the high mark")
	case <-time.After(50 * time.Millisecond): // the hold must last; nothing to wait for
	}
	g.OnPacketSent(cl, publish, nil) // 5: above the low mark (4)
	select {
	case <-done:
		t.Fatal("released above the low mark")
	case <-time.After(50 * time.Millisecond):
	}
	g.OnPacketSent(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}}, nil) // not a PUBLISH: not counted
	g.OnPacketSent(cl, publish, nil)                                                                // 4: the low mark
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("not released at the low mark")
	}
	if n := fc.b.n.Load(); n != 5 {
		t.Fatalf("count %d, want 5", n)
	}
	if st := g.Stats(); st.Held != 1 || st.GaveUp != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGate_GivesUpWithoutProgressAndForgetsTheCount(t *testing.T) {
	g := New(Options{Queue: 8, Wait: 20 * time.Millisecond})
	cl, fc := client(t)
	for range 6 {
		g.Delivering(cl, "a")
	}
	start := time.Now()
	g.Delivering(cl, "a") // no progress: returns after the wait
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("returned after %v, before the wait", d)
	}
	if n, st := fc.b.n.Load(), g.Stats(); n != 1 || st.GaveUp != 1 {
		t.Fatalf("count %d, gave up %d: want the count reset (then this copy) and one give-up", n, st.GaveUp)
	}
	g.OnPublishDropped(cl, publish) // mochi dropped it
	g.OnPublishDropped(cl, publish) // never below zero
	if n := fc.b.n.Load(); n != 0 {
		t.Fatalf("count %d", n)
	}
}

func TestGate_OwnTopicsWaitOnlyWhileTheSocketKeepsUp(t *testing.T) {
	g := New(Options{Queue: 8, Wait: time.Minute, Own: func(topic string) bool { return topic == "own" }})
	cl, fc := client(t)
	for range 6 {
		g.Delivering(cl, "own")
	}
	fc.full.Store(true)
	g.Delivering(cl, "own") // the socket is full: not held
	if st := g.Stats(); st.Held != 1 || st.Waiting > time.Second {
		t.Fatalf("stats %+v", st)
	}
	fc.full.Store(false)
	done := delivered(g, cl, "own")
	select {
	case <-done:
		t.Fatal("not held while the socket keeps up")
	case <-time.After(50 * time.Millisecond):
	}
	g.OnDisconnect(cl, nil, false) // a disconnect lets everyone go
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("not released by the disconnect")
	}
}

func TestGate_SubscribeChecksTakenBack(t *testing.T) {
	g := New(Options{Queue: 8, Wait: time.Minute})
	cl, fc := client(t)
	g.Delivering(cl, "a/#")
	g.Delivering(cl, "b")
	g.OnSubscribed(cl, packets.Packet{}, []byte{0, 1, packets.ErrNotAuthorized.Code})
	if n := fc.b.n.Load(); n != 0 {
		t.Fatalf("count %d after a SUBSCRIBE of two granted filters", n)
	}
}

func TestGate_DisabledDoesNothing(t *testing.T) {
	g := New(Options{Queue: 8})
	cl, fc := client(t)
	for range 100 {
		g.Delivering(cl, "a")
	}
	if n := fc.b.n.Load(); n != 0 || g.Enabled() {
		t.Fatalf("count %d", n)
	}
}
