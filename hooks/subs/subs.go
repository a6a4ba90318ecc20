// Package subs is the hook that tells the broker which subscriptions a
// client was granted and which it gave up.
package subs

import (
	"bytes"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Watcher is told about subscription changes, after mochi made them in
// its topic index.
type Watcher interface {
	// Subscribed lists the filters of a SUBSCRIBE that were granted. It
	// runs before the SUBACK is written.
	Subscribed(cl *mqtt.Client, filters []packets.Subscription)
	// Unsubscribed lists the filters of an UNSUBSCRIBE, or every filter of
	// a session that ended or was taken over with a clean start; some may
	// not have been subscribed.
	Unsubscribed(cl *mqtt.Client, filters []packets.Subscription)
}

// Hook adapts mochi's subscription events to a Watcher.
type Hook struct {
	mqtt.HookBase
	w Watcher
}

var _ mqtt.Hook = (*Hook)(nil)

// ID returns the hook id.
func (h *Hook) ID() string { return "imbroker-subs" }

// Provides lists the events this hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSubscribed, mqtt.OnUnsubscribed}, []byte{b})
}

// Init takes a Watcher.
func (h *Hook) Init(config any) error {
	w, ok := config.(Watcher)
	if !ok || w == nil {
		return mqtt.ErrInvalidConfigType
	}
	h.w = w
	return nil
}

// OnSubscribed forwards the granted filters (reason code below 0x80
// [MQTT-3.9.3-1]) to Subscribed.
func (h *Hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	granted := make([]packets.Subscription, 0, len(pk.Filters))
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] < packets.ErrUnspecifiedError.Code {
			granted = append(granted, f)
		}
	}
	if len(granted) > 0 {
		h.w.Subscribed(cl, granted)
	}
}

// OnUnsubscribed forwards to Unsubscribed.
func (h *Hook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if len(pk.Filters) > 0 {
		h.w.Unsubscribed(cl, pk.Filters)
	}
}
