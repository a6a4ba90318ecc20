package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func openStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// backends runs a test against the in-memory and the on-disk store.
func backends(t *testing.T, fn func(t *testing.T, opts Options)) {
	t.Run("mem", func(t *testing.T) { fn(t, Options{InMemory: true}) })
	t.Run("disk", func(t *testing.T) { fn(t, Options{Dir: t.TempDir(), Sync: true}) })
}

func TestStore_AppendReadInOrder(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		for i := 1; i <= 5; i++ {
			res, err := s.Commit(ctx, Batch{Appends: []Append{
				{Stream: "u/bob", Payload: []byte(fmt.Sprintf("m%d", i))},
				{Stream: "u/alice", Payload: []byte(fmt.Sprintf("m%d", i))},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Pos[0].Seq != uint64(i) || res.Pos[1].Seq != uint64(i) {
				t.Fatalf("commit %d: positions %+v", i, res.Pos)
			}
		}
		head, got, err := s.Read("u/bob", 2, 10)
		if err != nil {
			t.Fatal(err)
		}
		if head.Seq != 5 || len(got) != 3 {
			t.Fatalf("head %+v, %d entries", head, len(got))
		}
		for i, e := range got {
			if e.Pos.Seq != uint64(i+3) || string(e.Payload) != fmt.Sprintf("m%d", i+3) || e.Pos.Epoch != head.Epoch {
				t.Fatalf("entry %d = %+v %q", i, e.Pos, e.Payload)
			}
		}
		_, page, _ := s.Read("u/bob", 0, 2)
		if len(page) != 2 || page[1].Pos.Seq != 2 {
			t.Fatalf("limit not applied: %d", len(page))
		}
		_, none, _ := s.Read("u/nobody", 0, 10)
		if len(none) != 0 {
			t.Fatal("unknown stream has entries")
		}
	})
}

func TestStore_ConcurrentCommitsAreGapFree(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		var mu sync.Mutex
		var seen []uint64
		opts.OnCommit = func(es []Entry) {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range es {
				seen = append(seen, e.Pos.Seq)
			}
		}
		s := openStore(t, opts)
		const writers, each = 8, 50
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if _, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/x", Payload: []byte("p")}}}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		head, all, err := s.Read("u/x", 0, writers*each+10)
		if err != nil || head.Seq != writers*each || len(all) != writers*each {
			t.Fatalf("head %+v entries %d err %v", head, len(all), err)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, seq := range seen {
			if seq != uint64(i+1) {
				t.Fatalf("OnCommit order broken at %d: seq %d", i, seq)
			}
		}
	})
}

func TestStore_Dedup(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		b := Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("x")}}, DedupKey: []byte("k1"), DedupValue: []byte("first"), DedupTTL: time.Minute}
		r1, err := s.Commit(ctx, b)
		if err != nil || r1.Duplicate {
			t.Fatalf("first: %+v %v", r1, err)
		}
		b.DedupValue = []byte("second")
		r2, err := s.Commit(ctx, b)
		if err != nil || !r2.Duplicate || string(r2.DedupValue) != "first" {
			t.Fatalf("second: %+v %v", r2, err)
		}
		if head, _ := s.Head("u/a"); head.Seq != 1 {
			t.Fatalf("duplicate appended: head %+v", head)
		}
		// An expired dedup record does not block a new commit.
		exp := Batch{Appends: b.Appends, DedupKey: []byte("k2"), DedupTTL: -time.Second}
		if _, err := s.Commit(ctx, exp); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Commit(ctx, exp); r.Duplicate {
			t.Fatal("expired dedup record still matched")
		}
	})
}

func TestStore_ReopenKeepsPositions(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("1")}}, Sets: map[string][]byte{"k": []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Commit(context.Background(), Batch{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
	s2 := openStore(t, Options{Dir: dir, Sync: true})
	r2, err := s2.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: []byte("2")}}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Pos[0].Seq != 2 || r2.Pos[0].Epoch != r.Pos[0].Epoch {
		t.Fatalf("after reopen %+v, before %+v", r2.Pos[0], r.Pos[0])
	}
	if v, ok, _ := s2.Get("k"); !ok || string(v) != "v" {
		t.Fatalf("kv lost: %q %v", v, ok)
	}
}

func TestStore_RejectsBadStream(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	for _, name := range []string{"", "a\x00b"} {
		if _, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: name}}}); !errors.Is(err, ErrBadStream) {
			t.Fatalf("%q: %v", name, err)
		}
	}
}

func BenchmarkStore_CommitSync(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), Sync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 256)
	b.SetBytes(int64(2 * len(payload)))
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Commit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: payload}, {Stream: "u/b", Payload: payload}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestStore_KVScanDeleteAndDrop(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		sets := map[string][]byte{}
		for _, n := range []string{"gm/g1/a", "gm/g1/b", "gm/g1/c", "gm/g10/x", "gm/g2/a"} {
			sets[n] = []byte(n)
		}
		first, err := s.Commit(ctx, Batch{Sets: sets, Appends: []Append{{Stream: "g/g1", Payload: []byte("m1")}}})
		if err != nil {
			t.Fatal(err)
		}
		kvs, err := s.Scan("gm/g1/", "", 10)
		if err != nil || len(kvs) != 3 || kvs[0].Name != "gm/g1/a" || kvs[2].Name != "gm/g1/c" {
			t.Fatalf("scan: %+v %v", kvs, err)
		}
		page, _ := s.Scan("gm/g1/", "gm/g1/a", 1)
		if len(page) != 1 || page[0].Name != "gm/g1/b" {
			t.Fatalf("paged scan: %+v", page)
		}
		if _, err := s.Commit(ctx, Batch{Deletes: []string{"gm/g1/b"}, Drops: []string{"g/g1"}}); err != nil {
			t.Fatal(err)
		}
		kvs, _ = s.Scan("gm/g1/", "", 10)
		if len(kvs) != 2 {
			t.Fatalf("after delete: %+v", kvs)
		}
		head, entries, _ := s.Read("g/g1", 0, 10)
		if head.Seq != 0 || len(entries) != 0 {
			t.Fatalf("dropped stream still has %+v %d", head, len(entries))
		}
		// A new append after a drop starts a new history: seq 1, a new epoch.
		s.nowEpoch = func() uint64 { return first.Pos[0].Epoch + 1 }
		r, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "g/g1", Payload: []byte("new")}}})
		if err != nil || r.Pos[0].Seq != 1 || r.Pos[0].Epoch == first.Pos[0].Epoch {
			t.Fatalf("after drop: %+v %v (old epoch %d)", r.Pos, err, first.Pos[0].Epoch)
		}
	})
}

func TestStore_UpdatesAreAtomicAndSeePositions(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		incr := func(old []byte, found bool, pos []Pos) []byte {
			n := 0
			if found {
				fmt.Sscan(string(old), &n)
			}
			return []byte(fmt.Sprint(n + 1))
		}
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if _, err := s.Commit(context.Background(), Batch{Updates: []Update{{Name: "ctr", Fn: incr}}}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if v, _, _ := s.Get("ctr"); string(v) != "400" {
			t.Fatalf("counter = %s, want 400: lost updates", v)
		}
		var seen []Pos
		_, err := s.Commit(context.Background(), Batch{
			Appends: []Append{{Stream: "u/a", Payload: []byte("x")}},
			Updates: []Update{{Name: "last", Fn: func(_ []byte, _ bool, pos []Pos) []byte { seen = pos; return []byte("set") }}},
		})
		if err != nil || len(seen) != 1 || seen[0].Seq != 1 {
			t.Fatalf("update saw %+v, %v", seen, err)
		}
		// nil deletes; Replace overwrites an entry and skips missing ones.
		if _, err := s.Commit(context.Background(), Batch{
			Updates:  []Update{{Name: "last", Fn: func([]byte, bool, []Pos) []byte { return nil }}},
			Replaces: []Replace{{Stream: "u/a", Seq: 1, Payload: []byte("recalled")}, {Stream: "u/a", Seq: 9, Payload: []byte("nope")}},
		}); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Get("last"); ok {
			t.Fatal("nil update did not delete")
		}
		head, es, _ := s.Read("u/a", 0, 10)
		if head.Seq != 1 || len(es) != 1 || string(es[0].Payload) != "recalled" {
			t.Fatalf("after replace: %+v %+v", head, es)
		}
	})
}

// decodedCtr is a Decoded counter: it records whether each call got the
// decoded form (prev) or had to parse the stored bytes.
type decodedCtr struct {
	mu            sync.Mutex
	hits, parsed  int
	parseFailures int
}

func (d *decodedCtr) update(name string) Update {
	return Update{Name: name, Decoded: func(old []byte, prev any, found bool, _ []Pos) ([]byte, any) {
		d.mu.Lock()
		defer d.mu.Unlock()
		n := 0
		switch {
		case prev != nil:
			d.hits++
			n = *prev.(*int)
		case found:
			d.parsed++
			if _, err := fmt.Sscan(string(old), &n); err != nil {
				d.parseFailures++
			}
		}
		n++
		return []byte(fmt.Sprint(n)), &n
	}}
}

func TestStore_DecodedUpdatesKeepTheRecordDecoded(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		var d decodedCtr
		commit := func(b Batch) {
			t.Helper()
			if _, err := s.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		get := func() string { v, _, _ := s.Get("ctr"); return string(v) }
		// Concurrent Decoded updates lose nothing.
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if _, err := s.Commit(ctx, Batch{Updates: []Update{d.update("ctr")}}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if get() != "400" || d.parsed != 0 || d.hits != 399 {
			t.Fatalf("ctr %s, parsed %d, hits %d: want 400, 0, 399", get(), d.parsed, d.hits)
		}
		// Two updates of one record in one batch: the second sees the first.
		commit(Batch{Updates: []Update{d.update("ctr"), d.update("ctr")}})
		if get() != "402" {
			t.Fatalf("ctr %s after two in one batch, want 402", get())
		}
		// A Set drops the decoded form: the next update reads the stored value.
		commit(Batch{Sets: map[string][]byte{"ctr": []byte("10")}})
		d.parsed = 0
		commit(Batch{Updates: []Update{d.update("ctr")}})
		if get() != "11" || d.parsed != 1 {
			t.Fatalf("after Set: ctr %s, parsed %d; want 11, 1", get(), d.parsed)
		}
		// So does an Fn update, in the same batch as Decoded ones too.
		double := Update{Name: "ctr", Fn: func(old []byte, _ bool, _ []Pos) []byte {
			var n int
			fmt.Sscan(string(old), &n)
			return []byte(fmt.Sprint(2 * n))
		}}
		commit(Batch{Updates: []Update{d.update("ctr"), double}}) // 12, then 24
		d.parsed = 0
		commit(Batch{Updates: []Update{d.update("ctr")}})
		if get() != "25" || d.parsed != 1 {
			t.Fatalf("after Fn: ctr %s, parsed %d; want 25, 1", get(), d.parsed)
		}
		// And a Delete: the next update starts from nothing.
		commit(Batch{Deletes: []string{"ctr"}})
		commit(Batch{Updates: []Update{d.update("ctr")}})
		if get() != "1" {
			t.Fatalf("after Delete: ctr %s, want 1", get())
		}
		// A Decoded update returning nil deletes the record and its decoded form.
		commit(Batch{Updates: []Update{{Name: "ctr", Decoded: func([]byte, any, bool, []Pos) ([]byte, any) { return nil, nil }}}})
		if _, ok, _ := s.Get("ctr"); ok {
			t.Fatal("nil Decoded update did not delete")
		}
		d.hits = 0
		commit(Batch{Updates: []Update{d.update("ctr")}})
		if get() != "1" || d.hits != 0 || d.parseFailures != 0 {
			t.Fatalf("after nil update: ctr %s, hits %d, parse failures %d", get(), d.hits, d.parseFailures)
		}
	})
}

func TestStore_DecodedRecordsAreBounded(t *testing.T) {
	s := openStore(t, Options{InMemory: true, DecodedRecords: 16})
	var d decodedCtr
	for i := 0; i < 100; i++ {
		if _, err := s.Commit(context.Background(), Batch{Updates: []Update{d.update(fmt.Sprint("r", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	// Evicted records are read back and parsed: nothing is lost.
	for i := 0; i < 100; i++ {
		if _, err := s.Commit(context.Background(), Batch{Updates: []Update{d.update(fmt.Sprint("r", i))}}); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := s.Get(fmt.Sprint("r", i)); string(v) != "2" {
			t.Fatalf("r%d = %s, want 2", i, v)
		}
	}
	if d.parsed < 100-16 || d.hits > 16 {
		t.Fatalf("parsed %d, hits %d: the bound of 16 was not applied", d.parsed, d.hits)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.decoded); n > 16 {
		t.Fatalf("%d records kept decoded, bound 16", n)
	}
}

func TestStore_BlindUpdateDoesNotRead(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	var gotOld []byte
	var gotFound bool
	_, err := s.Commit(ctx, Batch{
		Appends: []Append{{Stream: "c/a:b", Payload: []byte("m")}},
		Updates: []Update{{Name: "k", Blind: true, Fn: func(old []byte, found bool, pos []Pos) []byte {
			gotOld, gotFound = old, found
			return []byte(fmt.Sprint(pos[0].Seq))
		}}},
	})
	if err != nil || gotOld != nil || gotFound {
		t.Fatalf("blind update got %q %v, %v", gotOld, gotFound, err)
	}
	if v, _, _ := s.Get("k"); string(v) != "1" {
		t.Fatalf("k = %s, want 1", v)
	}
}

// Get is served from the read cache, which never hides a commit that has
// returned: a reader that starts after Commit returns sees its writes, while
// other readers keep filling the cache concurrently.
func TestStore_GetCacheSeesEveryReturnedCommit(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		if _, ok, _ := s.Get("k"); ok { // caches "absent"
			t.Fatal("k exists")
		}
		if err := s.Set(ctx, "k", []byte("1")); err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := s.Get("k"); !ok || string(v) != "1" {
			t.Fatalf("after Set: %q %v", v, ok)
		}
		v, _, _ := s.Get("k")
		v[0] = 'x' // a caller's copy: changing it changes nothing stored or cached
		if v, _, _ := s.Get("k"); string(v) != "1" {
			t.Fatalf("cached value changed through a returned slice: %q", v)
		}
		if _, err := s.Commit(ctx, Batch{Deletes: []string{"k"}}); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Get("k"); ok {
			t.Fatal("k still there after Delete")
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for r := 0; r < 4; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						_, _, _ = s.Get("ctr")
					}
				}
			}()
		}
		incr := Update{Name: "ctr", Fn: func(old []byte, found bool, _ []Pos) []byte {
			n := 0
			if found {
				fmt.Sscan(string(old), &n)
			}
			return []byte(fmt.Sprint(n + 1))
		}}
		for i := 1; i <= 300; i++ {
			if _, err := s.Commit(ctx, Batch{Updates: []Update{incr}}); err != nil {
				t.Fatal(err)
			}
			if v, _, _ := s.Get("ctr"); string(v) != fmt.Sprint(i) {
				close(stop)
				t.Fatalf("after commit %d Get returned %q", i, v)
			}
		}
		close(stop)
		wg.Wait()
	})
}

func TestStore_ReadCacheIsBounded(t *testing.T) {
	s := openStore(t, Options{InMemory: true, ReadCacheBytes: 4096})
	for i := 0; i < 1000; i++ {
		if _, ok, err := s.Get(fmt.Sprint("missing/", i)); ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	s.reads.mu.RLock()
	defer s.reads.mu.RUnlock()
	if s.reads.bytes > 4096 || len(s.reads.m) == 0 {
		t.Fatalf("cache holds %d bytes in %d records, budget 4096", s.reads.bytes, len(s.reads.m))
	}
}
