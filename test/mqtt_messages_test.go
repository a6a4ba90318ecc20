package test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/imbroker/imbroker/internal/mqtttest"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestE2E_MQTTRetained(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "r/#", "authenticated")))
	p := mqUser5(t, b, "p", "p")
	retain := func(topic, payload string) {
		t.Helper()
		if rc := p.pub(&paho5.Publish{Topic: topic, QoS: 2, Retain: true, Payload: []byte(payload)}); rc != 0 {
			t.Fatalf("retain %s: 0x%02x", topic, rc)
		}
	}
	retain("r/a", "1")
	retain("r/b", "b")

	s1 := mqUser5(t, b, "s1", "s1")
	s1.mustSub(1, "r/a")
	if m := s1.expect("r/a", "1"); !m.Retain {
		t.Fatal("retained message delivered on subscribe without the retain flag")
	}
	retain("r/a", "2") // replaces it; live copies carry retain=0 [MQTT-3.3.1-12]
	if m := s1.expect("r/a", "2"); m.Retain {
		t.Fatal("live copy of a retained publish has the retain flag")
	}
	s2 := mqUser5(t, b, "s2", "s2")
	s2.mustSub(1, "r/+")
	got := map[string]string{}
	for range 2 {
		m := s2.next()
		if !m.Retain {
			t.Fatalf("%s without retain flag", m.Topic)
		}
		got[m.Topic] = string(m.Payload)
	}
	if got["r/a"] != "2" || got["r/b"] != "b" {
		t.Fatalf("retained on r/+: %v", got)
	}

	// Retain As Published keeps the flag on live copies; Retain Handling 2
	// sends nothing at subscribe.
	s3 := mqUser5(t, b, "s3", "s3")
	s3.sub(0, paho5.SubscribeOptions{Topic: "r/a", QoS: 1, RetainAsPublished: true})
	s3.expect("r/a", "2")
	s3.sub(0, paho5.SubscribeOptions{Topic: "r/b", QoS: 1, RetainHandling: 2})
	retain("r/a", "3")
	if m := s3.expect("r/a", "3"); !m.Retain {
		t.Fatal("Retain As Published: flag lost")
	}
	p.mustPub("r/b", "live")
	s3.expect("r/b", "live") // and not the retained "b" before it
	s1.expect("r/a", "3")

	// An empty retained payload clears it; it is still delivered live.
	retain("r/a", "")
	s1.expect("r/a", "")
	if b.App.Broker.HasRetained("r/a") || !b.App.Broker.HasRetained("r/b") {
		t.Fatal("retained store wrong after clearing r/a")
	}
	s4 := mqUser5(t, b, "s4", "s4")
	s4.mustSub(1, "r/a", "r/marker")
	p.mustPub("r/marker", "m")
	s4.expect("r/marker", "m") // no retained r/a first

	// 3.1.1 gets retained messages too; a refused retained publish is not kept.
	v3 := mqUser3(t, b, "v3", "v3", nil)
	v3.sub("r/b", 1)
	if m := v3.expect("r/b", "b"); !m.Retained() {
		t.Fatal("3.1.1: retained flag missing")
	}
	if rc := p.pub(&paho5.Publish{Topic: "x/r", QoS: 1, Retain: true, Payload: []byte("no")}); rc != 0x87 {
		t.Fatalf("refused retained publish: 0x%02x", rc)
	}
	v3.pub("x/r3", 1, true, "no")
	v3.pub("r/v3", 1, true, "yes")
	if b.App.Broker.HasRetained("x/r") || b.App.Broker.HasRetained("x/r3") || !b.App.Broker.HasRetained("r/v3") {
		t.Fatal("a refused retained publish was stored, or an allowed one was not")
	}
}

func TestE2E_MQTTWildcardsAndDollarTopics(t *testing.T) {
	b := StartBroker(t, mqACL(
		mqRule("allow", "subscribe", "#", "", "root"),
		mqRule("allow", "subscribe", "$SYS/#", "", "root"),
		mqRule("allow", "all", "w/#", "authenticated"),
	))
	p := mqUser5(t, b, "p", "p")
	root := mqUser5(t, b, "root", "root")
	root.mustSub(0, "#", "+/broker/version", "+/+/+")
	p.mustPub("w/marker", "0")
	// mochi's retained $SYS messages exist since start; none matched.
	root.expect("w/marker", "0")
	sys := mqUser5(t, b, "root:sys", "root")
	sys.mustSub(0, "$SYS/broker/version")
	if m := sys.next(); m.Topic != "$SYS/broker/version" || !m.Retain {
		t.Fatalf("$SYS subscription got %s retain=%v", m.Topic, m.Retain)
	}

	one := mqUser5(t, b, "one", "one")
	one.mustSub(1, "w/+")
	deep := mqUser5(t, b, "deep", "deep")
	deep.mustSub(1, "w/a/#")
	mid := mqUser5(t, b, "mid", "mid")
	mid.mustSub(1, "w/+/c")
	p.mustPub("w/a/b/c", "deep")
	p.mustPub("w/a", "one")
	p.mustPub("w//c", "empty level")
	one.expect("w/a", "one") // not w/a/b/c
	deep.expect("w/a/b/c", "deep")
	deep.expect("w/a", "one") // "w/a/#" also matches its parent [MQTT-4.7.1-2]
	mid.expect("w//c", "empty level")
	root.expect("w/a/b/c", "deep")
}

// Overlapping subscriptions of one client: one copy, at the highest QoS,
// carrying every matching subscription identifier [MQTT-3.3.4-2]
// [MQTT-3.3.4-3].
func TestE2E_MQTTOverlappingSubscriptions(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "o/#", "authenticated")))
	r := mqDialOK(t, b, mqRawLogin(b, "sub", "sub"))
	for i, s := range []struct {
		id     int
		filter string
		qos    byte
	}{{1, "o/a/+", 0}, {2, "o/#", 2}, {0, "o/a/b", 1}} {
		if rc := r.Subscribe(uint16(i+1), s.id, packets.Subscription{Filter: s.filter, Qos: s.qos}); rc[0] != s.qos {
			t.Fatalf("subscribe %s: %v", s.filter, rc)
		}
	}
	p := mqUser5(t, b, "p", "p")
	p.mustPub("o/a/b", "x")
	pk := r.Expect(packets.Publish)
	if pk.TopicName != "o/a/b" || pk.FixedHeader.Qos != 2 || !slices.Equal(pk.Properties.SubscriptionIdentifier, []int{1, 2}) {
		t.Fatalf("got %s QoS %d ids %v", pk.TopicName, pk.FixedHeader.Qos, pk.Properties.SubscriptionIdentifier)
	}
	p.mustPub("o/z", "marker")
	if pk := r.Expect(packets.Publish); pk.TopicName != "o/z" || !slices.Equal(pk.Properties.SubscriptionIdentifier, []int{2}) {
		t.Fatalf("after the overlap: %s ids %v (a second copy?)", pk.TopicName, pk.Properties.SubscriptionIdentifier)
	}

	v3 := mqUser3(t, b, "v3", "v3", nil)
	v3.sub("o/#", 1)
	v3.sub("o/a/+", 2)
	p.mustPub("o/a/c", "y")
	if m := v3.expect("o/a/c", "y"); m.Qos() != 2 {
		t.Fatalf("3.1.1 overlap QoS %d", m.Qos())
	}
	p.mustPub("o/z", "marker")
	v3.expect("o/z", "marker")
}

func TestE2E_MQTTQoS(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "q/#", "authenticated")))
	s2 := mqUser5(t, b, "s2", "s2")
	s2.mustSub(2, "q/#")
	s1 := mqUser5(t, b, "s1", "s1")
	s1.mustSub(1, "q/#")
	v3 := mqUser3(t, b, "v3", "v3", nil)
	v3.sub("q/#", 2)
	p := mqUser5(t, b, "p", "p")
	for qos := range byte(3) {
		if rc := p.pub(&paho5.Publish{Topic: fmt.Sprintf("q/%d", qos), QoS: qos, Payload: []byte{'0' + qos}}); rc != 0 {
			t.Fatalf("publish QoS %d: 0x%02x", qos, rc)
		}
	}
	for qos := range byte(3) {
		topic, payload := fmt.Sprintf("q/%d", qos), string([]byte{'0' + qos})
		if m := s2.expect(topic, payload); m.QoS != qos {
			t.Errorf("QoS 2 subscriber got QoS %d for a QoS %d publish", m.QoS, qos)
		}
		if m := s1.expect(topic, payload); m.QoS != min(qos, 1) {
			t.Errorf("QoS 1 subscriber got QoS %d for a QoS %d publish", m.QoS, qos)
		}
		if m := v3.expect(topic, payload); m.Qos() != qos {
			t.Errorf("3.1.1 QoS 2 subscriber got QoS %d for a QoS %d publish", m.Qos(), qos)
		}
	}

	// A 3.1.1 persistent session (clean session 0) keeps QoS 1 messages
	// while offline; QoS 0 ones are not queued.
	keep := func(o *paho.ClientOptions) { o.SetCleanSession(false) }
	off := mqUser3(t, b, "off", "off", keep)
	off.sub("q/#", 1)
	off.Disconnect(250)
	waitFor(t, mqWait, "session of off disconnected", func() bool {
		ok, up, _ := b.App.Broker.MQTTSession("off")
		return ok && !up
	})
	// The QoS 0 publish goes first: the acked QoS 1 publish after it on the
	// same connection proves the broker handled both before "off" returns.
	p.pub(&paho5.Publish{Topic: "q/lost", QoS: 0, Payload: []byte("0")})
	p.mustPub("q/queued", "1")
	back := mqUser3(t, b, "off", "off", keep)
	back.expect("q/queued", "1")
	p.mustPub("q/after", "2")
	back.expect("q/after", "2")
}

func TestE2E_MQTTPropertiesAndRequestResponse(t *testing.T) {
	b := StartBroker(t, mqACL(
		mqRule("allow", "all", "svc/#", "authenticated"),
		mqRule("allow", "publish", "reply/#", "", "svc"),
		mqRule("allow", "subscribe", "reply/%u/#", "authenticated"),
	))
	svc := mqUser5(t, b, "svc", "svc")
	svc.mustSub(1, "svc/req")
	cli := mqUser5(t, b, "cli", "cli")
	cli.mustSub(1, "reply/cli/#")
	old := mqUser3(t, b, "old", "old", nil)
	old.sub("svc/req", 1)
	raw, _ := mqDialRaw(t, b, func() packets.Packet {
		cp := mqRawLogin(b, "raw", "raw")
		cp.Properties.RequestProblemInfo, cp.Properties.RequestProblemInfoFlag = 0, true
		return cp
	}(), false)
	raw.Subscribe(1, 0, packets.Subscription{Filter: "svc/req", Qos: 1})

	pf := byte(1)
	users := paho5.UserProperties{{Key: "k", Value: "v1"}, {Key: "k", Value: "v2"}, {Key: "trace", Value: "abc"}}
	props := &paho5.PublishProperties{PayloadFormat: &pf, ContentType: "application/json",
		ResponseTopic: "reply/cli/1", CorrelationData: []byte{0, 1, 2}, User: users}
	for qos := byte(1); qos <= 2; qos++ {
		pr, err := cli.Publish(t.Context(), &paho5.Publish{Topic: "svc/req", QoS: qos, Payload: []byte(`{"q":1}`), Properties: props})
		if err != nil || pr.ReasonCode != 0 {
			t.Fatalf("request QoS %d: %v %+v", qos, err, pr)
		}
		if len(pr.Properties.User) != 0 {
			t.Fatalf("QoS %d ack echoes the PUBLISH's user properties: %v", qos, pr.Properties.User)
		}
		req := svc.expect("svc/req", `{"q":1}`)
		rp := req.Properties
		if rp == nil || rp.PayloadFormat == nil || *rp.PayloadFormat != 1 || rp.ContentType != "application/json" ||
			rp.ResponseTopic != "reply/cli/1" || !bytes.Equal(rp.CorrelationData, []byte{0, 1, 2}) || !slices.Equal(rp.User, users) {
			t.Fatalf("properties lost: %+v", rp)
		}
		old.expect("svc/req", `{"q":1}`) // 3.1.1: the payload alone
		if pk := raw.Expect(packets.Publish); len(pk.Properties.User) != 3 {
			// Request Problem Information 0 forbids user properties on acks,
			// not on PUBLISH [MQTT-3.1.2-29].
			t.Fatalf("user properties dropped for Request Problem Information 0: %v", pk.Properties.User)
		}
		svc.mustPub(rp.ResponseTopic, "answer") // needs mqtt.acl like any publish
		ans := cli.next()
		if ans.Topic != "reply/cli/1" || string(ans.Payload) != "answer" {
			t.Fatalf("reply %s %q", ans.Topic, ans.Payload)
		}
	}
	// With correlation data, a reply is matched to its request.
	svc.pub(&paho5.Publish{Topic: "reply/cli/2", QoS: 1, Payload: []byte("ok"),
		Properties: &paho5.PublishProperties{CorrelationData: []byte("req-2")}})
	if ans := cli.expect("reply/cli/2", "ok"); string(ans.Properties.CorrelationData) != "req-2" {
		t.Fatalf("correlation data %q", ans.Properties.CorrelationData)
	}
	// A SUBACK does not echo the SUBSCRIBE's user properties.
	sa, err := cli.Subscribe(t.Context(), &paho5.Subscribe{
		Subscriptions: []paho5.SubscribeOptions{{Topic: "svc/x", QoS: 0}},
		Properties:    &paho5.SubscribeProperties{User: paho5.UserProperties{{Key: "a", Value: "b"}}},
	})
	if err != nil || sa.Properties != nil && len(sa.Properties.User) != 0 {
		t.Fatalf("suback %v %+v", err, sa.Properties)
	}
}

func TestE2E_MQTTSharedSubscriptions(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "jobs/#", "authenticated"), mqRule("allow", "all", "ctl/#", "authenticated")))
	w1 := mqUser5(t, b, "w1", "w1")
	w1.mustSub(1, "$share/g/jobs/#", "ctl/end")
	w2 := mqUser3(t, b, "w2", "w2", nil)
	w2.sub("$share/g/jobs/#", 1)
	w2.sub("ctl/end", 1)
	audit := mqUser5(t, b, "audit", "audit") // another group: gets every job
	audit.mustSub(1, "$SHARE/h/jobs/#", "ctl/end")
	p := mqUser5(t, b, "p", "p")
	const n = 20
	for i := range n {
		p.mustPub(fmt.Sprintf("jobs/%d", i), "j")
	}
	p.mustPub("ctl/end", "end")
	collect := func(next func() (string, string)) []string {
		var jobs []string
		for {
			topic, _ := next()
			if topic == "ctl/end" {
				return jobs
			}
			jobs = append(jobs, topic)
		}
	}
	j1 := collect(func() (string, string) { m := w1.next(); return m.Topic, string(m.Payload) })
	j2 := collect(func() (string, string) { m := w2.next(); return m.Topic(), string(m.Payload()) })
	all := collect(func() (string, string) { m := audit.next(); return m.Topic, string(m.Payload) })
	both := append(slices.Clone(j1), j2...)
	slices.Sort(both)
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("jobs/%d", i)
	}
	slices.Sort(want)
	if !slices.Equal(both, want) {
		t.Fatalf("group g got %d jobs (w1 %v, w2 %v), want each of %d once", len(both), j1, j2, n)
	}
	if len(all) != n {
		t.Fatalf("group h got %d jobs, want %d", len(all), n)
	}
	for _, f := range []string{"$share/g/im/u/w1", "$share/g/secret/#", "$share/g/#"} {
		if rc := w1.sub(0, paho5.SubscribeOptions{Topic: f, QoS: 1})[0]; rc != 0x87 {
			t.Errorf("subscribe %s: 0x%02x", f, rc)
		}
	}
}

func TestE2E_MQTTTopicAliases(t *testing.T) {
	b := StartBroker(t, mqACL(mqRule("allow", "all", "a/#", "authenticated")))
	sub := mqUser5(t, b, "sub", "sub")
	sub.mustSub(1, "a/#")
	p, ca := mqConnect5(t, b, mqLogin(b, "p", "p"))
	if ca.Properties == nil || ca.Properties.TopicAliasMaximum == nil || *ca.Properties.TopicAliasMaximum != 16 {
		t.Fatalf("CONNACK Topic Alias Maximum: %+v", ca.Properties)
	}
	alias := func(n uint16) *paho5.PublishProperties { return &paho5.PublishProperties{TopicAlias: &n} }

	// Inbound: the ACL sees the topic an alias stands for.
	for _, s := range []struct {
		topic   string
		alias   uint16
		payload string
		rc      byte
	}{
		{"a/x", 1, "1", 0},
		{"", 1, "2", 0},
		{"b/denied", 2, "3", 0x87},
		{"", 2, "4", 0x87},
		{"a/y", 1, "5", 0}, // remapped
		{"", 1, "6", 0},
	} {
		if rc := p.pub(&paho5.Publish{Topic: s.topic, QoS: 1, Payload: []byte(s.payload), Properties: alias(s.alias)}); rc != s.rc {
			t.Fatalf("publish %q alias %d: 0x%02x, want 0x%02x", s.topic, s.alias, rc, s.rc)
		}
	}
	for _, w := range [][2]string{{"a/x", "1"}, {"a/x", "2"}, {"a/y", "5"}, {"a/y", "6"}} {
		if m := sub.expect(w[0], w[1]); m.Properties != nil && m.Properties.TopicAlias != nil {
			t.Fatalf("alias sent to a client that allows none: %+v", m.Properties)
		}
	}

	// An alias never set is a protocol error; one above the maximum is invalid.
	for _, tc := range []struct {
		topic  string
		alias  uint16
		reason byte
	}{{"", 5, 0x82}, {"a/z", 17, 0x94}} {
		r, _ := mqDialRaw(t, b, mqRawLogin(b, "r", "r"), false)
		r.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1, TopicName: tc.topic,
			Payload: []byte("x"), Properties: packets.Properties{TopicAlias: tc.alias, TopicAliasFlag: true}})
		if d := r.Expect(packets.Disconnect); d.ReasonCode != tc.reason {
			t.Fatalf("alias %d: DISCONNECT 0x%02x, want 0x%02x", tc.alias, d.ReasonCode, tc.reason)
		}
		r.ClosedByServer()
	}

	// Outbound: up to the client's Topic Alias Maximum; the topic is left out
	// once the alias is known.
	login := func(clientID string, clean bool) packets.Packet {
		cp := mqRawLogin(b, clientID, clientID)
		cp.Connect.Clean = clean
		cp.Properties.TopicAliasMaximum = 2
		cp.Properties.SessionExpiryInterval, cp.Properties.SessionExpiryIntervalFlag = 60, true
		return cp
	}
	o, _ := mqDialRaw(t, b, login("o", true), false)
	o.Subscribe(1, 0, packets.Subscription{Filter: "a/#", Qos: 1})
	type seen struct {
		topic string
		alias uint16
	}
	expectAlias := func(r *mqtttest.Conn, want seen) {
		t.Helper()
		pk := r.Expect(packets.Publish)
		if got := (seen{pk.TopicName, pk.Properties.TopicAlias}); got != want {
			t.Fatalf("got topic %q alias %d, want %q alias %d", got.topic, got.alias, want.topic, want.alias)
		}
	}
	for _, s := range []struct {
		topic string
		want  seen
	}{
		{"a/1", seen{"a/1", 1}}, {"a/1", seen{"", 1}}, {"a/2", seen{"a/2", 2}},
		{"a/3", seen{"a/3", 0}}, // no alias left
		{"a/2", seen{"", 2}},
	} {
		p.mustPub(s.topic, "x")
		expectAlias(o, s.want)
	}
	// Queued messages of a resumed session come with their topic or with an
	// alias set on the new connection: aliases never outlive a connection
	// (mochi's own could, #500). The first one sets alias 1 again.
	o.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	o.ClosedByServer()
	waitFor(t, mqWait, "o offline", func() bool { ok, up, _ := b.App.Broker.MQTTSession("o"); return ok && !up })
	p.mustPub("a/1", "q1")
	p.mustPub("a/1", "q2")
	o2, ca2 := mqDialRaw(t, b, login("o", false), false)
	if !ca2.SessionPresent {
		t.Fatal("session not resumed")
	}
	var resent []string
	for i, want := range []seen{{"a/1", 1}, {"", 1}} {
		pk := o2.Expect(packets.Publish)
		if got := (seen{pk.TopicName, pk.Properties.TopicAlias}); got != want {
			t.Fatalf("resent %d: topic %q alias %d, want %q alias %d", i, got.topic, got.alias, want.topic, want.alias)
		}
		resent = append(resent, string(pk.Payload))
	}
	slices.Sort(resent)
	if strings.Join(resent, ",") != "q1,q2" {
		t.Fatalf("resent %v", resent)
	}
	p.mustPub("a/1", "live")
	expectAlias(o2, seen{"", 1})
	p.mustPub("a/2", "live")
	expectAlias(o2, seen{"a/2", 2})
}
