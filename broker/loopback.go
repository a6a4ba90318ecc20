package broker

import (
	"context"
	"fmt"
	"sync"
)

// Loopback is a Cluster of one node that is never the owner: every write
// it sees is forwarded — to its own owner handlers, through the real
// encoding and decoding of each kind. It is for tests of the seam: a
// broker started WithCluster(NewLoopback()) must answer every client and
// REST call exactly as one with no cluster. It is no model of a cluster
// (there is no second node, and the store writes locally).
type Loopback struct {
	mu       sync.Mutex
	handlers map[string]func(ctx context.Context, req []byte) ([]byte, error)
	counts   map[string]int
	stalled  bool // Barrier waits for its context (StallBarrier)
}

// NewLoopback returns a Loopback with no handlers.
func NewLoopback() *Loopback {
	return &Loopback{handlers: map[string]func(context.Context, []byte) ([]byte, error){}, counts: map[string]int{}}
}

// IsOwner is false: every write is forwarded.
func (l *Loopback) IsOwner() bool { return false }

// Handle registers kind's owner handler.
func (l *Loopback) Handle(kind string, h func(ctx context.Context, req []byte) ([]byte, error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers[kind] = h
}

// Forward runs kind's handler on a copy of req (the caller's buffer is not
// the owner's, as over a network) and counts the request.
func (l *Loopback) Forward(ctx context.Context, kind string, req []byte) ([]byte, error) {
	l.mu.Lock()
	h := l.handlers[kind]
	l.counts[kind]++
	l.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("loopback: no handler for %q", kind)
	}
	return h(ctx, append([]byte(nil), req...))
}

// Forwarded is how many requests of kind were forwarded so far.
func (l *Loopback) Forwarded(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[kind]
}

// Fail makes every request of kind fail as a transport failure with err
// (no owner, timeout) until restore is called: tests of what a client gets
// when the owner cannot be reached.
func (l *Loopback) Fail(kind string, err error) (restore func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.handlers[kind]
	l.handlers[kind] = func(context.Context, []byte) ([]byte, error) { return nil, err }
	return func() { l.Handle(kind, h) }
}

// Barrier is what a node's REST reads wait for (rest.Barrier): at once, or
// while stalled until ctx ends, as on a node whose log does not move (its
// consumer or the JetStream meta leader died and is being replaced).
func (l *Loopback) Barrier(ctx context.Context) error {
	l.mu.Lock()
	stalled := l.stalled
	l.mu.Unlock()
	if !stalled {
		return nil
	}
	<-ctx.Done()
	return fmt.Errorf("loopback: barrier stalled: %w", ctx.Err())
}

// StallBarrier makes Barrier wait for its context until restore is called.
func (l *Loopback) StallBarrier() (restore func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stalled = true
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.stalled = false
	}
}
