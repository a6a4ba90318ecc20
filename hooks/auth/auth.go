// Package auth is the single authoritative authentication and ACL hook.
// mochi ORs OnConnectAuthenticate and OnACLCheck across hooks, so no other
// hook may provide them beside this one. Decisions are the broker's; this
// package only adapts mochi's events to the Authorizer.
package auth

import (
	"bytes"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Authorizer makes the decisions.
type Authorizer interface {
	// Authenticate checks a CONNECT. Anything but packets.CodeSuccess refuses
	// the connection with that CONNACK reason.
	Authenticate(cl *mqtt.Client, pk packets.Packet) packets.Code
	// CanPublish reports whether cl may publish to topic.
	CanPublish(cl *mqtt.Client, topic string) bool
	// CanRead reports whether cl may subscribe to a filter or receive on a topic.
	CanRead(cl *mqtt.Client, topicOrFilter string) bool
}

// Options configure the hook.
type Options struct {
	Authorizer Authorizer
	// Server is needed to send a CONNACK carrying our own reason code: an
	// OnConnectAuthenticate refusal can only say 0x86 without a reason string.
	Server       *mqtt.Server
	KeepaliveMin uint16 // seconds; lower (and 0) keepalives are raised to it
	KeepaliveMax uint16 // seconds; higher keepalives are lowered to it
}

// Hook adapts mochi's auth events to an Authorizer.
type Hook struct {
	mqtt.HookBase
	opts   Options
	passed sync.Map // *mqtt.Client -> struct{}: authenticated in OnConnect
}

var _ mqtt.Hook = (*Hook)(nil)

// ID returns the hook id.
func (h *Hook) ID() string { return "imbroker-auth" }

// Provides lists the events this hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

// Init takes *Options.
func (h *Hook) Init(config any) error {
	o, ok := config.(*Options)
	if !ok || o == nil || o.Authorizer == nil || o.Server == nil {
		return mqtt.ErrInvalidConfigType
	}
	h.opts = *o
	return nil
}

// OnConnect clamps the keepalive (0 would let a stalled socket block
// delivery forever) and authenticates, answering refusals with their code.
func (h *Hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	ka := cl.State.Keepalive
	switch {
	case ka < h.opts.KeepaliveMin:
		ka = h.opts.KeepaliveMin
	case ka > h.opts.KeepaliveMax:
		ka = h.opts.KeepaliveMax
	}
	if ka != cl.State.Keepalive {
		cl.State.Keepalive = ka
		cl.State.ServerKeepalive = true // [MQTT-3.2.2-21] v5 clients are told the value
	}
	if code := h.opts.Authorizer.Authenticate(cl, pk); code != packets.CodeSuccess {
		ack := code
		if cl.Properties.ProtocolVersion < 5 {
			ack = v3ReturnCode(code)
		}
		_ = h.opts.Server.SendConnack(cl, ack, false, nil)
		return code
	}
	h.passed.Store(cl, struct{}{})
	return nil
}

// OnConnectAuthenticate allows exactly the connections OnConnect authenticated.
func (h *Hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	_, ok := h.passed.LoadAndDelete(cl)
	return ok
}

// OnACLCheck is called with write=true for publishes and write=false for
// subscribe filters and for every delivery to cl.
func (h *Hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return h.opts.Authorizer.CanPublish(cl, topic)
	}
	return h.opts.Authorizer.CanRead(cl, topic)
}

// v3ReturnCode maps a v5 CONNACK reason to a 3.1.1 return code
// [MQTT-3.2.2.3]. mochi's own table maps 0x86 to 5 and lacks 0x87, so ours
// keeps 4 (bad user name or password) and 5 (not authorized) apart.
func v3ReturnCode(c packets.Code) packets.Code {
	switch c.Code {
	case packets.ErrBadUsernameOrPassword.Code:
		return packets.Code{Code: 4, Reason: c.Reason}
	case packets.ErrNotAuthorized.Code:
		return packets.Code{Code: 5, Reason: c.Reason}
	case packets.ErrClientIdentifierNotValid.Code:
		return packets.Code{Code: 2, Reason: c.Reason}
	default:
		return packets.Code{Code: 3, Reason: c.Reason}
	}
}
