package mochifix

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
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
