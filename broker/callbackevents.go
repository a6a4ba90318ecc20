package broker

import (
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Event callback commands (tencent-im.md §5; docs/callbacks.md "Event commands").
const (
	cbStateChange = "State.StateChange"
)

// --- after-callbacks (queued; never block) ---

// stateLogin / stateEnded: State.StateChange. Takeovers never reach
// SessionEnded (hooks/session), so they are not logouts.
func (b *Broker) stateLogin(cl *mqtt.Client) {
	b.stateChange(cl, "Login", "Register")
}

func (b *Broker) stateEnded(cl *mqtt.Client, err error) {
	action, reason := "Disconnect", "LinkClose"
	cause := cl.StopCause()
	switch {
	case isCode(err, packets.CodeDisconnect) || isCode(cause, packets.CodeDisconnect):
		action, reason = "Logout", "Unregister"
	case isCode(err, packets.ErrKeepAliveTimeout) || isCode(cause, packets.ErrKeepAliveTimeout):
		reason = "TimeOut"
	}
	b.stateChange(cl, action, reason)
}

func isCode(err error, c packets.Code) bool {
	var got packets.Code
	return err != nil && errors.As(err, &got) && got.Code == c.Code && got.Reason == c.Reason
}

func (b *Broker) stateChange(cl *mqtt.Client, action, reason string) {
	if cl.Net.Inline || !b.callbacks.Enabled(cbStateChange) {
		return
	}
	user := userOf(cl)
	if user == "" {
		return // guests have no state
	}
	b.callbacks.After(cbStateChange, map[string]any{
		"Info":         map[string]any{"Action": action, "To_Account": user, "Reason": reason},
		"KickedDevice": []any{},
		"ClientID":     cl.ID,
	})
}
