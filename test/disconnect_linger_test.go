package test

import (
	"testing"

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
			mqtttest.ExceedReceiveMaximum(t, c, "a/b", func() {
				waitFor(t, mqtttest.Wait, "the broker closing the client over its receive maximum", func() bool {
					_, connected, _ := b.App.Broker.MQTTSession("anon/fc")
					return !connected
				})
			}, lingering)
		})
	}
}
