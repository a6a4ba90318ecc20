package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
)

// Snapshots (cluster mode): a node that cannot catch up from the log loads
// another node's store as it was at a known applied position, then follows
// the log from there. The store makes the copy (a Pebble checkpoint: hard
// links to its tables and a copy of its write-ahead log, consistent with
// the applied position it holds) and installs one in its data dir; moving
// it between nodes is the cluster's business.

// Checkpoint writes a consistent copy of the store into dir (which must not
// exist) and returns the log position it holds: the copy is the state
// after that position, its applied record says so. The committer and Apply
// wait while the checkpoint is made (hard links; the write-ahead log is
// copied, at most storage.memtable_mb).
func (s *Store) Checkpoint(dir string) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	pos := s.applied.Load()
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return 0, fmt.Errorf("storage: checkpoint into %s: %w", dir, err)
	}
	return pos, nil
}

// Commits is the number of group commits the store holds: 0 for a store
// that never held anything. With Applied() == 0 and Commits() > 0 the
// store holds history written before it was a cluster node.
func (s *Store) Commits() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return readCount(s.db)
}

// Sync makes every write so far durable (Apply does not fsync: the log
// holds what it applies; the cluster's base position has no other copy).
func (s *Store) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("storage: sync: %w", err)
	}
	return nil
}

// BaseEffect is an effect that writes nothing: applied at a position, it
// only moves the store's applied position there. The cluster appends one
// as the log's first position when a store with history starts the log.
func BaseEffect(now time.Time) []byte {
	return encodeEffect(now, nil, nil, make([]byte, 12)) // an empty batch: its header only
}

// CheckpointApplied opens the checkpoint in dir read-only and returns the
// applied position it holds.
func CheckpointApplied(dir string) (uint64, error) {
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		return 0, fmt.Errorf("storage: open checkpoint %s: %w", dir, err)
	}
	defer db.Close()
	return readApplied(db)
}

// installMark, while present in a data dir, says an InstallCheckpoint was
// cut short: its first line is the checkpoint's directory, the others the
// names of its files. Open finishes the install before it opens the store.
const installMark = "SNAPSHOT-INSTALL"

// InstallCheckpoint replaces the store in dir (closed) with the checkpoint
// in from: the store's files leave dir (and its commit mark, which counted
// the old store's commits), the checkpoint's files move in, from is
// removed. Other files and directories in dir (the cluster's, the secret
// key) stay. A crash in the middle leaves a mark that the next Open
// finishes the install from.
func InstallCheckpoint(dir, from string) error {
	incoming, err := os.ReadDir(from)
	if err != nil {
		return fmt.Errorf("storage: install checkpoint: %w", err)
	}
	lines := []string{from}
	for _, e := range incoming {
		if e.IsDir() || !storeFile(e.Name()) {
			return fmt.Errorf("storage: install checkpoint: %s is not a store file", e.Name())
		}
		lines = append(lines, e.Name())
	}
	mark := filepath.Join(dir, installMark)
	if err := os.WriteFile(mark, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		return fmt.Errorf("storage: install checkpoint: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return finishInstall(dir)
}

// finishInstall completes the install its mark in dir describes (none: nothing to do).
func finishInstall(dir string) error {
	mark := filepath.Join(dir, installMark)
	b, err := os.ReadFile(mark)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: finish installing a checkpoint: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	from, have := lines[0], map[string]bool{}
	for _, name := range lines[1:] {
		have[name] = true
	}
	present, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("storage: install checkpoint: %w", err)
	}
	for _, e := range present {
		name := e.Name()
		if e.IsDir() || !(storeFile(name) || name == MarkFile) || have[name] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("storage: install checkpoint: %w", err)
		}
	}
	for name := range have {
		// a file no longer in from was moved before the crash
		if err := os.Rename(filepath.Join(from, name), filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("storage: install checkpoint: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(mark); err != nil {
		return fmt.Errorf("storage: install checkpoint: %w", err)
	}
	return os.RemoveAll(from)
}

// storeFile reports a file Pebble keeps in its directory.
func storeFile(name string) bool {
	for _, suffix := range []string{".sst", ".log", ".blob"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	for _, prefix := range []string{"MANIFEST-", "OPTIONS-", "marker.", "CURRENT", "LOCK"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	return nil
}
