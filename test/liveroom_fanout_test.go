package test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/mqtttest"
)

// A live room's events are encoded once per protocol by the broker's room
// fan-out, not per subscriber by mochi: an MQTT 5 subscriber that gave a
// subscription identifier still gets it on each event [MQTT-3.3.4-3], one
// that gave none gets none, and both get the same QoS 0 event.
func TestE2E_LiveRoomSubscriptionIdentifier(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.Guests.Enabled = true })
	alice := b.Connect("alice", "alice")
	gid := gtCreate(t, alice, map[string]any{"Type": "AVChatRoom"})
	topic := "im/g/" + gidLevel(gid)
	dial := func(id string, subID int) *mqtttest.Conn {
		c, ca := mqDialRaw(t, b, packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: "guest/" + id, Clean: true}}, false)
		if ca.ReasonCode != 0 {
			t.Fatalf("%s: CONNACK 0x%02x", id, ca.ReasonCode)
		}
		if rc := c.Subscribe(1, subID, packets.Subscription{Filter: topic, Qos: 1}); rc[0] != 1 {
			t.Fatalf("%s subscribes %s: %v", id, topic, rc)
		}
		return c
	}
	withID, without := dial("withid", 7), dial("noid", 0)
	r := gtMustSend(t, alice, gid)
	random := []byte(`"MsgRandom":` + strconv.FormatUint(uint64(r), 10))
	for _, tc := range []struct {
		c   *mqtttest.Conn
		ids []int
	}{{withID, []int{7}}, {without, nil}} {
		pk := tc.c.Expect(packets.Publish)
		if pk.TopicName != topic || pk.FixedHeader.Qos != 0 || !bytes.Contains(pk.Payload, random) {
			t.Fatalf("got %s QoS %d %s", pk.TopicName, pk.FixedHeader.Qos, pk.Payload)
		}
		if len(pk.Properties.SubscriptionIdentifier) != len(tc.ids) || (len(tc.ids) > 0 && pk.Properties.SubscriptionIdentifier[0] != tc.ids[0]) {
			t.Fatalf("subscription identifiers %v, want %v", pk.Properties.SubscriptionIdentifier, tc.ids)
		}
	}
}
