package storage

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"
)

// A group's batch goes into the memtable's skiplist one key at a time, and
// that insert was the largest part of the committer's CPU: a search from
// the top of a skiplist of a few hundred thousand nodes per key, most of
// them cache misses. Pebble's inserter keeps the last insert's position, so
// a key just after the previous one is found from there in a few steps: a
// batch in key order (a stream's entries, bodies, a user's records next to
// each other) costs much less to insert. Within one batch only the last
// write of a key is visible to anyone (a batch lands whole at one sequence
// number range, readers see it all or nothing), so the earlier writes of a
// key, e.g. a conversation record that several messages of the group
// rewrote, are dropped: fewer keys in the WAL, the memtable and the flush.

// sorter is the committer's, reused by every group.
type sorter struct {
	ops   []batchOp
	order []opRef
}

type batchOp struct {
	kind       pebble.InternalKeyKind
	key, value []byte
}

// opRef is what the sort moves: a key's first 8 bytes (big-endian, so
// their order is the keys' order) and its write's position in the batch.
type opRef struct {
	pre uint64
	i   int32
}

func keyPrefix(k []byte) uint64 {
	var p [8]byte
	copy(p[:], k)
	return binary.BigEndian.Uint64(p[:])
}

// sorted returns a batch with b's writes in key order, the last write of
// each key only, or b itself when b holds anything but point sets and
// deletes (a range delete's order against point writes matters) or is too
// small to gain. The caller closes a returned batch that is not b.
func (st *sorter) sorted(db *pebble.DB, b *pebble.Batch) (*pebble.Batch, error) {
	if b.Count() < 4 {
		return b, nil
	}
	ops, order := st.ops[:0], st.order[:0]
	defer func() { clear(ops); st.ops, st.order = ops[:0], order[:0] }()
	r := b.Reader()
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("sort batch: %w", err)
		}
		if !ok {
			break
		}
		if kind != pebble.InternalKeyKindSet && kind != pebble.InternalKeyKindDelete {
			return b, nil
		}
		order = append(order, opRef{pre: keyPrefix(k), i: int32(len(ops))})
		ops = append(ops, batchOp{kind: kind, key: k, value: v})
	}
	slices.SortFunc(order, func(x, y opRef) int {
		if x.pre != y.pre {
			return cmp.Compare(x.pre, y.pre)
		}
		if c := bytes.Compare(ops[x.i].key, ops[y.i].key); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i) // the later write of a key wins
	})
	out := db.NewBatch()
	for j, o := range order {
		op := ops[o.i]
		if j+1 < len(order) && bytes.Equal(ops[order[j+1].i].key, op.key) {
			continue // written again later in the batch
		}
		var err error
		if op.kind == pebble.InternalKeyKindSet {
			err = out.Set(op.key, op.value, nil)
		} else {
			err = out.Delete(op.key, nil)
		}
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("sort batch: %w", err)
		}
	}
	return out, nil
}

// commitSorted commits b's writes in key order (sorter).
func (s *Store) commitSorted(b *pebble.Batch, wo *pebble.WriteOptions) error {
	sb, err := s.sort.sorted(s.db, b)
	if err != nil {
		return err
	}
	if sb != b {
		defer sb.Close()
	}
	return sb.Commit(wo)
}
