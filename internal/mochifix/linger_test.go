package mochifix_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/imbroker/imbroker/internal/mochifix"
	"github.com/imbroker/imbroker/internal/mqtttest"
)

// A client that exceeds the server's Receive Maximum while still writing
// (its publishes unread in the server's socket) can still acknowledge what
// it reads and then read the DISCONNECT 0x93 after the server closed the
// connection: the socket lingers (linger.go). mochi alone closes it with
// unread input, which resets it, and the client's next write fails (what
// the Paho suite's test_flow_control2 runs into).
func TestMochifix_DisconnectIsReadableAfterClose(t *testing.T) {
	hs := httptest.NewTLSServer(http.NotFoundHandler()) // a certificate for 127.0.0.1
	serverTLS := hs.TLS.Clone()
	roots := x509.NewCertPool()
	roots.AddCert(hs.Certificate())
	hs.Close()
	for _, tc := range []struct {
		name   string
		linger time.Duration
		tls    bool
	}{{"linger", 2 * time.Second, false}, {"linger over TLS", 2 * time.Second, true}, {"none", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			o := serverOpts{
				caps: func(c *mqtt.Capabilities) { c.ReceiveMaximum = 2 },
				fix:  func(o *mochifix.Options) { o.DisconnectLinger = tc.linger },
			}
			if tc.tls {
				o.tls = serverTLS
			}
			ts := startServer(t, o)
			var c *mqtttest.Conn
			if tc.tls {
				conn, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: roots})
				must(t, err)
				c = mqtttest.Wrap(t, conn, false)
			} else {
				c = mqtttest.DialPaused(t, ts.addr, false)
			}
			exceedReceiveMaximum(t, ts, c, tc.linger > 0)
		})
	}
}

// exceedReceiveMaximum runs the scenario on a paused connection; lingering
// says whether the server lets the client read the DISCONNECT.
func exceedReceiveMaximum(t *testing.T, ts *testServer, c *mqtttest.Conn, lingering bool) {
	t.Helper()
	c.Send(connect("fc"))
	mqtttest.ExceedReceiveMaximum(t, c, "a/b", func() {
		waitFor(t, "mochi closing the client", func() bool {
			cl, ok := ts.srv.Clients.Get("fc")
			return !ok || cl.Closed()
		})
	}, lingering)
}
