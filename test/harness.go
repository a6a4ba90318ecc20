// Package test holds imbroker's end-to-end tests and the helpers they share:
// a harness that starts the real broker wiring on 127.0.0.1:0 ports with
// Pebble in a temp dir, and real paho clients.
package test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/app"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/usersig"
)

// TestKey is the app secret every harness broker uses.
const TestKey = "imbroker-test-secret-key-0123456789"

// Broker is a running broker under test.
type Broker struct {
	App    *app.App // nil when the broker is a child process
	Cfg    config.Config
	Signer *usersig.Signer
	tb     testing.TB
	tcp    string
	ws     string
	http   string
}

// MQTTAddr is the broker's MQTT TCP address.
func (b *Broker) MQTTAddr() string { return b.tcp }

// WSAddr is the broker's MQTT WebSocket address.
func (b *Broker) WSAddr() string { return b.ws }

// HTTPAddr is the broker's HTTP address.
func (b *Broker) HTTPAddr() string { return b.http }

// TestConfig is the harness configuration: free loopback ports, a temp dir.
func TestConfig(tb testing.TB) config.Config {
	cfg := config.Default()
	cfg.App.SecretKey = TestKey
	cfg.MQTT.TCP, cfg.MQTT.WS, cfg.HTTP.Address = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Storage.Dir = tb.TempDir()
	cfg.Log.Level = "warn"
	return cfg
}

// StartBroker starts a broker with TestConfig modified by mods and stops it
// when the test ends.
func StartBroker(tb testing.TB, mods ...func(*config.Config)) *Broker {
	tb.Helper()
	cfg := TestConfig(tb)
	for _, m := range mods {
		m(&cfg)
	}
	return StartWith(tb, cfg)
}

// StartWith starts a broker with exactly cfg (and opts, e.g.
// broker.WithCluster).
func StartWith(tb testing.TB, cfg config.Config, opts ...broker.Option) *Broker {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if testing.Verbose() {
		log = app.NewLogger(config.Log{Level: "debug", Format: "text"}, os.Stderr)
	}
	a, err := app.Start(context.Background(), cfg, log, opts...)
	if err != nil {
		tb.Fatalf("start broker: %v", err)
	}
	b := &Broker{App: a, Cfg: cfg, Signer: usersig.New(cfg.App.SDKAppID, cfg.App.SecretKey), tb: tb, tcp: a.MQTTAddr(), ws: a.WSAddr(), http: a.HTTPAddr()}
	tb.Cleanup(func() { b.Stop() })
	return b
}

// Stop shuts the broker down (idempotent).
func (b *Broker) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.App.Shutdown(ctx); err != nil {
		b.tb.Errorf("shutdown: %v", err)
	}
}

// Sig returns a valid UserSig for user.
func (b *Broker) Sig(user string) string {
	s, err := b.Signer.Gen(user, 3600)
	if err != nil {
		b.tb.Fatal(err)
	}
	return s
}

// Event is one event from a user's stream.
type Event struct {
	Seq   uint64
	Epoch uint64
	Event string
	Msg   struct {
		From_Account, To_Account, MsgKey, CloudCustomData, ClientMsgID string
		MsgSeq, MsgRandom                                              uint32
		MsgTime                                                        int64
		MsgBody                                                        json.RawMessage
	}
	Raw string `json:"-"`
}

// Client is a paho (MQTT 3.1.1) client logged in as a user, subscribed to
// its stream and rpc topics, collecting what arrives.
type Client struct {
	paho.Client
	User    string
	Events  chan Event
	Replies chan map[string]any
	tb      testing.TB
}

// ClientOpts returns paho options for user with clientID on addr.
func (b *Broker) ClientOpts(clientID, user, sig string) *paho.ClientOptions {
	o := paho.NewClientOptions().AddBroker("tcp://" + b.MQTTAddr())
	o.SetClientID(clientID).SetUsername(user).SetPassword(sig)
	o.SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	o.SetProtocolVersion(4).SetOrderMatters(true).SetCleanSession(true)
	return o
}

// Connect logs user in as clientID and subscribes to its topics.
func (b *Broker) Connect(clientID, user string) *Client {
	b.tb.Helper()
	return ConnectOpts(b.tb, b.ClientOpts(clientID, user, b.Sig(user)), user)
}

// ConnectOpts connects with explicit options and subscribes im/u/{user}/#.
func ConnectOpts(tb testing.TB, o *paho.ClientOptions, user string) *Client {
	tb.Helper()
	c := &Client{User: user, Events: make(chan Event, 10000), Replies: make(chan map[string]any, 1000), tb: tb}
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.route(m) })
	c.Client = paho.NewClient(o)
	if tok := c.Client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("connect %s: %v", user, tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(0) })
	if tok := c.Subscribe("im/u/"+user+"/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

func (c *Client) route(m paho.Message) {
	if strings.HasSuffix(m.Topic(), "/rpc") {
		var r map[string]any
		if err := json.Unmarshal(m.Payload(), &r); err != nil {
			c.tb.Errorf("bad rpc payload %q: %v", m.Payload(), err)
			return
		}
		c.Replies <- r
		return
	}
	var e Event
	if err := json.Unmarshal(m.Payload(), &e); err != nil {
		c.tb.Errorf("bad event payload %q: %v", m.Payload(), err)
		return
	}
	e.Raw = string(m.Payload())
	c.Events <- e
}

// Publish publishes at QoS 1 and waits for the PUBACK.
func (c *Client) Publish1(topic string, payload any) {
	c.tb.Helper()
	var b []byte
	switch p := payload.(type) {
	case []byte:
		b = p
	case string:
		b = []byte(p)
	default:
		b, _ = json.Marshal(p)
	}
	tok := c.Publish(topic, 1, false, b)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		c.tb.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Text is a one-element text message body.
func Text(s string, random uint32) map[string]any {
	return map[string]any{
		"MsgRandom": random,
		"MsgBody":   []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": s}}},
	}
}

// NextEvent waits for the next stream event.
func (c *Client) NextEvent() Event {
	c.tb.Helper()
	select {
	case e := <-c.Events:
		return e
	case <-time.After(5 * time.Second):
		c.tb.Fatalf("%s: no event within 5s", c.User)
		return Event{}
	}
}

// NoEvent asserts nothing arrives on the stream within d. Used only to prove
// an absence, after a later event has been waited for where possible.
func (c *Client) NoEvent(d time.Duration) {
	c.tb.Helper()
	select {
	case e := <-c.Events:
		c.tb.Fatalf("%s: unexpected event %s", c.User, e.Raw)
	case <-time.After(d):
	}
}

// NextReply waits for the next rpc reply.
func (c *Client) NextReply() map[string]any {
	c.tb.Helper()
	select {
	case r := <-c.Replies:
		return r
	case <-time.After(5 * time.Second):
		c.tb.Fatalf("%s: no rpc reply within 5s", c.User)
		return nil
	}
}

// Sync requests a replay after since and collects events until the reply.
func (c *Client) Sync(id string, since uint64) ([]Event, map[string]any) {
	c.tb.Helper()
	c.Publish1("im/req/sync", map[string]any{"Id": id, "Since": since})
	var got []Event
	for {
		select {
		case e := <-c.Events:
			got = append(got, e)
		case r := <-c.Replies:
			if r["Id"] != id {
				continue
			}
			// Events are written before the reply on the same connection,
			// and paho routes in order (OrderMatters), so all are in.
			for {
				select {
				case e := <-c.Events:
					got = append(got, e)
				default:
					return got, r
				}
			}
		case <-time.After(10 * time.Second):
			c.tb.Fatalf("%s: sync %s got no reply", c.User, id)
		}
	}
}

// SyncAll syncs from since until Complete, returning every event. Tests
// that expect trimmed history check the Trimmed reply themselves; here it
// is a failure rather than an endless loop.
func (c *Client) SyncAll(since uint64) []Event {
	c.tb.Helper()
	var all []Event
	for i := 0; ; i++ {
		evs, r := c.Sync(fmt.Sprintf("s%d", i), since)
		if code, _ := r["ErrorCode"].(float64); code != 0 {
			c.tb.Fatalf("sync error %v", r)
		}
		if r["Trimmed"] == true {
			c.tb.Fatalf("sync from %d: history was trimmed: %v", since, r)
		}
		all = append(all, evs...)
		since = uint64(r["Seq"].(float64))
		if r["Complete"] == true {
			return all
		}
	}
}

var counter struct {
	sync.Mutex
	n uint32
}

// Random returns a distinct MsgRandom.
func Random() uint32 {
	counter.Lock()
	defer counter.Unlock()
	counter.n++
	return counter.n
}

// Accounts logs each user in once and out again: it becomes an account
// (Tencent imports a UserID at its first login), so one-to-one messages to
// it are accepted before it ever connects (relations.require_accounts).
func (b *Broker) Accounts(users ...string) {
	b.tb.Helper()
	for _, u := range users {
		c := paho.NewClient(b.ClientOpts(u+":account", u, b.Sig(u)))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.tb.Fatalf("log %s in once: %v", u, tok.Error())
		}
		c.Disconnect(0)
	}
}

// gidLevel is a GroupId as a topic level: '#' (Tencent's "@TGS#" ids) is
// escaped as %23 and '%' as %25 (docs/protocol.md "Topics").
func gidLevel(gid string) string { return ids.GroupTopicLevel(gid) }
