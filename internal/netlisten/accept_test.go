package netlisten

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flaky is a net.Listener whose Accept returns queued errors before
// handing out real connections.
type flaky struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (f *flaky) Accept() (net.Conn, error) {
	f.mu.Lock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func listen(t *testing.T, errs ...error) (*Listener, *syncBuf) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuf
	l := Wrap(&flaky{Listener: raw, errs: errs}, Options{Name: "t", Log: slog.New(slog.NewTextHandler(&buf, nil))})
	t.Cleanup(func() { _ = l.Close() })
	return l, &buf
}

func opErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// Out of descriptors: Accept waits and retries instead of returning, logs
// one line for the run of failures, and then hands out the connection.
func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	l, buf := listen(t, opErr(syscall.EMFILE), opErr(syscall.EMFILE), opErr(syscall.ENFILE), opErr(syscall.ECONNABORTED))
	go func() {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v, want a connection after the temporary errors", err)
	}
	c.Close()
	if n := strings.Count(buf.String(), "accept failed; retrying"); n != 1 {
		t.Errorf("%d retry lines for one run of failures, want 1 (rate-limited):\n%s", n, buf)
	}
	if !strings.Contains(buf.String(), "too many open files") {
		t.Errorf("log does not name the error:\n%s", buf)
	}
	if l.Err() != nil {
		t.Errorf("Err = %v after temporary errors, want nil", l.Err())
	}
}

// A permanent error ends Accept and is reported by Err (for /readyz).
func TestAcceptPermanentErrorIsReported(t *testing.T) {
	perm := opErr(syscall.EBADF)
	l, buf := listen(t, perm)
	if _, err := l.Accept(); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Accept = %v, want EBADF", err)
	}
	if !errors.Is(l.Err(), syscall.EBADF) {
		t.Errorf("Err = %v, want EBADF", l.Err())
	}
	if !strings.Contains(buf.String(), "listener stopped accepting") {
		t.Errorf("no log line:\n%s", buf)
	}
}

// Close ends an Accept that is waiting to retry, and a closed listener is
// not a failure.
func TestCloseDuringBackoff(t *testing.T) {
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = opErr(syscall.EMFILE)
	}
	l, _ := listen(t, errs...)
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	_ = l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	if l.Err() != nil {
		t.Errorf("Err = %v after Close, want nil", l.Err())
	}
}

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{opErr(syscall.EMFILE), true}, {opErr(syscall.ENFILE), true}, {opErr(syscall.ECONNABORTED), true},
		{opErr(syscall.ENOBUFS), true}, {opErr(syscall.EBADF), false}, {opErr(syscall.EINVAL), false},
		{net.ErrClosed, false}, {fmt.Errorf("wrapped: %w", os.ErrDeadlineExceeded), true},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
