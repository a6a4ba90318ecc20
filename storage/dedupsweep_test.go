package storage

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// dedupRecords counts the dedup records on disk.
func dedupRecords(t *testing.T, s *Store) int {
	t.Helper()
	_, n, _, err := s.expiredDedups(nil, time.Unix(0, 0), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStore_SweepDedupsDeletesOnlyExpired(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		for i := range 5 {
			ttl := -time.Second // already expired
			if i%2 == 0 {
				ttl = time.Hour
			}
			if _, err := s.Commit(ctx, dedupBatch(fmt.Sprint("k", i), fmt.Sprint("v", i), ttl)); err != nil {
				t.Fatal(err)
			}
		}
		// Two per call: the cursor goes on where it stopped, then wraps.
		deleted := 0
		for range 4 {
			n, err := s.SweepDedups(ctx, time.Now(), 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			deleted += n
		}
		if deleted != 2 || dedupRecords(t, s) != 3 {
			t.Fatalf("deleted %d, %d records left; want 2 deleted, 3 left", deleted, dedupRecords(t, s))
		}
		for _, i := range []int{0, 2, 4} {
			if v, ok, err := s.Dedup([]byte(fmt.Sprint("k", i))); err != nil || !ok || string(v) != fmt.Sprint("v", i) {
				t.Fatalf("live record k%d: %q %v %v", i, v, ok, err)
			}
		}
	})
}

// A key written again between the sweep's read and its commit keeps its
// new record.
func TestStore_SweepDedupsKeepsARewrittenKey(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	ctx := context.Background()
	if _, err := s.Commit(ctx, dedupBatch("k", "old", -time.Second)); err != nil {
		t.Fatal(err)
	}
	expired, _, _, err := s.expiredDedups(nil, time.Now(), 10)
	if err != nil || len(expired) != 1 {
		t.Fatalf("expired %q %v", expired, err)
	}
	if r, err := s.Commit(ctx, dedupBatch("k", "new", time.Hour)); err != nil || r.Duplicate {
		t.Fatalf("rewrite: %+v %v", r, err)
	}
	if _, err := s.Commit(ctx, Batch{ExpireDedups: expired}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Dedup([]byte("k")); err != nil || !ok || string(v) != "new" {
		t.Fatalf("rewritten record: %q %v %v", v, ok, err)
	}
}

// A sweep that starts where the last one ended, at the last record, wraps
// around within the same call instead of losing an interval.
func TestStore_SweepDedupsWrapsWithinACall(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	ctx := context.Background()
	for i := range 10 {
		if _, err := s.Commit(ctx, dedupBatch(fmt.Sprint("k", i), "v", time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.SweepDedups(ctx, time.Now(), 10, nil); err != nil || n != 0 {
		t.Fatalf("first sweep: %d %v", n, err)
	}
	later := time.Now().Add(2 * time.Hour)
	s.clock = func() time.Time { return later } // the committer decides expiry by its own clock
	if n, err := s.SweepDedups(ctx, later, 10, nil); err != nil || n != 10 {
		t.Fatalf("second sweep, everything expired: deleted %d (%v), want 10", n, err)
	}
	if left := dedupRecords(t, s); left != 0 {
		t.Fatalf("%d records left", left)
	}
}

// The sweep calls rest between two pages (dedupSweepPage records), not
// before the first, and stops at rest's error: the caller paces the pass.
func TestStore_SweepDedupsRestsBetweenPages(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	ctx := context.Background()
	for i := range 2*dedupSweepPage + 1 { // three pages
		if _, err := s.Commit(ctx, dedupBatch(fmt.Sprint("k", i), "v", -time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	rests := 0
	n, err := s.SweepDedups(ctx, time.Now(), 4*dedupSweepPage, func(context.Context) error { rests++; return nil })
	if err != nil || n != 2*dedupSweepPage+1 || rests != 2 {
		t.Fatalf("swept %d (%v) with %d rests; want %d with 2", n, err, rests, 2*dedupSweepPage+1)
	}
	for i := range 2*dedupSweepPage + 1 {
		if _, err := s.Commit(ctx, dedupBatch(fmt.Sprint("k", i), "v", -time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	stop := fmt.Errorf("stopped")
	n, err = s.SweepDedups(ctx, time.Now(), 4*dedupSweepPage, func(context.Context) error { return stop })
	if err != stop || n != dedupSweepPage {
		t.Fatalf("a rest's error: swept %d (%v); want the first page's %d and the error", n, err, dedupSweepPage)
	}
}
