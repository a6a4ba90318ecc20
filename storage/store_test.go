package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
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

// counter is an Update that counts in decimal.
func counter(name string) Update {
	return Update{Name: name, Fn: func(cur []byte, found bool, _ []Pos) ([]byte, error) {
		n := 0
		if found {
			if _, err := fmt.Sscan(string(cur), &n); err != nil {
				return nil, fmt.Errorf("counter %s: %w", name, err)
			}
		}
		return fmt.Append(nil, n+1), nil
	}}
}

func TestStore_UpdatesAreAtomicAndSeePositions(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if _, err := s.Commit(context.Background(), Batch{Updates: []Update{counter("ctr")}}); err != nil {
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
			Updates: []Update{{Name: "last", Fn: func(_ []byte, _ bool, pos []Pos) ([]byte, error) { seen = pos; return []byte("set"), nil }}},
		})
		if err != nil || len(seen) != 1 || seen[0].Seq != 1 {
			t.Fatalf("update saw %+v, %v", seen, err)
		}
		// nil deletes; Replace overwrites an entry and skips missing ones.
		if _, err := s.Commit(context.Background(), Batch{
			Updates:  []Update{{Name: "last", Fn: func([]byte, bool, []Pos) ([]byte, error) { return nil, nil }}},
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

// An Update's error fails its batch, which writes nothing, and comes back
// from Commit.
func TestStore_UpdateErrorFailsTheBatch(t *testing.T) {
	s := openStore(t, Options{InMemory: true})
	ctx := context.Background()
	if err := s.Set(ctx, "ctr", []byte("not a number")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Commit(ctx, Batch{
		Appends: []Append{{Stream: "u/a", Payload: []byte("x"), Index: "idx"}},
		Sets:    map[string][]byte{"other": []byte("1")},
		Updates: []Update{counter("ctr")},
	})
	if err == nil || !strings.Contains(err.Error(), "update ctr: counter ctr") {
		t.Fatalf("commit: %v, want the update's error with its record", err)
	}
	if head, _ := s.Head("u/a"); head.Seq != 0 {
		t.Fatalf("failed batch appended: head %+v", head)
	}
	for _, name := range []string{"other", "idx"} {
		if _, ok, _ := s.Get(name); ok {
			t.Fatalf("failed batch wrote %s", name)
		}
	}
}

// The next Update of a record gets what the last one wrote from the update
// cache, not from Pebble; any other write of the record is seen instead.
func TestStore_UpdateCacheServesTheLastUpdate(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		commit := func(b Batch) {
			t.Helper()
			if _, err := s.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		get := func() string { v, _, _ := s.Get("ctr"); return string(v) }
		commit(Batch{Updates: []Update{counter("ctr")}})
		// Behind the store's back: a cached record is not read again.
		if err := s.db.Set(kvKey("ctr"), []byte("100"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		commit(Batch{Updates: []Update{counter("ctr")}})
		if get() != "2" {
			t.Fatalf("ctr %s, want 2: the update read Pebble instead of the cache", get())
		}
		// Two updates of one record in one batch: the second sees the first.
		commit(Batch{Updates: []Update{counter("ctr"), counter("ctr")}})
		if get() != "4" {
			t.Fatalf("ctr %s after two in one batch, want 4", get())
		}
		// A Set replaces the cached value, in a batch of its own or before an update.
		commit(Batch{Sets: map[string][]byte{"ctr": []byte("10")}})
		commit(Batch{Updates: []Update{counter("ctr")}})
		if get() != "11" {
			t.Fatalf("after Set: ctr %s, want 11", get())
		}
		// So does a Delete, and an update deleting the record.
		commit(Batch{Deletes: []string{"ctr"}})
		commit(Batch{Updates: []Update{counter("ctr")}})
		if get() != "1" {
			t.Fatalf("after Delete: ctr %s, want 1", get())
		}
		commit(Batch{Updates: []Update{{Name: "ctr", Fn: func([]byte, bool, []Pos) ([]byte, error) { return nil, nil }}}})
		commit(Batch{Updates: []Update{counter("ctr")}})
		if get() != "1" {
			t.Fatalf("after a deleting update: ctr %s, want 1", get())
		}
	})
}

func TestStore_UpdateCacheIsBounded(t *testing.T) {
	s := openStore(t, Options{InMemory: true, UpdateCacheBytes: 4096})
	for round := 1; round <= 2; round++ {
		for i := 0; i < 100; i++ {
			name := fmt.Sprint("r", i)
			if _, err := s.Commit(context.Background(), Batch{Updates: []Update{counter(name)}}); err != nil {
				t.Fatal(err)
			}
			// Evicted records are read back: nothing is lost.
			if v, _, _ := s.Get(name); string(v) != fmt.Sprint(round) {
				t.Fatalf("%s = %s, want %d", name, v, round)
			}
		}
	}
	if err := s.Close(); err != nil { // the committer is done with the cache
		t.Fatal(err)
	}
	if s.updated.bytes > 4096 || len(s.updated.m) == 0 {
		t.Fatalf("update cache holds %d bytes in %d records, budget 4096", s.updated.bytes, len(s.updated.m))
	}
}

// Append.Index sets a record to the append's seq, without reading it.
func TestStore_AppendIndex(t *testing.T) {
	backends(t, func(t *testing.T, opts Options) {
		s := openStore(t, opts)
		ctx := context.Background()
		appendN(t, s, "c/a:b", 41)
		if err := s.Set(ctx, "mk/old", []byte("whatever")); err != nil {
			t.Fatal(err)
		}
		r, err := s.Commit(ctx, Batch{Appends: []Append{
			{Stream: "u/a", Payload: []byte("m")},
			{Stream: "c/a:b", Payload: []byte("m"), Index: "mk/old"},
			{Stream: "c/a:b", Payload: []byte("m2"), Index: "mk/new"},
		}})
		if err != nil || r.Pos[1].Seq != 42 {
			t.Fatalf("commit: %+v %v", r, err)
		}
		for name, want := range map[string]string{"mk/old": "42", "mk/new": "43"} {
			if v, _, _ := s.Get(name); string(v) != want {
				t.Fatalf("%s = %q, want %s", name, v, want)
			}
		}
	})
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
		incr := counter("ctr")
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
