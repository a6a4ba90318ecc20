package storage

import (
	"fmt"
	"sync"

	"github.com/imbroker/imbroker/internal/imerr"
)

// Errors of a store that cannot write. They carry their Tencent code
// (internal/imerr), so every entry point reports them as they are.
var (
	// ErrNoSpace: the data dir's filesystem has less free space than
	// Options.MinFreeBytes; the batch was refused before Pebble saw it, so
	// nothing of it was stored.
	ErrNoSpace = imerr.StoreUnavailable.New("the server's disk is full: nothing was stored; retry later")
	// ErrFailed: Pebble failed a write (its WAL could not be written); the
	// store refuses every later commit until the broker restarts.
	ErrFailed = imerr.StoreUnavailable.New("the server's store failed: nothing was stored; retry later")
	// ErrCommitTimeout: the commit did not finish by the deadline of the
	// context it was submitted with. Its outcome is unknown: it may still be
	// stored. A resend with the same dedup key gets the first result.
	ErrCommitTimeout = imerr.StoreTimeout.Err()
)

// health is the committer's view of whether the store can write. A write
// that fails fails the store from the committer; one that stalls past its
// deadline, from its waiter (Pending.Wait); Health reads it from anywhere.
type health struct {
	mu     sync.Mutex
	failed error // sticky: Pebble's commit pipeline is broken
	full   bool  // committer-owned: the last read found the disk below the reserve (logged once)
}

// Health reports whether the store can write: nil, or why not (a write
// failed; the disk is below Options.MinFreeBytes, read now, so /readyz
// sees a full disk before any write tries it).
func (s *Store) Health() error {
	if failed := s.failure(); failed != nil {
		return failed
	}
	if s.opts.MinFreeBytes <= 0 || s.opts.InMemory {
		return nil
	}
	if free, err := freeBytes(s.opts.Dir); err == nil && free < uint64(s.opts.MinFreeBytes) {
		return fmt.Errorf("%w (%d bytes free in %s, storage.min_free_mb needs %d)", ErrNoSpace, free, s.opts.Dir, s.opts.MinFreeBytes)
	}
	return nil
}

// writable runs on the committer before each group commit: it refuses the
// group when a write failed before or the disk is below the reserve, and
// logs each change of state once (not once per refused batch).
func (s *Store) writable() error {
	if s.failure() != nil {
		return ErrFailed
	}
	if s.opts.MinFreeBytes <= 0 || s.opts.InMemory {
		return nil
	}
	// A statfs per group commit, beside its fsync (BenchmarkStore_WriteGuard:
	// with the mark's pwrite about 2 µs): the reserve holds to the commit.
	free, err := freeBytes(s.opts.Dir)
	if err != nil {
		s.setFull(false, 0)
		s.log.Warn("cannot read the free space of the data dir", "dir", s.opts.Dir, "error", err)
		return nil // the write itself will tell
	}
	if free < uint64(s.opts.MinFreeBytes) {
		s.setFull(true, free)
		return fmt.Errorf("%w (%d bytes free in %s, storage.min_free_mb needs %d)", ErrNoSpace, free, s.opts.Dir, s.opts.MinFreeBytes)
	}
	s.setFull(false, free)
	return nil
}

// setFull records whether the disk is below the reserve and logs a change.
func (s *Store) setFull(full bool, free uint64) {
	h := &s.health
	switch was := h.full; {
	case full && !was:
		s.log.Error("store cannot write: the disk is full; every write is refused until space is freed",
			"dir", s.opts.Dir, "free_bytes", free, "min_free_bytes", s.opts.MinFreeBytes)
	case !full && was:
		s.log.Warn("store writes again: disk space was freed", "dir", s.opts.Dir, "free_bytes", free)
	}
	h.full = full
}

// fail marks the store failed for good after Pebble failed a write: its
// commit pipeline cannot be trusted afterwards.
func (s *Store) fail(cause error) {
	h := &s.health
	h.mu.Lock()
	first := h.failed == nil
	if first {
		h.failed = fmt.Errorf("%w: %v", ErrFailed, cause)
	}
	h.mu.Unlock()
	if first {
		s.log.Error("store failed: a write could not be completed; every write is refused until the broker restarts (free disk space first)",
			"dir", s.opts.Dir, "error", cause)
	}
}

// failure is why the store failed, or nil.
func (s *Store) failure() error {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.failed
}

// commitPebble commits b. Pebble v1 treats a failed WAL write as fatal (it
// calls Logger.Fatalf, whose panic this recovers into an error) and
// reports other write failures as errors.
func (s *Store) commitPebble(commit func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r) // "pebble: fatal commit error: …"
			s.fail(err)
		}
	}()
	return commit()
}
