//go:build soak

package test

// The soak test: kept out of `go test ./...` by its build tag. It runs
// imbroker as a child process for IMBROKER_SOAK (default 10m) under mixed,
// moderate traffic with client churn, samples the broker's heap in use and
// goroutines from /metrics, and checks both stay flat after the warm-up.
// docs/benchmarks.md ("Soak") has the command and the last figures:
//
//	go test -tags soak -run TestSoak -timeout 30m -v ./test/

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/ids"
)

// Traffic per second, kept moderate: the machines running it have 2 cores.
const (
	soakUsers      = 10                     // stable users u0..u9, all in one Public group
	soakC2CEvery   = 200 * time.Millisecond // per stable user: 5 C2C/s each, 50/s in all
	soakGroupEvery = 200 * time.Millisecond // 5 group messages/s, each to 10 members
	soakReqEvery   = 100 * time.Millisecond // 10 im/req requests/s
	soakPlainEvery = 20 * time.Millisecond  // 50 plain MQTT QoS 1 publishes/s
	soakChurnEvery = 200 * time.Millisecond // 5 connects/s, each connection gone within a second
	soakSamples    = 40                     // over the run, at most every 15 s
)

type soakCounts struct {
	c2cSent, c2cRecv, groupSent, groupRecv, reqSent, reqOK  atomic.Int64
	plainSent, plainRecv, connects, abrupt, errors, refused atomic.Int64
}

type soakSample struct {
	at         time.Duration
	heap       float64 // go_memstats_heap_inuse_bytes
	goroutines float64 // go_goroutines
	rss        float64 // process_resident_memory_bytes
}

func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("IMBROKER_SOAK")
	if s == "" {
		return 10 * time.Minute
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		t.Fatalf("IMBROKER_SOAK=%q: want a duration of at least 1m", s)
	}
	return d
}

func TestSoak(t *testing.T) {
	d := soakDuration(t)
	dir := t.TempDir()
	cfg := `app:
  sdk_app_id: 1400000000
mqtt:
  tcp: "127.0.0.1:0"
  ws: "127.0.0.1:0"
  acl:
    - {permission: allow, action: all, topic: "soak/#", who: authenticated}
http:
  address: "127.0.0.1:0"
storage:
  dir: "` + filepath.Join(dir, "data") + `"
log:
  format: json
  level: info
`
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "-config", path)
	b := p.broker(t, TestKey)
	metrics := "http://" + p.addrs["http"] + "/metrics"
	var n soakCounts

	users := make([]*soakClient, soakUsers)
	for i := range users {
		users[i] = newSoakClient(t, b, fmt.Sprintf("u%d", i), &n)
	}
	members := []any{}
	for _, u := range users[1:] {
		members = append(members, map[string]any{"Member_Account": u.user})
	}
	r := users[0].req(t, "group.create", map[string]any{"Type": "Public", "Name": "soak", "MemberList": members})
	gid, _ := r["GroupId"].(string)
	if code(r) != 0 || gid == "" {
		t.Fatalf("group.create: %v", r)
	}
	plainSub := newSoakClient(t, b, "plainsub", &n)
	if tok := plainSub.cl.Subscribe("soak/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe soak/#: %v", tok.Error())
	}
	plainPub := newSoakClient(t, b, "plainpub", &n)

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	every := func(iv time.Duration, fn func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(iv)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					fn(i)
				}
			}
		}()
	}
	for i, u := range users {
		to := users[(i+1)%len(users)].user
		every(soakC2CEvery, func(k int) {
			if u.publish("im/send/c2c/"+to, Text("soak", rand.Uint32())) {
				n.c2cSent.Add(1)
			}
		})
	}
	every(soakGroupEvery, func(k int) {
		if users[k%len(users)].publish("im/send/group/"+ids.GroupTopicLevel(gid), Text("soak", rand.Uint32())) {
			n.groupSent.Add(1)
		}
	})
	every(soakReqEvery, func(k int) {
		u := users[k%len(users)]
		op, body := "group.info", map[string]any{"GroupIdList": []string{gid}}
		if k%2 == 1 {
			op, body = "sync", map[string]any{"Since": u.seq.Load()}
		}
		body["Id"] = fmt.Sprintf("soak-%d", k)
		if u.publish("im/req/"+op, body) {
			n.reqSent.Add(1)
		}
	})
	every(soakPlainEvery, func(k int) {
		if plainPub.publish("soak/t", []byte("plain")) {
			n.plainSent.Add(1)
		}
	})
	every(soakChurnEvery, func(k int) { soakChurn(t, b, k, &n) })

	var samples []soakSample
	start := time.Now()
	sample := func() {
		s, err := soakScrape(metrics)
		if err != nil {
			t.Errorf("metrics: %v", err)
			return
		}
		s.at = time.Since(start).Round(time.Second)
		samples = append(samples, s)
		t.Logf("%6v heap in use %6.1f MiB, goroutines %4.0f, RSS %6.1f MiB; c2c %d, group %d, req %d, plain %d, connects %d",
			s.at, s.heap/(1<<20), s.goroutines, s.rss/(1<<20), n.c2cSent.Load(), n.groupSent.Load(), n.reqSent.Load(), n.plainSent.Load(), n.connects.Load())
	}
	sample()
	tick := time.NewTicker(min(d/soakSamples, 15*time.Second))
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	sample() // the last one under traffic
	wg.Wait()

	// Everything sent and acknowledged arrives, and every request is answered.
	arrived := func() bool {
		return n.c2cRecv.Load() >= n.c2cSent.Load() && n.reqOK.Load() >= n.reqSent.Load() &&
			n.plainRecv.Load() >= n.plainSent.Load() && n.groupRecv.Load() >= n.groupSent.Load()*soakUsers
	}
	poll, late := time.NewTicker(100*time.Millisecond), time.After(30*time.Second) // counters fed by paho's goroutines
	for !arrived() {
		select {
		case <-poll.C:
			continue
		case <-late:
		}
		break
	}
	poll.Stop()
	t.Logf("sent: c2c %d, group %d (x%d members), requests %d, plain %d; connects %d (%d dropped without DISCONNECT); errors %d, refusals %d",
		n.c2cSent.Load(), n.groupSent.Load(), soakUsers, n.reqSent.Load(), n.plainSent.Load(), n.connects.Load(), n.abrupt.Load(), n.errors.Load(), n.refused.Load())
	t.Logf("received: c2c %d, group %d, replies %d, plain %d", n.c2cRecv.Load(), n.groupRecv.Load(), n.reqOK.Load(), n.plainRecv.Load())
	if n.c2cRecv.Load() != n.c2cSent.Load() || n.plainRecv.Load() != n.plainSent.Load() ||
		n.reqOK.Load() != n.reqSent.Load() || n.groupRecv.Load() != n.groupSent.Load()*soakUsers {
		t.Errorf("delivery: not everything sent arrived exactly once")
	}
	if e := n.errors.Load() + n.refused.Load(); e > 0 {
		t.Errorf("%d publishes failed or were refused", e)
	}

	// Flat after the warm-up (the first fifth): the mean of the last three
	// samples against the mean of the first three after it.
	var after []soakSample
	for _, s := range samples {
		if s.at >= d/5 {
			after = append(after, s)
		}
	}
	if len(after) < 6 {
		t.Fatalf("only %d samples after the warm-up", len(after))
	}
	first, last := meanSample(after[:3]), meanSample(after[len(after)-3:])
	t.Logf("after warm-up: heap in use %.1f -> %.1f MiB, goroutines %.0f -> %.0f, RSS %.1f -> %.1f MiB",
		first.heap/(1<<20), last.heap/(1<<20), first.goroutines, last.goroutines, first.rss/(1<<20), last.rss/(1<<20))
	if last.heap > first.heap*1.5+8<<20 {
		t.Errorf("heap in use grew from %.1f to %.1f MiB", first.heap/(1<<20), last.heap/(1<<20))
	}
	if last.goroutines > first.goroutines*1.1+20 {
		t.Errorf("goroutines grew from %.0f to %.0f", first.goroutines, last.goroutines)
	}
}

func meanSample(ss []soakSample) soakSample {
	var m soakSample
	for _, s := range ss {
		m.heap += s.heap / float64(len(ss))
		m.goroutines += s.goroutines / float64(len(ss))
		m.rss += s.rss / float64(len(ss))
	}
	return m
}

// soakScrape reads the broker's heap in use, goroutines and RSS from /metrics.
func soakScrape(url string) (soakSample, error) {
	var s soakSample
	resp, err := http.Get(url)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	found := 0
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "go_memstats_heap_inuse_bytes":
			dst = &s.heap
		case "go_goroutines":
			dst = &s.goroutines
		case "process_resident_memory_bytes":
			dst = &s.rss
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(val, 64); err != nil {
			return s, fmt.Errorf("%s: %w", name, err)
		}
		found++
	}
	if found != 3 {
		return s, fmt.Errorf("found %d of the 3 metrics", found)
	}
	return s, sc.Err()
}

// soakClient is a stable MQTT 3.1.1 user connection that counts what it
// receives instead of keeping it.
type soakClient struct {
	user string
	cl   paho.Client
	n    *soakCounts
	seq  atomic.Uint64 // highest stream Seq seen
	mu   sync.Mutex
	wait map[string]chan map[string]any // request Id -> reply
}

func newSoakClient(t *testing.T, b *Broker, user string, n *soakCounts) *soakClient {
	t.Helper()
	c := &soakClient{user: user, n: n, wait: map[string]chan map[string]any{}}
	o := b.ClientOpts(user, user, b.Sig(user))
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.route(t, m) })
	c.cl = paho.NewClient(o)
	if tok := c.cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.cl.Disconnect(100) })
	if tok := c.cl.Subscribe("im/u/"+user+"/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

func (c *soakClient) route(t *testing.T, m paho.Message) {
	if strings.HasPrefix(m.Topic(), "soak/") {
		c.n.plainRecv.Add(1)
		return
	}
	var r map[string]any
	if err := json.Unmarshal(m.Payload(), &r); err != nil {
		t.Errorf("%s: bad payload %q", c.user, m.Payload())
		return
	}
	if strings.HasSuffix(m.Topic(), "/rpc") {
		id, _ := r["Id"].(string)
		if r["Op"] == "send" || code(r) != 0 {
			c.n.refused.Add(1)
			t.Logf("%s: refused: %v", c.user, r)
		} else if strings.HasPrefix(id, "soak-") {
			c.n.reqOK.Add(1)
		}
		c.mu.Lock()
		ch := c.wait[id]
		delete(c.wait, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- r
		}
		return
	}
	// Each stream event once: a sync replays the events after its Since
	// again, which this client already had live (paho calls route for one
	// client on one goroutine, in order).
	seq, _ := r["Seq"].(float64)
	if uint64(seq) <= c.seq.Load() {
		return
	}
	c.seq.Store(uint64(seq))
	msg, _ := r["Msg"].(map[string]any)
	switch r["Event"] {
	case "C2CMsg":
		if msg["To_Account"] == c.user && msg["From_Account"] != c.user {
			c.n.c2cRecv.Add(1)
		}
	case "GroupMsg":
		c.n.groupRecv.Add(1)
	}
}

// publish sends at QoS 1 and reports whether it was acknowledged.
func (c *soakClient) publish(topic string, payload any) bool {
	b, ok := payload.([]byte)
	if !ok {
		b, _ = json.Marshal(payload)
	}
	tok := c.cl.Publish(topic, 1, false, b)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.n.errors.Add(1)
		return false
	}
	return true
}

// req sends a request and waits for its reply.
func (c *soakClient) req(t *testing.T, op string, body map[string]any) map[string]any {
	t.Helper()
	id := "setup-" + op
	body["Id"] = id
	ch := make(chan map[string]any, 1)
	c.mu.Lock()
	c.wait[id] = ch
	c.mu.Unlock()
	if !c.publish("im/req/"+op, body) {
		t.Fatalf("%s: not acknowledged", op)
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no reply", op)
		return nil
	}
}

// soakChurn is one short-lived connection of user churn{k%50}: every other
// one a paho (3.1.1) login that subscribes, sends u0 one message and
// disconnects; the others an MQTT 5 login on a raw socket that is dropped
// without DISCONNECT as soon as the CONNACK is in.
func soakChurn(t *testing.T, b *Broker, k int, n *soakCounts) {
	user := fmt.Sprintf("churn%d", k%50)
	n.connects.Add(1)
	if k%2 == 0 {
		o := b.ClientOpts(user+":d", user, b.Sig(user))
		o.SetDefaultPublishHandler(func(paho.Client, paho.Message) {})
		cl := paho.NewClient(o)
		if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			n.errors.Add(1)
			return
		}
		defer cl.Disconnect(100)
		if tok := cl.Subscribe("im/u/"+user+"/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			n.errors.Add(1)
			return
		}
		body, _ := json.Marshal(Text("churn", rand.Uint32()))
		if tok := cl.Publish("im/send/c2c/u0", 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			n.errors.Add(1)
			return
		}
		n.c2cSent.Add(1)
		return
	}
	n.abrupt.Add(1)
	conn, err := net.DialTimeout("tcp", b.MQTTAddr(), 5*time.Second)
	if err != nil {
		n.errors.Add(1)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: user + ":raw", Clean: true, Keepalive: 30,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(b.Sig(user))}}
	var w bytes.Buffer
	if err := pk.ConnectEncode(&w); err != nil {
		t.Errorf("encode: %v", err)
		return
	}
	if _, err := conn.Write(w.Bytes()); err != nil {
		n.errors.Add(1)
		return
	}
	ack := make([]byte, 4)
	if _, err := conn.Read(ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		n.errors.Add(1)
	}
}
