package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble"
)

// Body records hold a payload that several entries of one batch share
// (Append.SameAs): a one-to-one message goes to the recipient's stream, the
// sender's and the pair's history, and writing its bytes once instead of
// three times is most of what the store writes, flushes and compacts per
// message. Each of those entries is a reference (encodeRef) to the body; the
// body counts the entries that refer to it. Trims, drops and replaces of a
// reference give its count back, and the body goes with its last reference,
// so no entry ever refers to a missing body and none outlives its streams.
//
// A body's id is the group commit that wrote it (high 40 bits) and its rank
// in that group: unique without a counter of its own, since the commit count
// is written atomically with every group (damage.go), and a group whose
// write failed wrote nothing (a Pebble batch lands whole or not at all; a
// fatal write error fails the store), so its ids are free again.

func bodyKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{kindBody}, id)
}

func encodeBody(refs uint64, payload []byte) []byte {
	v := make([]byte, 0, 1+binary.MaxVarintLen64+len(payload))
	v = append(v, valueVersion)
	v = binary.AppendUvarint(v, refs)
	return append(v, payload...)
}

func decodeBody(v []byte) (refs uint64, payload []byte, err error) {
	if len(v) < 2 || v[0] != valueVersion {
		return 0, nil, errCorrupt
	}
	refs, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return refs, v[1+n:], nil
}

// bodyPending is a body record as a group leaves it: refs 0 is deleted.
type bodyPending struct {
	refs    uint64
	payload []byte
}

// newBodyID returns the id of the next body the group writes.
func (g *groupStage) newBodyID() uint64 {
	g.nbodies++
	return (g.s.commits+1)<<24 | g.nbodies
}

// body returns a committed body as the request leaves it so far. The
// record is read with it when given, else with a point read.
func (g *groupStage) body(id uint64, it *pebble.Iterator) (bodyPending, bool, error) {
	if p, ok := g.req.bodies[id]; ok {
		return p, true, nil
	}
	if p, ok := g.bodies[id]; ok {
		return p, true, nil
	}
	var v []byte
	if it != nil {
		key := bodyKey(id)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			if err := it.Error(); err != nil {
				return bodyPending{}, false, fmt.Errorf("body %d: %w", id, err)
			}
			return bodyPending{}, false, nil
		}
		v = it.Value()
	} else {
		var closer io.Closer
		var err error
		v, closer, err = g.s.db.Get(bodyKey(id))
		if errors.Is(err, pebble.ErrNotFound) {
			return bodyPending{}, false, nil
		}
		if err != nil {
			return bodyPending{}, false, fmt.Errorf("body %d: %w", id, err)
		}
		defer closer.Close()
	}
	refs, payload, err := decodeBody(v)
	if err != nil {
		return bodyPending{}, false, fmt.Errorf("body %d: %w", id, err)
	}
	return bodyPending{refs: refs, payload: bytes.Clone(payload)}, true, nil
}

// unref stages giving back the reference of the committed entry at key to
// body id: the body is rewritten with one reference less, or deleted with
// its last. An entry gives its reference back once, however many replaces,
// trims and drops of the group reach it. it, when not nil, reads the body
// (unrefRange).
func (g *groupStage) unref(key []byte, id uint64, it *pebble.Iterator) error {
	if g.req.unrefd[string(key)] || g.unrefd[string(key)] {
		return nil
	}
	g.req.unrefd[string(key)] = true
	p, ok, err := g.body(id, it)
	if err != nil || !ok || p.refs == 0 {
		return err // already gone: nothing to give back
	}
	p.refs--
	if p.refs == 0 {
		p.payload = nil
		err = g.req.b.Delete(bodyKey(id), nil)
	} else {
		err = g.req.b.Set(bodyKey(id), encodeBody(p.refs, p.payload), nil)
	}
	if err != nil {
		return fmt.Errorf("stage body %d: %w", id, err)
	}
	g.req.bodies[id] = p
	return nil
}

// unrefRange gives back the references of the committed entries of stream
// with seq in [from, to): they are about to be deleted (a trim or a drop).
// Entries this group appended are not committed yet and are not seen: a
// trim that reaches into its own group's appends leaves their body behind
// (retention trims old entries, so it does not happen in practice).
//
// The bodies are read with one iterator moving forward, as bodyReader does:
// their ids grow with the entries' seqs. A point read each (a Bloom filter
// and an index block per level, for bodies long flushed to the lower
// levels) was 16 % of the broker's CPU while retention trimmed in the c2c
// tail run (docs/benchmarks.md).
func (g *groupStage) unrefRange(stream string, from, to uint64) error {
	it, err := g.s.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(stream, from), UpperBound: entryKey(stream, to)})
	if err != nil {
		return fmt.Errorf("bodies of %s: %w", stream, err)
	}
	defer it.Close()
	var bit *pebble.Iterator // opened at the first reference
	defer func() {
		if bit != nil {
			_ = bit.Close()
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		v := it.Value()
		if len(v) == 0 || v[0] != refVersion {
			continue
		}
		_, _, id, _, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("bodies of %s seq %d: %w", stream, seqOfEntryKey(it.Key()), err)
		}
		if bit == nil {
			if bit, err = g.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindBody}, UpperBound: []byte{kindBody + 1}}); err != nil {
				return fmt.Errorf("bodies of %s: %w", stream, err)
			}
		}
		if err := g.unref(it.Key(), id, bit); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("bodies of %s: %w", stream, err)
	}
	return nil
}

// bodyReader reads the bodies a stream's entries refer to, in the order of
// the entries. Their ids grow with the stream's seqs (both follow commit
// order), so one iterator moving forward finds them: Pebble continues a
// seek to a greater key from where the last one ended.
type bodyReader struct {
	r  pebble.Reader
	it *pebble.Iterator
}

func (br *bodyReader) read(id uint64) ([]byte, error) {
	if br.it == nil {
		it, err := br.r.NewIter(&pebble.IterOptions{LowerBound: []byte{kindBody}, UpperBound: []byte{kindBody + 1}})
		if err != nil {
			return nil, fmt.Errorf("bodies: %w", err)
		}
		br.it = it
	}
	key := bodyKey(id)
	if !br.it.SeekGE(key) || !bytes.Equal(br.it.Key(), key) {
		if err := br.it.Error(); err != nil {
			return nil, fmt.Errorf("body %d: %w", id, err)
		}
		return nil, fmt.Errorf("body %d: %w", id, errCorrupt) // a missing body is damage: references keep it
	}
	_, payload, err := decodeBody(br.it.Value())
	if err != nil {
		return nil, fmt.Errorf("body %d: %w", id, err)
	}
	return bytes.Clone(payload), nil
}

func (br *bodyReader) close() {
	if br.it != nil {
		_ = br.it.Close()
	}
}
