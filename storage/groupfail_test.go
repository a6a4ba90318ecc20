package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// waitPending waits for a submitted batch's outcome, failing the test past
// a deadline instead of hanging it.
func waitPending(t *testing.T, p *Pending) (Result, error) {
	t.Helper()
	select {
	case <-p.r.done:
		return p.Wait()
	case <-time.After(10 * time.Second):
		t.Fatal("batch not committed within 10s")
		return Result{}, nil
	}
}

// rawAbsent fails unless key is absent from Pebble itself (not just hidden
// behind a stream's head).
func rawAbsent(t *testing.T, s *Store, what string, key []byte) {
	t.Helper()
	v, closer, err := s.db.Get(key)
	if err == nil {
		closer.Close()
		t.Fatalf("%s is stored: %q", what, v)
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("%s: %v", what, err)
	}
}

// A request that fails part way leaves no trace, while the requests
// committed in the same group with it are stored: before, its entries,
// dedup record, KV writes and drops were staged into the shared group batch
// before the failing read and committed with the group, and a resend was
// answered Duplicate for a message never stored.
func TestStore_FailedRequestInGroupStagesNothing(t *testing.T) {
	incr := counter("ctr")
	for _, tc := range []struct {
		name string
		fail func(b *Batch) // makes the middle request fail after it staged everything else
	}{
		{"replace reads a corrupt meta", func(b *Batch) {
			b.Replaces = []Replace{{Stream: "bad", Seq: 1, Payload: []byte("x")}}
		}},
		{"trim reads a corrupt meta", func(b *Batch) { b.Trims = []Trim{{Stream: "bad", Below: 2}} }},
		{"an update fails", func(b *Batch) {
			b.Updates = append(b.Updates, Update{Name: "rec", Fn: func([]byte, bool, []Pos) ([]byte, error) {
				return nil, errors.New("corrupt record")
			}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, Sync: true}
			s, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			ctx := context.Background()
			if _, err := s.Commit(ctx, Batch{
				Appends: []Append{{Stream: "u/c", Payload: []byte("c1")}},
				Sets:    map[string][]byte{"keep": []byte("k")},
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Set(metaKey("bad"), []byte{0xff}, pebble.Sync); err != nil {
				t.Fatal(err)
			}

			failing := Batch{
				Appends:  []Append{{Stream: "u/a", Payload: []byte("r2")}, {Stream: "u/b", Payload: []byte("r2"), Index: "idx/r2"}},
				DedupKey: []byte("k2"), DedupValue: []byte("r2"), DedupTTL: time.Hour,
				Sets:    map[string][]byte{"set/r2": []byte("2")},
				Deletes: []string{"keep"},
				Updates: []Update{incr},
				Drops:   []string{"u/c"},
			}
			resend := failing // the client's resend, without what made it fail
			tc.fail(&failing)
			batches := []Batch{
				{Appends: []Append{{Stream: "u/a", Payload: []byte("r1")}}, DedupKey: []byte("k1"), DedupTTL: time.Hour,
					Sets: map[string][]byte{"set/r1": []byte("1")}, Updates: []Update{incr}},
				failing,
				{Appends: []Append{{Stream: "u/a", Payload: []byte("r3")}}, DedupKey: []byte("k3"), DedupTTL: time.Hour,
					Updates: []Update{incr}},
			}
			before := s.Stats()
			release := s.holdCommitter()
			var pending []*Pending
			for _, b := range batches {
				p, err := s.Submit(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				pending = append(pending, p)
			}
			release()
			var res [3]Result
			for i, p := range pending {
				r, err := waitPending(t, p)
				if (err != nil) != (i == 1) {
					t.Fatalf("request %d: %v", i+1, err)
				}
				res[i] = r
			}
			if after := s.Stats(); after.Groups != before.Groups+1 || after.Batches != before.Batches+3 {
				t.Fatalf("not one group: %d groups, %d batches", after.Groups-before.Groups, after.Batches-before.Batches)
			}
			if res[0].Pos[0].Seq != 1 || res[2].Pos[0].Seq != 2 {
				t.Fatalf("u/a positions %+v, %+v: want 1 and 2 (the failed request takes none)", res[0].Pos, res[2].Pos)
			}

			check := func(t *testing.T, s *Store) {
				t.Helper()
				head, es, err := s.Read("u/a", 0, 10)
				if err != nil || head.Seq != 2 || len(es) != 2 || string(es[0].Payload) != "r1" || string(es[1].Payload) != "r3" {
					t.Fatalf("u/a: head %+v, %d entries, %v", head, len(es), err)
				}
				rawAbsent(t, s, "u/a entry 3", entryKey("u/a", 3))
				if head, _ := s.Head("u/b"); head != (Pos{}) {
					t.Fatalf("u/b head moved to %+v", head)
				}
				rawAbsent(t, s, "u/b entry 1", entryKey("u/b", 1))
				if head, es, _ := s.Read("u/c", 0, 10); head.Seq != 1 || len(es) != 1 {
					t.Fatalf("u/c dropped: head %+v, %d entries", head, len(es))
				}
				for name, want := range map[string]string{"ctr": "2", "set/r1": "1", "keep": "k", "set/r2": "", "idx/r2": ""} {
					v, found, err := s.Get(name)
					if err != nil || string(v) != want || found != (want != "") {
						t.Fatalf("kv %s = %q (found %v, %v), want %q", name, v, found, err, want)
					}
				}
				for _, k := range []string{"k1", "k3"} {
					if _, ok, err := s.Dedup([]byte(k)); !ok || err != nil {
						t.Fatalf("dedup %s lost: %v", k, err)
					}
				}
				if _, ok, err := s.Dedup([]byte("k2")); ok || err != nil {
					t.Fatalf("dedup record of the failed request stored (%v)", err)
				}
			}
			check(t, s)
			if p, ok := s.updated.get("ctr"); ok && string(p.value) != "2" {
				t.Fatalf("update cache holds ctr %q, want 2", p.value)
			}
			if !s.dedupMem.missIsFinal([]byte("k2"), time.Now(), time.Hour) {
				t.Fatal("the failed request's dedup key is in the in-memory dedup index")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = Open(opts); err != nil {
				t.Fatal(err)
			}
			check(t, s)

			r, err := s.Commit(ctx, resend)
			if err != nil || r.Duplicate {
				t.Fatalf("resend: %+v, %v: want it stored, not a duplicate", r, err)
			}
			if r.Pos[0].Seq != 3 || r.Pos[1].Seq != 1 {
				t.Fatalf("resend positions %+v, want u/a 3, u/b 1", r.Pos)
			}
			if v, _, _ := s.Get("idx/r2"); string(v) != "1" {
				t.Fatalf("resend's index = %q, want 1", v)
			}
		})
	}
}
