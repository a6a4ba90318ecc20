// Package peers is a cluster node's view of the other nodes, kept over the
// node-to-node bus (cluster.Node's Publish/Subscribe, core NATS): where
// each user's connections are (presence), kicks and ClientID takeovers of
// connections held on another node, and the events of live rooms, which
// are not stored and so do not travel through the log (docs/cluster.md,
// "Presence, kicks and live rooms"). With cluster mode off nothing of it
// exists: the MQTT side checks one nil interface.
//
// Presence is eventually consistent: each node announces its own
// connections' starts and ends in order, numbered, and a heartbeat with
// its last number every presence_interval. A receiver that sees a gap, a
// heartbeat ahead of what it applied, or a node it does not know (a new or
// restarted node: another incarnation) asks that node for a snapshot of
// its connections; a node that starts says hello and every node answers
// with its snapshot. A node not heard from for presence_timeout is taken
// for dead: its connections are dropped from every view.
package peers

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/imbroker/imbroker/storage"
)

// Bus is the node-to-node bus (cluster.Node implements it).
type Bus interface {
	Publish(subject string, data []byte) error
	Subscribe(subject string, fn func(data []byte)) (stop func(), err error)
}

// Local is this node's MQTT side (mqttd.Server), acting on its own
// connections for requests of other nodes. Calls come from the bus's
// goroutines: each must return promptly (hand slow writes off).
type Local interface {
	// KickLocal disconnects user's connection holding clientID, or every
	// connection of user when clientID is "", with reason (Reason*), by
	// the login or admin by; it returns how many it found.
	KickLocal(user, clientID, reason, by string) int
	// TakeOver disconnects this node's connection of user holding
	// clientID with 0x8E (session taken over) if it started before at
	// (unix nanoseconds): the same ClientID logged in on another node.
	TakeOver(user, clientID string, at int64)
	// DeliverLocal hands live-room events to this node's live delivery.
	DeliverLocal(entries []storage.Entry)
	// NotifyLocal writes payload to user's connections on this node on
	// im/u/{user}{suffix}; it returns how many got it.
	NotifyLocal(user, suffix string, payload []byte) int
	// DropLocal ends users' subscriptions to im/g/{gid} on this node
	// (every subscriber's with no users).
	DropLocal(gid string, users ...string)
}

// Kick reasons.
const (
	ReasonAdmin       = "admin"
	ReasonDeviceLimit = "device limit"
)

// Device is one connection held on another node.
type Device struct {
	Node     string
	ClientID string
	At       int64 // connected at, unix nanoseconds (that node's clock)
}

// Options configure Start.
type Options struct {
	Bus      Bus
	Node     string        // this node's name
	Interval time.Duration // heartbeat (cluster.presence_interval)
	Timeout  time.Duration // a node not heard from this long is dead (cluster.presence_timeout)
	Local    Local
	// Changed is told that user's devices changed (on any node, this one
	// included, or a node was lost), one call at a time on the package's
	// own goroutine: the broker announces the user's status there when
	// this node owns the log. nil: nobody is told.
	Changed func(user string)
	Log     *slog.Logger
	// MaxDevices is devices.max_per_user (0: no limit) and RefuseDevices
	// its on_exceed: refuse (else kick_oldest): each node kicks its own
	// connections past the limit over every node (limit.go).
	MaxDevices    int
	RefuseDevices bool
	// LiveHeads is this node's numbering of live rooms, sent to a node
	// that asks (WantLiveHeads), which hands it to FollowLiveHeads: a late
	// node answers get_group_info's NextMsgSeq as the others do. Opaque
	// here (broker/groups encodes it); nil: not sent.
	LiveHeads       func() json.RawMessage
	FollowLiveHeads func(json.RawMessage)
}

// Subjects on the bus.
const (
	subjPresence = "imb.bus.presence" // every presence message of every node, in each sender's order
	subjKick     = "imb.bus.kick"
	subjLive     = "imb.bus.live"
	subjNotify   = "imb.bus.notify"
	subjDrop     = "imb.bus.drop"
	subjHeads    = "imb.bus.liveheads" // live rooms' numbering, for a node that starts
)

// Presence message ops.
const (
	opStart = "start" // a connection started (User, ClientID, At)
	opEnd   = "end"   // a connection ended
	opBeat  = "beat"  // heartbeat: Seq is the sender's last number
	opSnap  = "snap"  // the sender's whole set of connections at Seq, in parts (More: another follows)
	opWant  = "want"  // Target: publish a snapshot
	opHello = "hello" // the sender started: everyone publishes a snapshot
	opBye   = "bye"   // the sender stops: drop its connections now
)

type presenceMsg struct {
	Node     string
	Inc      int64  // the sender's incarnation (its start, unix ns): a restart is a new view
	Seq      uint64 // start/end: this message's number; beat/snap: the last one
	Op       string
	User     string     `json:",omitempty"`
	ClientID string     `json:",omitempty"`
	At       int64      `json:",omitempty"`
	Target   string     `json:",omitempty"`
	Devices  []snapConn `json:",omitempty"`
	Part     int        `json:",omitempty"` // snap: 0 for the first part
	More     bool       `json:",omitempty"` // snap: more parts follow
}

// snapPartBytes bounds a snapshot part's encoded size, far below the
// smallest NATS max_payload the config allows (cluster.max_effect_bytes
// is at least 64 KiB): a node with many connections sends many parts.
const snapPartBytes = 32 << 10

type snapConn struct {
	User, ClientID string
	At             int64
}

// kickMsg asks every node but Origin to disconnect all of User's
// connections (device-limit kicks need no message: every node recounts
// and kicks its own excess, broker/peers/limit.go).
type kickMsg struct {
	Origin string // the node that published it (it acted locally already)
	User   string
	Reason string
	By     string
}

type liveMsg struct {
	Origin  string
	Entries []storage.Entry
}

type notifyMsg struct {
	Origin, User, Suffix string
	Payload              []byte
}

type dropMsg struct {
	Origin, GID string
	Users       []string `json:",omitempty"`
}

// view is what a node knows of another node's connections.
type view struct {
	inc    int64
	seq    uint64 // the last numbered message applied
	synced bool   // users is that node's set at seq (else: a snapshot is wanted)
	// staging collects a snapshot's parts; nil when none is under way.
	staging  map[string]map[string]int64
	nextPart int
	heard    time.Time
	users    map[string]map[string]int64 // user -> ClientID -> connected at
}

// Peers is one node's side of presence, kicks and live rooms across nodes.
type Peers struct {
	o   Options
	log *slog.Logger
	inc int64

	mu      sync.Mutex
	seq     uint64                      // this node's last numbered presence message
	local   map[string]map[string]int64 // this node's connections
	remote  map[string]*view            // by node name
	wanted  map[string]time.Time        // last snapshot asked of each node
	changed map[string]struct{}         // users whose devices changed, not yet told
	kicked  map[string]int64            // user NUL ClientID -> connected at: kicked for the device limit, not ended yet

	wake   chan struct{}
	stops  []func()
	cancel context.CancelFunc
	done   chan struct{}
}

// Start subscribes to the bus, says hello and runs the heartbeat; Stop
// ends it.
func Start(o Options) (*Peers, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	p := &Peers{o: o, log: o.Log.With("component", "peers"), inc: time.Now().UnixNano(),
		local: map[string]map[string]int64{}, remote: map[string]*view{}, wanted: map[string]time.Time{},
		changed: map[string]struct{}{}, kicked: map[string]int64{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	for subj, fn := range map[string]func([]byte){
		subjPresence: p.onPresence, subjKick: p.onKick, subjLive: p.onLive, subjNotify: p.onNotify, subjDrop: p.onDrop, subjHeads: p.onHeads,
	} {
		stop, err := o.Bus.Subscribe(subj, fn)
		if err != nil {
			p.unsubscribe()
			return nil, err
		}
		p.stops = append(p.stops, stop)
	}
	p.mu.Lock()
	p.publishPresence(presenceMsg{Op: opHello})
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.loop(ctx)
	return p, nil
}

// Stop says bye (the other nodes drop this node's connections at once),
// ends the subscriptions and the heartbeat.
func (p *Peers) Stop() {
	p.mu.Lock()
	p.publishPresence(presenceMsg{Op: opBye})
	p.mu.Unlock()
	p.cancel()
	<-p.done
	p.unsubscribe()
}

func (p *Peers) unsubscribe() {
	for _, stop := range p.stops {
		stop()
	}
	p.stops = nil
}

// loop sends the heartbeat, drops nodes not heard from, and tells Changed.
func (p *Peers) loop(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.beat()
		case <-p.wake:
		}
		p.tell(ctx)
	}
}

func (p *Peers) beat() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publishPresence(presenceMsg{Op: opBeat, Seq: p.seq})
	now := time.Now()
	for node, v := range p.remote {
		if now.Sub(v.heard) > p.o.Timeout {
			p.log.Warn("cluster: node not heard from: its connections are offline", "peer", node,
				"silent", now.Sub(v.heard).Round(time.Millisecond).String(), "users", len(v.users))
			p.dropViewLocked(node)
		}
	}
}

// tell runs Changed for the users queued, outside the lock.
func (p *Peers) tell(ctx context.Context) {
	p.mu.Lock()
	users := make([]string, 0, len(p.changed))
	for u := range p.changed {
		users = append(users, u)
	}
	clear(p.changed)
	p.mu.Unlock()
	if p.o.Changed == nil {
		return
	}
	for _, u := range users {
		if ctx.Err() != nil {
			return
		}
		p.o.Changed(u)
	}
}

// markLocked queues users for Changed. Lock held.
func (p *Peers) markLocked(users ...string) {
	for _, u := range users {
		p.changed[u] = struct{}{}
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Peers) dropViewLocked(node string) {
	v := p.remote[node]
	if v == nil {
		return
	}
	delete(p.remote, node)
	for u := range v.users {
		p.markLocked(u)
	}
}

// publishPresence numbers nothing itself: callers set Seq. Lock held, so
// messages leave in the order of their numbers.
func (p *Peers) publishPresence(m presenceMsg) {
	m.Node, m.Inc = p.o.Node, p.inc
	p.publish(subjPresence, m)
}

func (p *Peers) publish(subj string, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		err = p.o.Bus.Publish(subj, b)
	}
	if err != nil {
		p.log.Warn("cluster: bus publish", "subject", subj, "error", err)
	}
}
