package config

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/imbroker/imbroker/internal/ids"
)

// MQTTPlain configures MQTT outside the im/ namespace: anonymous access,
// the ordered topic ACL, topic aliases and how refusals are worded
// (docs/mqtt.md). Its keys sit directly under mqtt:.
type MQTTPlain struct {
	Anonymous            bool      `yaml:"anonymous"`              // admit clients with empty user name and password (ClientID anon/{id} or empty); default false
	AnonymousClientIDs   string    `yaml:"anonymous_client_ids"`   // anon (ClientID anon/{id} or empty) or any (also ordinary ClientIDs; a user's login always takes theirs back); default anon
	AllowKeepaliveZero   bool      `yaml:"allow_keepalive_zero"`   // anonymous clients asking keepalive 0 keep it (never timed out); users keep keepalive_min; default false
	ObscureNotAuthorized bool      `yaml:"obscure_not_authorized"` // answer ACL refusals with 0x80 (unspecified error) instead of 0x87 (not authorized); default false
	TopicAliasMaximum    uint16    `yaml:"topic_alias_maximum"`    // topic aliases per connection in each direction (MQTT 5); 0 disables; default 16
	YieldBeforeFanOut    bool      `yaml:"yield_before_fanout"`    // a plain publish lets other ready connections run before it is routed (see docs/mqtt.md); default false
	ACL                  []ACLRule `yaml:"acl"`                    // ordered rules for topics outside im/; first match wins, no match denies; default none
}

// ACLRule is one rule of mqtt.acl. It applies to a client when Who (or
// Users) names it, to an action when Action covers it, and to a topic or
// subscription filter when Topic covers it.
type ACLRule struct {
	Permission string   `yaml:"permission"` // allow or deny
	Action     string   `yaml:"action"`     // publish, subscribe or all
	Topic      string   `yaml:"topic"`      // topic filter; %u / ${username} and %c / ${clientid} are replaced per client
	Who        string   `yaml:"who"`        // anonymous, authenticated or all; or leave empty and list Users
	Users      []string `yaml:"users"`      // these UserIDs (authenticated) only
}

// ACL rule values.
const (
	ACLAllow         = "allow"
	ACLDeny          = "deny"
	ACLPublish       = "publish"
	ACLSubscribe     = "subscribe"
	ACLAll           = "all" // action: both; who: anonymous and authenticated clients
	ACLAnonymous     = "anonymous"
	ACLAuthenticated = "authenticated"

	AnonIDsAnon = "anon" // anonymous_client_ids: anon/{id} or empty only
	AnonIDsAny  = "any"  // anonymous_client_ids: also ordinary ClientIDs
)

func defaultMQTTPlain() MQTTPlain {
	return MQTTPlain{TopicAliasMaximum: 16, AnonymousClientIDs: AnonIDsAnon, ACL: []ACLRule{}}
}

func (v *validator) mqttPlain(m MQTTPlain) {
	v.oneOf("mqtt.anonymous_client_ids", m.AnonymousClientIDs, AnonIDsAnon, AnonIDsAny)
	for i, r := range m.ACL {
		path := fmt.Sprintf("mqtt.acl[%d]", i)
		v.oneOf(path+".permission", r.Permission, ACLAllow, ACLDeny)
		v.oneOf(path+".action", r.Action, ACLPublish, ACLSubscribe, ACLAll)
		if err := checkACLTopic(r.Topic, r.Action); err != "" {
			v.add(path+".topic", err)
		}
		switch {
		case r.Who != "" && len(r.Users) > 0:
			v.add(path, "set who or users, not both")
		case r.Who == "" && len(r.Users) == 0:
			v.add(path, "set who (anonymous, authenticated, all) or users")
		case r.Who != "":
			v.oneOf(path+".who", r.Who, ACLAnonymous, ACLAuthenticated, ACLAll)
		}
		for j, u := range r.Users {
			if err := ids.CheckUserID(u); err != nil {
				v.add(fmt.Sprintf("%s.users[%d]", path, j), err.Error())
			}
		}
		if r.Who == ACLAnonymous && (strings.Contains(r.Topic, "%u") || strings.Contains(r.Topic, "${username}")) {
			v.add(path+".topic", "%u / ${username} never matches an anonymous client")
		}
	}
}

// checkACLTopic returns why a rule's topic filter is unusable, or "".
func checkACLTopic(topic, action string) string {
	if topic == "" {
		return "required"
	}
	if !utf8.ValidString(topic) || strings.ContainsRune(topic, 0) || len(topic) > 65535 {
		return "not a valid MQTT topic filter"
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return "# must be the whole last level"
		}
		if strings.Contains(l, "+") && l != "+" {
			return "+ must be a whole level"
		}
		if err := checkPlaceholders(l); err != "" {
			return err
		}
	}
	first := levels[0]
	switch {
	case first == "im":
		return "the im/ namespace is governed by the IM rules only (docs/protocol.md); no rule can open it"
	case strings.EqualFold(first, "$share"):
		return "rules name topics, not shared subscriptions: a $share/{group}/{filter} subscription is checked against its filter"
	case strings.HasPrefix(first, "$") && action != ACLSubscribe:
		return "$ topics are published only by the server: such a rule must have action subscribe"
	}
	return ""
}

// checkPlaceholders accepts %u, %c, ${username} and ${clientid} only.
func checkPlaceholders(level string) string {
	for i := 0; i < len(level); i++ {
		switch {
		case level[i] == '%':
			if i+1 >= len(level) || (level[i+1] != 'u' && level[i+1] != 'c') {
				return "unknown placeholder: only %u, %c, ${username} and ${clientid}"
			}
			i++
		case strings.HasPrefix(level[i:], "${"):
			rest := level[i:]
			switch {
			case strings.HasPrefix(rest, "${username}"):
				i += len("${username}") - 1
			case strings.HasPrefix(rest, "${clientid}"):
				i += len("${clientid}") - 1
			default:
				return "unknown placeholder: only %u, %c, ${username} and ${clientid}"
			}
		}
	}
	return ""
}
