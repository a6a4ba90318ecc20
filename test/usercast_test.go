package test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// A user's events are written to their connections by the delivery
// workers, not through mochi's fan-out (broker/mqttd/usercast.go), several
// to one connection in one write. What mochi's QoS 0 delivery gives a
// subscriber still holds: overlapping subscriptions of one connection get
// one copy carrying every matching subscription identifier [MQTT-3.3.4-2]
// [MQTT-3.3.4-3]; a connection without identifiers gets none; and a burst
// of pipelined sends reaches both live, each event once, in Seq order,
// while the sender's PUBACKs come back in order.
func TestE2E_UserTopicLiveDelivery(t *testing.T) {
	b := StartBroker(t)
	b.importAccounts("bob")
	withIDs := mqDialOK(t, b, mqRawLogin(b, "bob:ids", "bob"))
	for i, s := range []struct {
		id     int
		filter string
	}{{3, "im/u/bob"}, {5, "im/u/bob/#"}} {
		if rc := withIDs.Subscribe(uint16(i+1), s.id, packets.Subscription{Filter: s.filter, Qos: 1}); rc[0] != 1 {
			t.Fatalf("subscribe %s: %v", s.filter, rc)
		}
	}
	plain := mqDialOK(t, b, mqRawLogin(b, "bob:plain", "bob"))
	if rc := plain.Subscribe(1, 0, packets.Subscription{Filter: "im/u/bob", Qos: 1}); rc[0] != 1 {
		t.Fatalf("subscribe: %v", rc)
	}

	alice := mqDialOK(t, b, mqRawLogin(b, "alice", "alice"))
	const n = 200 // pipelined: many commit together, and their events reach bob together
	for i := 1; i <= n; i++ {
		payload, _ := json.Marshal(Text("m", uint32(5000+i)))
		alice.Send(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   "im/send/c2c/bob", Payload: payload, PacketID: uint16(i),
		})
	}
	for i := 1; i <= n; i++ {
		if ack := alice.Expect(packets.Puback); ack.PacketID != uint16(i) || ack.ReasonCode != 0 {
			t.Fatalf("PUBACK %d %#x where %d was due", ack.PacketID, ack.ReasonCode, i)
		}
	}
	for _, tc := range []struct {
		name string
		ids  []int
	}{{"bob:ids", []int{3, 5}}, {"bob:plain", nil}} {
		c := withIDs
		if tc.ids == nil {
			c = plain
		}
		for i := 1; i <= n; i++ {
			pk := c.Expect(packets.Publish)
			var e struct {
				Seq uint64
				Msg struct{ MsgRandom uint32 }
			}
			if err := json.Unmarshal(pk.Payload, &e); err != nil {
				t.Fatalf("%s: event %d: %v: %s", tc.name, i, err, pk.Payload)
			}
			if pk.TopicName != "im/u/bob" || pk.FixedHeader.Qos != 0 || e.Seq != uint64(i) || e.Msg.MsgRandom != uint32(5000+i) {
				t.Fatalf("%s: event %d: %s QoS %d seq %d MsgRandom %d (a lost, repeated or reordered copy?)",
					tc.name, i, pk.TopicName, pk.FixedHeader.Qos, e.Seq, e.Msg.MsgRandom)
			}
			if !slices.Equal(pk.Properties.SubscriptionIdentifier, tc.ids) {
				t.Fatalf("%s: event %d: subscription identifiers %v, want %v", tc.name, i, pk.Properties.SubscriptionIdentifier, tc.ids)
			}
		}
	}
}
