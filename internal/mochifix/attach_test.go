package mochifix

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// A connection stopped before its CONNACK fires no mochi event: the prune
// (OnSysInfoTick) releases its waiters and its entry, and Stop releases all.
func TestAttachWaits_PruneAndRelease(t *testing.T) {
	srv := mqtt.New(nil)
	stopped, open := srv.NewClient(nil, "t", "a", false), srv.NewClient(nil, "t", "b", false)
	var a attachWaits
	a.start(stopped)
	a.start(open)
	waiting := a.pending(stopped)
	stopped.Stop(nil)
	a.prune()
	select {
	case <-waiting:
	default:
		t.Fatal("prune left the stopped connection's waiters waiting")
	}
	if a.pending(stopped) != nil || a.pending(open) == nil {
		t.Fatal("prune removed the wrong entries")
	}
	waiting = a.pending(open)
	a.releaseAll()
	select {
	case <-waiting:
	default:
		t.Fatal("releaseAll left a waiter waiting")
	}
	if len(a.m) != 0 {
		t.Fatalf("%d entries left", len(a.m))
	}
}

// A wait for a connection still before its CONNACK ends with its context
// (the broker's shutdown).
func TestWaitAttached_ContextEnds(t *testing.T) {
	cl := mqtt.New(nil).NewClient(nil, "t", "a", false)
	var h Hook
	h.attached.start(cl)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if h.WaitAttached(ctx, cl, time.Minute) {
		t.Fatal("a cancelled wait reports the connection attached")
	}
}

// Alias tables start in OnSessionEstablish; a connection whose CONNACK or
// resend fails gets no OnDisconnect, so the tick forgets its tables once it
// is closed. One past OnSessionEstablished waits for its OnDisconnect.
func TestPruneAliases(t *testing.T) {
	srv := mqtt.New(nil)
	h := &Hook{caps: mqtt.NewDefaultServerCapabilities()}
	var cls [3]*mqtt.Client // failed, open, established (and closed)
	for i := range cls {
		cls[i] = srv.NewClient(nil, "t", string(rune('a'+i)), false)
		cls[i].Properties.ProtocolVersion = 5
		h.startAliases(cls[i], packets.Packet{})
	}
	h.OnSessionEstablished(cls[2], packets.Packet{})
	cls[0].Stop(nil)
	cls[2].Stop(nil)
	h.OnSysInfoTick(nil)
	for i, want := range []bool{false, true, true} {
		if got := h.conn(cls[i]) != nil; got != want {
			t.Errorf("client %s: alias table kept %v, want %v", cls[i].ID, got, want)
		}
	}
	h.OnDisconnect(cls[2], nil, false)
	if h.conn(cls[2]) != nil {
		t.Error("OnDisconnect kept the alias table")
	}
}
