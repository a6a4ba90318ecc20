package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
	"github.com/nats-io/nats.go/jetstream"
)

// One three-node cluster goes through every step in order: the steps share
// its start-up (cluster formation is the slow part).
func TestCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	for _, n := range nodes {
		n.Handle("echo", func(ctx context.Context, req []byte) ([]byte, error) {
			if string(req) == "fail" {
				return nil, errors.New("asked to fail")
			}
			return []byte(n.name + ":" + string(req)), nil
		})
	}
	o := owner(t, nodes)
	if got := o.store.writerOn; !slices.Equal(got, []uint64{0}) {
		t.Fatalf("owner %s switched its writer on at %v, want once at 0", o.name, got)
	}
	var effects [][]byte
	appendN := func(t *testing.T, o *testNode, k int) {
		t.Helper()
		for range k {
			e := fmt.Appendf(nil, "effect-%d", len(effects)+1)
			pos, err := commit(ctx, o.Node, o.store, e)
			if err != nil {
				t.Fatal(err)
			}
			effects = append(effects, e)
			if pos != uint64(len(effects)) {
				t.Fatalf("appended at %d, want %d", pos, len(effects))
			}
		}
	}
	allApplied := func(t *testing.T, nodes ...*testNode) {
		t.Helper()
		for _, n := range nodes {
			eventually(t, 10*time.Second, n.name+" applies the log", func() bool { return n.store.Applied() == uint64(len(effects)) })
			if got := n.store.snapshot(); !slices.EqualFunc(got, effects, slices.Equal) {
				t.Fatalf("%s applied %q, want %q", n.name, got, effects)
			}
		}
	}
	followers := func() []*testNode {
		var fs []*testNode
		for _, n := range nodes {
			if n != o && n.Node != nil {
				fs = append(fs, n)
			}
		}
		return fs
	}

	t.Run("durable, replicated, nothing deletable", func(t *testing.T) {
		for _, n := range nodes {
			if c := n.srv.JetStreamConfig(); c == nil || !c.SyncAlways {
				t.Fatalf("%s: JetStream without sync always: %+v", n.name, c)
			}
		}
		s, err := o.js.Stream(ctx, streamName)
		if err != nil {
			t.Fatal(err)
		}
		c := s.CachedInfo().Config
		if c.Replicas != 3 || c.Storage != jetstream.FileStorage || c.Discard != jetstream.DiscardOld ||
			!c.DenyDelete || !c.DenyPurge || c.MaxBytes != o.cfg.LogMaxBytes || c.MaxAge != o.cfg.LogMaxAge {
			t.Fatalf("stream config %+v", c)
		}
	})

	t.Run("appends reach every node in order", func(t *testing.T) {
		appendN(t, o, 50)
		allApplied(t, nodes...)
		for _, n := range nodes {
			if err := n.Barrier(ctx); err != nil || n.store.Applied() != uint64(len(effects)) {
				t.Fatalf("%s barrier: %v, applied %d", n.name, err, n.store.Applied())
			}
		}
	})

	t.Run("a stale prev is fenced", func(t *testing.T) {
		checks := func() int { o.store.mu.Lock(); defer o.store.mu.Unlock(); return len(o.store.writerOn) }
		before := checks()
		_, err := o.Log().Append(ctx, o.store.Applied()-1, []byte("stale"))
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("stale prev: %v, want ErrFenced", err)
		}
		// A failed append makes the owner check its store against the log
		// and switch the writer on again; a real store writes nothing until
		// then (it switches itself off on ErrFenced). Appending before the
		// check would make it see the log one past the store and give up.
		eventually(t, 10*time.Second, "the owner checked its store against the log", func() bool { return checks() > before })
		f := followers()[0]
		if _, err := f.Log().Append(ctx, f.store.Applied(), []byte("follower")); !errors.Is(err, ErrFenced) {
			t.Fatalf("a follower's append: %v, want ErrFenced", err)
		}
		// The fence left the log as it was, and the owner keeps writing
		// (its store is at the log's end).
		appendN(t, o, 1)
		allApplied(t, nodes...)
		if !o.IsOwner() {
			t.Fatal("the owner lost the log over a stale append")
		}
	})

	t.Run("forward reaches the owner", func(t *testing.T) {
		for _, n := range nodes {
			got, err := n.Forward(ctx, "echo", []byte("hi"))
			if err != nil || string(got) != o.name+":hi" {
				t.Fatalf("forward from %s: %q, %v; want %q", n.name, got, err, o.name+":hi")
			}
		}
		_, err := followers()[0].Forward(ctx, "echo", []byte("fail"))
		var re *RemoteError
		if !errors.As(err, &re) || re.Node != o.name || re.Msg != "asked to fail" {
			t.Fatalf("a handler's error: %v", err)
		}
		for _, kind := range []string{"no such", "a..b", ".a", "a.", "a.*", ">", ""} {
			if _, err := o.Forward(ctx, kind, nil); err == nil {
				t.Fatalf("kind %q (not subject tokens) was forwarded", kind)
			}
		}
	})

	t.Run("stepdown moves the owner after it applied everything", func(t *testing.T) {
		old, next := o, followers()[0]
		// next cannot apply: it lags behind the log.
		next.store.setLagging(true)
		appendN(t, old, 5)
		stepDown(t, old, next.name)
		eventually(t, 15*time.Second, next.name+" leads the stream", next.leading)
		eventually(t, 5*time.Second, old.name+" gives the log up", func() bool { return !old.IsOwner() && !old.store.isWriter() })
		// The deposed owner's next append is fenced.
		if _, err := old.Log().Append(ctx, old.store.Applied(), []byte("deposed")); !errors.Is(err, ErrFenced) {
			t.Fatalf("the old owner's append: %v, want ErrFenced", err)
		}
		if next.IsOwner() || len(next.store.writerOn) != 0 {
			t.Fatalf("%s owns the log before applying it (applied %d of %d)", next.name, next.store.Applied(), len(effects))
		}
		// A write forwarded now waits for the new owner to catch up.
		fwd := make(chan string, 1)
		go func() {
			got, err := old.Forward(ctx, "echo", []byte("during"))
			fwd <- fmt.Sprint(string(got), err)
		}()
		next.store.setLagging(false)
		o = owner(t, nodes)
		if o != next {
			t.Fatalf("owner %s, want %s", o.name, next.name)
		}
		if got := next.store.writerOn; !slices.Equal(got, []uint64{uint64(len(effects))}) {
			t.Fatalf("%s switched its writer on at %v, want once at %d", next.name, got, len(effects))
		}
		if got := <-fwd; got != next.name+":during<nil>" {
			t.Fatalf("forward during the change: %s", got)
		}
		appendN(t, o, 5)
		allApplied(t, nodes...)
		// The deposed node's stale position is fenced by the log itself.
		if _, err := old.Log().Append(ctx, old.store.Applied()-1, []byte("deposed")); !errors.Is(err, ErrFenced) {
			t.Fatalf("old owner: %v", err)
		}
	})

	t.Run("one node down keeps the log writable, two stop it", func(t *testing.T) {
		fs := followers()
		fs[0].stop(t)
		start := time.Now()
		appendN(t, o, 1)
		t.Logf("first append with a node down: %s", time.Since(start).Round(time.Millisecond))
		appendN(t, o, 2)
		allApplied(t, o, fs[1])
		t.Logf("applied: %s", time.Since(start).Round(time.Millisecond))
		if got, err := fs[1].Forward(ctx, "echo", []byte("x")); err != nil || string(got) != o.name+":x" {
			t.Fatalf("forward with a node down: %q %v", got, err)
		}
		t.Logf("forwarded: %s", time.Since(start).Round(time.Millisecond))
		fs[1].stop(t)
		start = time.Now()
		_, err := commit(ctx, o.Node, o.store, []byte("alone"))
		if err == nil {
			t.Fatal("an append was acknowledged by one node of three")
		}
		t.Logf("append without a quorum failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		if o.store.Applied() != uint64(len(effects)) {
			t.Fatalf("the lone node applied %d, want %d", o.store.Applied(), len(effects))
		}
	})
}

// A store behind what the log keeps is told so and never applies past the
// hole; a store ahead of the log is told so too.
func TestCluster_BehindAndAhead(t *testing.T) {
	nodes := startCluster(t, 3, func(c *config.Cluster) { c.LogMaxBytes = 2 << 10 })
	o := owner(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	effect := make([]byte, 200)
	for range 40 {
		if _, err := commit(ctx, o.Node, o.store, effect); err != nil {
			t.Fatal(err)
		}
	}
	first, last, _, err := o.logState(ctx)
	if err != nil || first <= 1 || last != 40 {
		t.Fatalf("log %d..%d (%v): the size cap should have dropped the oldest", first, last, err)
	}
	var f *testNode
	for _, n := range nodes {
		if n != o {
			f = n
		}
	}

	// A follower restarted on an empty store: positions 1..first-1 are gone.
	f.stop(t)
	f.store = &memStore{}
	f.start(t)
	eventually(t, 20*time.Second, "ErrBehind reported", func() bool { return errors.Is(f.Health(), ErrBehind) })
	if f.IsOwner() || f.store.Applied() != 0 {
		t.Fatalf("a node behind the log: owner %v, applied %d", f.IsOwner(), f.store.Applied())
	}
	// Made the leader, it hands the lead over: the cluster keeps an owner.
	moveLeader(t, o, f.cfg.Name, func() bool { return f.handOvers.Load() > 0 })
	var next *testNode
	// Each hand-over is a stepdown and an election (at most one every 5 s
	// from f): under -race on a loaded machine that has taken over 20 s.
	handedOver := func() bool {
		for _, n := range nodes {
			if n != f && n.leading() && n.IsOwner() {
				next = n
				return !f.leading()
			}
		}
		return false
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(45 * time.Second); !handedOver(); <-tick.C {
		if time.Now().After(deadline) {
			var state []string
			for _, n := range nodes {
				state = append(state, fmt.Sprintf("%s: leading %v owner %v health %v hand-overs %d", n.name, n.leading(), n.IsOwner(), n.Health(), n.handOvers.Load()))
			}
			t.Fatalf("after 45s: %s did not hand the lead over to a node that owns the log: %s", f.name, strings.Join(state, "; "))
		}
	}
	if f.IsOwner() {
		t.Fatal("a node behind the log owns it")
	}
	if _, err := commit(ctx, next.Node, next.store, effect); err != nil {
		t.Fatalf("writes after the hand-over: %v", err)
	}

	// Restarted on a store holding more than the log.
	f.stop(t)
	_, last, _, err = next.logState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.store = &memStore{effects: make([][]byte, last+1)}
	f.start(t)
	eventually(t, 20*time.Second, "ErrAhead reported", func() bool { return errors.Is(f.Health(), ErrAhead) })
	if f.IsOwner() {
		t.Fatal("a node ahead of the log owns it")
	}
}

// The owner's embedded server shuts down under it (the Node is not told):
// the server hands its Raft leadership over, another node takes over after
// applying everything, and writes resume. Reports how long writes stalled.
// A SIGKILL, with no handover, is TestCluster_OwnerKilled (-tags long).
//
// Requests forwarded to the owner when it dies are cut short as soon as
// the survivors have no route to it, not after forward_timeout (30s here):
// one of a Resendable kind goes to the next owner, another fails with
// ErrOwnerGone.
func TestCluster_OwnerServerShutdown(t *testing.T) {
	nodes := startCluster(t, 3, func(c *config.Cluster) { c.ForwardTimeout, c.OwnerWait = 30*time.Second, 30*time.Second })
	started := make(chan string, 2)
	var first atomic.Value // the first owner's name
	first.Store("")
	for _, n := range nodes {
		n.Handle("who", func(context.Context, []byte) ([]byte, error) { return []byte(n.name), nil })
		// On the first owner: hang until the node ends (its answer is
		// lost with it); elsewhere: answer who runs it.
		hang := func(ctx context.Context, req []byte) ([]byte, error) {
			if first.Load() == n.name {
				started <- string(req)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return []byte(n.name), nil
		}
		n.Handle("hang", hang)
		n.Handle("hang-again", hang)
		n.Resendable("hang-again")
	}
	o := owner(t, nodes)
	first.Store(o.name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 10 {
		if _, err := commit(ctx, o.Node, o.store, []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	var survivors []*testNode
	for _, n := range nodes {
		if n != o {
			survivors = append(survivors, n)
		}
	}
	type answer struct {
		resp string
		err  error
		at   time.Time
	}
	inFlight := map[string]chan answer{"hang": make(chan answer, 1), "hang-again": make(chan answer, 1)}
	for i, kind := range []string{"hang", "hang-again"} {
		go func() {
			resp, err := survivors[i].Forward(ctx, kind, []byte(kind))
			inFlight[kind] <- answer{string(resp), err, time.Now()}
		}()
	}
	for range 2 {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("the forwarded requests did not reach the owner")
		}
	}
	start := time.Now()
	o.srv.Shutdown() // no stepdown: the others notice the silence
	if a := <-inFlight["hang"]; !errors.Is(a.err, ErrOwnerGone) || a.at.Sub(start) > 3*time.Second {
		t.Fatalf("a request in flight to the dead owner: %q %v after %s, want ErrOwnerGone within 3s", a.resp, a.err, a.at.Sub(start))
	} else {
		t.Logf("a request in flight to the dead owner failed %s after its death: %v", a.at.Sub(start).Round(time.Millisecond), a.err)
	}
	var next *testNode
	eventually(t, 20*time.Second, "a new owner", func() bool {
		for _, n := range nodes {
			if n != o && n.IsOwner() {
				next = n
				return true
			}
		}
		return false
	})
	if _, err := commit(ctx, next.Node, next.store, []byte("after")); err != nil {
		t.Fatal(err)
	}
	t.Logf("writes resumed %s after the owner died", time.Since(start).Round(time.Millisecond))
	// A forward from every survivor reaches the new owner, whatever owner
	// the survivor knew (the dead one serves nothing: no responders, retry).
	for _, n := range nodes {
		if n == o {
			continue
		}
		// Still believing in the dead owner: no node serves its subject,
		// the forward drops the name, learns the new owner and retries.
		n.mu.Lock()
		n.setLeaderLocked(o.name)
		n.mu.Unlock()
		if got, err := n.Forward(ctx, "who", nil); err != nil || string(got) != next.name {
			t.Fatalf("forward from %s: %q %v, want %s", n.name, got, err, next.name)
		}
	}
	if a := <-inFlight["hang-again"]; a.err != nil || a.resp != next.name {
		t.Fatalf("a resendable request in flight to the dead owner: %q %v, want it run again on %s", a.resp, a.err, next.name)
	}
	if got := next.store.writerOn; !slices.Equal(got, []uint64{10}) {
		t.Fatalf("%s switched its writer on at %v, want at 10", next.name, got)
	}
}

// With cluster.route_password the nodes form the cluster, and a connection
// to a route port without the password is refused.
func TestCluster_RoutePassword(t *testing.T) {
	nodes := startCluster(t, 3, func(c *config.Cluster) { c.RoutePassword = "route-password-0123456789" })
	o := owner(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := commit(ctx, o.Node, o.store, []byte("x")); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", nodes[0].cfg.Listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"auth_required":true`) {
		t.Fatalf("route INFO: %q %v", info, err)
	}
	if _, err := io.WriteString(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"intruder\"}\r\nPING\r\n"); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if strings.Contains(line, "Authorization Violation") {
			return
		}
		if err != nil {
			t.Fatalf("no authorization error before %v", err)
		}
	}
}
