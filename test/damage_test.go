package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/testfs"
)

// TestE2E_DamagedWALAfterKill: messages are acknowledged, the broker is
// killed with SIGKILL and its newest WAL is cut (or corrupted). The broker
// then refuses to start, naming the damage and the two ways out; with
// storage.recover_damaged it starts, logs the numbers, and bob's stream has
// a new Epoch, so a new message never reuses a (Epoch, Seq) bob has seen.
// [STORE-DAMAGE]
func TestE2E_DamagedWALAfterKill(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("corrupt=%v", corrupt), func(t *testing.T) {
			dir := t.TempDir()
			cfgPath := writeConfig(t, dir, "")
			p := startProc(t, "-config", cfgPath)
			b := p.broker(t, TestKey)
			alice := b.Connect("alice", "alice")
			bob := b.Connect("bob", "bob")
			seen := map[[2]uint64]bool{}
			for i := range 60 {
				alice.Publish1("im/send/c2c/bob", Text(fmt.Sprint("before ", i), Random())) // PUBACK: durable
			}
			var last Event
			for range 60 {
				last = bob.NextEvent()
				seen[[2]uint64{last.Epoch, last.Seq}] = true
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p.wait()
			wal := testfs.DamageNewestWAL(t, filepath.Join(dir, "data"), corrupt)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, imbrokerBinary(t), "-config", cfgPath)
			cmd.Env = append(os.Environ(), "IMBROKER_SECRET_KEY="+TestKey)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("a damaged store started: %s", out)
			}
			for _, want := range []string{"damaged", wal, "acknowledged commits are lost", "backup", "storage.recover_damaged: true"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the refusal does not say %q: %s", want, out)
				}
			}

			cfg, err := os.ReadFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			cfg = []byte(strings.Replace(string(cfg), "storage:\n", "storage:\n  recover_damaged: true\n", 1))
			if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
			p2 := startProc(t, "-config", cfgPath)
			if !p2.hasLog("store was damaged and recovered with storage.recover_damaged: acknowledged commits are lost; every stream has a new Epoch, so clients resync") {
				t.Fatalf("no recovery log line: %s", p2.logText())
			}
			b2 := p2.broker(t, TestKey)
			alice2 := b2.Connect("alice", "alice")
			bob2 := b2.Connect("bob", "bob")
			alice2.Publish1("im/send/c2c/bob", Text("after", Random()))
			e := bob2.NextEvent()
			if e.Epoch == last.Epoch || seen[[2]uint64{e.Epoch, e.Seq}] {
				t.Fatalf("after recovery bob got Epoch %d Seq %d; before the kill Epoch %d up to Seq %d: want a new Epoch", e.Epoch, e.Seq, last.Epoch, last.Seq)
			}
			evs := bob2.SyncAll(0)
			if len(evs) == 0 || len(evs) >= 61 || evs[len(evs)-1].Epoch != e.Epoch {
				t.Fatalf("sync after recovery: %d events (want fewer than 61: some were lost), last %+v", len(evs), evs[len(evs)-1])
			}
		})
	}
}
