package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imbroker/imbroker/storage"
)

// ErrFenced is returned (wrapped) by Append when the log's last position is
// not prev: another writer appended, or this node does not own the log.
// It is storage's, so the store's committer recognises it.
var ErrFenced = storage.ErrFenced

// The store is what a node applies to, and the log is what the store
// appends to.
var (
	_ storage.Log = (*Log)(nil)
	_ Applier     = (*storage.Store)(nil)
)

// Log is the replicated commit log (the IMB_LOG stream). It implements
// storage.Log: its one method has that interface's signature and contract.
type Log struct{ n *Node }

// Append appends effect right after log position prev and returns its
// position once a quorum of the stream's replicas fsynced it. The append
// carries Nats-Expected-Last-Sequence = prev: if the log's last position
// is not prev nothing is appended and the error wraps ErrFenced. A node
// that does not own the log refuses at once (ErrFenced). Any other error
// (timeout, no quorum) leaves the outcome unknown: the owner then checks
// its store against the log before it writes again (a store that missed
// an effect that did land gets it from the log first).
func (l *Log) Append(ctx context.Context, prev uint64, effect []byte) (uint64, error) {
	n := l.n
	if !n.IsOwner() {
		return 0, fmt.Errorf("cluster: append after %d: node %s does not own the log (owner %q): %w", prev, n.name, n.OwnerName(), ErrFenced)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	ack, err := n.js.Publish(ctx, logSubject, effect,
		jetstream.WithExpectStream(streamName), jetstream.WithExpectLastSequence(prev))
	if err != nil {
		n.requestResync()
		if wrongLast(err) {
			return 0, fmt.Errorf("cluster: append after %d: %w (%v)", prev, ErrFenced, err)
		}
		return 0, fmt.Errorf("cluster: append after %d (%d bytes; outcome unknown): %w", prev, len(effect), err)
	}
	if ack.Sequence != prev+1 { // the fence makes this impossible; never hand out a wrong position
		n.requestResync()
		return 0, fmt.Errorf("cluster: append after %d acknowledged at %d: %w", prev, ack.Sequence, ErrFenced)
	}
	return ack.Sequence, nil
}

// wrongLast reports JetStream's "wrong last sequence" answer: 10071, or
// 10164 from a replicated stream.
func wrongLast(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// streamConfig is IMB_LOG. Limits retention with DiscardOld: the log never
// refuses a write for being full (that would stop the cluster); the oldest
// effects leave it past log_max_age or log_max_bytes instead, and a node
// whose next position has left is told so (ErrBehind) rather than skip it.
// Deletes and purges are denied so no position inside the log ever goes
// missing.
func (n *Node) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        streamName,
		Description: "imbroker commit log: one effect per committed group",
		Subjects:    []string{logSubject},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      n.cfg.LogMaxAge,
		MaxBytes:    n.cfg.LogMaxBytes,
		MaxMsgSize:  int32(n.cfg.MaxEffectBytes),
		MaxMsgs:     -1,
		Storage:     jetstream.FileStorage,
		Replicas:    n.cfg.Replicas,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// WaitApplied waits until this node's store applied log position pos (a
// ForwardAt answer's): then the forwarded request's writes are visible here.
func (n *Node) WaitApplied(ctx context.Context, pos uint64) error { return n.waitApplied(ctx, pos) }

// logState asks the stream's leader for the log's first and last positions.
func (n *Node) logState(ctx context.Context) (first, last uint64, leader string, err error) {
	s, err := n.js.Stream(ctx, streamName)
	if err != nil {
		return 0, 0, "", fmt.Errorf("cluster: stream info: %w", err)
	}
	info := s.CachedInfo()
	if info.Cluster != nil {
		leader = info.Cluster.Leader
	}
	return info.State.FirstSeq, info.State.LastSeq, leader, nil
}

// Barrier waits until this node applied the log up to its last position at
// the time of the call: a read after it sees every write acknowledged
// before the call, on any node.
func (n *Node) Barrier(ctx context.Context) error {
	_, last, _, err := n.logState(ctx)
	if err != nil {
		return fmt.Errorf("cluster: barrier: %w", err)
	}
	return n.waitApplied(ctx, last)
}
