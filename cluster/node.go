// Package cluster makes one imbroker process a node of a cluster: an embedded
// NATS server with JetStream, routed to the other nodes, holds one replicated
// stream (IMB_LOG) that is the commit log of the store's committer
// (docs/cluster.md). The owner of the log is the stream's JetStream leader;
// only it appends, fenced on the last position its store applied; every
// other node tails the log and applies each effect in order. Writes that
// arrive elsewhere are forwarded to the owner over core NATS.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// Applier is the store side of a node (*storage.Store implements it).
type Applier interface {
	// Applied is the last log position the store applied (0 when fresh).
	Applied() uint64
	// Apply applies another node's effect at pos: pos must be Applied()+1;
	// pos <= Applied() is ignored (already applied).
	Apply(pos uint64, effect []byte) error
	// SetWriter switches the store's committer on (this node owns the log
	// and applied all of it) or off (appends would be fenced).
	SetWriter(on bool)
}

const (
	streamName  = "IMB_LOG"
	logSubject  = "imb.log"
	fwdPrefix   = "imb.fwd."
	clusterName = "imbroker" // the NATS cluster name every node shares
	routeUser   = "imbroker" // the user of route authentication (cluster.route_password)
	account     = server.DEFAULT_GLOBAL_ACCOUNT
	// pollEvery is how often a node reads its own leadership of the stream
	// from its embedded server (an in-memory check). JetStream has no
	// public leadership callback; the leader-elected advisory wakes the
	// loop sooner, this bounds what a missed advisory costs.
	pollEvery = 50 * time.Millisecond
)

// Node is one running cluster member. Its methods are safe for concurrent use.
type Node struct {
	cfg  config.Cluster
	log  *slog.Logger
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	lg   *Log
	name string

	ctx    context.Context // cancelled by Shutdown: ends the loops below
	cancel context.CancelFunc
	loops  sync.WaitGroup // the owner loop and the tail
	wake   chan struct{}  // cap 1: the owner loop should look now

	mu       sync.Mutex
	store    Applier
	owner    bool          // this node took the log over: its store writes
	leader   string        // the stream leader's node name as last known; "" unknown
	changed  chan struct{} // closed and replaced when owner or leader changes
	progress chan struct{} // closed and replaced when the tail applied an effect
	health   error         // why this node cannot follow the log (ErrBehind, …); nil when it can
	resync   bool          // an append failed: check the store against the log

	onOwner func(on bool) // OnOwner's callback; nil: none (set before Attach)

	lastHandOver time.Time    // the owner loop's last handOver
	handOvers    atomic.Int64 // handOvers so far (tests)

	fwd   fwdState
	peers peerWatch     // nodes forwarded requests are in flight to (ownerwatch.go)
	done  atomic.Uint64 // the last log position whose Apply returned here (waitApplied)

	dataDir   string        // storage.dir: snapshots are made and unpacked there
	snapping  chan struct{} // cap 1: TakeSnapshot one at a time
	snapAsked chan struct{} // cap 1: a node asked the owner for a snapshot
}

// Start runs the embedded NATS server (JetStream under dataDir/cluster,
// fsync on every write) and connects to it in process. It returns once the
// server is ready; creating the stream (which needs a quorum of nodes),
// following the log and owner elections go on in the background, so nodes
// may start in any order: WaitOwner waits for them.
//
// store may be nil when the store is opened after the node (it needs Log()
// first): Attach it then. Until a store is attached the node neither
// follows the log nor takes it over.
func Start(ctx context.Context, cfg config.Cluster, dataDir string, store Applier, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "cluster", "node", cfg.Name)
	opts, err := serverOptions(cfg, dataDir)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats server: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log.With("component", "nats")}, false, false, false)
	srv.Start()
	wait := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("cluster: nats server not ready within %s (route listen %s)", wait, cfg.Listen)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name(cfg.Name), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("cluster: nats client error", "subject", subj, "err", err)
		}))
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("cluster: connect to the embedded server: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	n := &Node{cfg: cfg, log: log, srv: srv, nc: nc, js: js, name: cfg.Name,
		wake: make(chan struct{}, 1), changed: make(chan struct{}), progress: make(chan struct{}),
		dataDir: dataDir, snapping: make(chan struct{}, 1), snapAsked: make(chan struct{}, 1)}
	n.lg = &Log{n: n}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.fwd.init(cfg.ForwardInflight)
	n.peers.init()
	// The leader-elected advisory tells every node who leads the stream.
	if _, err := nc.Subscribe(server.JSAdvisoryStreamLeaderElectedPre+"."+streamName, n.onLeaderElected); err != nil {
		_ = n.Shutdown(ctx)
		return nil, fmt.Errorf("cluster: subscribe to leader advisories: %w", err)
	}
	n.Handle(snapKind, n.serveSnapshot)
	n.loops.Add(3)
	go n.ownerLoop()
	go n.snapLoop()
	go n.peerLoop()
	if store != nil {
		n.Attach(store)
	}
	log.Info("cluster: node started", "listen", cfg.Listen, "routes", strings.Join(cfg.Routes, ","), "replicas", cfg.Replicas)
	return n, nil
}

// OnOwner registers f, called each time this node becomes the owner (true)
// or stops being it (false), right after its store's writer was switched
// on or off, so that work that writes outside requests (the broker's
// background writers) runs only where the store writes. It is called from
// the node's owner loop (or Shutdown, for false), holding no lock, in the
// order of the changes; while it runs the node neither takes the log over
// nor gives it up, so f should return promptly. Register it before
// Attach (a later registration misses changes already made).
func (n *Node) OnOwner(f func(on bool)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onOwner = f
}

// notifyOwner runs the OnOwner callback, if any. No lock held.
func (n *Node) notifyOwner(on bool) {
	n.mu.Lock()
	f := n.onOwner
	n.mu.Unlock()
	if f != nil {
		f(on)
	}
}

// Attach hands the node its store, once, when Start was given none.
func (n *Node) Attach(store Applier) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.store != nil {
		panic("cluster: Attach called twice")
	}
	n.store = store
	n.poke()
}

func (n *Node) applier() Applier {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.store
}

// Log is what storage.Options.Log gets (a *Log).
func (n *Node) Log() storage.Log { return n.lg }

// Name is this node's name.
func (n *Node) Name() string { return n.name }

// IsOwner reports whether this node owns the log: it leads the stream and
// its store applied everything before its committer was switched on.
func (n *Node) IsOwner() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.owner
}

// OwnerName is the node that leads the log as last known ("" while none is
// known, e.g. during an election). It may still be catching up: requests
// forwarded to it wait for that.
func (n *Node) OwnerName() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

// WaitOwner waits until some node is known to lead the log.
func (n *Node) WaitOwner(ctx context.Context) error {
	for {
		n.mu.Lock()
		leader, ch := n.leader, n.changed
		n.mu.Unlock()
		if leader != "" {
			return nil
		}
		n.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for an owner: %w: %w", ErrNoOwner, ctx.Err())
		case <-n.ctx.Done():
			return fmt.Errorf("cluster: waiting for an owner: %w", ErrShutdown)
		}
	}
}

// Health is nil while this node can follow the log; otherwise why not
// (ErrBehind: it needs a snapshot; ErrAhead: its store holds more than the
// log).
func (n *Node) Health() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.health
}

// Errors of the node.
var (
	ErrNoOwner  = errors.New("cluster: no node owns the log")
	ErrShutdown = errors.New("cluster: node shut down")
	// ErrBehind: the effects after this node's applied position have left
	// the log (cluster.log_max_age, log_max_bytes); it cannot catch up from
	// the log and needs a snapshot.
	ErrBehind = errors.New("cluster: this node is behind what the log keeps")
	// ErrAhead: the store applied positions the log does not hold (a log
	// lost or recreated under a kept store); the node refuses to own it.
	ErrAhead = errors.New("cluster: this node's store is ahead of the log")
)

// Shutdown steps down from the log if this node owns it (so another node
// takes over at once instead of after an election timeout), stops serving
// forwarded requests and waits for those running, stops following the log,
// closes the client and shuts the embedded server down.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	owner, store := n.owner, n.store
	n.owner = false
	n.mu.Unlock()
	if owner {
		store.SetWriter(false)
		n.notifyOwner(false)
		if err := n.srv.JetStreamStepdownStream(account, streamName); err != nil {
			n.log.Warn("cluster: step down at shutdown", "err", err)
		}
	}
	n.cancel()
	done := make(chan struct{})
	go func() {
		n.fwd.close()
		n.loops.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("cluster: shutdown: %w", ctx.Err())
	}
	n.nc.Close()
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.log.Info("cluster: node stopped")
	return err
}

// poke wakes the owner loop.
func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// setLeader records the stream leader's name. Lock held.
func (n *Node) setLeaderLocked(name string) {
	if n.leader != name {
		n.leader = name
		close(n.changed)
		n.changed = make(chan struct{})
	}
}

func serverOptions(cfg config.Cluster, dataDir string) (*server.Options, error) {
	host, port, err := splitPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster.listen: %w", err)
	}
	routes := server.RoutesFromStr(strings.Join(cfg.Routes, ","))
	if len(cfg.Routes) > 0 && len(routes) == 0 {
		return nil, fmt.Errorf("cluster.routes: cannot parse %q", cfg.Routes)
	}
	if cfg.RoutePassword != "" {
		for _, r := range routes {
			r.User = url.UserPassword(routeUser, cfg.RoutePassword)
		}
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		NoSigs:     true, // signals belong to imbroker
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "cluster"),
		// sync_interval: always. JetStream's default fsyncs every 2
		// minutes and acknowledges before; with it a quorum can ack a
		// write none of its nodes has on disk.
		SyncAlways:             true,
		MaxPayload:             int32(cfg.MaxEffectBytes) + 4096, // headers of the append ride with the effect
		Cluster:                server.ClusterOpts{Name: clusterName, Host: host, Port: port, Advertise: cfg.Advertise},
		Routes:                 routes,
		DisableJetStreamBanner: true,
		// A node that is down is retried every second; say so once a
		// minute, not every second on each pooled route.
		ReconnectErrorReports: 60,
	}
	if cfg.RoutePassword != "" {
		opts.Cluster.Username, opts.Cluster.Password = routeUser, cfg.RoutePassword
	}
	// The node connects in process; the client port exists because
	// nats-server starts routing only once its client listener is up
	// (DontListen with a cluster never routes, v2.15.3). Loopback only.
	client := cfg.ClientListen
	if client == "" {
		client = "127.0.0.1:0"
	}
	h, p, err := splitPort(client)
	if err != nil {
		return nil, fmt.Errorf("cluster.client_listen: %w", err)
	}
	opts.Host, opts.Port = h, p
	return opts, nil
}

// splitPort parses host:port; port 0 becomes NATS's "any free port" (-1:
// its 0 means the default port).
func splitPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(ps)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", ps, err)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, p, nil
}

// natsLogger sends the embedded server's log lines to slog.
type natsLogger struct{ l *slog.Logger }

func (g natsLogger) Noticef(f string, v ...any) { g.l.Info(fmt.Sprintf(f, v...)) }
func (g natsLogger) Warnf(f string, v ...any)   { g.l.Warn(fmt.Sprintf(f, v...)) }
func (g natsLogger) Fatalf(f string, v ...any)  { g.l.Error(fmt.Sprintf(f, v...), "fatal", true) }
func (g natsLogger) Errorf(f string, v ...any)  { g.l.Error(fmt.Sprintf(f, v...)) }
func (g natsLogger) Debugf(f string, v ...any)  { g.l.Debug(fmt.Sprintf(f, v...)) }
func (g natsLogger) Tracef(f string, v ...any)  {}
