package mqttd

import (
	"context"
	"errors"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/mochifix"
)

// cbStateChange is the login/logout after-callback (tencent-im.md §5;
// docs/callbacks.md "Event commands").
const cbStateChange = "State.StateChange"

// SessionStarting implements session.Watcher. A persistent session may hold
// IM events mochi sent but saw no ack for; resending them after the client
// has synced would deliver them twice, so they are dropped here, before mochi
// inherits and resends the session. The store is the queue. [IM-SYNC-2]
// It also starts the connection's conn, one of its user's devices, kicking
// the oldest past devices.max_per_user under kick_oldest. [IM-DEVICES]
func (s *Server) SessionStarting(cl *mqtt.Client) {
	c := s.startConn(cl)
	if s.Peers != nil && c != nil {
		// The other nodes learn of it; the owner announces the status.
		s.Peers.Started(c.user, cl.ID, c.connectedAt.UnixNano())
	} else {
		s.presenceChanged(cl) // StatusChanged to friends (relations.status_events)
	}
	s.stateChange(cl, "Login", "Register") // State.StateChange Login
	mochifix.DropInflight(s.mq, cl.ID, func(pk packets.Packet) bool { return strings.HasPrefix(pk.TopicName, topicUserPrefix) })
}

// SessionEnded implements session.Watcher: the connection's conn goes (its
// one cleanup, takeovers included). A taken-over connection is not a
// logout: its user is still online with the same ClientID, so presence and
// State.StateChange stay quiet.
func (s *Server) SessionEnded(cl *mqtt.Client, err error, takenOver bool) {
	if c := s.conns.drop(cl); c != nil {
		s.connEndedPeers(c)
	}
	if takenOver {
		return
	}
	if s.Peers == nil {
		s.presenceChanged(cl)
	}
	s.stateEnded(cl, err)
	s.log.Debug("client disconnected", "client", cl.ID, "user", userOf(cl), "cause", err)
}

// connEndedPeers tells the other nodes that c's connection ended: from
// SessionEnded, or from the conns when they dropped a closed connection
// before its session ended (conns.ended), whichever drops c first.
func (s *Server) connEndedPeers(c *conn) {
	if s.Peers != nil {
		s.Peers.Ended(c.user, c.cl.ID, c.connectedAt.UnixNano())
	}
}

// presenceChanged hands a connection's start or end to the relations
// service, which announces the user's state to their friends
// (relations.status_events). Guests and the inline client have no state.
func (s *Server) presenceChanged(cl *mqtt.Client) {
	user := userOf(cl)
	if cl.Net.Inline || user == "" {
		return
	}
	if !s.cfg.Relations.StatusEvents {
		// Nothing is committed (the statistics count the login): no
		// deadline, whose timer was ~470 bytes of garbage per login.
		s.Status.PresenceChanged(context.Background(), user)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Storage.CommitTimeout)
	defer cancel()
	s.Status.PresenceChanged(ctx, user)
}

// stateEnded queues State.StateChange for a connection that ended: Logout
// after a DISCONNECT, else Disconnect (TimeOut for a keepalive timeout).
func (s *Server) stateEnded(cl *mqtt.Client, err error) {
	action, reason := "Disconnect", "LinkClose"
	cause := cl.StopCause()
	switch {
	case isCode(err, packets.CodeDisconnect) || isCode(cause, packets.CodeDisconnect):
		action, reason = "Logout", "Unregister"
	case isCode(err, packets.ErrKeepAliveTimeout) || isCode(cause, packets.ErrKeepAliveTimeout):
		reason = "TimeOut"
	}
	s.stateChange(cl, action, reason)
}

func isCode(err error, c packets.Code) bool {
	var got packets.Code
	return err != nil && errors.As(err, &got) && got.Code == c.Code && got.Reason == c.Reason
}

// stateChange queues the after-callback (it never blocks).
func (s *Server) stateChange(cl *mqtt.Client, action, reason string) {
	if cl.Net.Inline || !s.Callbacks.Enabled(cbStateChange) {
		return
	}
	user := userOf(cl)
	if user == "" {
		return // guests have no state
	}
	s.Callbacks.After(context.Background(), cbStateChange, map[string]any{
		"Info":         map[string]any{"Action": action, "To_Account": user, "Reason": reason},
		"KickedDevice": []any{},
		"ClientID":     cl.ID,
	})
}
