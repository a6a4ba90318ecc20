package wslistener

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"go.uber.org/goleak"
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
