package test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// A client may keep many QoS 1 sends in flight; their commits overlap but
// the PUBACKs come back in the order the PUBLISHes were sent, each with its
// own outcome, and a refused send, an unknown send topic or a request in
// between neither overtakes nor is overtaken. [IM-C2C-PIPELINE] [MQTT-4.6.0-2]
func TestE2E_PipelinedAcksKeepOrder(t *testing.T) {
	pipelinedAcksScenario(t, StartBroker(t))
}

// pipelinedAcksScenario is TestE2E_PipelinedAcksKeepOrder on b; it returns
// what the clients saw (each PUBACK, bob's messages) for the cluster seam's
// comparison (cluster_seam_test.go).
func pipelinedAcksScenario(t *testing.T, b *Broker) []string {
	b.importAccounts("bob")
	alice := mqDialOK(t, b, mqRawLogin(b, "alice", "alice"))
	const n = 60
	bad := map[int]bool{10: true, 25: true, 40: true}
	for i := 1; i <= n; i++ {
		topic := "im/send/c2c/bob"
		payload, _ := json.Marshal(Text("m", uint32(1000+i)))
		switch i {
		case 50: // a resend of 49 (same MsgRandom and content): acked, stored once
			payload, _ = json.Marshal(Text("m", uint32(1000+49)))
		case 10: // invalid body: refused by validation
			payload = []byte(`{"MsgRandom":7,"MsgBody":[{"MsgType":"TIMNoSuchElem","MsgContent":{}}]}`)
		case 25: // unknown send topic: refused inline, after the acks before it
			topic = "im/send/nowhere/bob"
		case 40: // a send to an invalid account
			topic = "im/send/c2c/" + "bad id"
		case 30: // a request in the middle is answered and acked in order
			topic = "im/req/conv.list"
			payload = []byte(`{"Id":"r30"}`)
		}
		alice.Send(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   topic, Payload: payload, PacketID: uint16(i),
		})
	}
	var seen []string
	for i := 1; i <= n; i++ {
		ack := alice.Expect(packets.Puback)
		seen = append(seen, fmt.Sprintf("PUBACK %d %#x %q", ack.PacketID, ack.ReasonCode, ack.Properties.ReasonString))
		if ack.PacketID != uint16(i) {
			t.Fatalf("PUBACK %d arrived where %d was due: acks out of order", ack.PacketID, i)
		}
		if refused := ack.ReasonCode >= 0x80; refused != bad[i] {
			t.Fatalf("PUBACK %d: reason %#x (%q), refused=%v want %v", i, ack.ReasonCode, ack.Properties.ReasonString, refused, bad[i])
		}
	}
	// bob finds exactly the accepted messages, in send order (seq order).
	// Live copies still being delivered when bob connects reach the same
	// channel as the replay, so events are taken once per seq.
	bob := b.Connect("bob", "bob")
	bySeq := map[uint64]uint32{}
	for _, e := range bob.SyncAll(0) {
		if e.Event == "C2CMsg" {
			bySeq[e.Seq] = e.Msg.MsgRandom
		}
	}
	var got []uint32
	for _, seq := range slices.Sorted(maps.Keys(bySeq)) {
		got = append(got, bySeq[seq])
		seen = append(seen, fmt.Sprintf("bob seq %d MsgRandom %d", seq, bySeq[seq]))
	}
	var want []uint32
	for i := 1; i <= n; i++ {
		if !bad[i] && i != 30 && i != 50 {
			want = append(want, uint32(1000+i))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("bob has %d messages, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d is MsgRandom %d, want %d: order lost", i, got[i], want[i])
		}
	}
	return seen
}
