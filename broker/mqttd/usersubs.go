package mqttd

import (
	"strings"

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
	roomSubs // the lists and their generations; get builds and keeps them
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
		if e := x.rooms[filter]; e != nil {
			e.gen++ // a get building it now keeps nothing
			if removed {
				delete(x.rooms, filter)
			}
		}
	}
}
