// Package netlisten holds what every imbroker listener (MQTT over TCP, TLS
// and WebSocket, and HTTP) needs from its accept loop: it keeps accepting
// after temporary errors such as "too many open files", bounds how long a
// connection may take to log in, and reports a listener that stopped for
// good so /readyz can say so. It also raises the process's open-file limit
// (rlimit_linux.go).
package netlisten

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Backoff bounds between retries of a failed Accept, as net/http's
// Server.Serve: 5ms, doubling, at most 1s; a successful Accept resets it.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// logEvery bounds the accept-error log lines per listener.
const logEvery = 10 * time.Second

// Options configure Wrap.
type Options struct {
	Name string       // listener name for logs, e.g. "tcp"
	Log  *slog.Logger // accept errors, rate-limited; nil discards
	// ConnectTimeout, when positive, is set as the deadline of every accepted
	// connection: mochi replaces it once CONNECT is read (with the
	// keepalive), so a connection that never completes CONNECT is closed
	// when it passes (mqtt.connect_timeout).
	ConnectTimeout time.Duration
}

// Listener is a net.Listener whose Accept never returns a temporary error:
// it waits and retries instead, so an accept loop that gives up on any error
// (mochi v2.7.9 listeners.TCP and listeners.Net, no upstream issue) keeps
// serving once descriptors are free again.
type Listener struct {
	net.Listener
	opts Options
	done chan struct{} // closed by Close: a retry wait ends at once

	mu       sync.Mutex
	closed   bool
	failed   error     // the non-temporary error that stopped Accept, if any
	lastLog  time.Time // when an accept error was last logged
	retries  int       // failed Accepts since that line
	closeErr error
}

// Wrap returns ln with retrying Accept.
func Wrap(ln net.Listener, o Options) *Listener {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: ln, opts: o, done: make(chan struct{})}
}

// Accept returns the next connection. Temporary errors (out of
// descriptors or buffers, an aborted connection) are retried after a
// backoff and logged at most every logEvery; a closed listener returns
// net.ErrClosed; any other error is returned and recorded in Err.
func (l *Listener) Accept() (net.Conn, error) {
	delay := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if l.opts.ConnectTimeout > 0 {
				_ = c.SetDeadline(time.Now().Add(l.opts.ConnectTimeout))
			}
			return c, nil
		}
		if l.isClosed() || errors.Is(err, net.ErrClosed) {
			return nil, net.ErrClosed
		}
		if !Temporary(err) {
			l.mu.Lock()
			l.failed = err
			l.mu.Unlock()
			l.opts.Log.Error("listener stopped accepting", "listener", l.opts.Name, "error", err)
			return nil, err
		}
		delay = min(max(2*delay, minBackoff), maxBackoff)
		l.logRetry(err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// logRetry logs the first failed Accept at once and later ones at most
// every logEvery, each line counting the failures since the previous one.
func (l *Listener) logRetry(err error, delay time.Duration) {
	l.mu.Lock()
	l.retries++
	now := time.Now()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < logEvery {
		l.mu.Unlock()
		return
	}
	n := l.retries
	l.lastLog, l.retries = now, 0
	l.mu.Unlock()
	l.opts.Log.Warn("accept failed; retrying", "listener", l.opts.Name, "error", err, "retry_in", delay, "failures", n,
		"hint", "out of file descriptors? see mqtt.max_clients and the open-file limit (docs/operations.md)")
}

// Close stops the listener; an Accept waiting to retry returns at once.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
		l.closeErr = l.Listener.Close()
	}
	return l.closeErr
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Err reports why the listener stopped accepting for good, or nil while it
// accepts (and after a deliberate Close).
func (l *Listener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Temporary reports whether an Accept error may go away by itself: the
// process or system is out of descriptors or memory, or one pending
// connection failed before it was accepted. These are the errno values
// syscall.Errno.Temporary names, plus the ones Linux accept(2) documents as
// "network errors already pending" that must be treated like EAGAIN.
func Temporary(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
			syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN,
			syscall.EPROTO, syscall.EPERM, syscall.ENETDOWN, syscall.ENOPROTOOPT,
			syscall.EHOSTDOWN, syscall.ENONET, syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH:
			return true
		}
		return false
	}
	return errors.Is(err, os.ErrDeadlineExceeded)
}
