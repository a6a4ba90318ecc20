package test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

// Multi-device policy [IM-DEVICES]: devices.max_per_user and on_exceed.

// devLimit sets the device policy.
func devLimit(max int, onExceed string) func(*config.Config) {
	return func(c *config.Config) { c.Devices.MaxPerUser, c.Devices.OnExceed = max, onExceed }
}

// devOnline waits until the broker's view of user's devices is want (oldest
// first). The broker updates it before CONNACK, so after a login it holds at
// once; a client's own DISCONNECT has no answer to wait for, hence the poll.
func devOnline(t *testing.T, b *Broker, user string, want ...string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for {
		got := b.App.Broker.OnlineDevices(user)
		if reflect.DeepEqual(got, want) || (len(got) == 0 && len(want) == 0) {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("online devices of %s: %q, want %q", user, got, want)
		}
	}
}

// devV5 is an MQTT 5 device subscribed to im/u/{user}/#. Everything that
// reaches it goes, in arrival order, to log: "rpc {json}", "event {json}"
// and finally "disconnect 0xNN reason".
type devV5 struct {
	c   *paho5.Client
	log chan string
}

func devConnect5(t *testing.T, b *Broker, clientID, user string) *devV5 {
	t.Helper()
	d := &devV5{log: make(chan string, 100)}
	c, ca := connect5With(t, b, clientID, user, b.Sig(user), func(cc *paho5.ClientConfig) {
		cc.OnServerDisconnect = func(p *paho5.Disconnect) {
			reason := ""
			if p.Properties != nil {
				reason = p.Properties.ReasonString
			}
			d.log <- fmt.Sprintf("disconnect 0x%02x %s", p.ReasonCode, reason)
		}
		// paho routes every PUBLISH to the handlers before it reports the
		// DISCONNECT that followed them, so log keeps the wire order.
		cc.OnPublishReceived = []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			kind := "event"
			if strings.HasSuffix(pr.Packet.Topic, "/rpc") {
				kind = "rpc"
			}
			d.log <- kind + " " + string(pr.Packet.Payload)
			return true, nil
		}}
	})
	if ca.ReasonCode != 0 {
		t.Fatalf("%s: CONNACK 0x%02x", clientID, ca.ReasonCode)
	}
	d.c = c
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "im/u/" + user + "/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	return d
}

// next returns the next entry of the log.
func (d *devV5) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-d.log:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("v5 device: nothing within 5s")
		return ""
	}
}

// devConnect3 connects an MQTT 3.1.1 device subscribed to im/u/{user}/#;
// lost receives the error when the broker drops it.
func devConnect3(t *testing.T, b *Broker, clientID, user string) (c *Client, lost chan error) {
	t.Helper()
	lost = make(chan error, 1)
	o := b.ClientOpts(clientID, user, b.Sig(user))
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	return ConnectOpts(t, o, user), lost
}

// devKickNotice checks a "kicked" rpc notice.
func devKickNotice(t *testing.T, payload []byte, by string) {
	t.Helper()
	var n map[string]any
	if err := json.Unmarshal(payload, &n); err != nil {
		t.Fatalf("kick notice %s: %v", payload, err)
	}
	want := map[string]any{"Id": "", "Op": "kicked", "ErrorCode": 0.0, "Reason": "device limit", "By": by}
	if !reflect.DeepEqual(n, want) {
		t.Fatalf("kick notice %v, want %v", n, want)
	}
}

// devSend sends a C2C message from -> to and returns its MsgRandom.
func devSend(from *Client, to string) uint32 {
	r := Random()
	from.Publish1("im/send/c2c/"+to, Text("hello devices", r))
	return r
}

// devGot waits for the C2C message with MsgRandom r on a 3.1.1 device.
func devGot(t *testing.T, c *Client, r uint32) {
	t.Helper()
	if e := c.NextEvent(); e.Event != "C2CMsg" || e.Msg.MsgRandom != r {
		t.Fatalf("%s got %s, want C2C MsgRandom %d", c.User, e.Raw, r)
	}
}

// gotEvent waits for the C2C message with MsgRandom r on a v5 device.
func (d *devV5) gotEvent(t *testing.T, r uint32) {
	t.Helper()
	s := d.next(t)
	if !strings.HasPrefix(s, "event ") || !strings.Contains(s, fmt.Sprintf(`"MsgRandom":%d`, r)) {
		t.Fatalf("v5 device got %s, want C2C MsgRandom %d", s, r)
	}
}

// devices.max_per_user 0 means no limit (the default is 10:
// TestE2E_DefaultDeviceLimit).
func TestE2E_DevicesUnlimitedWhenZero(t *testing.T) {
	b := StartBroker(t, devLimit(0, config.DevicesKickOldest))
	phone := b.Connect("bob:phone", "bob")
	pad := b.Connect("bob:pad", "bob")
	web := devConnect5(t, b, "bob:web", "bob")
	bare := b.Connect("bob", "bob")
	devOnline(t, b, "bob", "bob:phone", "bob:pad", "bob:web", "bob")
	alice := b.Connect("alice", "alice")
	r := devSend(alice, "bob")
	devGot(t, phone, r)
	devGot(t, pad, r)
	devGot(t, bare, r)
	web.gotEvent(t, r)
	for _, c := range []*Client{phone, pad, bare} {
		if !c.IsConnected() {
			t.Fatalf("%s disconnected", c.User)
		}
	}
}

func TestE2E_DevicesKickOldest(t *testing.T) {
	b := StartBroker(t, devLimit(2, config.DevicesKickOldest))
	alice := b.Connect("alice", "alice")

	phone := devConnect5(t, b, "bob:phone", "bob") // oldest
	pad, padLost := devConnect3(t, b, "bob:pad", "bob")
	devOnline(t, b, "bob", "bob:phone", "bob:pad")

	// A third device kicks the oldest (MQTT 5): rpc notice, then DISCONNECT.
	web, _ := devConnect3(t, b, "bob:web", "bob")
	devOnline(t, b, "bob", "bob:pad", "bob:web") // updated before web's CONNACK
	if s := phone.next(t); !strings.HasPrefix(s, "rpc ") {
		t.Fatalf("kicked v5 device first got %q, want the rpc notice", s)
	} else {
		devKickNotice(t, []byte(strings.TrimPrefix(s, "rpc ")), "bob:web")
	}
	if s := phone.next(t); s != "disconnect 0x98 kicked: device limit" {
		t.Fatalf("kicked v5 device got %q", s)
	}

	// A fourth kicks the next oldest, an MQTT 3.1.1 client: rpc notice, and
	// its connection is lost.
	bare := devConnect5(t, b, "bob", "bob")
	devOnline(t, b, "bob", "bob:web", "bob")
	devKickNotice(t, mustPayload(t, pad.NextReply()), "bob")
	select {
	case <-padLost:
	case <-time.After(5 * time.Second):
		t.Fatal("kicked 3.1.1 device: connection not lost")
	}

	// The two newest keep receiving; the kicked ones got nothing more.
	r := devSend(alice, "bob")
	devGot(t, web, r)
	bare.gotEvent(t, r)
	if !web.IsConnected() {
		t.Fatal("bob:web was disconnected")
	}
	select {
	case s := <-phone.log:
		t.Fatalf("kicked v5 device got %q after its DISCONNECT", s)
	default:
	}
	if len(web.Replies) != 0 {
		t.Fatalf("bob:web got rpc %v", <-web.Replies)
	}
}

// mustPayload re-encodes a reply collected by the harness.
func mustPayload(t *testing.T, r map[string]any) []byte {
	t.Helper()
	p, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestE2E_DevicesTakeoverIsNotANewDevice(t *testing.T) {
	b := StartBroker(t, devLimit(2, config.DevicesKickOldest))
	alice := b.Connect("alice", "alice")
	pad := b.Connect("bob:pad", "bob") // the oldest: any extra count would kick it
	phone, phoneLost := devConnect3(t, b, "bob:phone", "bob")
	devOnline(t, b, "bob", "bob:pad", "bob:phone")

	// bob:phone reconnects three times (3.1.1 and MQTT 5) while the old
	// connection is still up: each is a takeover of the same device.
	phone2, phone2Lost := devConnect3(t, b, "bob:phone", "bob")
	devOnline(t, b, "bob", "bob:pad", "bob:phone")
	select {
	case <-phoneLost:
	case <-time.After(5 * time.Second):
		t.Fatal("taken-over connection not dropped")
	}
	phone3 := devConnect5(t, b, "bob:phone", "bob")
	devOnline(t, b, "bob", "bob:pad", "bob:phone")
	select {
	case <-phone2Lost:
	case <-time.After(5 * time.Second):
		t.Fatal("taken-over connection not dropped")
	}
	// The old connections' ends did not remove the newest bob:phone.
	devOnline(t, b, "bob", "bob:pad", "bob:phone")

	r := devSend(alice, "bob")
	devGot(t, pad, r)
	phone3.gotEvent(t, r)
	if !pad.IsConnected() {
		t.Fatal("bob:pad was kicked by a takeover")
	}
	if len(pad.Replies) != 0 {
		t.Fatalf("bob:pad got rpc %v", <-pad.Replies)
	}
	if len(phone.Replies) != 0 || len(phone2.Replies) != 0 {
		t.Fatal("a taken-over connection got a kick notice")
	}

	// A genuinely new device still kicks the oldest (bob:pad), proving the
	// count is 2, not 4.
	b.Connect("bob:web", "bob")
	devOnline(t, b, "bob", "bob:phone", "bob:web")
	devKickNotice(t, mustPayload(t, pad.NextReply()), "bob:web")
}

func TestE2E_DevicesRefuse(t *testing.T) {
	b := StartBroker(t, devLimit(2, config.DevicesRefuse))
	alice := b.Connect("alice", "alice")
	phone := b.Connect("bob:phone", "bob")
	pad := devConnect5(t, b, "bob:pad", "bob")
	devOnline(t, b, "bob", "bob:phone", "bob:pad")

	// MQTT 5: CONNACK 0x97 quota exceeded, naming 70114.
	_, ca := connect5(t, b, "bob:web", "bob", b.Sig("bob"))
	if ca.ReasonCode != 0x97 {
		t.Fatalf("CONNACK 0x%02x, want 0x97", ca.ReasonCode)
	}
	if ca.Properties == nil || !strings.HasPrefix(ca.Properties.ReasonString, "70114 ") {
		t.Fatalf("reason string %+v does not name 70114", ca.Properties)
	}
	// MQTT 3.1.1: return code 3.
	c := paho.NewClient(b.ClientOpts("bob:tv", "bob", b.Sig("bob")))
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("connect timed out")
	}
	defer c.Disconnect(0)
	if rc := tok.(*paho.ConnectToken).ReturnCode(); rc != 3 {
		t.Fatalf("3.1.1 return code %d, want 3 (err %v)", rc, tok.Error())
	}
	devOnline(t, b, "bob", "bob:phone", "bob:pad")

	// A takeover is not a new device: admitted at the limit.
	phone = b.Connect("bob:phone", "bob")
	devOnline(t, b, "bob", "bob:pad", "bob:phone")

	// The two logged-in devices are untouched and still receive.
	r := devSend(alice, "bob")
	devGot(t, phone, r)
	pad.gotEvent(t, r)

	// Once a device leaves, the count drops and a new one may log in.
	if err := pad.c.Disconnect(&paho5.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	devOnline(t, b, "bob", "bob:phone")
	web := b.Connect("bob:web", "bob")
	devOnline(t, b, "bob", "bob:phone", "bob:web")
	r = devSend(alice, "bob")
	devGot(t, phone, r)
	devGot(t, web, r)
}

// TestE2E_DevicesConcurrentLogins: logins racing for the last slots never
// leave a user over the limit.
func TestE2E_DevicesConcurrentLogins(t *testing.T) {
	const n, max = 8, 2
	for _, policy := range []string{config.DevicesRefuse, config.DevicesKickOldest} {
		t.Run(policy, func(t *testing.T) {
			b := StartBroker(t, devLimit(max, policy))
			type result struct {
				id string
				rc byte
			}
			results := make(chan result, n)
			lost := make(chan string, n)
			for i := range n {
				id := fmt.Sprintf("bob:d%d", i)
				o := b.ClientOpts(id, "bob", b.Sig("bob"))
				o.SetConnectionLostHandler(func(paho.Client, error) { lost <- id })
				c := paho.NewClient(o)
				t.Cleanup(func() { c.Disconnect(0) })
				go func() {
					tok := c.Connect()
					tok.WaitTimeout(5 * time.Second)
					results <- result{id, tok.(*paho.ConnectToken).ReturnCode()}
				}()
			}
			accepted := map[string]bool{}
			for range n {
				select {
				case r := <-results:
					if r.rc == 0 {
						accepted[r.id] = true
					} else if r.rc != 3 {
						t.Fatalf("%s: return code %d", r.id, r.rc)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("logins did not finish")
				}
			}
			online := map[string]bool{}
			if policy == config.DevicesRefuse {
				if len(accepted) != max {
					t.Fatalf("%d logins accepted, want %d", len(accepted), max)
				}
				online = accepted
			} else {
				if len(accepted) != n {
					t.Fatalf("%d logins accepted, want all %d", len(accepted), n)
				}
				for id := range accepted {
					online[id] = true
				}
				for range n - max {
					select {
					case id := <-lost:
						delete(online, id)
					case <-time.After(5 * time.Second):
						t.Fatalf("only %d devices kicked, want %d", n-len(online), n-max)
					}
				}
			}
			var want []string
			for _, id := range b.App.Broker.OnlineDevices("bob") {
				if !online[id] {
					t.Fatalf("%s counted online, but it is not", id)
				}
				want = append(want, id)
			}
			if len(want) != max {
				t.Fatalf("online devices %q, want %d", want, max)
			}
		})
	}
}

func TestE2E_DevicesGuestsNotCounted(t *testing.T) {
	b := StartBroker(t, devLimit(1, config.DevicesRefuse), func(c *config.Config) { c.Guests.Enabled = true })
	for _, id := range []string{"g1", "g2", "g3"} {
		c := paho.NewClient(b.ClientOpts("guest/"+id, "", ""))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("guest %s: %v", id, tok.Error())
		}
		defer c.Disconnect(0)
	}
	if got := b.App.Broker.OnlineDevices(""); got != nil {
		t.Fatalf("guests tracked: %q", got)
	}
	b.Connect("bob", "bob") // guests took none of bob's single slot
	devOnline(t, b, "bob", "bob")
}

func TestConfig_DevicesValidation(t *testing.T) {
	t.Setenv(config.EnvSecretKey, "")
	_, err := config.Parse([]byte("devices:\n  max_per_user: -1\n  on_exceed: kick_newest\n"))
	if err == nil {
		t.Fatal("bad devices section accepted")
	}
	for _, want := range []string{"devices.max_per_user", "devices.on_exceed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	cfg, err := config.Parse([]byte("devices:\n  max_per_user: 3\n  on_exceed: refuse\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Devices != (config.Devices{MaxPerUser: 3, OnExceed: config.DevicesRefuse}) {
		t.Fatalf("parsed %+v", cfg.Devices)
	}
}
