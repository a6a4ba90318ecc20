package storage

import (
	"hash/maphash"
	"time"
)

// recentDedups lets the committer skip the disk for the common dedup answer,
// "not a resend". A dedup lookup is a Pebble point read for a key that is
// almost never there, on every message: with tables churning under load its
// filter and index blocks are often not cached, and a profile showed it as
// the committer's largest cost (28 % of the broker's CPU in the c2c tail run
// once the memory no longer covered the dedup window, docs/benchmarks.md).
//
// It remembers every dedup key staged by this process, oldest first, up to
// a bound, in Bloom filters of 2.5 bytes per key: generations of genKeys keys
// each, the oldest dropped whole when the bound is reached. Every key staged
// since completeSince is in them, so a miss is final once completeSince is at
// least one TTL ago: any record written before it has expired. A filter
// never misses a key it holds; a hit may be a false positive (about 1 in
// 5,000 per generation, 1 in 300 lookups with all 16) and is confirmed on disk, as is every lookup while
// the memory does not cover a whole TTL (just after opening a store that
// holds dedup records, or when more keys than the bound arrive within a TTL).
// Owned by the committer goroutine.
type recentDedups struct {
	seed          maphash.Seed
	genKeys       int         // keys per generation
	maxGens       int         // generations kept: genKeys*maxGens covers the bound
	gens          []*dedupGen // oldest first; the last one takes new keys
	completeSince time.Time
}

const (
	dedupGenerations = 16 // the bound is kept in this many generations: each eviction forgets 1/16 of it
	dedupBitsPerKey  = 20 // filter bits per key: with 10 probes in one 64-byte block, ~0.02 % false positives (TestRecentDedups_Filters)
	dedupProbes      = 10
)

// dedupGen is one generation: a Bloom filter whose probes for a key fall in
// one cache line (one memory read per generation and lookup).
type dedupGen struct {
	blocks [][8]uint64
	n      int   // keys added
	newest int64 // unix nanoseconds of the last key added
}

// newRecentDedups remembers up to max keys (rounded up to whole
// generations); max <= 0 disables it (every lookup goes to disk). complete
// is when memory starts to cover: the zero time for a store with no dedup
// records, the opening time otherwise.
func newRecentDedups(max int, complete time.Time) *recentDedups {
	if max <= 0 {
		return nil
	}
	gk := (max + dedupGenerations - 1) / dedupGenerations
	return &recentDedups{seed: maphash.MakeSeed(), genKeys: gk, maxGens: (max + gk - 1) / gk, completeSince: complete}
}

func (d *recentDedups) hash(key []byte) uint64 { return maphash.Bytes(d.seed, key) }

// probe returns the block that key's hash h falls in, of n, and its probe
// bits in it: the block from h's high half, each probe from 9 bits of a
// splitmix64 sequence seeded by h (independent of the block). Every
// generation has the same n, so a lookup computes this once.
func probe(h uint64, n int) (int, [8]uint64) {
	blk := int((h >> 32) * uint64(n) >> 32)
	var bits [8]uint64
	x, r := h, uint64(0)
	for i := range dedupProbes {
		if i%7 == 0 { // 7 probes of 9 bits per 64-bit draw
			x += 0x9e3779b97f4a7c15
			r = (x ^ x>>30) * 0xbf58476d1ce4e5b9
			r = (r ^ r>>27) * 0x94d049bb133111eb
			r ^= r >> 31
		}
		p := r & 511
		r >>= 9
		bits[p>>6] |= 1 << (p & 63)
	}
	return blk, bits
}

func (g *dedupGen) mayHold(blk int, bits *[8]uint64) bool {
	b := &g.blocks[blk]
	for i := range b {
		if b[i]&bits[i] != bits[i] {
			return false
		}
	}
	return true
}

// missIsFinal reports whether key was certainly not staged within ttl of now.
func (d *recentDedups) missIsFinal(key []byte, now time.Time, ttl time.Duration) bool {
	if d == nil || now.Sub(d.completeSince) <= ttl {
		return false
	}
	if len(d.gens) == 0 {
		return true
	}
	blk, bits := probe(d.hash(key), len(d.gens[0].blocks))
	live := now.Add(-ttl).UnixNano()
	for _, g := range d.gens {
		if g.newest < live {
			continue // all of its keys have expired
		}
		if g.mayHold(blk, &bits) {
			return false
		}
	}
	return true
}

// add records a key staged at `at`, forgetting the oldest generation when
// a new one would pass the bound.
func (d *recentDedups) add(key []byte, at time.Time) {
	if d == nil {
		return
	}
	g := d.current()
	blk, bits := probe(d.hash(key), len(g.blocks))
	b := &g.blocks[blk]
	for i := range b {
		b[i] |= bits[i]
	}
	g.n++
	g.newest = at.UnixNano()
}

// current returns the generation that takes the next key, starting a new
// one (with the memory of the one it forgets, if any) when the last is full.
func (d *recentDedups) current() *dedupGen {
	if n := len(d.gens); n > 0 && d.gens[n-1].n < d.genKeys {
		return d.gens[n-1]
	}
	var g *dedupGen
	if len(d.gens) == d.maxGens {
		g = d.gens[0]
		if t := time.Unix(0, g.newest); t.After(d.completeSince) {
			d.completeSince = t // keys up to this one may no longer be remembered
		}
		d.gens = append(d.gens[:0], d.gens[1:]...)
		clear(g.blocks)
		g.n, g.newest = 0, 0
	} else {
		g = &dedupGen{blocks: make([][8]uint64, max(1, (d.genKeys*dedupBitsPerKey+511)/512))}
	}
	d.gens = append(d.gens, g)
	return g
}

// keys returns how many keys the memory holds now.
func (d *recentDedups) keys() int {
	n := 0
	for _, g := range d.gens {
		n += g.n
	}
	return n
}
