package test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/config"
)

// connectTimeout is the mqtt.connect_timeout these tests run with, and
// closedWithin how long they wait for the server to close.
const (
	connectTimeout = 300 * time.Millisecond
	closedWithin   = 5 * time.Second
)

func withConnectTimeout(c *config.Config) { c.MQTT.ConnectTimeout = connectTimeout }

// partialConnect is the start of an MQTT 5 CONNECT: the fixed header
// promises 30 bytes, and only the protocol name follows.
var partialConnect = []byte{0x10, 30, 0, 4, 'M', 'Q', 'T', 'T'}

// waitServerClose reads from c until the server closes it, failing if that
// takes longer than closedWithin.
func waitServerClose(t *testing.T, c net.Conn, what string) {
	t.Helper()
	waitClosed(t, what, c.SetReadDeadline, func() error {
		_, err := io.Copy(io.Discard, c)
		return err
	})
}

// waitClosed sets a read deadline closedWithin away and drains until the
// server closes the connection, failing if the deadline comes first or the
// close comes long before the connect timeout.
func waitClosed(t *testing.T, what string, setDeadline func(time.Time) error, drain func() error) {
	t.Helper()
	start := time.Now()
	_ = setDeadline(start.Add(closedWithin))
	err := drain()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: still open after %v (mqtt.connect_timeout %v)", what, closedWithin, connectTimeout)
	}
	if d := time.Since(start); d < connectTimeout/2 {
		t.Errorf("%s: closed after %v, before the connect timeout %v", what, d, connectTimeout)
	}
}

// A TCP connection that sends nothing, or part of a CONNECT, is closed
// after mqtt.connect_timeout; a client that completes CONNECT is not.
func TestE2E_ConnectTimeoutTCP(t *testing.T) {
	b := StartBroker(t, withConnectTimeout)
	for _, tc := range []struct {
		name string
		send []byte
	}{{"silent", nil}, {"partial CONNECT", partialConnect}} {
		c, err := net.Dial("tcp", b.MQTTAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(tc.send); err != nil {
			t.Fatal(err)
		}
		waitServerClose(t, c, tc.name)
	}
	// A logged-in client keeps its connection past the connect timeout:
	// mochi replaced the deadline with the keepalive one at CONNECT.
	b.importAccounts("bob")
	alice := b.Connect("alice", "alice")
	alice.NoEvent(3 * connectTimeout)
	alice.Publish1("im/send/c2c/bob", Text("still here", Random()))
	alice.NextEvent()
}

// Over TLS: a connection that completes no handshake, or completes the
// handshake and sends no CONNECT, is closed after mqtt.connect_timeout.
func TestE2E_ConnectTimeoutTLS(t *testing.T) {
	b := StartBroker(t, withConnectTimeout, func(c *config.Config) {
		c.MQTT.TLS.Address = "127.0.0.1:0"
		c.MQTT.TLS.CertFile, c.MQTT.TLS.KeyFile = selfSignedCert(t)
	})
	addr := b.App.Broker.Addr(broker.ListenerTLS)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	waitServerClose(t, raw, "no handshake")

	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed test certificate
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := tc.Write(partialConnect); err != nil {
		t.Fatal(err)
	}
	waitServerClose(t, tc, "TLS, partial CONNECT")
}

// Over WebSocket: an upgraded connection that sends no CONNECT, or part of
// one, is closed after mqtt.connect_timeout.
func TestE2E_ConnectTimeoutWebSocket(t *testing.T) {
	b := StartBroker(t, withConnectTimeout)
	for _, tc := range []struct {
		name string
		send []byte
	}{{"upgraded, silent", nil}, {"upgraded, partial CONNECT", partialConnect}} {
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}}
		ws, resp, err := d.Dial("ws://"+b.WSAddr()+"/mqtt", http.Header{})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		defer ws.Close()
		if tc.send != nil {
			if err := ws.WriteMessage(websocket.BinaryMessage, tc.send); err != nil {
				t.Fatal(err)
			}
		}
		waitClosed(t, tc.name, ws.SetReadDeadline, func() error {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return err
				}
			}
		})
	}
}
