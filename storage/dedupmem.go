package storage

import (
	"hash/maphash"
	"time"
)

// recentDedups lets the committer skip the disk for the common dedup answer,
// "not a resend". A dedup lookup is a Pebble point read for a key that is
// almost never there, on every message: with tables churning under load its
// filter and index blocks are often not cached, and a profile showed it as
// the committer's largest cost. This remembers a 64-bit hash of every dedup
// key staged by this process, oldest first, up to a bound. Every key staged
// since completeSince is in it, so a miss is final once completeSince is at
// least one TTL ago: any record written before it has expired. A hit may be
// a hash collision and is confirmed on disk, as is every lookup while the
// memory does not cover a whole TTL (just after opening a store that holds
// dedup records, or when more keys than the bound arrive within a TTL).
// Owned by the committer goroutine.
type recentDedups struct {
	seed          maphash.Seed
	max           int
	ring          []dedupMark // FIFO; ring[head] is the oldest once full
	head          int
	set           map[uint64]int32 // hash -> how many marks carry it
	completeSince time.Time
}

type dedupMark struct {
	hash uint64
	at   int64 // unix nanoseconds
}

// newRecentDedups remembers up to max keys; max <= 0 disables it (every
// lookup goes to disk). complete is when memory starts to cover: the zero
// time for a store with no dedup records, the opening time otherwise.
func newRecentDedups(max int, complete time.Time) *recentDedups {
	if max <= 0 {
		return nil
	}
	return &recentDedups{seed: maphash.MakeSeed(), max: max, set: map[uint64]int32{}, completeSince: complete}
}

func (d *recentDedups) hash(key []byte) uint64 { return maphash.Bytes(d.seed, key) }

// missIsFinal reports whether key was certainly not staged within ttl of now.
func (d *recentDedups) missIsFinal(key []byte, now time.Time, ttl time.Duration) bool {
	if d == nil || now.Sub(d.completeSince) <= ttl {
		return false
	}
	return d.set[d.hash(key)] == 0
}

// add records a key staged at `at`, evicting the oldest mark when full.
func (d *recentDedups) add(key []byte, at time.Time) {
	if d == nil {
		return
	}
	m := dedupMark{hash: d.hash(key), at: at.UnixNano()}
	if len(d.ring) < d.max {
		d.ring = append(d.ring, m)
	} else {
		old := d.ring[d.head]
		if n := d.set[old.hash] - 1; n > 0 {
			d.set[old.hash] = n
		} else {
			delete(d.set, old.hash)
		}
		if t := time.Unix(0, old.at); t.After(d.completeSince) {
			d.completeSince = t // keys before this one may no longer be remembered
		}
		d.ring[d.head] = m
		d.head = (d.head + 1) % d.max
	}
	d.set[m.hash]++
}
