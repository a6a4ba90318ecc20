package mochifix

import (
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// takeoverHook returns a hook on a server whose client map holds old, and
// a successor with old's ClientID that has reached OnSessionEstablish.
func takeoverHook(t *testing.T, wait time.Duration) (h *Hook, old, next *mqtt.Client) {
	t.Helper()
	srv := mqtt.New(nil)
	h = &Hook{caps: mqtt.NewDefaultServerCapabilities(), opts: Options{Server: srv}}
	h.takeovers.wait = wait
	old = srv.NewClient(nil, "t", "bob:phone", false)
	next = srv.NewClient(nil, "t", "bob:phone", false)
	srv.Clients.Add(old)
	h.OnSessionEstablish(next, packets.Packet{})
	return h, old, next
}

var connack = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}}

// TestTakeovers_OldWaitsForItsSuccessor: a taken-over connection's end
// (OnDisconnect) returns only once its successor's CONNACK is written,
// since mochi's cleanup after the hooks would otherwise delete the
// successor's ClientID from the client map; with the bound at an hour,
// only the successor can release it here.
func TestTakeovers_OldWaitsForItsSuccessor(t *testing.T) {
	h, old, next := takeoverHook(t, time.Hour)
	done := make(chan struct{})
	go func() { h.OnDisconnect(old, nil, true); close(done) }()
	h.OnPacketSent(next, connack, nil)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the old connection's end was not released by its successor's CONNACK")
	}
	h.requireNoTakeovers(t)
}

// TestTakeovers_Bounded: a successor that never gets its CONNACK holds the
// old connection's end for the bound only.
func TestTakeovers_Bounded(t *testing.T) {
	h, old, _ := takeoverHook(t, 50*time.Millisecond)
	began := time.Now()
	h.OnDisconnect(old, nil, true)
	if d := time.Since(began); d < 50*time.Millisecond {
		t.Fatalf("OnDisconnect returned after %v, want it to wait for the successor up to the bound", d)
	}
	h.requireNoTakeovers(t)
}

// TestTakeovers_NothingKept: an old connection whose successor already
// got its CONNACK, or ended, does not wait; a pair whose old connection
// never comes to its OnDisconnect is forgotten at the next tick once the
// successor is attached; a connection nobody takes over never waits.
func TestTakeovers_NothingKept(t *testing.T) {
	h, old, next := takeoverHook(t, time.Hour)
	h.OnPacketSent(next, connack, nil)
	h.OnDisconnect(old, nil, true) // would block for an hour if it waited
	h.requireNoTakeovers(t)

	h, old, next = takeoverHook(t, time.Hour)
	h.OnDisconnect(next, nil, true) // the successor ends first
	h.OnDisconnect(old, nil, true)
	h.requireNoTakeovers(t)

	h, _, next = takeoverHook(t, time.Hour)
	h.OnPacketSent(next, connack, nil)
	h.OnSysInfoTick(nil) // the old connection ended before it was paired
	h.requireNoTakeovers(t)

	h.OnDisconnect(next, nil, true) // not taken over: returns at once
}

func (h *Hook) requireNoTakeovers(tb testing.TB) {
	tb.Helper()
	h.takeovers.m.Range(func(old, next any) bool {
		tb.Fatalf("a takeover of %s is still kept", old.(*mqtt.Client).ID)
		return false
	})
}
