package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
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

// commitGroup writes a group of requests in one Pebble batch.
func (s *Store) commitGroup(group []*request) {
	b := s.db.NewBatch()
	defer b.Close()
	heads := make(map[string]meta)    // metas as changed by this group (zero: dropped)
	dedups := make(map[string][]byte) // dedup keys written by this group
	kvs := make(map[string]kvPending) // KV values written by this group, for Updates
	var entries []Entry               // for OnCommit, in order
	now := s.clock()
	for _, r := range group {
		if err := s.applyRequest(b, r, heads, dedups, kvs, now, &entries); err != nil {
			r.err = err
		}
	}
	for stream, m := range heads {
		if m == (meta{}) {
			continue // dropped in this group
		}
		if err := b.Set(metaKey(stream), encodeMeta(m), nil); err != nil {
			s.reads.invalidate(kvs)
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
		s.reads.invalidate(kvs) // perhaps partly applied
		s.failGroup(group, fmt.Errorf("commit: %w", err))
		return
	}
	s.stats.observe(len(group), time.Since(began))
	for stream, m := range heads {
		if m == (meta{}) {
			delete(s.heads, stream)
			continue
		}
		s.heads[stream] = m
	}
	s.keepDecoded(kvs)
	s.reads.invalidate(kvs) // before anyone learns of the commit
	if s.opts.OnCommit != nil && len(entries) > 0 {
		s.opts.OnCommit(entries)
	}
	for _, r := range group {
		close(r.done)
	}
}

// applyRequest stages one request. On error nothing of it is staged.
func (s *Store) applyRequest(b *pebble.Batch, r *request, heads map[string]meta, dedups map[string][]byte, kvs map[string]kvPending, now time.Time, entries *[]Entry) error {
	if len(r.batch.DedupKey) > 0 {
		if v, ok := dedups[string(r.batch.DedupKey)]; ok {
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
	// Allocate positions first, on a copy, so a failure stages nothing.
	pos := make([]Pos, len(r.batch.Appends))
	local := make(map[string]meta, len(r.batch.Appends))
	for i, a := range r.batch.Appends {
		m, ok := local[a.Stream]
		if !ok {
			var err error
			if m, err = s.headFor(a.Stream, heads); err != nil {
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
		if err := b.Set(entryKey(a.Stream, pos[i].Seq), encodeEntry(millis, a.Payload), nil); err != nil {
			return fmt.Errorf("stage entry: %w", err)
		}
	}
	if len(r.batch.DedupKey) > 0 {
		exp := now.Add(r.batch.DedupTTL).UnixNano()
		if err := b.Set(dedupKey(r.batch.DedupKey), encodeDedup(exp, r.batch.DedupValue), nil); err != nil {
			return fmt.Errorf("stage dedup: %w", err)
		}
		dedups[string(r.batch.DedupKey)] = r.batch.DedupValue
		s.dedupMem.add(r.batch.DedupKey, now)
	}
	for name, v := range r.batch.Sets {
		if err := b.Set(kvKey(name), v, nil); err != nil {
			return fmt.Errorf("stage kv: %w", err)
		}
		kvs[name] = kvPending{value: v, found: true}
	}
	for _, name := range r.batch.Deletes {
		if err := b.Delete(kvKey(name), nil); err != nil {
			return fmt.Errorf("stage kv delete: %w", err)
		}
		kvs[name] = kvPending{}
	}
	for _, u := range r.batch.Updates {
		cur, ok := kvs[u.Name]
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
			if err := b.Delete(kvKey(u.Name), nil); err != nil {
				return fmt.Errorf("stage update: %w", err)
			}
			kvs[u.Name] = kvPending{}
			continue
		}
		if err := b.Set(kvKey(u.Name), nv, nil); err != nil {
			return fmt.Errorf("stage update: %w", err)
		}
		kvs[u.Name] = kvPending{value: nv, found: true, obj: next}
	}
	for _, rp := range r.batch.Replaces {
		if m, err := s.headFor(rp.Stream, heads); err != nil {
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
		if err := b.Set(key, encodeEntry(at, rp.Payload), nil); err != nil { // keeps its commit time: retention goes by it
			return fmt.Errorf("stage replace: %w", err)
		}
	}
	for _, stream := range r.batch.Drops {
		if err := b.DeleteRange(entryKey(stream, 0), entryKey(stream, ^uint64(0)), nil); err != nil {
			return fmt.Errorf("stage drop: %w", err)
		}
		if err := b.Delete(entryKey(stream, ^uint64(0)), nil); err != nil {
			return fmt.Errorf("stage drop: %w", err)
		}
		if err := b.Delete(metaKey(stream), nil); err != nil {
			return fmt.Errorf("stage drop: %w", err)
		}
		heads[stream] = meta{} // zero meta: not written back, cache cleared after commit
	}
	for stream, m := range local {
		heads[stream] = m
	}
	for _, k := range r.batch.ExpireDedups {
		if _, ok := dedups[string(k)]; ok {
			continue // written again by this group
		}
		if _, live, err := s.lookupDedup(k, now); err != nil && !errors.Is(err, errCorrupt) {
			return err
		} else if live {
			continue // written again since the sweep read it
		}
		if err := b.Delete(dedupKey(k), nil); err != nil {
			return fmt.Errorf("stage dedup delete: %w", err)
		}
	}
	for _, t := range r.batch.Trims {
		m, err := s.headFor(t.Stream, heads)
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
		if err := b.DeleteRange(entryKey(t.Stream, 0), entryKey(t.Stream, below), nil); err != nil {
			return fmt.Errorf("stage trim: %w", err)
		}
		m.Low = below
		heads[t.Stream] = m
	}
	at := entryTime(now.UnixMilli())
	for i, a := range r.batch.Appends {
		*entries = append(*entries, Entry{Stream: a.Stream, Pos: pos[i], Payload: a.Payload, Time: at})
	}
	r.res = Result{Pos: pos}
	return nil
}

// headFor returns a stream's meta as this group leaves it so far.
func (s *Store) headFor(stream string, heads map[string]meta) (meta, error) {
	if m, ok := heads[stream]; ok {
		return m, nil
	}
	if m, ok := s.heads[stream]; ok {
		return m, nil
	}
	m, err := s.getMeta(s.db, stream)
	if err != nil {
		return meta{}, err
	}
	s.heads[stream] = m
	return m, nil
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
