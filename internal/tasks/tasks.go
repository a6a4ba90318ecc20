// Package tasks owns the goroutines and timers a running broker starts on
// demand, so shutdown can stop them and wait for them.
package tasks

import (
	"context"
	"sync"
	"time"
)

// Owner owns the background work the broker starts on demand, outside its
// fixed goroutines (delivery workers, retention, ack writers): device kicks
// (broker/mqttd) and the timers of live-room member tips (groups.Timers).
// Shutdown calls Stop before it closes anything else: nothing new starts,
// running work sees its context cancelled and is waited for, and a timer
// that has not fired is stopped, its work dropped. Without an owner such
// work could run after the store closed, or outlive the Broker.
type Owner struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // running goroutines and timers not yet fired or stopped

	mu     sync.Mutex
	closed bool
	timers map[*time.Timer]struct{} // scheduled, not fired
}

// New returns an owner that accepts work until Stop.
func New() *Owner {
	ctx, cancel := context.WithCancel(context.Background())
	return &Owner{ctx: ctx, cancel: cancel, timers: map[*time.Timer]struct{}{}}
}

// Spawn runs fn on its own goroutine with a context that Stop cancels. It
// reports false, and does not run fn, once Stop has begun.
func (t *Owner) Spawn(fn func(ctx context.Context)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn(t.ctx)
	}()
	return true
}

// AfterFunc is time.AfterFunc for owned timers: fn runs after d unless Stop
// comes first, in which case it never runs. It returns nil, scheduling
// nothing, once Stop has begun.
func (t *Owner) AfterFunc(d time.Duration, fn func()) *time.Timer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.wg.Add(1)
	var tm *time.Timer
	// The callback takes t.mu first, so it sees tm assigned.
	tm = time.AfterFunc(d, func() {
		defer t.wg.Done()
		t.mu.Lock()
		delete(t.timers, tm)
		closed := t.closed
		t.mu.Unlock()
		if !closed { // fired while Stop ran: dropped like a stopped timer
			fn()
		}
	})
	t.timers[tm] = struct{}{}
	return tm
}

// Stop refuses new work, cancels running work, stops every pending timer
// and waits for whatever already runs. Idempotent.
func (t *Owner) Stop() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		t.cancel()
		for tm := range t.timers {
			if tm.Stop() { // it will never fire; one that did calls Done itself
				t.wg.Done()
			}
		}
		t.timers = nil
	}
	t.mu.Unlock()
	t.wg.Wait()
}
