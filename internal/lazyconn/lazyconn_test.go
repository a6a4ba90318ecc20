package lazyconn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

const wait = 5 * time.Second

// pair returns a Conn over a loopback TCP connection and its peer.
func pair(t *testing.T, o Options) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "unexpected error")
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	must(t, err, "unexpected error")
	c, err := ln.Accept()
	must(t, err, "unexpected error")
	lc := New(c, o)
	t.Cleanup(func() { _ = lc.Close(); _ = peer.Close() })
	return lc, peer
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// A client that streams borrows the pooled buffer; once it stops, the
// buffer goes back, so an idle connection blocks in Read holding none.
func TestReadBorrowsBufferOnlyWhileStreaming(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 1 << 16, CloseFlush: wait})
	br := bufio.NewReaderSize(lc, 16) // as mochi reads, ClientNetReadBufferSize 16

	// A small packet: read straight into bufio's buffer, nothing borrowed.
	_, err := peer.Write([]byte{0xC0, 0x00})
	must(t, err, "unexpected error")
	b, err := br.ReadByte()
	must(t, err, "unexpected error")
	if b != 0xC0 {
		t.Fatalf("read %#x, want 0xC0", b)
	}
	if lc.rbuf != nil {
		t.Fatal("a 2-byte read must not borrow a buffer")
	}

	// A stream: every byte arrives in order through the borrowed buffer.
	want := pattern(200_000)
	go func() { _, _ = peer.Write(want) }()
	_, err = br.ReadByte() // the rest of the PINGREQ
	must(t, err, "unexpected error")
	got := make([]byte, len(want))
	for i := range got {
		got[i], err = br.ReadByte() // byte by byte, as mochi's header decoding
		must(t, err, "unexpected error")
		if i == 100 {
			if lc.rbuf == nil {
				t.Fatal("a streaming client reads through the pooled buffer")
			}
		}
	}
	if !bytes.Equal(want, got) {
		t.Fatal("streamed bytes differ")
	}

	// The stream ended with a short read: the buffer is back in the pool.
	_, err = peer.Write([]byte{0xC0, 0x00})
	must(t, err, "unexpected error")
	for range 2 {
		_, err = br.ReadByte()
		must(t, err, "unexpected error")
	}
	if lc.rbuf != nil {
		t.Fatal("a connection that stopped streaming must not hold a read buffer")
	}
}

// Writes return before the peer reads, up to WriteMax; past it Write
// waits (back-pressure), and every byte reaches the peer in order.
func TestWriteAheadOfSocketThenBackPressure(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 64 << 10, CloseFlush: wait})
	msg := pattern(1000)

	// 50 kB fit ahead of the socket: no Write may wait on a peer that reads nothing.
	start := time.Now()
	for range 50 {
		n, err := lc.Write(msg)
		must(t, err, "unexpected error")
		if n != len(msg) {
			t.Fatalf("wrote %d of %d", n, len(msg))
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("50 kB ahead of the socket took %v", d)
	}

	// Far more than the socket buffers plus WriteMax: Write must wait.
	const total = 20_000 // messages: 20 MB
	done := make(chan error, 1)
	go func() {
		for range total - 50 {
			if _, err := lc.Write(msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		t.Fatalf("20 MB written to a peer that reads nothing (err %v): no back-pressure", err)
	case <-time.After(200 * time.Millisecond):
	}
	checkPending(t, lc, 64<<10+len(msg))

	readBack(t, peer, msg, total)
	must(t, <-done, "unexpected error")
}

// Close writes what is pending (a DISCONNECT, say) before the socket
// closes; later writes fail.
func TestCloseFlushesPending(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 1 << 20, CloseFlush: wait})
	want := pattern(500_000) // more than the socket buffers take at once
	_, err := lc.Write(want)
	must(t, err, "unexpected error")
	must(t, lc.Close(), "unexpected error")
	_, err = lc.Write([]byte{1})
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}

	must(t, peer.SetReadDeadline(time.Now().Add(wait)), "deadline")
	got, err := io.ReadAll(peer)
	must(t, err, "the peer sees the pending bytes, then EOF")
	if !bytes.Equal(want, got) {
		t.Fatalf("got %d of %d bytes", len(got), len(want))
	}
}

// Close ends a Read blocked on an idle socket at once, even while the
// flusher still writes to a peer that reads nothing.
func TestCloseUnblocksReader(t *testing.T) {
	lc, _ := pair(t, Options{ReadBuffer: 1024, WriteMax: 8 << 20, CloseFlush: 100 * time.Millisecond})
	_, err := lc.Write(pattern(4 << 20)) // the flusher blocks: the peer never reads
	must(t, err, "unexpected error")
	read := make(chan error, 1)
	go func() { _, err := lc.Read(make([]byte, 16)); read <- err }()
	must(t, lc.Close(), "unexpected error")
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("Read after Close returned no error")
		}
	case <-time.After(wait):
		t.Fatal("Read still blocked after Close")
	}
	// The flusher gives up within CloseFlush and closes the socket.
	ended := make(chan struct{})
	go func() {
		lc.mu.Lock()
		for lc.flushing {
			lc.cond.Wait() // the flusher broadcasts as it ends
		}
		lc.mu.Unlock()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(wait):
		t.Fatal("flusher still running long after CloseFlush")
	}
	_, err = lc.Conn.Write([]byte{1})
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("socket not closed after CloseFlush: %v", err)
	}
}

// CloseWrite returns only once the accepted bytes are on the socket, so a
// FIN sent next (the DISCONNECT linger) follows them: the peer reads every
// byte, then EOF.
func TestCloseWriteFlushesFirst(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 8 << 20, CloseFlush: wait})
	want := pattern(4 << 20) // more than the socket buffers take at once
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	_, err := lc.Write(want)
	must(t, err, "write")
	if lc.NetConn() == nil {
		t.Fatal("NetConn is nil")
	}
	must(t, lc.CloseWrite(), "CloseWrite")
	must(t, lc.NetConn().(*net.TCPConn).CloseWrite(), "FIN")
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("peer read %d bytes before EOF, want all %d", len(b), len(want))
		}
	case <-time.After(wait):
		t.Fatal("peer saw no EOF")
	}
}

// A write to a TCP socket with room goes out on the writer's goroutine:
// no flusher is started for it (an answer such as a PUBACK is on the
// socket when Write returns, as with a plain net.Conn).
func TestWriteWithRoomGoesOutAtOnce(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 64 << 10, CloseFlush: wait})
	msg := pattern(100)
	_, err := lc.Write(msg)
	must(t, err, "unexpected error")
	lc.mu.Lock()
	flushing, pending := lc.flushing, len(lc.pending)
	lc.mu.Unlock()
	if flushing || pending != 0 {
		t.Fatalf("after a small write: flushing %v, %d bytes pending; want the bytes on the socket", flushing, pending)
	}
	got := make([]byte, len(msg))
	_, err = io.ReadFull(peer, got)
	must(t, err, "unexpected error")
	if !bytes.Equal(got, msg) {
		t.Fatal("peer read other bytes")
	}
}

// A connection without a raw socket (TLS, WebSocket; net.Pipe here) writes
// through the flusher, in order.
func TestWriteWithoutRawSocketUsesFlusher(t *testing.T) {
	c, peer := net.Pipe()
	lc := New(c, Options{ReadBuffer: 1024, WriteMax: 64 << 10, CloseFlush: wait})
	t.Cleanup(func() { _ = lc.Close(); _ = peer.Close() })
	for i := range 3 {
		_, err := lc.Write([]byte{byte(i)})
		must(t, err, "unexpected error")
	}
	got := make([]byte, 3)
	_, err := io.ReadFull(peer, got)
	must(t, err, "unexpected error")
	if !bytes.Equal(got, []byte{0, 1, 2}) {
		t.Fatalf("peer read %v", got)
	}
}

// TryWrite never waits: to a peer that reads nothing it takes bytes until
// WriteMax are pending, then refuses whole writes with ErrFull; what it
// took reaches the peer, in order.
func TestTryWriteRefusesWhenFull(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 64 << 10, CloseFlush: wait})
	msg := pattern(1000)
	accepted := 0
	for i := 0; ; i++ {
		if i > 100_000 {
			t.Fatal("TryWrite never refused a write to a peer that reads nothing")
		}
		n, err := lc.TryWrite(msg)
		if errors.Is(err, ErrFull) {
			if n != 0 {
				t.Fatalf("a refused write took %d bytes", n)
			}
			break
		}
		must(t, err, "unexpected error")
		accepted++
	}
	checkPending(t, lc, 64<<10+len(msg))
	readBack(t, peer, msg, accepted)
}

// checkPending fails t when lc holds more than limit pending bytes.
func checkPending(t *testing.T, lc *Conn, limit int) {
	t.Helper()
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if n := len(lc.pending); n > limit {
		t.Fatalf("%d bytes pending: over WriteMax", n)
	}
}

// readBack reads n copies of msg from peer, in order.
func readBack(t *testing.T, peer net.Conn, msg []byte, n int) {
	t.Helper()
	got := make([]byte, len(msg))
	for i := range n {
		_, err := io.ReadFull(peer, got)
		must(t, err, "unexpected error")
		if !bytes.Equal(msg, got) {
			t.Fatalf("message %d differs", i)
		}
	}
}
