package mqttd

import mqtt "github.com/mochi-mqtt/server/v2"

// usercast delivers one event on a user topic (im/u/{uid}) to the user's
// subscribed connections, at QoS 0, on the store's committer (enqueue),
// and reports whether it did; false leaves the event to mochi's fan-out.
//
// Why not mochi's fan-out (measured in docs/benchmarks.md, "Round 6"): for
// each copy mochi copies the packet, queues it on the client's outbound
// channel and wakes the client's WriteLoop goroutine, which encodes it into
// a fresh buffer and writes it: a goroutine hop and a write syscall per
// message. Here the committer encodes the PUBLISH once and writes it to
// the connection itself, and until the group commit's events are all
// written (h) it holds the connections it wrote to, so that a burst of
// events to one connection leaves in one write.
//
// The subscribers come from a list kept per user topic (usersubs.go)
// rather than from maps mochi builds per event.
//
// What mochi's QoS 0 delivery does is kept, as for live rooms (roomcast):
// the read ACL per connection (CanRead: a closed connection is refused),
// the client's Maximum Packet Size, subscription identifiers, and a copy a
// connection cannot take now (mqtt.write_buffer_max bytes pending) is
// dropped, not waited for (nothing here waits); the user fills the gap by
// sync. Shared and inline subscriptions, which user topics never have, go
// through mochi.
func (s *Server) usercast(topic string, payload []byte, h *holds) bool {
	list, ok := s.users.get(topic, func() ([]roomSub, bool) { return s.roomList(topic) })
	if !ok {
		return false
	}
	s.writeCopies(topic, payload, [2][]byte{}, func(cl *mqtt.Client) bool { return s.CanRead(cl, topic) }, list, h)
	return true
}

// holds are the connections one enqueue (one group commit's events) wrote
// user events to, each held (lazyconn.Conn.Hold) until the enqueue ends:
// the copies it writes to one connection meanwhile leave in one write
// syscall at release. A copy so waits only for the user events committed
// with it, never for a socket, a room or another commit; holds are
// released before anything else is delivered (a room's fan-out, mochi's).
type holds struct {
	conns []holder
}

func (h *holds) hold(c holder) {
	if h == nil {
		return
	}
	for _, x := range h.conns {
		if x == c {
			return
		}
	}
	c.Hold()
	h.conns = append(h.conns, c)
}

func (h *holds) release() {
	if h == nil {
		return // a worker's delivery: nothing was held
	}
	for i, c := range h.conns {
		c.Release()
		h.conns[i] = nil
	}
	h.conns = h.conns[:0]
}
