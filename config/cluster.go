package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"time"
)

// Cluster turns one imbroker process into a node of a cluster whose nodes
// share one replicated commit log: an embedded NATS server with JetStream on
// each node, joined to the others through NATS routes (docs/cluster.md). Off
// by default: nothing of NATS starts.
type Cluster struct {
	Enabled bool `yaml:"enabled"` // default false
	// Name is this node's name, unique in the cluster and stable across
	// restarts (JetStream knows its peers by it): letters, digits, '-', '_'.
	Name string `yaml:"name"`
	// Listen is where this node accepts routes from the other nodes
	// (host:port). Routes carry every write unencrypted: keep them on
	// loopback or a private network.
	Listen string `yaml:"listen"`
	// RoutePassword, when set, is required of every route (the same on
	// every node, at least 16 bytes): a process that reaches the route port
	// without it cannot join the cluster and read or write the log. Env
	// IMBROKER_CLUSTER_ROUTE_PASSWORD overrides. "" (default): routes
	// are not authenticated.
	RoutePassword string `yaml:"route_password"`
	// ClientListen is the embedded server's NATS client port, for
	// inspecting the cluster with the nats CLI (the node itself talks to
	// its server in process). Only a loopback host is accepted: the port
	// has no authentication. "" (default) or port 0: a free loopback port.
	ClientListen string `yaml:"client_listen"`
	// Routes lists every node's route address as nats-route://host:port
	// (this node's own entry is allowed and ignored), so one list serves
	// every node.
	Routes   []string `yaml:"routes"`
	Replicas int      `yaml:"replicas"` // copies of the log (JetStream stream replicas): 1 to 5; default 3; a write needs a majority of them

	ApplyTimeout   time.Duration `yaml:"apply_timeout"`   // longest an append waits for its quorum ack; default 5s
	ForwardTimeout time.Duration `yaml:"forward_timeout"` // longest a write forwarded to the owner waits for its answer; default 10s
	OwnerWait      time.Duration `yaml:"owner_wait"`      // longest a write waits for an owner to be elected (failover); default 15s

	// The log keeps effects for LogMaxAge and at most LogMaxBytes; older
	// ones are discarded. A node that falls further behind (down longer
	// than that) cannot catch up from the log and says so (docs/cluster.md).
	LogMaxAge      time.Duration `yaml:"log_max_age"`      // default 168h
	LogMaxBytes    int64         `yaml:"log_max_bytes"`    // default 4294967296 (4 GiB)
	MaxEffectBytes int           `yaml:"max_effect_bytes"` // largest effect (one commit group) the log takes: NATS max_payload; default 8388608 (8 MiB)
	// ForwardInflight bounds the forwarded requests the owner runs at once;
	// more wait for a slot (their caller's forward_timeout still runs).
	ForwardInflight int `yaml:"forward_inflight"` // default 4096

	// Presence travels on the node-to-node bus: each node announces its
	// connections' starts and ends and a heartbeat every PresenceInterval;
	// a node not heard from for PresenceTimeout is taken for dead and its
	// users offline (docs/cluster.md, "Presence").
	PresenceInterval time.Duration `yaml:"presence_interval"` // default 1s
	PresenceTimeout  time.Duration `yaml:"presence_timeout"`  // default 5s; at least 3 × presence_interval
	// Advertise is the route address the other nodes are told to reach
	// this node at when they learn of it from a third node (NAT, a proxy);
	// "" (default): listen.
	Advertise string `yaml:"advertise"`
	// Seed names the node that starts an empty log. A node whose data dir
	// holds single-node history must start the log (its history becomes a
	// snapshot the others load): set seed to it on every node. "" (default):
	// whichever node JetStream elects.
	Seed string `yaml:"seed"`
	// SnapshotInterval is how often the owner puts a snapshot of its store
	// into the cluster (when the log moved since the last one); a node that
	// cannot catch up from the log loads it at start. 0: only when a node
	// asks for one. Default 1h; below log_max_age.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// SnapshotTimeout bounds how long a starting node waits for a
	// snapshot (asked of the owner) and loads it. Default 10m.
	SnapshotTimeout time.Duration `yaml:"snapshot_timeout"`
}

func defaultCluster() Cluster {
	return Cluster{
		Routes: []string{}, Replicas: 3,
		ApplyTimeout: 5 * time.Second, ForwardTimeout: 10 * time.Second, OwnerWait: 15 * time.Second,
		LogMaxAge: 168 * time.Hour, LogMaxBytes: 4 << 30, MaxEffectBytes: 8 << 20, ForwardInflight: 4096,
		PresenceInterval: time.Second, PresenceTimeout: 5 * time.Second,
		SnapshotInterval: time.Hour, SnapshotTimeout: 10 * time.Minute,
	}
}

// A node name is one NATS subject token and a JetStream server name.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (v *validator) cluster(c Cluster) {
	v.check(c.Replicas >= 1 && c.Replicas <= 5, "cluster.replicas", "must be 1 to 5")
	v.positive("cluster.apply_timeout", c.ApplyTimeout)
	v.positive("cluster.forward_timeout", c.ForwardTimeout)
	v.positive("cluster.owner_wait", c.OwnerWait)
	v.positive("cluster.log_max_age", c.LogMaxAge)
	v.check(c.MaxEffectBytes >= 64<<10 && c.MaxEffectBytes <= 64<<20, "cluster.max_effect_bytes", "must be 65536 to 67108864 (64 KiB to 64 MiB)")
	v.check(c.LogMaxBytes >= 16*int64(c.MaxEffectBytes), "cluster.log_max_bytes", "must hold at least 16 effects of cluster.max_effect_bytes")
	v.check(c.ForwardInflight >= 1, "cluster.forward_inflight", "must be at least 1")
	v.positive("cluster.presence_interval", c.PresenceInterval)
	v.check(c.PresenceTimeout >= 3*c.PresenceInterval, "cluster.presence_timeout", "must be at least 3 × cluster.presence_interval (a heartbeat or two may be late)")
	v.check(c.SnapshotInterval >= 0 && c.SnapshotInterval < c.LogMaxAge, "cluster.snapshot_interval",
		"must be 0 (only when a node asks) or below cluster.log_max_age: a snapshot older than the log's oldest effect cannot be caught up from")
	v.positive("cluster.snapshot_timeout", c.SnapshotTimeout)
	v.check(c.Seed == "" || clusterName.MatchString(c.Seed), "cluster.seed", fmt.Sprintf("%q: a node name (letters, digits, '-', '_') or empty", c.Seed))
	if !c.Enabled {
		return
	}
	v.check(c.RoutePassword == "" || len(c.RoutePassword) >= 16, "cluster.route_password", "must be at least 16 bytes (or empty: routes not authenticated)")
	v.check(clusterName.MatchString(c.Name), "cluster.name", fmt.Sprintf("%q: required when cluster.enabled, 1 to 64 letters, digits, '-' or '_'", c.Name))
	v.addr("cluster.listen", c.Listen, false)
	if c.Advertise != "" {
		v.addr("cluster.advertise", c.Advertise, false)
	}
	if c.ClientListen != "" {
		host, _, err := net.SplitHostPort(c.ClientListen)
		ip := net.ParseIP(host)
		if err != nil {
			v.add("cluster.client_listen", fmt.Sprintf("not a host:port address: %q", c.ClientListen))
		} else if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			v.add("cluster.client_listen", fmt.Sprintf("%q: only a loopback address (127.0.0.1, ::1, localhost): the client port has no authentication", c.ClientListen))
		}
	}
	v.check(len(c.Routes) >= 2, "cluster.routes", "required when cluster.enabled: every node's nats-route://host:port, at least two (for one node, turn cluster off)")
	for i, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats-route" || u.Port() == "" || u.Hostname() == "" {
			v.add(fmt.Sprintf("cluster.routes[%d]", i), fmt.Sprintf("%q is not nats-route://host:port", r))
		}
	}
	v.check(len(c.Routes) >= c.Replicas || c.Replicas == 1, "cluster.replicas",
		fmt.Sprintf("%d replicas need at least as many nodes in cluster.routes (%d listed)", c.Replicas, len(c.Routes)))
}

// clusterStorage refuses the storage settings a cluster node cannot honour:
// its store is a copy of the replicated log, so a store that gives its
// streams new epochs on its own (recover_damaged, -new-epochs) would
// diverge from every other node, and one in memory would lose at each
// restart what the log no longer holds.
func (v *validator) clusterStorage(c Cluster, s Storage) {
	if !c.Enabled {
		return
	}
	v.check(!s.RecoverDamaged, "storage.recover_damaged", "not in cluster mode: a node's store is a copy of the cluster's log and cannot give its streams new epochs alone; move the damaged data dir away instead: an empty node catches up from the log while the log still holds its first position (docs/cluster.md)")
	v.check(!s.NewEpochs, "storage.new_epochs", "-new-epochs is refused in cluster mode: a node's store is a copy of the cluster's log and cannot give its streams new epochs alone")
	v.check(!s.InMemory, "storage.in_memory", "not in cluster mode: a node keeps its store and its copy of the log on disk (storage.dir)")
	// A forwarded write reaches the owner with the forward's deadline, and
	// the owner's store starts no write with less than half of
	// commit_timeout left: a shorter forward_timeout fails every one.
	v.check(c.ForwardTimeout > s.CommitTimeout/2, "cluster.forward_timeout",
		fmt.Sprintf("%s must exceed half of storage.commit_timeout (%s): the owner starts no write with less than that left", c.ForwardTimeout, s.CommitTimeout))
}
