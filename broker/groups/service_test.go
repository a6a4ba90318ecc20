package groups

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// A Service on an in-memory store, with the MQTT side, the timers and the
// callbacks faked: unit tests of the domain without a broker.

type noCallbacks struct{}

func (noCallbacks) Enabled(string) bool { return false }
func (noCallbacks) Before(context.Context, string, map[string]any) callbacks.Decision {
	return callbacks.Decision{}
}
func (noCallbacks) After(context.Context, string, map[string]any) {}

type noMutes struct{}

func (noMutes) CheckNoSpeaking(string, bool) error { return nil }

// fakeConns records what the service hands the MQTT side.
type fakeConns struct {
	mu        sync.Mutex
	delivered []storage.Entry
	dropped   []string // gids whose subscriptions were dropped
	local     []string // gids whose subscriptions were dropped on this node only (DropLocal)
}

// DropLocal is what a cluster node's MQTT side adds (follow.go, localDropper).
func (c *fakeConns) DropLocal(gid string, _ ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.local = append(c.local, gid)
}

func (c *fakeConns) Deliver(es []storage.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered = append(c.delivered, es...)
}
func (c *fakeConns) Online(string) []string            { return nil }
func (c *fakeConns) Notify(string, string, []byte) int { return 0 }
func (c *fakeConns) DropGroupSubscriptions(gid string, _ ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped = append(c.dropped, gid)
}

// heldTimers keeps every scheduled function without running it, as the
// broker's task owner does with a timer when it shuts down first; after
// closed it schedules nothing (returns nil), as the owner does once
// shutdown began.
type heldTimers struct {
	mu     sync.Mutex
	fns    []func()
	closed bool
}

func (h *heldTimers) AfterFunc(_ time.Duration, fn func()) *time.Timer {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.fns = append(h.fns, fn)
	return time.NewTimer(time.Hour) // never waited for: only its identity matters
}

func (h *heldTimers) scheduled() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.fns)
}

type testService struct {
	*Service
	store  *storage.Store
	conns  *fakeConns
	timers *heldTimers
}

func newTestService(t *testing.T, mods ...func(*config.Config)) *testService {
	t.Helper()
	cfg := config.Default()
	for _, m := range mods {
		m(&cfg)
	}
	return serviceOn(t, cfg, storage.Options{InMemory: true})
}

// serviceOn is a Service on a store opened with o, closed after the test.
func serviceOn(t *testing.T, cfg config.Config, o storage.Options) *testService {
	t.Helper()
	st, err := storage.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ts := &testService{store: st, conns: &fakeConns{}, timers: &heldTimers{}}
	ts.Service = New(Options{Store: st, Groups: cfg.Groups, Messages: cfg.Messages, Conversations: cfg.Conversations,
		Admin: cfg.App.Admin, Callbacks: noCallbacks{}, Conns: ts.conns, Timers: ts.timers, Mutes: noMutes{}})
	return ts
}

// admin is the app admin as an actor.
func (ts *testService) admin() ops.Actor { return ops.Actor{User: ts.Service.admin, Admin: true} }

func (ts *testService) create(t *testing.T, q CreateRequest) string {
	t.Helper()
	res, err := ts.Create(context.Background(), ts.admin(), &q)
	if err != nil {
		t.Fatal(err)
	}
	return res.GroupId
}

// actor is user as an actor (not the app admin).
func actor(user string) ops.Actor { return ops.Actor{User: user} }
