package mqttd

import (
	"slices"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Plain MQTT (docs/mqtt.md): every topic outside im/ is governed by the
// ordered rules of mqtt.acl, evaluated here. The im/ namespace never
// consults them [IM-ACL-1]. [MQTT-PLAIN-ACL]

// anonClientPrefix starts every anonymous ClientID. '/' never appears in a
// UserID and guests use guest/, so an anonymous client can never hold the
// ClientID, and so take over the session, of a user or a guest.
const anonClientPrefix = "anon/"

// isIMTopic reports whether a topic or filter lies in the im/ namespace.
func isIMTopic(topic string) bool { return topic == "im" || strings.HasPrefix(topic, "im/") }

// isAnonymous reports whether cl logged in anonymously (mqtt.anonymous).
func isAnonymous(cl *mqtt.Client) bool {
	return userOf(cl) == "" && !cl.Net.Inline && !strings.HasPrefix(cl.ID, guestClientPrefix)
}

// isGuest reports whether cl is a live-room guest (guests.enabled).
func isGuest(cl *mqtt.Client) bool {
	return userOf(cl) == "" && strings.HasPrefix(cl.ID, guestClientPrefix)
}

// sharedFilter returns the filter of a $share/{group}/{filter}
// subscription (the prefix is case-insensitive, as in mochi).
func sharedFilter(filter string) (string, bool) {
	first, rest, ok := strings.Cut(filter, "/")
	if !ok || !strings.EqualFold(first, "$share") {
		return filter, false
	}
	_, inner, ok := strings.Cut(rest, "/")
	return inner, ok
}

// authenticateAnonymous admits a client with empty user name and password
// when mqtt.anonymous is on. Its ClientID must be anon/{id}; an empty one
// becomes anon/{server-assigned id} (told to MQTT 5 clients in CONNACK).
// [MQTT-3.1.3-6] [MQTT-3.1.3-7]
func (s *Server) authenticateAnonymous(cl *mqtt.Client, c *connect) packets.Code {
	if c.clientID == "" {
		// mochi has already assigned a random xid; prefixing it keeps it out
		// of the UserID namespace.
		cl.ID = anonClientPrefix + cl.ID
		cl.Properties.Props.AssignedClientID = cl.ID
		return packets.CodeSuccess
	}
	if s.anyAnonIDs() {
		return s.checkAnyAnonID(cl)
	}
	id, ok := strings.CutPrefix(cl.ID, anonClientPrefix)
	if !ok || ids.CheckDevice(id) != nil {
		info := "anonymous ClientID must be anon/{id} or empty"
		if s.cfg.Guests.Enabled {
			info = "ClientID must be guest/{id} or anon/{id} (or empty) for a login without user name"
		}
		return connackCode(packets.ErrClientIdentifierNotValid, imerr.AccountBadParams.New("%s", info))
	}
	return packets.CodeSuccess
}

// checkWill refuses a CONNECT whose will the client could not publish
// itself: mochi publishes wills straight to subscribers (sendLWT), with no
// ACL check and no OnPublish, so an unchecked will could inject events into
// im/u/{anyone}. Guests never publish; im/ and $ topics are never will
// topics; anything else needs a plain publish rule.
func (s *Server) checkWill(cl *mqtt.Client, c *connect) packets.Code {
	if !c.will {
		return packets.CodeSuccess
	}
	topic := c.willTopic
	if topic == "" || strings.ContainsAny(topic, "+#") { // [MQTT-3.1.3-11]
		return connackCode(packets.ErrTopicNameInvalid, imerr.BadParams.New("will topic is not a valid topic name"))
	}
	if isGuest(cl) || isIMTopic(topic) || !s.plainAllowed(cl, topic, true) {
		return connackCode(packets.ErrNotAuthorized, imerr.NoPermission.New("%s", "will topic "+topic+" is not allowed"))
	}
	return packets.CodeSuccess
}

// plainAllowed applies mqtt.acl to a topic outside im/: a publish topic
// (publish) or a subscription filter or delivered topic (!publish). The
// first rule that applies to the client, the action and the topic decides;
// none denies. A subscription filter is allowed when the rule's filter
// covers every topic it can match; each delivery is checked again, so a
// deny rule for part of an allowed filter still holds back those topics.
func (s *Server) plainAllowed(cl *mqtt.Client, topic string, publish bool) bool {
	anon, user := isAnonymous(cl), userOf(cl)
	if !anon && user == "" {
		return false // guests: IM live rooms only
	}
	dollar := strings.HasPrefix(topic, "$")
	if publish && dollar {
		return false // [MQTT-4.7.2-1] $ topics are the server's
	}
	for _, r := range s.cfg.MQTT.ACL {
		if !aclActionCovers(r.Action, publish) || !aclWhoMatches(r, user, anon) {
			continue
		}
		if dollar && !strings.HasPrefix(r.Topic, "$") {
			continue // only a rule written with a literal $ level opens $ topics
		}
		cid := cl.ID
		if anon && !strings.HasPrefix(cid, anonClientPrefix) {
			cid = "" // an ordinary anonymous ClientID may be a user's: %c never applies
		}
		filter, ok := expandACLTopic(r.Topic, user, cid)
		if ok && covers(filter, topic) {
			return r.Permission == config.ACLAllow
		}
	}
	return false
}

func aclActionCovers(action string, publish bool) bool {
	switch action {
	case config.ACLAll:
		return true
	case config.ACLPublish:
		return publish
	default:
		return !publish
	}
}

func aclWhoMatches(r config.ACLRule, user string, anon bool) bool {
	switch r.Who {
	case config.ACLAll:
		return true
	case config.ACLAnonymous:
		return anon
	case config.ACLAuthenticated:
		return !anon && user != ""
	default:
		return !anon && user != "" && slices.Contains(r.Users, user)
	}
}

// expandACLTopic replaces %u / ${username} with the UserID and %c /
// ${clientid} with the ClientID. A placeholder with no value (%u for an
// anonymous client) or a value holding a wildcard makes the rule not apply.
func expandACLTopic(topic, user, clientID string) (string, bool) {
	if !strings.ContainsAny(topic, "%$") {
		return topic, true
	}
	var sb strings.Builder
	for i := 0; i < len(topic); i++ {
		var v string
		switch {
		case strings.HasPrefix(topic[i:], "%u"):
			v, i = user, i+1
		case strings.HasPrefix(topic[i:], "%c"):
			v, i = clientID, i+1
		case strings.HasPrefix(topic[i:], "${username}"):
			v, i = user, i+len("${username}")-1
		case strings.HasPrefix(topic[i:], "${clientid}"):
			v, i = clientID, i+len("${clientid}")-1
		default:
			sb.WriteByte(topic[i])
			continue
		}
		if v == "" || strings.ContainsAny(v, "+#\x00") {
			return "", false
		}
		sb.WriteString(v)
	}
	return sb.String(), true
}

// covers reports whether every topic that sub (a topic name or a filter)
// can match is matched by filter. For a topic name this is MQTT matching:
// "a/#" also matches "a" [MQTT-4.7.1-2], and a wildcard first level never
// matches a $ topic [MQTT-4.7.2-1].
func covers(filter, sub string) bool {
	if strings.HasPrefix(sub, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		sl, srest, smore := strings.Cut(sub, "/")
		switch {
		case sl == "#":
			return false // sub reaches deeper than a non-# level of filter
		case fl != "+" && fl != sl:
			return false // a "+" in sub is covered only by "+" (or "#")
		}
		if !smore {
			return !fmore || frest == "#"
		}
		if !fmore {
			return false
		}
		filter, sub = frest, srest
	}
}
