// Package session is the hook that watches MQTT sessions begin and end.
package session

import (
	"bytes"
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Watcher is told about sessions.
type Watcher interface {
	// SessionStarting runs after auth, before a persistent session is
	// inherited and its queued messages are resent.
	SessionStarting(cl *mqtt.Client)
	// SessionEnded runs when a connection ends, except when it was taken
	// over by a new connection with the same ClientID.
	SessionEnded(cl *mqtt.Client, err error)
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

// OnDisconnect forwards to SessionEnded, skipping takeovers (#173: the old
// connection's disconnect can land after the new one is established).
func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	// mochi stops the old connection with ErrSessionTakenOver before it
	// sets IsTakenOver, so the old connection's end can arrive with the flag
	// still false: the stop cause tells the truth earlier.
	if cl.IsTakenOver() || errors.Is(err, packets.ErrSessionTakenOver) || errors.Is(cl.StopCause(), packets.ErrSessionTakenOver) {
		return
	}
	h.w.SessionEnded(cl, err)
}
