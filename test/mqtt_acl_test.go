package test

import (
	"strings"
	"testing"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

// mqRules is the rule set the ACL tests share: one of each form.
func mqRules() []config.ACLRule {
	return []config.ACLRule{
		mqRule("deny", "publish", "devices/%u/locked", "authenticated"),         // a deny before the allow it narrows
		mqRule("allow", "all", "devices/%u/#", "authenticated"),                 // %u, publish and subscribe
		mqRule("allow", "subscribe", "fleet/+/status", "", "ops"),               // named users, + wildcard
		mqRule("allow", "publish", "fleet/${username}/status", "authenticated"), // ${username}
		mqRule("allow", "all", "clients/%c/#", "all"),                           // %c, anonymous and users
		mqRule("allow", "subscribe", "public/#", "all"),                         // subscribe only
		mqRule("allow", "publish", "public/anon", "anonymous"),                  // anonymous only
		mqRule("deny", "subscribe", "secret/#", "all"),                          // deny that outranks root's #
		mqRule("allow", "publish", "secret/${clientid}", "", "ops"),             // ${clientid}
		mqRule("allow", "subscribe", "#", "", "root"),                           // everything root may see
		mqRule("allow", "subscribe", "$SYS/broker/version", "", "ops"),          // $SYS only by a literal rule
		mqRule("allow", "all", "shared/#", "authenticated"),                     // shared subscriptions
	}
}

func TestE2E_MQTTACLRuleForms(t *testing.T) {
	b := StartBroker(t, mqACL(mqRules()...), mqAnonymous)
	alice := mqUser5(t, b, "alice", "alice")
	ops := mqUser5(t, b, "ops", "ops")
	anon, ca := mqConnect5(t, b, mqLogin(b, "anon/dash", ""))
	if ca.ReasonCode != 0 {
		t.Fatalf("anonymous connack 0x%02x", ca.ReasonCode)
	}

	subs := []struct {
		who    *mq5
		name   string
		filter string
		ok     bool
	}{
		{alice, "alice", "devices/alice/#", true},
		{alice, "alice", "devices/alice/+/temp", true}, // inside devices/alice/#
		{alice, "alice", "devices/alice", true},        // "a/#" covers "a"
		{alice, "alice", "devices/bob/#", false},
		{alice, "alice", "devices/#", false}, // wider than devices/alice/#
		{alice, "alice", "devices/+/temp", false},
		{alice, "alice", "fleet/+/status", false}, // ops only
		{ops, "ops", "fleet/+/status", true},
		{ops, "ops", "fleet/x/status", true},
		{ops, "ops", "fleet/#", false},
		{alice, "alice", "secret/x", false}, // deny
		{alice, "alice", "public/#", true},
		{anon, "anon", "public/x", true},
		{anon, "anon", "devices/alice/#", false}, // %u never matches anonymous
		{anon, "anon", "clients/anon/dash/#", true},
		{alice, "alice", "clients/alice/#", true},
		{alice, "alice", "clients/bob/#", false},
		{alice, "alice", "#", false},
		{alice, "alice", "$SYS/broker/version", false},
		{ops, "ops", "$SYS/broker/version", true},
		{ops, "ops", "$SYS/#", false},
		{alice, "alice", "im/u/alice", true}, // the IM rules still hold
		{anon, "anon", "im/u/alice", false},
		{alice, "alice", "$share/g/shared/#", true},
		{alice, "alice", "$share/g/devices/bob/#", false},
		{alice, "alice", "$share/g/im/u/alice", false}, // IM streams are never shared
		{alice, "alice", "nothing/matches", false},     // no rule: denied
	}
	for _, s := range subs {
		rc := s.who.sub(0, paho5.SubscribeOptions{Topic: s.filter, QoS: 1})[0]
		if s.ok != (rc < 0x80) || (!s.ok && rc != 0x87) {
			t.Errorf("%s subscribe %q: reason 0x%02x, want allowed=%v (refusal 0x87)", s.name, s.filter, rc, s.ok)
		}
	}

	pubs := []struct {
		who   *mq5
		name  string
		topic string
		ok    bool
	}{
		{alice, "alice", "devices/alice/temp", true},
		{alice, "alice", "devices/alice/locked", false}, // first match: the deny
		{alice, "alice", "devices/bob/temp", false},
		{alice, "alice", "fleet/alice/status", true},
		{alice, "alice", "fleet/bob/status", false},
		{alice, "alice", "clients/alice/x", true},
		{alice, "alice", "public/x", false}, // subscribe-only rule
		{alice, "alice", "public/anon", false},
		{anon, "anon", "public/anon", true},
		{anon, "anon", "clients/anon/dash/x", true},
		{anon, "anon", "devices/x", false},
		{ops, "ops", "secret/ops", true},
		{ops, "ops", "secret/alice", false},
		{alice, "alice", "$SYS/broker/version", false}, // mochi would drop it without an ack
		{alice, "alice", "$foo", false},
		{anon, "anon", "im/send/c2c/alice", false},
		{alice, "alice", "im/u/bob", false},
	}
	for _, p := range pubs {
		for _, qos := range []byte{1, 2} {
			rc := p.who.pub(&paho5.Publish{Topic: p.topic, QoS: qos, Payload: []byte("x")})
			if p.ok != (rc < 0x80) || (!p.ok && rc != 0x87) {
				t.Errorf("%s publish %q QoS %d: reason 0x%02x, want allowed=%v (refusal 0x87)", p.name, p.topic, qos, rc, p.ok)
			}
		}
	}
}

// A denied publish is not delivered, and the read ACL holds on every
// delivery: root's "#" brings neither denied topics, nor $SYS, nor anyone's
// IM stream.
func TestE2E_MQTTACLDeliveries(t *testing.T) {
	b := StartBroker(t, mqACL(mqRules()...))
	root := mqUser5(t, b, "root", "root")
	root.mustSub(2, "#")
	dev := mqUser5(t, b, "alice:dev", "alice")
	dev.mustSub(1, "devices/alice/#")
	ops := mqUser5(t, b, "ops", "ops")

	// Denied publishes: refused, never delivered (checked below by order).
	if rc := dev.pub(&paho5.Publish{Topic: "devices/alice/locked", QoS: 2, Payload: []byte("no")}); rc != 0x87 {
		t.Fatalf("locked publish: 0x%02x", rc)
	}
	if rc := dev.pub(&paho5.Publish{Topic: "devices/bob/temp", QoS: 1, Payload: []byte("no")}); rc != 0x87 {
		t.Fatalf("foreign publish: 0x%02x", rc)
	}
	dev.pub(&paho5.Publish{Topic: "devices/bob/temp", QoS: 0, Payload: []byte("no")}) // QoS 0: silently dropped
	// Allowed to publish, but root may not read it (deny subscribe secret/#).
	ops.mustPub("secret/ops", "hidden")
	// An IM event for alice travels on im/u/alice, which root's # matches.
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	bob.Publish1("im/send/c2c/alice", Text("for alice only", Random()))
	if e := alice.NextEvent(); e.Msg.From_Account != "bob" {
		t.Fatalf("alice got %s", e.Raw)
	}
	// alice's copy was handed out in the same fan-out as root's would be.
	dev.mustPub("devices/alice/temp", "21")
	root.expect("devices/alice/temp", "21") // the first thing root ever receives
	dev.expect("devices/alice/temp", "21")

	// 3.1.1: a denied publish is acknowledged, not delivered, and reported.
	dev3 := mqUser3(t, b, "alice:dev3", "alice", nil)
	dev3.sub("im/u/alice/rpc", 1)
	dev3.pub("devices/alice/locked", 1, false, "no")
	if m := dev3.next(); m.Topic() != "im/u/alice/rpc" || !strings.Contains(string(m.Payload()), `"ErrorCode":20001`) {
		t.Fatalf("rpc reply %s %s", m.Topic(), m.Payload())
	}
	dev3.pub("devices/alice/temp", 2, false, "22")
	root.expect("devices/alice/temp", "22")
	if rc := dev3.sub("devices/bob/#", 1); rc != 0x80 {
		t.Fatalf("3.1.1 denied subscribe: 0x%02x", rc)
	}
	if rc := dev3.sub("devices/alice/#", 1); rc != 1 {
		t.Fatalf("3.1.1 allowed subscribe: 0x%02x", rc)
	}
	dev3.pub("devices/alice/x", 1, false, "23")
	dev3.expect("devices/alice/x", "23")
	if !dev3.IsConnected() {
		t.Fatal("3.1.1 client disconnected for a denied publish")
	}
}

// No rule can open im/: rules whose first level is im are refused by the
// configuration, and an allow-everything rule does not reach im/ topics.
func TestE2E_MQTTIMNamespaceClosed(t *testing.T) {
	if _, err := config.Parse([]byte("mqtt:\n  acl:\n    - {permission: allow, action: all, topic: im/#, who: all}\n")); err == nil ||
		!strings.Contains(err.Error(), "mqtt.acl[0].topic") {
		t.Fatalf("im/# rule accepted: %v", err)
	}
	b := StartBroker(t, mqACL(mqRule("allow", "all", "#", "all")), mqAnonymous)
	alice := b.Connect("alice", "alice")
	anon, _ := mqConnect5(t, b, mqLogin(b, "", ""))
	anon.mustSub(1, "#")
	for _, f := range []string{"im/u/alice", "im/#", "im/g/room", "+/u/alice"} {
		rc := anon.sub(0, paho5.SubscribeOptions{Topic: f, QoS: 1})[0]
		if want := f == "+/u/alice"; (rc < 0x80) != want {
			t.Errorf("anonymous subscribe %q: 0x%02x", f, rc)
		}
	}
	for _, topic := range []string{"im/send/c2c/alice", "im/u/alice", "im/req/sync"} {
		if rc := anon.pub(&paho5.Publish{Topic: topic, QoS: 1, Payload: []byte("{}")}); rc != 0x87 {
			t.Errorf("anonymous publish %q: 0x%02x", topic, rc)
		}
	}
	carol := mqUser5(t, b, "carol", "carol")
	for _, topic := range []string{"im/u/alice", "im/x"} {
		if rc := carol.pub(&paho5.Publish{Topic: topic, QoS: 1, Payload: []byte("{}")}); rc != 0x87 {
			t.Errorf("user publish %q: 0x%02x", topic, rc)
		}
	}
	if rc := carol.sub(0, paho5.SubscribeOptions{Topic: "im/u/alice", QoS: 1})[0]; rc != 0x87 {
		t.Errorf("foreign IM stream: 0x%02x", rc)
	}
	bob := b.Connect("bob", "bob")
	bob.Publish1("im/send/c2c/alice", Text("private", Random()))
	alice.NextEvent()
	carol.mustPub("plain/marker", "m")
	anon.expect("plain/marker", "m") // and nothing of im/u/alice, nor $SYS, before it
}

// Anonymous access: off by default; when on, anonymous ClientIDs live in
// anon/ and can never be a user's or a guest's; nobody takes over a session
// of another identity.
func TestE2E_MQTTAnonymousAndTakeover(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		b := StartBroker(t)
		_, ca := mqConnect5(t, b, mqLogin(b, "anon/x", ""))
		if ca.ReasonCode != 0x86 {
			t.Fatalf("anonymous CONNACK 0x%02x, want 0x86", ca.ReasonCode)
		}
		if _, rc := mqConnect3(t, b, "anon/y", "", nil); rc != 4 {
			t.Fatalf("3.1.1 anonymous return code %d, want 4", rc)
		}
	})

	b := StartBroker(t, mqAnonymous, mqACL(
		mqRule("allow", "all", "clients/%c/#", "all"),
		mqRule("allow", "all", "lobby/#", "anonymous"),
	), func(c *config.Config) { c.Guests.Enabled = true })
	cases := []struct {
		clientID string
		reason   byte
	}{
		{"anon/dash-1", 0},
		{"alice", 0x85}, // a user's ClientID
		{"alice:phone", 0x85},
		{"anon/", 0x85},
		{"anon/a/b", 0x85},
		{"anon/a+b", 0x85},
		{"dash", 0x85},
		{"guest/tv", 0}, // guests keep their own rules
	}
	for _, tc := range cases {
		_, ca := mqConnect5(t, b, mqLogin(b, tc.clientID, ""))
		if ca.ReasonCode != tc.reason {
			t.Errorf("anonymous ClientID %q: CONNACK 0x%02x, want 0x%02x", tc.clientID, ca.ReasonCode, tc.reason)
		}
	}
	// An empty ClientID is assigned one under anon/.
	c, ca := mqConnect5(t, b, mqLogin(b, "", ""))
	if ca.ReasonCode != 0 || ca.Properties == nil || !strings.HasPrefix(ca.Properties.AssignedClientID, "anon/") {
		t.Fatalf("assigned ClientID: 0x%02x %+v", ca.ReasonCode, ca.Properties)
	}
	id := ca.Properties.AssignedClientID
	c.mustSub(1, "clients/"+id+"/#") // %c is the assigned ClientID
	c.mustPub("clients/"+id+"/x", "self")
	c.expect("clients/"+id+"/x", "self")
	// A guest is not anonymous: no plain topics.
	guest, _ := mqConnect5(t, b, mqLogin(b, "guest/tv2", ""))
	if rc := guest.sub(0, paho5.SubscribeOptions{Topic: "lobby/#", QoS: 0})[0]; rc != 0x87 {
		t.Errorf("guest subscribe lobby/#: 0x%02x", rc)
	}

	// Takeover attempts across identities.
	alice := mqUser5(t, b, "alice", "alice")
	alice.mustSub(1, "clients/alice/#")
	dash := mqUser5(t, b, "anon/dash", "") // anonymous
	dash.mustSub(1, "lobby/#")
	for _, try := range []struct {
		name string
		cp   *paho5.Connect
	}{
		{"anonymous as alice", mqLogin(b, "alice", "")},
		{"mallory as alice", mqLogin(b, "alice", "mallory")},
		{"mallory as anon/dash", mqLogin(b, "anon/dash", "mallory")},
		{"alice as anon/dash", mqLogin(b, "anon/dash", "alice")},
	} {
		if _, ca := mqConnect5(t, b, try.cp); ca.ReasonCode != 0x85 {
			t.Errorf("%s: CONNACK 0x%02x, want 0x85", try.name, ca.ReasonCode)
		}
	}
	if _, rc := mqConnect3(t, b, "alice", "", nil); rc != 2 {
		t.Errorf("3.1.1 anonymous as alice: return code %d, want 2", rc)
	}
	// Both sessions are intact and still receive.
	alice.mustPub("clients/alice/x", "still alice")
	alice.expect("clients/alice/x", "still alice")
	dash.mustPub("lobby/x", "still dash")
	dash.expect("lobby/x", "still dash")
	select {
	case d := <-alice.disc:
		t.Fatalf("alice was disconnected: %+v", d)
	case d := <-dash.disc:
		t.Fatalf("anon/dash was disconnected: %+v", d)
	default:
	}

	// 3.1.1 anonymous: allowed publish delivered, denied one acked and dropped.
	a3 := mqUser3(t, b, "anon/old", "", nil)
	if rc := a3.sub("lobby/#", 1); rc != 1 {
		t.Fatalf("3.1.1 anonymous subscribe: 0x%02x", rc)
	}
	a3.pub("elsewhere/x", 1, false, "dropped")
	a3.pub("lobby/y", 1, false, "kept")
	a3.expect("lobby/y", "kept")
	if !a3.IsConnected() {
		t.Fatal("3.1.1 anonymous client disconnected for a denied publish")
	}
}

// A will must be a message its client could publish: mochi itself sends
// wills without any check.
func TestE2E_MQTTWillACL(t *testing.T) {
	b := StartBroker(t, mqAnonymous, mqACL(mqRule("allow", "all", "status/%c", "all")),
		func(c *config.Config) { c.Guests.Enabled = true })
	will := func(cp *paho5.Connect, topic string) *paho5.Connect {
		cp.WillMessage = &paho5.WillMessage{Topic: topic, QoS: 1, Payload: []byte("gone")}
		return cp
	}
	for _, tc := range []struct {
		name   string
		cp     *paho5.Connect
		reason byte
	}{
		{"own status", will(mqLogin(b, "alice", "alice"), "status/alice"), 0},
		{"into bob's IM stream", will(mqLogin(b, "alice:x", "alice"), "im/u/bob"), 0x87},
		{"IM send", will(mqLogin(b, "alice:y", "alice"), "im/send/c2c/bob"), 0x87},
		{"not allowed", will(mqLogin(b, "alice:z", "alice"), "status/bob"), 0x87},
		{"$SYS", will(mqLogin(b, "alice:s", "alice"), "$SYS/x"), 0x87},
		{"anonymous own", will(mqLogin(b, "anon/a", ""), "status/anon/a"), 0},
		{"guest", will(mqLogin(b, "guest/g", ""), "status/guest/g"), 0x87},
	} {
		_, ca := mqConnect5(t, b, tc.cp)
		if ca.ReasonCode != tc.reason {
			t.Errorf("%s: CONNACK 0x%02x, want 0x%02x", tc.name, ca.ReasonCode, tc.reason)
		}
	}
	if _, rc := mqConnect3(t, b, "alice:v3", "alice", func(o *paho.ClientOptions) { o.SetWill("im/u/bob", "x", 1, false) }); rc != 5 {
		t.Errorf("3.1.1 will into im/u/bob: return code %d, want 5", rc)
	}
}
