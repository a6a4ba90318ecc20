//go:build linux

package netlisten

import "syscall"

// RaiseOpenFiles raises the soft limit on open files (RLIMIT_NOFILE) to the
// hard limit and returns the limit now in force, and the soft limit before.
// Go's runtime already does this at start-up since Go 1.19, but a binary
// built otherwise, or a limit lowered by a wrapper, would not be.
func RaiseOpenFiles() (now, before uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, err
	}
	before = rl.Cur
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return before, before, err
		}
	}
	return rl.Cur, before, nil
}
