package mqttd

import (
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// roomSubs keeps, per group topic, the list of its subscribers that the
// room fan-out (roomcast.go) writes to, so that a live room's message does
// not rebuild it. mochi's TopicsIndex.Subscribers builds a fresh map of
// every subscriber (and, through Subscription.Merge, a map of identifiers
// for each) per message: in a 10,000-member room that was megabytes of
// garbage per message, whose fresh pages the kernel zeroed on fault, and
// ~10 % of the broker's CPU besides the writes (docs/benchmarks.md,
// "Round 6: the live room").
//
// The list is built from mochi's index, the single source of truth, and
// rebuilt after any change that may have added a subscriber: each
// topic's generation is bumped when a filter equal to it is granted or
// removed (the subs hook; DropGroupSubscriptions), and one generation that
// every list checks when a wildcard filter that may match group topics is
// (O(1), not a pass over every list). The generations are read before the
// index, so a subscription granted while a list is built
// makes that list stale at once. mochi adds a subscription to its index
// before OnSubscribed, and OnSubscribed runs before the SUBACK is written:
// once a client has its SUBACK, the next message's list has it. A
// persistent session taken over keeps its ClientID and its entries in
// mochi's index, so the list holds ClientIDs, with the client each had
// when the list was built, checked per message (roomSub.client).
// Removals only leave stale entries until the next rebuild, and every
// delivery still passes the read ACL, which refuses a closed connection
// and a removed member.
type roomSubs struct {
	mu    sync.Mutex
	wild  uint64                // bumped by every change to a wildcard filter that may match the topics
	rooms map[string]*roomEntry // topic -> its list
}

type roomEntry struct {
	gen   uint64    // bumped by every change to the topic's own filter
	built uint64    // gen the list was built at
	wild  uint64    // roomSubs.wild the list was built at
	ok    bool      // list is built
	list  []roomSub // immutable once built: readers use it unlocked
}

// roomSub is one subscriber of a group topic.
type roomSub struct {
	id  string       // ClientID
	cl  *mqtt.Client // the client when the list was built; nil: none then (client)
	ids []int        // its subscription identifiers above 0, sorted [MQTT-3.3.4-3]; nil: none
}

// client is the connection sub's ClientID has now. A ClientID's client
// changes only when a new connection takes it over, and mochi stops the
// old one first, so a client that is not closed is still the one: only a
// closed one is looked up again (Clients.Get, a map lookup per member per
// message otherwise).
func (sub *roomSub) client(clients *mqtt.Clients) (*mqtt.Client, bool) {
	if sub.cl != nil && !sub.cl.Closed() {
		return sub.cl, true
	}
	return clients.Get(sub.id)
}

// get returns topic's subscribers, building the list with build when a
// change came since it was last built; false when build declines (shared
// or inline subscriptions, which go through mochi's fan-out).
func (x *roomSubs) get(topic string, build func() ([]roomSub, bool)) ([]roomSub, bool) {
	x.mu.Lock()
	if x.rooms == nil {
		x.rooms = map[string]*roomEntry{}
	}
	e := x.rooms[topic]
	if e == nil {
		e = &roomEntry{}
		x.rooms[topic] = e
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

// changed marks the lists filters may have changed as stale.
func (x *roomSubs) changed(filters []packets.Subscription) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, f := range filters {
		filter, _ := sharedFilter(f.Filter)
		if _, ok := groupOfTopic(filter); ok {
			if e := x.rooms[filter]; e != nil {
				e.gen++
			}
			continue
		}
		if wildOverGroups(filter) {
			x.wild++
		}
	}
}

// forget drops topic's list (its group was destroyed).
func (x *roomSubs) forget(topic string) {
	x.mu.Lock()
	delete(x.rooms, topic)
	x.mu.Unlock()
}

// wildOverGroups reports whether a filter with wildcards may match a group
// topic im/g/{gid} (three levels; a trailing /# also matches its parent
// [MQTT-4.7.1-2]).
func wildOverGroups(filter string) bool {
	if !strings.ContainsAny(filter, "+#") {
		return false
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		switch {
		case l == "#":
			return true
		case i == 0 && l != "+" && l != "im", i == 1 && l != "+" && l != "g":
			return false
		case i == 2:
			return len(levels) == 3 || (len(levels) == 4 && levels[3] == "#")
		}
	}
	return false
}

// Subscribed implements subs.Watcher.
func (s *Server) Subscribed(_ *mqtt.Client, filters []packets.Subscription) {
	s.rooms.changed(filters)
	s.users.changed(filters, false)
}

// Unsubscribed implements subs.Watcher.
func (s *Server) Unsubscribed(_ *mqtt.Client, filters []packets.Subscription) {
	s.rooms.changed(filters)
	s.users.changed(filters, true)
}

// roomList builds topic's subscriber list from mochi's index; false when
// the topic has shared or inline subscribers.
func (s *Server) roomList(topic string) ([]roomSub, bool) {
	subs := s.mq.Topics.Subscribers(topic)
	if len(subs.Shared) > 0 || len(subs.InlineSubscriptions) > 0 {
		return nil, false
	}
	list := make([]roomSub, 0, len(subs.Subscriptions))
	for id, sub := range subs.Subscriptions {
		rs := roomSub{id: id, ids: subscriptionIDs(sub)}
		rs.cl, _ = s.mq.Clients.Get(id)
		list = append(list, rs)
	}
	return list, true
}
