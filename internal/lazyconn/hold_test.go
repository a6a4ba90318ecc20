package lazyconn

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// Writes under a Hold, from the holder and from another goroutine, reach
// the peer only at Release, all in one piece and in the order written.
func TestHoldWritesAtRelease(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 64 << 10, CloseFlush: wait})
	lc.Hold()
	lc.Hold() // two holders: only the last Release writes
	_, err := lc.Write([]byte("ab"))
	must(t, err, "write")
	done := make(chan error, 1)
	go func() { _, err := lc.TryWrite([]byte("cd")); done <- err }() // another goroutine, as mochi's WriteLoop
	must(t, <-done, "TryWrite")
	_, err = lc.Write([]byte("ef"))
	must(t, err, "write")
	lc.Release()
	must(t, peer.SetReadDeadline(time.Now().Add(100*time.Millisecond)), "deadline")
	if n, err := peer.Read(make([]byte, 8)); n != 0 || !isTimeout(err) {
		t.Fatalf("under a Hold the peer read %d bytes (%v)", n, err)
	}
	lc.Release()
	must(t, peer.SetReadDeadline(time.Now().Add(wait)), "deadline")
	got := make([]byte, 6)
	_, err = io.ReadFull(peer, got)
	must(t, err, "read")
	if string(got) != "abcdef" {
		t.Fatalf("peer read %q, want abcdef", got)
	}
	lc.mu.Lock()
	pending, flushing := len(lc.pending), lc.flushing
	lc.mu.Unlock()
	if pending != 0 || flushing {
		t.Fatalf("after Release: %d bytes pending, flusher %v; want all written at once", pending, flushing)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A Hold never keeps a full buffer from draining: a holder writing more
// than WriteMax to a peer that reads does not wait forever, and every byte
// arrives in order.
func TestHoldDoesNotBlockPastWriteMax(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 4096, CloseFlush: wait})
	msg := pattern(1000)
	const n = 100 // 100,000 bytes under one Hold
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, len(msg))
		for range n {
			if _, err := io.ReadFull(peer, buf); err != nil || !bytes.Equal(buf, msg) {
				got <- io.ErrUnexpectedEOF
				return
			}
		}
		got <- nil
	}()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		lc.Hold()
		defer lc.Release()
		for range n {
			if _, err := lc.Write(msg); err != nil {
				return
			}
		}
	}()
	select {
	case <-wrote:
	case <-time.After(wait):
		t.Fatal("a Write under a Hold waited for ever on the full buffer")
	}
	select {
	case err := <-got:
		must(t, err, "peer read")
	case <-time.After(wait):
		t.Fatal("the peer did not get every byte")
	}
}

// Close during a Hold does not lose what was written before it (a
// DISCONNECT with its reason code): Release writes it, then the socket
// closes, and CloseWrite waits for it meanwhile.
func TestCloseDuringHoldWritesAtRelease(t *testing.T) {
	lc, peer := pair(t, Options{ReadBuffer: 1024, WriteMax: 64 << 10, CloseFlush: wait})
	lc.Hold()
	_, err := lc.Write([]byte("bye"))
	must(t, err, "write")
	closed := make(chan error, 1)
	go func() { closed <- lc.CloseWrite() }()
	select {
	case <-closed:
		t.Fatal("CloseWrite returned while bytes were held")
	case <-time.After(50 * time.Millisecond):
	}
	_ = lc.Close()
	if _, err := lc.Write([]byte("x")); err == nil {
		t.Fatal("a write after Close was accepted")
	}
	lc.Release()
	must(t, <-closed, "CloseWrite")
	must(t, peer.SetReadDeadline(time.Now().Add(wait)), "deadline")
	b, err := io.ReadAll(peer)
	must(t, err, "read to EOF")
	if string(b) != "bye" {
		t.Fatalf("peer read %q before EOF, want bye", b)
	}
}
