package test

import (
	"bytes"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/mqtttest"
)

// Through the broker's own listener stack (lazyconn under mochi): a client
// that exceeds mqtt.receive_maximum while still writing can acknowledge what
// it reads after the server closed the connection and then read the
// DISCONNECT 0x93 (the Paho suite's test_flow_control2). lazyconn's
// CloseWrite lets the DISCONNECT reach the socket before the linger's FIN;
// without the linger the client's writes meet a reset.
func TestE2E_DisconnectReadableThroughBrokerListeners(t *testing.T) {
	for _, lingering := range []bool{true, false} {
		name := "linger"
		if !lingering {
			name = "no linger"
		}
		t.Run(name, func(t *testing.T) {
			b := StartBroker(t, mqAnonymous, mqACL(mqRule("allow", "all", "a/#", "all")), func(c *config.Config) {
				c.MQTT.ReceiveMaximum = 2
				if !lingering {
					c.MQTT.DisconnectLinger = 0
				}
			})
			c := mqtttest.DialPaused(t, b.MQTTAddr(), false)
			c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
				Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "anon/fc", Clean: true, Keepalive: 30}})
			payload := bytes.Repeat([]byte("x"), 1024)
			for id := uint16(1); id <= 200; id++ { // QoS 2 holds the quota until PUBCOMP: the third exceeds it
				c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, PacketID: id,
					TopicName: "a/b", Payload: payload})
			}
			waitFor(t, mqtttest.Wait, "the broker closing the client over its receive maximum", func() bool {
				_, connected, _ := b.App.Broker.MQTTSession("anon/fc")
				return !connected
			})
			c.Resume()
			c.Expect(packets.Connack)
			if !lingering {
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				giveUp := time.After(mqtttest.Wait)
				for c.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 1}) == nil {
					select {
					case <-tick.C:
					case <-giveUp:
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
		})
	}
}
