// Package auth is the single authoritative authentication and ACL hook.
// mochi ORs OnConnectAuthenticate and OnACLCheck across hooks, so no other
// hook may provide them beside this one. Decisions are the broker's; this
// package only adapts mochi's events to the Authorizer, and mends the MQTT 5
// behaviour mochi gets wrong around them (docs/mqtt.md): topic aliases in
// both directions, CONNACK limits, acks that echo properties, the outbound
// receive-maximum quota, expired sessions that keep their subscriptions and
// the obscure_not_authorized wording.
package auth

import (
	"bytes"
	"strings"
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
	// Its Capabilities give the topic alias maximum, the maximum packet size
	// and ObscureNotAuthorized.
	Server       *mqtt.Server
	KeepaliveMin uint16 // seconds; lower (and 0) keepalives are raised to it
	KeepaliveMax uint16 // seconds; higher keepalives are lowered to it
}

// RefusedTopicPrefix is put before the topic of a client PUBLISH to $SYS.
// mochi drops such a publish without any acknowledgement, so a QoS 1
// publisher would wait forever [MQTT-3.3.5-2]; renamed, it is refused like
// any other forbidden publish (every $ topic is). See OriginalTopic.
const RefusedTopicPrefix = "$refused/"

// OriginalTopic undoes RefusedTopicPrefix, for error messages.
func OriginalTopic(topic string) string { return strings.TrimPrefix(topic, RefusedTopicPrefix) }

// Hook adapts mochi's auth events to an Authorizer.
type Hook struct {
	mqtt.HookBase
	opts   Options
	caps   *mqtt.Capabilities
	passed sync.Map // *mqtt.Client -> struct{}: authenticated in OnConnect
	conns  sync.Map // *mqtt.Client -> *conn: MQTT 5 topic aliases of a live connection
}

var _ mqtt.Hook = (*Hook)(nil)

// ID returns the hook id.
func (h *Hook) ID() string { return "imbroker-auth" }

// Provides lists the events this hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablished,
		mqtt.OnDisconnect, mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnPacketSent, mqtt.OnClientExpired,
	}, []byte{b})
}

// Init takes *Options.
func (h *Hook) Init(config any) error {
	o, ok := config.(*Options)
	if !ok || o == nil || o.Authorizer == nil || o.Server == nil || o.Server.Options == nil || o.Server.Options.Capabilities == nil {
		return mqtt.ErrInvalidConfigType
	}
	h.opts = *o
	h.caps = o.Server.Options.Capabilities
	return nil
}

// OnConnect clamps the keepalive (0 would let a stalled socket block
// delivery forever), keeps mochi from assigning outbound topic aliases (this
// hook does) and authenticates, answering refusals with their code.
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
	// mochi's outbound aliases (#500) can be stored with a blank topic in the
	// session and resent so on a new connection, where no alias is known.
	cl.Properties.Props.TopicAliasMaximum = 0
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

// conn holds an MQTT 5 connection's topic aliases. It lives from
// OnSessionEstablished (after CONNACK and the resend of a resumed session,
// which therefore carries full topics) to OnDisconnect: aliases never
// outlive their connection [MQTT-3.3.2-7].
type conn struct {
	mu      sync.Mutex
	inMax   uint16              // aliases the client may set (our CONNACK Topic Alias Maximum)
	in      map[uint16]string   // the client's aliases
	outMax  uint16              // aliases we may set: min(client's CONNECT value, ours)
	out     map[string]outAlias // our aliases, by topic
	outNext uint16
}

type outAlias struct {
	id   uint16
	sent bool // the PUBLISH that set it has been written: the topic may be left out from now on
}

// OnSessionEstablished starts the connection's alias tables.
func (h *Hook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Properties.ProtocolVersion != 5 || h.caps.TopicAliasMaximum == 0 {
		return
	}
	c := &conn{inMax: h.caps.TopicAliasMaximum, in: map[uint16]string{}, out: map[string]outAlias{}}
	c.outMax = min(pk.Properties.TopicAliasMaximum, h.caps.TopicAliasMaximum) // [MQTT-3.3.2-11]
	h.conns.Store(cl, c)
}

// OnDisconnect forgets the connection.
func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.conns.Delete(cl)
	h.passed.Delete(cl)
}

func (h *Hook) conn(cl *mqtt.Client) *conn {
	if c, ok := h.conns.Load(cl); ok {
		return c.(*conn)
	}
	return nil
}

// OnPacketRead resolves an inbound topic alias before mochi's ACL check
// (which mochi runs on the bare, empty topic of an aliased PUBLISH),
// renames PUBLISHes to $SYS (see RefusedTopicPrefix), and returns the send
// quota a PUBACK frees for a message mochi already forgot.
func (h *Hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if c := h.conn(cl); c != nil && pk.Properties.TopicAliasFlag && pk.Properties.TopicAlias > 0 && pk.Properties.TopicAlias <= c.inMax {
			c.mu.Lock()
			if pk.TopicName != "" {
				c.in[pk.Properties.TopicAlias] = pk.TopicName // [MQTT-3.3.2-12] set or replaced
			} else if t, ok := c.in[pk.Properties.TopicAlias]; ok {
				pk.TopicName = t
			}
			c.mu.Unlock()
			if pk.TopicName == "" { // an alias never set: a Protocol Error (MQTT 5 §3.3.2.3.4)
				_ = h.opts.Server.DisconnectClient(cl, packets.Code{Code: packets.ErrProtocolViolation.Code, Reason: "topic alias not set"})
				return pk, packets.ErrRejectPacket
			}
		}
		if len(pk.TopicName) >= 4 && strings.EqualFold(pk.TopicName[:4], "$SYS") {
			pk.TopicName = RefusedTopicPrefix + pk.TopicName
		}
	case packets.Puback:
		// A message mochi held back for the client's Receive Maximum is
		// deleted from the inflight map as it is sent, so its PUBACK would
		// free no quota and the session would stall for good.
		if _, ok := cl.State.Inflight.Get(pk.PacketID); !ok {
			cl.State.Inflight.IncreaseSendQuota()
		}
	}
	return pk, nil
}

// OnPacketEncode completes mochi's outbound packets: the CONNACK states the
// server's Topic Alias Maximum and Maximum Packet Size [MQTT-3.2.2-17]
// [MQTT-3.2.2-15]; a QoS 1 PUBACK says 0x00, never 0x01; SUBACK and UNSUBACK
// do not echo the request's user properties; Request Problem Information 0
// no longer strips what it still allows on PUBLISH, CONNACK and DISCONNECT
// [MQTT-3.1.2-29]; obscure_not_authorized turns 0x87 into 0x80; a PUBLISH
// gets an outbound topic alias.
func (h *Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		if pk.ReasonCode < packets.ErrUnspecifiedError.Code {
			pk.Properties.TopicAliasMaximum = h.caps.TopicAliasMaximum
			pk.Properties.MaximumPacketSize = h.caps.MaximumPacketSize
		}
		pk.Mods.DisallowProblemInfo = false
	case packets.Disconnect:
		pk.Mods.DisallowProblemInfo = false
	case packets.Publish:
		pk.Mods.DisallowProblemInfo = false
		if h.caps.TopicAliasMaximum > 0 && cl.Properties.ProtocolVersion == 5 {
			if c := h.conn(cl); c != nil {
				c.alias(&pk)
			}
		}
	case packets.Puback:
		if pk.ReasonCode == packets.CodeGrantedQos1.Code {
			pk.ReasonCode = packets.CodeSuccess.Code // mochi acks QoS 1 with "granted QoS 1", no PUBACK reason
		}
	case packets.Suback, packets.Unsuback:
		pk.Properties.User = nil
	}
	if h.caps.Compatibilities.ObscureNotAuthorized && cl.Properties.ProtocolVersion == 5 {
		if pk.ReasonCode == packets.ErrNotAuthorized.Code && pk.FixedHeader.Type != packets.Publish {
			pk.ReasonCode = packets.ErrUnspecifiedError.Code
		}
		if pk.FixedHeader.Type == packets.Suback {
			codes := append([]byte(nil), pk.ReasonCodes...)
			for i, rc := range codes {
				if rc == packets.ErrNotAuthorized.Code {
					codes[i] = packets.ErrUnspecifiedError.Code
				}
			}
			pk.ReasonCodes = codes
		}
	}
	return pk
}

// alias gives an outbound PUBLISH a topic alias [MQTT-3.3.2-11]. The topic is
// left out only once the PUBLISH that set the alias has been written: every
// later write on the connection comes after it on the wire.
func (c *conn) alias(pk *packets.Packet) {
	if c.outMax == 0 || pk.TopicName == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.out[pk.TopicName]
	if !ok {
		if c.outNext >= c.outMax {
			return // every alias is taken: full topics from now on
		}
		c.outNext++
		a = outAlias{id: c.outNext}
		c.out[pk.TopicName] = a
	}
	pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = a.id, true
	if a.sent {
		pk.TopicName = ""
	}
}

// OnPacketSent marks an outbound alias as known to the client.
func (h *Hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, b []byte) {
	if pk.FixedHeader.Type != packets.Publish || !pk.Properties.TopicAliasFlag || pk.TopicName == "" {
		return
	}
	if c := h.conn(cl); c != nil {
		c.mu.Lock()
		if a, ok := c.out[pk.TopicName]; ok && a.id == pk.Properties.TopicAlias {
			c.out[pk.TopicName] = outAlias{id: a.id, sent: true}
		}
		c.mu.Unlock()
	}
}

// OnClientExpired ends an expired session completely. mochi only forgets
// the client: its subscriptions would stay in the topic index and be
// inherited by the next session with that ClientID, even a clean one.
func (h *Hook) OnClientExpired(cl *mqtt.Client) {
	h.opts.Server.UnsubscribeClient(cl)
	cl.ClearInflights()
}

// v3ReturnCode maps a v5 CONNACK reason to a 3.1.1 return code
// [MQTT-3.2.2.3]. mochi's own table maps 0x86 to 5 and lacks 0x87, so ours
// keeps 4 (bad user name or password) and 5 (not authorized) apart.
func v3ReturnCode(c packets.Code) packets.Code {
	switch c.Code {
	case packets.ErrBadUsernameOrPassword.Code:
		return packets.Code{Code: 4, Reason: c.Reason}
	case packets.ErrNotAuthorized.Code, packets.ErrTopicNameInvalid.Code:
		return packets.Code{Code: 5, Reason: c.Reason}
	case packets.ErrClientIdentifierNotValid.Code:
		return packets.Code{Code: 2, Reason: c.Reason}
	default:
		return packets.Code{Code: 3, Reason: c.Reason}
	}
}
