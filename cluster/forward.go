package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Forwarded requests travel over core NATS, request/reply, on the subject
// imb.fwd.{owner node}.{kind}: each node serves only its own subjects, so a
// request reaches the node the sender believes owns the log, and that node
// says so when it does not (statusNotOwner) instead of running it.
const (
	hdrStatus   = "Imb-Status"
	hdrError    = "Imb-Error"
	hdrDeadline = "Imb-Deadline" // the sender's deadline, unix nanoseconds: the handler's context ends with it
	hdrApplied  = "Imb-Applied"  // the owner's applied log position once the handler returned: the sender waits for it

	statusOK       = "ok"
	statusError    = "error"
	statusNotOwner = "not-owner"
)

// A kind is one or more NATS subject tokens joined by '.' (the broker's
// are "mqtt.c2c", "rest.v4", …): it ends the request's subject.
var kindRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

const maxKind = 64

// RemoteError is a handler's error on the owner, as the forwarding node
// sees it. Handlers that need a caller to tell failures apart encode them
// in their reply bytes; an error is "the request failed".
type RemoteError struct{ Node, Kind, Msg string }

func (e *RemoteError) Error() string {
	return fmt.Sprintf("cluster: %s on owner %s: %s", e.Kind, e.Node, e.Msg)
}

type fwdState struct {
	mu     sync.Mutex
	closed bool
	subs   map[string]*nats.Subscription
	wg     sync.WaitGroup // running handlers
	sem    chan struct{}  // cluster.forward_inflight slots
	resend sync.Map       // kind -> true: Resendable
}

func (f *fwdState) init(inflight int) {
	f.subs = map[string]*nats.Subscription{}
	f.sem = make(chan struct{}, inflight)
}

// Resendable declares that a request of kind may run twice with the
// effect of once (the handler recognises a repeat, e.g. a send's resend
// rule on MsgRandom): a request of kind cut short because the owner's node
// left (ErrOwnerGone) is then sent again to the next owner instead of
// failing with its outcome unknown. Declare it on every node, at start.
func (n *Node) Resendable(kind string) { n.fwd.resend.Store(kind, true) }

func (n *Node) resendable(kind string) bool {
	_, ok := n.fwd.resend.Load(kind)
	return ok
}

// close stops taking forwarded requests and waits for those running.
func (f *fwdState) close() {
	f.mu.Lock()
	f.closed = true
	for _, s := range f.subs {
		_ = s.Unsubscribe()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// Handle serves kind on this node: while it owns the log, requests other
// nodes Forward for kind run h, concurrently (at most
// cluster.forward_inflight at once), with a context ending at the sender's
// deadline. Register every kind on every node at start: any node may become
// the owner. kind is tokens of letters, digits, '-' and '_' joined by '.'
// (at most 64 bytes); another kind, or a second registration, panics (a
// programming error).
func (n *Node) Handle(kind string, h func(ctx context.Context, req []byte) ([]byte, error)) {
	if !validKind(kind) {
		panic(fmt.Sprintf("cluster: Handle: kind %q is not tokens of letters, digits, '-' or '_' joined by '.'", kind))
	}
	f := &n.fwd
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.subs[kind]; dup {
		panic("cluster: Handle: kind " + kind + " registered twice")
	}
	if f.closed {
		return
	}
	sub, err := n.nc.Subscribe(fwdPrefix+n.name+"."+kind, func(m *nats.Msg) { n.serve(kind, h, m) })
	if err != nil { // only on a closed connection, i.e. a shut-down node
		n.log.Warn("cluster: Handle: subscribe", "kind", kind, "err", err)
		return
	}
	f.subs[kind] = sub
}

// serve runs on the subscription's goroutine: it takes a slot (waiting
// there is the backpressure on senders) and runs the handler on its own.
func (n *Node) serve(kind string, h func(context.Context, []byte) ([]byte, error), m *nats.Msg) {
	f := &n.fwd
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.wg.Add(1)
	f.mu.Unlock()
	select {
	case f.sem <- struct{}{}:
	case <-n.ctx.Done():
		f.wg.Done()
		return
	}
	go func() {
		defer f.wg.Done()
		defer func() { <-f.sem }()
		ctx, cancel := context.WithCancel(n.ctx)
		if ns, err := strconv.ParseInt(m.Header.Get(hdrDeadline), 10, 64); err == nil {
			cancel()
			ctx, cancel = context.WithDeadline(n.ctx, time.Unix(0, ns))
		}
		defer cancel()
		reply := &nats.Msg{Subject: m.Reply, Header: nats.Header{}}
		if err := n.waitServing(ctx); err != nil {
			reply.Header.Set(hdrStatus, statusNotOwner)
			reply.Header.Set(hdrError, err.Error())
		} else if resp, err := h(ctx, m.Data); err != nil {
			reply.Header.Set(hdrStatus, statusError)
			reply.Header.Set(hdrError, err.Error())
		} else {
			reply.Header.Set(hdrStatus, statusOK)
			if store := n.applier(); store != nil {
				reply.Header.Set(hdrApplied, strconv.FormatUint(store.Applied(), 10))
			}
			reply.Data = resp
		}
		if m.Reply == "" {
			return
		}
		if err := n.nc.PublishMsg(reply); err != nil {
			n.log.Warn("cluster: reply to a forwarded request", "kind", kind, "err", err)
		}
	}()
}

// waitServing returns nil once this node owns the log; while it leads the
// stream but still catches up, it waits; otherwise it refuses at once.
func (n *Node) waitServing(ctx context.Context) error {
	for {
		n.mu.Lock()
		owner, leader, ch := n.owner, n.leader, n.changed
		n.mu.Unlock()
		if owner {
			return nil
		}
		if leader != n.name {
			return fmt.Errorf("node %s does not own the log (owner %q)", n.name, leader)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("node %s leads the log but has not caught up: %w", n.name, ctx.Err())
		case <-n.ctx.Done():
			return ErrShutdown
		}
	}
}

// Forward sends req to the owner's handler for kind and returns its reply.
// It waits for an owner (cluster.owner_wait in all) and each attempt for
// its answer (cluster.forward_timeout). It retries only when the request
// did not run: no node serves the owner's subject (the owner is gone) or
// the node answers that it does not own the log; then it waits for the
// next owner and sends again, so every kind may be forwarded. A timeout
// is not retried: the request may have run, its outcome is unknown (the
// error says so). Neither is an attempt cut short because the owner's
// node left (ErrOwnerGone), unless kind is Resendable. Calls made one
// after another from one goroutine reach the owner in that order;
// concurrent calls have no order.
func (n *Node) Forward(ctx context.Context, kind string, req []byte) ([]byte, error) {
	resp, _, err := n.ForwardAt(ctx, kind, req)
	return resp, err
}

// ForwardAt is Forward that also returns the owner's applied log position
// once the request ran (0 when the owner did not say): waiting until this
// node applied it (WaitApplied) makes the request's writes visible here.
func (n *Node) ForwardAt(ctx context.Context, kind string, req []byte) ([]byte, uint64, error) {
	if !validKind(kind) {
		return nil, 0, fmt.Errorf("cluster: forward: kind %q is not tokens of letters, digits, '-' or '_' joined by '.'", kind)
	}
	waitCtx, cancel := context.WithTimeout(ctx, n.cfg.OwnerWait)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		if err := n.WaitOwner(waitCtx); err != nil {
			return nil, 0, fmt.Errorf("cluster: forward %s: %w", kind, err)
		}
		owner := n.OwnerName()
		if owner == "" {
			continue
		}
		resp, pos, retry, err := n.forwardOnce(ctx, owner, kind, req)
		if !retry {
			return resp, pos, err
		}
		n.log.Debug("cluster: forward: owner moved, retrying", "kind", kind, "to", owner, "err", err)
		n.forgetLeader(owner)
		n.mu.Lock()
		changed := n.changed
		n.mu.Unlock()
		// The backoff ends early when a leader is learnt (the election's
		// advisory): the next owner gets the request at once.
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-waitCtx.Done():
			t.Stop()
			return nil, 0, fmt.Errorf("cluster: forward %s: %w: last attempt: %w", kind, ErrNoOwner, err)
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// forwardOnce sends one attempt; retry says send it again: it did not run,
// or the owner left and kind is Resendable.
func (n *Node) forwardOnce(ctx context.Context, owner, kind string, req []byte) (resp []byte, pos uint64, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	m := nats.NewMsg(fwdPrefix + owner + "." + kind)
	m.Data = req
	if dl, ok := ctx.Deadline(); ok {
		m.Header.Set(hdrDeadline, strconv.FormatInt(dl.UnixNano(), 10))
	}
	if owner != n.name { // a request to this node goes through no route
		gone, release := n.watch(owner)
		defer release()
		var cut context.CancelCauseFunc
		ctx, cut = context.WithCancelCause(ctx)
		defer cut(nil)
		defer context.AfterFunc(gone, func() { cut(context.Cause(gone)) })()
	}
	r, err := n.nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, 0, true, fmt.Errorf("cluster: forward %s: no node %s serving it: %w", kind, owner, err)
	case err != nil && errors.Is(context.Cause(ctx), ErrOwnerGone):
		return nil, 0, n.resendable(kind), fmt.Errorf("cluster: forward %s to %s: %w", kind, owner, ErrOwnerGone)
	case err != nil:
		return nil, 0, false, fmt.Errorf("cluster: forward %s to %s (outcome unknown): %w", kind, owner, err)
	}
	switch r.Header.Get(hdrStatus) {
	case statusOK:
		pos, _ := strconv.ParseUint(r.Header.Get(hdrApplied), 10, 64)
		return r.Data, pos, false, nil
	case statusNotOwner:
		return nil, 0, true, &RemoteError{Node: owner, Kind: kind, Msg: r.Header.Get(hdrError)}
	default:
		return nil, 0, false, &RemoteError{Node: owner, Kind: kind, Msg: r.Header.Get(hdrError)}
	}
}

func validKind(kind string) bool { return len(kind) <= maxKind && kindRE.MatchString(kind) }
