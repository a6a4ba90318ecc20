package test

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/mqtttest"
)

// bpBroker is a broker with a tiny outbound queue per client and the
// smallest write buffer ahead of each socket, so a reader that lags shows
// at once, and the plain topic bp/# open to users.
func bpBroker(t *testing.T, wait time.Duration) *Broker {
	return StartBroker(t, mqACL(mqRule("allow", "all", "bp/#", "authenticated")), func(c *config.Config) {
		c.MQTT.MaxClientWritesPending = 8
		c.MQTT.WriteBufferMax = 1024
		c.MQTT.QueueFullWait = wait
	})
}

// bpDialSmall dials the broker with a small receive buffer, so that what the
// test does not read stays at the broker rather than in the kernel.
func bpDialSmall(t *testing.T, b *Broker) *mqtttest.Conn {
	t.Helper()
	d := net.Dialer{Timeout: mqtttest.Wait, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", b.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	c := mqtttest.Wrap(t, conn, true)
	c.Resume()
	return c
}

func bpLogin(t *testing.T, b *Broker, c *mqtttest.Conn, clientID, user string) {
	t.Helper()
	cp := mqRawLogin(b, clientID, user)
	cp.FixedHeader.Type = packets.Connect
	cp.Connect.ProtocolName = []byte("MQTT")
	cp.Connect.Keepalive = 30
	c.Send(cp)
	if ack := c.Expect(packets.Connack); ack.ReasonCode != 0 {
		t.Fatalf("%s: CONNACK 0x%02x", user, ack.ReasonCode)
	}
}

// A QoS 0 burst from one client to a slow reader with an 8-slot queue
// loses nothing: the publisher is held while the reader's queue is nearly
// full (mqtt.queue_full_wait). With queue_full_wait 0 (mochi's behaviour)
// most of the burst is dropped at the full queue.
func TestE2E_BackpressureQoS0NoLoss(t *testing.T) {
	const n, size = 4000, 600
	b := bpBroker(t, 5*time.Second)
	b.Accounts("bp_pub", "bp_sub")
	sub := bpDialSmall(t, b)
	bpLogin(t, b, sub, "bp_sub", "bp_sub")
	if rc := sub.Subscribe(1, 0, packets.Subscription{Filter: "bp/burst", Qos: 0}); rc[0] != 0 {
		t.Fatalf("SUBACK 0x%02x", rc[0])
	}
	pub := mqtttest.Dial(t, b.MQTTAddr(), true)
	bpLogin(t, b, pub, "bp_pub", "bp_pub")

	sent := make(chan error, 1)
	go func() {
		pad := make([]byte, size)
		for i := range n {
			p := append([]byte(strconv.Itoa(i)+" "), pad...)
			if err := pub.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: "bp/burst", Payload: p}); err != nil {
				sent <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
		sent <- nil
	}()

	// Read slowly: a pause of a tick after every 20 messages (the test's
	// reading pace, not a wait for an event), so the broker's copies back
	// up behind the 4 KB receive window.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := range n {
		if i%20 == 0 {
			<-tick.C
		}
		pk := sub.Expect(packets.Publish)
		want := strconv.Itoa(i) + " "
		if got := string(pk.Payload[:min(len(want), len(pk.Payload))]); got != want {
			t.Fatalf("message %d: got %q…, want %q…: copies were lost (dropped %d, held %d)", i, got, want,
				b.App.Broker.Stats().MessagesDropped, b.App.Broker.Stats().PublishesHeld)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	st := b.App.Broker.Stats()
	if st.MessagesDropped != 0 || st.PublishesHeld == 0 {
		t.Fatalf("dropped %d, held %d: want none dropped and the publisher held", st.MessagesDropped, st.PublishesHeld)
	}
	t.Logf("held %d times, gave up %d", st.PublishesHeld, st.HoldsGaveUp)
}

// A reader that reads nothing holds its publisher for queue_full_wait at
// most: then the copies are dropped as with mochi's own queue, and the
// publisher goes on at full speed (it does not wait again for a reader
// that makes no progress).
func TestE2E_BackpressureStalledReader(t *testing.T) {
	const n, size, wait = 4000, 2000, 300 * time.Millisecond
	b := bpBroker(t, wait)
	b.Accounts("bp_pub", "bp_sub", "bp_other")
	sub := bpDialSmall(t, b)
	defer sub.Discard()
	bpLogin(t, b, sub, "bp_sub", "bp_sub")
	if rc := sub.Subscribe(1, 0, packets.Subscription{Filter: "bp/stall", Qos: 0}); rc[0] != 0 {
		t.Fatalf("SUBACK 0x%02x", rc[0])
	}
	other := mqtttest.Dial(t, b.MQTTAddr(), true)
	bpLogin(t, b, other, "bp_other", "bp_other")
	if rc := other.Subscribe(1, 0, packets.Subscription{Filter: "bp/stall", Qos: 0}); rc[0] != 0 {
		t.Fatalf("SUBACK 0x%02x", rc[0])
	}
	// The test reads nothing more of sub: once the raw client's buffer
	// of 1,000 packets is full, nothing leaves sub's socket.
	pub := mqtttest.Dial(t, b.MQTTAddr(), true)
	bpLogin(t, b, pub, "bp_pub", "bp_pub")
	start := time.Now()
	pad := make([]byte, size)
	for i := range n {
		pub.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: "bp/stall", Payload: append([]byte(strconv.Itoa(i)+" "), pad...)})
	}
	// The other subscriber reads on: it gets the whole burst, in order.
	for i := range n {
		pk := other.Expect(packets.Publish)
		want := strconv.Itoa(i) + " "
		if got := string(pk.Payload[:len(want)]); got != want {
			t.Fatalf("other: message %d: got %q…, want %q…", i, got, want)
		}
	}
	took := time.Since(start)
	st := b.App.Broker.Stats()
	if st.HoldsGaveUp == 0 || st.MessagesDropped == 0 {
		t.Fatalf("gave up %d, dropped %d: the stalled reader should have been given up on and lost copies", st.HoldsGaveUp, st.MessagesDropped)
	}
	// One wait without progress per stall, not one per message: the burst
	// of 3,000 must not take 3,000 waits.
	if took > 20*wait {
		t.Fatalf("burst took %v with a stalled reader; queue_full_wait %v", took, wait)
	}
	t.Logf("burst %v; held %d, gave up %d, dropped %d", took, st.PublishesHeld, st.HoldsGaveUp, st.MessagesDropped)
}
