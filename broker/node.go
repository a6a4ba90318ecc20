package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/imbroker/imbroker/cluster"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// Cluster mode (cluster.enabled, docs/cluster.md): Start runs a cluster.Node
// before it opens the store, opens the store on the node's log, and hands
// the store to the node last, once every service and the MQTT side run.
// The node then follows the log into the store, or takes it over; each
// change of owner switches the store's writer, then the background writers
// (SetOwner).

// startNode starts this process's cluster node (no store attached yet).
func startNode(ctx context.Context, cfg config.Config, log *slog.Logger) (*cluster.Node, error) {
	n, err := cluster.Start(ctx, cfg.Cluster, cfg.Storage.Dir, nil, log)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return n, nil
}

// attachNode hands the open store to the node, after the owner callback is
// in place: from here on the node may make this broker the owner.
func (b *Broker) attachNode() {
	b.node.OnOwner(func(on bool) {
		if err := b.SetOwner(on); err != nil && !b.isStopped() {
			b.log.Error("cluster: switching the background writers", "on", on, "error", err)
		}
		if on && b.peers != nil {
			b.peers.Recheck() // statuses the previous owner may not have announced
		}
	})
	b.node.Attach(b.store)
}

func (b *Broker) isStopped() bool {
	b.ownerMu.Lock()
	defer b.ownerMu.Unlock()
	return b.stopped
}

// nodeCluster is a cluster.Node as the broker's Cluster. Forward returns
// once this node applied what the owner wrote for the request, so a PUBACK
// or REST answer followed by a read on this node sees the write; Barrier is
// the node's (REST reads on a node that does not write).
type nodeCluster struct {
	*cluster.Node
	log *slog.Logger
}

// Forward runs req on the owner, then waits until this node applied the
// log as far as the owner had once the request ran (the position rides
// with the answer; an owner that does not send it costs a Barrier, a
// round trip to the log's leader). A write done whose wait fails is still
// answered as done: it is durable on a quorum, and this node applies it
// shortly (live delivery follows); only an immediate read here may miss it.
func (c nodeCluster) Forward(ctx context.Context, kind string, req []byte) ([]byte, error) {
	resp, pos, err := c.Node.ForwardAt(ctx, kind, req)
	if err != nil {
		return nil, err
	}
	if pos > 0 {
		err = c.Node.WaitApplied(ctx, pos)
	} else {
		err = c.Node.Barrier(ctx)
	}
	if err != nil {
		c.log.Warn("cluster: a forwarded write is done but this node has not applied it yet", "kind", kind, "error", err)
	}
	return resp, nil
}

// ClusterStatus is this node's place in the cluster, for /metrics.
type ClusterStatus struct {
	Owner   bool   // this node owns the log: its store writes
	Applied uint64 // the last log position the store applied
}

// ClusterStatus reports the node's state; ok is false with cluster mode off.
func (b *Broker) ClusterStatus() (st ClusterStatus, ok bool) {
	if b.node == nil {
		return ClusterStatus{}, false
	}
	return ClusterStatus{Owner: b.node.IsOwner(), Applied: b.store.Applied()}, true
}

// clusterReady is nil while the node can serve: some node owns the log and
// this one follows it; otherwise why not (for /readyz).
func (b *Broker) clusterReady() error {
	if b.node == nil {
		return nil
	}
	if err := b.node.Health(); err != nil {
		return err
	}
	if b.node.OwnerName() == "" {
		return errors.New("cluster: no node owns the log (election or quorum lost)")
	}
	return nil
}

// storeLog is the store's Options.Log and MaxEffectBytes: the node's log,
// whose messages take cluster.max_effect_bytes, or nil (a single node
// commits locally). A group closes once its effect reaches the mark, and
// the request that passed it rides along, so the mark is half the limit.
func (b *Broker) storeLog() (storage.Log, int) {
	if b.node == nil {
		return nil, 0
	}
	return b.node.Log(), b.cfg.Cluster.MaxEffectBytes / 2
}

// openStore opens the store. On a cluster node that cannot catch up from
// the log (its next position has left it, or it joins empty a log started
// from another node's history), the store is replaced by the cluster's
// snapshot first and opened again: it then follows the log from there.
func (b *Broker) openStore(ctx context.Context) (*storage.Store, error) {
	cfg := b.cfg
	storeLog, maxEffect := b.storeLog()
	open := func() (*storage.Store, error) {
		return storage.Open(storage.Options{
			Dir: cfg.Storage.Dir, InMemory: cfg.Storage.InMemory, Sync: cfg.Storage.Sync,
			MaxBatch: cfg.Storage.MaxBatch, MaxQueue: cfg.Storage.MaxQueue, CommitInterval: cfg.Storage.CommitInterval, CacheBytes: int64(cfg.Storage.CacheMB) << 20,
			MemTableBytes: cfg.Storage.MemtableMB << 20, TableWriteBytesPerSec: cfg.Storage.TableWriteMB << 20, ReadCacheBytes: orOff(cfg.Storage.ReadCacheMB << 20),
			DedupMemoryKeys: orOff(cfg.Storage.DedupMemory), MinFreeBytes: int64(cfg.Storage.MinFreeMB) << 20,
			RecoverDamaged: cfg.Storage.RecoverDamaged, NewEpochs: cfg.Storage.NewEpochs,
			StallTimeout: cfg.Storage.CommitTimeout / 2, // a write gets half of a send's commit_timeout: queueing has the rest
			Logger:       b.log.With("component", "storage"), OnCommit: b.mqtt.Deliver,
			OnApply: b.applied, Log: storeLog, MaxEffectBytes: maxEffect,
		})
	}
	s, err := open()
	if err != nil || b.node == nil {
		return s, err
	}
	need, err := b.node.NeedsSnapshot(ctx, s)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	if !need {
		return s, nil
	}
	applied := s.Applied()
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("close the store before loading a snapshot: %w", err)
	}
	b.log.Warn("cluster: this node cannot catch up from the log: loading a snapshot", "applied", applied)
	if _, err := b.node.LoadSnapshot(ctx, cfg.Storage.Dir, applied); err != nil {
		return nil, err
	}
	return open()
}

// applied brings the services' in-memory state up to an effect applied
// from the log (storage.Options.OnApply): the loaded groups. Only a node
// that applies the log (attachNode, after the services started) calls it.
func (b *Broker) applied(a storage.Applied) {
	if b.groups != nil {
		b.groups.Applied(a)
	}
}
