package test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

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
		c := mqDialOK(t, b, packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: "guest/" + id, Clean: true}})
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

// The room fan-out keeps each group topic's subscriber list between
// messages (broker/mqttd/roomsubs.go); every change to the subscriptions
// reaches the next message: a subscriber added after a message, a new
// subscription identifier, a member subscribed by a wildcard filter, and
// an unsubscribed client that gets nothing more.
func TestE2E_LiveRoomSubscribersFollowChanges(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) {
		c.Guests.Enabled = true
		c.MQTT.ACL = []config.ACLRule{mqRule("allow", "subscribe", "+/g/+", "authenticated")}
	})
	alice := b.Connect("alice", "alice")
	gid := gtCreate(t, alice, map[string]any{"Type": "AVChatRoom", "ApplyJoinOption": "FreeAccess"})
	topic := "im/g/" + gidLevel(gid)
	guest := func(id string, subID int) *mqtttest.Conn {
		c := mqDialOK(t, b, packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: "guest/" + id, Clean: true}})
		if rc := c.Subscribe(1, subID, packets.Subscription{Filter: topic}); rc[0] != 0 {
			t.Fatalf("%s subscribes %s: %v", id, topic, rc)
		}
		return c
	}
	// expect waits for the event with MsgRandom r (tips may come first).
	expect := func(who string, c *mqtttest.Conn, r uint32) packets.Packet {
		t.Helper()
		random := []byte(`"MsgRandom":` + strconv.FormatUint(uint64(r), 10))
		for {
			pk := c.Expect(packets.Publish)
			if pk.TopicName == topic && bytes.Contains(pk.Payload, random) {
				return pk
			}
			if bytes.Contains(pk.Payload, []byte(`"GroupMsg"`)) {
				t.Fatalf("%s: got another message %s before %d", who, pk.Payload, r)
			}
		}
	}

	first := guest("first", 0)
	expect("first", first, gtMustSend(t, alice, gid)) // the list is built

	second := guest("second", 0) // added after a message
	r := gtMustSend(t, alice, gid)
	expect("first", first, r)
	expect("second", second, r)

	if rc := second.Subscribe(2, 9, packets.Subscription{Filter: topic}); rc[0] != 0 { // same filter, new identifier
		t.Fatalf("second subscribes again: %v", rc)
	}
	r = gtMustSend(t, alice, gid)
	expect("first", first, r)
	if pk := expect("second", second, r); len(pk.Properties.SubscriptionIdentifier) != 1 || pk.Properties.SubscriptionIdentifier[0] != 9 {
		t.Fatalf("second: subscription identifiers %v, want [9]", pk.Properties.SubscriptionIdentifier)
	}

	bob := b.Connect("bob", "bob") // a member subscribed by a wildcard filter
	gtOK(t, "bob joins", bob.Req("group.join", gtG(gid)))
	if tok := bob.Subscribe("+/g/+", 0, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("bob subscribes +/g/+: %v", tok.Error())
	}
	r = gtMustSend(t, alice, gid)
	random := `"MsgRandom":` + strconv.FormatUint(uint64(r), 10)
	for e := bob.NextEvent(); !strings.Contains(e.Raw, random); e = bob.NextEvent() {
	}
	expect("first", first, r)
	expect("second", second, r)

	first.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe}, PacketID: 3, Filters: packets.Subscriptions{{Filter: topic}}})
	first.Expect(packets.Unsuback)
	r = gtMustSend(t, alice, gid)
	expect("second", second, r)
	// first resubscribes: nothing may have come between its UNSUBACK and this SUBACK.
	first.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: 4, Filters: packets.Subscriptions{{Filter: topic}}})
	for {
		pk := first.Expect(packets.Publish, packets.Suback)
		if pk.FixedHeader.Type == packets.Suback {
			break
		}
		if bytes.Contains(pk.Payload, []byte(`"GroupMsg"`)) {
			t.Fatalf("first got %s after unsubscribing", pk.Payload)
		}
	}
	expect("first", first, gtMustSend(t, alice, gid))

	// A persistent session taken over by a new connection keeps its
	// subscription (mochi moves it, no SUBSCRIBE, no hook): the next
	// message reaches the new connection.
	keep := func() *mqtttest.Conn {
		cp := packets.Packet{Connect: packets.ConnectParams{ClientIdentifier: "guest/keep"}}
		cp.Properties.SessionExpiryInterval, cp.Properties.SessionExpiryIntervalFlag = 300, true
		c := mqDialOK(t, b, cp)
		return c
	}
	old := keep()
	if rc := old.Subscribe(5, 0, packets.Subscription{Filter: topic}); rc[0] != 0 {
		t.Fatalf("keep subscribes: %v", rc)
	}
	expect("keep", old, gtMustSend(t, alice, gid))
	taker := keep()
	old.Expect(packets.Disconnect) // 0x8E, session taken over
	expect("keep's new connection", taker, gtMustSend(t, alice, gid))
}
