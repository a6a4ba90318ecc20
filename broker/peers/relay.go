package peers

import (
	"encoding/json"

	"github.com/imbroker/imbroker/storage"
)

// KickUser asks every other node to disconnect every connection of user
// and returns how many this node knows of there.
func (p *Peers) KickUser(user, reason, by string) int {
	n := len(p.Devices(user))
	p.publish(subjKick, kickMsg{Origin: p.o.Node, User: user, Reason: reason, By: by})
	return n
}

func (p *Peers) onKick(data []byte) {
	var m kickMsg
	if err := json.Unmarshal(data, &m); err != nil {
		p.log.Warn("cluster: bad kick message", "error", err)
		return
	}
	if m.Origin != p.o.Node {
		p.o.Local.KickLocal(m.User, "", m.Reason, m.By)
	}
}

// Live hands live-room events to this node's live delivery and publishes
// them to the other nodes': each node delivers them to its own
// subscribers (roomcast), in the order one node published them.
func (p *Peers) Live(entries []storage.Entry) {
	p.publish(subjLive, liveMsg{Origin: p.o.Node, Entries: entries})
	p.o.Local.DeliverLocal(entries)
}

func (p *Peers) onLive(data []byte) {
	var m liveMsg
	if err := json.Unmarshal(data, &m); err != nil {
		p.log.Warn("cluster: bad live message", "error", err)
		return
	}
	if m.Origin != p.o.Node {
		p.o.Local.DeliverLocal(m.Entries)
	}
}

// Notify writes payload to user's connections on every node; it returns
// how many on this node got it (the others are not waited for).
func (p *Peers) Notify(user, suffix string, payload []byte) int {
	p.publish(subjNotify, notifyMsg{Origin: p.o.Node, User: user, Suffix: suffix, Payload: payload})
	return p.o.Local.NotifyLocal(user, suffix, payload)
}

func (p *Peers) onNotify(data []byte) {
	var m notifyMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Origin == p.o.Node {
		return
	}
	p.o.Local.NotifyLocal(m.User, m.Suffix, m.Payload)
}

// DropGroupSubscriptions ends users' subscriptions to im/g/{gid} on every
// node (this one at once).
func (p *Peers) DropGroupSubscriptions(gid string, users ...string) {
	p.o.Local.DropLocal(gid, users...)
	p.publish(subjDrop, dropMsg{Origin: p.o.Node, GID: gid, Users: users})
}

func (p *Peers) onDrop(data []byte) {
	var m dropMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Origin == p.o.Node {
		return
	}
	p.o.Local.DropLocal(m.GID, m.Users...)
}

type headsMsg struct {
	Origin, Target string
	Want           bool            // Origin asks every node for its heads
	Heads          json.RawMessage `json:",omitempty"`
}

// WantLiveHeads asks every other node for its live-room numbering
// (Options.LiveHeads), which reaches Options.FollowLiveHeads: a node that
// starts calls it once its groups can follow.
func (p *Peers) WantLiveHeads() {
	p.publish(subjHeads, headsMsg{Origin: p.o.Node, Want: true})
}

func (p *Peers) onHeads(data []byte) {
	var m headsMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Origin == p.o.Node {
		return
	}
	switch {
	case m.Want && p.o.LiveHeads != nil:
		p.publish(subjHeads, headsMsg{Origin: p.o.Node, Target: m.Origin, Heads: p.o.LiveHeads()})
	case m.Target == p.o.Node && p.o.FollowLiveHeads != nil:
		p.o.FollowLiveHeads(m.Heads)
	}
}
