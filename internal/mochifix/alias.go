package mochifix

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// MQTT 5 topic aliases, both directions, in place of mochi's (v2.7.9):
//   - inbound, no upstream issue: processPublish runs the ACL check on a
//     PUBLISH's topic before it resolves the alias, so an aliased PUBLISH
//     with an empty topic is judged as "" rather than as its real topic, and
//     one using an alias never set goes on with an empty topic instead of
//     ending the connection;
//   - outbound, #500: mochi keys its aliases on the publisher's topic rather
//     than the one sent, and stores a queued message with its topic blanked
//     for the alias, so the message is resent without a topic on a new
//     connection, where no alias is known.
//
// The tables live from OnSessionEstablish to OnDisconnect: aliases never
// outlive their connection [MQTT-3.3.2-7]. They must exist before mochi adds
// the client to its clients (after OnSessionEstablish), from when PUBLISHes
// are routed to it: the resend of a resumed session comes later, and
// OnSessionEstablished after that, so a message published meanwhile would
// otherwise go out without an alias.

// conn holds an MQTT 5 connection's topic aliases.
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

// startAliases starts the connection's alias tables (OnSessionEstablish).
// Until OnSessionEstablished the connection is also in h.establishing: if
// its CONNACK or resend fails, mochi fires no OnDisconnect, and
// pruneAliases drops the tables once the connection is closed.
func (h *Hook) startAliases(cl *mqtt.Client, pk packets.Packet) {
	if cl.Properties.ProtocolVersion != 5 || h.caps.TopicAliasMaximum == 0 {
		return
	}
	c := &conn{inMax: h.caps.TopicAliasMaximum, in: map[uint16]string{}, out: map[string]outAlias{}}
	c.outMax = min(pk.Properties.TopicAliasMaximum, h.caps.TopicAliasMaximum) // [MQTT-3.3.2-11]
	h.conns.Store(cl, c)
	h.establishing.Store(cl, struct{}{})
}

// OnSessionEstablished: cl's OnDisconnect will come, and forget its aliases.
func (h *Hook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.establishing.Delete(cl)
}

// pruneAliases forgets the aliases of connections that closed before
// OnSessionEstablished (OnSysInfoTick).
func (h *Hook) pruneAliases() {
	h.establishing.Range(func(k, _ any) bool {
		if cl := k.(*mqtt.Client); cl.Closed() {
			h.establishing.Delete(cl)
			h.conns.Delete(cl)
		}
		return true
	})
}

func (h *Hook) conn(cl *mqtt.Client) *conn {
	if c, ok := h.conns.Load(cl); ok {
		return c.(*conn)
	}
	return nil
}

// resolve sets, replaces or applies the inbound alias of pk [MQTT-3.3.2-12].
// It reports false for an alias never set.
func (c *conn) resolve(pk *packets.Packet) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pk.TopicName != "" {
		c.in[pk.Properties.TopicAlias] = pk.TopicName
	} else if t, ok := c.in[pk.Properties.TopicAlias]; ok {
		pk.TopicName = t
	}
	return pk.TopicName != ""
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

// sent marks the alias a written PUBLISH set as known to the client.
func (c *conn) sent(pk *packets.Packet) {
	if !pk.Properties.TopicAliasFlag || pk.TopicName == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.out[pk.TopicName]; ok && a.id == pk.Properties.TopicAlias {
		c.out[pk.TopicName] = outAlias{id: a.id, sent: true}
	}
}
