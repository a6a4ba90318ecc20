// Package broker is the composition root of one imbroker node: it builds
// the store, the domain services and the MQTT side (broker/mqttd), wires
// them together, and starts and stops them in a fixed order.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/history"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/mqttd"
	"github.com/imbroker/imbroker/broker/peers"
	"github.com/imbroker/imbroker/broker/push"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/broker/stats"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/cluster"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/memtrim"
	"github.com/imbroker/imbroker/internal/refusals"
	"github.com/imbroker/imbroker/internal/tasks"
	"github.com/imbroker/imbroker/internal/usersig"
	"github.com/imbroker/imbroker/storage"
)

// Broker is one imbroker node.
type Broker struct {
	cfg       config.Config
	log       *slog.Logger
	signer    *usersig.Signer
	store     *storage.Store
	mqtt      *mqttd.Server // the MQTT side: mochi, hooks, connections, live delivery
	callbacks *callbacks.Client
	tasks     *tasks.Owner                    // device kicks and member-tip timers: stopped first at shutdown
	trim      *memtrim.Trimmer                // GC and memory back to the OS after a burst of logins; nil when off
	retention *retention                      // the retention sweep (nil: disabled)
	stats     atomic.Pointer[stats.Collector] // per-day statistics; set once started

	relations *relations.Service // profiles, friends, blacklist, status, mutes, accounts
	messages  *messages.Service  // the one-to-one send path, stamps and resends
	convs     *convs.Service     // conversations: list, read, history, recall, receipts
	groups    *groups.Service    // groups: state and rules, group.* ops, group sends
	push      *push.Service      // all-member push: attributes, tags, push tasks
	history   *history.Service   // get_history: hourly message-record files
	histTemp  bool               // the history dir is a temporary one (in-memory storage)
	convCache *convs.Cache       // conversation records as convs' updates last encoded them

	cluster Cluster       // WithCluster, or the node below; nil: a single node (cluster.go)
	node    *cluster.Node // cluster.enabled: this process's node (node.go); nil otherwise
	peers   *peers.Peers  // cluster.enabled: the other nodes' connections, kicks, live rooms (peers_wiring.go)
	// liveGroups is b.groups once it exists, for live-room events the
	// bus relays (peers start before the services; peers_wiring.go).
	liveGroups atomic.Pointer[groups.Service]
	ownerMu    sync.Mutex // SetOwner against Shutdown: the background writers
	stopped    bool       // Shutdown began (under ownerMu)

	ready    atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

// Listener ids.
const (
	ListenerTCP = mqttd.ListenerTCP
	ListenerWS  = mqttd.ListenerWS
	ListenerTLS = mqttd.ListenerTLS
)

// Start opens the store, builds the services, binds every MQTT listener and
// starts serving. On error everything already started is undone.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (_ *Broker, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
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
	signer := usersig.New(cfg.App.SDKAppID, key)
	if signer.PublicKey, err = cfg.App.VerifyKey(); err != nil {
		return nil, fmt.Errorf("app.public_key: %w", err)
	}
	if signer.PublicKey != nil {
		log.Info("UserSig v1 (ECDSA) enabled beside v2", "curve", signer.PublicKey.Curve)
	}
	b := &Broker{cfg: cfg, log: log, signer: signer, cluster: o.cluster,
		tasks: tasks.New(), convCache: convs.NewCache(convs.CacheRecords)}
	b.callbacks = newCallbacks(cfg, log)
	defer func() {
		if err != nil {
			b.callbacks.Close()
		}
	}()
	if cfg.Cluster.Enabled {
		if b.cluster != nil {
			return nil, errors.New("broker: WithCluster and cluster.enabled together")
		}
		// The node before the store: the store appends to its log.
		if b.node, err = startNode(ctx, cfg, log); err != nil {
			return nil, err
		}
		b.cluster = nodeCluster{b.node, log}
		// A one-to-one send carries MsgRandom (required) and a repeat
		// within messages.dedup_window stores nothing (the resend rule):
		// one cut short by the owner's death is sent to the next owner.
		b.node.Resendable(mqttd.KindC2C)
		defer func() {
			if err != nil {
				_ = b.node.Shutdown(context.WithoutCancel(ctx))
			}
		}()
	}
	// The MQTT side first: the store delivers committed events through it.
	b.trim = memtrim.New(memtrim.Options{AfterLogins: cfg.MQTT.TrimAfterLogins, Quiet: cfg.MQTT.TrimQuiet,
		Interval: cfg.MQTT.TrimInterval, GCEvery: cfg.MQTT.GCEveryLogins, Tasks: b.tasks,
		Activity: func() int64 { return b.mqtt.Activity() }}) // b.mqtt is set before the first login
	var logins mqttd.Logins
	if b.trim != nil { // not a typed nil in the interface
		logins = b.trim
	}
	if b.mqtt, err = mqttd.New(mqttd.Options{Config: cfg, Signer: b.signer, Tasks: b.tasks, Logins: logins, Log: log}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.mqtt.CloseDelivery()
		}
	}()
	if err := b.startPeers(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && b.peers != nil {
			b.peers.Stop()
		}
	}()
	if b.store, err = b.openStore(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if b.history != nil {
				b.history.Close(b.histTemp)
			}
			_ = b.store.Close()
		}
	}()
	reg, err := b.startServices()
	if err != nil {
		return nil, err
	}
	if err := b.mqtt.Serve(mqttd.Services{Store: b.store, Messages: b.messages, Groups: b.groups,
		Status: statusTap{b, b.relations}, Accounts: b.relations, Callbacks: b.callbacks, Ops: reg,
		Forward: b.forwarder(), Peers: b.mqttPeers()}); err != nil {
		return nil, err
	}
	b.startCluster()
	if b.node != nil {
		// Last: from here on the node may make this broker the owner
		// (SetOwner) or apply the log; no error path follows.
		b.attachNode()
	} else if b.cluster == nil || b.cluster.IsOwner() {
		// Last: no error path after it leaves the background writers running.
		if err := b.SetOwner(true); err != nil {
			b.mqtt.Close()
			return nil, err
		}
	}
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

// Addr returns the bound address of a listener (ListenerTCP, ...), or "".
func (b *Broker) Addr(id string) string { return b.mqtt.Addr(id) }

// Ready reports whether the broker accepts traffic.
func (b *Broker) Ready() error {
	if !b.ready.Load() {
		return errors.New("broker not ready")
	}
	if err := b.mqtt.ListenersErr(); err != nil {
		return err
	}
	if err := b.clusterReady(); err != nil {
		return err
	}
	return b.store.Health() // a store that cannot write: the disk is full, or a write failed
}

// Shutdown stops in a fixed order: the retention sweep and on-demand tasks,
// then the MQTT side (listeners stop, clients get DISCONNECT "server
// shutting down", pipelined sends finish), the cluster node (it steps down
// if it owns the log, and stops applying it), queued callbacks, live
// deliveries, and the store last. It is idempotent; ctx bounds the wait.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.stopOnce.Do(func() {
		b.ready.Store(false)
		done := make(chan error, 1)
		go func() {
			b.ownerMu.Lock()
			b.stopped = true
			b.retention.stop() // before the store closes: no trim in flight
			b.retention = nil
			b.ownerMu.Unlock()
			// Kicks and member-tip flushes already running finish (the store
			// and mochi are still open); pending ones are dropped.
			b.tasks.Stop()
			b.mqtt.Close()           // no client left, no send in flight (the store is still open)
			b.stats.Swap(nil).Stop() // a last sample while the store is open
			if b.peers != nil {
				b.peers.Stop() // after the connections' ends were announced
			}
			if b.node != nil {
				// Before live delivery stops and the store closes: the
				// node's tail applies to the store and delivers.
				if err := b.node.Shutdown(ctx); err != nil {
					b.log.Warn("cluster: shutdown", "error", err)
				}
			}
			b.callbacks.Close() // sends what is queued, each bounded by the timeout
			b.mqtt.CloseDelivery()
			b.history.Close(b.histTemp)
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

// Stats are the broker's counters (for tests now, /metrics later).
type Stats struct {
	ClientsConnected int64 // MQTT connections
	MessagesDropped  int64 // live copies mochi dropped at a full client queue
	InflightDropped  int64 // QoS>0 copies mochi dropped at a full inflight window
	DeliveryDropped  int64 // live copies dropped at a full delivery worker queue
	PublishesHeld    int64 // deliveries that waited for room in a subscriber's queue (mqtt.queue_full_wait)
	HoldsGaveUp      int64 // of them, waits that ended without the subscriber making progress
	C2CSent          int64
	GroupSent        int64
	GroupDropped     int64 // over a group's rate limit
	Refused          int64 // publishes refused with an error
	Syncs            int64
	CallbacksSent    int64 // after-callbacks delivered
	CallbacksFailed  int64 // callbacks that failed (before: the policy decided; after: after retries)
	CallbacksDropped int64 // after-callbacks dropped at a full queue
	MemoryTrims      int64 // GCs that gave memory back to the OS after a burst of logins (internal/memtrim)
	LoginGCs         int64 // GCs started every mqtt.gc_every_logins logins (internal/memtrim)
}

// Stats returns a snapshot of the counters.
func (b *Broker) Stats() Stats {
	gs, ms := b.groups.Stats(), b.mqtt.Stats()
	st := Stats{
		ClientsConnected: ms.ClientsConnected,
		MessagesDropped:  ms.MessagesDropped,
		InflightDropped:  ms.InflightDropped,
		DeliveryDropped:  ms.DeliveryDropped,
		PublishesHeld:    ms.Backpressure.Held,
		HoldsGaveUp:      ms.Backpressure.GaveUp,
		C2CSent:          b.messages.Sent(),
		GroupSent:        gs.Sent,
		GroupDropped:     gs.Dropped,
		Refused:          ms.Refused,
		Syncs:            ms.Syncs,
		MemoryTrims:      b.trim.Trims(),
		LoginGCs:         b.trim.GCs(),
	}
	st.CallbacksSent, st.CallbacksFailed, st.CallbacksDropped = b.callbacks.Stats()
	return st
}

// Refusals returns the refusals counted so far by reason and Tencent code
// (logins, subscriptions, publishes, Origins, rate limits), for /metrics.
func (b *Broker) Refusals() map[refusals.Key]int64 { return b.mqtt.Refusals() }

// StoreStats returns the store committer's counters (group commits, their
// latency, the queue) for /metrics.
func (b *Broker) StoreStats() storage.Stats { return b.store.Stats() }

// StoreLSMStats returns Pebble's flush and compaction counters, for /metrics.
func (b *Broker) StoreLSMStats() storage.LSMStats { return b.store.LSMStats() }

// StoreHealth is nil while the store can write, else why it cannot.
func (b *Broker) StoreHealth() error { return b.store.Health() }
