package mochifix

import (
	"context"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Takeovers, mochi v2.7.9 (#173; PR #180 left this gap): a CONNECT with
// the ClientID of a live connection stops the old connection
// (inheritClientSession) and only then marks it taken over; then it adds
// the new connection to the client map. The old connection's goroutine,
// once its read loop ends, runs the OnDisconnect hooks and then, if the
// mark is not set yet, its own cleanup: it unsubscribes by ClientID and
// deletes its ClientID from the client map. When that delete comes after
// the new connection was added, the new connection stays connected and
// subscribed but is no longer in the map, so no fan-out finds it: it gets
// no PUBLISH until it reconnects (TestE2E_DevicesRefuse saw it once).
//
// The hook holds the old connection's OnDisconnect until the new one's
// CONNACK is written (WaitAttached): mochi has marked the old connection
// and added the new one by then. At most takeoverWait, in case the new
// connection never gets there.

// takeoverWait bounds how long a taken-over connection's end waits for its
// successor's CONNACK (mochi sets the mark microseconds after it stopped the
// old connection; a CONNACK write can take longer).
const takeoverWait = time.Second

// successors maps a connection being taken over to its successor, from the
// successor's OnSessionEstablish until the old connection's OnDisconnect.
type successors struct {
	m    sync.Map      // *mqtt.Client (old) -> *mqtt.Client (successor)
	wait time.Duration // 0: takeoverWait (tests set it)
}

// beginTakeover records that cl takes over the connection holding its
// ClientID, if any (from OnSessionEstablish, before mochi stops it).
func (h *Hook) beginTakeover(cl *mqtt.Client) {
	if old, ok := h.opts.Server.Clients.Get(cl.ID); ok && old != cl {
		h.takeovers.m.Store(old, cl)
	}
}

// endTakeover runs in cl's OnDisconnect: a connection being taken over
// waits for its successor's CONNACK, so that mochi's cleanup after the
// hooks sees it taken over and leaves the successor in the client map.
func (h *Hook) endTakeover(cl *mqtt.Client) {
	next, ok := h.takeovers.m.LoadAndDelete(cl)
	if !ok {
		return
	}
	wait := h.takeovers.wait
	if wait == 0 {
		wait = takeoverWait
	}
	h.WaitAttached(context.Background(), next.(*mqtt.Client), wait)
}

// pruneTakeovers forgets the pairs whose successor is past its CONNACK (or
// gone): the old connection's end would not wait for it, and an old
// connection that ended before it was paired never comes to take its pair.
func (h *Hook) pruneTakeovers() {
	h.takeovers.m.Range(func(old, next any) bool {
		if h.attached.pending(next.(*mqtt.Client)) == nil {
			h.takeovers.m.Delete(old)
		}
		return true
	})
}
