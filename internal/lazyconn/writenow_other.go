//go:build !unix

package lazyconn

import "syscall"

// writeNow writes nothing where raw socket writes are not wired: every
// write goes through the flusher.
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, nil }
