package test

// Helpers for the plain MQTT tests (mqtt_*_test.go, docs/mqtt.md): MQTT 5
// clients (paho.golang), MQTT 3.1.1 clients (paho.mqtt.golang), and a raw
// MQTT 5 connection (internal/mqtttest, built on mochi's packet codec) for
// what the libraries hide or refuse to do (several subscription identifiers
// on one PUBLISH, exceeding the server's Receive Maximum, oversize packets,
// bad aliases).

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/mqtttest"
)

const mqWait = 5 * time.Second

// mqRule builds one mqtt.acl rule; who is anonymous, authenticated, all, or
// a comma-free list of UserIDs after "users:".
func mqRule(permission, action, topic, who string, users ...string) config.ACLRule {
	return config.ACLRule{Permission: permission, Action: action, Topic: topic, Who: who, Users: users}
}

// mqACL sets mqtt.acl (and optionally other settings) on the harness config.
func mqACL(rules ...config.ACLRule) func(*config.Config) {
	return func(c *config.Config) { c.MQTT.ACL = rules }
}

func mqAnonymous(c *config.Config) { c.MQTT.Anonymous = true }

// mq5 is an MQTT 5 client that collects what it receives.
type mq5 struct {
	*paho5.Client
	t    testing.TB
	conn net.Conn
	msgs chan *paho5.Publish
	disc chan *paho5.Disconnect
	up   bool // CONNACK was a success: Done() is valid
}

// mqConnect5 connects an MQTT 5 client with exactly cp (CleanStart,
// KeepAlive and Properties as given) and returns it with the CONNACK, which
// may be a refusal.
func mqConnect5(t testing.TB, b *Broker, cp *paho5.Connect) (*mq5, *paho5.Connack) {
	t.Helper()
	return mqConnect5With(t, b, cp, nil)
}

// mqConnect5With is mqConnect5 with a hook to adjust the client config.
func mqConnect5With(t testing.TB, b *Broker, cp *paho5.Connect, mod func(*paho5.ClientConfig)) (*mq5, *paho5.Connack) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.MQTTAddr(), mqWait)
	if err != nil {
		t.Fatal(err)
	}
	c := &mq5{t: t, conn: conn, msgs: make(chan *paho5.Publish, 1000), disc: make(chan *paho5.Disconnect, 1)}
	cc := paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			c.msgs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho5.Disconnect) {
			select {
			case c.disc <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	}
	if mod != nil {
		mod(&cc)
	}
	c.Client = paho5.NewClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), mqWait)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil && ca == nil {
		conn.Close()
		t.Fatalf("connect %s: %v", cp.ClientID, err)
	}
	c.up = err == nil
	t.Cleanup(c.close)
	return c, ca
}

// mqUser5 connects user with a valid UserSig as clientID, clean start.
func mqUser5(t testing.TB, b *Broker, clientID, user string) *mq5 {
	t.Helper()
	c, ca := mqConnect5(t, b, mqLogin(b, clientID, user))
	if ca.ReasonCode != 0 {
		t.Fatalf("connect %s: CONNACK 0x%02x %+v", clientID, ca.ReasonCode, ca.Properties)
	}
	return c
}

// mqLogin is a clean-start CONNECT for user (empty user: anonymous).
func mqLogin(b *Broker, clientID, user string) *paho5.Connect {
	cp := &paho5.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30}
	if user != "" {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = []byte(b.Sig(user)), true
	}
	return cp
}

func (c *mq5) close() {
	if !c.up {
		c.conn.Close()
		return
	}
	_ = c.Disconnect(&paho5.Disconnect{})
	c.conn.Close()
	select {
	case <-c.Done():
	case <-time.After(mqWait):
	}
}

// drop closes the network connection without DISCONNECT (wills fire).
func (c *mq5) drop() {
	c.conn.Close()
	if !c.up {
		return
	}
	select {
	case <-c.Done():
	case <-time.After(mqWait):
		c.t.Errorf("client did not stop after its connection closed")
	}
}

// sub subscribes and returns the SUBACK reason codes.
func (c *mq5) sub(subID int, opts ...paho5.SubscribeOptions) []byte {
	c.t.Helper()
	s := &paho5.Subscribe{Subscriptions: opts}
	if subID > 0 {
		s.Properties = &paho5.SubscribeProperties{SubscriptionIdentifier: &subID}
	}
	ctx, cancel := context.WithTimeout(context.Background(), mqWait)
	defer cancel()
	sa, err := c.Subscribe(ctx, s)
	if sa == nil {
		c.t.Fatalf("subscribe %v: %v", opts, err)
	}
	return sa.Reasons
}

// mustSub subscribes to filters at qos and fails unless all are granted.
func (c *mq5) mustSub(qos byte, filters ...string) {
	c.t.Helper()
	var opts []paho5.SubscribeOptions
	for _, f := range filters {
		opts = append(opts, paho5.SubscribeOptions{Topic: f, QoS: qos})
	}
	for i, rc := range c.sub(0, opts...) {
		if rc >= 0x80 {
			c.t.Fatalf("subscribe %s: reason 0x%02x", filters[i], rc)
		}
	}
}

// pub publishes and returns the acknowledgement's reason code (0 for QoS 0).
func (c *mq5) pub(p *paho5.Publish) byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mqWait)
	defer cancel()
	pr, err := c.Publish(ctx, p)
	if pr == nil {
		c.t.Fatalf("publish %s: %v", p.Topic, err)
	}
	return pr.ReasonCode
}

// mustPub publishes payload to topic at QoS 2: once PUBCOMP is back, mochi
// has handed the message to every subscriber's queue, so a later message
// reaches each of them after it.
func (c *mq5) mustPub(topic, payload string) {
	c.t.Helper()
	if rc := c.pub(&paho5.Publish{Topic: topic, QoS: 2, Payload: []byte(payload)}); rc >= 0x80 {
		c.t.Fatalf("publish %s: reason 0x%02x", topic, rc)
	}
}

// next returns the next message received.
func (c *mq5) next() *paho5.Publish {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(mqWait):
		c.t.Fatalf("no message within %v", mqWait)
		return nil
	}
}

// expect receives the next message and checks its topic and payload.
func (c *mq5) expect(topic, payload string) *paho5.Publish {
	c.t.Helper()
	m := c.next()
	if m.Topic != topic || string(m.Payload) != payload {
		c.t.Fatalf("got %s %q, want %s %q", m.Topic, m.Payload, topic, payload)
	}
	return m
}

// mq3 is an MQTT 3.1.1 client (paho.mqtt.golang) that collects what it
// receives; rpc replies of IM users arrive in msgs too.
type mq3 struct {
	paho.Client
	t    testing.TB
	msgs chan paho.Message
	conn chan net.Conn // the network connection, to drop it
}

// mqConnect3 connects a 3.1.1 client and returns it with the CONNACK return code.
func mqConnect3(t testing.TB, b *Broker, clientID, user string, mod func(*paho.ClientOptions)) (*mq3, byte) {
	t.Helper()
	sig := ""
	if user != "" {
		sig = b.Sig(user)
	}
	o := b.ClientOpts(clientID, user, sig)
	c := &mq3{t: t, msgs: make(chan paho.Message, 1000), conn: make(chan net.Conn, 1)}
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.msgs <- m })
	o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		conn, err := net.DialTimeout("tcp", u.Host, mqWait)
		if err == nil {
			c.conn <- conn
		}
		return conn, err
	})
	if mod != nil {
		mod(o)
	}
	c.Client = paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(mqWait) {
		t.Fatalf("connect %s timed out", clientID)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, tok.(*paho.ConnectToken).ReturnCode()
}

func mqUser3(t testing.TB, b *Broker, clientID, user string, mod func(*paho.ClientOptions)) *mq3 {
	t.Helper()
	c, rc := mqConnect3(t, b, clientID, user, mod)
	if rc != 0 {
		t.Fatalf("connect %s: return code %d", clientID, rc)
	}
	return c
}

// sub subscribes to one filter and returns the SUBACK return code.
func (c *mq3) sub(filter string, qos byte) byte {
	c.t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(mqWait) || tok.Error() != nil {
		c.t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	for _, rc := range tok.(*paho.SubscribeToken).Result() {
		return rc
	}
	c.t.Fatalf("subscribe %s: no result", filter)
	return 0
}

// pub publishes and waits for the acknowledgement (QoS 2: PUBCOMP, see mq5.mustPub).
func (c *mq3) pub(topic string, qos byte, retain bool, payload string) {
	c.t.Helper()
	tok := c.Publish(topic, qos, retain, []byte(payload))
	if !tok.WaitTimeout(mqWait) || tok.Error() != nil {
		c.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func (c *mq3) next() paho.Message {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(mqWait):
		c.t.Fatalf("no message within %v", mqWait)
		return nil
	}
}

func (c *mq3) expect(topic, payload string) paho.Message {
	c.t.Helper()
	m := c.next()
	if m.Topic() != topic || string(m.Payload()) != payload {
		c.t.Fatalf("got %s %q, want %s %q", m.Topic(), m.Payload(), topic, payload)
	}
	return m
}

// drop closes the network connection without DISCONNECT.
func (c *mq3) drop() {
	select {
	case conn := <-c.conn:
		conn.Close()
	default:
		c.t.Fatal("no connection to drop")
	}
}

// mqDialRaw sends cp (a CONNECT, version 5 assumed) and returns the CONNACK.
// The connection acknowledges what it receives (PUBACK, PUBREC, PUBCOMP)
// unless noAck is set.
func mqDialRaw(t testing.TB, b *Broker, cp packets.Packet, noAck bool) (*mqtttest.Conn, packets.Packet) {
	t.Helper()
	r := mqtttest.Dial(t, b.MQTTAddr(), !noAck)
	cp.FixedHeader.Type = packets.Connect
	cp.Connect.ProtocolName = []byte("MQTT")
	if cp.Connect.Keepalive == 0 {
		cp.Connect.Keepalive = 30
	}
	r.Send(cp)
	return r, r.Expect(packets.Connack)
}

// mqRawLogin is a clean-start MQTT 5 CONNECT for user.
func mqRawLogin(b *Broker, clientID, user string) packets.Packet {
	return packets.Packet{Connect: packets.ConnectParams{
		ClientIdentifier: clientID, Clean: true,
		Username: []byte(user), UsernameFlag: true, Password: []byte(b.Sig(user)), PasswordFlag: true,
	}}
}

// mqDialOK is mqDialRaw (acks on) for a CONNECT that must be accepted: it
// fails the test on any other CONNACK.
func mqDialOK(t testing.TB, b *Broker, cp packets.Packet) *mqtttest.Conn {
	t.Helper()
	c, ca := mqDialRaw(t, b, cp, false)
	if ca.ReasonCode != 0 {
		t.Fatalf("%q: CONNACK 0x%02x", cp.Connect.ClientIdentifier, ca.ReasonCode)
	}
	return c
}
