package mqttd

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbroker/imbroker/storage"
)

// countingHolder counts the Holds not yet released and tells idle each
// time the count falls to zero.
type countingHolder struct {
	held atomic.Int32
	idle chan struct{}
}

func (c *countingHolder) Hold() { c.held.Add(1) }
func (c *countingHolder) Release() {
	if c.held.Add(-1) == 0 {
		c.idle <- struct{}{}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(string, []byte, bool, byte) error { return nil }

// A group commit's user events are written by enqueue itself, before it
// returns (no goroutine hand-off between the fsync and the socket), under
// one hold per connection released once all are written, so a burst to one
// connection leaves in one write; the holds are released before a room's
// fan-out (which may write to thousands of connections) goes anywhere, and
// group events go to a worker.
func TestDelivererWritesUserEventsBeforeReturning(t *testing.T) {
	conn := &countingHolder{idle: make(chan struct{}, 4)}
	var calls atomic.Int32
	user := func(_ string, _ []byte, h *holds) bool {
		h.hold(conn)
		calls.Add(1)
		return true
	}
	roomRan := make(chan struct{}, 1)
	room := func(string, []byte) bool {
		roomRan <- struct{}{}
		return true
	}
	d := newDeliverer(nopPublisher{}, room, user, 1, 16, slog.New(slog.DiscardHandler))
	defer d.close()
	d.enqueue([]storage.Entry{{Stream: "u/bob"}, {Stream: "c/alice:bob"}, {Stream: "u/bob"}, {Stream: "g/room"}, {Stream: "u/bob"}})
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d user events written when enqueue returned, want 3", n)
	}
	if n := conn.held.Load(); n != 0 {
		t.Fatalf("%d holds left on the connection after enqueue", n)
	}
	select {
	case <-conn.idle: // one release for the three copies
	default:
		t.Fatal("the connection was never released")
	}
	select {
	case <-conn.idle:
		t.Fatal("the connection was held and released more than once: its copies left in separate writes")
	default:
	}
	select {
	case <-roomRan:
	case <-time.After(5 * time.Second):
		t.Fatal("the group event never reached its worker")
	}
}

// Only group events take a place in a worker's queue: with one slot and the
// worker busy, a group event after user events and a pair's history (one
// per one-to-one message) is queued, not dropped.
func TestDelivererQueuesOnlyGroupEvents(t *testing.T) {
	busy, release := make(chan struct{}), make(chan struct{})
	var rooms, users atomic.Int32
	room := func(string, []byte) bool {
		if rooms.Add(1) == 1 {
			close(busy)
			<-release
		}
		return true
	}
	user := func(string, []byte, *holds) bool {
		users.Add(1)
		return true
	}
	d := newDeliverer(nopPublisher{}, room, user, 1, 1, slog.New(slog.DiscardHandler))
	d.enqueue([]storage.Entry{{Stream: "g/one"}})
	select {
	case <-busy:
	case <-time.After(5 * time.Second):
		t.Fatal("the first group event was not delivered")
	}
	d.enqueue([]storage.Entry{{Stream: "c/alice:bob"}, {Stream: "u/alice"}, {Stream: "c/bob:carol"}, {Stream: "u/bob"}, {Stream: "g/two"}})
	close(release)
	d.close() // waits for the worker to finish its queue
	if r, u, dropped := rooms.Load(), users.Load(), d.dropped.Load(); r != 2 || u != 2 || dropped != 0 {
		t.Fatalf("%d group and %d user events delivered and %d dropped, want 2, 2 and 0", r, u, dropped)
	}
}
