// Package mochifix holds every workaround imbroker needs for the embedded
// mochi-mqtt broker (github.com/mochi-mqtt/server/v2, written against
// v2.7.9): a Hook that mends mochi's MQTT 5 behaviour, and helpers for what a
// hook cannot reach (shutdown, a resumed session's inflight messages, log
// volume, CONNACK refusals, takeovers). Each workaround names the mochi
// version and the upstream issue; docs/mochi-upgrade.md is the checklist to
// walk through on a mochi upgrade.
package mochifix

import (
	"bytes"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options configure the Hook.
type Options struct {
	// Server is the mochi server the hook is added to: the hook disconnects
	// and unsubscribes clients through it, and its Capabilities give the
	// topic alias maximum, the maximum packet size and ObscureNotAuthorized.
	Server       *mqtt.Server
	KeepaliveMin uint16 // seconds; lower (and 0) keepalives are raised to it
	KeepaliveMax uint16 // seconds; higher keepalives are lowered to it
	// KeepaliveZero, when set, reports whether a client asking keepalive 0
	// keeps it (no deadline at all) instead of being raised to KeepaliveMin.
	KeepaliveZero func(cl *mqtt.Client, pk packets.Packet) bool
	// SessionEstablish, when set, runs in OnSessionEstablish: after the
	// client is authenticated, just before mochi takes over a session with
	// the same ClientID (see DiscardSession).
	SessionEstablish func(cl *mqtt.Client, pk packets.Packet)
	// DisconnectLinger is how long a connection is kept open for reading
	// after the server sent a DISCONNECT (linger.go); 0 closes it at once,
	// as mochi does.
	DisconnectLinger time.Duration
}

// Hook mends mochi's MQTT 5 behaviour. Add it before every other hook: its
// OnConnect must run before a refusing CONNACK is sent, its
// OnSessionEstablish before anyone waits for the connection (WaitAttached).
type Hook struct {
	mqtt.HookBase
	opts         Options
	caps         *mqtt.Capabilities
	conns        sync.Map // *mqtt.Client -> *conn: MQTT 5 topic aliases of a live connection
	establishing sync.Map // *mqtt.Client -> struct{}: in conns, OnSessionEstablished not reached yet (alias.go)
	attached     attachWaits
	fresh        sync.Map   // *mqtt.Client -> struct{}: DiscardSession was called, CONNACK says no session
	lingers      lingering  // closed connections still draining after a DISCONNECT (linger.go)
	takeovers    successors // connections being taken over by a new one with their ClientID (takeover.go)
}

var _ mqtt.Hook = (*Hook)(nil)

// ID returns the hook id.
func (h *Hook) ID() string { return "imbroker-mochifix" }

// Provides lists the events this hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnSessionEstablish, mqtt.OnSessionEstablished, mqtt.OnDisconnect,
		mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnPacketSent, mqtt.OnClientExpired, mqtt.OnSysInfoTick,
	}, []byte{b})
}

// Init takes *Options.
func (h *Hook) Init(config any) error {
	o, ok := config.(*Options)
	if !ok || o == nil || o.Server == nil || o.Server.Options == nil || o.Server.Options.Capabilities == nil {
		return mqtt.ErrInvalidConfigType
	}
	h.opts = *o
	h.caps = o.Server.Options.Capabilities
	return nil
}

// Stop releases every WaitAttached caller (the server is closing) and
// waits for the connections still draining after a DISCONNECT, at most
// Options.DisconnectLinger.
func (h *Hook) Stop() error {
	h.attached.releaseAll()
	h.lingers.stop()
	return nil
}

// OnConnect clamps the keepalive and keeps mochi from assigning outbound
// topic aliases (the hook does, see alias.go).
//
// Keepalive, mochi v2.7.9, no upstream issue: mochi has no bounds for the
// client's keepalive, and with keepalive 0 it sets no deadline on the
// connection. As it holds the client's lock while writing to it (since #196),
// one stalled peer would then block whoever writes to it, forever.
func (h *Hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	ka := cl.State.Keepalive
	switch {
	case ka == 0 && h.opts.KeepaliveZero != nil && h.opts.KeepaliveZero(cl, pk):
	case ka < h.opts.KeepaliveMin:
		ka = h.opts.KeepaliveMin
	case ka > h.opts.KeepaliveMax:
		ka = h.opts.KeepaliveMax
	}
	if ka != cl.State.Keepalive {
		cl.State.Keepalive = ka
		cl.State.ServerKeepalive = true // [MQTT-3.2.2-21] v5 clients are told the value
	}
	// mochi v2.7.9, #500: mochi's outbound aliases are keyed on the wrong
	// topic, and a queued message whose topic was blanked for an alias is
	// resent so on a new connection, where the client knows no alias.
	cl.Properties.Props.TopicAliasMaximum = 0
	return nil
}

// OnSessionEstablish starts the wait for cl's CONNACK (WaitAttached) and
// its topic aliases (alias.go).
func (h *Hook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	h.attached.start(cl)
	h.startAliases(cl, pk)
	h.beginTakeover(cl)
	if h.opts.SessionEstablish != nil {
		h.opts.SessionEstablish(cl, pk)
	}
}

// DiscardSession makes cl, being established (call it from
// Options.SessionEstablish), start without the session of the client that
// now holds its ClientID: that client's subscriptions and queued messages
// are dropped before mochi takes it over, and cl's CONNACK says Session
// Present 0.
//
// mochi v2.7.9, no upstream issue: a takeover always inherits the old
// session unless the new CONNECT asks for a clean one; a hook cannot refuse
// the inheritance.
func (h *Hook) DiscardSession(cl *mqtt.Client) {
	existing, ok := h.opts.Server.Clients.Get(cl.ID)
	if !ok || existing == cl {
		return
	}
	h.opts.Server.UnsubscribeClient(existing)
	existing.ClearInflights()
	h.fresh.Store(cl, struct{}{})
}

// OnDisconnect forgets the connection. A connection being taken over
// then waits for its successor's CONNACK (takeover.go).
func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.conns.Delete(cl)
	h.establishing.Delete(cl)
	h.fresh.Delete(cl)
	h.attached.done(cl)
	h.endTakeover(cl)
}

// OnPacketRead answers a CONNECT mochi would answer wrongly (connect.go),
// resolves an inbound topic alias (alias.go), renames
// PUBLISHes to $SYS (RefusedTopicPrefix), and returns the send quota a
// PUBACK frees for a message mochi already forgot.
func (h *Hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return pk, checkConnect(cl, &pk) // connect.go
	case packets.Publish:
		if c := h.conn(cl); c != nil && pk.Properties.TopicAliasFlag && pk.Properties.TopicAlias > 0 && pk.Properties.TopicAlias <= c.inMax {
			if !c.resolve(&pk) { // an alias never set: a Protocol Error (MQTT 5 §3.3.2.3.4)
				_ = h.opts.Server.DisconnectClient(cl, packets.Code{Code: packets.ErrProtocolViolation.Code, Reason: "topic alias not set"})
				return pk, packets.ErrRejectPacket
			}
		}
		if len(pk.TopicName) >= 4 && strings.EqualFold(pk.TopicName[:4], "$SYS") {
			pk.TopicName = RefusedTopicPrefix + pk.TopicName
		}
	case packets.Puback:
		// Send quota, mochi v2.7.9, no upstream issue (#340 discusses the
		// same code): a message mochi held back for the client's
		// Receive Maximum is deleted from the inflight map as it is sent
		// (processPacket, NextImmediate), so its PUBACK would free no quota
		// and the session would stall for good after a few messages.
		if _, ok := cl.State.Inflight.Get(pk.PacketID); !ok {
			cl.State.Inflight.IncreaseSendQuota()
		}
	}
	return pk, nil
}

// RefusedTopicPrefix is put before the topic of a client PUBLISH to $SYS.
//
// mochi v2.7.9, no upstream issue: processPublish drops a publish to a topic
// that is not a valid publish topic ($SYS included) without any
// acknowledgement, so a QoS 1 publisher would wait forever [MQTT-3.3.5-2].
// Renamed, it reaches the ACL and is refused like any other forbidden publish
// (every $ topic is). See OriginalTopic.
const RefusedTopicPrefix = "$refused/"

// OriginalTopic undoes RefusedTopicPrefix, for error messages.
func OriginalTopic(topic string) string { return strings.TrimPrefix(topic, RefusedTopicPrefix) }

// OnPacketEncode completes mochi's outbound packets (mochi v2.7.9):
//   - a 3.1.1 CONNACK carries a 3.1.1 return code (connect.go), and a
//     3.1.1 client gets no DISCONNECT, which 3.1.1 servers never send;
//   - CONNACK states the server's Topic Alias Maximum and Maximum Packet
//     Size [MQTT-3.2.2-17] [MQTT-3.2.2-15]; mochi leaves both out (no upstream
//     issue), so clients could use no alias and send any size;
//   - Request Problem Information 0 makes mochi strip reason strings and user
//     properties from every packet (no upstream issue), but [MQTT-3.1.2-29]
//     still allows them on PUBLISH, CONNACK and DISCONNECT;
//   - a QoS 1 PUBACK says 0x00 (success), not 0x01 "granted QoS 1" (#474,
//     PR #497), which mochi writes whenever the ack has properties;
//   - SUBACK and UNSUBACK do not echo the request's user properties (no
//     upstream issue);
//   - obscure_not_authorized turns 0x87 into 0x80 on every packet, without
//     the reason string: mochi applies ObscureNotAuthorized to SUBACK ACL
//     refusals only (no upstream issue), not to PUBACK/PUBREC refusals nor
//     to our CONNACKs, and keeps the reason string;
//   - a PUBLISH gets an outbound topic alias (alias.go, #500).
func (h *Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		if pk.ProtocolVersion < 5 {
			pk.ReasonCode = v3ConnackCode(pk.ReasonCode) // connect.go
		}
		if pk.ReasonCode < packets.ErrUnspecifiedError.Code {
			pk.Properties.TopicAliasMaximum = h.caps.TopicAliasMaximum
			pk.Properties.MaximumPacketSize = h.caps.MaximumPacketSize
		}
		if _, ok := h.fresh.LoadAndDelete(cl); ok {
			pk.SessionPresent = false // DiscardSession
		}
		pk.Mods.DisallowProblemInfo = false
	case packets.Disconnect:
		pk.Mods.DisallowProblemInfo = false
		if pk.ProtocolVersion < 5 {
			// 3.1.1 has no DISCONNECT from the server (3.14: client to
			// server only), yet mochi writes one before closing. A packet
			// over Mods.MaxSize fails its write: nothing reaches the wire
			// and the connection is just closed.
			pk.Mods.MaxSize = 1
		}
	case packets.Publish:
		pk.Mods.DisallowProblemInfo = false
		if h.caps.TopicAliasMaximum > 0 && cl.Properties.ProtocolVersion == 5 {
			if c := h.conn(cl); c != nil {
				c.alias(&pk)
			}
		}
	case packets.Puback:
		if pk.ReasonCode == packets.CodeGrantedQos1.Code {
			pk.ReasonCode = packets.CodeSuccess.Code
		}
	case packets.Suback, packets.Unsuback:
		pk.Properties.User = nil
	}
	if h.caps.Compatibilities.ObscureNotAuthorized && cl.Properties.ProtocolVersion == 5 {
		obscure(&pk)
	}
	return pk
}

// obscure turns "not authorized" (0x87) into "unspecified error" (0x80) and
// drops the reason string of a packet that said it: the reason would tell
// what obscuring hides. (It also spares clients that cannot parse acks with
// properties, such as the Paho interop suite's, whose PUBACK decoder takes
// at most 4 bytes.)
func obscure(pk *packets.Packet) {
	hit := false
	if pk.ReasonCode == packets.ErrNotAuthorized.Code && pk.FixedHeader.Type != packets.Publish {
		pk.ReasonCode = packets.ErrUnspecifiedError.Code
		hit = true
	}
	if pk.FixedHeader.Type == packets.Suback {
		codes := append([]byte(nil), pk.ReasonCodes...)
		for i, rc := range codes {
			if rc == packets.ErrNotAuthorized.Code {
				codes[i] = packets.ErrUnspecifiedError.Code
				hit = true
			}
		}
		pk.ReasonCodes = codes
	}
	if hit {
		pk.Properties.ReasonString = ""
	}
}

// OnPacketSent marks an outbound alias as known to the client, and a
// CONNACK as written (WaitAttached); after a DISCONNECT the connection
// lingers (linger.go).
func (h *Hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, b []byte) {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		h.attached.done(cl)
	case packets.Disconnect:
		h.lingerAfterDisconnect(cl)
	case packets.Publish:
		if c := h.conn(cl); c != nil {
			c.sent(&pk)
		}
	}
}

// OnClientExpired ends an expired session completely.
//
// mochi v2.7.9, no upstream issue: clearExpiredClients only forgets the
// client; its subscriptions stay in the topic index (and in Info) and are
// inherited by the next session with that ClientID, even a clean one, and
// its queued messages are never dropped.
func (h *Hook) OnClientExpired(cl *mqtt.Client) {
	h.opts.Server.UnsubscribeClient(cl)
	cl.ClearInflights()
	h.attached.done(cl)
}
