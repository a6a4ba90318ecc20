package test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestE2E_CatchUpAfterGracefulRestart(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	bobBefore := b.Connect("bob:before", "bob")
	for i := 0; i < 20; i++ {
		alice.Publish1("im/send/c2c/bob", Text(fmt.Sprintf("m%d", i), Random()))
	}
	head := bobBefore.NextEvent() // bob's stream: its epoch must survive the restart
	alice.Disconnect(100)
	bobBefore.Disconnect(100)
	b.Stop()

	b2 := StartWith(t, b.Cfg) // same data dir, new ports
	bob := b2.Connect("bob", "bob")
	evs := checkSeqRun(t, bob.SyncAll(0), 1, 20)
	if evs[0].Epoch != head.Epoch {
		t.Fatalf("epoch changed across restart: %d -> %d", head.Epoch, evs[0].Epoch)
	}
	// New messages continue the same stream.
	alice2 := b2.Connect("alice", "alice")
	alice2.Publish1("im/send/c2c/bob", Text("after restart", Random()))
	if e := bob.NextEvent(); e.Seq != 21 {
		t.Fatalf("after restart: %s", e.Raw)
	}
}

// TestE2E_KillMinus9MidBurst kills the broker process with SIGKILL while
// several senders are in the middle of QoS 1 bursts. After a restart every
// message whose PUBACK a sender saw is in the recipient's stream exactly
// once, each sender's messages are in send order, and Seqs have no gap.
func TestE2E_KillMinus9MidBurst(t *testing.T) { killMidBurst(t, 1) }

// TestE2E_KillMinus9MidPipelinedBurst is the same with each sender keeping
// 32 sends unacknowledged, so the broker has many of each connection's sends
// committing at once when it dies: a PUBACK still means durable, and at most
// the unacknowledged ones are stored without their PUBACK. [IM-C2C-PIPELINE]
func TestE2E_KillMinus9MidPipelinedBurst(t *testing.T) { killMidBurst(t, 32) }

// killMidBurst runs the kill -9 test with inflight unacknowledged sends per sender.
func killMidBurst(t *testing.T, inflight int) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	p := startProc(t, "-config", cfgPath)
	b := p.broker(t, TestKey)
	b.Accounts("bob")

	const senders = 4
	var acked [senders][]int // indexes each sender saw PUBACKed, in order
	var total atomic.Int64
	killAt := int64(300)
	reached := make(chan struct{})
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		o := b.ClientOpts(fmt.Sprintf("s%d", s), fmt.Sprintf("s%d", s), b.Sig(fmt.Sprintf("s%d", s)))
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		wg.Add(1)
		go func(s int, c paho.Client) {
			defer wg.Done()
			defer c.Disconnect(0)
			// PUBACKs come back in send order: the acker takes the tokens in
			// order and records each acked index until the first failure.
			window := make(chan paho.Token, inflight)
			slots := make(chan struct{}, inflight) // at most inflight unacknowledged
			var failed atomic.Bool
			ackerDone := make(chan struct{})
			go func() {
				defer close(ackerDone)
				i := 0
				for tok := range window {
					if failed.Load() {
						<-slots
						continue // draining after the connection went
					}
					ok := tok.WaitTimeout(10*time.Second) && tok.Error() == nil && c.IsConnectionOpen()
					<-slots
					if !ok {
						failed.Store(true) // connection gone: this one was not (known to be) acked
						continue
					}
					acked[s] = append(acked[s], i)
					i++
					if total.Add(1) == killAt {
						close(reached)
					}
				}
			}()
			for i := 0; !failed.Load() && c.IsConnectionOpen(); i++ {
				body, _ := json.Marshal(Text(fmt.Sprintf("s%d-%d", s, i), uint32(s*1_000_000+i+1)))
				slots <- struct{}{}
				window <- c.Publish("im/send/c2c/bob", 1, false, body)
			}
			close(window)
			<-ackerDone
		}(s, c)
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	p.wait()
	if total.Load() < killAt {
		t.Fatalf("only %d sends acked before the deadline", total.Load())
	}

	p2 := startProc(t, "-config", cfgPath)
	b2 := p2.broker(t, TestKey)
	bob := b2.Connect("bob", "bob")
	evs := bob.SyncAll(0)
	// Gap-free from 1, each Seq once.
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d: gap or duplicate", i, e.Seq)
		}
	}
	// Per sender: stored messages are a gap-free prefix of what was sent, in
	// order, and cover every acked one (at most `inflight` more: committed,
	// then killed before their PUBACKs went out).
	stored := map[string][]int{}
	for _, e := range evs {
		var body []struct{ MsgContent struct{ Text string } }
		_ = json.Unmarshal(e.Msg.MsgBody, &body)
		var s, i int
		if _, err := fmt.Sscanf(body[0].MsgContent.Text, "s%d-%d", &s, &i); err != nil {
			t.Fatalf("unexpected message %s", e.Raw)
		}
		k := fmt.Sprint(s)
		stored[k] = append(stored[k], i)
	}
	for s := 0; s < senders; s++ {
		got := stored[fmt.Sprint(s)]
		for i, v := range got {
			if v != i {
				t.Fatalf("sender %d: stored sequence %v is not 0..n in order", s, got)
			}
		}
		if len(got) < len(acked[s]) || len(got) > len(acked[s])+inflight {
			t.Fatalf("sender %d: %d acked, %d stored", s, len(acked[s]), len(got))
		}
	}
	t.Logf("killed after %d acked sends; %d events recovered", total.Load(), len(evs))
	bob.Disconnect(0)
}
