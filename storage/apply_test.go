package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// testLog is the tests' log: an ordered in-process slice with the fence
// a real log makes (package cluster: JetStream's expected last sequence).
type testLog struct {
	mu       sync.Mutex
	effects  [][]byte
	err      error         // when set, Append fails with it and appends nothing
	appended chan struct{} // a token after each append (tail)
}

func newTestLog() *testLog { return &testLog{appended: make(chan struct{}, 1)} }

func (l *testLog) Append(_ context.Context, prev uint64, effect []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	if prev != uint64(len(l.effects)) {
		return 0, fmt.Errorf("the log is at %d, not %d: %w", len(l.effects), prev, ErrFenced)
	}
	l.effects = append(l.effects, bytes.Clone(effect))
	select {
	case l.appended <- struct{}{}:
	default:
	}
	return uint64(len(l.effects)), nil
}

func (l *testLog) last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.effects))
}

func (l *testLog) at(pos uint64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.effects[pos-1]
}

// catchUp applies to s every effect it has not applied.
func (l *testLog) catchUp(t *testing.T, s *Store) {
	t.Helper()
	for pos := s.Applied() + 1; pos <= l.last(); pos++ {
		if err := s.Apply(pos, l.at(pos)); err != nil {
			t.Fatalf("apply %d: %v", pos, err)
		}
	}
}

// commitRecord keeps what OnCommit was given, in order.
type commitRecord struct {
	mu      sync.Mutex
	entries []Entry
}

func (c *commitRecord) onCommit(es []Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, es...)
}

func (c *commitRecord) all() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Entry(nil), c.entries...)
}

// openLogged opens a store on disk in dir that commits through l.
func openLogged(t *testing.T, dir string, l Log, rec *commitRecord) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, Sync: true, Log: l, OnCommit: rec.onCommit})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dump returns every key and value in s's Pebble.
func dump(t *testing.T, s *Store) []KV {
	t.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []KV
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, KV{Name: string(it.Key()), Value: bytes.Clone(it.Value())})
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameContents fails unless a and b hold exactly the same keys and values.
func sameContents(t *testing.T, a, b *Store) {
	t.Helper()
	da, db := dump(t, a), dump(t, b)
	for i := 0; i < len(da) || i < len(db); i++ {
		switch {
		case i >= len(da):
			t.Fatalf("only the second store has %q = %q", db[i].Name, db[i].Value)
		case i >= len(db):
			t.Fatalf("only the first store has %q = %q", da[i].Name, da[i].Value)
		case da[i].Name != db[i].Name || !bytes.Equal(da[i].Value, db[i].Value):
			t.Fatalf("key %d: %q = %q, and %q = %q", i, da[i].Name, da[i].Value, db[i].Name, db[i].Value)
		}
	}
	if len(da) == 0 {
		t.Fatal("nothing stored")
	}
}

// sameEntries fails unless two OnCommit records are the same entries.
func sameEntries(t *testing.T, a, b []Entry) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d entries, and %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Stream != b[i].Stream || a[i].Pos != b[i].Pos || !bytes.Equal(a[i].Payload, b[i].Payload) || !a[i].Time.Equal(b[i].Time) {
			t.Fatalf("entry %d: %s %+v %q %v, and %s %+v %q %v", i,
				a[i].Stream, a[i].Pos, a[i].Payload, a[i].Time, b[i].Stream, b[i].Pos, b[i].Payload, b[i].Time)
		}
	}
}

// gapFree fails unless every stream's entries in an OnCommit record follow
// each other: the next seq in the same epoch, or seq 1 (a new history).
func gapFree(t *testing.T, es []Entry) {
	t.Helper()
	last := map[string]Pos{}
	for i, e := range es {
		p, seen := last[e.Stream]
		if e.Pos.Seq != 1 && (!seen || e.Pos.Seq != p.Seq+1 || e.Pos.Epoch != p.Epoch) {
			t.Fatalf("entry %d: %s %+v after %+v", i, e.Stream, e.Pos, p)
		}
		last[e.Stream] = e.Pos
	}
}

// bodiesHold fails unless every entry that refers to a body finds it, and
// no body has more referring entries than it counts: two groups writing
// the same body id would break both.
func bodiesHold(t *testing.T, s *Store) {
	t.Helper()
	refs := map[uint64]uint64{}
	for _, kv := range dump(t, s) {
		if kv.Name[0] != kindEntry {
			continue
		}
		if _, _, id, ref, err := decodeEntry(kv.Value); err == nil && ref {
			refs[id]++
		}
	}
	for id, n := range refs {
		v, closer, err := s.db.Get(bodyKey(id))
		if err != nil {
			t.Fatalf("body %d (%d entries refer to it): %v", id, n, err)
		}
		held, _, err := decodeBody(v)
		closer.Close()
		if err != nil || held < n {
			t.Fatalf("body %d counts %d references, %d entries refer to it (%v)", id, held, n, err)
		}
	}
}

// batchGen makes random batches over small pools of streams and names, so
// that batches and groups meet: appends (shared payloads, indexes),
// dedups, sets, deletes, updates (some failing), replaces, trims, drops
// and expired-dedup deletions.
type batchGen struct {
	rng *rand.Rand
	n   int
}

var (
	genStreams = []string{"u/a", "u/b", "c/a:b", "g/1"}
	genNames   = []string{"k/1", "k/2", "k/3"}
	genCounts  = []string{"n/1", "n/2"} // changed only by counter updates: their value is checked
)

// genBatch is a batch and what the test expects of it.
type genBatch struct {
	b        Batch
	fails    bool           // an Update fails it
	counts   map[string]int // counter increments if it commits
	longDeds bool           // its dedup key has a long TTL: a later batch with it is a duplicate
}

func (g *batchGen) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *batchGen) batch() genBatch {
	r := g.rng
	g.n++
	gb := genBatch{counts: map[string]int{}}
	b := &gb.b
	for i := range r.IntN(5) {
		a := Append{Stream: g.pick(genStreams), Payload: fmt.Appendf(nil, "p%d.%d", g.n, i)}
		if i > 0 && r.IntN(3) == 0 {
			if j := r.IntN(i); b.Appends[j].SameAs == 0 {
				a.SameAs, a.Payload = j+1, nil
			}
		}
		if r.IntN(4) == 0 {
			a.Index = fmt.Sprintf("mk/%d.%d", g.n, i)
		}
		b.Appends = append(b.Appends, a)
	}
	if r.IntN(3) == 0 {
		if r.IntN(2) == 0 {
			b.DedupKey, b.DedupTTL, gb.longDeds = fmt.Appendf(nil, "dl/%d", r.IntN(6)), time.Hour, true
		} else {
			b.DedupKey, b.DedupTTL = fmt.Appendf(nil, "ds/%d", r.IntN(3)), time.Millisecond
		}
		b.DedupValue = fmt.Appendf(nil, "v%d", g.n)
	}
	if r.IntN(4) == 0 {
		b.Sets = map[string][]byte{g.pick(genNames): fmt.Appendf(nil, "s%d", g.n)}
	}
	if r.IntN(6) == 0 {
		b.Deletes = []string{g.pick(genNames)}
	}
	if r.IntN(3) == 0 {
		n := g.pick(genCounts)
		b.Updates = append(b.Updates, counter(n))
		gb.counts[n]++
	}
	if r.IntN(5) == 0 { // an update that rewrites a name, or deletes it
		n, del := g.pick(genNames), r.IntN(3) == 0
		b.Updates = append(b.Updates, Update{Name: n, Fn: func(cur []byte, _ bool, _ []Pos) ([]byte, error) {
			if del {
				return nil, nil
			}
			return append(bytes.Clone(cur), 'u'), nil
		}})
	}
	if r.IntN(12) == 0 {
		gb.fails = true
		b.Updates = append(b.Updates, Update{Name: g.pick(genNames), Fn: func([]byte, bool, []Pos) ([]byte, error) {
			return nil, errors.New("refused")
		}})
	}
	if r.IntN(5) == 0 {
		b.Replaces = []Replace{{Stream: g.pick(genStreams), Seq: uint64(1 + r.IntN(8)), Payload: fmt.Appendf(nil, "r%d", g.n)}}
	}
	if r.IntN(8) == 0 {
		b.Trims = []Trim{{Stream: g.pick(genStreams), Below: uint64(1 + r.IntN(10))}}
	}
	if r.IntN(20) == 0 {
		b.Drops = []string{g.pick(genStreams)}
	}
	if r.IntN(8) == 0 {
		b.ExpireDedups = [][]byte{fmt.Appendf(nil, "ds/%d", r.IntN(3))}
	}
	return gb
}

// logRun drives stores through one log, checking as it goes what a single
// node guarantees: a long-TTL resend is a duplicate, counters count every
// committed update, reads see every returned commit.
type logRun struct {
	t      *testing.T
	log    *testLog
	gen    *batchGen
	dedups map[string]bool // long-TTL keys committed
	counts map[string]int
}

// round commits k random batches through w, submitted together so that
// they share groups.
func (lr *logRun) round(w *Store, k int) {
	t := lr.t
	t.Helper()
	lr.log.catchUp(t, w)
	for _, n := range genNames { // fill the read cache, which a commit elsewhere must invalidate
		if _, _, err := w.Get(n); err != nil {
			t.Fatal(err)
		}
	}
	gbs := make([]genBatch, k)
	ps := make([]*Pending, k)
	for i := range gbs {
		gbs[i] = lr.gen.batch()
		p, err := w.Submit(context.Background(), gbs[i].b)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	for i, p := range ps {
		gb := gbs[i]
		res, err := waitPending(t, p)
		if gb.fails {
			if err == nil && !res.Duplicate {
				t.Fatalf("batch %d: a failing update committed", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		key := string(gb.b.DedupKey)
		if gb.longDeds && lr.dedups[key] && !res.Duplicate {
			t.Fatalf("batch %d: a resend of %s within its TTL was stored again", i, key)
		}
		if res.Duplicate {
			continue
		}
		if gb.longDeds {
			lr.dedups[key] = true
		}
		for n, c := range gb.counts {
			lr.counts[n] += c
		}
	}
	for n, want := range lr.counts {
		if v, _, err := w.Get(n); err != nil || string(v) != fmt.Sprint(want) {
			t.Fatalf("counter %s = %q (%v), want %d", n, v, err, want)
		}
	}
}

// checkReads fails unless Get on s returns what its Pebble holds: the read
// cache forgot what applied effects wrote.
func checkReads(t *testing.T, s *Store) {
	t.Helper()
	for _, n := range append(append([]string(nil), genNames...), genCounts...) {
		got, found, err := s.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		raw, closer, rerr := s.db.Get(kvKey(n))
		if rerr == nil {
			defer closer.Close()
		}
		if found != (rerr == nil) || !bytes.Equal(got, raw) {
			t.Fatalf("Get(%s) = %q %v, Pebble holds %q (%v)", n, got, found, raw, rerr)
		}
	}
}

// runLogged commits random groups through a log, by A alone (B follows) or
// by A and B in turn (each applies the other's groups before it writes,
// both staying writers: only Apply keeps their caches right), and checks
// that both stores end identical, with identical OnCommit records.
func runLogged(t *testing.T, seed uint64, rounds int, alternate bool) {
	l := newTestLog()
	var ra, rb commitRecord
	a := openLogged(t, t.TempDir(), l, &ra)
	b := openLogged(t, t.TempDir(), l, &rb)
	a.SetWriter(true)
	if alternate {
		b.SetWriter(true)
	}
	lr := &logRun{t: t, log: l, gen: &batchGen{rng: rand.New(rand.NewPCG(seed, 18))}, dedups: map[string]bool{}, counts: map[string]int{}}
	for range rounds {
		w := a
		if alternate && lr.gen.rng.IntN(2) == 0 {
			w = b
		}
		lr.round(w, 1+lr.gen.rng.IntN(6))
		if lr.gen.rng.IntN(3) == 0 {
			l.catchUp(t, b) // a follower that lags, or not
		}
		checkReads(t, b)
	}
	l.catchUp(t, a)
	l.catchUp(t, b)
	if a.Applied() != l.last() || b.Applied() != l.last() {
		t.Fatalf("applied %d and %d of %d", a.Applied(), b.Applied(), l.last())
	}
	sameContents(t, a, b)
	sameEntries(t, ra.all(), rb.all())
	gapFree(t, ra.all())
	bodiesHold(t, a)
	checkReads(t, a)
	checkReads(t, b)
}

// A follower that applies every effect holds exactly what the writer
// holds, every key, and its OnCommit gets the writer's entries; two
// writers taking turns on one log stay as consistent as one.
func FuzzApplyMatchesWriter(f *testing.F) {
	for seed := range uint64(4) {
		f.Add(seed, uint8(40), seed%2 == 1)
	}
	f.Fuzz(func(t *testing.T, seed uint64, rounds uint8, alternate bool) {
		runLogged(t, seed, 1+int(rounds%64), alternate)
	})
}

func TestApply_ManySeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("many stores on disk")
	}
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runLogged(t, 100+seed, 30, seed%2 == 0) })
	}
}
