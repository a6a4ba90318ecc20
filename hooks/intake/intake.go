// Package intake is the hook that hands client publishes to the broker. It
// never lets mochi fan an IM publish out itself: IM events are delivered
// from the store by the broker, so a stored message and a delivered one can
// never disagree. A plain MQTT publish the broker allows (a topic outside
// im/, docs/mqtt.md) is handed back to mochi, which retains and delivers it.
package intake

import (
	"bytes"
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Handler processes client publishes.
type Handler interface {
	// HandlePublish processes a publish from a client. publish means mochi
	// must publish it as sent (a plain MQTT publish the ACL allows). A nil
	// error without publish means accepted and handled (durable before this
	// returns, for sends). A packets.Code refuses it with that reason; the
	// handler has already told clients that cannot read a PUBACK reason
	// (MQTT 3.1.1, QoS 0) on their rpc topic. packets.ErrRejectPacket means
	// the handler took the publish and writes its PUBACK itself, later.
	HandlePublish(cl *mqtt.Client, pk packets.Packet) (publish bool, err error)
}

// Hook adapts OnPublish to a Handler.
type Hook struct {
	mqtt.HookBase
	handler Handler
}

var _ mqtt.Hook = (*Hook)(nil)

// ID returns the hook id.
func (h *Hook) ID() string { return "imbroker-intake" }

// Provides lists the events this hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPublish}, []byte{b})
}

// Init takes a Handler.
func (h *Hook) Init(config any) error {
	hd, ok := config.(Handler)
	if !ok || hd == nil {
		return mqtt.ErrInvalidConfigType
	}
	h.handler = hd
	return nil
}

// OnPublish maps the handler's verdict onto mochi's rules: a publish to
// publish is returned with a nil error (mochi acks, retains and fans it out);
// any other accepted or refused publish is acknowledged with
// CodeSuccessIgnore (acked, never fanned out or retained); only MQTT 5 QoS>0
// publishes get a refusal reason on their PUBACK. ErrRejectPacket (mochi
// then writes no ack) only when the handler says it acks the publish itself:
// a QoS 1 publish without a PUBACK is resent forever, and any other error
// from a 3.1.1 client would still be published.
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the broker's own deliveries
	}
	publish, err := h.handler.HandlePublish(cl, pk)
	if publish && err == nil {
		return pk, nil
	}
	if errors.Is(err, packets.ErrRejectPacket) {
		return pk, packets.ErrRejectPacket // acked later by the handler
	}
	var code packets.Code
	if err != nil && errors.As(err, &code) && cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return pk, code
	}
	return pk, packets.CodeSuccessIgnore
}
