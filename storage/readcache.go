package storage

import "sync"

// readCache keeps KV records read through Store.Get, found or not: the send
// path reads records that almost never exist (a blacklist entry, a global
// mute) on every message, and a Pebble point read of a missing key still
// searches the memtables and every level (about 5 µs). The committer is the
// only writer: after each commit it drops the records the commit wrote
// (invalidate) before anyone is told the commit is done, so a Get that
// starts after a Commit returns never sees what that commit replaced. A
// fill races with commits: it is kept only if no commit invalidated
// anything while it read Pebble (gen).
type readCache struct {
	mu     sync.RWMutex
	gen    uint64 // invalidations so far
	m      map[string]cachedKV
	bytes  int // approximate memory held
	budget int // ≤ 0: off
}

type cachedKV struct {
	v     []byte
	found bool
}

const (
	cacheEntryOverhead = 64   // map entry, string and slice headers
	maxCachedValue     = 1024 // bigger records are read from Pebble every time
)

func newReadCache(budget int) *readCache {
	return &readCache{m: make(map[string]cachedKV), budget: budget}
}

// get returns a cached record (ok) and the generation to fill with on a miss.
func (c *readCache) get(name string) (v []byte, found, ok bool, gen uint64) {
	if c.budget <= 0 {
		return nil, false, false, 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[name]
	return e.v, e.found, ok, c.gen
}

// fill caches what a Get read, unless a commit invalidated records since
// gen. v must not be changed afterwards.
func (c *readCache) fill(name string, gen uint64, v []byte, found bool) {
	if c.budget <= 0 || len(v) > maxCachedValue {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, dup := c.m[name]; dup {
		return
	}
	c.m[name] = cachedKV{v: v, found: found}
	c.bytes += len(name) + len(v) + cacheEntryOverhead
	for n := range c.m { // over budget: forget arbitrary records (map order)
		if c.bytes <= c.budget {
			break
		}
		c.drop(n)
	}
}

// invalidate forgets records a commit has just written.
func (c *readCache) invalidate(names map[string]kvPending) {
	if c.budget <= 0 || len(names) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for n := range names {
		c.drop(n)
	}
}

func (c *readCache) drop(name string) {
	if e, ok := c.m[name]; ok {
		c.bytes -= len(name) + len(e.v) + cacheEntryOverhead
		delete(c.m, name)
	}
}

// clear forgets every record (a writer change, apply.go).
func (c *readCache) clear() {
	if c.budget <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
	c.bytes = 0
}
