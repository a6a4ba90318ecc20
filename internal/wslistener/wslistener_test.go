package wslistener

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/internal/mochifix"
)

const waitFor = 5 * time.Second

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// startBroker runs a real mochi server with only our listener attached.
func startBroker(t *testing.T, opts Options) (*mqtt.Server, *Listener) {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quietLog})
	// Allow-all auth is acceptable here only: the test exercises transport, not auth.
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := New(opts)
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	return srv, l
}

func connectPaho(t *testing.T, url, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(waitFor)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connect %s: timeout or %v", url, tok.Error())
	}
	return c
}

func TestMQTTOverWebSocket(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // runs last, after everything below is closed

	srv, l := startBroker(t, Options{
		ID: "ws", Address: "127.0.0.1:0", Path: "/mqtt",
		AllowedOrigins: []string{"http://good.example"},
	})
	defer srv.Close()

	addr := l.Address()
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Address() = %q, want a real bound port", addr)
	}

	c := connectPaho(t, "ws://"+addr+"/mqtt", "tester")
	defer c.Disconnect(250)

	got := make(chan []byte, 4)
	if tok := c.Subscribe("t/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() }); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	roundTrip := func(t *testing.T, payload []byte) {
		t.Helper()
		if tok := c.Publish("t/x", 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		select {
		case p := <-got:
			if !bytes.Equal(p, payload) {
				t.Fatalf("payload mismatch: got %d bytes, want %d", len(p), len(payload))
			}
		case <-time.After(waitFor):
			t.Fatal("message did not arrive")
		}
	}

	t.Run("small QoS1", func(t *testing.T) { roundTrip(t, []byte("hello")) })
	t.Run("100KB spans frames", func(t *testing.T) { roundTrip(t, bytes.Repeat([]byte("0123456789"), 10_000)) })

	t.Run("other path 404", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitFor}
		resp, err := hc.Get("http://" + addr + "/other")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})

	t.Run("origin check", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor}
		_, resp, err := d.Dial("ws://"+addr+"/mqtt", http.Header{"Origin": {"http://evil.example"}})
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("disallowed origin: err=%v resp=%v, want bad handshake 403", err, resp)
		}
		ws, _, err := d.Dial("ws://"+addr+"/mqtt", http.Header{"Origin": {"http://good.example"}})
		if err != nil {
			t.Fatalf("allowed origin refused: %v", err)
		}
		_ = ws.Close()
	})
}

// TestConnStreamsAcrossFrames checks the net.Conn adapter directly: packets
// split over frames or packed into one frame read back as a plain stream,
// each Write is one binary message, and read deadlines reach the socket.
func TestConnStreamsAcrossFrames(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	l := New(Options{ID: "raw", Address: "127.0.0.1:0"})
	if err := l.Init(quietLog); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		defer close(served)
		l.Serve(func(id string, c net.Conn) error {
			buf := make([]byte, 10)
			if _, err := io.ReadFull(c, buf); err != nil {
				result <- err
				return err
			}
			if _, err := c.Write(buf); err != nil {
				result <- err
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(-time.Second))
			_, err := c.Read(buf)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				result <- errors.New("read after past deadline did not time out: " + errorString(err))
				return err
			}
			result <- nil
			return nil
		})
	}()

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+l.Address()+"/mqtt", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, part := range []string{"01", "", "23456", "789"} { // includes an empty message
		if err := ws.WriteMessage(websocket.BinaryMessage, []byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	op, echo, err := ws.ReadMessage()
	if err != nil || op != websocket.BinaryMessage || string(echo) != "0123456789" {
		t.Fatalf("echo: op=%d %q %v", op, echo, err)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("establish did not finish")
	}

	closed := make(chan string, 1)
	l.Close(func(id string) { closed <- id })
	l.Close(func(id string) { closed <- id }) // idempotent: second call is a no-op
	if id := <-closed; id != "raw" || len(closed) != 0 {
		t.Fatalf("closeClients called with %q, extra calls %d", id, len(closed))
	}
	select {
	case <-served:
	case <-time.After(waitFor):
		t.Fatal("Serve did not return after Close")
	}
}

func errorString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestWSS checks that a TLSConfig turns the listener into wss and that the
// protocol is reported accordingly; httptest supplies a 127.0.0.1 certificate.
func TestWSS(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ts := httptest.NewTLSServer(http.NotFoundHandler())
	cfg := ts.TLS.Clone()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	ts.Close()

	l := New(Options{ID: "wss", Address: "127.0.0.1:0", TLSConfig: cfg})
	if err := l.Init(quietLog); err != nil {
		t.Fatal(err)
	}
	if l.Protocol() != "wss" {
		t.Fatalf("Protocol() = %q, want wss", l.Protocol())
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		l.Serve(func(_ string, c net.Conn) error { _, err := io.Copy(c, c); return err })
	}()

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: waitFor}
	ws, _, err := d.Dial("wss://"+l.Address()+"/mqtt", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	if _, echo, err := ws.ReadMessage(); err != nil || string(echo) != "ping" {
		t.Fatalf("echo over wss: %q %v", echo, err)
	}
	l.Close(func(string) {}) // the echo handler is a straggler mochi never saw: Close must end it
	select {
	case <-served:
	case <-time.After(waitFor):
		t.Fatal("Serve did not return after Close")
	}
}

func TestInitAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	l := New(Options{ID: "ws", Address: busy.Addr().String()})
	if l.Address() != busy.Addr().String() {
		t.Fatalf("Address() before Init = %q, want configured %q", l.Address(), busy.Addr())
	}
	if err := l.Init(quietLog); err == nil {
		t.Fatal("Init on a busy address succeeded")
	}
	l.Close(func(string) {}) // must not panic on a never-bound listener

	srv := mqtt.New(&mqtt.Options{Logger: quietLog})
	if err := srv.AddListener(New(Options{ID: "ws", Address: busy.Addr().String()})); err == nil {
		t.Fatal("AddListener on a busy address succeeded")
	}
}

// mqttConnect returns a CONNECT packet: MQTT 3.1 ("MQIsdp", level 3) when
// v31, else 3.1.1 ("MQTT", level 4); clean session, keep alive 60.
func mqttConnect(v31 bool, clientID string) []byte {
	name, level := "MQTT", byte(4)
	if v31 {
		name, level = "MQIsdp", 3
	}
	var body []byte
	body = append(body, 0, byte(len(name)))
	body = append(body, name...)
	body = append(body, level, 0x02, 0, 60, 0, byte(len(clientID)))
	body = append(body, clientID...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

// TestSubprotocols dials a real broker offering each subprotocol list the
// clients in the field use, checks which one is echoed, and completes an
// MQTT CONNECT/CONNACK over the connection.
func TestSubprotocols(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	srv, l := startBroker(t, Options{ID: "ws", Address: "127.0.0.1:0"})
	defer srv.Close()

	for i, tc := range []struct {
		name  string
		offer []string
		want  string // echoed subprotocol; "" for none
		v31   bool   // speak MQTT 3.1, as mqttv3.1 clients do
	}{
		{"mqtt", []string{"mqtt"}, "mqtt", false},
		{"mqttv3.1 only", []string{"mqttv3.1"}, "mqttv3.1", true},
		{"both, mqttv3.1 first", []string{"mqttv3.1", "mqtt"}, "mqtt", false}, // the server's preference wins
		{"both, mqtt first", []string{"mqtt", "mqttv3.1"}, "mqtt", false},
		{"unknown plus mqttv3.1", []string{"wamp", "mqttv3.1"}, "mqttv3.1", true},
		{"none", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tc.offer, HandshakeTimeout: waitFor}
			ws, resp, err := d.Dial("ws://"+l.Address()+"/mqtt", nil)
			if err != nil {
				t.Fatalf("dial offering %q: %v", tc.offer, err)
			}
			defer ws.Close()
			if got := ws.Subprotocol(); got != tc.want {
				t.Fatalf("offering %q: echoed %q, want %q", tc.offer, got, tc.want)
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tc.want {
				t.Fatalf("offering %q: Sec-WebSocket-Protocol %q, want %q", tc.offer, got, tc.want)
			}
			if err := ws.WriteMessage(websocket.BinaryMessage, mqttConnect(tc.v31, fmt.Sprintf("sp%d", i))); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(waitFor))
			op, ack, err := ws.ReadMessage()
			if err != nil || op != websocket.BinaryMessage || !bytes.Equal(ack, []byte{0x20, 2, 0, 0}) {
				t.Fatalf("CONNACK: op=%d % x %v, want 20 02 00 00", op, ack, err)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the listener's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.FieldsFunc(s.b.String(), func(r rune) bool { return r == '\n' })
}

// TestOriginRefusalLogged checks that a refused Origin is answered 403 with
// a body naming the cause and logged at Warn with the origin, remote address
// and path, at most one line per second per listener, each line counting
// the refusals since the previous one.
func TestOriginRefusalLogged(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var logBuf syncBuffer
	l := New(Options{ID: "ws", Address: "127.0.0.1:0", AllowedOrigins: []string{"http://good.example"}})
	var clockMu sync.Mutex
	clock := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	l.refusals.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }
	if err := l.Init(slog.New(slog.NewTextHandler(&logBuf, nil))); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		l.Serve(func(_ string, c net.Conn) error { _, err := io.Copy(io.Discard, c); return err })
	}()
	defer func() {
		l.Close(func(string) {})
		<-served
	}()

	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor}
	refuse := func(t *testing.T) {
		t.Helper()
		_, resp, err := d.Dial("ws://"+l.Address()+"/mqtt", http.Header{"Origin": {"http://evil.example"}})
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("disallowed origin: err=%v resp=%v, want bad handshake 403", err, resp)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), "Origin not allowed") {
			t.Fatalf("403 body %q does not say the Origin is not allowed", body)
		}
	}
	wantLines := func(t *testing.T, n int) []string {
		t.Helper()
		// The line is written before the 403, so it is there once Dial returns.
		lines := refusalLines(logBuf.lines())
		if len(lines) != n {
			t.Fatalf("%d refusal log lines, want %d: %q", len(lines), n, logBuf.lines())
		}
		return lines
	}

	refuse(t)
	first := wantLines(t, 1)[0]
	for _, want := range []string{"level=WARN", "origin=http://evil.example", "remote=127.0.0.1:", "path=/mqtt", "listener=ws", "refusals=1"} {
		if !strings.Contains(first, want) {
			t.Fatalf("refusal line %q lacks %q", first, want)
		}
	}

	refuse(t) // within the second: counted, not logged
	refuse(t)
	wantLines(t, 1)

	advance(refusalLogEvery)
	refuse(t)
	if last := wantLines(t, 2)[1]; !strings.Contains(last, "refusals=3") {
		t.Fatalf("second refusal line %q should count 3 refusals", last)
	}

	for _, h := range []http.Header{{"Origin": {"http://good.example"}}, nil} { // allowed, and no Origin at all
		ws, _, err := d.Dial("ws://"+l.Address()+"/mqtt", h)
		if err != nil {
			t.Fatalf("origin %v refused: %v", h, err)
		}
		_ = ws.Close()
	}
	wantLines(t, 2)
}

// refusalLines picks the Origin refusal lines out of a text log.
func refusalLines(lines []string) []string {
	var out []string
	for _, s := range lines {
		if strings.Contains(s, `msg="websocket origin refused"`) {
			out = append(out, s)
		}
	}
	return out
}

// mqtt5Connect returns an MQTT 5 CONNECT: clean start, keep alive 60, no
// properties.
func mqtt5Connect(clientID string) []byte {
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, byte(len(clientID))}
	body = append(body, clientID...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

// TestDisconnectThenCloseFrame: a server DISCONNECT (here a session
// takeover, 0x8E) is followed by a WebSocket close frame, 1000, through the
// mochifix hook's linger; without it the client sees the connection drop
// (1006, abnormal closure).
func TestDisconnectThenCloseFrame(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quietLog})
	fix := new(mochifix.Hook)
	if err := srv.AddHook(fix, &mochifix.Options{Server: srv, KeepaliveMin: 1, KeepaliveMax: 3600, DisconnectLinger: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := New(Options{ID: "ws", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mochifix.Close(srv, []string{"ws"}) }()

	dial := func() *websocket.Conn {
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor}
		ws, _, err := d.Dial("ws://"+l.Address()+"/mqtt", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, mqtt5Connect("k")); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(waitFor))
		if _, ack, err := ws.ReadMessage(); err != nil || len(ack) < 4 || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("CONNACK % x %v", ack, err)
		}
		return ws
	}
	first := dial()
	defer first.Close()
	second := dial()
	defer second.Close()

	_, pk, err := first.ReadMessage()
	if err != nil || len(pk) < 3 || pk[0] != 0xE0 || pk[2] != 0x8E {
		t.Fatalf("want DISCONNECT 0x8E, got % x %v", pk, err)
	}
	_, _, err = first.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("after DISCONNECT: %v, want a close frame 1000", err)
	}
}
