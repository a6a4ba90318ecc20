package mqttd

import (
	"strings"
	"sync"

	"github.com/mochi-mqtt/server/v2/packets"
)

// userSubs keeps, per user topic (im/u/{uid}), the list of its subscribers
// that usercast writes to, as roomSubs does for group topics: every
// one-to-one message delivers two user events (the recipient's and the
// sender's other devices'), on the store's committer, and mochi's
// TopicsIndex.Subscribers built maps for each (~1.1 kB and 3 % of the
// broker's CPU in a paced c2c run, docs/benchmarks.md, Round 12).
//
// The list is built from mochi's index, the single source of truth, and
// rebuilt after any change that may concern it. Only two kinds of filter
// can match im/u/{uid}: the topic itself (a shared one once its
// $share/{name}/ prefix is taken off) and filters with wildcards. A
// change to an exact filter bumps that topic's generation; a change to
// any wildcard filter bumps one generation that every list checks (one
// counter, so a device connecting with wildcard subscriptions costs O(1),
// not a pass over every user's list). Generations are read before the
// index, and mochi changes its index before the subs hook runs (before
// the SUBACK or UNSUBACK is written), so a list built across a change is
// used once and not kept. An unsubscribed exact filter drops the topic's
// list, so users whose connections end (a clean session's filters are
// unsubscribed) leave nothing behind. As for rooms, the list holds
// ClientIDs with the client each had when it was built, and every
// delivery still passes the read ACL.
type userSubs struct {
	mu     sync.Mutex
	wild   uint64 // bumped by every change to a wildcard filter
	topics map[string]*userEntry
}

type userEntry struct {
	gen   uint64    // bumped by every change to the topic's own filter
	built uint64    // gen the list was built at
	wild  uint64    // userSubs.wild the list was built at
	ok    bool      // list is built
	list  []roomSub // immutable once built: readers use it unlocked
}

// get returns topic's subscribers, building the list with build when a
// change came since it was last built; false when build declines (shared
// or inline subscriptions, which go through mochi's fan-out).
func (x *userSubs) get(topic string, build func() ([]roomSub, bool)) ([]roomSub, bool) {
	x.mu.Lock()
	if x.topics == nil {
		x.topics = map[string]*userEntry{}
	}
	e := x.topics[topic]
	if e == nil {
		e = &userEntry{}
		x.topics[topic] = e
	}
	if e.ok && e.built == e.gen && e.wild == x.wild {
		list := e.list
		x.mu.Unlock()
		return list, true
	}
	gen, wild := e.gen, x.wild
	x.mu.Unlock()
	list, ok := build() // mochi's index, after reading the generations
	if !ok {
		return nil, false
	}
	x.mu.Lock()
	if e.gen == gen && x.wild == wild { // else a change came meanwhile: this list serves once
		e.list, e.built, e.wild, e.ok = list, gen, wild, true
	}
	x.mu.Unlock()
	return list, true
}

// changed marks the lists filters may concern as stale; removed (an
// unsubscribe) also drops the lists of the exact filters.
func (x *userSubs) changed(filters []packets.Subscription, removed bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, f := range filters {
		filter, _ := sharedFilter(f.Filter)
		if strings.ContainsAny(filter, "+#") {
			x.wild++
			continue
		}
		if e := x.topics[filter]; e != nil {
			e.gen++ // a get building it now keeps nothing
			if removed {
				delete(x.topics, filter)
			}
		}
	}
}

// len is how many topics have an entry (tests).
func (x *userSubs) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.topics)
}
