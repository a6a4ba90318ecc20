package mqttd

import (
	"context"
	"sync"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/tasks"
)

// TestConnLifecycle: a user connection's conn exists from its session's
// start to its end, and a taken-over connection's end drops its own conn
// only: the ClientID stays with the connection that took it over.
func TestConnLifecycle(t *testing.T) {
	owner := tasks.New()
	s := newTestServer(t, owner)
	s.Callbacks = nopCallbacks{}
	s.Status = nopStatus{}
	t.Cleanup(func() { owner.Stop(); s.Close(); s.CloseDelivery() })

	old := loggingIn(t, s, "kim:phone", "kim")
	s.SessionStarting(old)
	if s.conns.of(old) == nil {
		t.Fatal("no conn once the session started")
	}
	taker := loggingIn(t, s, "kim:phone", "kim") // the same ClientID again
	s.SessionStarting(taker)
	old.Stop(packets.ErrSessionTakenOver)
	s.SessionEnded(old, packets.ErrSessionTakenOver, true)
	if s.conns.of(old) != nil {
		t.Fatal("the taken-over connection's conn outlived it")
	}
	if got := s.OnlineDevices("kim"); len(got) != 1 || got[0] != "kim:phone" || s.conns.of(taker) == nil {
		t.Fatalf("after the takeover: devices %q, conn %v; want the new connection", got, s.conns.of(taker))
	}
	taker.Stop(packets.CodeDisconnect)
	s.SessionEnded(taker, packets.CodeDisconnect, false)
	if s.conns.of(taker) != nil || s.OnlineDevices("kim") != nil {
		t.Fatal("a conn outlived its connection")
	}

	// mochi fires no OnDisconnect for a connection whose CONNACK write
	// failed: its conn goes once the user's devices are looked at.
	lost := loggingIn(t, s, "kim", "kim")
	s.SessionStarting(lost)
	lost.Stop(nil)
	if s.OnlineDevices("kim") != nil || s.conns.of(lost) != nil {
		t.Fatal("a closed connection's conn was kept")
	}
}

// TestServicesRefuseShadowedConnOps: the registry may not hold sync or
// group.sync, which the server runs itself.
func TestServicesRefuseShadowedConnOps(t *testing.T) {
	reg, err := ops.NewRegistry([]ops.Op{ops.New("sync", nil, func(_ context.Context, _ ops.Actor, _ *struct{}) (*struct{}, error) { return nil, nil })})
	if err != nil {
		t.Fatal(err)
	}
	svc := Services{Store: nopStore{}, Messages: nopMessages{}, Groups: nopGroups{}, Status: nopStatus{}, Callbacks: nopCallbacks{}, Ops: reg}
	if err := svc.check(); err == nil {
		t.Fatal("a registry holding sync was accepted")
	}
}

// presenceRec is a Peers that keeps this node's announced connections, as
// the other nodes see them.
type presenceRec struct {
	fakePeers
	mu    sync.Mutex
	local map[string]int64 // ClientID -> connected at
}

func (p *presenceRec) Started(_, clientID string, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.local == nil {
		p.local = map[string]int64{}
	}
	p.local[clientID] = at
}

func (p *presenceRec) Ended(_, clientID string, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.local[clientID] == at {
		delete(p.local, clientID)
	}
}

func (p *presenceRec) announced() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.local)
}

// TestConnEndAnnouncedOnce: a connection that closed is announced ended to
// the other nodes once, whoever drops its conn first: its own end, or a
// look at its user's devices between its close and its end (a kicked
// connection is closed before mochi runs OnDisconnect; the owner looks at
// the user's devices when another node's connection ends), or that look
// alone (a CONNACK that failed: no OnDisconnect).
func TestConnEndAnnouncedOnce(t *testing.T) {
	owner := tasks.New()
	s := newTestServer(t, owner)
	s.Callbacks = nopCallbacks{}
	s.Status = nopStatus{}
	rec := &presenceRec{}
	s.Services.Peers = rec
	t.Cleanup(func() { owner.Stop(); s.Close(); s.CloseDelivery() })

	kicked := loggingIn(t, s, "lee:a", "lee")
	s.SessionStarting(kicked)
	kicked.Stop(errKickedAdmin)
	if got := s.OnlineDevices("lee"); got != nil {
		t.Fatalf("devices %v after the close, want none", got)
	}
	s.SessionEnded(kicked, errKickedAdmin, false)
	if n := rec.announced(); n != 0 {
		t.Fatalf("a kicked connection looked at before its end: %d connection(s) still announced, want 0", n)
	}

	lost := loggingIn(t, s, "lee:b", "lee")
	s.SessionStarting(lost)
	lost.Stop(nil)
	if got := s.OnlineDevices("lee"); got != nil {
		t.Fatalf("devices %v after a failed CONNACK, want none", got)
	}
	if n := rec.announced(); n != 0 {
		t.Fatalf("a connection whose CONNACK failed: %d connection(s) still announced, want 0", n)
	}
}
