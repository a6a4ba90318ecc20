//go:build long

package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"
)

// The owner is a child process killed with SIGKILL (no stepdown, no
// goodbye): the two other nodes elect a new owner after JetStream's
// election timeout, and it takes over. Reports the write stall.
// go test -tags long -run TestCluster_OwnerKilled -v ./cluster
func TestCluster_OwnerKilled(t *testing.T) {
	nodes := startCluster(t, 3)
	owner(t, nodes)
	// Replace n2 by a child process on the same config and data dir.
	child := nodes[2]
	child.stop(t)
	cfgJSON, err := json.Marshal(child.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfgJSON)+"\n"+child.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	live := nodes[:2]
	moveLeader(t, live[0], child.cfg.Name, func() bool {
		return live[0].OwnerName() == child.cfg.Name && live[1].OwnerName() == child.cfg.Name
	})

	start := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	o := owner(t, live)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := commit(ctx, o.Node, o.store, []byte("after")); err != nil {
		t.Fatal(err)
	}
	t.Logf("writes resumed %s after the owner was killed", time.Since(start).Round(time.Millisecond))
}
