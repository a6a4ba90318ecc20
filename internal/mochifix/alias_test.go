package mochifix_test

import (
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// holdResend holds mochi's resend of a resumed session on its last step:
// the hooks after the first resent PUBLISH is written (OnPacketSent, on the
// connection's read goroutine, before OnSessionEstablished). A loaded
// machine can pause that goroutine there just the same.
type holdResend struct {
	mqtt.HookBase
	once    sync.Once
	held    chan struct{} // closed when the resend is held
	release chan struct{}
}

func (h *holdResend) Provides(b byte) bool { return b == mqtt.OnPacketSent }

func (h *holdResend) OnPacketSent(cl *mqtt.Client, pk packets.Packet, b []byte) {
	if pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Dup {
		h.once.Do(func() {
			close(h.held)
			<-h.release
		})
	}
}

// A PUBLISH routed to a resumed session while mochi still resends its queue
// gets an alias: mochi routes messages to the connection from before its
// CONNACK, so the alias table must exist from then on (it used to start in
// OnSessionEstablished, after the resend, and such a PUBLISH went out
// without one).
func TestMochifix_AliasDuringResend(t *testing.T) {
	hold := &holdResend{held: make(chan struct{}), release: make(chan struct{})}
	ts := startServer(t, serverOpts{hooks: []mqtt.Hook{hold}})
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(hold.release) }) }
	t.Cleanup(release) // before the server's Close (cleanups run last first)
	login := func(clean bool) packets.Packet {
		cp := connect("o")
		cp.Connect.Clean = clean
		cp.Properties.TopicAliasMaximum = 2
		cp.Properties.SessionExpiryInterval, cp.Properties.SessionExpiryIntervalFlag = 60, true
		return cp
	}
	o := dial(t, ts.addr, login(true))
	o.Expect(packets.Connack)
	subscribe(t, o, "a/#")
	o.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	o.ClosedByServer()
	waitFor(t, "o offline", func() bool { cl, ok := ts.srv.Clients.Get("o"); return ok && cl.Closed() })
	must(t, ts.srv.Publish("a/1", []byte("queued"), false, 1))

	o2 := dial(t, ts.addr, login(false))
	if ca := o2.Expect(packets.Connack); !ca.SessionPresent {
		t.Fatal("session not resumed")
	}
	known := map[uint16]string{} // aliases o2 was told
	// expect reads the PUBLISH of payload; aliased says it must use an
	// alias (the server may always send the full topic instead, but here an
	// alias is free).
	expect := func(payload string, aliased bool) {
		t.Helper()
		pk := o2.Expect(packets.Publish)
		if string(pk.Payload) != payload {
			t.Fatalf("got %q, want %q", pk.Payload, payload)
		}
		a := pk.Properties.TopicAlias
		switch {
		case a == 0 && pk.TopicName != "" && !aliased:
			return
		case a == 0:
			t.Fatalf("%s: topic %q without an alias", payload, pk.TopicName)
		case pk.TopicName != "":
			known[a] = pk.TopicName
		case known[a] == "":
			t.Fatalf("%s: alias %d never set on this connection", payload, a)
		}
		if known[a] != "a/1" {
			t.Fatalf("%s: alias %d stands for %q", payload, a, known[a])
		}
	}
	expect("queued", false) // [MQTT-3.3.2-7]: never an alias of the old connection
	select {
	case <-hold.held:
	case <-time.After(wait):
		t.Fatal("resend not held")
	}
	must(t, ts.srv.Publish("a/1", []byte("live"), false, 1))
	expect("live", true)
	release()
	must(t, ts.srv.Publish("a/1", []byte("after"), false, 1))
	expect("after", true)
}
