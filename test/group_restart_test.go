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

// groupHistorySeqs pages group.history from the newest and returns the
// GroupMsg MsgSeqs (ascending) and texts seen, plus every event seq.
func groupHistory(t *testing.T, c *Client, gid string) (seqs []uint64, texts []string) {
	t.Helper()
	var all []map[string]any
	next := uint64(0)
	for {
		r := c.Req("group.history", map[string]any{"GroupId": gid, "ReqMsgSeq": next, "ReqMsgNumber": 20})
		if code(r) != 0 {
			t.Fatalf("history: %v", r)
		}
		list, _ := r["RspMsgList"].([]any)
		for _, it := range list {
			all = append(all, it.(map[string]any))
		}
		if r["IsFinished"] == true || len(list) == 0 {
			break
		}
		next = uint64(list[len(list)-1].(map[string]any)["Seq"].(float64)) - 1
	}
	for i := len(all) - 1; i >= 0; i-- {
		ev := all[i]
		seq := uint64(ev["Seq"].(float64))
		if len(seqs) > 0 && seq != seqs[len(seqs)-1]+1 {
			t.Fatalf("group history has a gap or duplicate at seq %d after %d", seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, seq)
		if ev["Event"] == "GroupMsg" {
			body := ev["Msg"].(map[string]any)["MsgBody"].([]any)[0].(map[string]any)["MsgContent"].(map[string]any)
			texts = append(texts, body["Text"].(string))
		}
	}
	return seqs, texts
}

func TestE2E_GroupStateSurvivesRestart(t *testing.T) {
	b := StartBroker(t)
	alice := b.Connect("alice", "alice")
	r := alice.Req("group.create", map[string]any{"GroupId": "team-1", "Type": "Public", "Name": "team",
		"AppDefinedData": []any{map[string]any{"Key": "topic", "Value": "go"}},
		"MemberList":     []any{map[string]any{"Member_Account": "bob"}, map[string]any{"Member_Account": "carol", "Role": "Admin"}}})
	if code(r) != 0 {
		t.Fatalf("create: %v", r)
	}
	for i := 0; i < 5; i++ {
		alice.Publish1("im/send/group/team-1", Text(fmt.Sprintf("before %d", i), Random()))
	}
	if r := alice.Req("group.mute", map[string]any{"GroupId": "team-1", "Members_Account": []string{"bob"}, "MuteTime": 3600}); code(r) != 0 {
		t.Fatalf("mute: %v", r)
	}
	seqsBefore, _ := groupHistory(t, alice, "team-1")
	alice.Disconnect(0)
	b.Stop()

	b2 := StartWith(t, b.Cfg)
	alice = b2.Connect("alice", "alice")
	info := alice.Req("group.info", map[string]any{"GroupIdList": []string{"team-1"}})["GroupInfo"].([]any)[0].(map[string]any)
	if info["MemberNum"].(float64) != 3 || info["Owner_Account"] != "alice" || info["Name"] != "team" {
		t.Fatalf("info after restart: %v", info)
	}
	members := alice.Req("group.members", map[string]any{"GroupId": "team-1"})["MemberList"].([]any)
	roles := map[string]string{}
	muted := map[string]bool{}
	for _, m := range members {
		mm := m.(map[string]any)
		roles[mm["Member_Account"].(string)] = mm["Role"].(string)
		muted[mm["Member_Account"].(string)] = mm["MuteUntil"].(float64) > float64(time.Now().Unix())
	}
	if roles["carol"] != "Admin" || roles["alice"] != "Owner" || !muted["bob"] {
		t.Fatalf("members after restart: %v", members)
	}
	bob := b2.Connect("bob", "bob")
	bob.Publish1("im/send/group/team-1", Text("muted?", Random()))
	if r := bob.NextReply(); code(r) != 10017 {
		t.Fatalf("bob's mute did not survive the restart: %v", r)
	}
	alice.Publish1("im/send/group/team-1", Text("after", Random()))
	seqs, texts := groupHistory(t, alice, "team-1")
	if len(seqs) != len(seqsBefore)+1 || texts[len(texts)-1] != "after" {
		t.Fatalf("history after restart: %v %v (before %v)", seqs, texts, seqsBefore)
	}
}

// TestE2E_GroupKillMinus9: group messages acked before a SIGKILL are in the
// group's history after the restart, in order, with gap-free seqs.
func TestE2E_GroupKillMinus9(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "groups:\n  rate_limit: 100000\n")
	p := startProc(t, "-config", cfgPath)
	b := p.broker(t, TestKey)
	owner := b.Connect("owner", "owner")
	r := owner.Req("group.create", map[string]any{"GroupId": "crash", "Type": "Private", "Name": "crash",
		"MemberList": []any{map[string]any{"Member_Account": "s0"}, map[string]any{"Member_Account": "s1"}}})
	if code(r) != 0 {
		t.Fatalf("create: %v", r)
	}
	owner.Disconnect(0)

	const senders = 2
	var acked [senders][]int
	var total atomic.Int64
	reached := make(chan struct{})
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		u := fmt.Sprintf("s%d", s)
		c := paho.NewClient(b.ClientOpts(u, u, b.Sig(u)))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		wg.Add(1)
		go func(s int, c paho.Client) {
			defer wg.Done()
			defer c.Disconnect(0)
			for i := 0; ; i++ {
				body, _ := json.Marshal(Text(fmt.Sprintf("s%d-%d", s, i), uint32(s*1_000_000+i+1)))
				tok := c.Publish("im/send/group/crash", 1, false, body)
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil || !c.IsConnectionOpen() {
					return
				}
				acked[s] = append(acked[s], i)
				if total.Add(1) == 200 {
					close(reached)
				}
			}
		}(s, c)
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatal("sends too slow")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	p.wait()

	p2 := startProc(t, "-config", cfgPath)
	b2 := p2.broker(t, TestKey)
	owner = b2.Connect("owner", "owner")
	_, texts := groupHistory(t, owner, "crash")
	stored := map[int][]int{}
	for _, tx := range texts {
		var s, i int
		if _, err := fmt.Sscanf(tx, "s%d-%d", &s, &i); err != nil {
			t.Fatalf("unexpected message %q", tx)
		}
		stored[s] = append(stored[s], i)
	}
	for s := 0; s < senders; s++ {
		got := stored[s]
		for i, v := range got {
			if v != i {
				t.Fatalf("sender %d: stored %v is not 0..n in order", s, got)
			}
		}
		if len(got) < len(acked[s]) || len(got) > len(acked[s])+1 {
			t.Fatalf("sender %d: %d acked, %d stored", s, len(acked[s]), len(got))
		}
	}
	// Each member's stream (write diffusion) has the same messages, gap-free.
	s0 := b2.Connect("s0", "s0")
	evs := s0.SyncAll(0)
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("s0 stream: event %d has seq %d", i, e.Seq)
		}
	}
}
