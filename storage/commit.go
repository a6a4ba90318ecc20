package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/cockroachdb/pebble"
)

// commitLoop is the single writer. Allocating seqs here, in the goroutine
// that builds the batch, is what makes them gap-free: a seq is only ever
// visible together with the event it numbers. Requests that queue up while a
// commit (and its fsync) runs are committed together in the next group.
func (s *Store) commitLoop() {
	defer close(s.done)
	group := make([]*request, 0, s.opts.MaxBatch)
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
					s.commitGroup([]*request{r})
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
		s.commitGroup(group)
	}
}

// commitGroup writes a group of requests in one Pebble batch. Each request
// is staged on its own and joins the batch only once all of it has staged:
// a request that fails leaves nothing in the group, which commits the rest.
func (s *Store) commitGroup(group []*request) {
	b := s.db.NewBatch()
	defer b.Close()
	g := newGroupStage(s, b)
	for _, r := range group {
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
	wo := pebble.NoSync
	if s.opts.Sync {
		wo = pebble.Sync
	}
	began := time.Now()
	if err := b.Commit(wo); err != nil {
		s.reads.invalidate(g.kvs) // perhaps partly applied
		s.failGroup(group, fmt.Errorf("commit: %w", err))
		return
	}
	s.stats.observe(len(group), time.Since(began))
	for stream, m := range g.heads {
		if m == (meta{}) {
			delete(s.heads, stream)
			continue
		}
		s.heads[stream] = m
	}
	for key := range g.dedups { // only now: a key of a request that failed, or of a group that did, was never stored
		s.dedupMem.add([]byte(key), g.now)
	}
	s.keepDecoded(g.kvs)
	s.reads.invalidate(g.kvs) // before anyone learns of the commit
	if s.opts.OnCommit != nil && len(g.entries) > 0 {
		s.opts.OnCommit(g.entries)
	}
	for _, r := range group {
		close(r.done)
	}
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
	entries []Entry              // for OnCommit, in order
	req     reqStage
}

// reqStage is what one request has staged so far.
type reqStage struct {
	ops    []op
	local  map[string]meta // heads its appends advanced, merged into heads after its drops (as ever)
	heads  map[string]meta
	dedups map[string][]byte
	kvs    map[string]kvPending
}

// op is one staged write.
type op struct {
	kind       opKind
	key, value []byte // value: the end of an opDeleteRange
}

type opKind uint8

const (
	opSet opKind = iota
	opDelete
	opDeleteRange
)

func newGroupStage(s *Store, b *pebble.Batch) *groupStage {
	return &groupStage{
		s: s, b: b, now: s.clock(),
		heads: map[string]meta{}, dedups: map[string][]byte{}, kvs: map[string]kvPending{},
		req: reqStage{local: map[string]meta{}, heads: map[string]meta{}, dedups: map[string][]byte{}, kvs: map[string]kvPending{}},
	}
}

func (g *groupStage) set(key, value []byte) {
	g.req.ops = append(g.req.ops, op{kind: opSet, key: key, value: value})
}
func (g *groupStage) del(key []byte) { g.req.ops = append(g.req.ops, op{kind: opDelete, key: key}) }
func (g *groupStage) delRange(from, to []byte) {
	g.req.ops = append(g.req.ops, op{kind: opDeleteRange, key: from, value: to})
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

// dedup reports whether the group (this request included) wrote a dedup record for key.
func (g *groupStage) dedup(key []byte) ([]byte, bool) {
	if v, ok := g.req.dedups[string(key)]; ok {
		return v, true
	}
	v, ok := g.dedups[string(key)]
	return v, ok
}

// keep adds the staged request to the group: its writes to the batch, its
// overlays to the group's, its appends to the entries for OnCommit. An
// error leaves part of the request in the batch.
func (g *groupStage) keep(r *request) error {
	for _, o := range g.req.ops {
		var err error
		switch o.kind {
		case opSet:
			err = g.b.Set(o.key, o.value, nil)
		case opDelete:
			err = g.b.Delete(o.key, nil)
		case opDeleteRange:
			err = g.b.DeleteRange(o.key, o.value, nil)
		}
		if err != nil {
			return fmt.Errorf("stage: %w", err)
		}
	}
	maps.Copy(g.heads, g.req.heads)
	maps.Copy(g.dedups, g.req.dedups)
	maps.Copy(g.kvs, g.req.kvs)
	at := entryTime(g.now.UnixMilli())
	for i, p := range r.res.Pos { // none for a duplicate
		a := r.batch.Appends[i]
		g.entries = append(g.entries, Entry{Stream: a.Stream, Pos: p, Payload: a.Payload, Time: at})
	}
	g.discard()
	return nil
}

// discard forgets what the request staged (the batch copied what keep added).
func (g *groupStage) discard() {
	clear(g.req.ops) // drop references to keys and values
	g.req.ops = g.req.ops[:0]
	clear(g.req.local)
	clear(g.req.heads)
	clear(g.req.dedups)
	clear(g.req.kvs)
}

// stage stages one request into g.req; on error the caller discards it.
func (g *groupStage) stage(r *request) error {
	s, now := g.s, g.now
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
	for i, a := range r.batch.Appends {
		g.set(entryKey(a.Stream, pos[i].Seq), encodeEntry(millis, a.Payload))
	}
	if len(r.batch.DedupKey) > 0 {
		exp := now.Add(r.batch.DedupTTL).UnixNano()
		g.set(dedupKey(r.batch.DedupKey), encodeDedup(exp, r.batch.DedupValue))
		g.req.dedups[string(r.batch.DedupKey)] = r.batch.DedupValue
	}
	for name, v := range r.batch.Sets {
		g.set(kvKey(name), v)
		g.req.kvs[name] = kvPending{value: v, found: true}
	}
	for _, name := range r.batch.Deletes {
		g.del(kvKey(name))
		g.req.kvs[name] = kvPending{}
	}
	for _, u := range r.batch.Updates {
		cur, ok := g.kv(u.Name)
		if !ok && u.Decoded != nil {
			if obj, hit := s.decoded[u.Name]; hit {
				cur, ok = kvPending{found: true, obj: obj}, true
			}
		}
		if !ok && !(u.Blind && u.Decoded == nil) {
			v, closer, err := s.db.Get(kvKey(u.Name))
			switch {
			case errors.Is(err, pebble.ErrNotFound):
			case err != nil:
				return fmt.Errorf("update %s: %w", u.Name, err)
			default:
				cur = kvPending{value: bytes.Clone(v), found: true}
				closer.Close()
			}
		}
		var nv []byte
		var next any
		switch {
		case u.Decoded != nil:
			nv, next = u.Decoded(cur.value, cur.obj, cur.found, pos)
		case u.Blind:
			nv = u.Fn(nil, false, pos)
		default:
			nv = u.Fn(cur.value, cur.found, pos)
		}
		if nv == nil {
			g.del(kvKey(u.Name))
			g.req.kvs[u.Name] = kvPending{}
			continue
		}
		g.set(kvKey(u.Name), nv)
		g.req.kvs[u.Name] = kvPending{value: nv, found: true, obj: next}
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
		_, at, err := decodeEntry(v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("replace %s/%d: %w", rp.Stream, rp.Seq, err)
		}
		g.set(key, encodeEntry(at, rp.Payload)) // keeps its commit time: retention goes by it
	}
	for _, stream := range r.batch.Drops {
		g.delRange(entryKey(stream, 0), entryKey(stream, ^uint64(0)))
		g.del(entryKey(stream, ^uint64(0)))
		g.del(metaKey(stream))
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
		g.del(dedupKey(k))
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
		g.delRange(entryKey(t.Stream, 0), entryKey(t.Stream, below))
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
	s.log.Error("group commit failed", "error", err, "batches", len(group))
	for _, r := range group {
		if r.err == nil {
			r.err = err
			r.res = Result{}
		}
		close(r.done)
	}
}

// kvPending is a KV value as this commit group leaves it.
type kvPending struct {
	value []byte
	found bool
	obj   any // its decoded form, when a Decoded update wrote it
}

// keepDecoded records, after a successful commit, the decoded forms the
// group's Decoded updates left, and forgets those of records the group
// wrote any other way. Past Options.DecodedRecords it forgets arbitrary
// records (map order): they are read and decoded again when next updated.
func (s *Store) keepDecoded(kvs map[string]kvPending) {
	if s.opts.DecodedRecords < 0 {
		return
	}
	for name, p := range kvs {
		if p.obj == nil {
			delete(s.decoded, name)
			continue
		}
		s.decoded[name] = p.obj
	}
	if over := len(s.decoded) - s.opts.DecodedRecords; over > 0 {
		over += s.opts.DecodedRecords / 8 // evict in steps, not one record per commit
		for name := range s.decoded {
			if over <= 0 {
				break
			}
			delete(s.decoded, name)
			over--
		}
	}
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
