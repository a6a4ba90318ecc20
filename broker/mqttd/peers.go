package mqttd

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/peers"
	"github.com/imbroker/imbroker/storage"
)

// Cluster mode: the other nodes' connections (docs/cluster.md, "Presence,
// kicks and live rooms"). Each connection's start and end is announced to
// the other nodes; presence (OnlineDevices, the counts), the device limit
// and kicks count and reach the connections of every node. With no Peers
// (one node) none of this runs.

// Peers is the other nodes as the MQTT side uses them (*peers.Peers).
type Peers interface {
	Started(user, clientID string, at int64)
	Ended(user, clientID string, at int64)
	Devices(user string) []peers.Device
	Users() []string
	Conns() int
	KickUser(user, reason, by string) int
}

var _ peers.Local = (*Server)(nil)

// device is one connection of a user, on this node (c) or another (node).
type device struct {
	id   string
	at   int64
	c    *conn  // this node's
	node string // another node's
}

// devicesOf lists user's connections on every node, oldest first; a
// ClientID held on two nodes (a takeover under way) counts once, at the
// newer connection.
func (s *Server) devicesOf(user string) []device {
	var all []device
	seen := map[string]int{}
	add := func(d device) {
		if i, ok := seen[d.id]; ok {
			if d.at > all[i].at {
				all[i] = d
			}
			return
		}
		seen[d.id] = len(all)
		all = append(all, d)
	}
	for _, c := range s.conns.conns(user) {
		add(device{id: c.cl.ID, at: c.connectedAt.UnixNano(), c: c})
	}
	for _, d := range s.Peers.Devices(user) {
		add(device{id: d.ClientID, at: d.At, node: d.Node})
	}
	slices.SortFunc(all, func(a, b device) int { return cmp.Compare(a.at, b.at) })
	return all
}

// remoteDevices counts user's connections on other nodes, but clientID's.
func (s *Server) remoteDevices(user, clientID string) (n int, holds bool) {
	for _, d := range s.Peers.Devices(user) {
		if d.ClientID == clientID {
			holds = true
			continue
		}
		n++
	}
	return n, holds
}

// KickLocal implements peers.Local: another node's kick of user's
// connection clientID on this node ("" every one).
func (s *Server) KickLocal(user, clientID, reason, by string) int {
	n := 0
	for _, c := range s.conns.conns(user) {
		if clientID != "" && c.cl.ID != clientID {
			continue
		}
		n++
		cl := c.cl
		switch reason {
		case peers.ReasonDeviceLimit:
			if s.conns.forget(user, c) {
				s.tasks.Spawn(func(ctx context.Context) { s.kickDevice(ctx, cl, user, by) })
			}
		default:
			s.tasks.Spawn(func(context.Context) {
				s.kick(cl, user, kickNotice{Op: "kicked", Reason: reason, By: by}, errKickedAdmin)
			})
		}
	}
	return n
}

// TakeOver implements peers.Local: clientID logged in on another node at
// at; this node's older connection of it ends with DISCONNECT 0x8E, as a
// takeover on one node does (SessionEnded sees a takeover: no logout).
func (s *Server) TakeOver(user, clientID string, at int64) {
	for _, c := range s.conns.conns(user) {
		if c.cl.ID != clientID || c.connectedAt.UnixNano() >= at {
			continue
		}
		cl := c.cl
		s.log.Info("session taken over on another node", "user", user, "client", clientID)
		s.tasks.Spawn(func(ctx context.Context) {
			if !s.fix.WaitAttached(ctx, cl, kickWriteTimeout) {
				return
			}
			if cl.Net.Conn != nil {
				_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(kickWriteTimeout))
			}
			_ = s.mq.DisconnectClient(cl, packets.ErrSessionTakenOver)
		})
	}
}

// DeliverLocal implements peers.Local: live-room events to this node's
// subscribers.
func (s *Server) DeliverLocal(entries []storage.Entry) { s.Deliver(entries) }

// NotifyLocal implements peers.Local.
func (s *Server) NotifyLocal(user, suffix string, payload []byte) int {
	return s.Notify(user, suffix, payload)
}

// DropLocal implements peers.Local.
func (s *Server) DropLocal(gid string, users ...string) { s.DropGroupSubscriptions(gid, users...) }
