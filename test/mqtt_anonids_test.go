package test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/mqtttest"
)

func mqAnyIDs(c *config.Config) {
	c.MQTT.Anonymous = true
	c.MQTT.AnonymousClientIDs = config.AnonIDsAny
	c.MQTT.ACL = []config.ACLRule{mqRule("allow", "all", "plain/#", "all")}
}

func TestE2E_MQTTAnonOrdinaryClientIDs(t *testing.T) {
	b := StartBroker(t, mqAnyIDs)
	sub, ca := mqConnect5(t, b, mqLogin(b, "myclientid", ""))
	if ca.ReasonCode != 0 {
		t.Fatalf("anonymous myclientid: CONNACK 0x%02x", ca.ReasonCode)
	}
	sub.mustSub(1, "plain/#")
	pub, rc := mqConnect3(t, b, "mosq-Xq1r8bN0kPz4TfYw", "", nil) // mosquitto's default form
	if rc != 0 {
		t.Fatalf("anonymous mosq-…: return code %d", rc)
	}
	pub.pub("plain/x", 1, false, "hello")
	sub.expect("plain/x", "hello")
	if rc := sub.sub(0, paho5.SubscribeOptions{Topic: "im/u/myclientid", QoS: 1}); rc[0] < 0x80 {
		t.Errorf("anonymous subscribe to im/u/{its ClientID}: 0x%02x", rc[0])
	}
	if _, ca := mqConnect5(t, b, mqLogin(b, "guest/x", "")); ca.ReasonCode != 0x85 {
		t.Errorf("anonymous guest/x: CONNACK 0x%02x, want 0x85", ca.ReasonCode)
	}
}

func TestE2E_MQTTAnonOrdinaryClientIDsOff(t *testing.T) {
	b := StartBroker(t, mqAnonymous)
	if _, ca := mqConnect5(t, b, mqLogin(b, "myclientid", "")); ca.ReasonCode != 0x85 {
		t.Errorf("anonymous myclientid with anon ids: CONNACK 0x%02x, want 0x85", ca.ReasonCode)
	}
	if _, ca := mqConnect5(t, b, mqLogin(b, "anon/x", "")); ca.ReasonCode != 0 {
		t.Errorf("anon/x: CONNACK 0x%02x", ca.ReasonCode)
	}
}

// A user first: an anonymous client can neither take over nor block the
// user's connection or offline session.
func TestE2E_MQTTAnonCannotTakeUserClientID(t *testing.T) {
	b := StartBroker(t, mqAnyIDs)
	cp := mqLogin(b, "alice", "alice")
	cp.CleanStart = false
	cp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: paho5.Uint32(600)}
	alice, ca := mqConnect5(t, b, cp)
	if ca.ReasonCode != 0 {
		t.Fatalf("alice: 0x%02x", ca.ReasonCode)
	}
	alice.mustSub(1, "plain/#")
	for _, id := range []string{"alice"} {
		if _, ca := mqConnect5(t, b, mqLogin(b, id, "")); ca.ReasonCode != 0x85 {
			t.Fatalf("anonymous %s while alice is online: CONNACK 0x%02x, want 0x85", id, ca.ReasonCode)
		}
	}
	if _, rc := mqConnect3(t, b, "alice", "", nil); rc != 2 {
		t.Fatalf("anonymous 3.1.1 alice while alice is online: return code %d, want 2", rc)
	}
	pub := mqUser5(t, b, "bob", "bob")
	pub.mustPub("plain/1", "one")
	alice.expect("plain/1", "one") // still connected, still subscribed
	alice.close()
	// Her offline session is hers too.
	if _, ca := mqConnect5(t, b, mqLogin(b, "alice", "")); ca.ReasonCode != 0x85 {
		t.Fatalf("anonymous alice over her offline session: CONNACK 0x%02x, want 0x85", ca.ReasonCode)
	}
	pub.mustPub("plain/2", "two")
	alice, ca = mqConnect5(t, b, cp)
	if ca.ReasonCode != 0 || !ca.SessionPresent {
		t.Fatalf("alice back: 0x%02x present %v", ca.ReasonCode, ca.SessionPresent)
	}
	// plain/1 may come again first, marked DUP: paho acknowledges it
	// after its handler returns, which can be after the DISCONNECT, and an
	// unacknowledged QoS 1 message is resent when the session resumes
	// [MQTT-4.4.0-1].
	if m := alice.next(); m.Topic != "plain/1" || !m.Duplicate() {
		if m.Topic != "plain/2" || string(m.Payload) != "two" {
			t.Fatalf("got %s %q, want plain/2 \"two\"", m.Topic, m.Payload)
		}
	} else {
		alice.expect("plain/2", "two")
	}
	// Her other devices too.
	mqUser5(t, b, "alice:phone", "alice")
	if _, ca := mqConnect5(t, b, mqLogin(b, "alice:phone", "")); ca.ReasonCode != 0x85 {
		t.Fatalf("anonymous alice:phone: CONNACK 0x%02x, want 0x85", ca.ReasonCode)
	}
}

// An anonymous client first: the user's login still gets in, takes the
// ClientID over and inherits nothing of the anonymous session.
func TestE2E_MQTTUserTakesBackAnonClientID(t *testing.T) {
	b := StartBroker(t, mqAnyIDs)
	acp := mqLogin(b, "carol", "")
	acp.CleanStart = false
	acp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: paho5.Uint32(600)}
	anon, ca := mqConnect5(t, b, acp)
	if ca.ReasonCode != 0 {
		t.Fatalf("anonymous carol: 0x%02x", ca.ReasonCode)
	}
	anon.mustSub(1, "plain/#")

	cp := mqLogin(b, "carol", "carol")
	cp.CleanStart = false
	cp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: paho5.Uint32(600)}
	carol, ca := mqConnect5(t, b, cp)
	if ca.ReasonCode != 0 {
		t.Fatalf("carol with a valid UserSig: CONNACK 0x%02x", ca.ReasonCode)
	}
	if ca.SessionPresent {
		t.Errorf("carol inherited the anonymous session (Session Present 1)")
	}
	select {
	case <-anon.Done():
	case <-time.After(mqWait):
		t.Fatalf("the anonymous connection was not taken over")
	}
	mqUser5(t, b, "dave", "dave").mustPub("plain/x", "not for carol")
	select {
	case m := <-carol.msgs:
		t.Fatalf("carol got %s from the anonymous subscription", m.Topic)
	case <-time.After(300 * time.Millisecond):
	}
	// And the anonymous client cannot come back.
	if _, ca := mqConnect5(t, b, acp); ca.ReasonCode != 0x85 {
		t.Fatalf("anonymous carol again: CONNACK 0x%02x, want 0x85", ca.ReasonCode)
	}
	carol.mustSub(1, "plain/#")
	mqUser5(t, b, "erin", "erin").mustPub("plain/y", "for carol")
	carol.expect("plain/y", "for carol")
}

// Many racing anonymous and user CONNECTs for one ClientID: the user always
// gets in and ends up holding it.
func TestE2E_MQTTAnonUserClientIDRace(t *testing.T) {
	b := StartBroker(t, mqAnyIDs)
	for i := 0; i < 10; i++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := 0; j < 3; j++ {
				c, ca := mqConnect5(t, b, mqLogin(b, "frank", ""))
				if ca.ReasonCode == 0 {
					c.close()
				}
			}
		}()
		u, ca := mqConnect5(t, b, mqLogin(b, "frank", "frank"))
		if ca.ReasonCode != 0 {
			t.Fatalf("frank: CONNACK 0x%02x", ca.ReasonCode)
		}
		<-done
		select {
		case <-u.Done():
			t.Fatalf("round %d: frank was taken over", i)
		case <-time.After(50 * time.Millisecond):
		}
		u.close()
	}
}

// raw311 connects with MQTT 3.1.1 and keepalive 0 and returns the connection
// after a CONNACK with return code 0.
func raw311(t *testing.T, b *Broker, user, pass string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.MQTTAddr(), mqWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	flags := byte(0x02)
	var pl bytes.Buffer
	str := func(s string) { pl.WriteByte(byte(len(s) >> 8)); pl.WriteByte(byte(len(s))); pl.WriteString(s) }
	clientID := ""
	if user != "" {
		flags |= 0xC0
		clientID = user
	}
	str(clientID)
	if user != "" {
		str(user)
		str(pass)
	}
	vh := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, flags, 0, 0}, pl.Bytes()...)
	pkt := []byte{0x10}
	for n := len(vh); ; n >>= 7 { // remaining length, variable byte integer
		if n < 0x80 {
			pkt = append(pkt, byte(n))
			break
		}
		pkt = append(pkt, byte(n&0x7F|0x80))
	}
	if _, err := conn.Write(append(pkt, vh...)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	_ = conn.SetReadDeadline(time.Now().Add(mqWait))
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}
	return conn
}

// alive sends PINGREQ after silence and reports whether PINGRESP came back.
func alive(conn net.Conn, silence time.Duration) bool {
	time.Sleep(silence)
	if _, err := conn.Write([]byte{0xC0, 0}); err != nil {
		return false
	}
	resp := make([]byte, 2)
	_ = conn.SetReadDeadline(time.Now().Add(mqWait))
	_, err := io.ReadFull(conn, resp)
	return err == nil && resp[0] == 0xD0
}

func TestE2E_MQTTKeepaliveZero(t *testing.T) {
	b := StartBroker(t, mqAnonymous, func(c *config.Config) {
		c.MQTT.AllowKeepaliveZero = true
		c.MQTT.KeepaliveMin, c.MQTT.KeepaliveMax = 1, 60
	})
	// MQTT 5: no Server Keep Alive for an anonymous client, keepalive_min for a user.
	anon, ack := mqRawKA0(t, b, packets.Packet{Connect: packets.ConnectParams{Clean: true}})
	_ = anon
	if ack.ReasonCode != 0 || ack.Properties.ServerKeepAliveFlag {
		t.Errorf("anonymous keepalive 0: 0x%02x server keepalive %v %d", ack.ReasonCode, ack.Properties.ServerKeepAliveFlag, ack.Properties.ServerKeepAlive)
	}
	_, ack = mqRawKA0(t, b, mqRawLogin(b, "alice", "alice"))
	if ack.ReasonCode != 0 || !ack.Properties.ServerKeepAliveFlag || ack.Properties.ServerKeepAlive != 1 {
		t.Errorf("user keepalive 0: 0x%02x server keepalive %v %d, want 1", ack.ReasonCode, ack.Properties.ServerKeepAliveFlag, ack.Properties.ServerKeepAlive)
	}
	// MQTT 3.1.1: the anonymous client survives 3 s of silence (1.5 × 1 s
	// would end it); the user's connection ends.
	a3 := raw311(t, b, "", "")
	u3 := raw311(t, b, "bob", b.Sig("bob"))
	if !alive(a3, 3*time.Second) {
		t.Errorf("anonymous 3.1.1 keepalive 0 was timed out")
	}
	if alive(u3, 0) {
		t.Errorf("user 3.1.1 keepalive 0 was not clamped to keepalive_min")
	}
}

func TestE2E_MQTTKeepaliveZeroOff(t *testing.T) {
	b := StartBroker(t, mqAnonymous, func(c *config.Config) { c.MQTT.KeepaliveMin, c.MQTT.KeepaliveMax = 1, 60 })
	_, ack := mqRawKA0(t, b, packets.Packet{Connect: packets.ConnectParams{Clean: true}})
	if !ack.Properties.ServerKeepAliveFlag || ack.Properties.ServerKeepAlive != 1 {
		t.Errorf("anonymous keepalive 0 without allow_keepalive_zero: server keepalive %v %d, want 1", ack.Properties.ServerKeepAliveFlag, ack.Properties.ServerKeepAlive)
	}
}

// mqRawKA0 is mqDialRaw with keepalive 0 (mqDialRaw turns 0 into 30).
func mqRawKA0(t *testing.T, b *Broker, cp packets.Packet) (any, packets.Packet) {
	t.Helper()
	r := mqtttest.Dial(t, b.MQTTAddr(), true)
	cp.FixedHeader.Type = packets.Connect
	cp.Connect.ProtocolName = []byte("MQTT")
	cp.Connect.Keepalive = 0
	r.Send(cp)
	return r, r.Expect(packets.Connack)
}
