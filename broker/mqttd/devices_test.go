package mqttd

import (
	"log/slog"
	"net"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/tasks"
)

// newTestServer builds a server (mochi and its hooks, no listener) whose
// device kicks belong to owner.
func newTestServer(t *testing.T, owner *tasks.Owner, mods ...func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.MQTT.TCP, cfg.MQTT.WS = "", ""
	for _, m := range mods {
		m(&cfg)
	}
	s, err := New(Options{Config: cfg, Tasks: owner, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loggingIn is a connection of user whose login is in progress: past auth
// and OnSessionEstablish (the mochifix hook's, then startConn), its CONNACK
// not yet written.
func loggingIn(t *testing.T, s *Server, clientID, user string) *mqtt.Client {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { _, _ = server.Close(), client.Close() })
	cl := s.mq.NewClient(server, ListenerTCP, clientID, false)
	cl.Properties.Username = []byte(user)
	s.fix.OnSessionEstablish(cl, packets.Packet{})
	return cl
}

// TestShutdownCancelsPendingKick: a device kick waits for its victim's own
// login to finish (mochifix WaitAttached, up to 5 s); stopping the task
// owner (the first step of the broker's Shutdown) cancels it and waits for
// it, so no goroutine outlives the server.
func TestShutdownCancelsPendingKick(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	owner := tasks.New()
	s := newTestServer(t, owner, func(c *config.Config) {
		c.Devices.MaxPerUser, c.Devices.OnExceed = 1, config.DevicesKickOldest
	})
	s.startConn(loggingIn(t, s, "kim:phone", "kim"))
	s.startConn(loggingIn(t, s, "kim:laptop", "kim")) // kicks kim:phone, which never attaches
	if got := s.OnlineDevices("kim"); len(got) != 1 || got[0] != "kim:laptop" {
		t.Fatalf("devices of kim: %q, want the laptop only", got)
	}
	owner.Stop()
	s.Close()
	s.CloseDelivery()
	goleak.VerifyNone(t, ignore)
}
