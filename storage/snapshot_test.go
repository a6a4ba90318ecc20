package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A checkpoint holds the store at its applied position; installed over
// another store (an install cut short by a crash is finished by the next
// Open) it replaces the store's files and nothing else in the data dir.
// A base effect moves the applied position and writes nothing else.
func TestSnapshot_CheckpointInstall(t *testing.T) {
	ctx := context.Background()
	src := openLogged(t, t.TempDir(), newTestLog(), &commitRecord{})
	src.SetWriter(true)
	for range 3 {
		if _, err := src.Commit(ctx, Batch{Appends: []Append{{Stream: "u/alice", Payload: []byte("hi")}}}); err != nil {
			t.Fatal(err)
		}
	}
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	pos, err := src.Checkpoint(ckpt)
	if err != nil || pos != 3 {
		t.Fatalf("checkpoint at %d (%v), want 3", pos, err)
	}
	if got, err := CheckpointApplied(ckpt); err != nil || got != 3 {
		t.Fatalf("CheckpointApplied: %d %v", got, err)
	}

	// The target: a single-node store with other history, a commit mark,
	// and files that are not the store's.
	dir := t.TempDir()
	old, err := Open(Options{Dir: dir, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Commit(ctx, Batch{Appends: []Append{{Stream: "u/bob", Payload: []byte("old")}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := old.Commits(); err != nil || n == 0 || old.Applied() != 0 {
		t.Fatalf("a single node's store: %d commits (%v), applied %d", n, err, old.Applied())
	}
	_ = old.Close()
	if err := os.MkdirAll(filepath.Join(dir, "cluster"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An install cut short: the mark written, one file moved.
	entries, err := os.ReadDir(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{ckpt}
	for _, e := range entries {
		lines = append(lines, e.Name())
	}
	if err := os.WriteFile(filepath.Join(dir, installMark), []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(ckpt, entries[0].Name()), filepath.Join(dir, entries[0].Name())); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir, Sync: true, Log: newTestLog()})
	if err != nil {
		t.Fatalf("open after an install cut short: %v", err)
	}
	defer s.Close()
	if s.Applied() != 3 {
		t.Fatalf("applied %d, want 3", s.Applied())
	}
	if _, es, err := s.Read("u/alice", 0, 10); err != nil || len(es) != 3 {
		t.Fatalf("alice: %d entries (%v)", len(es), err)
	}
	if _, es, err := s.Read("u/bob", 0, 10); err != nil || len(es) != 0 {
		t.Fatalf("bob (the old store's): %d entries (%v)", len(es), err)
	}
	for _, name := range []string{"cluster", "keep.txt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, gone := range []string{filepath.Join(dir, installMark), filepath.Join(dir, MarkFile), ckpt} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still there: %v", gone, err)
		}
	}

	// A base effect.
	if err := s.Apply(4, BaseEffect(src.clock())); err != nil || s.Applied() != 4 {
		t.Fatalf("base effect: applied %d (%v)", s.Applied(), err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
}
