// Package auth is the single authoritative authentication and ACL hook.
// mochi ORs OnConnectAuthenticate and OnACLCheck across hooks, so no other
// hook may provide them beside this one. Decisions are the broker's; this
// package only adapts mochi's events to the Authorizer. What mochi gets
// wrong around them is mended in internal/mochifix.
package auth

import (
	"bytes"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/mochifix"
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
	// SubscribeRefused is told of each SUBSCRIBE filter answered with a
	// failure reason code (>= 0x80), whoever refused it: CanRead, or mochi
	// for an invalid filter; refusals are logged and counted.
	SubscribeRefused(cl *mqtt.Client, filter string, reason byte)
}

// Options configure the hook.
type Options struct {
	Authorizer Authorizer
	// Server is needed to send a CONNACK carrying our own reason code
	// (mochifix.RefuseConnect).
	Server *mqtt.Server
	// Deliveries, if set, is told of each read check that passed, on the
	// publisher's goroutine just before mochi queues the copy (and for each
	// SUBSCRIBE filter allowed), and may hold the publisher there
	// (internal/backpressure).
	Deliveries Deliveries
}

// Deliveries is told of the deliveries the read ACL allowed.
type Deliveries interface {
	Delivering(cl *mqtt.Client, topic string)
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
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribed, mqtt.OnDisconnect}, []byte{b})
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

// OnConnect authenticates, answering refusals with their code: an
// OnConnectAuthenticate refusal could only say 0x86 without a reason.
func (h *Hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if code := h.opts.Authorizer.Authenticate(cl, pk); code != packets.CodeSuccess {
		_ = mochifix.RefuseConnect(h.opts.Server, cl, code)
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
	if !h.opts.Authorizer.CanRead(cl, topic) {
		return false
	}
	if h.opts.Deliveries != nil {
		h.opts.Deliveries.Delivering(cl, topic)
	}
	return true
}

// OnSubscribed reports the filters refused in the SUBACK about to be sent.
func (h *Hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	for i, rc := range reasonCodes {
		if rc >= packets.ErrUnspecifiedError.Code && i < len(pk.Filters) {
			h.opts.Authorizer.SubscribeRefused(cl, pk.Filters[i].Filter, rc)
		}
	}
}

// OnDisconnect forgets the connection, should OnConnectAuthenticate not
// have run for it.
func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.passed.Delete(cl)
}
