package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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

// Three imbroker processes on loopback form a cluster (docs/cluster.md):
// users on different nodes chat, every node answers sync and REST reads
// with the same history, and the node that owns the log is killed with
// SIGKILL in the middle of a burst of QoS 1 sends from the two others:
// every PUBACKed message is on both survivors exactly once, in order, with
// no gap, under one epoch; writes resume (the stall is logged); the killed
// node restarts on its data dir and catches up.
//
//	go test -race -count=1 -run TestE2E_Cluster -v ./test
func TestE2E_Cluster(t *testing.T) {
	nodes := clusterProcs(t, 3)
	// One node of three has no quorum, hence no owner: not ready, and why.
	nodes[0].restart(t)
	if code, body := procGet(nodes[0].b, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no node owns the log") {
		t.Fatalf("/readyz of a lone node: %d %s", code, body)
	}
	for _, n := range nodes[1:] {
		n.restart(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 60*time.Second)
	}
	t.Logf("three nodes ready; owner %s", ownerOf(t, nodes).name)

	// Chat across nodes: alice on n1 writes to bob on n2 and carol on n3.
	bob := nodes[1].b.Connect("bob", "bob")
	carol := nodes[2].b.Connect("carol", "carol")
	alice := nodes[0].b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", Text("hi bob", Random()))
	alice.Publish1("im/send/c2c/carol", Text("hi carol", Random()))
	// Read-your-writes: once PUBACKed, both are in alice's stream on n1
	// (the events collected include the live echoes: count positions).
	seqs := map[uint64]bool{}
	for _, e := range alice.SyncAll(0) {
		seqs[e.Seq] = true
	}
	if len(seqs) != 2 {
		t.Fatalf("alice's sync on n1 right after her PUBACKs: seqs %v, want 1 and 2", seqs)
	}
	for _, c := range []*Client{bob, carol} {
		if e := c.NextEvent(); e.Event != "C2CMsg" || e.Msg.From_Account != "alice" || e.Msg.To_Account != c.User {
			t.Fatalf("%s got %s", c.User, e.Raw)
		}
	}
	// A REST write on n3 reaches bob on n2 live.
	text := []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "over rest"}}}
	nodes[2].b.v4OK("openim/sendmsg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgRandom": Random(), "MsgBody": text})
	if e := bob.NextEvent(); !strings.Contains(e.Raw, "over rest") {
		t.Fatalf("bob got %s", e.Raw)
	}
	// REST reads (each waits until its node applied the log) agree, and
	// then so does sync on every node.
	roam := map[string]any{"Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 100, "MinTime": 0, "MaxTime": 4102444800}
	var roamWant string
	for i, n := range nodes {
		got := mustJSONString(n.b.v4OK("openim/admin_getroammsg", roam)["MsgList"])
		if i == 0 {
			roamWant = got
			if c := strings.Count(got, `"From_Account":"alice"`); c != 2 {
				t.Fatalf("admin_getroammsg on %s: %d messages, want 2: %s", n.name, c, got)
			}
		} else if got != roamWant {
			t.Fatalf("admin_getroammsg on %s:\n%s\nwant (on %s):\n%s", n.name, got, nodes[0].name, roamWant)
		}
	}
	for _, user := range []string{"bob", "carol"} {
		histories := make([][]string, len(nodes))
		for i, n := range nodes {
			histories[i] = history(t, n, user)
		}
		want := 2
		if user == "carol" {
			want = 1
		}
		if len(histories[0]) != want {
			t.Fatalf("%s's history on %s: %v, want %d messages", user, nodes[0].name, histories[0], want)
		}
		for i := range nodes[1:] {
			if !slices.Equal(histories[i+1], histories[0]) {
				t.Fatalf("%s's history on %s: %v\non %s: %v", user, nodes[i+1].name, histories[i+1], nodes[0].name, histories[0])
			}
		}
	}

	// The burst: two senders on each node that does not own the log, all
	// to dave, one QoS 1 publish at a time each; the owner dies under it.
	owner := ownerOf(t, nodes)
	var survivors []*clusterProc
	for _, n := range nodes {
		if n != owner {
			survivors = append(survivors, n)
		}
	}
	survivors[0].b.Accounts("dave")
	var senders []*burstSender
	progress := make(chan struct{}, 1) // a sender got an answer
	for i := range 4 {
		n := survivors[i%2]
		user := fmt.Sprintf("s%d", i)
		c, ca := connect5(t, n.b, user, user, n.b.Sig(user))
		if ca.ReasonCode != 0 {
			t.Fatalf("%s on %s: CONNACK 0x%02x", user, n.name, ca.ReasonCode)
		}
		senders = append(senders, &burstSender{user: user, node: n.name, c: c, progress: progress})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(stop) }()
	}
	waitAll := func(what string, cond func(*burstSender) bool) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			ok := true
			for _, s := range senders {
				ok = ok && s.check(cond)
			}
			if ok {
				return
			}
			select {
			case <-progress:
			case <-time.After(time.Until(deadline)):
				close(stop)
				wg.Wait()
				t.Fatalf("burst: %s: not within 40s", what)
			}
		}
	}
	waitAll("20 PUBACKs each before the kill", func(s *burstSender) bool { return len(s.acked) >= 20 })
	killed := time.Now()
	if err := owner.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	owner.p.wait()
	next := ownerOf(t, survivors)
	t.Logf("killed the owner %s; %s owns the log %s later", owner.name, next.name, time.Since(killed).Round(time.Millisecond))
	waitAll("20 PUBACKs each after the kill", func(s *burstSender) bool {
		return len(s.acked) >= 20 && s.times[len(s.times)-1].After(killed) && s.ackedAfter(killed) >= 20
	})
	close(stop)
	wg.Wait()
	var firstAfter time.Time
	acked, failed := 0, 0
	for _, s := range senders {
		acked, failed = acked+len(s.acked), failed+len(s.failed)
		f := s.firstAckAfter(killed)
		if firstAfter.IsZero() || f.Before(firstAfter) {
			firstAfter = f
		}
		t.Logf("%s on %s: %d PUBACKed, %d refused (%v); first PUBACK after the kill at +%s, longest gap %s",
			s.user, s.node, len(s.acked), len(s.failed), s.errs, f.Sub(killed).Round(time.Millisecond), s.longestGap().Round(time.Millisecond))
	}
	t.Logf("FAILOVER: writes resumed %s after the owner was killed (first PUBACK of a send made after the kill: see per sender above); %d sends PUBACKed, %d refused",
		firstAfter.Sub(killed).Round(time.Millisecond), acked, failed)

	// Every survivor: dave's stream holds each PUBACKed message exactly
	// once, in each sender's order, seqs 1..N with no gap, one epoch.
	for _, n := range survivors {
		n.waitReady(t, 30*time.Second)
	}
	var daveWant []string
	for i, n := range survivors {
		got := checkBurst(t, n, senders)
		if i == 0 {
			daveWant = got
		} else if !slices.Equal(got, daveWant) {
			t.Fatalf("dave's history on %s differs from %s's:\n%v\n%v", n.name, survivors[0].name, got, daveWant)
		}
	}

	// The killed node restarts on its data dir and catches up.
	restarted := time.Now()
	owner.restart(t)
	owner.waitReady(t, 60*time.Second)
	if got := checkBurst(t, owner, senders); !slices.Equal(got, daveWant) {
		t.Fatalf("dave's history on the restarted %s differs:\n%v\n%v", owner.name, got, daveWant)
	}
	if got := history(t, owner, "bob"); len(got) != 2 {
		t.Fatalf("bob's history on the restarted %s: %v", owner.name, got)
	}
	t.Logf("%s restarted and caught up in %s", owner.name, time.Since(restarted).Round(time.Millisecond))
	restClient.CloseIdleConnections()
}

// clusterProc is one node of the test's cluster: a child process.
type clusterProc struct {
	name, cfg string
	p         *proc
	b         *Broker
}

// clusterProcs configures count imbroker processes (restart starts one),
// each with its own data dir, free loopback ports and routes to all of
// them, replicas = count. extra is appended to every config after the
// cluster block (lines indented by two spaces add cluster keys).
func clusterProcs(t *testing.T, count int, extra ...string) []*clusterProc {
	t.Helper()
	var routes []string
	ports := make([]int, count)
	for i := range ports {
		ports[i] = freeLoopbackPort(t)
		routes = append(routes, fmt.Sprintf("    - nats-route://127.0.0.1:%d\n", ports[i]))
	}
	nodes := make([]*clusterProc, count)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`cluster:
  enabled: true
  name: %s
  listen: 127.0.0.1:%d
  replicas: %d
  forward_timeout: 6s
  routes:
%s%s`, name, ports[i], count, strings.Join(routes, ""), strings.Join(extra, ""))
		nodes[i] = &clusterProc{name: name, cfg: writeConfig(t, dir, cfg)}
		if os.Getenv("CLUSTER_E2E_DEBUG") != "" {
			b, _ := os.ReadFile(nodes[i].cfg)
			_ = os.WriteFile(nodes[i].cfg, []byte(strings.Replace(string(b), "level: info", "level: debug", 1)), 0o600)
		}
	}
	logOnFailure(t, nodes)
	return nodes
}

// logOnFailure logs the nodes' warnings and errors (every line with
// CLUSTER_E2E_DEBUG set) when the test fails.
func logOnFailure(t *testing.T, nodes []*clusterProc) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				if n.p == nil {
					continue
				}
				n.p.mu.Lock()
				for _, l := range n.p.lines {
					if l["level"] == "WARN" || l["level"] == "ERROR" || os.Getenv("CLUSTER_E2E_DEBUG") != "" {
						t.Logf("%s: %v", n.name, l)
					}
				}
				n.p.mu.Unlock()
			}
		}
	})
}

// restart starts (again) the node's process on its config and data dir.
func (n *clusterProc) restart(t *testing.T) {
	t.Helper()
	n.p = startProc(t, "-config", n.cfg)
	n.b = n.p.broker(t, TestKey)
}

// freeLoopbackPort returns a loopback TCP port that was free just now. It
// is taken below the kernel's ephemeral range when it can be: a
// child process binds it later, and meanwhile any other test's listener
// on port 0 (or outgoing connection) could be given an ephemeral port that
// was free a moment ago (a CI run saw a route port taken by another
// test's HTTP server).
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	if low := ephemeralLow(); low > 10000 {
		for range 100 {
			port := 10000 + rand.IntN(low-10000)
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				l.Close()
				return port
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ephemeralLow is the lowest port the kernel hands out for port 0 and
// outgoing connections (Linux), or 0 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
		return 0
	}
	return low
}

// waitReady waits until the node's /readyz answers 200.
func (n *clusterProc) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		code, body := procGet(n.b, "/readyz")
		if code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s", code, body)
		time.Sleep(50 * time.Millisecond) // polling an HTTP endpoint, which has no event to wait on
	}
	t.Fatalf("%s: /readyz not 200 within %s: %s", n.name, d, last)
}

func procGet(b *Broker, path string) (int, string) {
	resp, err := restClient.Get("http://" + b.HTTPAddr() + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// ownerOf waits until exactly one running node says (/metrics) it owns the log.
func ownerOf(t *testing.T, nodes []*clusterProc) *clusterProc {
	t.Helper()
	re := regexp.MustCompile(`(?m)^imbroker_cluster_owner (\S+)$`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var owners []*clusterProc
		for _, n := range nodes {
			if _, body := procGet(n.b, "/metrics"); re.FindStringSubmatch(body) != nil && re.FindStringSubmatch(body)[1] == "1" {
				owners = append(owners, n)
			}
		}
		if len(owners) == 1 {
			return owners[0]
		}
		time.Sleep(50 * time.Millisecond) // polling /metrics
	}
	t.Fatal("no single owner within 30s")
	return nil
}

// history is user's stream on node n as "epoch/seq text" lines, read with
// sync by a device of user's connected there, after a REST read made the
// node apply the whole log (a read endpoint waits for that).
func history(t *testing.T, n *clusterProc, user string) []string {
	t.Helper()
	n.b.v4OK("openim/admin_getroammsg", map[string]any{"Operator_Account": user, "Peer_Account": "alice", "MaxCnt": 1, "MinTime": 0, "MaxTime": 4102444800})
	c := n.b.Connect(fmt.Sprintf("%s:%s-%d", user, n.name, Random()), user)
	defer c.Disconnect(0)
	var out []string
	for _, e := range c.SyncAll(0) {
		var body []struct{ MsgContent struct{ Text string } }
		_ = json.Unmarshal(e.Msg.MsgBody, &body)
		txt := ""
		if len(body) > 0 {
			txt = body[0].MsgContent.Text
		}
		out = append(out, fmt.Sprintf("%d/%d %s %s %s", e.Epoch, e.Seq, e.Event, e.Msg.From_Account, txt))
	}
	return out
}

// checkBurst reads dave's stream on n and checks it against what the
// senders were told: one epoch, seqs 1..N, every PUBACKed message once,
// each sender's messages in its order, nothing that was never sent.
func checkBurst(t *testing.T, n *clusterProc, senders []*burstSender) []string {
	t.Helper()
	h := history(t, n, "dave")
	seen := map[string]int{}
	lastIdx := map[string]int{}
	var epoch string
	for i, line := range h {
		pos, rest, _ := strings.Cut(line, " ")
		ep, seq, _ := strings.Cut(pos, "/")
		if i == 0 {
			epoch = ep
		}
		if ep != epoch || seq != strconv.Itoa(i+1) {
			t.Fatalf("dave on %s: event %d at %s, want epoch %s seq %d:\n%v", n.name, i, pos, epoch, i+1, h)
		}
		f := strings.Fields(rest) // C2CMsg sN sN-idx
		if len(f) != 3 {
			t.Fatalf("dave on %s: %q", n.name, line)
		}
		seen[f[2]]++
		user, idxS, _ := strings.Cut(f[2], "-")
		idx, _ := strconv.Atoi(idxS)
		if last, ok := lastIdx[user]; ok && idx <= last {
			t.Fatalf("dave on %s: %s after %s-%d: out of order", n.name, f[2], user, last)
		}
		lastIdx[user] = idx
	}
	sent := map[string]bool{}
	for _, s := range senders {
		for _, m := range s.acked {
			if seen[m] != 1 {
				t.Fatalf("dave on %s: PUBACKed %s is there %d times", n.name, m, seen[m])
			}
			sent[m] = true
		}
		for _, m := range s.failed {
			sent[m] = true
		}
	}
	for m, c := range seen {
		if !sent[m] || c != 1 {
			t.Fatalf("dave on %s: %s there %d times (sent: %v)", n.name, m, c, sent[m])
		}
	}
	return h
}

// burstSender publishes to dave at QoS 1, one message at a time, and
// records what was acknowledged (PUBACK 0x00) and what was refused.
type burstSender struct {
	user, node string
	c          *paho5.Client
	progress   chan struct{} // signalled (without blocking) after each answer

	mu     sync.Mutex
	acked  []string
	times  []time.Time // when each acked message's PUBACK came
	starts []time.Time // when each acked message was published
	failed []string
	errs   map[string]int
}

func (s *burstSender) run(stop chan struct{}) {
	s.errs = map[string]int{}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		m := fmt.Sprintf("%s-%d", s.user, i)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		pr, err := s.c.Publish(ctx, &paho5.Publish{Topic: "im/send/c2c/dave", QoS: 1, Payload: mustJSON(Text(m, Random()))})
		cancel()
		s.mu.Lock()
		if err == nil && pr != nil && pr.ReasonCode == 0 {
			s.acked = append(s.acked, m)
			s.times = append(s.times, time.Now())
			s.starts = append(s.starts, start)
		} else {
			s.failed = append(s.failed, m)
			why := fmt.Sprint(err)
			if pr != nil && pr.Properties != nil {
				why = fmt.Sprintf("0x%02x %s", pr.ReasonCode, pr.Properties.ReasonString)
			}
			s.errs[why]++
		}
		s.mu.Unlock()
		select {
		case s.progress <- struct{}{}:
		default:
		}
		if err != nil && pr == nil && ctx.Err() == nil && strings.Contains(err.Error(), "closed") {
			return // the connection is gone: nothing more to send
		}
	}
}

func (s *burstSender) check(cond func(*burstSender) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cond(s)
}

// ackedAfter counts the PUBACKed sends published after t. Lock held.
func (s *burstSender) ackedAfter(t time.Time) int {
	n := 0
	for _, st := range s.starts {
		if st.After(t) {
			n++
		}
	}
	return n
}

// firstAckAfter is the PUBACK time of the first acked send published after t.
func (s *burstSender) firstAckAfter(t time.Time) time.Time {
	for i, st := range s.starts {
		if st.After(t) {
			return s.times[i]
		}
	}
	return time.Time{}
}

// longestGap is the longest time between two PUBACKs.
func (s *burstSender) longestGap() time.Duration {
	var g time.Duration
	for i := 1; i < len(s.times); i++ {
		g = max(g, s.times[i].Sub(s.times[i-1]))
	}
	return g
}

func mustJSONString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
