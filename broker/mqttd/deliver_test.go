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

// A delivery worker keeps the connections it wrote user events to held
// only while more user events follow: before a room fan-out (which may
// write to thousands of connections) it releases them, so a PUBACK or an
// event on a held connection never waits for a room; and it releases them
// when its queue is empty.
func TestDelivererReleasesHoldsBeforeRoomAndWhenIdle(t *testing.T) {
	conn := &countingHolder{idle: make(chan struct{}, 4)}
	first := make(chan struct{})
	var calls atomic.Int32
	heldAtRoom := make(chan int32, 1)
	user := func(_ string, _ []byte, h *holds) bool {
		h.hold(conn)
		if calls.Add(1) == 1 {
			<-first // the room event is queued behind this one
		}
		return true
	}
	room := func(string, []byte) bool {
		heldAtRoom <- conn.held.Load()
		return true
	}
	d := newDeliverer(nopPublisher{}, room, user, 1, 16, slog.New(slog.DiscardHandler))
	defer d.close()
	d.enqueue([]storage.Entry{{Stream: "u/bob"}})
	d.enqueue([]storage.Entry{{Stream: "g/room"}, {Stream: "u/bob"}})
	close(first)
	select {
	case n := <-heldAtRoom:
		if n != 0 {
			t.Fatalf("the room fan-out ran with %d holds on a user's connection", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no room delivery")
	}
	// Released twice: before the room, and once the last user event left
	// the queue empty.
	for i := range 2 {
		select {
		case <-conn.idle:
		case <-time.After(5 * time.Second):
			t.Fatalf("release %d never came: %d holds left, %d user events", i+1, conn.held.Load(), calls.Load())
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d user events delivered, want 2", n)
	}
}

// Entries of streams nobody is delivered from (a pair's history, one per
// one-to-one message) take no place in a worker's queue: with one slot and
// the worker busy, a user event after three of them is queued, not dropped.
func TestDelivererQueuesOnlyLiveStreams(t *testing.T) {
	busy, release := make(chan struct{}), make(chan struct{})
	var delivered atomic.Int32
	user := func(string, []byte, *holds) bool {
		if delivered.Add(1) == 1 {
			close(busy)
			<-release
		}
		return true
	}
	d := newDeliverer(nopPublisher{}, nil, user, 1, 1, slog.New(slog.DiscardHandler))
	d.enqueue([]storage.Entry{{Stream: "u/alice"}})
	select {
	case <-busy:
	case <-time.After(5 * time.Second):
		t.Fatal("the first event was not delivered")
	}
	d.enqueue([]storage.Entry{{Stream: "c/alice:bob"}, {Stream: "c/alice:carol"}, {Stream: "c/bob:carol"}, {Stream: "u/bob"}})
	close(release)
	d.close() // waits for the worker to finish its queue
	if n, dropped := delivered.Load(), d.dropped.Load(); n != 2 || dropped != 0 {
		t.Fatalf("%d user events delivered and %d dropped, want 2 and 0", n, dropped)
	}
}
