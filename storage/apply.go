package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// Applied returns the last log position this store applied (0: none).
// It is persisted in the batch of each applied group, so after a restart
// it says exactly where to resume: at Applied()+1.
func (s *Store) Applied() uint64 { return s.applied.Load() }

// Apply applies the effect at log position pos, written by another node's
// committer: its writes and the new applied position in one Pebble batch,
// then OnCommit with the entries the writer's OnCommit got. pos must be
// Applied()+1; pos <= Applied() is ignored (already applied: the writer's
// own groups come back to it from the log), a gap is an error. It may be
// called concurrently with the committer: both hold writeMu, so an effect
// this store is committing itself is applied once. The local write is not
// fsynced: the log holds the effect. Errors: ErrBadEffect (nothing
// written, for good), ErrClosed, ErrNoSpace, ErrFailed, or a gap.
func (s *Store) Apply(pos uint64, effect []byte) error {
	if s.opts.Log == nil {
		return errors.New("storage: Apply needs Options.Log (a single-node store writes alone)")
	}
	s.mu.RLock() // Close waits for an Apply under way before it closes Pebble
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	switch cur := s.applied.Load(); {
	case pos <= cur:
		return nil
	case pos != cur+1:
		return fmt.Errorf("storage: effect %d cannot follow %d: the effects between are missing", pos, cur)
	}
	if err := s.writable(); err != nil {
		return err
	}
	now, entries, repr, err := decodeEffect(effect)
	if err != nil {
		return fmt.Errorf("effect %d: %w", pos, err)
	}
	fx, err := scanEffect(repr, entries, now)
	if err != nil {
		return fmt.Errorf("effect %d: %w", pos, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	// The batch owns what SetRepr gets, and its Set below may append to
	// it: a copy, so the caller's buffer is neither kept nor written.
	if err := b.SetRepr(bytes.Clone(repr)); err != nil {
		return fmt.Errorf("effect %d: %w: %v", pos, ErrBadEffect, err)
	}
	if err := b.Set(appliedKey, encodeApplied(pos), nil); err != nil {
		return fmt.Errorf("effect %d: %w", pos, err)
	}
	if err := s.commitPebble(func() error { return b.Commit(pebble.NoSync) }); err != nil {
		s.reads.invalidate(fx.kvs) // perhaps partly applied
		s.updated.forget(fx.kvs)
		s.fail(fmt.Errorf("apply effect %d: %w", pos, err))
		return fmt.Errorf("apply effect %d: %w", pos, err)
	}
	s.applied.Store(pos)
	s.applyCaches(fx)
	if s.opts.OnApply != nil && (len(fx.kvs) > 0 || len(fx.entries) > 0 || fx.ranges) {
		s.opts.OnApply(fx.applied())
	}
	if s.opts.OnCommit != nil && len(fx.entries) > 0 {
		s.opts.OnCommit(fx.entries)
	}
	return nil
}

// Applied is what an applied effect changed in the KV records (OnApply).
type Applied struct {
	KVs []KVChange // in no particular order; one change per record
	// Entries are the effect's appends, those OnCommit gets next (the
	// same slice: do not change it).
	Entries []Entry
	// All is set when the effect deleted a range of records: anything
	// kept from the store may have changed (no committer writes one today).
	All bool
}

// KVChange is one KV record an applied effect wrote.
type KVChange struct {
	Name    string
	Value   []byte // the new value, valid during the call only (copy to keep); nil when Deleted
	Deleted bool
}

func (fx *appliedFx) applied() Applied {
	a := Applied{KVs: make([]KVChange, 0, len(fx.kvs)), Entries: fx.entries, All: fx.ranges}
	for name, kv := range fx.kvs {
		a.KVs = append(a.KVs, KVChange{Name: name, Value: kv.value, Deleted: !kv.found})
	}
	return a
}

// appliedFx is what an effect changes beyond Pebble: what the caches of
// store.go must learn, and the entries for OnCommit.
type appliedFx struct {
	entries []Entry
	heads   map[string]meta // metas the effect wrote (zero: deleted)
	kvs     map[string]kvPending
	dedups  [][]byte // dedup records it wrote
	now     time.Time
	commits uint64 // the commit count it wrote (0: none)
	ranges  bool   // a range deletion outside stream entries: caches are dropped whole
}

// scanEffect reads an effect's batch once: the payloads of its entries,
// the records the caches hold, the commit count. It accepts only the
// record kinds a committer writes, so a batch it cannot account for is
// refused before anything is written.
func scanEffect(repr []byte, entries []effectEntry, now time.Time) (fx *appliedFx, err error) {
	defer func() {
		// Pebble's batch reader indexes past the end of some malformed
		// records instead of failing: a bad effect is an error, not a
		// crash of the node applying it.
		if r := recover(); r != nil {
			fx, err = nil, fmt.Errorf("%w: %v", ErrBadEffect, r)
		}
	}()
	fx = &appliedFx{heads: map[string]meta{}, kvs: map[string]kvPending{}, now: now}
	if len(repr) < 12 { // a batch header
		return nil, ErrBadEffect
	}
	r, count := pebble.ReadBatch(repr)
	values := make([][]byte, len(entries)) // the entries' stored values
	bodies := map[uint64][]byte{}          // body records the group wrote
	next := 0                              // the next entry whose record is ahead
	rec := uint32(0)
	for ; ; rec++ {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadEffect, err)
		}
		if !ok {
			break
		}
		if len(key) == 0 {
			return nil, ErrBadEffect
		}
		switch kind {
		case pebble.InternalKeyKindSet, pebble.InternalKeyKindDelete:
		case pebble.InternalKeyKindRangeDelete:
			if key[0] != kindEntry || len(value) == 0 || value[0] != kindEntry {
				fx.ranges = true
			}
			continue // trims and drops: entries, which no cache holds
		default:
			return nil, fmt.Errorf("%w: record kind %v", ErrBadEffect, kind)
		}
		set := kind == pebble.InternalKeyKindSet
		for next < len(entries) && entries[next].record == rec {
			e := entries[next]
			if !set || !bytes.Equal(key, entryKey(e.stream, e.pos.Seq)) {
				return nil, fmt.Errorf("%w: entry %s/%d is not record %d", ErrBadEffect, e.stream, e.pos.Seq, rec)
			}
			values[next] = value
			next++
		}
		switch key[0] {
		case kindMeta:
			m := meta{}
			if set {
				if m, err = decodeMeta(value); err != nil {
					return nil, fmt.Errorf("%w: meta %s: %v", ErrBadEffect, key[1:], err)
				}
			}
			fx.heads[string(key[1:])] = m
		case kindKV:
			kv := kvPending{found: set}
			if set {
				kv.value = value // the caller's buffer: valid during Apply only
			}
			fx.kvs[string(key[1:])] = kv
		case kindDedup:
			if set {
				fx.dedups = append(fx.dedups, key[1:])
			}
		case kindBody:
			if set && len(key) == 9 {
				bodies[binary.BigEndian.Uint64(key[1:])] = value
			}
		case kindCount:
			n, k := binary.Uvarint(value)
			if !set || k <= 0 {
				return nil, fmt.Errorf("%w: commit count", ErrBadEffect)
			}
			fx.commits = n
		case kindApply: // only the applying store writes its position
			return nil, fmt.Errorf("%w: it holds an applied position", ErrBadEffect)
		}
	}
	if rec != count {
		return nil, fmt.Errorf("%w: %d records, its header says %d", ErrBadEffect, rec, count)
	}
	if next < len(entries) {
		return nil, fmt.Errorf("%w: entry %s/%d has no record", ErrBadEffect, entries[next].stream, entries[next].pos.Seq)
	}
	fx.entries = make([]Entry, len(entries))
	shared := map[uint64][]byte{} // one payload per body, as the writer's entries share it
	for i, e := range entries {
		payload, millis, id, ref, err := decodeEntry(values[i])
		if err != nil {
			return nil, fmt.Errorf("%w: entry %s/%d: %v", ErrBadEffect, e.stream, e.pos.Seq, err)
		}
		if ref {
			p, ok := shared[id]
			if !ok {
				v, found := bodies[id]
				if !found {
					return nil, fmt.Errorf("%w: entry %s/%d refers to body %d, which it does not write", ErrBadEffect, e.stream, e.pos.Seq, id)
				}
				if _, p, err = decodeBody(v); err != nil {
					return nil, fmt.Errorf("%w: body %d: %v", ErrBadEffect, id, err)
				}
				p = bytes.Clone(p)
				shared[id] = p
			}
			payload = p
		} else {
			payload = bytes.Clone(payload)
		}
		fx.entries[i] = Entry{Stream: e.stream, Pos: e.pos, Payload: payload, Time: entryTime(millis)}
	}
	return fx, nil
}

// applyCaches brings the committer's caches up to an applied effect, as
// the committer does after its own commit: stream heads it holds take the
// new metas, records the effect wrote leave the update and read caches
// (before Apply returns, so a Get after it sees them), its dedup keys join
// the recent-dedup memory (so a miss stays final should this node become
// the writer), and the commit count moves on, from which the next body id
// is made.
func (s *Store) applyCaches(fx *appliedFx) {
	for stream, m := range fx.heads {
		if _, held := s.heads[stream]; !held {
			continue // read from Pebble when needed
		}
		if m == (meta{}) {
			delete(s.heads, stream)
		} else {
			s.heads[stream] = m
		}
	}
	if fx.ranges { // never written by a committer today; correct if it ever is
		clear(s.heads)
		s.updated = newUpdateCache(s.opts.UpdateCacheBytes)
		s.reads.clear()
	}
	s.updated.forget(fx.kvs)
	s.reads.invalidate(fx.kvs)
	for _, k := range fx.dedups {
		s.dedupMem.add(k, fx.now)
	}
	if fx.commits > 0 {
		s.commits = fx.commits
	}
}

// SetWriter makes this store the one that commits (on) or a follower
// (off: Submit and Commit fail with ErrNotOwner, and so do batches queued
// meanwhile). The cluster turns it on once this node owns the log and has
// applied all of it; Apply keeps every cache right, yet the state the next
// commit allocates from (stream heads, the commit count that makes body
// ids, recent updates) is read again from Pebble, so that a writer never
// starts from memory another writer's groups could have outdated. A store
// with a nil Log is always a writer: SetWriter does nothing.
func (s *Store) SetWriter(on bool) {
	if s.opts.Log == nil {
		return
	}
	if !on {
		s.writer.Store(false) // not under writeMu: a group stuck in an append must not hold this up
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.reload(); err != nil {
		s.fail(fmt.Errorf("reload before writing: %w", err))
		return
	}
	s.writer.Store(true)
}

// reload reads the committer's state again from Pebble (SetWriter).
func (s *Store) reload() error {
	n, err := readCount(s.db)
	if err != nil {
		return err
	}
	applied, err := readApplied(s.db)
	if err != nil {
		return err
	}
	if applied != s.applied.Load() {
		return fmt.Errorf("applied position %d in Pebble, %d in memory", applied, s.applied.Load())
	}
	s.commits = n
	clear(s.heads)
	s.updated = newUpdateCache(s.opts.UpdateCacheBytes)
	s.reads.clear()
	return nil
}
