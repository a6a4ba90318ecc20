package netlisten

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// MQTTOptions configure an MQTT listener over TCP or TLS.
type MQTTOptions struct {
	ID             string        // listener id reported to mochi, e.g. "tcp"
	Address        string        // bind address, e.g. ":1883" or "127.0.0.1:0"
	TLSConfig      *tls.Config   // non-nil serves MQTT over TLS
	ConnectTimeout time.Duration // see Options.ConnectTimeout; 0 = none
	// Log, when set, is used instead of the logger mochi passes to Init:
	// the broker filters mochi's below Error, and accept failures are Warn.
	Log *slog.Logger
	// Ended, when set, is told how each connection's session ended (the
	// error mochi's EstablishConnection returned; nil for a clean end).
	Ended func(remote string, err error)
	// Sessions, when set, is mochi's Listeners.ClientsWg. Each accepted
	// connection is added to it before Close can return, so the first Add
	// is ordered before mochi's CloseAll waits on it: mochi's attachClient
	// adds only once the session goroutine runs, which may be after the
	// Wait began (a WaitGroup misuse the race detector reports; mochi
	// v2.7.9's own listeners have it too).
	Sessions *sync.WaitGroup
}

// MQTT is mochi's listeners.TCP rebuilt on Listener. It replaces mochi's
// (v2.7.9, no upstream issue), whose Serve returns on the first Accept
// error of any kind, "too many open files" included, leaving MQTT dead
// until a restart, and which logs every ended connection at Warn with an
// empty message. Here a connection that ends with an error is logged at
// Debug only: the broker logs its own refusals.
type MQTT struct {
	opts MQTTOptions
	log  *slog.Logger

	mu     sync.Mutex
	ln     *Listener
	closed bool
}

var _ listeners.Listener = (*MQTT)(nil)

// NewMQTT returns an unbound listener; Init binds it.
func NewMQTT(o MQTTOptions) *MQTT { return &MQTT{opts: o} }

// ID returns the listener id.
func (l *MQTT) ID() string { return l.opts.ID }

// Protocol returns "tcp", or "tls" for MQTT over TLS.
func (l *MQTT) Protocol() string {
	if l.opts.TLSConfig != nil {
		return "tls"
	}
	return "tcp"
}

// Address returns the bound address after Init, else the configured one.
func (l *MQTT) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.opts.Address
}

// Init binds the address, so bind errors surface from mochi's AddListener.
func (l *MQTT) Init(log *slog.Logger) error {
	if l.opts.Log != nil {
		log = l.opts.Log
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	raw, err := net.Listen("tcp", l.opts.Address)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil || l.closed {
		_ = raw.Close()
		return errors.New("netlisten: Init called twice or after Close")
	}
	l.log = log
	l.ln = Wrap(raw, Options{Name: l.opts.ID, Log: log, ConnectTimeout: l.opts.ConnectTimeout})
	return nil
}

// Serve accepts until Close, handing each connection to establish on its
// own goroutine (mochi's attachClient runs the whole session there).
func (l *MQTT) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	ln := l.ln
	l.mu.Unlock()
	if ln == nil {
		return
	}
	var accept net.Listener = ln
	if l.opts.TLSConfig != nil {
		// The handshake runs on the connection's first Read, inside the
		// connect deadline Accept set on the raw connection.
		accept = tls.NewListener(ln, l.opts.TLSConfig)
	}
	for {
		c, err := accept.Accept()
		if err != nil {
			return // closed, or failed for good (ln.Err, logged there)
		}
		if wg := l.opts.Sessions; wg != nil {
			l.mu.Lock()
			if l.closed {
				l.mu.Unlock()
				_ = c.Close()
				return
			}
			wg.Add(1)
			l.mu.Unlock()
		}
		go l.serveConn(establish, c)
	}
}

// serveConn is the connection's goroutine, on whose stack mochi's read loop
// rests for the connection's life: its own frame is kept small (the logging
// is in ended), since the runtime starts new goroutines with the average
// stack in use at the last GC, which these idle frames dominate.
func (l *MQTT) serveConn(establish listeners.EstablishFn, c net.Conn) {
	l.ended(c, establish(l.opts.ID, c))
}

//go:noinline
func (l *MQTT) ended(c net.Conn, err error) {
	if wg := l.opts.Sessions; wg != nil {
		defer wg.Done()
	}
	if err != nil {
		l.log.Debug("mqtt connection ended", "listener", l.opts.ID, "remote", c.RemoteAddr().String(), "error", err)
	}
	if l.opts.Ended != nil {
		l.opts.Ended(c.RemoteAddr().String(), err)
	}
}

// Close stops accepting and lets mochi disconnect the listener's clients
// through closeClients. It is idempotent.
func (l *MQTT) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	ln := l.ln
	l.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	if closeClients != nil {
		closeClients(l.opts.ID)
	}
}

// Err reports why the listener stopped accepting for good, or nil.
func (l *MQTT) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Err()
}
