package mqtttest

import (
	"bytes"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// ExceedReceiveMaximum runs the Paho suite's test_flow_control2 scenario on
// a paused connection c whose CONNECT (ClientID free, clean start) the
// caller has sent, against a server with Receive Maximum 2 that allows
// QoS 2 publishes to topic: 200 QoS 2 publishes stay unread in the server's
// socket, the third exceeds the quota, and closed waits until the server
// has closed the client. lingering says whether the server lets the client
// then read what it was sent: with it, the client acknowledges two PUBRECs
// and reads the DISCONNECT 0x93; without it, a write of the client's must
// meet the reset (else the scenario shows nothing).
func ExceedReceiveMaximum(t testing.TB, c *Conn, topic string, closed func(), lingering bool) {
	t.Helper()
	// QoS 2 publishes hold the quota until PUBCOMP, which never comes.
	payload := bytes.Repeat([]byte("x"), 1024)
	for id := uint16(1); id <= 200; id++ {
		c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, PacketID: id,
			TopicName: topic, Payload: payload})
	}
	closed()
	c.Resume()
	c.Expect(packets.Connack)
	if !lingering {
		// The reset may reach the client after its first write: keep
		// writing until one fails.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(Wait)
		for c.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 1}) == nil {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatal("no reset without the linger: the test shows nothing")
			}
		}
		return
	}
	for range 2 {
		rec := c.Expect(packets.Pubrec)
		if err := c.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: rec.PacketID}); err != nil {
			t.Fatalf("PUBREL %d after the server's close: %v", rec.PacketID, err)
		}
	}
	if pk := c.Expect(packets.Disconnect); pk.ReasonCode != packets.ErrReceiveMaximum.Code {
		t.Fatalf("DISCONNECT reason 0x%02x, want 0x93", pk.ReasonCode)
	}
	c.ClosedByServer()
}
