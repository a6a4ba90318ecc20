// Package mqttd is the mochi-facing side of imbroker: the MQTT server, its hooks and listeners, and every decision and write about one connection (auth, ACL, uplink, acks, replies, replays, devices, live delivery).
package mqttd

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imbroker/imbroker/internal/lazyconn"
	"github.com/imbroker/imbroker/internal/stackpool"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/hooks/auth"
	"github.com/imbroker/imbroker/hooks/intake"
	"github.com/imbroker/imbroker/hooks/session"
	"github.com/imbroker/imbroker/hooks/subs"
	"github.com/imbroker/imbroker/internal/backpressure"
	"github.com/imbroker/imbroker/internal/mochifix"
	"github.com/imbroker/imbroker/internal/netlisten"
	"github.com/imbroker/imbroker/internal/refusals"
	"github.com/imbroker/imbroker/internal/usersig"
	"github.com/imbroker/imbroker/internal/wslistener"
)

// Listener ids.
const (
	ListenerTCP = "tcp"
	ListenerWS  = "ws"
	ListenerTLS = "tls"
)

// Server is the MQTT side of one node. New builds it (mochi, its hooks,
// the delivery workers) before the store opens, since the store delivers
// through it; Serve gives it the domain services and starts listening.
type Server struct {
	cfg        config.Config
	log        *slog.Logger
	signer     *usersig.Signer
	tasks      Tasks
	logins     Logins          // nil: no one counts logins
	loginStack *stackpool.Pool // logins run on its workers, off the connection's stack
	mq         *mqtt.Server
	fix        *mochifix.Hook     // mends mochi; also tells when a connection is attached
	gate       *backpressure.Gate // holds publishers at a subscriber's nearly full queue
	anon       anonIDs            // ordinary anonymous ClientIDs against users' (anonids.go)
	deliver    *deliverer
	rooms      roomSubs             // each group topic's subscribers, for the room fan-out (roomsubs.go)
	users      userSubs             // each user topic's subscribers, for usercast (usersubs.go)
	conns      conns                // each user connection's state; each user's devices [IM-DEVICES]
	addrs      map[string]string    // listener id -> bound host:port
	urls       map[string]string    // listener id -> what clients dial, e.g. ws://host:port/mqtt
	listeners  []listeners.Listener // bound, in addListeners order

	pipelined sync.WaitGroup     // ack writers: sends whose PUBACK waits for their commit (acks.go)
	refused   atomic.Int64       // publishes refused with an error
	refusals  *refusals.Recorder // every refusal, logged rate-limited and counted (refusals.go)
	syncs     atomic.Int64       // sync requests served

	Services // set by Serve, before the first client connects
}

// Options configure New.
type Options struct {
	Config config.Config
	Signer *usersig.Signer // UserSig checks at CONNECT
	Tasks  Tasks           // owns device kicks
	Logins Logins          // told of each successful login; optional
	Log    *slog.Logger
}

// New builds the mochi server with its capabilities and hooks and starts
// the delivery workers. Nothing listens yet.
func New(o Options) (_ *Server, err error) {
	s := &Server{cfg: o.Config, log: o.Log, signer: o.Signer, tasks: o.Tasks, logins: o.Logins, addrs: map[string]string{}, urls: map[string]string{}}
	s.conns.ended = s.connEndedPeers
	s.loginStack = stackpool.New(o.Tasks, o.Config.MQTT.LoginWorkers)
	s.refusals = refusals.New(o.Log.With("component", "mqtt"), o.Config.Log.RefusalRate, o.Config.Log.RefusalBurst)
	if s.cfg.MQTT.MaxClients, err = maxClients(s.cfg.MQTT, o.Log); err != nil {
		return nil, err
	}
	s.mq = mqtt.New(&mqtt.Options{
		InlineClient:           true,
		Capabilities:           s.capabilities(),
		Logger:                 mochifix.Logger(o.Log, o.Config.Log.Level == "debug").With("component", "mqtt"),
		SysTopicResendInterval: 60,
		// Writes: mochi buffers only while its queue holds more packets,
		// and the lazyconn.Conn under it buffers the rest. Reads: mochi's
		// bufio.Reader is allocated per connection for its whole life, so
		// it is kept at bufio's minimum; lazyconn lends a pooled buffer to
		// a client that streams (mqtt.read_buffer).
		ClientNetWriteBufferSize: 2048,
		ClientNetReadBufferSize:  16,
	})
	if err := s.addHooks(); err != nil {
		return nil, err
	}
	d := o.Config.Delivery
	s.deliver = newDeliverer(s.mq, s.roomcast, s.usercast, d.Workers, d.Queue, o.Log.With("component", "delivery"))
	return s, nil
}

// Serve takes the services, binds every listener and starts mochi. On
// error mochi is closed (CloseDelivery is still the caller's).
func (s *Server) Serve(svc Services) error {
	if err := svc.check(); err != nil {
		return err
	}
	s.Services = svc
	if err := s.addListeners(); err != nil {
		_ = s.mq.Close()
		return err
	}
	if err := s.mq.Serve(); err != nil {
		_ = s.mq.Close()
		return fmt.Errorf("serve mqtt: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(s.addrs)) {
		s.log.Info("mqtt listener started", "listener", id, "address", s.addrs[id], "url", s.urls[id])
	}
	return nil
}

func (s *Server) capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	m := s.cfg.MQTT
	c.MaximumPacketSize = m.MaxPacketSize
	c.MaximumClientWritesPending = m.MaxClientWritesPending
	c.MaximumInflight = m.MaxInflight
	c.ReceiveMaximum = m.ReceiveMaximum
	c.MaximumSessionExpiryInterval = uint32(m.SessionExpiry / time.Second)
	c.MaximumClients = m.MaxClients
	c.TopicAliasMaximum = m.TopicAliasMaximum                       // both directions, by the mochifix hook
	c.Compatibilities.ObscureNotAuthorized = m.ObscureNotAuthorized // 0x80 instead of 0x87
	mochifix.SetCapabilities(c)
	return c
}

func (s *Server) addHooks() error {
	s.fix = new(mochifix.Hook) // first: see mochifix.Hook
	if err := s.mq.AddHook(s.fix, &mochifix.Options{
		Server: s.mq, KeepaliveMin: s.cfg.MQTT.KeepaliveMin, KeepaliveMax: s.cfg.MQTT.KeepaliveMax,
		KeepaliveZero: s.keepaliveZero, SessionEstablish: s.sessionEstablish, DisconnectLinger: s.cfg.MQTT.DisconnectLinger,
	}); err != nil {
		return fmt.Errorf("add mochifix hook: %w", err)
	}
	// Copies on im/ topics come from the delivery workers, which serve many
	// users: they wait only while the subscriber's socket keeps up.
	s.gate = backpressure.New(backpressure.Options{Queue: s.cfg.MQTT.MaxClientWritesPending, Wait: s.cfg.MQTT.QueueFullWait, Own: isIMTopic})
	ao := &auth.Options{Authorizer: s, Server: s.mq}
	if s.gate.Enabled() {
		if err := s.mq.AddHook(s.gate, nil); err != nil {
			return fmt.Errorf("add backpressure hook: %w", err)
		}
		ao.Deliveries = s.gate
	}
	if err := s.mq.AddHook(new(auth.Hook), ao); err != nil {
		return fmt.Errorf("add auth hook: %w", err)
	}
	if err := s.mq.AddHook(new(session.Hook), session.Watcher(s)); err != nil {
		return fmt.Errorf("add session hook: %w", err)
	}
	if err := s.mq.AddHook(new(intake.Hook), intake.Handler(s)); err != nil {
		return fmt.Errorf("add intake hook: %w", err)
	}
	if err := s.mq.AddHook(new(subs.Hook), subs.Watcher(s)); err != nil {
		return fmt.Errorf("add subs hook: %w", err)
	}
	return nil
}

// The hooks' interfaces, implemented here.
var (
	_ auth.Authorizer = (*Server)(nil)
	_ session.Watcher = (*Server)(nil)
	_ intake.Handler  = (*Server)(nil)
	_ subs.Watcher    = (*Server)(nil)
)

func (s *Server) addListeners() error {
	m := s.cfg.MQTT
	var ls []listeners.Listener
	if m.TCP != "" {
		ls = append(ls, netlisten.NewMQTT(netlisten.MQTTOptions{ID: ListenerTCP, Address: m.TCP, ConnectTimeout: m.ConnectTimeout, Log: s.listenerLog(), Ended: s.connEnded, Sessions: &s.mq.Listeners.ClientsWg}))
	}
	if m.TLS.Address != "" {
		cert, err := tls.LoadX509KeyPair(m.TLS.CertFile, m.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("load mqtt.tls certificate: %w", err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ls = append(ls, netlisten.NewMQTT(netlisten.MQTTOptions{ID: ListenerTLS, Address: m.TLS.Address, TLSConfig: tc, ConnectTimeout: m.ConnectTimeout, Log: s.listenerLog(), Ended: s.connEnded, Sessions: &s.mq.Listeners.ClientsWg}))
	}
	if m.WS != "" {
		ls = append(ls, wslistener.New(wslistener.Options{ID: ListenerWS, Address: m.WS, Path: m.WSPath, AllowedOrigins: m.WSAllowedOrigins,
			ConnectTimeout: m.ConnectTimeout, OriginRefused: s.originRefused, Log: s.listenerLog(), Ended: s.connEnded}))
	}
	lo := lazyconn.Options{ReadBuffer: m.ReadBuffer, WriteMax: m.WriteBufferMax, CloseFlush: m.CloseFlushTimeout}
	for _, l := range ls {
		if err := s.mq.AddListener(lazyconn.Wrap(l, lo)); err != nil { // binds now: errors surface here
			return fmt.Errorf("mqtt listener %s on %s: %w", l.ID(), l.Address(), err)
		}
		s.addrs[l.ID()] = l.Address()
		s.listeners = append(s.listeners, l)
		s.urls[l.ID()] = listenerURL(l)
	}
	return nil
}

// listenerLog is the listeners' logger: the broker's, not mochi's, which
// drops everything below Error (mochifix.Logger).
func (s *Server) listenerLog() *slog.Logger { return s.log.With("component", "mqtt") }

// listenerURL is the address clients dial, in the form MQTT clients take:
// tcp://host:port, ssl://host:port, ws://host:port/path, wss://host:port/path.
func listenerURL(l listeners.Listener) string {
	if ws, ok := l.(*wslistener.Listener); ok {
		return ws.URL()
	}
	if l.ID() == ListenerTLS {
		return "ssl://" + l.Address()
	}
	return "tcp://" + l.Address()
}

// ListenersErr reports the first listener that stopped accepting for good
// (not a deliberate Close), for /readyz; nil while all accept.
func (s *Server) ListenersErr() error {
	for _, l := range s.listeners {
		if f, ok := l.(interface{ Err() error }); ok {
			if err := f.Err(); err != nil {
				return fmt.Errorf("mqtt listener %s stopped accepting: %w", l.ID(), err)
			}
		}
	}
	return nil
}

// Addr returns the bound address of a listener (ListenerTCP, ...), or "".
func (s *Server) Addr(id string) string { return s.addrs[id] }

// Close stops the MQTT side: listeners stop accepting, every client is
// sent DISCONNECT 0x8B (server shutting down) and mochi waits for their
// goroutines (mochifix.Close), then the pipelined sends finish their
// commits and PUBACK writes. The store must still be open.
func (s *Server) Close() {
	ids := make([]string, 0, len(s.addrs))
	for id := range s.addrs {
		ids = append(ids, id)
	}
	_ = mochifix.Close(s.mq, ids)
	s.pipelined.Wait()
}

// CloseDelivery lets the delivery workers publish what is queued and stops
// them; the store must not commit afterwards.
func (s *Server) CloseDelivery() { s.deliver.close() }

// Stats are the MQTT side's counters.
type Stats struct {
	ClientsConnected int64 // MQTT connections
	MessagesDropped  int64 // live copies mochi dropped at a full client queue
	InflightDropped  int64 // QoS>0 copies mochi dropped at a full inflight window
	DeliveryDropped  int64 // live copies dropped at a full delivery worker queue
	Refused          int64 // publishes refused with an error
	Syncs            int64 // sync requests served
	Backpressure     backpressure.Stats
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		ClientsConnected: atomic.LoadInt64(&s.mq.Info.ClientsConnected),
		MessagesDropped:  atomic.LoadInt64(&s.mq.Info.MessagesDropped),
		InflightDropped:  atomic.LoadInt64(&s.mq.Info.InflightDropped),
		DeliveryDropped:  s.deliver.dropped.Load(),
		Refused:          s.refused.Load(),
		Syncs:            s.syncs.Load(),
		Backpressure:     s.gate.Stats(),
	}
}

// Activity counts PUBLISH packets received and sent: traffic, unlike the
// keepalive pings of idle connections. Read by internal/memtrim.
func (s *Server) Activity() int64 {
	return atomic.LoadInt64(&s.mq.Info.MessagesReceived) + atomic.LoadInt64(&s.mq.Info.MessagesSent)
}

// MQTTSession reports, for operators and tests, whether mochi holds a
// session for clientID, whether its connection is open, and how many QoS 1/2
// messages it has queued or in flight.
func (s *Server) MQTTSession(clientID string) (exists, connected bool, queued int) {
	cl, ok := s.mq.Clients.Get(clientID)
	if !ok {
		return false, false, 0
	}
	return true, !cl.Closed(), cl.State.Inflight.Len()
}

// HasRetained reports whether a retained message is stored on topic.
func (s *Server) HasRetained(topic string) bool {
	_, ok := s.mq.Topics.Retained.Get(topic)
	return ok
}

// connOps are the im/req operations the server runs itself, because they
// write to the asking connection; the registry must not hold them.
var connOps = []string{opSync, opGroupSync}

// check reports a missing service or a registry that shadows a
// connection op.
func (svc Services) check() error {
	if svc.Store == nil || svc.Messages == nil || svc.Groups == nil || svc.Status == nil || svc.Callbacks == nil || svc.Ops == nil {
		return fmt.Errorf("mqttd: missing service in %+v", svc)
	}
	for _, name := range connOps {
		if _, ok := svc.Ops.Lookup(name); ok {
			return fmt.Errorf("mqttd: operation %q is the server's own (it writes to the connection)", name)
		}
	}
	return nil
}
