package mochifix

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// lingerAfterDisconnect lets a client read the DISCONNECT just written to it
// (OnPacketSent) before its connection goes.
//
// mochi v2.7.9, no upstream issue: DisconnectClient writes DISCONNECT and
// closes the socket at once (Client.Stop). Closing a TCP socket with unread
// input (the client's publishes still in flight, e.g. after a Receive
// Maximum violation) makes the kernel send a reset instead of a FIN, and the
// reset discards the DISCONNECT the client has not read yet: it sees
// "connection reset" and never learns the reason code. mochi's
// PassiveClientDisconnect would leave the connection open for as long as the
// client likes instead (its own comment calls that a spec violation).
//
// So, still inside the write, the socket is duplicated and its write side
// shut down: TLS sends close_notify, WebSocket a close frame, TCP a FIN after
// the DISCONNECT. mochi then closes its descriptor as usual: its read loop
// ends and nothing waits, neither a kick, a takeover, shutdown, nor a writer
// holding the client's lock. The duplicate keeps the kernel socket open and
// discards whatever the client still sends, until the client closes its side
// or Options.DisconnectLinger passes, then closes: no reset, the client reads
// the DISCONNECT. The drain runs on its own goroutine, which Stop waits for.
func (h *Hook) lingerAfterDisconnect(cl *mqtt.Client) {
	if cl.Net.Conn == nil {
		return
	}
	if h.opts.DisconnectLinger <= 0 {
		closeWrite(cl.Net.Conn)
		return
	}
	f := dupSocket(cl.Net.Conn)
	closeWrite(cl.Net.Conn)
	if f == nil {
		return // no descriptor to keep (another platform, or already closed): a plain close
	}
	if err := f.SetReadDeadline(time.Now().Add(h.opts.DisconnectLinger)); err != nil || !h.lingers.add() {
		_ = f.Close() // and after Stop: nothing may outlive the server
		return
	}
	go func() {
		defer h.lingers.wg.Done()
		_, _ = io.Copy(io.Discard, f) // until the client's FIN, the deadline or an error
		_ = f.Close()
	}()
}

// netConner is a connection layered on another: *tls.Conn, and the
// WebSocket connections of internal/wslistener.
type netConner interface{ NetConn() net.Conn }

// closeWrite shuts down the write side of every layer of c, outermost first:
// a TLS close_notify or WebSocket close frame, then the TCP FIN.
func closeWrite(c net.Conn) {
	for c != nil {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		nc, ok := c.(netConner)
		if !ok {
			return
		}
		c = nc.NetConn()
	}
}

// dupSocket returns a duplicate of the TCP socket under c, or nil.
func dupSocket(c net.Conn) *os.File {
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			f, err := tc.File() // a pollable duplicate: deadlines work on it
			if err != nil {
				return nil
			}
			return f
		}
		nc, ok := c.(netConner)
		if !ok {
			return nil
		}
		c = nc.NetConn()
	}
}

// lingering counts the connections draining after a DISCONNECT; once
// stopped (Hook.Stop) no more are started, so the wait is bounded.
type lingering struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

func (l *lingering) add() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	l.wg.Add(1)
	return true
}

// stop waits for the drains running, each at most Options.DisconnectLinger.
func (l *lingering) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.wg.Wait()
}
