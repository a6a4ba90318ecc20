package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// Cluster mode replicates the committer instead of the database: the node
// that owns the log stages each group exactly as a single node does, then
// appends the group's writes to the log as an effect, and commits locally
// only once the log holds it. Every other node applies the effects in log
// order (apply.go), so all Pebble copies go through the same states and
// each node's OnCommit sees the same entries. The store knows nothing of
// what implements the log (package cluster: NATS JetStream).

// Log replicates the committer's groups (cluster mode). Options.Log nil = today's path.
type Log interface {
	// Append appends one effect right after log position prev (the last position this store
	// applied) and returns its position once a quorum holds it durably. If the log's last
	// position is not prev (another writer appended), it returns an error wrapping ErrFenced
	// and appends nothing.
	Append(ctx context.Context, prev uint64, effect []byte) (pos uint64, err error)
}

// Errors of cluster mode.
var (
	ErrFenced   = errors.New("storage: the log moved on without this store (not the owner)")
	ErrNotOwner = errors.New("storage: this node does not write (cluster follower)")
)

// An effect is one group commit as any store can apply it:
//
//	ver(1)=1 | group time, unix nanos (8, big-endian) | uvarint n |
//	n × (uvarint len | stream | uvarint epoch | uvarint seq | uvarint record) |
//	the group's Pebble batch (Batch.Repr)
//
// The batch is every write of the group, metas and commit count included,
// but not the applied position, which only the log's answer gives. The n
// entries are the group's appends, for OnCommit: their payloads are not
// repeated, "record" is the index in the batch of the Set that stored the
// entry (its value, or the body it refers to, holds the payload). A record
// index rather than a key lookup, because a group may drop a stream and
// append to it again, setting one entry key twice.
const effectVersion byte = 1

// effectEntryBytes bounds what an entry adds to an effect beside its
// batch (stream name, three uvarints) for the usual stream names: it is
// only used to close a group before its effect grows past MaxEffectBytes.
const effectEntryBytes = 64

// DefaultMaxEffectBytes is Options.MaxEffectBytes when it is 0: half of
// NATS' default max_payload (1 MiB), so that a group closed at it, plus
// the one request that took it past, still fits.
const DefaultMaxEffectBytes = 512 << 10

// effectEntry is an entry of an effect: where the payload is in its batch.
type effectEntry struct {
	stream string
	pos    Pos
	record uint32
}

// encodeEffect encodes a group: its time, its entries with the batch
// record of each (recs, parallel to entries) and its batch.
func encodeEffect(now time.Time, entries []Entry, recs []uint32, repr []byte) []byte {
	n := 1 + 8 + binary.MaxVarintLen64 + len(repr)
	for _, e := range entries {
		n += len(e.Stream) + 4*binary.MaxVarintLen64
	}
	v := make([]byte, 0, n)
	v = append(v, effectVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(now.UnixNano()))
	v = binary.AppendUvarint(v, uint64(len(entries)))
	for i, e := range entries {
		v = binary.AppendUvarint(v, uint64(len(e.Stream)))
		v = append(v, e.Stream...)
		v = binary.AppendUvarint(v, e.Pos.Epoch)
		v = binary.AppendUvarint(v, e.Pos.Seq)
		v = binary.AppendUvarint(v, uint64(recs[i]))
	}
	return append(v, repr...)
}

// ErrBadEffect: Apply was given an effect this store cannot decode or
// that does not fit its own batch (or one of a later version). Nothing of
// it was written; retrying cannot help, unlike ErrNoSpace or ErrFailed.
var ErrBadEffect = errors.New("storage: malformed effect")

// decodeEffect splits an effect into its group time, entries and batch.
// The entries' streams are copies; repr is a part of v.
func decodeEffect(v []byte) (now time.Time, entries []effectEntry, repr []byte, err error) {
	if len(v) < 9 || v[0] != effectVersion {
		if len(v) > 0 && v[0] != effectVersion {
			return time.Time{}, nil, nil, fmt.Errorf("%w: version %d (this node reads %d: upgrade it)", ErrBadEffect, v[0], effectVersion)
		}
		return time.Time{}, nil, nil, ErrBadEffect
	}
	now = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9])))
	rest := v[9:]
	uvarint := func() uint64 {
		x, k := binary.Uvarint(rest)
		if k <= 0 {
			err = ErrBadEffect
			return 0
		}
		rest = rest[k:]
		return x
	}
	n := uvarint()
	if err != nil || n > uint64(len(rest)) { // each entry takes several bytes
		return time.Time{}, nil, nil, ErrBadEffect
	}
	entries = make([]effectEntry, 0, n)
	for range n {
		l := uvarint()
		if err != nil || l > uint64(len(rest)) {
			return time.Time{}, nil, nil, ErrBadEffect
		}
		e := effectEntry{stream: string(rest[:l])}
		rest = rest[l:]
		e.pos.Epoch, e.pos.Seq = uvarint(), uvarint()
		rec := uvarint()
		if err != nil || rec > 1<<32-1 {
			return time.Time{}, nil, nil, ErrBadEffect
		}
		e.record = uint32(rec)
		entries = append(entries, e)
	}
	return now, entries, rest, nil
}

// appendEffect appends the staged group to the log, fenced on the last
// position this store applied, and returns the group's position. Nothing
// is written locally before it returns: a group the log refused leaves no
// trace. After ErrFenced the store stops writing until SetWriter(true):
// another node owns the log, and this one must apply what it wrote first.
func (s *Store) appendEffect(group []*request, g *groupStage, b *pebble.Batch) (uint64, error) {
	prev := s.applied.Load()
	effect := encodeEffect(g.now, g.entries, g.recs, b.Repr())
	ctx, cancel := s.appendContext(group)
	defer cancel()
	pos, err := s.opts.Log.Append(ctx, prev, effect)
	if err != nil {
		if errors.Is(err, ErrFenced) && s.writer.CompareAndSwap(true, false) {
			s.log.Warn("the log moved on without this store: it stops writing until it applied the log and is made the writer again",
				"applied", prev, "error", err)
		}
		return 0, fmt.Errorf("storage: log append after %d: %w", prev, err)
	}
	if pos != prev+1 {
		// Apply takes positions one by one: a log that skips one breaks
		// every follower, so this store stops rather than go on alone.
		s.writer.Store(false)
		return 0, fmt.Errorf("storage: the log appended at %d after %d: positions must follow each other", pos, prev)
	}
	return pos, nil
}

// appendContext bounds the append so that it ends, and the local write
// after it, before the earliest deadline in the group: a waiter whose
// request is still being written at its deadline declares the disk stalled
// and fails the store (Pending.Wait), which a slow network must not do.
// Every request was taken with at least StallTimeout left (take); half of
// it is left for the local write, which has no fsync of its own. Without
// any deadline the Log's own timeout bounds the append.
func (s *Store) appendContext(group []*request) (context.Context, context.CancelFunc) {
	var first time.Time
	for _, r := range group {
		if r.err == nil && !r.deadline.IsZero() && (first.IsZero() || r.deadline.Before(first)) {
			first = r.deadline
		}
	}
	if first.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), first.Add(-s.opts.StallTimeout/2))
}

// appliedKey holds the last log position applied, written in the same
// batch as each effect: after a crash the store resumes exactly after the
// last group it holds.
var appliedKey = []byte{kindApply}

func encodeApplied(pos uint64) []byte { return binary.AppendUvarint(nil, pos) }

// readApplied reads the applied position (0: none, a store that never
// applied an effect).
func readApplied(r getter) (uint64, error) { return readUvarint(r, appliedKey, "applied position") }
