//go:build !unix

package storage

import "errors"

// freeBytes cannot read the free space here: storage.min_free_mb is not
// enforced, and a full disk is found by the write that fails.
func freeBytes(string) (uint64, error) {
	return 0, errors.New("free space unknown on this platform")
}
