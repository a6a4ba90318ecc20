// Package session is the hook that watches MQTT sessions begin and end.
package session

import (
	"bytes"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/mochifix"
)

// Watcher is told about sessions.
type Watcher interface {
	// SessionStarting runs after auth, before a persistent session is
	// inherited and its queued messages are resent.
	SessionStarting(cl *mqtt.Client)
	// SessionEnded runs when a connection ends. takenOver: it was replaced
	// by a new connection with the same ClientID, whose session may have
	// started already (mochifix.TakenOver): the user did not go offline.
	SessionEnded(cl *mqtt.Client, err error, takenOver bool)
}

// Hook adapts mochi's session events to a Watcher.
type Hook struct {
	mqtt.HookBase
	w Watcher
}

var _ mqtt.Hook = (*Hook)(nil)

// ID returns the hook id.
func (h *Hook) ID() string { return "imbroker-session" }

// Provides lists the events this hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSessionEstablish, mqtt.OnDisconnect}, []byte{b})
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

// OnSessionEstablish forwards to SessionStarting.
func (h *Hook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) { h.w.SessionStarting(cl) }

// OnDisconnect forwards to SessionEnded, telling takeovers apart: the old
// connection's end can land after the new one is established
// (mochifix.TakenOver).
func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.w.SessionEnded(cl, err, mochifix.TakenOver(cl, err))
}
