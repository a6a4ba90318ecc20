package mqttd

import (
	"context"
	"encoding/json"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/peers"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Multi-device policy [IM-DEVICES]: a user may be online on several
// connections (ClientIDs {UserID} and {UserID}:{device}) at once, up to
// devices.max_per_user (0 = unlimited). A new ClientID past the limit either
// kicks the user's oldest connection (kick_oldest) or is refused at CONNECT
// (refuse). The same ClientID connecting again is an MQTT session takeover:
// it replaces the old connection and is never counted twice. Guests are not
// tracked. The records are the conns (conn.go).

// errKickedDeviceLimit is the DISCONNECT reason a connection kicked by a
// newer login gets. Not 0x8E "session taken over": MQTT 5 defines that as
// "another connection with the same ClientID", which a client must be able
// to tell apart from another device of the same user.
var errKickedDeviceLimit = packets.Code{Code: packets.ErrAdministrativeAction.Code, Reason: "kicked: device limit"}

// errKickedAdmin is the DISCONNECT reason of a connection the admin kicked.
var errKickedAdmin = packets.Code{Code: packets.ErrAdministrativeAction.Code, Reason: "kicked: admin"}

// kickWriteTimeout bounds the notice and DISCONNECT written to a kicked
// connection: a stalled peer must not hold its goroutine for 1.5 × keepalive.
const kickWriteTimeout = 5 * time.Second

// OnlineDevices returns the ClientIDs user is connected with right now,
// oldest connection first; nil when the user is offline. It makes the
// server the Presence of the relations and messages services.
func (s *Server) OnlineDevices(user string) []string {
	if user == "" {
		return nil
	}
	if s.Peers != nil {
		var ids []string
		for _, d := range s.devicesOf(user) {
			ids = append(ids, d.id)
		}
		return ids
	}
	if ids := s.conns.list(user); len(ids) > 0 {
		return ids
	}
	return nil
}

// OnlineCounts counts the users with an open connection and their connections
// (Tencent getappinfo), on every node.
func (s *Server) OnlineCounts() (users, conns int) {
	users, conns = s.conns.online()
	if s.Peers != nil {
		users = len(s.OnlineUsers())
		conns += s.Peers.Conns()
	}
	return users, conns
}

// checkDeviceLimit runs at the end of Authenticate, for an authenticated
// user. Under on_exceed: refuse it refuses a new ClientID past the limit
// with CONNACK 0x97 (3.1.1: return code 3) naming imerr.DeviceLimit (70114).
// [IM-DEVICES]
func (s *Server) checkDeviceLimit(cl *mqtt.Client, user string) packets.Code {
	dc := s.cfg.Devices
	if dc.MaxPerUser <= 0 || dc.OnExceed != config.DevicesRefuse {
		return packets.CodeSuccess
	}
	max := dc.MaxPerUser
	if s.Peers != nil {
		remote, holds := s.remoteDevices(user, cl.ID)
		if holds {
			return packets.CodeSuccess // a takeover of a ClientID online on another node
		}
		max -= remote
	}
	online, ok := s.conns.reserve(user, cl, max)
	if ok {
		return packets.CodeSuccess
	}
	s.log.Debug("login refused: device limit", "user", user, "client", cl.ID, "online", online, "max", dc.MaxPerUser)
	return connackCode(packets.ErrQuotaExceeded, imerr.DeviceLimit.New("device limit reached: %d of %d devices online", online+dc.MaxPerUser-max, dc.MaxPerUser))
}

// startConn records a user's new connection (from SessionStarting: after
// auth, before CONNACK) and, under on_exceed: kick_oldest, kicks the oldest
// other connections past the limit. [IM-DEVICES]
func (s *Server) startConn(cl *mqtt.Client) *conn {
	user := userOf(cl)
	if user == "" || cl.Net.Inline {
		return nil // guests, anonymous clients and the inline client have no conn
	}
	dc := s.cfg.Devices
	kickOldest := dc.OnExceed == config.DevicesKickOldest && dc.MaxPerUser > 0
	if s.Peers != nil {
		// Counted over every node by the peers when SessionStarting
		// announces it (broker/peers, limit.go): each node kicks its own
		// connections past the limit, the same ones on every node's view.
		c, _ := s.conns.start(user, cl, 0, false)
		return c
	}
	c, victims := s.conns.start(user, cl, dc.MaxPerUser, kickOldest)
	for _, v := range victims {
		s.log.Info("device kicked: device limit", "user", user, "client", v.cl.ID, "online_since", v.connectedAt,
			"by", cl.ID, "max", dc.MaxPerUser)
		// Off the new connection's goroutine: its CONNACK must not wait
		// on a write to another, possibly stalled, connection. Refused at
		// shutdown, which disconnects the victim anyway.
		s.tasks.Spawn(func(ctx context.Context) { s.kickDevice(ctx, v.cl, user, cl.ID) })
	}
	return c
}

// kickNotice is the rpc message a kicked connection gets before DISCONNECT.
type kickNotice struct {
	ID        string `json:"Id"`
	Op        string `json:"Op"`
	ErrorCode int    `json:"ErrorCode"`
	Reason    string `json:"Reason"`
	By        string `json:"By"`
}

// kickDevice tells cl on its rpc topic (if it subscribed) that it was kicked
// by the login of byClientID, then disconnects it: MQTT 5 clients get
// DISCONNECT 0x98 "kicked: device limit"; 3.1.1 clients see the connection
// close. A shutdown (ctx) cancels a kick still waiting for its victim.
func (s *Server) kickDevice(ctx context.Context, cl *mqtt.Client, user, byClientID string) {
	// A victim chosen while its own login is still in progress (logins
	// racing) is closed only after its CONNACK.
	if !s.fix.WaitAttached(ctx, cl, kickWriteTimeout) {
		return // ended, or taken over by its own ClientID, or shutting down, meanwhile
	}
	s.kick(cl, user, kickNotice{Op: "kicked", Reason: "device limit", By: byClientID}, errKickedDeviceLimit)
}

// KickUser disconnects every connection of user (Tencent kick): each gets
// an rpc notice {Op:"kicked", Reason:"admin"} and then DISCONNECT 0x98 (3.1.1
// clients see the connection close). It returns how many were connected.
// The user's UserSig stays valid: the client may log in again. In a
// cluster the other nodes kick theirs too (counted as this node knows them).
func (s *Server) KickUser(user string) int {
	n := 0
	if s.Peers != nil {
		n = s.Peers.KickUser(user, peers.ReasonAdmin, s.cfg.App.Admin)
	}
	for _, id := range s.conns.list(user) {
		cl, ok := s.mq.Clients.Get(id)
		if !ok || userOf(cl) != user {
			continue
		}
		n++
		s.kick(cl, user, kickNotice{Op: "kicked", Reason: "admin", By: s.cfg.App.Admin}, errKickedAdmin)
	}
	return n
}

// kick writes notice to cl's rpc topic and disconnects it with reason.
func (s *Server) kick(cl *mqtt.Client, user string, notice kickNotice, reason packets.Code) {
	if cl.Net.Conn != nil {
		// The connection is being closed: a write deadline only bounds how
		// long a stalled peer can hold this goroutine (and the client lock).
		_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(kickWriteTimeout))
	}
	if payload, err := json.Marshal(notice); err == nil {
		s.writeDirect(cl, topicUserPrefix+user+rpcSuffix, payload, packets.Properties{})
	}
	_ = s.mq.DisconnectClient(cl, reason)
}
