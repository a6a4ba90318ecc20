//go:build unix

package lazyconn

import (
	"errors"
	"syscall"
)

// writeNow writes as much of p as the socket takes without waiting. It
// returns how much that was; a full socket buffer is not an error.
func writeNow(rc syscall.RawConn, p []byte) (n int, err error) {
	rerr := rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			switch {
			case errors.Is(e, syscall.EINTR):
				continue
			case errors.Is(e, syscall.EAGAIN):
				return true
			case e != nil:
				err = e
				return true
			case m <= 0:
				return true
			}
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, err
}
