// Package wslistener is a WebSocket listener for the mochi-mqtt broker.
//
// It replaces mochi's listeners.Websocket, which binds only inside Serve (so
// bind errors are merely logged and an ephemeral port such as 127.0.0.1:0
// cannot be reported), and which accepts any path and any Origin.
//
// The subprotocols accepted are "mqtt" (MQTT 3.1.1 and 5, what MQTT.js and
// Paho send) and "mqttv3.1" (what some browser clients and MQTT 3.1 tools
// send); when a client offers both, "mqtt" is echoed. A client offering
// neither still connects, with no subprotocol in the reply. A refused Origin
// gets 403 with a short text body and a Warn log line (at most one a second
// per listener, counting the refusals in between), or is reported to
// Options.OriginRefused, which the broker uses to log and count it with its
// other refusals.
package wslistener

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/imbroker/imbroker/internal/netlisten"
)

// Options configures a Listener; it mirrors listeners.Config plus the
// path/origin restrictions mochi's own WebSocket listener lacks.
type Options struct {
	ID                string        // listener id reported to mochi, e.g. "ws"
	Address           string        // bind address, e.g. ":8083" or "127.0.0.1:0"
	Path              string        // only this path upgrades, others get 404; empty means "/mqtt"
	TLSConfig         *tls.Config   // non-nil serves wss
	AllowedOrigins    []string      // empty allows all; else exact Origin match (no Origin header is allowed, e.g. native clients)
	ReadHeaderTimeout time.Duration // bounds slow-loris handshakes; 0 means 10s
	// ConnectTimeout, when positive, bounds the time from the upgrade to a
	// complete CONNECT (mqtt.connect_timeout): it is the upgraded
	// connection's deadline until mochi sets the keepalive one.
	ConnectTimeout time.Duration
	// OriginRefused, when set, is told of each refused Origin instead of
	// the listener logging it (the broker logs and counts refusals).
	OriginRefused func(origin, remote string)
	// Ended, when set, is told how each upgraded connection's session
	// ended (the error mochi's EstablishConnection returned, or nil).
	Ended func(remote string, err error)
	// Log, when set, is used instead of the logger mochi passes to Init
	// (which imbroker filters below Error).
	Log *slog.Logger
}

// ErrInvalidMessage is returned by a connection's Read when the peer sends a
// non-binary message, because MQTT over WebSocket must use binary frames.
var ErrInvalidMessage = errors.New("wslistener: websocket message type not binary")

// Listener serves MQTT over WebSocket; it implements listeners.Listener so it
// can be passed to mqtt.Server.AddListener.
type Listener struct {
	opts     Options
	upgrader websocket.Upgrader
	log      *slog.Logger

	mu        sync.Mutex
	ln        net.Listener
	accept    *netlisten.Listener // ln, or under ln when TLS: keeps accepting after EMFILE
	srv       *http.Server
	establish listeners.EstablishFn
	conns     map[*websocket.Conn]struct{} // upgraded conns, closed on Close in case mochi never saw them
	closed    bool
	handlers  sync.WaitGroup // in-flight handlers, so Close leaves no goroutines behind
	closeOnce sync.Once

	refusals refusalLog
}

// subprotocols are the WebSocket subprotocols accepted, in order of
// preference: gorilla echoes the first of these the client offers,
// whatever the client's own order.
var subprotocols = []string{"mqtt", "mqttv3.1"}

// originRefusedBody is the 403 body for a refused Origin. Browsers do not
// show it to scripts, but curl and server logs of proxies do.
const originRefusedBody = "websocket: Origin not allowed (see mqtt.ws_allowed_origins)"

// refusalLogEvery bounds the Origin refusal log lines per listener.
const refusalLogEvery = time.Second

// refusalLog rate-limits the Origin refusal log lines: the first refusal is
// logged at once, later ones at most every refusalLogEvery, each line
// counting the refusals since the previous line (itself included). A count
// left over when a flood stops is reported with the next refusal.
type refusalLog struct {
	mu      sync.Mutex
	now     func() time.Time // time.Now; tests replace it
	last    time.Time        // when the last line was logged; zero before the first
	pending int              // refusals since the last line, not yet reported
}

// note counts one refusal and returns how many refusals the log line to
// write now covers, or 0 when no line is due.
func (r *refusalLog) note() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending++
	now := r.now()
	if !r.last.IsZero() && now.Sub(r.last) < refusalLogEvery {
		return 0
	}
	n := r.pending
	r.last, r.pending = now, 0
	return n
}

var _ listeners.Listener = (*Listener)(nil)

// New returns an unbound Listener; binding happens in Init so that mochi's
// AddListener reports bind errors to the caller.
func New(opts Options) *Listener {
	if opts.Path == "" {
		opts.Path = "/mqtt"
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	l := &Listener{opts: opts, conns: map[*websocket.Conn]struct{}{}}
	l.refusals.now = time.Now
	l.upgrader = websocket.Upgrader{Subprotocols: subprotocols, CheckOrigin: l.checkOrigin, Error: l.handshakeError}
	return l
}

// ID returns the listener id, which mochi uses to attribute clients.
func (l *Listener) ID() string { return l.opts.ID }

// Address returns the bound address after Init (so ":0" resolves to the real
// port) and the configured address before it.
func (l *Listener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.opts.Address
}

// Path returns the path that upgrades, e.g. "/mqtt".
func (l *Listener) Path() string { return l.opts.Path }

// URL returns the address clients dial, e.g. "ws://127.0.0.1:8083/mqtt";
// it is meaningful after Init, when Address is the bound one.
func (l *Listener) URL() string { return l.Protocol() + "://" + l.Address() + l.opts.Path }

// Protocol returns "wss" when TLS is configured and "ws" otherwise, for
// mochi's logs and $SYS info.
func (l *Listener) Protocol() string {
	if l.opts.TLSConfig != nil {
		return "wss"
	}
	return "ws"
}

// Init binds the address so that bind errors surface from AddListener.
func (l *Listener) Init(log *slog.Logger) error {
	if l.opts.Log != nil {
		log = l.opts.Log
	}
	if log == nil {
		log = slog.Default()
	}
	raw, err := net.Listen("tcp", l.opts.Address)
	if err != nil {
		return err
	}
	// net/http's Serve also retries temporary accept errors, but logs each
	// one; the wrapper waits and logs rate-limited, like the MQTT listeners.
	accept := netlisten.Wrap(raw, netlisten.Options{Name: l.opts.ID, Log: log})
	var ln net.Listener = accept
	if l.opts.TLSConfig != nil {
		cfg := l.opts.TLSConfig.Clone()
		cfg.NextProtos = []string{"http/1.1"} // WebSocket upgrades need HTTP/1.1; never negotiate h2
		ln = tls.NewListener(ln, cfg)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil || l.closed {
		_ = ln.Close()
		return errors.New("wslistener: Init called twice or after Close")
	}
	l.log, l.ln, l.accept = log, ln, accept
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(l.handle),
		ReadHeaderTimeout: l.opts.ReadHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return nil
}

// Serve accepts connections until Close and hands each upgraded WebSocket to
// establish; mochi runs it in its own goroutine.
func (l *Listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	srv, ln := l.srv, l.ln
	l.establish = establish
	l.mu.Unlock()
	if srv == nil {
		return
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		l.log.Error("websocket listener stopped", "listener", l.opts.ID, "error", err)
	}
}

// Err reports why the listener stopped accepting for good, or nil.
func (l *Listener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.accept == nil {
		return nil
	}
	return l.accept.Err()
}

// Close stops accepting, lets mochi disconnect its clients via closeClients,
// then closes any stragglers and waits for all handlers. It is idempotent.
func (l *Listener) Close(closeClients listeners.CloseFn) {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		srv, ln := l.srv, l.ln
		l.mu.Unlock()
		if srv != nil {
			_ = srv.Close() // upgraded conns are hijacked, so this only stops accept and handshakes
			_ = ln.Close()  // in case Serve never ran
		}
		if closeClients != nil {
			closeClients(l.opts.ID)
		}
		l.mu.Lock()
		for c := range l.conns {
			_ = c.Close() // upgraded just before Close; mochi may not know them yet
		}
		l.mu.Unlock()
		l.handlers.Wait()
	})
}

// checkOrigin allows requests without Origin (native clients), every Origin
// when none is configured, and else only the configured ones; each refusal
// is counted and logged through refusals.
func (l *Listener) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(l.opts.AllowedOrigins) == 0 || slices.Contains(l.opts.AllowedOrigins, origin) {
		return true
	}
	if l.opts.OriginRefused != nil {
		l.opts.OriginRefused(origin, r.RemoteAddr)
		return false
	}
	if n := l.refusals.note(); n > 0 {
		l.log.Warn("websocket origin refused", "listener", l.opts.ID, "origin", origin,
			"remote", r.RemoteAddr, "path", r.URL.Path, "refusals", n,
			"hint", "add the origin to mqtt.ws_allowed_origins")
	}
	return false
}

// handshakeError answers a failed handshake as gorilla would, except that a
// refused Origin gets a body saying so rather than the bare "Forbidden".
func (l *Listener) handshakeError(w http.ResponseWriter, _ *http.Request, status int, _ error) {
	w.Header().Set("Sec-Websocket-Version", "13")
	msg := http.StatusText(status)
	if status == http.StatusForbidden { // gorilla's only 403 is CheckOrigin's

		msg = originRefusedBody
	}
	http.Error(w, msg, status)
}

func (l *Listener) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != l.opts.Path {
		http.NotFound(w, r)
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	l.handlers.Add(1)
	l.mu.Unlock()
	defer l.handlers.Done()

	c, err := l.upgrader.Upgrade(w, r, nil) // replies with the error status itself
	if err != nil {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return
	}
	l.conns[c] = struct{}{}
	establish := l.establish
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		_ = c.Close()
	}()
	wc := &wsConn{ws: c}
	if l.opts.ConnectTimeout > 0 {
		_ = wc.SetDeadline(time.Now().Add(l.opts.ConnectTimeout)) // mochi replaces it after CONNECT
	}
	err = establish(l.opts.ID, wc)
	if err != nil {
		l.log.Debug("websocket client ended", "listener", l.opts.ID, "remote", c.RemoteAddr().String(), "error", err)
	}
	if l.opts.Ended != nil {
		l.opts.Ended(c.RemoteAddr().String(), err)
	}
}

// wsConn adapts a WebSocket to net.Conn: reads stream across binary message
// boundaries, each Write is one binary message, deadlines reach the socket.
type wsConn struct {
	ws  *websocket.Conn
	r   io.Reader  // current message, nil between messages; used only by the single reader
	wmu sync.Mutex // gorilla allows only one concurrent writer

	// gorilla's SetWriteDeadline is an unsynchronised field write read by
	// every frame, but mochi sets deadlines from its read loop while writing
	// elsewhere, so the deadline lives here and is handed over under wmu.
	dmu sync.Mutex
	wdl time.Time
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, ErrInvalidMessage
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil // message exhausted; an MQTT packet may continue in the next one
			if n == 0 && len(p) > 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.dmu.Lock() // wmu -> dmu; SetWriteDeadline takes dmu alone
	_ = c.ws.SetWriteDeadline(c.wdl)
	c.dmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error         { return c.ws.Close() }
func (c *wsConn) NetConn() net.Conn    { return c.ws.UnderlyingConn() }
func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// closeFrameWait bounds the write of a close frame.
const closeFrameWait = time.Second

// CloseWrite sends a close frame (1000, normal closure): the MQTT
// DISCONNECT before it says why. The broker calls it after a DISCONNECT
// (internal/mochifix), before closing; the TCP (or TLS) layer below is shut
// down by the caller through NetConn.
func (c *wsConn) CloseWrite() error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	return c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeFrameWait))
}

func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	c.wdl = t
	c.dmu.Unlock()
	return c.ws.UnderlyingConn().SetWriteDeadline(t) // also bounds a Write already in flight
}
