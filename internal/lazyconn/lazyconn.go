// Package lazyconn wraps the net.Conn a listener hands mochi so that an
// idle MQTT connection holds no buffers, and a burst of deliveries to one
// client never waits on its socket while mochi's outbound queue fills.
//
// Reads: mochi reads through a bufio.Reader sized by
// ClientNetReadBufferSize, allocated for every connection and held for its
// life. The broker sets that small; a Conn reads straight into the
// caller's buffer until a read fills it (the client is streaming), then
// reads through a pooled buffer that goes back to the pool once a read
// returns less than its size. An idle connection blocks in Read holding
// nothing of its own.
//
// Writes: mochi's WriteLoop takes one packet at a time from the client's
// outbound channel and writes it. When the socket is slow the loop waits,
// the channel fills, and mochi drops QoS 0 copies (the reason that channel
// used to have 2,048 slots: 16 KB per connection, idle or not). Write here
// copies into a pending buffer and returns; one flusher goroutine, started
// on demand and gone once the buffer drains, writes it to the socket. When
// nothing is pending, Write first writes to a TCP socket at once without
// blocking (writenow_unix.go) and queues only what the socket did not take:
// an answer goes out on the goroutine that wrote it, as with mochi's own
// connection. Starting a flusher for every small write instead measurably
// reordered the broker's work across connections: with the Paho MQTT 5
// suite's test_subscribe_options pattern (client b SUBSCRIBEs, client a
// PUBLISHes at once), b missed a's message in half the rounds, against one
// in ten for a synchronous write. Only
// past WriteMax pending bytes does Write wait, so a stalled client still
// pushes back (and loses QoS 0 copies, as before), after WriteMax bytes
// rather than after a number of packets.
package lazyconn

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/imbroker/imbroker/internal/backpressure"
)

// Options size a Conn's buffers.
type Options struct {
	// ReadBuffer is the pooled read buffer's size, used while a client
	// streams (mqtt.read_buffer).
	ReadBuffer int
	// WriteMax is how many bytes Write accepts ahead of the socket before
	// it waits (mqtt.write_buffer_max).
	WriteMax int
	// CloseFlush bounds how long Close lets pending bytes drain (a
	// DISCONNECT with its reason code, say) before the socket is closed
	// (mqtt.close_flush_timeout).
	CloseFlush time.Duration
}

// Conn is a net.Conn with lazily held read and write buffers. Read is
// used by one goroutine (mochi's read loop), Write by any.
type Conn struct {
	net.Conn
	o     Options
	rpool *sync.Pool

	// read side, owned by the reading goroutine
	rbuf   *[]byte // pooled; nil while not streaming
	r, w   int     // unread bytes are (*rbuf)[r:w]
	stream bool    // the last socket read filled its buffer: more is likely waiting

	// raw is the TCP socket's, for the first write of a burst
	// (writeNow); nil for TLS and WebSocket connections.
	raw syscall.RawConn

	mu       sync.Mutex
	cond     sync.Cond // signalled when pending shrinks, the flusher ends or a hold is released
	pending  []byte    // accepted by Write, not yet written
	flushing bool      // a flusher goroutine runs
	held     int       // Holds not yet released: writes queue in pending (see Hold)
	werr     error     // sticky: the socket write failed
	closed   bool

	backlog backpressure.Backlog // copies mochi queued for this client (backpressure.Gate)
}

var _ backpressure.Holder = (*Conn)(nil)

// Backlog is the count of copies mochi queued for this connection.
func (c *Conn) Backlog() *backpressure.Backlog { return &c.backlog }

// Full reports whether writes wait on the socket (WriteMax bytes pending).
func (c *Conn) Full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) >= c.o.WriteMax
}

// pools holds one read-buffer pool per size, so that Conns with the same
// Options share buffers.
var pools sync.Map // int -> *sync.Pool

func poolFor(size int) *sync.Pool {
	if p, ok := pools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool)
}

// New wraps c.
func New(c net.Conn, o Options) *Conn {
	if o.ReadBuffer < 512 {
		o.ReadBuffer = 512
	}
	if o.WriteMax < 1 {
		o.WriteMax = 1
	}
	lc := &Conn{Conn: c, o: o, rpool: poolFor(o.ReadBuffer)}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			lc.raw = rc
		}
	}
	lc.cond.L = &lc.mu
	return lc
}

// Read fills p from the pooled buffer while there is one, else from the
// socket.
func (c *Conn) Read(p []byte) (int, error) {
	if c.rbuf != nil && c.r < c.w {
		n := copy(p, (*c.rbuf)[c.r:c.w])
		c.r += n
		c.releaseRead()
		return n, nil
	}
	if !c.stream || len(p) >= c.o.ReadBuffer {
		n, err := c.Conn.Read(p)
		c.stream = n == len(p) && len(p) > 0
		return n, err
	}
	if c.rbuf == nil {
		c.rbuf = c.rpool.Get().(*[]byte)
	}
	buf := *c.rbuf
	m, err := c.Conn.Read(buf)
	c.stream = m == len(buf)
	c.r, c.w = 0, m
	n := copy(p, buf[:m])
	c.r = n
	c.releaseRead()
	return n, err
}

// releaseRead returns the read buffer to the pool once it is drained and
// the client has stopped streaming.
func (c *Conn) releaseRead() {
	if c.r < c.w || c.stream {
		return
	}
	c.rpool.Put(c.rbuf)
	c.rbuf, c.r, c.w = nil, 0, 0
}

// ErrFull is TryWrite's answer when WriteMax bytes are already pending.
var ErrFull = errors.New("lazyconn: write buffer full")

// Write queues p for the flusher; it waits only while WriteMax bytes are
// already pending. An earlier socket write error is returned here.
func (c *Conn) Write(p []byte) (int, error) { return c.write(p, true) }

// TryWrite is Write for a copy that may be lost, such as a live QoS 0
// delivery written by a fan-out that must not wait on one reader: with
// WriteMax bytes already pending it takes nothing and returns ErrFull at
// once, as mochi drops a QoS 0 copy at a full outbound queue.
func (c *Conn) TryWrite(p []byte) (int, error) { return c.write(p, false) }

func (c *Conn) write(p []byte, wait bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.werr == nil && !c.closed && len(c.pending) >= c.o.WriteMax {
		if !wait {
			return 0, ErrFull
		}
		c.startFlush() // a Hold never keeps a full buffer from draining
		c.cond.Wait()
	}
	if c.werr != nil {
		return 0, c.werr
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	size := len(p)
	if c.held > 0 && !c.flushing {
		if c.pending == nil {
			c.pending = (*holdBufs.Get().(*[]byte))[:0]
		}
		c.pending = append(c.pending, p...) // written at Release
		if len(c.pending) >= c.o.WriteMax/2 {
			c.startFlush() // a burst under a Hold does not wait for its end
		}
		return size, nil
	}
	if !c.flushing && c.raw != nil {
		n, err := writeNow(c.raw, p)
		if err != nil {
			c.werr = err
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
		p = p[n:] // the socket's buffer is full: the flusher waits for room
	}
	c.pending = append(c.pending, p...)
	c.startFlush()
	return size, nil
}

// startFlush starts the flusher unless it runs; c.mu is held.
func (c *Conn) startFlush() {
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
}

// Hold makes the writes that follow queue up instead of each being written
// at once, until Release writes them together: one write syscall for
// several packets a goroutine has ready together (the PUBACKs of sends that
// one group commit made durable). Writes from other goroutines meanwhile
// (mochi's WriteLoop) queue behind them in order. A Hold must be released
// soon, by the goroutine that took it, and never across a wait: the bytes
// queued meanwhile wait for it. Past WriteMax pending bytes a writer starts
// the flusher anyway.
func (c *Conn) Hold() {
	c.mu.Lock()
	c.held++
	c.mu.Unlock()
}

// holdBufs are the buffers writes under a Hold go to: a Release that
// writes them out gives them back, so a busy connection's bursts do not
// allocate (and an idle one keeps none).
var holdBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxHoldBuf is the largest buffer given back to holdBufs.
const maxHoldBuf = 64 << 10

// Release ends a Hold: what was queued meanwhile is written now, as much
// as the socket takes without waiting, the rest by the flusher.
func (c *Conn) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held--
	if c.held > 0 || c.flushing || len(c.pending) == 0 {
		return
	}
	defer c.cond.Broadcast() // CloseWrite waits for bytes queued under a Hold
	if c.werr == nil && !c.closed && c.raw != nil {
		n, err := writeNow(c.raw, c.pending)
		switch {
		case err != nil:
			c.werr = err
		case n == len(c.pending):
			if cap(c.pending) <= maxHoldBuf {
				b := c.pending[:0]
				holdBufs.Put(&b)
			}
			c.pending = nil // an idle connection keeps no write buffer
			return
		default:
			c.pending = append(c.pending[:0], c.pending[n:]...)
		}
	}
	if c.werr != nil {
		c.pending = nil
		if c.closed {
			_ = c.Conn.Close() // Close left the socket to this Release
		}
		return
	}
	c.startFlush() // also after Close: the flusher closes the socket once done
}

// flush writes pending bytes until none are left, then ends. When Close
// came meanwhile it closes the socket once done.
func (c *Conn) flush() {
	c.mu.Lock()
	for len(c.pending) > 0 && c.werr == nil {
		buf := c.pending
		c.pending = nil
		c.mu.Unlock()
		_, err := c.Conn.Write(buf)
		c.mu.Lock()
		if err != nil {
			c.werr = err
		}
		c.cond.Broadcast()
	}
	c.pending = nil // an idle connection keeps no write buffer
	if c.closed {
		_ = c.Conn.Close() // Close left the socket to this flusher
	}
	c.flushing = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Close stops accepting writes and unblocks the reader at once; the
// socket itself closes when pending bytes are written, within CloseFlush.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.cond.Broadcast()
	// Bytes queued under a Hold are written at its Release, which starts
	// the flusher that closes the socket once they are out.
	flushing := c.flushing || (c.held > 0 && len(c.pending) > 0)
	c.mu.Unlock()
	if !flushing {
		return c.Conn.Close()
	}
	now := time.Now()
	_ = c.Conn.SetReadDeadline(now)
	_ = c.Conn.SetWriteDeadline(now.Add(c.o.CloseFlush))
	return nil
}

// NetConn is the connection under c: the DISCONNECT linger
// (internal/mochifix) walks the layers down to the socket.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// CloseWrite waits, at most CloseFlush, until every byte Write accepted is
// on the socket, and shuts nothing itself. Whoever shuts c's write side
// (the DISCONNECT linger) shuts the layers under c next, so their close
// frame, close_notify or FIN comes after the DISCONNECT, not ahead of it
// while the DISCONNECT still waits here.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flushing || (c.held > 0 && len(c.pending) > 0) {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.o.CloseFlush))
	}
	for c.flushing || (c.held > 0 && len(c.pending) > 0) {
		c.cond.Wait()
	}
	return c.werr
}
