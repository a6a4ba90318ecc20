package mochifix_test

// A real mochi server on a loopback port, and a raw MQTT 5 connection built
// on mochi's packet codec, so each workaround is tested against mochi itself
// and on the wire. test/ covers the same workarounds through imbroker.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/mochifix"
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
	must(t, ts.srv.AddHook(ts.fix, &mochifix.Options{Server: ts.srv, KeepaliveMin: 1, KeepaliveMax: 3600}))
	for _, h := range o.hooks {
		must(t, ts.srv.AddHook(h, nil))
	}
	must(t, ts.srv.AddHook(new(auth.AllowHook), nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
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

// raw is an MQTT 5 connection driven packet by packet; it acks nothing.
type raw struct {
	t    *testing.T
	conn net.Conn
	wmu  sync.Mutex
	in   chan packets.Packet
	done chan struct{} // closed when the connection closed
}

// dial connects and sends cp; the test expects the CONNACK itself.
func dial(t *testing.T, addr string, cp packets.Packet) *raw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	must(t, err)
	r := &raw{t: t, conn: conn, in: make(chan packets.Packet, 100), done: make(chan struct{})}
	go r.read()
	t.Cleanup(func() {
		conn.Close()
		<-r.done
	})
	r.send(cp)
	return r
}

func (r *raw) read() {
	defer close(r.done)
	br := bufio.NewReader(r.conn)
	for {
		b0, err := br.ReadByte()
		if err != nil {
			return
		}
		var pk packets.Packet
		pk.ProtocolVersion = 5
		if err := pk.FixedHeader.Decode(b0); err != nil {
			r.t.Errorf("raw: bad fixed header: %v", err)
			return
		}
		n, _, err := packets.DecodeLength(br)
		if err != nil {
			return
		}
		pk.FixedHeader.Remaining = n
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		if err := decode(&pk, body); err != nil {
			r.t.Errorf("raw: decode %v: %v", pk.FixedHeader.Type, err)
			return
		}
		r.in <- pk
	}
}

func decode(pk *packets.Packet, b []byte) error {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		return pk.ConnackDecode(b)
	case packets.Publish:
		return pk.PublishDecode(b)
	case packets.Puback:
		return pk.PubackDecode(b)
	case packets.Suback:
		return pk.SubackDecode(b)
	case packets.Unsuback:
		return pk.UnsubackDecode(b)
	case packets.Disconnect:
		return pk.DisconnectDecode(b)
	}
	return errors.New("unexpected packet type")
}

// send encodes and writes one packet; write errors show up as the missing
// answer.
func (r *raw) send(pk packets.Packet) {
	r.t.Helper()
	pk.ProtocolVersion = 5
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Subscribe:
		pk.FixedHeader.Qos = 1
		err = pk.SubscribeEncode(&buf)
	case packets.Unsubscribe:
		pk.FixedHeader.Qos = 1
		err = pk.UnsubscribeEncode(&buf)
	default:
		err = errors.New("unsupported")
	}
	if err != nil {
		r.t.Fatalf("raw: encode %v: %v", pk.FixedHeader.Type, err)
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	_ = r.conn.SetWriteDeadline(time.Now().Add(wait))
	_, _ = r.conn.Write(buf.Bytes())
}

// expect returns the next packet of one of types, skipping others.
func (r *raw) expect(types ...byte) packets.Packet {
	r.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case pk := <-r.in:
			if slices.Contains(types, pk.FixedHeader.Type) {
				return pk
			}
		case <-r.done:
			select {
			case pk := <-r.in:
				if slices.Contains(types, pk.FixedHeader.Type) {
					return pk
				}
				continue
			default:
			}
			r.t.Fatalf("raw: connection closed while waiting for packet type %v", types)
			return packets.Packet{}
		case <-deadline:
			r.t.Fatalf("raw: no packet of type %v within %v", types, wait)
			return packets.Packet{}
		}
	}
}

// subscribe subscribes to filter at QoS 1 and checks the grant.
func (r *raw) subscribe(filter string) {
	r.t.Helper()
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: filter, Qos: 1}}})
	if sa := r.expect(packets.Suback); len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != 1 {
		r.t.Fatalf("subscribe %s: %v", filter, sa.ReasonCodes)
	}
}
