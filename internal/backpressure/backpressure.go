// Package backpressure holds a publisher back while a subscriber's mochi
// outbound queue is nearly full, so that a small queue (a few hundred bytes
// per connection instead of mochi's 64 KB, or the 16 KB of 2,048 slots)
// loses no QoS 0 copy in a burst.
//
// mochi drops a copy when a subscriber's queue is full and does not export
// the queue's length. It can be counted from its hooks: mochi checks the read
// ACL (OnACLCheck) for each delivery on the publisher's goroutine just
// before it puts the copy in the queue, and reports each packet its
// WriteLoop writes (OnPacketSent) and each copy it drops (OnPublishDropped).
// The ACL hook calls Gate.Delivering after a read check passed; while the
// count is at the high mark, the publisher's goroutine waits there until the
// subscriber's WriteLoop has written the queue down to the low mark.
//
// The count is an estimate, kept from drifting both ways: it never goes
// below zero (a PUBLISH written outside the queue, such as a resend of an
// inflight message, is counted written too), and a copy counted but never
// queued (a QoS 1 copy refused by mochi's inflight quota, which has no hook)
// is forgotten when a wait sees no progress: the count is reset to zero and
// the copy goes on to mochi, which drops it if the queue is really full.
//
// A wait ends when the subscriber writes the queue down to the low mark, its
// connection closes, or it makes no progress for Options.Wait. Copies the
// broker delivers itself (Options.Own: the IM topics, published by the
// delivery workers, which serve many users) wait only while the
// subscriber's socket keeps up, i.e. while its WriteLoop drains the queue
// as soon as it is scheduled: a worker never waits on a slow reader, whose
// live copies are dropped as before and fetched again by sync.
package backpressure

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Backlog counts one connection's copies queued in mochi and not yet
// written or dropped. The zero value is ready; it lives in the connection
// (lazyconn.Conn), so an idle connection pays a few words for it and nothing
// is kept per client elsewhere.
type Backlog struct {
	n     atomic.Int32
	armed atomic.Bool // someone waits on wake
	mu    sync.Mutex
	wake  chan struct{} // closed when n falls to the low mark; nil while nobody waits
}

// Holder is the net.Conn mochi holds for a client (cl.Net.Conn) when the
// listener gave it a Backlog.
type Holder interface {
	Backlog() *Backlog
	// Full reports whether the connection is waiting on its socket, so that
	// the WriteLoop would not drain the queue as soon as it runs.
	Full() bool
}

// Options configure a Gate.
type Options struct {
	// Queue is mochi's outbound queue size (MaximumClientWritesPending).
	Queue int32
	// Wait is how long a publisher waits without the subscriber writing
	// anything before it lets the copy go on (mochi drops it if the queue
	// is full). 0 disables the gate.
	Wait time.Duration
	// Own reports the topics the broker publishes itself, which wait only
	// while the subscriber's socket keeps up. nil: none.
	Own func(topic string) bool
}

// Gate is a mochi hook (OnPacketSent, OnPublishDropped, OnSubscribed,
// OnDisconnect) plus Delivering, which the ACL hook calls.
type Gate struct {
	mqtt.HookBase
	high, low int32
	wait      time.Duration
	own       func(string) bool

	held    atomic.Int64
	gaveUp  atomic.Int64
	waiting atomic.Int64 // nanoseconds publishers spent held
}

var _ mqtt.Hook = (*Gate)(nil)

// New returns a gate for o. The high mark leaves a quarter of the queue for
// publishers that pass the check at the same moment (the check and the
// count are not one step) and for the broker's own copies.
func New(o Options) *Gate {
	g := &Gate{wait: o.Wait, own: o.Own}
	g.high = max(o.Queue-o.Queue/4, 1)
	g.low = o.Queue / 2
	if g.own == nil {
		g.own = func(string) bool { return false }
	}
	return g
}

// ID returns the hook id.
func (g *Gate) ID() string { return "imbroker-backpressure" }

// Provides lists the events this hook handles.
func (g *Gate) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPacketSent, mqtt.OnPublishDropped, mqtt.OnSubscribed, mqtt.OnDisconnect}, []byte{b})
}

// Enabled reports whether publishers are ever held.
func (g *Gate) Enabled() bool { return g != nil && g.wait > 0 }

// Stats are the gate's counters since start.
type Stats struct {
	Held    int64         // deliveries that waited
	GaveUp  int64         // of them, waits that ended without progress
	Waiting time.Duration // total time publishers were held
}

// Stats returns the counters.
func (g *Gate) Stats() Stats {
	return Stats{Held: g.held.Load(), GaveUp: g.gaveUp.Load(), Waiting: time.Duration(g.waiting.Load())}
}

func backlogOf(cl *mqtt.Client) (*Backlog, Holder) {
	h, ok := cl.Net.Conn.(Holder)
	if !ok {
		return nil, nil
	}
	return h.Backlog(), h
}

// Delivering is called on the publisher's goroutine for each copy mochi is
// about to queue for cl (and for each filter of a SUBSCRIBE, which
// OnSubscribed takes back). It waits while cl's queue is at the high mark.
func (g *Gate) Delivering(cl *mqtt.Client, topic string) {
	if !g.Enabled() {
		return
	}
	b, h := backlogOf(cl)
	if b == nil {
		return
	}
	if b.n.Load() >= g.high {
		g.hold(cl, b, h, g.own(topic))
	}
	b.n.Add(1)
}

func (g *Gate) hold(cl *mqtt.Client, b *Backlog, h Holder, own bool) {
	g.held.Add(1)
	start := time.Now()
	defer func() { g.waiting.Add(int64(time.Since(start))) }()
	var t *time.Timer
	for {
		n := b.n.Load()
		if n < g.high || cl.Closed() || own && h.Full() {
			return
		}
		wake := b.arm()
		if b.n.Load() < g.high { // written meanwhile: arm came too late to hear it
			return
		}
		if t == nil {
			t = time.NewTimer(g.wait)
			defer t.Stop()
		} else {
			t.Reset(g.wait)
		}
		select {
		case <-wake:
			continue
		case <-t.C:
		}
		if b.n.Load() < n {
			continue // progress, only slower than the wait
		}
		// No progress: a stalled reader, a closed connection, or copies
		// counted that mochi never queued. Forget the count; the copy goes
		// on and mochi drops it if the queue is really full.
		b.n.Store(0)
		b.release()
		g.gaveUp.Add(1)
		return
	}
}

// arm returns the channel closed when the backlog falls to the low mark.
func (b *Backlog) arm() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake == nil {
		b.wake = make(chan struct{})
		b.armed.Store(true)
	}
	return b.wake
}

// release wakes every waiter.
func (b *Backlog) release() {
	b.mu.Lock()
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
		b.armed.Store(false)
	}
	b.mu.Unlock()
}

// done takes k copies off the count, never below zero, and wakes the
// waiters at the low mark.
func (g *Gate) done(b *Backlog, k int32) {
	for {
		n := b.n.Load()
		m := max(n-k, 0)
		if n == m || b.n.CompareAndSwap(n, m) {
			if m <= g.low && b.armed.Load() {
				b.release()
			}
			return
		}
	}
}

// OnPacketSent counts a PUBLISH written to the client.
func (g *Gate) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Publish || !g.Enabled() {
		return
	}
	if b, _ := backlogOf(cl); b != nil {
		g.done(b, 1)
	}
}

// OnPublishDropped counts a copy mochi dropped at the full queue.
func (g *Gate) OnPublishDropped(cl *mqtt.Client, _ packets.Packet) {
	if !g.Enabled() {
		return
	}
	if b, _ := backlogOf(cl); b != nil {
		g.done(b, 1)
	}
}

// OnSubscribed takes back the read checks of the SUBSCRIBE's filters:
// each granted filter passed one, and it queued nothing.
func (g *Gate) OnSubscribed(cl *mqtt.Client, _ packets.Packet, reasonCodes []byte) {
	if !g.Enabled() {
		return
	}
	var k int32
	for _, rc := range reasonCodes {
		if rc < packets.ErrUnspecifiedError.Code {
			k++
		}
	}
	if b, _ := backlogOf(cl); b != nil && k > 0 {
		g.done(b, k)
	}
}

// OnDisconnect lets the publishers waiting on cl go at once.
func (g *Gate) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if !g.Enabled() {
		return
	}
	if b, _ := backlogOf(cl); b != nil {
		b.n.Store(0)
		b.release()
	}
}
