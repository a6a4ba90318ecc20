package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
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
	linger   bool          // Append yields before it returns: a tail reading the log runs meanwhile
}

func newTestLog() *testLog { return &testLog{appended: make(chan struct{}, 1)} }

func (l *testLog) Append(_ context.Context, prev uint64, effect []byte) (uint64, error) {
	pos, err := l.append(prev, effect)
	if l.linger && err == nil {
		for range 100 { // widen the window in which the effect is in the log but not applied here
			runtime.Gosched()
		}
	}
	return pos, err
}

func (l *testLog) append(prev uint64, effect []byte) (uint64, error) {
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

// A store with a Log starts as a follower: it commits nothing until it is
// made the writer, and SetWriter(false) refuses again.
func TestApply_FollowerRefusesWrites(t *testing.T) {
	l := newTestLog()
	var rec commitRecord
	s := openLogged(t, t.TempDir(), l, &rec)
	ctx := context.Background()
	if _, err := s.Commit(ctx, sharedBatch("x")); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("a follower committed: %v", err)
	}
	s.SetWriter(true)
	if _, err := s.Commit(ctx, sharedBatch("x")); err != nil {
		t.Fatal(err)
	}
	s.SetWriter(false)
	if _, err := s.Commit(ctx, sharedBatch("y")); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("a deposed writer committed: %v", err)
	}
	if l.last() != 1 || s.Applied() != 1 {
		t.Fatalf("log at %d, applied %d", l.last(), s.Applied())
	}
	if err := s.Apply(3, l.at(1)); err == nil {
		t.Fatal("an effect after a gap was applied")
	}
	single := openStore(t, Options{InMemory: true})
	single.SetWriter(false) // a single node always writes
	if _, err := single.Commit(ctx, sharedBatch("x")); err != nil {
		t.Fatal(err)
	}
	if err := single.Apply(1, l.at(1)); err == nil {
		t.Fatal("a store without a log applied an effect")
	}
}

// A writer whose append is fenced (another store appended first) writes
// nothing, fails the group with ErrFenced and stops writing until it has
// applied the log and is made the writer again; then its seqs go on.
func TestApply_FencedAppendWritesNothing(t *testing.T) {
	l := newTestLog()
	var ra, rb commitRecord
	a := openLogged(t, t.TempDir(), l, &ra)
	b := openLogged(t, t.TempDir(), l, &rb)
	a.SetWriter(true)
	b.SetWriter(true) // b believes it owns the log, too
	ctx := context.Background()
	if _, err := a.Commit(ctx, sharedBatch("from a")); err != nil {
		t.Fatal(err)
	}
	before := dump(t, b)
	_, err := b.Commit(ctx, Batch{Appends: []Append{{Stream: "u/bob", Payload: []byte("from b")}},
		DedupKey: []byte("d"), DedupTTL: time.Hour, Sets: map[string][]byte{"k": []byte("v")}, Updates: []Update{counter("n")}})
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced append: %v", err)
	}
	after := dump(t, b)
	if len(after) != len(before) || b.Applied() != 0 || l.last() != 1 {
		t.Fatalf("a fenced group wrote: %d keys before, %d after; applied %d; log at %d", len(before), len(after), b.Applied(), l.last())
	}
	if len(rb.all()) != 0 {
		t.Fatal("OnCommit ran for a fenced group")
	}
	if _, err := b.Commit(ctx, sharedBatch("again")); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("a fenced store went on writing: %v", err)
	}
	l.catchUp(t, b)
	b.SetWriter(true)
	res, err := b.Commit(ctx, Batch{Appends: []Append{{Stream: "u/bob", Payload: []byte("from b")}}, DedupKey: []byte("d"), DedupTTL: time.Hour})
	if err != nil || res.Duplicate || res.Pos[0].Seq != 2 {
		t.Fatalf("after catching up: %+v, %v", res, err)
	}
	if p := payloadAt(t, b, "u/bob", 1); p != "from a" {
		t.Fatalf("u/bob 1 = %q", p)
	}
	l.catchUp(t, a)
	sameContents(t, a, b)
	sameEntries(t, ra.all(), rb.all())
}

// An append the log fails for any other reason fails the group with that
// error and writes nothing; the store stays the writer.
func TestApply_FailedAppendWritesNothing(t *testing.T) {
	l := newTestLog()
	var rec commitRecord
	s := openLogged(t, t.TempDir(), l, &rec)
	s.SetWriter(true)
	ctx := context.Background()
	if _, err := s.Commit(ctx, sharedBatch("one")); err != nil {
		t.Fatal(err)
	}
	before := dump(t, s)
	noQuorum := errors.New("no quorum")
	l.mu.Lock()
	l.err = noQuorum
	l.mu.Unlock()
	if _, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/bob", Payload: []byte("lost")}}, Updates: []Update{counter("n")}}); !errors.Is(err, noQuorum) {
		t.Fatalf("commit while the log fails: %v", err)
	}
	if after := dump(t, s); len(after) != len(before) {
		t.Fatalf("a failed append wrote: %d keys before, %d after", len(before), len(after))
	}
	l.mu.Lock()
	l.err = nil
	l.mu.Unlock()
	res, err := s.Commit(ctx, Batch{Appends: []Append{{Stream: "u/bob", Payload: []byte("two")}}, Updates: []Update{counter("n")}})
	if err != nil || res.Pos[0].Seq != 2 {
		t.Fatalf("after the log came back: %+v, %v", res, err)
	}
	if v, _, _ := s.Get("n"); string(v) != "1" {
		t.Fatalf("counter = %q: the failed group's update was kept", v)
	}
	if s.Applied() != 2 {
		t.Fatalf("applied %d", s.Applied())
	}
}

// Handing the log from A to B: B's seqs go on from A's without a gap and
// with the same epochs, a resend of A's is a duplicate on B, counters go
// on, and B's body ids are new; A, following B, ends identical.
func TestApply_WriterSwitch(t *testing.T) {
	l := newTestLog()
	var ra, rb commitRecord
	a := openLogged(t, t.TempDir(), l, &ra)
	b := openLogged(t, t.TempDir(), l, &rb)
	a.SetWriter(true)
	ctx := context.Background()
	send := func(s *Store, i int) Result {
		t.Helper()
		batch := sharedBatch(fmt.Sprint("m", i))
		batch.DedupKey, batch.DedupTTL, batch.DedupValue = fmt.Append(nil, "d", i), time.Hour, fmt.Append(nil, i)
		batch.Updates = []Update{counter("n")}
		res, err := s.Commit(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	var last Result
	for i := range 5 {
		last = send(a, i)
	}
	bodiesOfA := bodies(t, a)
	maxID := uint64(0)
	for _, kv := range dump(t, a) {
		if kv.Name[0] == kindBody {
			maxID = max(maxID, seqOfEntryKey([]byte(kv.Name)))
		}
	}
	l.catchUp(t, b)
	a.SetWriter(false)
	b.SetWriter(true)
	if res := send(b, 4); !res.Duplicate || string(res.DedupValue) != "4" {
		t.Fatalf("a resend of A's message on B: %+v", res)
	}
	next := send(b, 5)
	for i, p := range next.Pos {
		if p.Epoch != last.Pos[i].Epoch || p.Seq != last.Pos[i].Seq+1 {
			t.Fatalf("append %d: %+v after %+v", i, p, last.Pos[i])
		}
	}
	if v, _, _ := b.Get("n"); string(v) != "6" {
		t.Fatalf("counter = %q, want 6", v)
	}
	for _, kv := range dump(t, b) {
		if kv.Name[0] == kindBody && seqOfEntryKey([]byte(kv.Name)) > maxID {
			maxID = 0 // B wrote a body of its own, with a new id
		}
	}
	if maxID != 0 || len(bodies(t, b)) != len(bodiesOfA)+1 {
		t.Fatalf("B's body reused an id: %d bodies after A's %d", len(bodies(t, b)), len(bodiesOfA))
	}
	l.catchUp(t, a)
	sameContents(t, a, b)
	sameEntries(t, ra.all(), rb.all())
	bodiesHold(t, b)
}

// A follower that stops (crashes) resumes at Applied()+1 after a restart:
// earlier positions are no-ops, a gap is refused, and it ends identical
// to the writer.
func TestApply_RestartResumes(t *testing.T) {
	l := newTestLog()
	var ra, rb commitRecord
	a := openLogged(t, t.TempDir(), l, &ra)
	a.SetWriter(true)
	ctx := context.Background()
	for i := range 10 {
		if _, err := a.Commit(ctx, sharedBatch(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	dirB := t.TempDir()
	b, err := Open(Options{Dir: dirB, Sync: true, Log: l, OnCommit: rb.onCommit})
	if err != nil {
		t.Fatal(err)
	}
	for pos := uint64(1); pos <= 6; pos++ {
		if err := b.Apply(pos, l.at(pos)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.crash(); err != nil {
		t.Fatal(err)
	}
	var rb2 commitRecord
	b = openLogged(t, dirB, l, &rb2)
	at := b.Applied()
	if at == 0 || at > 6 {
		t.Fatalf("applied %d after a restart (6 before)", at)
	}
	if err := b.Apply(at, l.at(at)); err != nil || len(rb2.all()) != 0 {
		t.Fatalf("re-applying %d: %v, %d entries", at, err, len(rb2.all()))
	}
	if err := b.Apply(at+2, l.at(at+2)); err == nil || b.Applied() != at {
		t.Fatalf("a gap: %v, applied %d", err, b.Applied())
	}
	l.catchUp(t, b)
	sameContents(t, a, b)
	all := ra.all()
	sameEntries(t, all[len(all)-len(rb2.all()):], rb2.all())
}

// The writer's own effects come back to it from the log, maybe while it
// is still committing them: Apply waits for the committer and finds them
// applied, so each is committed (and given to OnCommit) once.
func TestApply_OwnEffectsAppliedOnce(t *testing.T) {
	l := newTestLog()
	l.linger = true
	var ra, rb commitRecord
	a := openLogged(t, t.TempDir(), l, &ra)
	b := openLogged(t, t.TempDir(), l, &rb)
	a.SetWriter(true)
	ctx, cancel := context.WithCancel(context.Background())
	tailed := make(chan error, 1)
	go func() { // the tail of the log, as the cluster delivers it to every node
		var pos uint64
		for {
			for pos < l.last() {
				pos++
				if err := a.Apply(pos, l.at(pos)); err != nil {
					tailed <- err
					return
				}
			}
			select {
			case <-l.appended:
			case <-ctx.Done():
				tailed <- nil
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if _, err := a.Commit(context.Background(), sharedBatch(fmt.Sprint(w, ".", i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-tailed; err != nil {
		t.Fatal(err)
	}
	if n := len(ra.all()); n != 4*50*3 {
		t.Fatalf("OnCommit got %d entries for %d", n, 4*50*3)
	}
	gapFree(t, ra.all())
	l.catchUp(t, b)
	sameContents(t, a, b)
	sameEntries(t, ra.all(), rb.all())
}

// The committer's cost of the log, without the log's own (an in-process
// slice, no network, no fsync): the same commits as BenchmarkStore_CommitSync
// through a local write without fsync, and through the log. "apply" is a
// follower applying those groups' effects (one C2C-shaped message each).
func BenchmarkStore_CommitLog(b *testing.B) {
	payload := make([]byte, 256)
	batch := func() Batch {
		return Batch{Appends: []Append{{Stream: "u/a", Payload: payload}, {Stream: "u/b", SameAs: 1}, {Stream: "c/a:b", SameAs: 1}},
			Updates: []Update{counter("cv/a"), counter("cv/b")}}
	}
	commit := func(b *testing.B, s *Store) {
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Commit(context.Background(), batch()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("local", func(b *testing.B) {
		s, err := Open(Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		commit(b, s)
	})
	b.Run("log", func(b *testing.B) {
		s, err := Open(Options{Dir: b.TempDir(), Sync: true, Log: newTestLog()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		s.SetWriter(true)
		commit(b, s)
	})
	b.Run("apply", func(b *testing.B) {
		l := newTestLog()
		w, err := Open(Options{Dir: b.TempDir(), Log: l})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		w.SetWriter(true)
		for range b.N {
			if _, err := w.Commit(context.Background(), batch()); err != nil {
				b.Fatal(err)
			}
		}
		f, err := Open(Options{Dir: b.TempDir(), Log: l, OnCommit: func([]Entry) {}})
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		b.ResetTimer()
		for pos := uint64(1); pos <= uint64(b.N); pos++ {
			if err := f.Apply(pos, l.at(pos)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzEffectDecode: any bytes given to Apply as an effect are refused with
// an error or accepted whole; none panics, and what is accepted is a batch
// whose every entry has its record.
func FuzzEffectDecode(f *testing.F) {
	l := newTestLog()
	s, err := Open(Options{InMemory: true, Log: l})
	if err != nil {
		f.Fatal(err)
	}
	s.SetWriter(true)
	batch := sharedBatch("seed")
	batch.DedupKey, batch.DedupTTL = []byte("d"), time.Hour
	batch.Updates, batch.Drops, batch.Trims = []Update{counter("n")}, []string{"g/1"}, []Trim{{Stream: "u/x", Below: 3}}
	if _, err := s.Commit(context.Background(), batch); err != nil {
		f.Fatal(err)
	}
	_ = s.Close()
	f.Add(l.at(1))
	f.Add([]byte{effectVersion})
	f.Add([]byte{effectVersion + 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		now, es, repr, err := decodeEffect(v)
		if err != nil {
			return
		}
		fx, err := scanEffect(repr, es, now)
		if err != nil {
			if !errors.Is(err, ErrBadEffect) {
				t.Fatalf("not a bad effect: %v", err)
			}
			return
		}
		if len(fx.entries) != len(es) {
			t.Fatalf("%d entries of %d", len(fx.entries), len(es))
		}
	})
}

// A group whose effect would pass MaxEffectBytes is split: the requests
// after the limit form the next group, each effect stays within the limit
// plus one request, and every request commits, in order.
func TestApply_LargeGroupSplits(t *testing.T) {
	l := newTestLog()
	var ra, rb commitRecord
	const limit = 4 << 10
	a, err := Open(Options{Dir: t.TempDir(), Log: l, OnCommit: ra.onCommit, MaxEffectBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetWriter(true)
	release := a.holdCommitter()
	payload := bytes.Repeat([]byte("x"), 1000)
	var ps []*Pending
	for range 40 {
		p, err := a.Submit(context.Background(), Batch{Appends: []Append{{Stream: "u/a", Payload: payload}, {Stream: "u/b", SameAs: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	release()
	for i, p := range ps {
		res, err := waitPending(t, p)
		if err != nil || res.Pos[0].Seq != uint64(i+1) {
			t.Fatalf("request %d: %+v, %v", i, res, err)
		}
	}
	if l.last() < 40*1000/limit {
		t.Fatalf("40 KB in %d effects of at most %d bytes", l.last(), limit)
	}
	for pos := uint64(1); pos <= l.last(); pos++ {
		if n := len(l.at(pos)); n > limit+len(payload)+300 {
			t.Fatalf("effect %d: %d bytes", pos, n)
		}
	}
	b := openLogged(t, t.TempDir(), l, &rb)
	l.catchUp(t, b)
	sameContents(t, a, b)
	sameEntries(t, ra.all(), rb.all())
}

// stuckLog never answers: its Append returns when its context ends (or
// the test ends, so that a store whose append has no deadline closes).
type stuckLog struct{ end chan struct{} }

func (l stuckLog) Append(ctx context.Context, _ uint64, _ []byte) (uint64, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-l.end:
		return 0, errors.New("test over")
	}
}

// An append that does not return (no quorum) ends before the group's
// waiters give up: they get the log's error, and the store, which wrote
// nothing, is not declared stalled (a waiter past its deadline while its
// batch is being written fails the store for good).
func TestApply_StuckAppendDoesNotFailTheStore(t *testing.T) {
	l := stuckLog{end: make(chan struct{})}
	s, err := Open(Options{Dir: t.TempDir(), Log: l, StallTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(l.end)
	s.SetWriter(true)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	_, err = s.Commit(ctx, sharedBatch("x"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("commit through a stuck log: %v", err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("the store failed: %v", err)
	}
	if s.Applied() != 0 {
		t.Fatalf("applied %d", s.Applied())
	}
}

// One group that appends to a stream, drops it and appends again writes
// the same entry key twice: the follower's OnCommit still gets each
// payload (an effect names each entry's record, not its key).
func TestApply_DropAndAppendInOneGroup(t *testing.T) {
	l := newTestLog()
	var ra, rb commitRecord
	a := openLogged(t, t.TempDir(), l, &ra)
	a.SetWriter(true)
	release := a.holdCommitter()
	var ps []*Pending
	for _, b := range []Batch{
		{Appends: []Append{{Stream: "u/x", Payload: []byte("first")}}},
		{Drops: []string{"u/x"}},
		{Appends: []Append{{Stream: "u/x", Payload: []byte("second")}}},
	} {
		p, err := a.Submit(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	release()
	for _, p := range ps {
		if _, err := waitPending(t, p); err != nil {
			t.Fatal(err)
		}
	}
	if l.last() != 1 {
		t.Fatalf("%d effects, want one group", l.last())
	}
	b := openLogged(t, t.TempDir(), l, &rb)
	l.catchUp(t, b)
	got := rb.all()
	if len(got) != 2 || string(got[0].Payload) != "first" || string(got[1].Payload) != "second" {
		t.Fatalf("follower's entries: %+v", got)
	}
	sameEntries(t, ra.all(), got)
	sameContents(t, a, b)
}

// A follower's OnApply gets every KV record an applied effect set or
// deleted, with its value, and its entries, before OnCommit; the writer's own commits (and
// their return from the log) never call it.
func TestApply_OnApplyTellsKVChanges(t *testing.T) {
	l := newTestLog()
	var ra, rb commitRecord
	var mu sync.Mutex
	var got []string
	order := []string{}
	onApply := func(name string) func(Applied) {
		return func(a Applied) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, name+" apply")
			for _, e := range a.Entries {
				got = append(got, name+" entry "+e.Stream+"="+string(e.Payload))
			}
			for _, kv := range a.KVs {
				if kv.Deleted {
					got = append(got, name+" del "+kv.Name)
				} else {
					got = append(got, name+" set "+kv.Name+"="+string(kv.Value))
				}
			}
		}
	}
	a, err := Open(Options{Dir: t.TempDir(), Log: l, OnCommit: ra.onCommit, OnApply: onApply("writer")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(Options{Dir: t.TempDir(), Log: l, OnApply: onApply("follower"), OnCommit: func(es []Entry) {
		mu.Lock()
		order = append(order, "follower commit")
		mu.Unlock()
		rb.onCommit(es)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.SetWriter(true)
	ctx := context.Background()
	if _, err := a.Commit(ctx, Batch{Sets: map[string][]byte{"gm/g1/u1": []byte("one"), "gm/g1/u2": []byte("two")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, Batch{Appends: []Append{{Stream: "g/g1", Payload: []byte("m")}}, Deletes: []string{"gm/g1/u1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, Batch{Appends: []Append{{Stream: "g/g1", Payload: []byte("n")}}}); err != nil {
		t.Fatal(err)
	}
	l.catchUp(t, a) // the writer's own effects: no-ops
	l.catchUp(t, b)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got[:2])
	want := []string{"follower set gm/g1/u1=one", "follower set gm/g1/u2=two", "follower entry g/g1=m", "follower del gm/g1/u1", "follower entry g/g1=n"}
	if !slices.Equal(got, want) {
		t.Fatalf("OnApply got %q, want %q", got, want)
	}
	// Each before its OnCommit (the first effect has no entries).
	if w := []string{"follower apply", "follower apply", "follower commit", "follower apply", "follower commit"}; !slices.Equal(order, w) {
		t.Fatalf("calls %q, want %q", order, w)
	}
}
