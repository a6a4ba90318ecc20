package storage

// updateCache keeps the values of the KV records recent Updates wrote, as
// committed, so the next Update of a record gets its value without a Pebble
// read: conversation records are updated by almost every message, twice
// per one-to-one send. Only Updates' records are kept (a Set or an Append's
// Index is rarely updated afterwards); any other write of a kept record
// drops it. The committer is the only writer of KV records and the only
// user of this cache, so it needs no lock and is never stale. Values are
// opaque bytes: the store knows nothing of what callers keep in them.
// Over its budget it forgets arbitrary records (map order), an eighth of
// the budget at a time; a forgotten record is read from Pebble by its next
// Update.
type updateCache struct {
	m      map[string]cachedKV
	bytes  int // approximate memory held
	budget int // ≤ 0: off
}

func newUpdateCache(budget int) *updateCache {
	return &updateCache{m: make(map[string]cachedKV), budget: budget}
}

// get returns a record as the last commit left it, if kept.
func (c *updateCache) get(name string) (kvPending, bool) {
	e, ok := c.m[name]
	return kvPending{value: e.v, found: e.found}, ok
}

// committed records what a commit wrote.
func (c *updateCache) committed(kvs map[string]kvPending) {
	if c.budget <= 0 {
		return
	}
	for name, p := range kvs {
		old, had := c.m[name]
		if !p.update || len(p.value) > c.budget/64 {
			if had {
				c.drop(name)
			}
			continue
		}
		if had { // overwritten in place: a hot record is rewritten every message
			c.bytes -= len(old.v)
		} else {
			c.bytes += len(name) + cacheEntryOverhead
		}
		c.m[name] = cachedKV{v: p.value, found: p.found}
		c.bytes += len(p.value)
	}
	if c.bytes <= c.budget {
		return
	}
	for name := range c.m {
		if c.bytes <= c.budget-c.budget/8 {
			break
		}
		c.drop(name)
	}
}

// forget drops the records a failed commit may have written in part.
func (c *updateCache) forget(kvs map[string]kvPending) {
	for name := range kvs {
		c.drop(name)
	}
}

func (c *updateCache) drop(name string) {
	if e, ok := c.m[name]; ok {
		c.bytes -= len(name) + len(e.v) + cacheEntryOverhead
		delete(c.m, name)
	}
}
