package mochifix

import (
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
// The hook holds the old connection's OnDisconnect until the new one has
// reached OnSessionEstablished, which mochi calls after the mark is set;
// at most takeoverWait, in case the new connection never gets there.

// takeoverWait bounds how long a taken-over connection's end waits for its
// successor to be established (mochi sets the mark microseconds after it
// stopped the old connection; a CONNACK write can take longer).
const takeoverWait = time.Second

// takeovers pairs each connection being taken over with its successor
// until the successor is established.
type takeovers struct {
	mu    sync.Mutex
	byOld map[*mqtt.Client]chan struct{} // closed once the successor is established
	byNew map[*mqtt.Client]successor     // keyed by the successor
	wait  time.Duration                  // 0: takeoverWait (tests set it)
}

type successor struct {
	old         *mqtt.Client
	established chan struct{}
}

// begin records that cl takes over old (from OnSessionEstablish, before
// mochi stops old).
func (t *takeovers) begin(old, cl *mqtt.Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byOld == nil {
		t.byOld, t.byNew = map[*mqtt.Client]chan struct{}{}, map[*mqtt.Client]successor{}
	}
	ch := make(chan struct{})
	t.byOld[old], t.byNew[cl] = ch, successor{old: old, established: ch}
}

// established releases the connection cl took over: mochi has marked it
// by now. Called from OnSessionEstablished; also when cl ends before it.
func (t *takeovers) established(cl *mqtt.Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byNew[cl]
	if !ok {
		return
	}
	delete(t.byNew, cl)
	close(s.established)
	if t.byOld[s.old] == s.established {
		delete(t.byOld, s.old) // its OnDisconnect, if still to come, need not wait
	}
}

// ended runs in cl's OnDisconnect: a connection being taken over waits
// until its successor is established, so that mochi's cleanup after the
// hooks sees it taken over and leaves the successor in the client map; a
// successor that ends before it was established releases the old one.
func (t *takeovers) ended(cl *mqtt.Client) {
	t.established(cl)
	t.mu.Lock()
	ch, ok := t.byOld[cl]
	delete(t.byOld, cl)
	t.mu.Unlock()
	if !ok {
		return
	}
	wait := t.wait
	if wait == 0 {
		wait = takeoverWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	}
}
