// Package broker is the IM core. It owns the embedded mochi MQTT server and
// the store, makes every decision (auth, ACL, validation, sequencing) and
// delivers by publishing to topics. It knows nothing of HTTP.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/hooks/auth"
	"github.com/imbroker/imbroker/hooks/intake"
	"github.com/imbroker/imbroker/hooks/session"
	"github.com/imbroker/imbroker/internal/mochifix"
	"github.com/imbroker/imbroker/internal/usersig"
	"github.com/imbroker/imbroker/internal/wslistener"
	"github.com/imbroker/imbroker/storage"
)

// Broker is one imbroker node.
type Broker struct {
	cfg     config.Config
	log     *slog.Logger
	signer  *usersig.Signer
	store   *storage.Store
	mq      *mqtt.Server
	fix     *mochifix.Hook // mends mochi; also tells when a connection is attached
	deliver *deliverer
	metrics metrics

	callbacks *callbacks.Client

	handlers map[string]reqHandler
	ops      *ops.Registry // typed im/req operations of the domain services (looked up before handlers)
	devices  devices       // each user's live connections [IM-DEVICES]

	relations *relations.Service // profiles, friends, blacklist, status, mutes, accounts

	addrs    map[string]string // listener id -> bound address
	ready    atomic.Bool
	stopOnce sync.Once

	acks      sync.Map       // *mqtt.Client -> *ackPipe: pipelined PUBACKs (acks.go)
	pipelined sync.WaitGroup // sends whose PUBACK waits for their commit
	stopErr   error

	retention *retention   // the retention sweep (nil: disabled)
	tasks     *tasks       // device kicks and member-tip timers: stopped first at shutdown (tasks.go)
	convCache *convs.Cache // conversation records as convUpdates last encoded them (broker/convs)

	messages *messages.Service // the one-to-one send path, stamps and resends (broker/messages)
	convs    *convs.Service    // conversations: list, read, history, recall, receipts (broker/convs)
	groups   *groups.Service   // groups: state and rules, group.* ops, group sends (broker/groups)
}

type metrics struct {
	refused atomic.Int64
	syncs   atomic.Int64
}

// Listener ids.
const (
	ListenerTCP = "tcp"
	ListenerWS  = "ws"
	ListenerTLS = "tls"
)

// Start opens the store, binds every MQTT listener and starts serving. On
// error everything already started is undone.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Broker, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, src, err := ResolveSecretKey(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case src.Generated && src.Path != "":
		log.Warn("generated a new app secret key; UserSigs must be signed with it", "file", src.Path)
	case src.Generated:
		log.Warn("in-memory storage: using a random app secret key for this run only")
	case src.Path != "":
		log.Info("app secret key loaded", "file", src.Path)
	case src.FromEnv:
		log.Info("app secret key from environment", "variable", config.EnvSecretKey)
	}
	b := &Broker{cfg: cfg, log: log, signer: usersig.New(cfg.App.SDKAppID, key), addrs: map[string]string{},
		tasks: newTasks(), convCache: convs.NewCache(convs.CacheRecords)}
	b.handlers = b.requestHandlers()
	b.callbacks = newCallbacks(cfg, log)
	defer func() {
		if err != nil {
			b.callbacks.Close()
		}
	}()

	b.mq = mqtt.New(&mqtt.Options{
		InlineClient:             true,
		Capabilities:             b.capabilities(),
		Logger:                   mochifix.Logger(log, cfg.Log.Level == "debug").With("component", "mqtt"),
		SysTopicResendInterval:   60,
		ClientNetWriteBufferSize: 2048,
		ClientNetReadBufferSize:  2048,
	})
	b.deliver = newDeliverer(b.mq, cfg.Delivery.Workers, cfg.Delivery.Queue, log.With("component", "delivery"))
	defer func() {
		if err != nil {
			b.deliver.close()
		}
	}()
	b.store, err = storage.Open(storage.Options{
		Dir: cfg.Storage.Dir, InMemory: cfg.Storage.InMemory, Sync: cfg.Storage.Sync,
		MaxBatch: cfg.Storage.MaxBatch, MaxQueue: cfg.Storage.MaxQueue, CacheBytes: int64(cfg.Storage.CacheMB) << 20,
		MemTableBytes: cfg.Storage.MemtableMB << 20, ReadCacheBytes: orOff(cfg.Storage.ReadCacheMB << 20),
		DedupMemoryKeys: orOff(cfg.Storage.DedupMemory),
		Logger:          log.With("component", "storage"), OnCommit: b.deliver.enqueue,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = b.store.Close()
		}
	}()
	if err := b.startServices(); err != nil {
		return nil, err
	}
	if err := b.addHooks(); err != nil {
		return nil, err
	}
	if err := b.addListeners(); err != nil {
		_ = b.mq.Close()
		return nil, err
	}
	if err := b.mq.Serve(); err != nil {
		_ = b.mq.Close()
		return nil, fmt.Errorf("serve mqtt: %w", err)
	}
	for id, addr := range b.addrs {
		log.Info("mqtt listener started", "listener", id, "address", addr)
	}
	b.retention = b.startRetention() // last: no error path after it leaves it running
	b.ready.Store(true)
	return b, nil
}

// orOff maps a config size where 0 means off onto storage.Options, where 0
// means the default and a negative value means off.
func orOff(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func (b *Broker) capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	m := b.cfg.MQTT
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

func (b *Broker) addHooks() error {
	b.fix = new(mochifix.Hook) // first: see mochifix.Hook
	if err := b.mq.AddHook(b.fix, &mochifix.Options{
		Server: b.mq, KeepaliveMin: b.cfg.MQTT.KeepaliveMin, KeepaliveMax: b.cfg.MQTT.KeepaliveMax,
	}); err != nil {
		return fmt.Errorf("add mochifix hook: %w", err)
	}
	if err := b.mq.AddHook(new(auth.Hook), &auth.Options{Authorizer: b, Server: b.mq}); err != nil {
		return fmt.Errorf("add auth hook: %w", err)
	}
	if err := b.mq.AddHook(new(session.Hook), session.Watcher(b)); err != nil {
		return fmt.Errorf("add session hook: %w", err)
	}
	if err := b.mq.AddHook(new(intake.Hook), intake.Handler(b)); err != nil {
		return fmt.Errorf("add intake hook: %w", err)
	}
	return nil
}

func (b *Broker) addListeners() error {
	m := b.cfg.MQTT
	var ls []listeners.Listener
	if m.TCP != "" {
		ls = append(ls, listeners.NewTCP(listeners.Config{ID: ListenerTCP, Address: m.TCP}))
	}
	if m.TLS.Address != "" {
		cert, err := tls.LoadX509KeyPair(m.TLS.CertFile, m.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("load mqtt.tls certificate: %w", err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ls = append(ls, listeners.NewTCP(listeners.Config{ID: ListenerTLS, Address: m.TLS.Address, TLSConfig: tc}))
	}
	if m.WS != "" {
		ls = append(ls, wslistener.New(wslistener.Options{ID: ListenerWS, Address: m.WS, Path: m.WSPath, AllowedOrigins: m.WSAllowedOrigins}))
	}
	for _, l := range ls {
		if err := b.mq.AddListener(l); err != nil { // binds now: errors surface here
			return fmt.Errorf("mqtt listener %s on %s: %w", l.ID(), l.Address(), err)
		}
		b.addrs[l.ID()] = l.Address()
	}
	return nil
}

// Addr returns the bound address of a listener (ListenerTCP, ...), or "".
func (b *Broker) Addr(id string) string { return b.addrs[id] }

// Ready reports whether the broker accepts traffic.
func (b *Broker) Ready() error {
	if !b.ready.Load() {
		return errors.New("broker not ready")
	}
	return nil
}

// Shutdown stops in a fixed order: stop accepting and disconnect clients
// ("server shutting down"), finish live deliveries, then close the store
// last. It is idempotent; ctx bounds the wait.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.stopOnce.Do(func() {
		b.ready.Store(false)
		done := make(chan error, 1)
		go func() {
			b.retention.stop() // before the store closes: no trim in flight
			// Kicks and member-tip flushes already running finish (the store
			// and mochi are still open); pending ones are dropped (tasks.go).
			b.tasks.stop()
			b.closeMQTT()
			b.pipelined.Wait()  // pipelined sends finish their commits (the store is still open)
			b.callbacks.Close() // sends what is queued, each bounded by the timeout
			b.deliver.close()
			done <- b.store.Close()
		}()
		select {
		case b.stopErr = <-done:
		case <-ctx.Done():
			b.stopErr = fmt.Errorf("shutdown: %w", ctx.Err())
		}
	})
	return b.stopErr
}

// closeMQTT stops the MQTT side: listeners stop accepting, every client is
// sent DISCONNECT 0x8B (server shutting down), and no send is in flight
// afterwards (mochifix.Close).
func (b *Broker) closeMQTT() {
	ids := make([]string, 0, len(b.addrs))
	for id := range b.addrs {
		ids = append(ids, id)
	}
	_ = mochifix.Close(b.mq, ids)
}

// SessionStarting implements session.Watcher. A persistent session may hold
// IM events mochi sent but saw no ack for; resending them after the client
// has synced would deliver them twice, so they are dropped here, before mochi
// inherits and resends the session. The store is the queue. [IM-SYNC-2]
// It also records the connection as one of its user's devices, kicking the
// oldest past devices.max_per_user under kick_oldest. [IM-DEVICES]
func (b *Broker) SessionStarting(cl *mqtt.Client) {
	b.trackDevice(cl)
	b.presenceChanged(cl) // StatusChanged to friends (relations.status_events)
	b.stateLogin(cl)      // State.StateChange Login
	mochifix.DropInflight(b.mq, cl.ID, func(pk packets.Packet) bool { return strings.HasPrefix(pk.TopicName, topicUserPrefix) })
}

// SessionEnded implements session.Watcher. The connection stops counting as
// a device (unless a newer connection holds its ClientID by now).
func (b *Broker) SessionEnded(cl *mqtt.Client, err error) {
	b.untrackDevice(cl)
	b.forgetAcks(cl)
	b.presenceChanged(cl)
	b.stateEnded(cl, err) // State.StateChange Logout / Disconnect (takeovers never get here)
	b.log.Debug("client disconnected", "client", cl.ID, "user", userOf(cl), "cause", err)
}

// presenceChanged hands a connection's start or end to the relations
// service, which announces the user's state to their friends
// (relations.status_events). Guests and the inline client have no state.
func (b *Broker) presenceChanged(cl *mqtt.Client) {
	user := userOf(cl)
	if cl.Net.Inline || user == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Storage.CommitTimeout)
	defer cancel()
	b.relations.PresenceChanged(ctx, user)
}

// Relations is the relations service (for the REST API).
func (b *Broker) Relations() *relations.Service { return b.relations }

// Stats are the broker's counters (for tests now, /metrics later).
type Stats struct {
	ClientsConnected int64 // MQTT connections
	MessagesDropped  int64 // live copies mochi dropped at a full client queue
	InflightDropped  int64 // QoS>0 copies mochi dropped at a full inflight window
	DeliveryDropped  int64 // live copies dropped at a full delivery worker queue
	C2CSent          int64
	GroupSent        int64
	GroupDropped     int64 // over a group's rate limit
	Refused          int64 // publishes refused with an error
	Syncs            int64
	CallbacksSent    int64 // after-callbacks delivered
	CallbacksFailed  int64 // callbacks that failed (before: the policy decided; after: after retries)
	CallbacksDropped int64 // after-callbacks dropped at a full queue
}

// Stats returns a snapshot of the counters.
func (b *Broker) Stats() Stats {
	gs := b.groups.Stats()
	st := Stats{
		ClientsConnected: atomic.LoadInt64(&b.mq.Info.ClientsConnected),
		MessagesDropped:  atomic.LoadInt64(&b.mq.Info.MessagesDropped),
		InflightDropped:  atomic.LoadInt64(&b.mq.Info.InflightDropped),
		DeliveryDropped:  b.deliver.dropped.Load(),
		C2CSent:          b.messages.Sent(),
		GroupSent:        gs.Sent,
		GroupDropped:     gs.Dropped,
		Refused:          b.metrics.refused.Load(),
		Syncs:            b.metrics.syncs.Load(),
	}
	st.CallbacksSent, st.CallbacksFailed, st.CallbacksDropped = b.callbacks.Stats()
	return st
}

// StoreStats returns the store committer's counters (group commits, their
// latency, the queue) for /metrics.
func (b *Broker) StoreStats() storage.Stats { return b.store.Stats() }
