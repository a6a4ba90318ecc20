package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/testfs"
)

// TestDiskFullRefusesAndRecovers: on a real full filesystem every commit
// fails fast with ErrNoSpace, Health says so and Stats counts them; once
// space is freed commits succeed without a reopen, and everything
// acknowledged is there after one.
func TestDiskFullRefusesAndRecovers(t *testing.T) {
	dir := testfs.MountTmpfs(t, 32<<20)
	opts := Options{Dir: filepath.Join(dir, "db"), Sync: true, MemTableBytes: 1 << 20, MinFreeBytes: 4 << 20}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	acked := 0
	commit := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/a", Payload: []byte(fmt.Sprintf("m%d", acked+1))}}})
		if err == nil {
			acked++
		}
		return err
	}
	for range 5 {
		if err := commit(); err != nil {
			t.Fatal(err)
		}
	}
	release := testfs.Fill(t, dir, 1<<20)
	// The guard reads the free space at most every spaceCheckEvery.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := commit()
		if errors.Is(err, ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatalf("commit on a full disk: %v, want ErrNoSpace", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("commits still succeed on a full disk")
		}
	}
	began := time.Now()
	for range 3 {
		if err := commit(); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("commit on a full disk: %v, want ErrNoSpace", err)
		}
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("3 refusals took %v", d)
	}
	if !errors.Is(s.Health(), ErrNoSpace) {
		t.Fatalf("Health() = %v on a full disk", s.Health())
	}
	if st := s.Stats(); st.Failed < 4 {
		t.Fatalf("Stats.Failed = %d, want at least 4", st.Failed)
	}
	release()
	deadline = time.Now().Add(5 * time.Second)
	for commit() != nil {
		if time.Now().After(deadline) {
			t.Fatal("commits still fail after the disk was freed")
		}
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health() = %v after the disk was freed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	head, entries, err := s2.Read("u/a", 0, acked+10)
	if err != nil || head.Seq != uint64(acked) || len(entries) != acked {
		t.Fatalf("after reopen: head %+v, %d entries, %v; want %d acknowledged", head, len(entries), err, acked)
	}
	for i, e := range entries {
		if string(e.Payload) != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("entry %d = %q", i+1, e.Payload)
		}
	}
}

// TestDiskFullUnguarded: with no reserve Pebble itself runs into the full
// disk (its WAL write fails, which Pebble v1 treats as fatal). The commit
// fails with an error within its deadline, never a false success or a
// hang; the store refuses every later commit; Close returns; a reopen
// finds everything acknowledged.
func TestDiskFullUnguarded(t *testing.T) {
	dir := testfs.MountTmpfs(t, 16<<20)
	opts := Options{Dir: filepath.Join(dir, "db"), Sync: true, MemTableBytes: 1 << 20}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 4<<10)
	var acked []string
	commit := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p := fmt.Appendf(payload[:0:0], "%d:%s", i, payload)
		_, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/a", Payload: p}}})
		if err == nil {
			acked = append(acked, string(p))
		}
		return err
	}
	for i := range 5 {
		if err := commit(i); err != nil {
			t.Fatal(err)
		}
	}
	release := testfs.Fill(t, dir, 0)
	var failed error
	for i := 5; i < 10000 && failed == nil; i++ {
		failed = commit(i)
	}
	if failed == nil {
		t.Fatal("10000 commits succeeded on a full disk")
	}
	t.Logf("first failure after %d acknowledged: %v", len(acked), failed)
	if errors.Is(failed, ErrCommitTimeout) {
		t.Fatalf("the commit hung until its deadline: %v", failed)
	}
	if err := commit(-1); err == nil || s.Health() == nil {
		t.Fatalf("after a failed write: commit %v, Health %v; want both errors", err, s.Health())
	}
	release()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Logf("close: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, entries, err := s2.Read("u/a", 0, len(acked)+10)
	if err != nil || len(entries) < len(acked) {
		t.Fatalf("after reopen: %d entries, %v; want the %d acknowledged", len(entries), err, len(acked))
	}
	for i, p := range acked {
		if string(entries[i].Payload) != p {
			t.Fatalf("entry %d differs", i+1)
		}
	}
}

// TestCommitWaitHasADeadline: a batch still queued at the deadline of the
// submitting context (here the committer is held) ends in ErrCommitTimeout
// and is never written.
func TestCommitWaitHasADeadline(t *testing.T) {
	s := openStore(t, Options{InMemory: true, StallTimeout: 50 * time.Millisecond})
	release := s.holdCommitter()
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("late")}}})
	if !errors.Is(err, ErrCommitTimeout) {
		t.Fatalf("Commit = %v, want ErrCommitTimeout", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("Commit returned after %v, deadline 200ms", d)
	}
	release()
	if _, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("next")}}}); err != nil {
		t.Fatal(err)
	}
	if _, entries, _ := s.Read("u/a", 0, 10); len(entries) != 1 || string(entries[0].Payload) != "next" {
		t.Fatalf("entries %v: the timed-out batch must not be written", entries)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health() = %v: a batch that waited in the queue is no stall", err)
	}
}

// TestStalledWriteFailsTheStore: a batch whose Pebble write has not
// returned at its deadline ends in ErrCommitTimeout; the store then
// refuses every later commit (it cannot know what landed) and says so.
func TestStalledWriteFailsTheStore(t *testing.T) {
	s := openStore(t, Options{InMemory: true, StallTimeout: 50 * time.Millisecond})
	stall := make(chan struct{})
	s.writing = func() { <-stall }
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("stuck")}}}); !errors.Is(err, ErrCommitTimeout) {
		t.Fatalf("Commit = %v, want ErrCommitTimeout", err)
	}
	if !errors.Is(s.Health(), ErrFailed) {
		t.Fatalf("Health() = %v after a stalled write, want ErrFailed", s.Health())
	}
	close(stall)
	if _, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("after")}}}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit after a stall = %v, want ErrFailed", err)
	}
}

// BenchmarkStore_WriteGuard is what each group commit adds for the full
// disk and damage checks: reading the free space and writing the mark.
func BenchmarkStore_WriteGuard(b *testing.B) {
	dir := b.TempDir()
	m, err := openMarker(dir, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer m.close()
	b.ReportAllocs()
	for i := range b.N {
		if _, err := freeBytes(dir); err != nil {
			b.Fatal(err)
		}
		if err := m.write(uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
