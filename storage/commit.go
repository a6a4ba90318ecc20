package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble"
)

// commitLoop is the single writer. Allocating seqs here, in the goroutine
// that builds the batch, is what makes them gap-free: a seq is only ever
// visible together with the event it numbers. Requests that queue up while a
// commit (and its fsync) runs are committed together in the next group.
func (s *Store) commitLoop() {
	defer close(s.done)
	defer s.staged.req.b.Close()
	group := make([]*request, 0, s.opts.MaxBatch)
	var prev groupStart
	spacing := time.NewTimer(time.Hour)
	spacing.Stop()
	for {
		select {
		case r := <-s.queue:
			group = append(group[:0], r)
			if s.gathering != nil {
				s.gathering()
			}
		case <-s.stop:
			// Finish what was queued before Close, then stop.
			for {
				select {
				case r := <-s.queue:
					s.commitGroup([]*request{r}) // one request is never split
				default:
					return
				}
			}
		}
	drain:
		for len(group) < s.opts.MaxBatch {
			select {
			case r := <-s.queue:
				group = append(group, r)
			default:
				break drain
			}
		}
		group = s.gatherSpaced(group, prev, spacing)
		prev = groupStart{at: time.Now(), batches: len(group)}
		for rest := group; len(rest) > 0; { // group keeps its array for the next round
			rest = s.commitGroup(rest)
		}
	}
}

// groupStart is when the committer started its previous group, and with
// how many batches.
type groupStart struct {
	at      time.Time
	batches int
}

// gatherSpaced adds to group the batches that arrive until
// Options.CommitInterval has passed since the previous group started, when
// the writers are busy: that group carried more than one batch. It returns
// at once for a lone writer, at MaxBatch, and when the store stops. Without
// it a paced load commits each send nearly alone, and the fsync, the WAL
// write and the group's stream heads are paid per send (docs/benchmarks.md,
// Round 10).
func (s *Store) gatherSpaced(group []*request, prev groupStart, timer *time.Timer) []*request {
	if s.opts.CommitInterval <= 0 || prev.batches < 2 || len(group) >= s.opts.MaxBatch {
		return group
	}
	wait := time.Until(prev.at.Add(s.opts.CommitInterval))
	if wait <= 0 {
		return group
	}
	if s.spacing != nil {
		s.spacing()
	}
	timer.Reset(wait)
	defer timer.Stop()
	for len(group) < s.opts.MaxBatch {
		select {
		case r := <-s.queue:
			group = append(group, r)
		case <-timer.C:
			return group
		case <-s.stop:
			return group
		}
	}
	return group
}

// commitGroup writes a group of requests in one Pebble batch. Each request
// is staged on its own and joins the batch only once all of it has staged:
// a request that fails leaves nothing in the group, which commits the rest.
// A logged group ends where its effect reaches Options.MaxEffectBytes: the
// requests after it, not taken, are returned for the next group.
func (s *Store) commitGroup(group []*request) (rest []*request) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		s.refuseGroup(group, err)
		return
	}
	if !s.writer.Load() { // queued before SetWriter(false) or a fenced append
		s.refuseGroup(group, ErrNotOwner)
		return
	}
	b := s.db.NewBatch()
	defer b.Close()
	g := s.staged
	g.begin(b, s.clock(), s.opts.Log != nil)
	defer g.end()
	for i, r := range group {
		if g.logged && i > 0 && b.Len()+effectEntryBytes*len(g.entries) >= s.opts.MaxEffectBytes {
			// The log takes messages of a bounded size (NATS: max_payload).
			group, rest = group[:i], group[i:]
			break
		}
		if !s.take(r, time.Now()) {
			r.err = ErrCommitTimeout // not written: its waiter is told so
			s.stats.failed.Add(1)
			continue
		}
		if err := g.stage(r); err != nil {
			g.discard()
			r.err = err
			continue
		}
		if err := g.keep(r); err != nil {
			s.failGroup(group, err) // the batch holds part of a request: commit none of it
			return
		}
	}
	for stream, m := range g.heads {
		if m == (meta{}) {
			continue // dropped in this group
		}
		if err := b.Set(metaKey(stream), encodeMeta(m), nil); err != nil {
			s.failGroup(group, fmt.Errorf("stage meta: %w", err))
			return
		}
	}
	if g.logged && b.Empty() {
		// Only duplicates and failures: nothing to replicate, and a
		// round trip through the log would be all this group costs.
		for _, r := range group {
			close(r.done)
		}
		return
	}
	if err := b.Set(commitCountKey, binary.AppendUvarint(nil, s.commits+1), nil); err != nil {
		s.failGroup(group, fmt.Errorf("stage commit count: %w", err))
		return
	}
	wo := pebble.NoSync
	if s.opts.Sync && !g.logged { // the log holds a logged group durably (effect.go)
		wo = pebble.Sync
	}
	began := time.Now()
	var pos uint64
	if g.logged {
		var err error
		if pos, err = s.appendEffect(group, g, b); err != nil {
			s.refuseGroup(group, err)
			return
		}
		if err := b.Set(appliedKey, encodeApplied(pos), nil); err != nil {
			err = fmt.Errorf("stage the applied position: %w", err)
			s.fail(err) // the log has the group, this store does not: a restart re-applies it
			s.failGroup(group, err)
			return
		}
	}
	if s.writing != nil {
		s.writing()
	}
	if err := s.commitPebble(func() error { return s.commitSorted(b, wo) }); err != nil {
		s.reads.invalidate(g.kvs) // perhaps partly applied
		s.updated.forget(g.kvs)
		if g.logged {
			// In the log but not here: this copy would diverge from the
			// next group on. A restart re-applies it from the log.
			s.fail(fmt.Errorf("apply a logged group locally: %w", err))
		}
		s.failGroup(group, fmt.Errorf("commit: %w", err))
		return
	}
	s.stats.observe(len(group), time.Since(began))
	if g.logged {
		s.applied.Store(pos)
	}
	s.commits++
	if s.mark != nil {
		if err := s.mark.write(s.commits); err != nil {
			s.log.Warn("commit mark not written: damage to the WAL may go unnoticed", "error", err)
		}
	}
	for stream, m := range g.heads {
		if m == (meta{}) {
			delete(s.heads, stream)
			continue
		}
		s.heads[stream] = m
	}
	for _, r := range group { // only now: a failed request's key, or a failed group's, was never stored
		if r.err == nil && !r.res.Duplicate && len(r.batch.DedupKey) > 0 {
			s.dedupMem.add(r.batch.DedupKey, g.now)
		}
	}
	s.updated.committed(g.kvs)
	s.reads.invalidate(g.kvs) // before anyone learns of the commit
	if s.opts.OnCommit != nil && len(g.entries) > 0 {
		s.opts.OnCommit(g.entries)
	}
	for _, r := range group {
		close(r.done)
	}
	return rest
}

// take claims a request for this group commit, unless its waiter gave up
// or it has less than StallTimeout left before its deadline (it could not
// be written in time: it is refused, unwritten, instead).
func (s *Store) take(r *request, now time.Time) bool {
	if st := s.opts.StallTimeout; st > 0 && !r.deadline.IsZero() && r.deadline.Sub(now) < st {
		r.state.CompareAndSwap(reqQueued, reqAbandoned)
		return false
	}
	return r.state.CompareAndSwap(reqQueued, reqTaken)
}

// groupStage is what a group commit has staged: the Pebble batch and
// overlays of the metas, dedup records and KV values its requests wrote,
// which the requests' reads see before the committed state. The request
// being staged writes only to req; keep adds it to the group once all of
// it has staged, discard forgets it.
type groupStage struct {
	s       *Store
	b       *pebble.Batch
	now     time.Time
	heads   map[string]meta      // metas as the group changed them (zero: dropped)
	dedups  map[string][]byte    // dedup records the group wrote
	kvs     map[string]kvPending // KV values the group wrote
	bodies  map[uint64]bodyPending
	unrefd  map[string]bool // entry keys whose reference the group gave back
	nbodies uint64          // bodies the group wrote (newBodyID)
	entries []Entry         // for OnCommit, in order
	logged  bool            // the group goes to the log (Options.Log): recs are kept
	recs    []uint32        // per entry: its record in b (effect.go)
	req     reqStage
}

// reqStage is what one request has staged so far: its writes in a batch
// of its own (which copies keys and values, as the group batch would) and
// its overlays.
type reqStage struct {
	b      *pebble.Batch
	local  map[string]meta // heads its appends advanced, merged into heads after its drops (as ever)
	heads  map[string]meta
	dedups map[string][]byte
	kvs    map[string]kvPending
	bodies map[uint64]bodyPending // committed bodies whose references it gave back
	unrefd map[string]bool        // and the entries that gave them back
	refs   []uint64               // per append: how many later appends share its payload, then its body id
	recs   []uint32               // per append, when logged: its entry's record in b
}

// newGroupStage returns the committer's groupStage, reused by every group
// so its maps and request batch keep their memory.
func newGroupStage(s *Store) *groupStage {
	return &groupStage{
		s:     s,
		heads: map[string]meta{}, dedups: map[string][]byte{}, kvs: map[string]kvPending{}, bodies: map[uint64]bodyPending{}, unrefd: map[string]bool{},
		req: reqStage{b: s.db.NewBatch(), local: map[string]meta{}, heads: map[string]meta{}, dedups: map[string][]byte{}, kvs: map[string]kvPending{},
			bodies: map[uint64]bodyPending{}, unrefd: map[string]bool{}},
	}
}

// begin starts staging a group into b at commit time now; a logged group
// keeps where each entry is in b.
func (g *groupStage) begin(b *pebble.Batch, now time.Time, logged bool) {
	g.b, g.now, g.logged = b, now, logged
}

// end forgets the group. The entries went to OnCommit, which may keep them.
func (g *groupStage) end() {
	g.discard()
	g.b, g.entries, g.recs = nil, nil, g.recs[:0]
	g.heads = reset(g.heads)
	g.dedups = reset(g.dedups)
	g.kvs = reset(g.kvs)
	clear(g.bodies)
	g.unrefd = reset(g.unrefd)
	g.nbodies = 0
}

// reset empties a map for reuse, or replaces it after an unusually large
// group: clearing costs as much as the map's capacity, every group.
func reset[V any](m map[string]V) map[string]V {
	if len(m) > 4096 {
		return map[string]V{}
	}
	clear(m)
	return m
}

// head returns a stream's meta as the request leaves it so far.
func (g *groupStage) head(stream string) (meta, error) {
	if m, ok := g.req.heads[stream]; ok {
		return m, nil
	}
	if m, ok := g.heads[stream]; ok {
		return m, nil
	}
	s := g.s
	if m, ok := s.heads[stream]; ok {
		return m, nil
	}
	m, err := s.getMeta(s.db, stream)
	if err != nil {
		return meta{}, err
	}
	s.heads[stream] = m // committed: the committer is the only writer
	return m, nil
}

// kv returns a KV value as the request leaves it so far, if the group wrote it.
func (g *groupStage) kv(name string) (kvPending, bool) {
	if p, ok := g.req.kvs[name]; ok {
		return p, true
	}
	p, ok := g.kvs[name]
	return p, ok
}

// current returns a KV record's value as the request leaves it so far, for
// an Update: staged by the group, else committed (from the update cache or
// Pebble).
func (g *groupStage) current(name string) (kvPending, error) {
	if p, ok := g.kv(name); ok {
		return p, nil
	}
	s := g.s
	if p, ok := s.updated.get(name); ok {
		return p, nil
	}
	v, closer, err := s.db.Get(kvKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return kvPending{}, nil
	}
	if err != nil {
		return kvPending{}, fmt.Errorf("update %s: %w", name, err)
	}
	defer closer.Close()
	return kvPending{value: bytes.Clone(v), found: true}, nil
}

// dedup reports whether the group (this request included) wrote a dedup record for key.
func (g *groupStage) dedup(key []byte) ([]byte, bool) {
	if v, ok := g.req.dedups[string(key)]; ok {
		return v, true
	}
	v, ok := g.dedups[string(key)]
	return v, ok
}

// keep adds the staged request to the group: its writes to the batch, its
// overlays to the group's, its appends to the entries for OnCommit. After
// an error the group batch may hold part of the request.
func (g *groupStage) keep(r *request) error {
	base := g.b.Count() // the request's records follow the group's so far
	if err := g.b.Apply(g.req.b, nil); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	maps.Copy(g.heads, g.req.heads)
	maps.Copy(g.dedups, g.req.dedups)
	maps.Copy(g.kvs, g.req.kvs)
	maps.Copy(g.bodies, g.req.bodies)
	maps.Copy(g.unrefd, g.req.unrefd)
	at := entryTime(g.now.UnixMilli())
	for i, p := range r.res.Pos { // none for a duplicate
		a := r.batch.Appends[i]
		payload := a.Payload
		if a.SameAs > 0 {
			payload = r.batch.Appends[a.SameAs-1].Payload
		}
		g.entries = append(g.entries, Entry{Stream: a.Stream, Pos: p, Payload: payload, Time: at})
		if g.logged {
			g.recs = append(g.recs, base+g.req.recs[i])
		}
	}
	g.discard()
	return nil
}

// discard forgets what the request staged.
func (g *groupStage) discard() {
	g.req.b.Reset()
	g.req.local = reset(g.req.local)
	g.req.heads = reset(g.req.heads)
	g.req.dedups = reset(g.req.dedups)
	g.req.kvs = reset(g.req.kvs)
	clear(g.req.bodies)
	g.req.unrefd = reset(g.req.unrefd)
	g.req.recs = g.req.recs[:0]
}

// stage stages one request into g.req; on error the caller discards it.
func (g *groupStage) stage(r *request) error {
	s, now, rb := g.s, g.now, g.req.b
	if len(r.batch.DedupKey) > 0 {
		if v, ok := g.dedup(r.batch.DedupKey); ok {
			r.res = Result{Duplicate: true, DedupValue: v}
			return nil
		}
		var v []byte
		var found bool
		if !s.dedupMem.missIsFinal(r.batch.DedupKey, now, r.batch.DedupTTL) {
			var err error
			if v, found, err = s.lookupDedup(r.batch.DedupKey, now); err != nil {
				return err
			}
		}
		if found {
			r.res = Result{Duplicate: true, DedupValue: v}
			return nil
		}
	}
	pos := make([]Pos, len(r.batch.Appends))
	local := g.req.local
	for i, a := range r.batch.Appends {
		m, ok := local[a.Stream]
		if !ok {
			var err error
			if m, err = g.head(a.Stream); err != nil {
				return err
			}
		}
		if m.Epoch == 0 {
			m.Epoch = s.nowEpoch()
		}
		m.Seq++
		local[a.Stream] = m
		pos[i] = m.Pos
	}
	millis := now.UnixMilli()
	refs := g.req.refs[:0]
	for _, a := range r.batch.Appends {
		refs = append(refs, 0)
		if a.SameAs > 0 {
			refs[a.SameAs-1]++
		}
	}
	g.req.refs = refs
	for i, a := range r.batch.Appends {
		var v []byte
		switch {
		case a.SameAs > 0: // the body was written by the append it shares
			v = encodeRef(millis, refs[a.SameAs-1])
		case refs[i] > 0: // shared: its bytes once, in a body record
			id := g.newBodyID()
			if err := rb.Set(bodyKey(id), encodeBody(refs[i]+1, a.Payload), nil); err != nil {
				return fmt.Errorf("stage body: %w", err)
			}
			refs[i] = id
			v = encodeRef(millis, id)
		default:
			v = encodeEntry(millis, a.Payload)
		}
		if g.logged {
			g.req.recs = append(g.req.recs, rb.Count())
		}
		if err := rb.Set(entryKey(a.Stream, pos[i].Seq), v, nil); err != nil {
			return fmt.Errorf("stage entry: %w", err)
		}
		if a.Index != "" {
			v := strconv.AppendUint(nil, pos[i].Seq, 10)
			if err := rb.Set(kvKey(a.Index), v, nil); err != nil {
				return fmt.Errorf("stage index: %w", err)
			}
			g.req.kvs[a.Index] = kvPending{value: v, found: true}
		}
	}
	if len(r.batch.DedupKey) > 0 {
		exp := now.Add(r.batch.DedupTTL).UnixNano()
		if err := rb.Set(dedupKey(r.batch.DedupKey), encodeDedup(exp, r.batch.DedupValue), nil); err != nil {
			return fmt.Errorf("stage dedup: %w", err)
		}
		g.req.dedups[string(r.batch.DedupKey)] = r.batch.DedupValue
	}
	for name, v := range r.batch.Sets {
		if err := rb.Set(kvKey(name), v, nil); err != nil {
			return fmt.Errorf("stage kv: %w", err)
		}
		g.req.kvs[name] = kvPending{value: v, found: true}
	}
	for _, name := range r.batch.Deletes {
		if err := rb.Delete(kvKey(name), nil); err != nil {
			return fmt.Errorf("stage kv delete: %w", err)
		}
		g.req.kvs[name] = kvPending{}
	}
	for _, u := range r.batch.Updates {
		cur, err := g.current(u.Name)
		if err != nil {
			return err
		}
		nv, err := u.Fn(cur.value, cur.found, pos)
		if err != nil {
			return fmt.Errorf("update %s: %w", u.Name, err)
		}
		if nv == nil {
			if err := rb.Delete(kvKey(u.Name), nil); err != nil {
				return fmt.Errorf("stage update: %w", err)
			}
			g.req.kvs[u.Name] = kvPending{update: true}
			continue
		}
		if err := rb.Set(kvKey(u.Name), nv, nil); err != nil {
			return fmt.Errorf("stage update: %w", err)
		}
		g.req.kvs[u.Name] = kvPending{value: nv, found: true, update: true}
	}
	for _, rp := range r.batch.Replaces {
		if m, err := g.head(rp.Stream); err != nil {
			return err
		} else if rp.Seq < m.low() {
			continue // trimmed (perhaps earlier in this group): do not bring it back
		}
		key := entryKey(rp.Stream, rp.Seq)
		v, closer, err := s.db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("replace %s/%d: %w", rp.Stream, rp.Seq, err)
		}
		_, at, id, ref, err := decodeEntry(v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("replace %s/%d: %w", rp.Stream, rp.Seq, err)
		}
		if ref { // the other entries keep the shared body; this one has its own payload now
			if err := g.unref(key, id, nil); err != nil {
				return err
			}
		}
		if err := rb.Set(key, encodeEntry(at, rp.Payload), nil); err != nil { // keeps its commit time: retention goes by it
			return fmt.Errorf("stage replace: %w", err)
		}
	}
	for _, stream := range r.batch.Drops {
		if err := g.unrefRange(stream, 0, ^uint64(0)); err != nil {
			return err
		}
		if err := rb.DeleteRange(entryKey(stream, 0), entryKey(stream, ^uint64(0)), nil); err != nil {
			return fmt.Errorf("stage drop: %w", err)
		}
		if err := rb.Delete(entryKey(stream, ^uint64(0)), nil); err != nil {
			return fmt.Errorf("stage drop: %w", err)
		}
		if err := rb.Delete(metaKey(stream), nil); err != nil {
			return fmt.Errorf("stage drop: %w", err)
		}
		g.req.heads[stream] = meta{} // zero meta: not written back, cache cleared after commit
	}
	maps.Copy(g.req.heads, local)
	for _, k := range r.batch.ExpireDedups {
		if _, ok := g.dedup(k); ok {
			continue // written again by this group
		}
		if _, live, err := s.lookupDedup(k, now); err != nil && !errors.Is(err, errCorrupt) {
			return err
		} else if live {
			continue // written again since the sweep read it
		}
		if err := rb.Delete(dedupKey(k), nil); err != nil {
			return fmt.Errorf("stage dedup delete: %w", err)
		}
	}
	for _, t := range r.batch.Trims {
		m, err := g.head(t.Stream)
		if err != nil {
			return err
		}
		if m.Seq == 0 || (t.Epoch != 0 && t.Epoch != m.Epoch) {
			continue // no history, or not the history the trim was computed on
		}
		below := min(t.Below, m.Seq+1)
		if below <= m.low() {
			continue // never lowered
		}
		if err := g.unrefRange(t.Stream, m.low(), below); err != nil {
			return err
		}
		if err := rb.DeleteRange(entryKey(t.Stream, 0), entryKey(t.Stream, below), nil); err != nil {
			return fmt.Errorf("stage trim: %w", err)
		}
		m.Low = below
		g.req.heads[t.Stream] = m
	}
	r.res = Result{Pos: pos}
	return nil
}

func (s *Store) lookupDedup(key []byte, now time.Time) ([]byte, bool, error) {
	v, closer, err := s.db.Get(dedupKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("dedup lookup: %w", err)
	}
	defer closer.Close()
	exp, val, err := decodeDedup(v)
	if err != nil {
		return nil, false, err
	}
	if now.UnixNano() > exp {
		return nil, false, nil
	}
	return bytes.Clone(val), true, nil
}

func (s *Store) failGroup(group []*request, err error) {
	if s.Health() == nil { // a store that cannot write said so once
		s.log.Error("group commit failed", "error", err, "batches", len(group))
	}
	s.refuseGroup(group, err)
}

// refuseGroup fails every request of the group not failed already, and
// counts them.
func (s *Store) refuseGroup(group []*request, err error) {
	for _, r := range group {
		if r.err == nil {
			s.stats.failed.Add(1)
			r.err = err
			r.res = Result{}
		}
		close(r.done)
	}
}

// kvPending is a KV value as a commit group leaves it.
type kvPending struct {
	value  []byte
	found  bool
	update bool // written by an Update: kept in the update cache once committed
}

// pebbleLogger routes Pebble's own log lines into slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble fatal", "msg", fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
