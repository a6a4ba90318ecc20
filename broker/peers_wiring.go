package broker

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/mqttd"
	"github.com/imbroker/imbroker/broker/peers"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// Cluster mode: presence, kicks, takeovers and live rooms across nodes
// travel on the node's bus (broker/peers). startPeers runs once the MQTT
// side exists (peers act on its connections) and before any client can
// connect; the owner announces status changes of every node's users.

func (b *Broker) startPeers() error {
	if b.node == nil {
		return nil
	}
	cc := b.cfg.Cluster
	p, err := peers.Start(peers.Options{Bus: b.node, Node: b.node.Name(), Interval: cc.PresenceInterval,
		Timeout: cc.PresenceTimeout, Local: peersLocal{b.mqtt, b}, Changed: b.presenceChanged, Log: b.log,
		MaxDevices: b.cfg.Devices.MaxPerUser, RefuseDevices: b.cfg.Devices.OnExceed == config.DevicesRefuse,
		LiveHeads: b.liveHeads, FollowLiveHeads: b.followLiveHeads})
	if err != nil {
		return err
	}
	b.peers = p
	return nil
}

// peersLocal is the MQTT side as the peers act on it, with the live-room
// events of other nodes first brought into this node's groups (their
// numbering: NextMsgSeq, LastMsgTime) and then delivered.
type peersLocal struct {
	*mqttd.Server
	b *Broker
}

func (l peersLocal) DeliverLocal(entries []storage.Entry) {
	if g := l.b.liveGroups.Load(); g != nil {
		g.FollowLive(entries)
	}
	l.Server.DeliverLocal(entries)
}

// liveHeads and followLiveHeads carry the live rooms' numbering to a node
// that starts (peers.Options.LiveHeads).
func (b *Broker) liveHeads() json.RawMessage {
	g := b.liveGroups.Load()
	if g == nil {
		return nil
	}
	raw, _ := json.Marshal(g.LiveHeads())
	return raw
}

func (b *Broker) followLiveHeads(raw json.RawMessage) {
	var heads []groups.LiveHead
	if g := b.liveGroups.Load(); g != nil && json.Unmarshal(raw, &heads) == nil {
		g.FollowHeads(heads)
	}
}

// presenceChanged announces user's status (relations.status_events) when
// this node writes: a user's devices changed on some node.
func (b *Broker) presenceChanged(user string) {
	if b.relations == nil || !b.node.IsOwner() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Storage.CommitTimeout)
	defer cancel()
	b.relations.PresenceChanged(ctx, user)
}

// mqttPeers is the peers as the MQTT side's (a nil interface without them).
func (b *Broker) mqttPeers() mqttd.Peers {
	if b.peers == nil {
		return nil
	}
	return b.peers
}

// groupConns is what the groups service reaches connections through: in
// a cluster, live-room events, notices and dropped subscriptions reach
// every node's connections.
func (b *Broker) groupConns() groups.Conns {
	if b.peers == nil {
		return b.mqtt
	}
	return clusterConns{b.mqtt, b.peers}
}

type clusterConns struct {
	*mqttd.Server
	p *peers.Peers
}

// Deliver hands live-room events to this node's delivery and every other
// node's (the bus): each node roomcasts to its own subscribers.
func (c clusterConns) Deliver(entries []storage.Entry) { c.p.Live(entries) }

func (c clusterConns) Notify(user, suffix string, payload []byte) int {
	return c.p.Notify(user, suffix, payload)
}

func (c clusterConns) DropGroupSubscriptions(gid string, users ...string) {
	c.p.DropGroupSubscriptions(gid, users...)
}

var _ groups.Conns = clusterConns{}
