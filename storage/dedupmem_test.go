package storage

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func dedupBatch(key, value string, ttl time.Duration) Batch {
	return Batch{Appends: []Append{{Stream: "u/a", Payload: []byte(value)}}, DedupKey: []byte(key), DedupValue: []byte(value), DedupTTL: ttl}
}

// A resend of a key from before a reopen is still found: memory covers only
// what this process staged, so the disk answers until a whole TTL has passed.
func TestStore_DedupSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Commit(ctx, dedupBatch("k1", "first", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, Options{Dir: dir, Sync: true})
	if s2.dedupMem.completeSince.IsZero() {
		t.Fatal("memory claims to cover a store that already holds dedup records")
	}
	r, err := s2.Commit(ctx, dedupBatch("k1", "again", time.Hour))
	if err != nil || !r.Duplicate || string(r.DedupValue) != "first" {
		t.Fatalf("resend after reopen: %+v %v", r, err)
	}
}

// Past the memory bound, evicted keys are found on disk, and new keys are
// still stored exactly once.
func TestStore_DedupMemoryBound(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		opts.DedupMemoryKeys = 4
		s := openStore(t, opts)
		ctx := context.Background()
		for i := range 10 {
			if r, err := s.Commit(ctx, dedupBatch(fmt.Sprint("k", i), fmt.Sprint("v", i), time.Hour)); err != nil || r.Duplicate {
				t.Fatalf("k%d: %+v %v", i, r, err)
			}
		}
		if n := s.dedupMem.keys(); n > 4 || s.dedupMem.completeSince.IsZero() {
			t.Fatalf("memory holds %d keys, complete since %v; bound 4, so the oldest were forgotten", n, s.dedupMem.completeSince)
		}
		for i := range 10 { // evicted (0-5) and remembered (6-9) alike
			r, err := s.Commit(ctx, dedupBatch(fmt.Sprint("k", i), "resend", time.Hour))
			if err != nil || !r.Duplicate || string(r.DedupValue) != fmt.Sprint("v", i) {
				t.Fatalf("resend k%d: %+v %v", i, r, err)
			}
		}
		if head, _ := s.Head("u/a"); head.Seq != 10 {
			t.Fatalf("head %d, want 10: a resend was stored", head.Seq)
		}
	})
}

// The memory's answers: a miss is final only when it covers a whole TTL.
func TestRecentDedups(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := newRecentDedups(2, time.Time{})
	if !d.missIsFinal([]byte("a"), t0, time.Minute) {
		t.Fatal("empty memory covering all time: a miss is final")
	}
	d.add([]byte("a"), t0)
	if d.missIsFinal([]byte("a"), t0, time.Minute) {
		t.Fatal("a staged key reported as a final miss")
	}
	d.add([]byte("b"), t0.Add(time.Second))
	d.add([]byte("c"), t0.Add(2*time.Second)) // evicts a: memory now covers from t0 only
	if d.missIsFinal([]byte("a"), t0.Add(30*time.Second), time.Minute) {
		t.Fatal("evicted key within its TTL reported as a final miss")
	}
	if !d.missIsFinal([]byte("a"), t0.Add(61*time.Second), time.Minute) {
		t.Fatal("an evicted key past its TTL needs no disk read")
	}
	var off *recentDedups = newRecentDedups(-1, time.Time{})
	off.add([]byte("x"), t0)
	if off.missIsFinal([]byte("x"), t0, time.Minute) {
		t.Fatal("disabled memory must send every lookup to disk")
	}
}

// The filters never miss a key they hold, rarely claim one they do not, and
// a generation whose keys have all expired answers nothing.
func TestRecentDedups_Filters(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const n = 100000
	d := newRecentDedups(n, time.Time{})
	for i := range n {
		d.add(fmt.Appendf(nil, "held-%d", i), t0)
	}
	if len(d.gens) != dedupGenerations || !d.completeSince.IsZero() {
		t.Fatalf("%d generations, complete since %v: want %d, nothing forgotten", len(d.gens), d.completeSince, dedupGenerations)
	}
	now := t0.Add(time.Second)
	for i := range n {
		if d.missIsFinal(fmt.Appendf(nil, "held-%d", i), now, time.Minute) {
			t.Fatalf("held-%d: a held key reported as a final miss", i)
		}
	}
	positives := 0
	for i := range n {
		if !d.missIsFinal(fmt.Appendf(nil, "other-%d", i), now, time.Minute) {
			positives++
		}
	}
	// 16 generations at ~0.05 % each; a disk read confirms each one.
	if positives > n/100 {
		t.Fatalf("%d false positives in %d keys: the filters are too full", positives, n)
	}
	if !d.missIsFinal([]byte("held-1"), t0.Add(2*time.Minute), time.Minute) {
		t.Fatal("a key past its TTL needs no disk read")
	}
	t.Logf("false positives: %d in %d (%.3f %%), %d bytes of filters", positives, n, 100*float64(positives)/n, len(d.gens)*len(d.gens[0].blocks)*64)
}

// The cost of a lookup with every generation full (the committer pays it per send).
func BenchmarkRecentDedups_Miss(b *testing.B) {
	const n = 1 << 20
	d := newRecentDedups(n, time.Time{})
	t0 := time.Unix(1000, 0)
	for i := range n {
		d.add(fmt.Appendf(nil, "c2c/user%d/peer%d/%d/0123456789abcdef", i, i, i), t0)
	}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "c2c/user%d/other%d/%d/0123456789abcdef", i, i, i)
	}
	now := t0.Add(time.Second)
	b.ResetTimer()
	for i := range b.N {
		d.missIsFinal(keys[i%len(keys)], now, time.Minute)
	}
}
