package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/internal/testfs"
)

// TestDamagedWAL: a store whose newest WAL was cut or corrupted after a
// crash lost acknowledged commits. Open refuses it, saying what is damaged
// and what to do; with RecoverDamaged it opens with what is readable, every
// stream gets a new Epoch, and no Seq of the old Epoch is reused under it.
func TestDamagedWAL(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("corrupt=%v", corrupt), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, Sync: true}
			s, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var last Pos
			for i := 1; i <= 200; i++ {
				res, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/a", Payload: fmt.Appendf(nil, "m%d", i)}, {Stream: fmt.Sprintf("u/x%d", i%7), Payload: []byte("x")}}})
				if err != nil {
					t.Fatal(err)
				}
				last = res.Pos[0]
			}
			if err := s.crash(); err != nil {
				t.Fatal(err)
			}
			wal := testfs.DamageNewestWAL(t, dir, corrupt)

			_, err = Open(opts)
			var d *DamagedError
			if !errors.As(err, &d) || !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open of a damaged store = %v, want a DamagedError", err)
			}
			if d.Acked != 200 || d.Held >= 200 || d.NewestWAL != wal {
				t.Fatalf("damage %+v, want 200 acknowledged, fewer held, WAL %s", d, wal)
			}
			for _, want := range []string{wal, "recover_damaged", "backup", fmt.Sprint(200 - d.Held)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not mention %q", err, want)
				}
			}
			if _, err := Open(opts); !errors.Is(err, ErrDamaged) {
				t.Fatalf("second Open = %v: a refusal must leave the store as it was", err)
			}

			opts.RecoverDamaged = true
			s2, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			head, err := s2.Head("u/a")
			if err != nil {
				t.Fatal(err)
			}
			if head.Epoch == last.Epoch || head.Seq >= last.Seq {
				t.Fatalf("recovered head %+v, old %+v: want a new Epoch and the lost events gone", head, last)
			}
			res, err := s2.Commit(ctx, Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("after")}}})
			if err != nil {
				t.Fatal(err)
			}
			if p := res.Pos[0]; p.Epoch == last.Epoch {
				t.Fatalf("a send after recovery got %+v: a Seq of the old Epoch %d reused", p, last.Epoch)
			}
			streams, err := s2.Streams("u/", "", 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range streams {
				if st.Head.Epoch == last.Epoch {
					t.Fatalf("stream %s kept the old Epoch", st.Name)
				}
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			opts.RecoverDamaged = false
			s3, err := Open(opts) // recovered: the mark was reset, it opens cleanly now
			if err != nil {
				t.Fatalf("reopen after recovery: %v", err)
			}
			s3.Close()
		})
	}
}

// TestCleanCrashIsNotDamage: a crash without damage opens without a word.
func TestCleanCrashIsNotDamage(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, Sync: true}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("m")}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.crash(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatalf("open after a clean crash: %v", err)
	}
	defer s2.Close()
	if h, _ := s2.Head("u/a"); h.Seq != 50 {
		t.Fatalf("head %+v after a clean crash", h)
	}
}

// TestNewEpochsAfterRestore: a store restored from a backup looks clean,
// so NewEpochs gives every stream a new Epoch on request; the entries keep
// their Seqs.
func TestNewEpochsAfterRestore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("m1")}, {Stream: "g/g1", Payload: []byte("m1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(Options{Dir: dir, Sync: true, NewEpochs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i, stream := range []string{"u/a", "g/g1"} {
		h, _ := s2.Head(stream)
		if h.Epoch == res.Pos[i].Epoch || h.Seq != 1 {
			t.Fatalf("%s: head %+v, before %+v: want a new Epoch, the same Seq", stream, h, res.Pos[i])
		}
	}
}
