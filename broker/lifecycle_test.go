package broker

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/config"
)

// startTestBroker starts a real broker: in-memory store, MQTT on a free
// loopback port. The test shuts it down itself; Cleanup is a safety net.
func startTestBroker(t *testing.T, mods ...func(*config.Config)) *Broker {
	t.Helper()
	cfg := config.Default()
	cfg.App.SecretKey = "lifecycle-test-secret-key"
	cfg.MQTT.TCP, cfg.MQTT.WS = "127.0.0.1:0", ""
	cfg.Storage.InMemory = true
	for _, m := range mods {
		m(&cfg)
	}
	b, err := Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return b
}

func shutdown(t *testing.T, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// loggingIn is a connection of user whose login is in progress: past auth
// and OnSessionEstablish (the mochifix hook's, then SessionStarting), its
// CONNACK not yet written.
func loggingIn(t *testing.T, b *Broker, clientID, user string) *mqtt.Client {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { _, _ = server.Close(), client.Close() })
	cl := b.mq.NewClient(server, ListenerTCP, clientID, false)
	cl.Properties.Username = []byte(user)
	b.fix.OnSessionEstablish(cl, packets.Packet{})
	return cl
}

// TestShutdownCancelsPendingKick: a device kick waits for its victim's own
// login to finish (mochifix WaitAttached, up to 5 s); Shutdown cancels it and waits
// for it, so no goroutine outlives the broker.
func TestShutdownCancelsPendingKick(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	b := startTestBroker(t, func(c *config.Config) {
		c.Devices.MaxPerUser, c.Devices.OnExceed = 1, config.DevicesKickOldest
	})
	b.trackDevice(loggingIn(t, b, "kim:phone", "kim"))
	b.trackDevice(loggingIn(t, b, "kim:laptop", "kim")) // kicks kim:phone, which never attaches
	if got := b.OnlineDevices("kim"); len(got) != 1 || got[0] != "kim:laptop" {
		t.Fatalf("devices of kim: %q, want the laptop only", got)
	}
	shutdown(t, b)
	goleak.VerifyNone(t, ignore)
}

// TestShutdownDropsPendingMemberTip: a live room's merged member tip waiting
// for its timer is dropped at shutdown (grouptips.go): the timer is stopped,
// so the flush can never run against the closed store.
func TestShutdownDropsPendingMemberTip(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	b := startTestBroker(t)
	ctx := context.Background()
	out, err := b.AdminRequest(ctx, "group.create", b.cfg.App.Admin, []byte(`{"Type":"AVChatRoom","Name":"room"}`))
	if err != nil {
		t.Fatal(err)
	}
	gid := out["GroupId"].(string)
	g, err := b.loadGroup(gid)
	if err != nil || g == nil {
		t.Fatal(g, err)
	}
	// The room's tip budget is spent for the next hour: the next join is
	// merged into a tip whose timer cannot fire during the test.
	g.op.Lock()
	g.tips.next = time.Now().Add(time.Hour)
	g.op.Unlock()
	join, _ := json.Marshal(map[string]string{"GroupId": gid})
	if _, err := b.AdminRequest(ctx, "group.join", "ann", join); err != nil {
		t.Fatal(err)
	}
	g.op.Lock()
	timer, pending := g.tips.timer, len(g.tips.pending)
	g.op.Unlock()
	if timer == nil || pending != 1 {
		t.Fatalf("after a join in a busy room: timer %v, %d pending changes; want a scheduled flush of 1", timer, pending)
	}

	shutdown(t, b)
	if timer.Stop() {
		t.Fatal("the member-tip timer was still pending after Shutdown")
	}
	g.op.Lock()
	pending = len(g.tips.pending)
	g.op.Unlock()
	if pending != 1 {
		t.Fatalf("%d pending changes after Shutdown, want the 1 dropped, not flushed", pending)
	}
	goleak.VerifyNone(t, ignore)
}
