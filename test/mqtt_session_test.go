package test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
)

func u32(v uint32) *uint32 { return &v }
func u16(v uint16) *uint16 { return &v }

// mqWill is a CONNECT for user with a QoS 1 will "{clientID} gone" on
// will/{clientID}, a will delay and a session expiry (0: none).
func mqWill(b *Broker, clientID, user string, delay, expiry uint32) *paho5.Connect {
	cp := mqLogin(b, clientID, user)
	cp.WillMessage = &paho5.WillMessage{Topic: "will/" + clientID, QoS: 1, Payload: []byte(clientID + " gone")}
	cp.WillProperties = &paho5.WillProperties{User: paho5.UserProperties{{Key: "why", Value: "lost"}}}
	if delay > 0 {
		cp.WillProperties.WillDelayInterval = u32(delay)
	}
	if expiry > 0 {
		cp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: u32(expiry)}
	}
	return cp
}

func mqOffline(t *testing.T, b *Broker, clientID string) {
	t.Helper()
	waitFor(t, mqWait, clientID+" offline", func() bool {
		ok, up, _ := b.App.Broker.MQTTSession(clientID)
		return ok && !up
	})
}

func mqGone(t *testing.T, b *Broker, clientID string) {
	t.Helper()
	waitFor(t, mqWait, clientID+" session gone", func() bool {
		ok, _, _ := b.App.Broker.MQTTSession(clientID)
		return !ok
	})
}

func TestE2E_MQTTWills(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "will/#", "authenticated")))
	w := mqUser5(t, b, "watch", "watch")
	w.mustSub(2, "will/#")

	// A lost connection publishes its will, with its user properties.
	a, _ := mqConnect5(t, b, mqWill(b, "a", "a", 0, 0))
	a.drop()
	if m := w.expect("will/a", "a gone"); len(m.Properties.User) != 1 || m.Properties.User[0].Value != "lost" {
		t.Fatalf("will user properties: %+v", m.Properties)
	}
	// A normal DISCONNECT discards it [MQTT-3.1.2-10].
	c, _ := mqConnect5(t, b, mqWill(b, "c", "c", 0, 0))
	c.close()
	mqGone(t, b, "c")
	d, _ := mqConnect5(t, b, mqWill(b, "d", "d", 0, 0))
	d.drop()
	w.expect("will/d", "d gone") // and no will/c before it
	// 3.1.1 wills.
	v3 := mqUser3(t, b, "v3", "v3", func(o *paho.ClientOptions) { o.SetWill("will/v3", "v3 gone", 1, false) })
	v3.drop()
	w.expect("will/v3", "v3 gone")

	// Will Delay: not before the delay [MQTT-3.1.3-9].
	e, _ := mqConnect5(t, b, mqWill(b, "e", "e", 1, 30))
	start := time.Now()
	e.drop()
	w.expect("will/e", "e gone")
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("delayed will after %v, want >= 1s", waited)
	}
	// Reconnecting within the delay cancels it: g's will (delay 2, dropped
	// later) would come after f's (delay 1).
	f, _ := mqConnect5(t, b, mqWill(b, "f", "f", 1, 30))
	f.drop()
	mqOffline(t, b, "f")
	back := mqLogin(b, "f", "f")
	back.CleanStart = false
	back.Properties = &paho5.ConnectProperties{SessionExpiryInterval: u32(30)}
	if _, ca := mqConnect5(t, b, back); !ca.SessionPresent {
		t.Fatal("f: session not resumed")
	}
	g, _ := mqConnect5(t, b, mqWill(b, "g", "g", 2, 30))
	g.drop()
	w.expect("will/g", "g gone")

	// A will delay beyond the session expiry: the will goes when the session ends.
	h, _ := mqConnect5(t, b, mqWill(b, "h", "h", 300, 1))
	start = time.Now()
	h.drop()
	w.expect("will/h", "h gone")
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("will of a 1s session after %v", waited)
	}

	// A retained will is kept for later subscribers.
	rw := mqLogin(b, "i", "i")
	rw.WillMessage = &paho5.WillMessage{Topic: "will/i", QoS: 1, Retain: true, Payload: []byte("i gone")}
	i, _ := mqConnect5(t, b, rw)
	i.drop()
	w.expect("will/i", "i gone")
	late := mqUser5(t, b, "late", "late")
	late.mustSub(1, "will/i")
	if m := late.expect("will/i", "i gone"); !m.Retain {
		t.Fatal("retained will without the retain flag")
	}
}

func TestE2E_MQTTSessionExpiry(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "s/#", "authenticated")),
		func(c *config.Config) { c.MQTT.SessionExpiry = 5 * time.Second })
	p := mqUser5(t, b, "p", "p")
	login := func(clientID string, clean bool, expiry uint32) *paho5.Connect {
		cp := mqLogin(b, clientID, clientID)
		cp.CleanStart = clean
		cp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: u32(expiry)}
		return cp
	}

	// The server's maximum is told back in CONNACK.
	x, ca := mqConnect5(t, b, login("x", true, 3600))
	if ca.Properties == nil || ca.Properties.SessionExpiryInterval == nil || *ca.Properties.SessionExpiryInterval != 5 {
		t.Fatalf("CONNACK session expiry: %+v", ca.Properties)
	}
	x.close()

	// Within the expiry the session, its subscriptions and queue survive.
	s, _ := mqConnect5(t, b, login("s", true, 5))
	s.mustSub(1, "s/x")
	s.close()
	mqOffline(t, b, "s")
	p.mustPub("s/x", "queued")
	s2, ca := mqConnect5(t, b, login("s", false, 5))
	if !ca.SessionPresent {
		t.Fatal("session not present")
	}
	s2.expect("s/x", "queued")

	// After it, nothing of the session is left, not even its subscriptions.
	e, _ := mqConnect5(t, b, login("e", true, 1))
	e.mustSub(1, "s/e")
	e.close()
	mqGone(t, b, "e")
	e2, ca := mqConnect5(t, b, login("e", false, 0))
	if ca.SessionPresent {
		t.Fatal("expired session resumed")
	}
	p.mustPub("s/e", "stale")
	e2.mustSub(1, "s/marker")
	p.mustPub("s/marker", "m")
	e2.expect("s/marker", "m") // not "stale" first

	// A DISCONNECT may end the session at once.
	d, _ := mqConnect5(t, b, login("d", true, 5))
	d.mustSub(1, "s/d")
	_ = d.Disconnect(&paho5.Disconnect{Properties: &paho5.DisconnectProperties{SessionExpiryInterval: u32(0)}})
	mqGone(t, b, "d")
	if _, ca := mqConnect5(t, b, login("d", false, 5)); ca.SessionPresent {
		t.Fatal("session ended by DISCONNECT resumed")
	}
	// Clean Start discards a session.
	k, _ := mqConnect5(t, b, login("k", true, 5))
	k.mustSub(1, "s/k")
	k.close()
	mqOffline(t, b, "k")
	k2, ca := mqConnect5(t, b, login("k", true, 5))
	if ca.SessionPresent {
		t.Fatal("clean start kept the session")
	}
	p.mustPub("s/k", "old subscription")
	k2.mustSub(1, "s/marker")
	p.mustPub("s/marker", "m")
	k2.expect("s/marker", "m")
}

func TestE2E_MQTTMessageExpiry(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "e/#", "authenticated")))
	p := mqUser5(t, b, "p", "p")
	expiring := func(topic, payload string, retain bool, secs uint32) {
		t.Helper()
		pp := &paho5.Publish{Topic: topic, QoS: 2, Retain: retain, Payload: []byte(payload)}
		if secs > 0 {
			pp.Properties = &paho5.PublishProperties{MessageExpiry: u32(secs)}
		}
		if rc := p.pub(pp); rc != 0 {
			t.Fatalf("publish %s: 0x%02x", topic, rc)
		}
	}
	// The remaining lifetime travels with the message [MQTT-3.3.2-6].
	expiring("e/r", "r", true, 60)
	s := mqUser5(t, b, "s", "s")
	s.mustSub(1, "e/r")
	if m := s.expect("e/r", "r"); m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry > 60 || *m.Properties.MessageExpiry < 55 {
		t.Fatalf("message expiry %+v", m.Properties.MessageExpiry)
	}
	// An expired retained message is gone.
	expiring("e/short", "short", true, 1)
	waitFor(t, mqWait, "retained e/short expired", func() bool { return !b.App.Broker.HasRetained("e/short") })
	s.mustSub(1, "e/short", "e/marker")
	p.mustPub("e/marker", "m")
	s.expect("e/marker", "m")

	// An expired queued message is not delivered when the session resumes.
	login := func(clean bool) *paho5.Connect {
		cp := mqLogin(b, "q", "q")
		cp.CleanStart = clean
		cp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: u32(60)}
		return cp
	}
	q, _ := mqConnect5(t, b, login(true))
	q.mustSub(1, "e/q")
	q.close()
	mqOffline(t, b, "q")
	expiring("e/q", "short", false, 1)
	expiring("e/q", "long", false, 0)
	waitFor(t, mqWait, "queued e/q short expired", func() bool { _, _, n := b.App.Broker.MQTTSession("q"); return n == 1 })
	q2, _ := mqConnect5(t, b, login(false))
	q2.expect("e/q", "long")
	p.mustPub("e/q", "after")
	q2.expect("e/q", "after")
}

func TestE2E_MQTTReceiveMaximum(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "rm/#", "authenticated")),
		func(c *config.Config) { c.MQTT.ReceiveMaximum = 2 })
	// Inbound: a third unfinished QoS 2 publish exceeds the server's 2 [MQTT-3.3.4-7].
	r, ca := mqDialRaw(t, b, mqRawLogin(b, "r", "r"), true)
	if ca.Properties.ReceiveMaximum != 2 {
		t.Fatalf("CONNACK Receive Maximum %d", ca.Properties.ReceiveMaximum)
	}
	for id := uint16(1); id <= 3; id++ {
		r.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, PacketID: id, TopicName: "rm/x", Payload: []byte("x")})
	}
	r.Expect(packets.Pubrec)
	r.Expect(packets.Pubrec)
	if d := r.Expect(packets.Disconnect); d.ReasonCode != packets.ErrReceiveMaximum.Code {
		t.Fatalf("DISCONNECT 0x%02x, want 0x93", d.ReasonCode)
	}
	r.ClosedByServer()

	// Outbound: a client's own Receive Maximum of 2 holds back the rest
	// until it acks, and then it still gets every message (mochi alone
	// stalls after 4, see docs/mqtt.md).
	cp := mqLogin(b, "s", "s")
	cp.Properties = &paho5.ConnectProperties{ReceiveMaximum: u16(2)}
	s, _ := mqConnect5With(t, b, cp, func(cc *paho5.ClientConfig) { cc.EnableManualAcknowledgment = true })
	s.mustSub(1, "rm/#")
	p := mqUser5(t, b, "p", "p")
	var want, got []string
	for i := range 8 {
		payload := string(rune('a' + i))
		want = append(want, payload)
		p.mustPub("rm/x", payload) // all 8 are handed to s before it acks any
	}
	for range want {
		m := s.next()
		got = append(got, string(m.Payload))
		if err := s.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestE2E_MQTTMaximumPacketSize(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "ps/#", "authenticated")), func(c *config.Config) {
		c.MQTT.MaxPacketSize = 2048
		c.Messages.MaxPayloadBytes, c.Messages.MaxBytes = 1000, 900
	})
	p, ca := mqConnect5(t, b, mqLogin(b, "p", "p"))
	if ca.Properties == nil || ca.Properties.MaximumPacketSize == nil || *ca.Properties.MaximumPacketSize != 2048 {
		t.Fatalf("CONNACK Maximum Packet Size: %+v", ca.Properties)
	}
	// Inbound: a bigger packet ends the connection (mochi sends no DISCONNECT 0x95).
	r, _ := mqDialRaw(t, b, mqRawLogin(b, "r", "r"), false)
	r.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1, TopicName: "ps/x", Payload: bytes.Repeat([]byte("x"), 3000)})
	r.ClosedByServer()

	// Outbound: nothing bigger than the client's Maximum Packet Size [MQTT-3.1.2-24].
	cp := mqLogin(b, "s", "s")
	cp.Properties = &paho5.ConnectProperties{MaximumPacketSize: u32(512)}
	s, _ := mqConnect5(t, b, cp)
	s.mustSub(1, "ps/#")
	p.mustPub("ps/big", strings.Repeat("b", 1000))
	p.mustPub("ps/small", "s")
	s.expect("ps/small", "s")
}

func TestE2E_MQTTServerKeepalive(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.MQTT.KeepaliveMin, c.MQTT.KeepaliveMax = 5, 20 })
	for _, tc := range []struct{ asked, told uint16 }{{60, 20}, {0, 5}, {3, 5}, {10, 0}} {
		cp := mqLogin(b, "alice", "alice")
		cp.KeepAlive = tc.asked
		c, ca := mqConnect5(t, b, cp)
		var told uint16
		if ca.Properties != nil && ca.Properties.ServerKeepAlive != nil {
			told = *ca.Properties.ServerKeepAlive
		}
		if ca.ReasonCode != 0 || told != tc.told {
			t.Errorf("keepalive %d: CONNACK 0x%02x Server Keep Alive %d, want %d", tc.asked, ca.ReasonCode, told, tc.told)
		}
		c.close()
	}
}

func TestE2E_MQTTObscureNotAuthorized(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "ok/#", "authenticated")),
		func(c *config.Config) { c.MQTT.ObscureNotAuthorized = true })
	c := mqUser5(t, b, "alice", "alice")
	ctx, cancel := context.WithTimeout(context.Background(), mqWait)
	defer cancel()
	// Each refusal says 0x80 and no reason string (which would tell what
	// obscuring hides).
	for _, f := range []string{"no/x", "im/u/bob"} {
		sa, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: f, QoS: 1}}})
		if sa == nil || sa.Reasons[0] != 0x80 || sa.Properties != nil && sa.Properties.ReasonString != "" {
			t.Errorf("subscribe %s: %+v %v, want 0x80 and no reason string", f, sa, err)
		}
	}
	for _, tc := range []struct {
		topic string
		qos   byte
	}{{"no/x", 1}, {"no/x", 2}, {"im/u/bob", 1}, {"$SYS/x", 1}, {"$x", 1}} {
		pr, err := c.Publish(ctx, &paho5.Publish{Topic: tc.topic, QoS: tc.qos, Payload: []byte("x")})
		if pr == nil || pr.ReasonCode != 0x80 || pr.Properties != nil && pr.Properties.ReasonString != "" {
			t.Errorf("publish %s QoS %d: %+v %v, want 0x80 and no reason string", tc.topic, tc.qos, pr, err)
		}
	}
	cp := mqLogin(b, "alice:2", "alice")
	cp.Password = []byte(b.Sig("bob"))
	if _, ca := mqConnect5(t, b, cp); ca.ReasonCode != 0x80 || ca.Properties != nil && ca.Properties.ReasonString != "" {
		t.Errorf("another user's UserSig: CONNACK 0x%02x %+v, want 0x80 and no reason string", ca.ReasonCode, ca.Properties)
	}
	if rc := c.pub(&paho5.Publish{Topic: "ok/x", QoS: 1, Payload: []byte("x")}); rc != 0 {
		t.Errorf("allowed publish: 0x%02x", rc)
	}
}

// A client PUBLISH to $SYS is refused with an acknowledgement (mochi alone
// drops it without one).
func TestE2E_MQTTSysPublishRefused(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	alice.Publish1("$SYS/broker/version", "x")
	if r := alice.NextReply(); r["ErrorCode"].(float64) != 20001 || r["Topic"] != "$SYS/broker/version" {
		t.Fatalf("rpc reply %v", r)
	}
	c := mqUser5(t, b, "bob", "bob")
	for _, qos := range []byte{1, 2} {
		if rc := c.pub(&paho5.Publish{Topic: "$SYS/x", QoS: qos, Payload: []byte("x")}); rc != 0x87 {
			t.Errorf("QoS %d: 0x%02x", qos, rc)
		}
	}
}

func TestMQTT_ConfigRulesValidated(t *testing.T) {
	_, err := config.Parse([]byte(`
mqtt:
  acl:
    - {permission: allow, action: all, topic: "devices/%u/#", who: authenticated}
    - {permission: maybe, action: all, topic: a, who: all}
    - {permission: allow, action: read, topic: a, who: all}
    - {permission: allow, action: all, topic: "im/u/#", who: all}
    - {permission: allow, action: all, topic: "a/#/b", who: all}
    - {permission: allow, action: all, topic: "a/b+", who: all}
    - {permission: allow, action: all, topic: "a/%x", who: all}
    - {permission: allow, action: publish, topic: "$SYS/#", who: all}
    - {permission: allow, action: subscribe, topic: "$share/g/a", who: all}
    - {permission: allow, action: all, topic: a, who: all, users: [bob]}
    - {permission: allow, action: all, topic: a}
    - {permission: allow, action: all, topic: a, users: ["a/b"]}
    - {permission: allow, action: all, topic: "x/%u", who: anonymous}
    - {permission: allow, action: all, topic: "", who: everyone}
`))
	if err == nil {
		t.Fatal("bad rules accepted")
	}
	for _, want := range []string{
		"mqtt.acl[1].permission", "mqtt.acl[2].action", "mqtt.acl[3].topic", "mqtt.acl[4].topic", "mqtt.acl[5].topic",
		"mqtt.acl[6].topic", "mqtt.acl[7].topic", "mqtt.acl[8].topic", "mqtt.acl[9]", "mqtt.acl[10]",
		"mqtt.acl[11].users[0]", "mqtt.acl[12].topic", "mqtt.acl[13].topic", "mqtt.acl[13].who",
	} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "mqtt.acl[0]") {
		t.Errorf("a good rule was refused:\n%v", err)
	}
}
