package test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
)

// A single-node data dir becomes the first node of a three-node cluster:
// the two others join empty and load a snapshot of it, and every node
// answers with the single node's history, Epochs unchanged. A node down
// while the log drops its next position loads a snapshot at restart. Then
// the owner is cut off through TCP proxies on every route: it acknowledges
// nothing (REST error, no PUBACK), the majority elects an owner and goes
// on; after healing every node holds the same gap-free history.
//
//	go test -race -count=1 -run TestE2E_ClusterSnapshotPartition -v ./test
func TestE2E_ClusterSnapshotPartition(t *testing.T) {
	nodes, cutOff := proxiedCluster(t, 3)

	// Single-node history on n1's data dir.
	single := strings.SplitN(readFile(t, nodes[0].cfg), "cluster:", 2)[0]
	singleCfg := filepath.Join(filepath.Dir(nodes[0].cfg), "single.yaml")
	if err := os.WriteFile(singleCfg, []byte(single), 0o600); err != nil {
		t.Fatal(err)
	}
	sp := startProc(t, "-config", singleCfg)
	one := &clusterProc{name: "single", p: sp, b: sp.broker(t, TestKey)}
	one.b.Accounts("alice", "bob", "carol")
	for i := range 3 {
		one.b.v4OK("openim/sendmsg", sendBody("alice", "bob", fmt.Sprintf("before cluster %d", i)))
	}
	want := history(t, one, "bob")
	if len(want) != 3 {
		t.Fatalf("single node: bob's history %v", want)
	}
	stopProc(t, sp)

	// The three at once (a new JetStream cluster elects its first leader
	// only once every node listed is up); the two empty ones wait for the
	// seed n1 to start the log, and then load a snapshot of it before their
	// listeners come up.
	start := time.Now()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.restart(t) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, n := range nodes {
		n.waitReady(t, 60*time.Second)
	}
	for _, n := range nodes[1:] {
		if !n.p.hasLog("cluster: loaded a snapshot") {
			t.Fatalf("%s joined without loading a snapshot", n.name)
		}
	}
	t.Logf("cluster from n1's single-node data dir ready in %s", time.Since(start).Round(time.Millisecond))
	for _, n := range nodes {
		if got := history(t, n, "bob"); !slices.Equal(got, want) {
			t.Fatalf("bob's history on %s:\n%v\nwant (single node):\n%v", n.name, got, want)
		}
	}
	nodes[1].b.v4OK("openim/sendmsg", sendBody("alice", "bob", "in cluster"))
	want = sameHistory(t, nodes, "bob", 4)

	// n3 stops; the log (1 MiB) drops the positions it would need.
	n3 := nodes[2]
	stopProc(t, n3.p)
	filler := strings.Repeat("x", 6000)
	for i := range 200 {
		nodes[i%2].b.v4OK("openim/sendmsg", sendBody("alice", "carol", fmt.Sprintf("%d %s", i, filler)))
	}
	restart := time.Now()
	n3.restart(t)
	t.Logf("n3 restarted, a snapshot loaded, in %s", time.Since(restart).Round(time.Millisecond))
	n3.waitReady(t, 60*time.Second)
	if !n3.p.hasLog("cluster: loaded a snapshot") {
		t.Fatalf("n3 caught up without a snapshot: the log did not drop its next position")
	}
	logSnapshotFigures(t, nodes)
	carol := sameHistory(t, nodes, "carol", 200)
	_ = carol

	// Partition: the owner is cut off from both others.
	owner := ownerOf(t, nodes)
	var majority []*clusterProc
	for _, n := range nodes {
		if n != owner {
			majority = append(majority, n)
		}
	}
	c, ca := connect5(t, owner.b, "alice:iso", "alice", owner.b.Sig("alice"))
	if ca.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ca.ReasonCode)
	}
	cut := time.Now()
	cutOff(owner.name, true)
	var pubErr string
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		pr, err := c.Publish(ctx, &paho5.Publish{Topic: "im/send/c2c/bob", QoS: 1, Payload: mustJSON(Text("isolated mqtt", Random()))})
		switch {
		case err == nil && pr != nil && pr.ReasonCode == 0:
			pubErr = "PUBACK 0x00"
		case pr != nil:
			pubErr = fmt.Sprintf("refused: 0x%02x %v", pr.ReasonCode, pr.Properties)
		default:
			pubErr = fmt.Sprintf("refused: %v", err)
		}
	}()
	out := owner.b.v4("openim/sendmsg", sendBody("alice", "bob", "isolated rest"))
	if errCode(out) == 0 {
		t.Fatalf("the isolated %s acknowledged a REST send: %v", owner.name, out)
	}
	t.Logf("isolated %s: REST send refused after %s: %v %v", owner.name, time.Since(cut).Round(time.Millisecond), errCode(out), out["ErrorInfo"])
	// The majority elects an owner and goes on.
	// A send may outlast the REST client's 10 s under load: the new owner
	// commits it, but the node it came to answers once it applied it, and
	// its tail resumes only once its ordered consumer is recreated on a
	// live node (nats.go gives each attempt up to 10 s). The same send
	// again is a duplicate (same MsgRandom): answered, not stored twice.
	deadline := time.Now().Add(30 * time.Second)
	body := sendBody("alice", "bob", "majority 0")
	for i := 0; i < 3; {
		out, err := majority[i%2].b.v4Try("openim/sendmsg", body)
		if err != nil {
			t.Logf("majority send %d: no answer within the REST client's timeout after %s; sending it again", i, time.Since(cut).Round(time.Millisecond))
			out = map[string]any{"error": err.Error()}
		}
		if err == nil && errCode(out) == 0 {
			if i == 0 {
				t.Logf("the majority acknowledged a write %s after the cut", time.Since(cut).Round(time.Millisecond))
			}
			i++
			body = sendBody("alice", "bob", fmt.Sprintf("majority %d", i))
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("the majority did not take writes within 30s: %v", out)
		}
	}
	wg.Wait()
	if !strings.HasPrefix(pubErr, "refused") {
		t.Fatalf("the isolated %s: MQTT send %s", owner.name, pubErr)
	}
	t.Logf("isolated %s: MQTT send %s", owner.name, pubErr)
	c.Disconnect(&paho5.Disconnect{})

	// Heal: no stream diverged.
	cutOff(owner.name, false)
	for _, n := range nodes {
		n.waitReady(t, 60*time.Second)
	}
	waitConverged(t, nodes)
	got := sameHistory(t, nodes, "bob", 7)
	for _, line := range got {
		if strings.Contains(line, "isolated") {
			t.Fatalf("a write refused on the isolated node is in bob's history: %v", got)
		}
	}
	if !slices.Equal(got[:4], want) {
		t.Fatalf("bob's history changed: %v, was %v", got, want)
	}
	t.Logf("healed in %s after the cut; bob's history identical and gap-free on all three", time.Since(cut).Round(time.Millisecond))
	logRetries(t, nodes)
	restClient.CloseIdleConnections()
}

// waitConverged waits until every node applied the same log position
// (/metrics), the rejoined node included: a node cut off still answers
// reads from what it had.
func waitConverged(t *testing.T, nodes []*clusterProc) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^imbroker_cluster_applied_position (\d+)$`)
	deadline := time.Now().Add(30 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		got = got[:0]
		for _, n := range nodes {
			_, body := procGet(n.b, "/metrics")
			m := re.FindStringSubmatch(body)
			if m == nil {
				got = append(got, "?")
			} else {
				got = append(got, m[1])
			}
		}
		if got[0] != "?" && !slices.ContainsFunc(got, func(p string) bool { return p != got[0] }) {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling /metrics
	}
	t.Fatalf("applied positions not the same within 30s: %v", got)
}

func sendBody(from, to, text string) map[string]any {
	return map[string]any{"From_Account": from, "To_Account": to, "MsgRandom": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": text}}}}
}

// sameHistory reads user's history on every node, checks that they are
// identical, hold count events at seqs 1..count under one epoch, and
// returns it.
func sameHistory(t *testing.T, nodes []*clusterProc, user string, count int) []string {
	t.Helper()
	var first []string
	for i, n := range nodes {
		h := history(t, n, user)
		if i == 0 {
			first = h
			if len(h) != count {
				t.Fatalf("%s's history on %s: %d events, want %d: %v", user, n.name, len(h), count, h)
			}
			epoch := ""
			for j, line := range h {
				ep, seq, _ := strings.Cut(strings.Fields(line)[0], "/")
				if j == 0 {
					epoch = ep
				}
				if ep != epoch || seq != strconv.Itoa(j+1) {
					t.Fatalf("%s's history on %s: event %d at %s/%s: %v", user, n.name, j, ep, seq, h)
				}
			}
		} else if !slices.Equal(h, first) {
			t.Fatalf("%s's history on %s differs from %s's:\n%v\n%v", user, n.name, nodes[0].name, h, first)
		}
	}
	return first
}

// logSnapshotFigures logs what the nodes said about the snapshots they
// took and loaded (size, time).
func logSnapshotFigures(t *testing.T, nodes []*clusterProc) {
	for _, n := range nodes {
		n.p.mu.Lock()
		for _, l := range n.p.lines {
			if l["msg"] == "cluster: snapshot taken" || l["msg"] == "cluster: loaded a snapshot" {
				t.Logf("%s: %s at %v: %v bytes in %v", n.name, l["msg"], l["position"], l["bytes"], l["took"])
			}
		}
		n.p.mu.Unlock()
	}
}

// logRetries logs the nodes' retries of a snapshot's load and of
// following the log: how long a step took shows in the times.
func logRetries(t *testing.T, nodes []*clusterProc) {
	for _, n := range nodes {
		n.p.mu.Lock()
		for _, l := range n.p.lines {
			switch l["msg"] {
			case "cluster: asking the owner for a snapshot", "cluster: loading a snapshot failed; trying again",
				"cluster: following the log stopped; retrying":
				t.Logf("%s: %v %s (err %v)", n.name, l["time"], l["msg"], l["err"])
			}
		}
		n.p.mu.Unlock()
	}
}

func stopProc(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("imbroker exited with %d", code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// proxiedCluster is clusterProcs with every route from node i to node j
// through its own TCP proxy, so that cutOff(name, true) isolates a node
// (its proxies close every connection and refuse new ones) and
// cutOff(name, false) heals it. NATS gossips a node's route address to the
// others, who would dial it directly and bypass the proxies: each node
// advertises a loopback port nobody listens on (cluster.advertise), so
// those dials fail and the configured routes, through the proxies, are
// the only ones. The log is small (1 MiB) so that it drops positions
// quickly; n1 is the seed.
func proxiedCluster(t *testing.T, count int) ([]*clusterProc, func(name string, cut bool)) {
	t.Helper()
	ports := make([]int, count)
	for i := range ports {
		ports[i] = freeLoopbackPort(t)
	}
	dead := freeLoopbackPort(t)
	proxies := map[[2]int]*tcpProxy{}
	nodes := make([]*clusterProc, count)
	for i := range nodes {
		routes := fmt.Sprintf("    - nats-route://127.0.0.1:%d\n", ports[i])
		for j := range nodes {
			if j != i {
				p := newTCPProxy(t, fmt.Sprintf("127.0.0.1:%d", ports[j]))
				proxies[[2]int{i, j}] = p
				routes += fmt.Sprintf("    - nats-route://%s\n", p.addr())
			}
		}
		name := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		extra := fmt.Sprintf(`cluster:
  enabled: true
  name: %s
  listen: 127.0.0.1:%d
  advertise: 127.0.0.1:%d
  seed: n1
  replicas: %d
  forward_timeout: 6s
  owner_wait: 4s
  apply_timeout: 2s
  max_effect_bytes: 65536
  log_max_bytes: 1048576
  snapshot_interval: 0s
  snapshot_timeout: 60s
  routes:
%s`, name, ports[i], dead, count, routes)
		nodes[i] = &clusterProc{name: name, cfg: writeConfig(t, dir, extra)}
	}
	logOnFailure(t, nodes)
	cutOff := func(name string, cut bool) {
		for ij, p := range proxies {
			if nodes[ij[0]].name == name || nodes[ij[1]].name == name {
				p.setCut(cut)
			}
		}
	}
	return nodes, cutOff
}

// tcpProxy forwards connections to target until cut.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.cut { // cut while dialling
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// pipe copies src to dst; when either side ends, both close.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.setCut(true)
	p.wg.Wait()
}
