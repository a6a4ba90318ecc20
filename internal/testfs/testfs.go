// Package testfs gives tests real filesystem trouble: a small tmpfs that
// really fills up, and a damaged Pebble write-ahead log.
package testfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of size bytes under a temp dir and unmounts it
// when the test ends. It needs root (CAP_SYS_ADMIN); without it the test
// is skipped.
func MountTmpfs(tb testing.TB, size int) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		tb.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// FreeBytes is the space an unprivileged writer may still use under dir.
func FreeBytes(tb testing.TB, dir string) uint64 {
	tb.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		tb.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// Fill writes a file in dir until its filesystem has less than leave
// bytes free (or none) and returns a function that deletes it.
func Fill(tb testing.TB, dir string, leave uint64) (release func()) {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		free := FreeBytes(tb, dir)
		if free < leave {
			break
		}
		if _, err := f.Write(buf[:min(uint64(len(buf)), free-leave+1)]); err != nil {
			break // ENOSPC: full
		}
	}
	return func() {
		if err := os.Remove(path); err != nil {
			tb.Fatal(err)
		}
	}
}

// DamageNewestWAL damages the newest Pebble write-ahead log (*.log) in
// dir: it cuts it to half its length or, with corrupt, flips 64 bytes in
// its middle. It returns the file's name.
func DamageNewestWAL(tb testing.TB, dir string, corrupt bool) string {
	tb.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(names) == 0 {
		tb.Fatalf("no WAL in %s", dir)
	}
	sort.Strings(names) // fixed-width file numbers
	path := names[len(names)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if corrupt {
		for i := len(b) / 2; i < len(b)/2+64 && i < len(b); i++ {
			b[i] ^= 0x5a
		}
	} else {
		b = b[:len(b)/2]
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return filepath.Base(path)
}
