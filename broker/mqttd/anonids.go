package mqttd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Ordinary anonymous ClientIDs (mqtt.anonymous_client_ids: any, docs/mqtt.md).
//
// An anonymous client may then hold any ClientID outside guest/, including
// one that is also a user's ({UserID} or {UserID}:{device}): the Paho suites
// use "myclientid", mosquitto "mosq-…", both valid UserIDs. mochi keeps one
// session per ClientID and a new CONNECT takes it over, so the rule is
// one-way: a user's valid login always takes the ClientID and starts without
// the anonymous session (no subscription or queued message passes over),
// while an anonymous CONNECT is refused (0x85) whenever a user's connection
// or session holds that ClientID or a user's login for it is under way.
// Anonymous clients never get %c expanded to such a ClientID (plainAllowed).

// anonIDs serialises the check of an anonymous ClientID against users'.
type anonIDs struct {
	mu    sync.Mutex
	users map[string]*mqtt.Client // ClientID -> latest user connection for it
	anons map[string]*mqtt.Client // ClientID -> anonymous connection being established
}

func (s *Server) anyAnonIDs() bool {
	return s.cfg.MQTT.Anonymous && s.cfg.MQTT.AnonymousClientIDs == config.AnonIDsAny
}

// userHoldsLocked reports whether a user's connection or session holds id.
func (s *Server) userHoldsLocked(id string) bool {
	if u, ok := s.anon.users[id]; ok {
		if !u.Closed() {
			return true
		}
		delete(s.anon.users, id)
	}
	ex, ok := s.mq.Clients.Get(id)
	return ok && !isAnonymous(ex)
}

func refuseAnonID() packets.Code {
	return connackCode(packets.ErrClientIdentifierNotValid, imerr.AccountBadParams.New("%s", "ClientID is in use by a user"))
}

// sessionEstablish runs just before mochi takes over a session with cl's
// ClientID (mochifix.Options.SessionEstablish).
func (s *Server) sessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	if !s.anyAnonIDs() || cl.Net.Inline {
		return
	}
	a := &s.anon
	if userOf(cl) != "" {
		a.mu.Lock()
		if a.users == nil {
			a.users = map[string]*mqtt.Client{}
		}
		a.users[cl.ID] = cl
		pending := a.anons[cl.ID]
		a.mu.Unlock()
		if pending != nil { // let it attach, then take over (and discard) its session
			s.fix.WaitAttached(context.Background(), pending, 2*time.Second)
		}
		if ex, ok := s.mq.Clients.Get(cl.ID); ok && isAnonymous(ex) {
			s.fix.DiscardSession(cl)
		}
		return
	}
	if !isAnonymous(cl) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.userHoldsLocked(cl.ID) {
		// A user's login for this ClientID started after our check in
		// Authenticate: it wins. Refuse as Authenticate would have (mochi
		// writes no CONNACK to a closed client, and a bare close tells the
		// client nothing), move out of the way and close.
		_ = s.mq.SendConnack(cl, refuseAnonID(), false, nil)
		var b [8]byte
		_, _ = rand.Read(b[:])
		cl.ID = anonClientPrefix + "refused-" + hex.EncodeToString(b[:])
		cl.Properties.Clean = true
		cl.Properties.Props.SessionExpiryInterval = 0
		cl.Stop(packets.ErrClientIdentifierNotValid)
		return
	}
	if a.anons == nil {
		a.anons = map[string]*mqtt.Client{}
	}
	a.anons[cl.ID] = cl
	// Forget it once attached, on a goroutine the task owner stops at
	// shutdown (this one holds a.mu).
	id := cl.ID
	if !s.tasks.Spawn(func(ctx context.Context) {
		s.fix.WaitAttached(ctx, cl, 5*time.Second)
		a.mu.Lock()
		if a.anons[id] == cl {
			delete(a.anons, id)
		}
		a.mu.Unlock()
	}) {
		delete(a.anons, cl.ID) // shutting down: nothing to wait for
	}
}

// checkAnyAnonID admits an ordinary anonymous ClientID (anonymous_client_ids: any).
func (s *Server) checkAnyAnonID(cl *mqtt.Client) packets.Code {
	if strings.HasPrefix(cl.ID, guestClientPrefix) {
		return connackCode(packets.ErrClientIdentifierNotValid, imerr.AccountBadParams.New("%s", "guest/ ClientIDs are for guests"))
	}
	s.anon.mu.Lock()
	defer s.anon.mu.Unlock()
	if s.userHoldsLocked(cl.ID) {
		return refuseAnonID()
	}
	return packets.CodeSuccess
}

// keepaliveZero lets an anonymous client keep keepalive 0
// (mqtt.allow_keepalive_zero); users and guests keep keepalive_min.
func (s *Server) keepaliveZero(cl *mqtt.Client, pk packets.Packet) bool {
	if !s.cfg.MQTT.AllowKeepaliveZero || !s.cfg.MQTT.Anonymous ||
		len(pk.Connect.Username) > 0 || len(pk.Connect.Password) > 0 {
		return false
	}
	return !s.cfg.Guests.Enabled || !strings.HasPrefix(pk.Connect.ClientIdentifier, guestClientPrefix)
}
