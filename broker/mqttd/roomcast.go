package mqttd

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/lazyconn"
)

// roomcast delivers one event on a group topic (im/g/{gid}) to its
// subscribers, at QoS 0, on the delivery worker's goroutine, and reports
// whether it did; false leaves the event to mochi's own fan-out.
//
// Why not mochi's fan-out (measured in docs/benchmarks.md, "Round 3"): for
// every subscriber mochi copies the packet, queues it on the client's
// outbound channel, wakes the client's WriteLoop goroutine, and encodes it
// into a fresh buffer there. In a 10,000-member room that was about half
// of the broker's CPU per message besides the write syscalls themselves:
// the allocations drove GC, whose stack scans shrank 10,000 WriteLoop
// stacks that the next message grew again. Here the packet is encoded once
// per protocol version and the same bytes are written to each member's
// connection.
//
// The subscribers come from a list kept per group topic (roomsubs.go)
// rather than from a map mochi builds per message.
//
// What mochi's QoS 0 delivery does per subscriber is kept: the read ACL
// (CanRead: membership, bans, kicks, guests; a closed connection is
// refused), the client's Maximum Packet Size, subscription identifiers
// (an MQTT 5 subscription with one gets its own encoding), and a copy for a connection
// that cannot take it now is dropped, not waited for (lazyconn.TryWrite
// refuses past mqtt.write_buffer_max pending bytes, as mochi drops at a
// full outbound queue); the member fills the gap by sync. No outbound topic
// alias is set: the server may always send the full topic name. Shared and
// inline subscriptions, which IM topics never have, go through mochi.
func (s *Server) roomcast(topic string, payload []byte) bool {
	list, ok := s.rooms.get(topic, func() ([]roomSub, bool) { return s.roomList(topic) })
	if !ok {
		return false
	}
	canRead := s.roomReader(topic)
	// 0: MQTT 3.1/3.1.1, 1: MQTT 5 without subscription identifiers.
	enc := [2][]byte{encodePublish(topic, payload, 4, nil), encodePublish(topic, payload, 5, nil)}
	// One write syscall per member is most of the cost (on loopback it
	// also runs the receiver's TCP path), so a large room is written by
	// up to GOMAXPROCS goroutines, each a contiguous share, joined here.
	parts := min(runtime.GOMAXPROCS(0), len(list)/roomcastSplit)
	if parts <= 1 {
		s.writeCopies(topic, payload, enc, canRead, list, nil)
		return true
	}
	var wg sync.WaitGroup
	for i := range parts {
		share := list[i*len(list)/parts : (i+1)*len(list)/parts]
		wg.Go(func() { s.writeCopies(topic, payload, enc, canRead, share, nil) })
	}
	wg.Wait()
	return true
}

// groupReaders is the groups service's read ACL of one group for many
// users (groups.Service.Reader), when it has one.
type groupReaders interface {
	Reader(gid string) func(user []byte) bool
}

// roomReader is CanRead(cl, topic) for the subscribers of the group topic
// topic, with the group looked up once per message.
func (s *Server) roomReader(topic string) func(*mqtt.Client) bool {
	gid, ok := groupOfTopic(topic)
	gr, has := s.Groups.(groupReaders)
	if !ok || !has {
		return func(cl *mqtt.Client) bool { return s.CanRead(cl, topic) }
	}
	member := gr.Reader(gid)
	return func(cl *mqtt.Client) bool {
		// CanRead's checks for an im/g/{gid} topic, in its order.
		return !cl.Closed() && !isAnonymous(cl) && member(cl.Properties.Username)
	}
}

// roomcastSplit is how many members a room needs per extra writer.
const roomcastSplit = 1000

// writeCopies checks each subscriber with the read ACL and writes it its
// encoding of the event (enc: the shared encodings, encoded on first use
// when empty), under h's holds when h is not nil: a room's members and a
// user's connections alike.
func (s *Server) writeCopies(topic string, payload []byte, enc [2][]byte, canRead func(*mqtt.Client) bool, subs []roomSub, h *holds) {
	var sent, sentBytes int64
	for i := range subs {
		sub := &subs[i]
		cl, ok := sub.client(s.mq.Clients)
		if !ok || !canRead(cl) {
			continue
		}
		b := publishFor(cl, topic, payload, sub.ids, &enc)
		if b == nil {
			continue
		}
		if s.writeCopy(cl, b, h) {
			sent++
			sentBytes += int64(len(b))
		}
	}
	s.countSent(sent, sentBytes)
}

// writeCopy writes an encoded PUBLISH (a live copy of a room's or a user's
// event) to cl's connection without waiting, under h's hold when h is not
// nil. A connection that cannot take it now (mqtt.write_buffer_max bytes
// pending) drops it, counted in mochi's MessagesDropped.
func (s *Server) writeCopy(cl *mqtt.Client, b []byte, h *holds) bool {
	lc, ok := cl.Net.Conn.(*lazyconn.Conn)
	if !ok {
		// Every listener hands mochi a lazyconn.Conn; anything else would
		// need mochi's queue to write without waiting, so it is skipped
		// and logged rather than allowed to stall the worker.
		s.log.Warn("live copy not written: connection is not a lazyconn.Conn", "client", cl.ID)
		return false
	}
	h.hold(lc)
	if _, err := lc.TryWrite(b); err != nil {
		if errors.Is(err, lazyconn.ErrFull) {
			atomic.AddInt64(&s.mq.Info.MessagesDropped, 1)
		}
		return false
	}
	return true
}

// countSent adds live copies written to mochi's counters, as its own
// fan-out counts them.
func (s *Server) countSent(copies, bytes int64) {
	atomic.AddInt64(&s.mq.Info.MessagesSent, copies)
	atomic.AddInt64(&s.mq.Info.PacketsSent, copies)
	atomic.AddInt64(&s.mq.Info.BytesSent, bytes)
}

// encodePublish encodes a QoS 0 PUBLISH with mochi's encoder; nil if it
// cannot be encoded (never for the deliverer's topics and payloads).
func encodePublish(topic string, payload []byte, version byte, subIDs []int) []byte {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish},
		TopicName:       topic,
		Payload:         payload,
		ProtocolVersion: version,
	}
	pk.Properties.SubscriptionIdentifier = subIDs
	var buf bytes.Buffer
	buf.Grow(len(topic) + len(payload) + 16)
	if err := pk.PublishEncode(&buf); err != nil {
		return nil
	}
	return buf.Bytes()
}

// publishFor returns the PUBLISH to write to cl: its own encoding when its
// subscription has identifiers (ids) and it speaks MQTT 5, else the shared
// encoding of its protocol version in enc (0: 3.1/3.1.1, 1: 5), encoded on
// first use; nil when it is not sent: not encodable, or over the client's
// Maximum Packet Size ([MQTT-3.1.2-24], as mochi drops it).
func publishFor(cl *mqtt.Client, topic string, payload []byte, ids []int, enc *[2][]byte) []byte {
	var b []byte
	if v5 := cl.Properties.ProtocolVersion == 5; v5 && len(ids) > 0 {
		b = encodePublish(topic, payload, 5, ids)
	} else {
		i := 0
		if v5 {
			i = 1
		}
		if enc[i] == nil {
			enc[i] = encodePublish(topic, payload, cl.Properties.ProtocolVersion, nil)
		}
		b = enc[i]
	}
	if b == nil {
		return nil
	}
	if max := cl.Properties.Props.MaximumPacketSize; max > 0 && uint32(len(b)) > max {
		return nil
	}
	return b
}

// subscriptionIDs lists the identifiers a copy for sub carries, in order
// [MQTT-3.3.4-3]; nil when it has none (mochi records 0 for a subscription
// made without one).
func subscriptionIDs(sub packets.Subscription) []int {
	var ids []int
	for _, n := range sub.Identifiers {
		if n > 0 {
			ids = append(ids, n)
		}
	}
	if sub.Identifier > 0 && len(sub.Identifiers) == 0 {
		ids = []int{sub.Identifier}
	}
	slices.Sort(ids)
	return ids
}
