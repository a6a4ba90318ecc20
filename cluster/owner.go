package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imbroker/imbroker/storage"
)

// ownerLoop makes this node follow the log, or own it while its server
// leads the stream: on becoming leader it takes over once its store applied
// everything (takeover); on losing the lead it switches its store's writer
// off at once and follows again. It also creates the stream, which needs a
// quorum of nodes up.
func (n *Node) ownerLoop() {
	defer n.loops.Done()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var tail *tailer
	defer func() { tail.stop() }()
	streamReady := false
	var lastWarn, lastRefresh time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		case <-n.wake:
		}
		if !streamReady {
			// Short attempts: a request made before the JetStream
			// cluster has its meta leader only times out.
			ctx, cancel := context.WithTimeout(n.ctx, time.Second)
			_, err := n.js.CreateOrUpdateStream(ctx, n.streamConfig())
			if err == nil {
				_, err = n.js.CreateOrUpdateObjectStore(ctx, n.snapConfig())
			}
			cancel()
			if err != nil {
				if time.Since(lastWarn) > 10*time.Second && n.ctx.Err() == nil {
					lastWarn = time.Now()
					n.log.Warn("cluster: the log's stream is not available yet (a quorum of nodes must be up)", "err", err)
				}
				continue
			}
			streamReady = true
		}
		store := n.applier()
		if store == nil {
			// A node still opening its store (perhaps waiting for a
			// snapshot) cannot own the log: leave it to one that can.
			if n.leading() {
				n.handOver(errors.New("its store is not open yet"))
			}
			continue
		}
		leading := n.leading()
		n.mu.Lock()
		owner, resync := n.owner, n.resync
		n.resync = false
		if leading {
			n.setLeaderLocked(n.name)
		} else if n.leader == n.name {
			n.setLeaderLocked("")
		}
		unknown := n.leader == ""
		n.mu.Unlock()

		switch {
		case owner && !leading:
			n.relinquish(store, "lost the stream's leadership")
			owner = false
		case owner && resync:
			ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
			_, last, _, err := n.logState(ctx)
			cancel()
			if err != nil || last != store.Applied() {
				n.relinquish(store, fmt.Sprintf("an append failed and the store (applied %d) is not at the log's end (%d, err %v)", store.Applied(), last, err))
				owner = false
			} else {
				// Still at the log's end: writing again is safe. A store
				// switches its writer off by itself after ErrFenced, and
				// whatever it staged for the failed group is read again.
				store.SetWriter(true)
			}
		case !owner && leading:
			owner = n.takeover(store, &tail)
		}
		if !owner && tail != nil {
			if l := n.OwnerName(); l != "" && l != tail.leader {
				// A new leader: a fresh tail. The old one may be stuck
				// for up to 10 s in the JetStream client recreating its
				// consumer (each attempt has its own 10 s bound, and an
				// attempt made during the election is lost with the
				// dead node); halted, it applies nothing more.
				tail.halt()
				tail = nil
			}
		}
		if !owner && tail == nil {
			tail = n.startTail(store)
		}
		if unknown && time.Since(lastRefresh) > 250*time.Millisecond {
			lastRefresh = time.Now()
			n.refreshLeader()
		}
	}
}

func (n *Node) leading() bool { return n.srv.JetStreamIsStreamLeader(account, streamName) }

// takeoverDirect: a new leader this close to the log's end reads the
// missing effects itself, by position, instead of waiting for its tail.
// After the old owner died the tail's consumer is being recreated (a
// consumer needs the stream's leader, and the meta leader may have died
// too), which took up to 5 s under load; the effects the tail missed are
// the last few the old owner appended.
const takeoverDirect = 1024

// applyDirect applies the log's positions after the store's up to last,
// read one by one from the stream (this node leads it); it stops at the
// first error, and the tail or the next round goes on from there. Apply
// ignores a position the tail applied meanwhile.
func (n *Node) applyDirect(store Applier, last uint64) {
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	s, err := n.js.Stream(ctx, streamName)
	if err != nil {
		n.log.Debug("cluster: takeover: stream", "err", err)
		return
	}
	for pos := store.Applied() + 1; pos <= last && ctx.Err() == nil; pos = store.Applied() + 1 {
		m, err := s.GetMsg(ctx, pos)
		if err != nil {
			n.log.Debug("cluster: takeover: read the log", "pos", pos, "err", err)
			return
		}
		if m.Header.Get(hdrBase) != "" { // a base mark: the tail decides (tailOnce)
			return
		}
		if err := store.Apply(pos, m.Data); err != nil {
			n.log.Debug("cluster: takeover: apply", "pos", pos, "err", err)
			return
		}
		n.appliedDone(pos)
	}
}

// takeover makes this (leading) node the owner once its store applied the
// whole log: the tail goes on until Applied() == the log's last position,
// then stops (so nothing applies behind the committer), the position is
// checked again and the store's writer switched on. It gives up when the
// lead moves on meanwhile.
func (n *Node) takeover(store Applier, tail **tailer) bool {
	began := time.Now()
	for n.ctx.Err() == nil && n.leading() {
		if h := n.Health(); errors.Is(h, ErrBehind) || errors.Is(h, ErrAhead) || errors.Is(h, ErrForeign) {
			n.handOver(h)
			return false
		}
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		first, last, _, err := n.logState(ctx)
		cancel()
		applied := store.Applied()
		switch {
		case err != nil:
			n.log.Debug("cluster: takeover: log state", "err", err)
		case applied > last:
			err := fmt.Errorf("%w: applied %d, the log ends at %d", ErrAhead, applied, last)
			n.setHealth(err)
			n.log.Error("cluster: refusing to own the log: this node's store is ahead of it", "applied", applied, "log_last", last)
			n.handOver(err)
			return false
		case applied < last:
			n.log.Debug("cluster: takeover: catching up", "applied", applied, "log_first", first, "log_last", last)
			if *tail == nil {
				*tail = n.startTail(store)
			}
			if last-applied <= takeoverDirect {
				n.applyDirect(store, last)
				continue
			}
		case last == 0 && n.cfg.Seed != "" && n.cfg.Seed != n.name:
			// cluster.seed starts the log (its store may hold history
			// the log must start from): leave the lead to it.
			n.handOver(fmt.Errorf("the log is empty and cluster.seed names %s to start it", n.cfg.Seed))
			return false
		case last == 0 && commits(store) > 0:
			if err := n.startFromHistory(store); err != nil {
				n.log.Error("cluster: starting the log from this node's history", "err", err)
				n.handOver(err)
				return false
			}
		default:
			(*tail).halt()
			*tail = nil
			ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
			_, last, _, err = n.logState(ctx)
			cancel()
			if err == nil && last == store.Applied() && n.leading() {
				// owner before the writer: the committer's first append
				// must find IsOwner true; forwarded requests are let
				// through only after the writer is on (broadcast).
				n.mu.Lock()
				n.owner = true
				n.setLeaderLocked(n.name)
				n.mu.Unlock()
				store.SetWriter(true)
				n.mu.Lock()
				n.broadcastLocked()
				n.mu.Unlock()
				n.log.Info("cluster: this node owns the log", "applied", last, "took", time.Since(began).Round(time.Millisecond))
				n.notifyOwner(true)
				return true
			}
			*tail = n.startTail(store)
		}
		_ = n.waitProgress(n.ctx, pollEvery)
	}
	return false
}

// startFromHistory makes a store with single-node history (applied 0, some
// commits) the start of an empty log: the log's first position is a base
// mark naming this node, which writes nothing and only moves the store to
// position 1. Every other node finds the mark at position 1 and loads a
// snapshot of this store instead of applying the log from nothing, so no
// history is lost and every stream keeps its Epoch.
func (n *Node) startFromHistory(store Applier) error {
	effect := storage.BaseEffect(time.Now())
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
	defer cancel()
	m := nats.NewMsg(logSubject)
	m.Data = effect
	m.Header.Set(hdrBase, n.name)
	ack, err := n.js.PublishMsg(ctx, m, jetstream.WithExpectStream(streamName), jetstream.WithExpectLastSequence(0))
	if err != nil {
		return fmt.Errorf("append the base mark: %w", err)
	}
	if ack.Sequence != 1 {
		return fmt.Errorf("base mark appended at %d, not 1", ack.Sequence)
	}
	return n.applyBase(store)
}

// applyBase moves a store with history to position 1, its base mark, durably.
func (n *Node) applyBase(store Applier) error {
	if err := store.Apply(1, storage.BaseEffect(time.Now())); err != nil {
		return fmt.Errorf("apply the base mark: %w", err)
	}
	n.appliedDone(1)
	if s, ok := store.(Snapshotter); ok {
		if err := s.Sync(); err != nil {
			return err
		}
	}
	n.log.Info("cluster: the log starts from this node's store: the other nodes load a snapshot of it", "commits", commits(store))
	return nil
}

// waitProgress waits until the tail applies an effect, d passes, or ctx or
// the node ends (that error).
func (n *Node) waitProgress(ctx context.Context, d time.Duration) error {
	n.mu.Lock()
	ch := n.progress
	n.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.ctx.Done():
		return ErrShutdown
	}
	return nil
}

// handOver steps down from the stream's leadership when this node cannot
// own the log (it is behind what the log keeps, or ahead of it): left
// leading, it would keep the cluster without an owner. At most every 5s.
func (n *Node) handOver(why error) {
	if time.Since(n.lastHandOver) < 5*time.Second {
		return
	}
	n.lastHandOver = time.Now()
	n.handOvers.Add(1)
	n.log.Warn("cluster: handing the log's leadership over: this node cannot own it", "why", why)
	if err := n.srv.JetStreamStepdownStream(account, streamName); err != nil {
		n.log.Warn("cluster: step down", "err", err)
	}
}

// relinquish switches the store's writer off at once: its next append would
// be fenced anyway, and forwarded writes must go elsewhere.
func (n *Node) relinquish(store Applier, why string) {
	n.mu.Lock()
	n.owner = false
	n.broadcastLocked()
	n.mu.Unlock()
	store.SetWriter(false)
	n.log.Warn("cluster: this node no longer owns the log", "why", why, "applied", store.Applied())
	n.notifyOwner(false)
}

// requestResync asks the owner loop to check the store against the log
// after a failed append.
func (n *Node) requestResync() {
	n.mu.Lock()
	n.resync = true
	n.mu.Unlock()
	n.poke()
}

// refreshLeader asks the log's leader who it is. The owner loop calls it
// while no leader is known, during an election too, when nobody answers:
// a short bound, so that the loop sees its own election (leading) soon.
func (n *Node) refreshLeader() {
	ctx, cancel := context.WithTimeout(n.ctx, 300*time.Millisecond)
	defer cancel()
	if _, _, leader, err := n.logState(ctx); err == nil && leader != "" {
		n.mu.Lock()
		n.setLeaderLocked(leader)
		n.mu.Unlock()
	}
}

func (n *Node) onLeaderElected(m *nats.Msg) {
	var adv server.JSStreamLeaderElectedAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.Stream != streamName {
		return
	}
	n.mu.Lock()
	n.setLeaderLocked(adv.Leader)
	n.mu.Unlock()
	n.log.Info("cluster: log leader elected", "leader", adv.Leader)
	n.poke()
}

// forgetLeader drops a leader name a forward found unreachable, so the next
// attempt waits for a fresh one.
func (n *Node) forgetLeader(name string) {
	n.mu.Lock()
	if n.leader == name && name != n.name {
		n.setLeaderLocked("")
	}
	n.mu.Unlock()
	n.poke()
}

func (n *Node) broadcastLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

func (n *Node) setHealth(err error) {
	n.mu.Lock()
	n.health = err
	n.mu.Unlock()
}

// The tail's pull requests: each lasts tailExpiry; the server sends a
// heartbeat every tailHeartbeat while it has nothing to deliver.
const (
	tailExpiry    = 2 * time.Second
	tailHeartbeat = 500 * time.Millisecond
	tailCreate    = 2 * time.Second        // longest wait for the tail's consumer to be created
	tailRetry     = 250 * time.Millisecond // after a failed tail, unless a new leader comes first
)

// tailer is one running tail goroutine.
type tailer struct {
	leader string // the log's leader when the tail started ("" unknown)
	cancel context.CancelFunc
	done   chan struct{}
	// applying is held around each Apply, which runs only while the
	// tail's context is live: halt cancels it and takes applying, after
	// which the tail applies nothing, even if its goroutine is still
	// inside the JetStream client (a consumer being recreated can hold it
	// there for up to 10 s).
	applying sync.Mutex
}

// stop ends the tail and waits for its goroutine.
func (t *tailer) stop() {
	if t != nil {
		t.halt()
		<-t.done
	}
}

// halt ends the tail without waiting for its goroutine: once it returns
// the tail applies nothing more (the takeover switches the writer on
// right after).
func (t *tailer) halt() {
	if t == nil {
		return
	}
	t.cancel()
	t.applying.Lock()
	t.applying.Unlock() // empty: it only waits out an Apply under way
}

func (n *Node) startTail(store Applier) *tailer {
	ctx, cancel := context.WithCancel(n.ctx)
	t := &tailer{leader: n.OwnerName(), cancel: cancel, done: make(chan struct{})}
	n.appliedDone(store.Applied()) // applied before: at start, or while this node owned the log
	n.loops.Add(1)
	go func() {
		defer n.loops.Done()
		defer close(t.done)
		for {
			err := n.tailOnce(ctx, t, store)
			if ctx.Err() != nil {
				return
			}
			// A node behind or ahead of the log stays so until an
			// operator acts: retry, but rarely.
			wait := tailRetry
			if errors.Is(err, ErrBehind) || errors.Is(err, ErrAhead) || errors.Is(err, ErrForeign) {
				wait = 10 * time.Second
			}
			n.log.Warn("cluster: following the log stopped; retrying", "in", wait, "applied", store.Applied(), "err", err)
			n.mu.Lock()
			changed := n.changed
			n.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			case <-changed: // a leader was elected: the log can be read again
			}
		}
	}()
	return t
}

// tailOnce applies the log from the store's next position, in order, through
// an ordered consumer (it resumes after its last delivered position by
// itself when its server or the stream leader changes). A position that
// has left the log is reported (ErrBehind), never skipped.
func (n *Node) tailOnce(ctx context.Context, t *tailer, store Applier) error {
	_, last, _, err := n.logState(ctx)
	if err != nil {
		return err
	}
	if applied := store.Applied(); applied > last {
		err := fmt.Errorf("%w: applied %d, the log ends at %d", ErrAhead, applied, last)
		n.setHealth(err)
		n.log.Error("cluster: this node's store is ahead of the log: it cannot follow it", "applied", applied, "log_last", last)
		return err
	}
	if err := n.checkHistory(ctx, store, last); err != nil {
		n.setHealth(err)
		n.log.Error("cluster: this node cannot follow the log", "err", err)
		return err
	}
	start := store.Applied() + 1
	n.log.Debug("cluster: following the log", "from", start)
	// A short bound on creating the consumer: during a failover the
	// request can be lost with a dying meta leader, and JetStream's
	// default (5 s) held followers that long before the next try.
	cctx, ccancel := context.WithTimeout(ctx, tailCreate)
	cons, err := n.js.OrderedConsumer(cctx, streamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	ccancel()
	if err != nil {
		return fmt.Errorf("cluster: follow the log from %d: %w", start, err)
	}
	// A short heartbeat: when the consumer's server dies, the ordered
	// consumer notices the missing heartbeats (2 of them) and recreates
	// itself on a live one; the default (5s) left followers 10s behind.
	it, err := cons.Messages(jetstream.PullExpiry(tailExpiry), jetstream.PullHeartbeat(tailHeartbeat))
	if err != nil {
		return fmt.Errorf("cluster: follow the log from %d: %w", start, err)
	}
	defer it.Stop()
	defer context.AfterFunc(ctx, it.Stop)()
	stalled := make(chan error, 1)
	wctx, wcancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		n.watchTail(wctx, store, it, stalled)
	}()
	defer func() { wcancel(); <-watched }()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case err := <-stalled:
				return err
			default:
			}
			return fmt.Errorf("cluster: follow the log after %d: %w", store.Applied(), err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("cluster: log message metadata: %w", err)
		}
		seq, applied := md.Sequence.Stream, store.Applied()
		if seq <= applied {
			continue
		}
		if seq > applied+1 {
			err := fmt.Errorf("%w: applied %d, the log's next position is %d: this node needs a snapshot (it loads one when restarted)", ErrBehind, applied, seq)
			n.setHealth(err)
			n.log.Error("cluster: cannot catch up from the log: restart this node to load a snapshot", "applied", applied, "log_next", seq)
			return err
		}
		if base := msg.Headers().Get(hdrBase); base != "" && applied == 0 {
			// The log starts from base's history: this node has it only
			// if it is base (which crashed before recording the mark).
			if base != n.name || commits(store) == 0 {
				err := fmt.Errorf("%w: the log starts from a snapshot of node %s's store: restart this node to load it", ErrBehind, base)
				n.setHealth(err)
				n.log.Error("cluster: cannot follow the log: it starts from another node's history", "base", base)
				return err
			}
			if err := n.applyBase(store); err != nil {
				return err
			}
			continue
		}
		t.applying.Lock()
		if ctx.Err() != nil { // halted: the store may be the writer now
			t.applying.Unlock()
			return ctx.Err()
		}
		err = store.Apply(seq, msg.Data())
		t.applying.Unlock()
		if err != nil {
			return fmt.Errorf("cluster: apply log position %d: %w", seq, err)
		}
		n.appliedDone(seq)
		n.mu.Lock()
		n.health = nil
		close(n.progress)
		n.progress = make(chan struct{})
		n.mu.Unlock()
	}
}

// appliedDone records that the Apply of every position up to pos returned.
func (n *Node) appliedDone(pos uint64) {
	for {
		cur := n.done.Load()
		if pos <= cur || n.done.CompareAndSwap(cur, pos) {
			return
		}
	}
}

// tailStall is how long a follower's store may stay at one position while
// the log holds more before the tail starts over. The ordered consumer
// recreates itself when its server goes, but nats.go gives each attempt
// 10 s and backs off: after a partition a follower stayed 30 s behind,
// silently, and every write it forwarded waited for it.
const tailStall = 5 * time.Second

// watchTail stops it (sending the reason to stalled) when the store did not
// move for tailStall while the log holds positions past it.
func (n *Node) watchTail(ctx context.Context, store Applier, it jetstream.MessagesContext, stalled chan<- error) {
	t := time.NewTicker(tailStall)
	defer t.Stop()
	at := store.Applied()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		applied := store.Applied()
		if applied != at {
			at = applied
			continue
		}
		c, cancel := context.WithTimeout(ctx, time.Second)
		_, last, _, err := n.logState(c)
		cancel()
		if err == nil && last > applied {
			stalled <- fmt.Errorf("cluster: the log holds %d positions, this node stayed at %d for %s: following it again", last, applied, tailStall)
			it.Stop()
			return
		}
	}
}

// waitApplied waits until the store applied pos. The tail signals each
// apply; the owner's committer applies its own effects without telling the
// node, so the store is also polled (from 100µs up to 5ms apart).
//
// On a follower it waits until the Apply of pos returned, not only until
// the store counts pos as applied (it does so before Apply runs the
// services' OnApply and OnCommit hooks): a forwarded group join answered
// in between let the member's subscription on this node be refused.
func (n *Node) waitApplied(ctx context.Context, pos uint64) error {
	delay := 100 * time.Microsecond
	for {
		store := n.applier()
		if store != nil && store.Applied() >= pos && (n.done.Load() >= pos || n.IsOwner()) {
			return nil
		}
		if err := n.waitProgress(ctx, delay); err != nil {
			if errors.Is(err, ErrShutdown) {
				return err
			}
			applied := uint64(0)
			if store != nil {
				applied = store.Applied()
			}
			return fmt.Errorf("cluster: waiting to apply log position %d (applied %d): %w", pos, applied, err)
		}
		delay = min(delay*2, 5*time.Millisecond)
	}
}
