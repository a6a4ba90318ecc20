package mochifix

import (
	"context"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/system"
)

// WaitAttached waits until cl's CONNACK has been written, so that a
// connection chosen to be closed while its own login is still in progress
// (logins racing, e.g. the device limit) is closed only after it.
//
// mochi v2.7.9, no upstream issue: mochi registers a client in its client map
// and then writes the CONNACK (attachClient). Closed before that write, the
// client sees no reason, and mochi, whose CONNACK write then fails, returns
// without unregistering it, keeping the dead client in its map.
//
// The wait ends on mochi's events: the CONNACK written (OnPacketSent), the
// connection ended (OnDisconnect), its session expired, or the server
// stopping. A connection stopped before its CONNACK was even attempted fires
// none of them (mochi has no event for it): that wait ends at the next
// OnSysInfoTick, or at max. It reports whether cl is still open, and false
// when ctx ends first; a wait that reaches max with cl open reports true (the
// caller goes ahead).
func (h *Hook) WaitAttached(ctx context.Context, cl *mqtt.Client, max time.Duration) bool {
	if ch := h.attached.pending(cl); ch != nil {
		t := time.NewTimer(max)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return !cl.Closed()
}

// attachWaits tracks the connections between OnSessionEstablish and their
// CONNACK: each has a channel closed once the CONNACK is written.
type attachWaits struct {
	mu sync.Mutex
	m  map[*mqtt.Client]chan struct{}
}

func (a *attachWaits) start(cl *mqtt.Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[*mqtt.Client]chan struct{}{}
	}
	a.m[cl] = make(chan struct{})
}

// pending returns the channel to wait on, or nil when cl is past its CONNACK
// (or never got as far as OnSessionEstablish).
func (a *attachWaits) pending(cl *mqtt.Client) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[cl]
}

func (a *attachWaits) done(cl *mqtt.Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch, ok := a.m[cl]; ok {
		close(ch)
		delete(a.m, cl)
	}
}

// prune releases the waits of connections that closed before their CONNACK:
// mochi fires no event for them, and the entries would stay forever.
func (a *attachWaits) prune() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for cl, ch := range a.m {
		if cl.Closed() {
			close(ch)
			delete(a.m, cl)
		}
	}
}

func (a *attachWaits) releaseAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for cl, ch := range a.m {
		close(ch)
		delete(a.m, cl)
	}
}

// OnSysInfoTick prunes the attach waits, the aliases of connections
// that failed before OnSessionEstablished and the takeovers already
// attached (every SysTopicResendInterval, on mochi's event loop).
func (h *Hook) OnSysInfoTick(*system.Info) {
	h.attached.prune()
	h.pruneAliases()
	h.pruneTakeovers()
}
