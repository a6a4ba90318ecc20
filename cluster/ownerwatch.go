package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Watching the owner while requests are forwarded to it. A request in
// flight to an owner that dies gets no answer: without this it would wait
// cluster.forward_timeout, holding its connection's later sends behind it,
// although the node's routes tell at once that the owner is gone (a killed
// process's sockets close with it). While requests are in flight to a node,
// its routes are looked at every peerCheckEvery; once it has had none for
// peerMissing looks in a row, the requests are cut short with
// ErrOwnerGone and the leader it was known as is forgotten.

// ErrOwnerGone: the node a request was forwarded to left (no route to it)
// before it answered: the request may have run or not.
var ErrOwnerGone = errors.New("cluster: the owner's node left before answering (outcome unknown)")

const (
	peerCheckEvery = 25 * time.Millisecond
	// peerMissing looks without a route: a route being replaced (NATS
	// reconnects a broken one within a second) is not a dead node.
	peerMissing = 4
)

// peerWatch holds the nodes requests are in flight to.
type peerWatch struct {
	mu    sync.Mutex
	peers map[string]*peer
	kick  chan struct{} // cap 1: a peer was added
}

type peer struct {
	ctx     context.Context // cancelled (ErrOwnerGone) when the node is gone
	cancel  context.CancelCauseFunc
	users   int // requests in flight to it
	missing int // looks in a row that found no route to it
}

func (w *peerWatch) init() {
	w.peers = map[string]*peer{}
	w.kick = make(chan struct{}, 1)
}

// watch returns a context cancelled with ErrOwnerGone if node is found
// gone while the request runs; release when the request is over.
func (n *Node) watch(node string) (context.Context, func()) {
	w := &n.peers
	w.mu.Lock()
	p := w.peers[node]
	if p == nil {
		ctx, cancel := context.WithCancelCause(context.Background())
		p = &peer{ctx: ctx, cancel: cancel}
		w.peers[node] = p
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	p.users++
	w.mu.Unlock()
	return p.ctx, func() {
		w.mu.Lock()
		p.users--
		if p.users == 0 && w.peers[node] == p {
			delete(w.peers, node)
			p.cancel(nil)
		}
		w.mu.Unlock()
	}
}

// peerLoop looks at the routes while requests are in flight.
func (n *Node) peerLoop() {
	defer n.loops.Done()
	w := &n.peers
	t := time.NewTicker(peerCheckEvery)
	defer t.Stop()
	for {
		w.mu.Lock()
		idle := len(w.peers) == 0
		w.mu.Unlock()
		if idle {
			select {
			case <-n.ctx.Done():
				return
			case <-w.kick:
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.checkPeers()
	}
}

// checkPeers cuts short the requests to watched nodes without a route.
func (n *Node) checkPeers() {
	rz, err := n.srv.Routez(&server.RoutezOptions{})
	if err != nil {
		return
	}
	routed := make(map[string]bool, len(rz.Routes))
	for _, r := range rz.Routes {
		routed[r.RemoteName] = true
	}
	var gone []string
	w := &n.peers
	w.mu.Lock()
	for name, p := range w.peers {
		if routed[name] {
			p.missing = 0
			continue
		}
		if p.missing++; p.missing >= peerMissing {
			delete(w.peers, name)
			p.cancel(ErrOwnerGone)
			gone = append(gone, name)
		}
	}
	w.mu.Unlock()
	for _, name := range gone {
		n.log.Warn("cluster: no route to the owner: cutting short the requests forwarded to it", "owner", name)
		n.forgetLeader(name)
	}
}
