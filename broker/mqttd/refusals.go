package mqttd

import (
	"errors"
	"strconv"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/internal/refusals"
)

// refuse logs (rate-limited) and counts one refusal of cl's.
func (s *Server) refuse(cl *mqtt.Client, reason string, code int, detail string) {
	s.refusals.Refuse(refusals.Event{Reason: reason, Code: code, ClientID: cl.ID, UserID: userOf(cl),
		Remote: cl.Net.Remote, Detail: detail})
}

// Authenticate implements auth.Authorizer: authenticate decides, and every
// refused login is logged and counted with the Tencent code its CONNACK
// reason string names. [IM-AUTH-1..3]
func (s *Server) Authenticate(cl *mqtt.Client, pk packets.Packet) packets.Code {
	j := &struct {
		c    connect
		code packets.Code
	}{c: connectOf(&pk)}
	s.loginStack.Run(func() { j.code = s.authenticate(cl, &j.c) })
	code := j.code
	if code != packets.CodeSuccess {
		s.refusals.Refuse(refusals.Event{Reason: refusals.Login, Code: reasonCode(code), ClientID: cl.ID,
			UserID: string(pk.Connect.Username), Remote: cl.Net.Remote, Detail: code.Reason})
	} else if s.logins != nil {
		s.logins.Login()
	}
	return code
}

// reasonCode reads the Tencent code a refusal's reason string starts with
// ("70001 UserSig expired", as connackCode and packetCode write it).
func reasonCode(c packets.Code) int {
	n, _ := strconv.Atoi(strings.SplitN(c.Reason, " ", 2)[0])
	return n
}

// SubscribeRefused implements auth.Authorizer: a SUBSCRIBE filter that got
// a failure reason code in its SUBACK.
func (s *Server) SubscribeRefused(cl *mqtt.Client, filter string, reason byte) {
	s.refuse(cl, refusals.Subscribe, imerr.NoPermission.Code, "subscription to "+strconv.Quote(filter)+" refused with 0x"+strconv.FormatUint(uint64(reason), 16))
}

// originRefused is the WebSocket listener's report of a refused Origin
// (HTTP 403 before any MQTT, so no ClientID and no code).
func (s *Server) originRefused(origin, remote string) {
	s.refusals.Refuse(refusals.Event{Reason: refusals.Origin, Remote: remote,
		Detail: "websocket Origin " + strconv.Quote(origin) + " not in mqtt.ws_allowed_origins"})
}

// Refusals returns the refusals counted so far by reason and code, for
// /metrics.
func (s *Server) Refusals() map[refusals.Key]int64 { return s.refusals.Counts() }

// connEnded is the listeners' report of how a connection ended: mochi
// refuses a login over mqtt.max_clients itself, before any hook runs
// (CONNACK 0x89 server busy, 3.1.1: 3 server unavailable), so only the
// listener sees it.
func (s *Server) connEnded(remote string, err error) {
	if errors.Is(err, packets.ErrServerBusy) {
		s.refusals.Refuse(refusals.Event{Reason: refusals.ServerBusy, Remote: remote,
			Detail: "mqtt.max_clients reached (" + strconv.FormatInt(s.cfg.MQTT.MaxClients, 10) + " connections)"})
	}
}
