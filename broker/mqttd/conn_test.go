package mqttd

import (
	"context"
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
