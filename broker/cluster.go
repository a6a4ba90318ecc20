package broker

import (
	"context"
	"errors"

	"github.com/imbroker/imbroker/broker/mqttd"
	"github.com/imbroker/imbroker/broker/ops"
)

// Cluster seams (docs/architecture.md): what the broker needs of a cluster
// node, and the switch that runs the background writers on the owner only.
// The node itself (NATS, the replicated log) lives elsewhere; with no
// Cluster (the default) the broker is the single node it always was.

// Cluster is a cluster node as the broker uses it (cluster.Node implements
// it). Forward must return once this node applied what the owner wrote for
// the request (read-your-writes; e.g. cluster.Node.Forward then Barrier).
type Cluster interface {
	IsOwner() bool
	Forward(ctx context.Context, kind string, req []byte) ([]byte, error)
	// Handle registers the owner's handler of kind, run for requests
	// other nodes forward.
	Handle(kind string, h func(ctx context.Context, req []byte) ([]byte, error))
}

// The MQTT side's forwarder is satisfied by a Cluster (internal/app checks
// rest.Forwarder).
var _ mqttd.Forwarder = Cluster(nil)

// Option configures Start.
type Option func(*options)

type options struct {
	cluster Cluster
}

// WithCluster makes the broker a node of c: on a node that is not the
// owner, every write (MQTT sends, writing im/req operations, writing REST
// calls, the account side of a login) is forwarded to the owner, and the
// background writers run only while SetOwner(true). Start registers the
// MQTT side's owner handlers with c.Handle (mqttd kinds); internal/app
// registers rest.KindV4.
func WithCluster(c Cluster) Option { return func(o *options) { o.cluster = c } }

// Cluster is the node given to WithCluster, or nil.
func (b *Broker) Cluster() Cluster { return b.cluster }

// startCluster registers the owner's handlers of the MQTT side's kinds.
func (b *Broker) startCluster() {
	if b.cluster == nil {
		return
	}
	for kind, h := range b.mqtt.OwnerHandlers() {
		b.cluster.Handle(kind, h)
	}
}

// forwarder is the cluster as the MQTT side's Forwarder, or a nil
// interface (never a typed nil: the hot path checks it for nil).
func (b *Broker) forwarder() mqttd.Forwarder {
	if b.cluster == nil {
		return nil
	}
	return b.cluster
}

// SetOwner starts (on) or stops (off) the writers that run in the
// background rather than for a request: the retention and dedup sweep, the
// statistics collector, and all-member push fan-outs (resumed from their
// stored cursors). In cluster mode the node calls it when this node gains
// or loses the lead, after the store's SetWriter; without a cluster they
// run from Start to Shutdown. A push fan-out running when the lead is lost
// stops at its next commit (refused: not the owner) and resumes on the new
// owner from its cursor.
func (b *Broker) SetOwner(on bool) error {
	b.ownerMu.Lock()
	defer b.ownerMu.Unlock()
	if b.stopped {
		return errors.New("broker stopped")
	}
	if !on {
		b.stopBackground()
		return nil
	}
	if b.stats.Load() == nil {
		st, err := b.startStats()
		if err != nil {
			return err
		}
		b.stats.Store(st)
	}
	b.push.Resume() // push tasks a shutdown or a lost lead interrupted go on (owned by b.tasks)
	if b.retention == nil {
		b.retention = b.startRetention()
	}
	return nil
}

// stopBackground stops the sweep and the collector (its last sample is
// written if the store still writes). Called with ownerMu held.
func (b *Broker) stopBackground() {
	b.retention.stop() // before the store closes: no trim in flight
	b.retention = nil
	b.stats.Swap(nil).Stop()
}

// RunOp runs the im/req operation name as a, forwarded to the owner when it
// writes and this node does not (mqttd.Server.RunOp): for callers inside
// the process that are not the services' own (the console).
func (b *Broker) RunOp(ctx context.Context, a ops.Actor, name string, req, resp any) error {
	return b.mqtt.RunOp(ctx, a, name, req, resp)
}
