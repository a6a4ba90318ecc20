package mqttd

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/internal/refusals"
	"github.com/imbroker/imbroker/internal/usersig"
)

// Topic namespace (docs/protocol.md).
const (
	topicUserPrefix = "im/u/"    // downlink: im/u/{uid}, im/u/{uid}/rpc
	topicSendPrefix = "im/send/" // uplink sends
	topicReqPrefix  = "im/req/"  // uplink requests
	rpcSuffix       = "/rpc"
)

// connect is what a login's decision reads of the CONNECT packet. The
// decision runs on a login worker (internal/stackpool); handing it the
// packet itself moved a 1.2 kB copy of it to the heap per login.
type connect struct {
	user, password []byte
	clientID       string // as the client sent it: "" when mochi assigned one
	will           bool
	willTopic      string
}

func connectOf(pk *packets.Packet) connect {
	return connect{user: pk.Connect.Username, password: pk.Connect.Password, clientID: pk.Connect.ClientIdentifier,
		will: pk.Connect.WillFlag, willTopic: pk.Connect.WillTopic}
}

// connackCode builds a CONNACK refusal: a CONNACK has reason codes of its
// own (0x85, 0x86, ...), and its reason string names the Tencent code.
func connackCode(reason packets.Code, e *imerr.Error) packets.Code {
	return packets.Code{Code: reason.Code, Reason: e.Error()}
}

// authenticate decides a CONNECT (Authenticate): Username = UserID, Password =
// UserSig, ClientID = {UserID} or {UserID}:{device}. An empty user name and
// password is a guest (guest/{id}, guests.enabled) or an anonymous client
// (anon/{id}, mqtt.anonymous). A will must be one the client could publish.
// [IM-AUTH-1..3]
func (s *Server) authenticate(cl *mqtt.Client, c *connect) packets.Code {
	user := string(c.user)
	if user == "" && len(c.password) == 0 {
		var code packets.Code
		switch {
		case s.cfg.Guests.Enabled && (!s.cfg.MQTT.Anonymous || strings.HasPrefix(cl.ID, guestClientPrefix)):
			code = s.authenticateGuest(cl)
		case s.cfg.MQTT.Anonymous:
			code = s.authenticateAnonymous(cl, c)
		default:
			return connackCode(packets.ErrBadUsernameOrPassword, imerr.BadAccount.New("%s", "invalid UserID: "+ids.ErrEmpty.Error()))
		}
		if code != packets.CodeSuccess {
			return code
		}
		return s.checkWill(cl, c)
	}
	if err := ids.CheckUserID(user); err != nil {
		return connackCode(packets.ErrBadUsernameOrPassword, imerr.BadAccount.New("%s", "invalid UserID: "+err.Error()))
	}
	cuser, _, err := ids.SplitClientID(cl.ID)
	if err != nil || cuser != user {
		// Binding the ClientID to the user is what stops anyone taking over
		// another user's session by reusing their ClientID.
		return connackCode(packets.ErrClientIdentifierNotValid, imerr.AccountBadParams.New("ClientID must be {UserID} or {UserID}:{device}"))
	}
	checked, err := s.signer.CheckBytes(user, c.password, time.Now())
	if err == nil {
		if code := s.checkWill(cl, c); code != packets.CodeSuccess {
			return code
		}
		if code := s.admitLogin(cl, user, checked.Issued); code != packets.CodeSuccess {
			return code
		}
		return s.checkDeviceLimit(cl, user) // [IM-DEVICES] on_exceed: refuse
	}
	var se *imerr.Error
	if !errors.As(err, &se) {
		se = usersig.ErrMalformed
	}
	reason := packets.ErrBadUsernameOrPassword
	if errors.Is(err, usersig.ErrUserMismatch) || errors.Is(err, usersig.ErrAppMismatch) {
		reason = packets.ErrNotAuthorized // a genuine sig, for someone or something else
	}
	return connackCode(reason, se)
}

// admitLogin runs the account side of a login whose UserSig verified: a
// sig older than the user's last kick is refused like an expired one
// (70001: the client fetches a new sig), and the user becomes an account.
func (s *Server) admitLogin(cl *mqtt.Client, user string, issued time.Time) packets.Code {
	if s.Accounts == nil {
		return packets.CodeSuccess
	}
	if err := s.login(context.Background(), user, issued); err != nil {
		e := imerr.As(err)
		s.log.Debug("login refused", "user", user, "client", cl.ID, "code", e.Code, "error", err)
		if e.Code == imerr.Internal.Code {
			return connackCode(packets.ErrServerUnavailable, e)
		}
		return connackCode(packets.ErrBadUsernameOrPassword, e)
	}
	return packets.CodeSuccess
}

// guestClientPrefix starts every guest ClientID. '/' never appears in a
// UserID, so no guest can ever hold a user's ClientID.
const guestClientPrefix = "guest/"

// authenticateGuest admits an anonymous, receive-only client for live rooms
// (guests.enabled). [IM-AUTH-GUEST]
func (s *Server) authenticateGuest(cl *mqtt.Client) packets.Code {
	dev, ok := strings.CutPrefix(cl.ID, guestClientPrefix)
	if !ok || ids.CheckDevice(dev) != nil {
		return connackCode(packets.ErrClientIdentifierNotValid, imerr.AccountBadParams.New("guest ClientID must be guest/{id}"))
	}
	return packets.CodeSuccess
}

// userOf returns the authenticated UserID of a client ("" for guests and
// anonymous clients).
func userOf(cl *mqtt.Client) string { return string(cl.Properties.Username) }

// CanPublish implements auth.Authorizer. MQTT 3.1.1 publishes are always let
// through to OnPublish, which acks a refused one without delivering it and
// reports the error on rpc: mochi would otherwise disconnect a 3.1.1 client
// for a forbidden QoS>0 publish. MQTT 5 clients get PUBACK 0x87 here (a QoS 2
// one PUBREC 0x87): im/send/ and im/req/ for users, mqtt.acl elsewhere.
func (s *Server) CanPublish(cl *mqtt.Client, topic string) bool {
	ok := s.canPublish(cl, topic)
	if !ok {
		s.refuse(cl, refusals.Publish, imerr.NoPermission.Code, "publishing to "+strconv.Quote(topic)+" is not allowed")
	}
	return ok
}

func (s *Server) canPublish(cl *mqtt.Client, topic string) bool {
	if isGuest(cl) {
		return false // guests never publish
	}
	if cl.Properties.ProtocolVersion < 5 {
		return true
	}
	if isIMTopic(topic) {
		return !isAnonymous(cl) && uplinkAllowed(topic)
	}
	return s.plainAllowed(cl, topic, true)
}

func uplinkAllowed(topic string) bool {
	return strings.HasPrefix(topic, topicSendPrefix) || strings.HasPrefix(topic, topicReqPrefix)
}

// CanRead implements auth.Authorizer for subscribe filters and deliveries.
// In im/: im/u/{self} and below (no wildcard in the user level), and
// im/g/{gid} for whoever may receive that group; never a shared subscription,
// never an anonymous client. Deliveries of im/ topics to a closed connection
// are refused so mochi never queues IM events in an offline session: the
// store is the queue, and sync replays it. Elsewhere mqtt.acl decides, and a
// persistent session keeps receiving (queued) while offline.
func (s *Server) CanRead(cl *mqtt.Client, topic string) bool {
	filter, shared := sharedFilter(topic)
	if !isIMTopic(filter) {
		return s.plainAllowed(cl, filter, false)
	}
	if shared || cl.Closed() || isAnonymous(cl) {
		return false
	}
	if gid, ok := groupOfTopic(filter); ok {
		return s.Groups.CanRead(userOf(cl), gid)
	}
	return ownsUserTopic(userOf(cl), filter)
}

func ownsUserTopic(user, topic string) bool {
	rest, ok := strings.CutPrefix(topic, topicUserPrefix)
	if !ok || user == "" {
		return false
	}
	rest, ok = strings.CutPrefix(rest, user)
	return ok && (rest == "" || rest[0] == '/')
}
