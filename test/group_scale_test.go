package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/config"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// parallel runs fn(i) for i in [0,n) on `workers` goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// scaled returns full, or reduced under -race (goroutine limit).
func scaled(full, race int) int {
	if raceEnabled {
		return race
	}
	return full
}

// TestE2E_GroupPublic2000 builds a 2,000-member Public group (write
// diffusion): one message reaches every online member live and every
// offline member after sync.
func TestE2E_GroupPublic2000(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	const members = 2000
	online := scaled(1000, 300)
	b := StartBroker(t)
	admin := b.Connect("administrator", "administrator")
	r := admin.Req("group.create", map[string]any{"Type": "Public", "Name": "all hands", "ApplyJoinOption": "FreeAccess"})
	if code(r) != 0 {
		t.Fatalf("create: %v", r)
	}
	gid := r["GroupId"].(string)
	for i := 0; i < members-1; i += 100 { // the admin owner is member 2000
		var list []any
		for j := i; j < i+100 && j < members-1; j++ {
			list = append(list, map[string]any{"Member_Account": fmt.Sprintf("m%04d", j)})
		}
		if r := admin.Req("group.invite", map[string]any{"GroupId": gid, "MemberList": list}); code(r) != 0 {
			t.Fatalf("invite: %v", r)
		}
	}
	if r := admin.Req("group.info", map[string]any{"GroupIdList": []string{gid}}); r["GroupInfo"].([]any)[0].(map[string]any)["MemberNum"].(float64) != members {
		t.Fatalf("info: %v", r)
	}

	clients := make([]*Client, online)
	parallel(online, 16, func(i int) {
		u := fmt.Sprintf("m%04d", i)
		clients[i] = b.Connect(u, u)
	})
	random := Random()
	start := time.Now()
	clients[0].Publish1("im/send/group/"+gidLevel(gid), Text("to everyone", random))
	var missing atomic.Int64
	parallel(online, 64, func(i int) {
		if !waitGroupMsg(clients[i], gid, random, 30*time.Second) {
			missing.Add(1)
		}
	})
	if missing.Load() > 0 {
		t.Fatalf("%d of %d online members did not get the message live", missing.Load(), online)
	}
	t.Logf("one message reached %d online members (of %d) in %v", online, members, time.Since(start))
	for _, c := range clients {
		c.Disconnect(0)
	}

	offline := members - 1 - online
	parallel(offline, 16, func(i int) {
		u := fmt.Sprintf("m%04d", online+i)
		c := b.Connect(u, u)
		defer c.Disconnect(0)
		found := false
		for _, e := range c.SyncAll(0) {
			if e.Event == "GroupMsg" && e.Msg.MsgRandom == random && groupOf(e) == gid {
				found = true
			}
		}
		if !found {
			missing.Add(1)
		}
	})
	if missing.Load() > 0 {
		t.Fatalf("%d of %d offline members did not get the message by sync", missing.Load(), offline)
	}
}

// waitGroupMsg waits for a GroupMsg with the given MsgRandom on c's events.
func waitGroupMsg(c *Client, gid string, random uint32, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case e := <-c.Events:
			if e.Event == "GroupMsg" && e.Msg.MsgRandom == random && groupOf(e) == gid {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func groupOf(e Event) string {
	var v struct{ Msg struct{ GroupId string } }
	_ = json.Unmarshal([]byte(e.Raw), &v)
	return v.Msg.GroupId
}

// stalledGuest connects a raw MQTT 3.1.1 guest that subscribes to topic and
// then never reads again, with a tiny receive buffer so the broker's socket
// to it fills quickly: a peer whose network died without a FIN.
func stalledGuest(t *testing.T, addr, topic string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	packet := func(typ byte, body []byte) []byte {
		out := []byte{typ}
		n := len(body)
		for {
			d := byte(n % 128)
			n /= 128
			if n > 0 {
				d |= 0x80
			}
			out = append(out, d)
			if n == 0 {
				break
			}
		}
		return append(out, body...)
	}
	connect := append(append(str("MQTT"), 4, 0x02, 0x01, 0x2c), str("guest/stalled")...) // clean session, keepalive 300
	sub := append(append([]byte{0, 1}, str(topic)...), 1)                                // QoS 1: the path where a stalled peer could block fan-out
	if _, err := conn.Write(append(packet(0x10, connect), packet(0x82, sub)...)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 9) // CONNACK (4) + SUBACK (5)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 || ack[4] != 0x90 || ack[8] > 1 {
		t.Fatalf("stalled guest handshake: % x %v", ack, err)
	}
	return conn
}

// TestE2E_AVChatRoomStalledSubscriber: thousands of guests watch a live
// room; one subscriber's socket is stalled (its buffers are full and it
// never reads). Every other subscriber still gets every message promptly.
func TestE2E_AVChatRoomStalledSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	subscribers := scaled(5000, 600)
	b := StartBroker(t, func(c *config.Config) { c.Guests.Enabled = true })
	admin := b.Connect("administrator", "administrator")
	r := admin.Req("group.create", map[string]any{"Type": "AVChatRoom", "Name": "live"})
	if code(r) != 0 {
		t.Fatalf("create: %v", r)
	}
	gid := r["GroupId"].(string)
	topic := "im/g/" + gidLevel(gid)

	// Phase 1: stall one subscriber for real: flood it until mochi starts
	// dropping its live copies (its socket and queue are full).
	stalledGuest(t, b.MQTTAddr(), topic)
	big := Text(fmt.Sprintf("%08000d", 0), 0)
	for i := 0; b.App.Broker.Stats().MessagesDropped+b.App.Broker.Stats().InflightDropped == 0; i++ {
		if i > 5000 {
			t.Fatal("the stalled subscriber never filled up")
		}
		big["MsgRandom"] = Random()
		admin.Publish1("im/send/group/"+gidLevel(gid), big)
	}

	// Phase 2: the audience arrives and the show goes on.
	counts := make([]atomic.Int64, subscribers)
	guests := make([]paho.Client, subscribers)
	parallel(subscribers, 32, func(i int) {
		o := b.ClientOpts(fmt.Sprintf("guest/%d", i), "", "")
		o.SetUsername("").SetPassword("")
		o.SetDefaultPublishHandler(func(paho.Client, paho.Message) { counts[i].Add(1) })
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Errorf("guest %d: %v", i, tok.Error())
			return
		}
		if tok := c.Subscribe(topic, 0, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Errorf("guest %d subscribe: %v", i, tok.Error())
		}
		guests[i] = c
	})
	defer parallel(subscribers, 32, func(i int) {
		if guests[i] != nil {
			guests[i].Disconnect(0)
		}
	})
	if t.Failed() {
		return
	}
	const msgs = 10
	start := time.Now()
	for i := 0; i < msgs; i++ {
		admin.Publish1("im/send/group/"+gidLevel(gid), Text(fmt.Sprintf("frame %d", i), Random()))
	}
	waitFor(t, 60*time.Second, "every subscriber to get every message", func() bool {
		for i := range counts {
			if counts[i].Load() < msgs {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	t.Logf("%d messages reached %d subscribers (one stalled) in %v: %.0f deliveries/s",
		msgs, subscribers, elapsed, float64(msgs*subscribers)/elapsed.Seconds())
	if st := b.App.Broker.Stats(); st.ClientsConnected < int64(subscribers)+2 {
		t.Fatalf("the stalled subscriber was disconnected early: %d connected", st.ClientsConnected)
	}
}
