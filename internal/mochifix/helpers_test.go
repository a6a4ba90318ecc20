package mochifix_test

// A real mochi server on a loopback port, and a raw MQTT 5 connection
// (internal/mqtttest, built on mochi's packet codec), so each workaround is
// tested against mochi itself and on the wire. test/ covers the same
// workarounds through imbroker.

import (
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/mochifix"
	"github.com/imbroker/imbroker/internal/mqtttest"
)

const wait = 5 * time.Second

type testServer struct {
	srv  *mqtt.Server
	fix  *mochifix.Hook
	addr string
}

type serverOpts struct {
	caps  func(*mqtt.Capabilities) // adjusts mochi's default capabilities
	log   *slog.Logger             // mochi's logger (default: discard)
	hooks []mqtt.Hook              // added after the mochifix hook, before allow-all auth
	fix   func(*mochifix.Options)  // adjusts the mochifix hook's options
	tls   *tls.Config              // serves TLS
}

// startServer starts mochi with the mochifix hook and allow-all auth (the
// tests exercise mochi's MQTT behaviour, not authentication).
func startServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	caps := mqtt.NewDefaultServerCapabilities()
	if o.caps != nil {
		o.caps(caps)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	ts := &testServer{srv: mqtt.New(&mqtt.Options{Capabilities: caps, Logger: o.log, InlineClient: true}), fix: new(mochifix.Hook)}
	fo := &mochifix.Options{Server: ts.srv, KeepaliveMin: 1, KeepaliveMax: 3600}
	if o.fix != nil {
		o.fix(fo)
	}
	must(t, ts.srv.AddHook(ts.fix, fo))
	for _, h := range o.hooks {
		must(t, ts.srv.AddHook(h, nil))
	}
	must(t, ts.srv.AddHook(new(auth.AllowHook), nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	if o.tls != nil {
		ln = tls.NewListener(ln, o.tls)
	}
	must(t, ts.srv.AddListener(listeners.NewNet("t", ln)))
	ts.addr = ln.Addr().String()
	must(t, ts.srv.Serve())
	t.Cleanup(func() { _ = mochifix.Close(ts.srv, []string{"t"}) })
	return ts
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes (for state with
// no event to wait on, e.g. mochi noticing a closed connection).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// connect is a clean-start MQTT 5 CONNECT for clientID.
func connect(clientID string) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Clean: true, Keepalive: 30}}
}

// dial connects and sends cp; the test expects the CONNACK itself. The
// connection acks nothing.
func dial(t *testing.T, addr string, cp packets.Packet) *mqtttest.Conn {
	t.Helper()
	c := mqtttest.Dial(t, addr, false)
	c.Send(cp)
	return c
}

// subscribe subscribes c to filter at QoS 1 and checks the grant.
func subscribe(t *testing.T, c *mqtttest.Conn, filter string) {
	t.Helper()
	if rc := c.Subscribe(1, 0, packets.Subscription{Filter: filter, Qos: 1}); len(rc) != 1 || rc[0] != 1 {
		t.Fatalf("subscribe %s: %v", filter, rc)
	}
}
