package mochifix_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/mochifix"
)

var userProps = []packets.UserProperty{{Key: "k", Val: "v"}}

// #474: mochi acks a QoS 1 PUBLISH with reason 0x01 "granted QoS 1", which
// reaches the wire whenever the PUBACK has properties (here mochi's default
// of echoing the PUBLISH's).
func TestMochifix_PubackReasonIsSuccess(t *testing.T) {
	ts := startServer(t, serverOpts{})
	c := dial(t, ts.addr, connect("p"))
	c.Expect(packets.Connack)
	c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 7,
		TopicName: "a/b", Payload: []byte("x"), Properties: packets.Properties{User: userProps}})
	if ack := c.Expect(packets.Puback); ack.PacketID != 7 || ack.ReasonCode != 0 {
		t.Fatalf("PUBACK id %d reason 0x%02x, want 0x00", ack.PacketID, ack.ReasonCode)
	}
}

// Acks do not echo the request's user properties: PUBACK (SetCapabilities),
// SUBACK and UNSUBACK (the hook).
func TestMochifix_AcksDoNotEchoUserProperties(t *testing.T) {
	ts := startServer(t, serverOpts{caps: mochifix.SetCapabilities})
	c := dial(t, ts.addr, connect("p"))
	c.Expect(packets.Connack)
	c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1,
		TopicName: "a/b", Payload: []byte("x"), Properties: packets.Properties{User: userProps}})
	if ack := c.Expect(packets.Puback); len(ack.Properties.User) != 0 {
		t.Errorf("PUBACK user properties %v", ack.Properties.User)
	}
	c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: 2,
		Filters: packets.Subscriptions{{Filter: "a/#", Qos: 1}}, Properties: packets.Properties{User: userProps}})
	if ack := c.Expect(packets.Suback); len(ack.Properties.User) != 0 {
		t.Errorf("SUBACK user properties %v", ack.Properties.User)
	}
	c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe}, PacketID: 3,
		Filters: packets.Subscriptions{{Filter: "a/#"}}, Properties: packets.Properties{User: userProps}})
	if ack := c.Expect(packets.Unsuback); len(ack.Properties.User) != 0 {
		t.Errorf("UNSUBACK user properties %v", ack.Properties.User)
	}
}

// refuser refuses every CONNECT of client "no" with a reason string.
type refuser struct {
	mqtt.HookBase
	srv *mqtt.Server
}

func (h *refuser) Provides(b byte) bool { return b == mqtt.OnConnect }

func (h *refuser) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if cl.ID != "no" {
		return nil
	}
	code := packets.Code{Code: packets.ErrNotAuthorized.Code, Reason: "70013 not yours"}
	_ = mochifix.RefuseConnect(h.srv, cl, code)
	return code
}

// Request Problem Information 0 still allows a reason string on CONNACK and
// DISCONNECT [MQTT-3.1.2-29]; mochi strips it from every packet.
func TestMochifix_ProblemInfoOnConnackAndDisconnect(t *testing.T) {
	ref := &refuser{}
	ts := startServer(t, serverOpts{hooks: []mqtt.Hook{ref}})
	ref.srv = ts.srv
	noProblemInfo := func(clientID string) packets.Packet {
		cp := connect(clientID)
		cp.Properties.RequestProblemInfo, cp.Properties.RequestProblemInfoFlag = 0, true
		return cp
	}
	c := dial(t, ts.addr, noProblemInfo("no"))
	if ca := c.Expect(packets.Connack); ca.ReasonCode != 0x87 || ca.Properties.ReasonString != "70013 not yours" {
		t.Errorf("refusal CONNACK 0x%02x %q", ca.ReasonCode, ca.Properties.ReasonString)
	}
	c = dial(t, ts.addr, noProblemInfo("p"))
	c.Expect(packets.Connack)
	c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1, Payload: []byte("x"),
		Properties: packets.Properties{TopicAlias: 3, TopicAliasFlag: true}})
	if d := c.Expect(packets.Disconnect); d.ReasonCode != 0x82 || d.Properties.ReasonString != "topic alias not set" {
		t.Errorf("DISCONNECT 0x%02x %q", d.ReasonCode, d.Properties.ReasonString)
	}
}

// #488: mochi's Close deadlocks when a client connects or leaves while it
// disconnects a listener's clients. Close must return however the client
// map changes meanwhile. (mochi's own Close hangs within the first few runs of
// this test.)
func TestMochifix_CloseWhileClientsComeAndGo(t *testing.T) {
	const runs, nListeners, churners = 20, 128, 4
	for run := range runs {
		srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
		ids := make([]string, nListeners)
		for i := range ids {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			must(t, err)
			ids[i] = fmt.Sprint("l", i)
			must(t, srv.AddListener(listeners.NewNet(ids[i], ln)))
		}
		must(t, srv.Serve())
		stop := make(chan struct{})
		var wg, churning sync.WaitGroup
		for w := range churners {
			wg.Add(1)
			churning.Add(1)
			go func() {
				defer wg.Done()
				// One client added and deleted over and over: the map's write
				// lock is wanted nearly all the time.
				cl := srv.NewClient(nil, ids[w], fmt.Sprint("c", w), false)
				for i := 0; ; i++ {
					if i == 1 {
						churning.Done()
					}
					select {
					case <-stop:
						return
					default:
					}
					srv.Clients.Add(cl)
					srv.Clients.Delete(cl.ID)
				}
			}()
		}
		churning.Wait()
		closed := make(chan error, 1)
		go func() { closed <- mochifix.Close(srv, ids) }()
		select {
		case err := <-closed:
			must(t, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d: Close did not return (deadlock, mochi #488)", run)
		}
		close(stop)
		wg.Wait()
	}
}

// records keeps what reaches a slog handler.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// refusePublish refuses every client publish with a reason code, as
// imbroker's intake hook does.
type refusePublish struct{ mqtt.HookBase }

func (h *refusePublish) Provides(b byte) bool { return b == mqtt.OnPublish }

func (h *refusePublish) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	return pk, packets.ErrNotAuthorized
}

// mochi logs every publish refused with a reason code at Error, and per-event
// warnings (here a message dropped at a full inflight window): neither
// reaches the log; errors do.
func TestMochifix_LoggerDropsRefusalsAndWarnings(t *testing.T) {
	rec := &records{}
	log := mochifix.Logger(slog.New(rec), false)
	ts := startServer(t, serverOpts{log: log, hooks: []mqtt.Hook{&refusePublish{}},
		caps: func(c *mqtt.Capabilities) { c.MaximumInflight = 1 }})
	c := dial(t, ts.addr, connect("p"))
	c.Expect(packets.Connack)
	c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1, TopicName: "a/b", Payload: []byte("x")})
	if ack := c.Expect(packets.Puback); ack.ReasonCode != packets.ErrNotAuthorized.Code {
		t.Fatalf("PUBACK 0x%02x", ack.ReasonCode) // mochi logged the refusal before writing it
	}
	subscribe(t, c, "a/#")
	for range 2 { // the second finds the window (1) full: mochi warns before Publish returns
		must(t, ts.srv.Publish("a/b", []byte("x"), false, 1))
	}
	log.Error("kept")
	if got := rec.all(); !slices.Equal(got, []string{"ERROR kept"}) {
		t.Fatalf("log records %q, want only the error", got)
	}

	rec = &records{}
	debug := mochifix.Logger(slog.New(rec), true)
	debug.Debug("kept")
	debug.Error("publish packet error")
	if got := rec.all(); !slices.Equal(got, []string{"DEBUG kept"}) {
		t.Fatalf("debug log records %q", got)
	}
}

// dropOnEstablish drops the queued messages on q/drop of a resumed session.
type dropOnEstablish struct {
	mqtt.HookBase
	srv *mqtt.Server
}

func (h *dropOnEstablish) Provides(b byte) bool { return b == mqtt.OnSessionEstablish }

func (h *dropOnEstablish) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	mochifix.DropInflight(h.srv, cl.ID, func(pk packets.Packet) bool { return pk.TopicName == "q/drop" })
}

// A resumed session gets the messages sent but not acked before again;
// DropInflight keeps chosen ones from being resent.
func TestMochifix_DropInflight(t *testing.T) {
	drop := &dropOnEstablish{}
	ts := startServer(t, serverOpts{hooks: []mqtt.Hook{drop}})
	drop.srv = ts.srv
	login := func(clean bool) packets.Packet {
		cp := connect("s")
		cp.Connect.Clean = clean
		cp.Properties.SessionExpiryInterval, cp.Properties.SessionExpiryIntervalFlag = 60, true
		return cp
	}
	s := dial(t, ts.addr, login(true))
	s.Expect(packets.Connack)
	subscribe(t, s, "q/#")
	for _, topic := range []string{"q/drop", "q/keep"} {
		must(t, ts.srv.Publish(topic, []byte("x"), false, 1))
		s.Expect(packets.Publish) // not acked
	}
	s.Close()
	waitFor(t, "the session offline", func() bool { cl, ok := ts.srv.Clients.Get("s"); return ok && cl.Closed() })

	s = dial(t, ts.addr, login(false))
	if ca := s.Expect(packets.Connack); !ca.SessionPresent {
		t.Fatal("session not resumed")
	}
	// mochi resends the session's messages on the connection's goroutine
	// right after the CONNACK, and the marker goes through the write queue:
	// either may be written first. Read until both came; a resent q/drop
	// would come before q/keep (resends keep their order).
	must(t, ts.srv.Publish("q/marker", []byte("m"), false, 1))
	var resent []string
	for marker := false; !marker || !slices.Contains(resent, "q/keep"); {
		pk := s.Expect(packets.Publish)
		if pk.TopicName == "q/marker" {
			marker = true
			continue
		}
		resent = append(resent, pk.TopicName)
	}
	if !slices.Equal(resent, []string{"q/keep"}) {
		t.Fatalf("resent %v, want only q/keep", resent)
	}
}

// kickOnEstablish closes every connection from another goroutine as soon as
// it is established, the way imbroker kicks a device whose login raced
// another: the kick must wait for the connection's CONNACK.
type kickOnEstablish struct {
	mqtt.HookBase
	srv    *mqtt.Server
	fix    *mochifix.Hook
	kicked atomic.Pointer[mqtt.Client]
}

func (h *kickOnEstablish) Provides(b byte) bool { return b == mqtt.OnSessionEstablish }

func (h *kickOnEstablish) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	h.kicked.Store(cl)
	kicked := make(chan struct{})
	go func() {
		defer close(kicked)
		if h.fix.WaitAttached(context.Background(), cl, wait) {
			_ = h.srv.DisconnectClient(cl, packets.ErrAdministrativeAction)
		}
	}()
	// Hold this login back a little: a kick that does not wait for the
	// CONNACK lands before it. (An absence check, hence the timeout.)
	select {
	case <-kicked:
	case <-time.After(100 * time.Millisecond):
	}
}

func TestMochifix_WaitAttached(t *testing.T) {
	kick := &kickOnEstablish{}
	ts := startServer(t, serverOpts{hooks: []mqtt.Hook{kick}})
	kick.srv, kick.fix = ts.srv, ts.fix
	c := dial(t, ts.addr, connect("victim"))
	if ca := c.Expect(packets.Connack); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ca.ReasonCode)
	}
	if d := c.Expect(packets.Disconnect); d.ReasonCode != packets.ErrAdministrativeAction.Code {
		t.Fatalf("DISCONNECT 0x%02x", d.ReasonCode)
	}
	// A connection past its CONNACK needs no wait, a closed one reports so.
	cl := kick.kicked.Load()
	waitFor(t, "victim closed", cl.Closed)
	if ts.fix.WaitAttached(context.Background(), cl, wait) {
		t.Fatal("WaitAttached reports a closed connection open")
	}
}

// takeovers records, for each connection of client "x" that ends, whether
// TakenOver says it was replaced.
type takeovers struct {
	mqtt.HookBase
	ended chan bool
}

func (h *takeovers) Provides(b byte) bool { return b == mqtt.OnDisconnect }

func (h *takeovers) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.ended <- mochifix.TakenOver(cl, err)
}

func TestMochifix_TakenOver(t *testing.T) {
	// #173, the order mochi takes a session over in (inheritClientSession):
	// the old connection is stopped with ErrSessionTakenOver before its
	// IsTakenOver flag is set, and its OnDisconnect can run in between.
	cl := mqtt.New(nil).NewClient(nil, "t", "x", false)
	cl.Stop(packets.ErrSessionTakenOver)
	if cl.IsTakenOver() || !mochifix.TakenOver(cl, io.EOF) {
		t.Fatalf("stopped for a takeover, flag %v: TakenOver false", cl.IsTakenOver())
	}

	rec := &takeovers{ended: make(chan bool, 10)}
	ts := startServer(t, serverOpts{hooks: []mqtt.Hook{rec}})
	old := dial(t, ts.addr, connect("x"))
	old.Expect(packets.Connack)
	c := dial(t, ts.addr, connect("x"))
	c.Expect(packets.Connack)
	ended := func() bool {
		select {
		case v := <-rec.ended:
			return v
		case <-time.After(wait):
			t.Fatal("no OnDisconnect")
			return false
		}
	}
	if !ended() {
		t.Error("a taken-over connection's end: TakenOver false")
	}
	c.Close()
	if ended() {
		t.Error("a connection's own end: TakenOver true")
	}
}
