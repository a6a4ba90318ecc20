package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/imbroker/imbroker/config"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		runChild(cfg)
		return
	}
	goleak.VerifyTestMain(m,
		// Two nats-server goroutines end on their own after Shutdown has
		// returned (WaitForShutdown does not track them): a stopped file
		// store's state flusher and the access-time ticker that lives while
		// any file store does. On a loaded machine they outlived goleak's
		// retries (about two seconds); every goroutine of ours is checked.
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
	)
}

// childEnv makes the test binary run one node (its config as JSON, then the
// data dir after a newline) until killed: a node that can die by SIGKILL.
const childEnv = "IMB_CLUSTER_CHILD"

func runChild(arg string) {
	cfgJSON, dir, _ := strings.Cut(arg, "\n")
	var cfg config.Cluster
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, err := Start(context.Background(), cfg, dir, &memStore{}, testLogger()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("ready")
	select {}
}

// memStore is the test's store: an ordered list of applied effects, with the
// storage contract (Apply at Applied()+1, pos <= Applied() ignored, a gap an
// error). The owner's "committer" is commit below.
type memStore struct {
	mu      sync.Mutex
	effects [][]byte
	writer  bool
	// writerOn records Applied() at each SetWriter(true).
	writerOn []uint64
	lagging  bool // Apply fails: a store that cannot keep up
}

func (s *memStore) Applied() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.effects))
}

func (s *memStore) Apply(pos uint64, e []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lagging {
		return fmt.Errorf("memStore: lagging")
	}
	switch n := uint64(len(s.effects)); {
	case pos <= n:
		return nil
	case pos != n+1:
		return fmt.Errorf("memStore: apply %d after %d: a gap", pos, n)
	}
	s.effects = append(s.effects, slices.Clone(e))
	return nil
}

func (s *memStore) SetWriter(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writer = on
	if on {
		s.writerOn = append(s.writerOn, uint64(len(s.effects)))
	}
}

func (s *memStore) setLagging(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lagging = on
}

func (s *memStore) isWriter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writer
}

func (s *memStore) snapshot() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.effects)
}

// commit is the owner's committer: append after what the store applied,
// then apply at the acknowledged position.
func commit(ctx context.Context, n *Node, s *memStore, e []byte) (uint64, error) {
	if !s.isWriter() {
		return 0, fmt.Errorf("memStore: not a writer")
	}
	pos, err := n.Log().Append(ctx, s.Applied(), e)
	if err != nil {
		return 0, err
	}
	return pos, s.Apply(pos, e)
}

type testNode struct {
	*Node
	store *memStore
	cfg   config.Cluster
	dir   string
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCluster starts n nodes on free loopback ports; Cleanup shuts down
// those still running.
func startCluster(t testing.TB, count int, adjust ...func(*config.Cluster)) []*testNode {
	t.Helper()
	cfgs := clusterConfigs(t, count, adjust...)
	nodes := make([]*testNode, count)
	for i, cfg := range cfgs {
		nodes[i] = &testNode{store: &memStore{}, cfg: cfg, dir: t.TempDir()}
		nodes[i].start(t)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(t)
		}
	})
	return nodes
}

// clusterConfigs makes the configs of count nodes on free loopback ports.
func clusterConfigs(t testing.TB, count int, adjust ...func(*config.Cluster)) []config.Cluster {
	t.Helper()
	var routes []string
	ports := make([]int, count)
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	cfgs := make([]config.Cluster, count)
	for i := range cfgs {
		cfg := config.Default().Cluster
		cfg.Enabled, cfg.Name = true, fmt.Sprintf("n%d", i)
		cfg.Listen = fmt.Sprintf("127.0.0.1:%d", ports[i])
		cfg.Routes = routes
		cfg.Replicas = count
		cfg.ApplyTimeout, cfg.ForwardTimeout, cfg.OwnerWait = 3*time.Second, 3*time.Second, 10*time.Second
		cfg.LogMaxBytes, cfg.MaxEffectBytes = 64<<20, 1<<20
		for _, f := range adjust {
			f(&cfg)
		}
		cfgs[i] = cfg
	}
	return cfgs
}

func (tn *testNode) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Start(ctx, tn.cfg, tn.dir, tn.store, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	tn.Node = n
}

func (tn *testNode) stop(t testing.TB) {
	if tn.Node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := tn.Shutdown(ctx); err != nil {
		t.Errorf("shutdown %s: %v", tn.name, err)
	}
	t.Logf("%s shut down in %s", tn.name, time.Since(start).Round(time.Millisecond))
	tn.Node = nil
}

// eventually waits for cond, checked every 10ms, failing after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		<-tick.C
	}
}

// owner waits until exactly one running node owns the log and returns it.
func owner(t testing.TB, nodes []*testNode) *testNode {
	t.Helper()
	var o *testNode
	eventually(t, 30*time.Second, "no single owner", func() bool {
		o = nil
		count := 0
		for _, n := range nodes {
			if n.Node != nil && n.IsOwner() {
				o, count = n, count+1
			}
		}
		return count == 1
	})
	return o
}

// stepDown asks JetStream to move the log's leadership to preferred.
func stepDown(t testing.TB, via *testNode, preferred string) {
	t.Helper()
	req, _ := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: preferred}})
	resp, err := via.nc.Request(fmt.Sprintf(server.JSApiStreamLeaderStepDownT, streamName), req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r server.JSApiStreamLeaderStepDownResponse
	if err := json.Unmarshal(resp.Data, &r); err != nil || r.Error != nil {
		t.Fatalf("stepdown: %s (%v)", resp.Data, err)
	}
}

// moveLeader asks JetStream (through via) to give the log's lead to name
// until done reports it happened: a stepdown preferring a replica that is
// not current yet goes elsewhere, so it is asked again, once the replica
// is current and at most every 2s.
func moveLeader(t testing.TB, via *testNode, name string, done func() bool) {
	t.Helper()
	var asked time.Time
	eventually(t, 30*time.Second, "the log's lead moves to "+name, func() bool {
		if done() {
			return true
		}
		if time.Since(asked) < 2*time.Second {
			return false
		}
		s, err := via.js.Stream(context.Background(), streamName)
		if err != nil || s.CachedInfo().Cluster == nil {
			return false
		}
		for _, r := range s.CachedInfo().Cluster.Replicas {
			if r.Name == name && r.Current {
				asked = time.Now()
				stepDown(t, via, name)
			}
		}
		return false
	})
}
