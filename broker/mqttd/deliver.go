package mqttd

import (
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// publisher is the part of the mochi server delivery needs.
type publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// deliverer publishes committed events live. The store calls enqueue in
// commit order, on its committer.
//
// A user's events (im/u/{uid}) are written there and then, at QoS 0 with
// non-blocking writes (usercast), a commit's copies to one connection
// leaving in one write when enqueue returns: from the fsync to the
// recipient's socket a send has no goroutine hand-off, each of which waits
// for a core when the machine is busy (docs/benchmarks.md, Round 12). A
// copy a connection cannot take now is dropped; the event is durable and
// the client fills the Seq gap with sync.
//
// A group's events go to worker goroutines instead: a room's fan-out can
// take thousands of writes, which the committer, and every send behind
// it, should not wait for. A group always maps to the same worker, so its
// members see its events in Seq order; when a worker's queue is full the
// live copy is dropped rather than stalling every sender.
type deliverer struct {
	pub     publisher
	room    func(topic string, payload []byte) bool           // group topics first; false: pub
	user    func(topic string, payload []byte, h *holds) bool // user topics first; false: pub
	log     *slog.Logger
	seed    maphash.Seed
	queues  []chan storage.Entry
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool
	dropped atomic.Int64
}

func newDeliverer(pub publisher, room func(topic string, payload []byte) bool, user func(topic string, payload []byte, h *holds) bool,
	workers, queue int, log *slog.Logger) *deliverer {
	d := &deliverer{pub: pub, room: room, user: user, log: log, seed: maphash.MakeSeed(), queues: make([]chan storage.Entry, workers)}
	for i := range d.queues {
		q := make(chan storage.Entry, queue)
		d.queues[i] = q
		d.wg.Add(1)
		go d.run(q)
	}
	return d
}

// enqueue is the store's OnCommit callback, also called under g.op (live
// rooms). d.mu is a leaf: nothing else is taken while it is held. It
// writes the user events itself (their copies to one connection in one
// write, at its return) and queues the group events for the workers.
func (d *deliverer) enqueue(entries []storage.Entry) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return
	}
	var h holds
	defer h.release()
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Stream, "u/"):
			d.deliver(e, &h)
		case strings.HasPrefix(e.Stream, "g/"):
			d.queue(e)
		}
		// other streams (a pair's history, one per one-to-one message)
		// are delivered to nobody
	}
}

// queue hands a group event to its group's worker, or drops the live copy
// when that worker's queue is full.
func (d *deliverer) queue(e storage.Entry) {
	q := d.queues[maphash.String(d.seed, e.Stream)%uint64(len(d.queues))]
	select {
	case q <- e:
	default:
		if d.dropped.Add(1)%1000 == 1 {
			d.log.Warn("delivery queue full, live copy dropped; clients recover by sync", "stream", e.Stream, "dropped_total", d.dropped.Load())
		}
	}
}

func (d *deliverer) run(q chan storage.Entry) {
	defer d.wg.Done()
	for e := range q {
		d.deliver(e, nil)
	}
}

// liveTopic is the MQTT topic a stream's events are delivered on: a user's
// or a group's; other streams (a pair's history) have none.
func liveTopic(stream string) (string, bool) {
	if uid, ok := strings.CutPrefix(stream, "u/"); ok {
		return topicUserPrefix + uid, true
	}
	if gid, ok := strings.CutPrefix(stream, "g/"); ok {
		return groupTopic(gid), true
	}
	return "", false
}

func (d *deliverer) deliver(e storage.Entry, h *holds) {
	topic, ok := liveTopic(e.Stream)
	if !ok {
		return
	}
	// QoS 0: mochi's QoS>0 fan-out takes each recipient's lock, which a
	// stalled socket holds while writing, so one dead peer would stall the
	// worker. At QoS 0 a stalled peer only loses live copies (its queue is
	// full) and fills the gap by sync; the store is the guarantee.
	payload := wire.Envelope(e.Pos.Epoch, e.Pos.Seq, e.Payload)
	if strings.HasPrefix(e.Stream, "u/") && d.user != nil && d.user(topic, payload, h) {
		return
	}
	// A room fan-out can take a while (thousands of writes) and mochi's may
	// wait: no connection stays held meanwhile.
	h.release()
	if strings.HasPrefix(e.Stream, "g/") && d.room != nil && d.room(topic, payload) {
		return
	}
	if err := d.pub.Publish(topic, payload, false, 0); err != nil {
		d.log.Warn("live delivery failed", "stream", e.Stream, "seq", e.Pos.Seq, "error", err)
	}
}

// close stops accepting events, lets workers finish their queues and waits.
func (d *deliverer) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	for _, q := range d.queues {
		close(q)
	}
	d.mu.Unlock()
	d.wg.Wait()
}
