//go:build !linux

package netlisten

import "errors"

// RaiseOpenFiles is not implemented off Linux: it reports no limit.
func RaiseOpenFiles() (now, before uint64, err error) {
	return 0, 0, errors.New("open-file limit not known on this system")
}
