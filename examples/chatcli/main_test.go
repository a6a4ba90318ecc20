package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// fake drives Chat without a broker: it records publishes and output.
type fake struct {
	out  strings.Builder
	reqs []map[string]any
	c    *Chat
}

func newFake(st State) *fake {
	f := &fake{}
	f.c = &Chat{User: "bob", Out: &f.out, State: st, Publish: func(topic string, p []byte) error {
		var m map[string]any
		_ = json.Unmarshal(p, &m)
		m["topic"] = topic
		f.reqs = append(f.reqs, m)
		return nil
	}}
	return f
}

func (f *fake) event(t *testing.T, seq, epoch uint64) {
	t.Helper()
	ev := fmt.Sprintf(`{"Seq":%d,"Epoch":%d,"Event":"C2CMsg","Msg":{"From_Account":"alice","To_Account":"bob","MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"m%d"}}]}}`, seq, epoch, seq)
	if err := f.c.OnEvent([]byte(ev)); err != nil {
		t.Fatal(err)
	}
}

func (f *fake) reply(t *testing.T, r string) {
	t.Helper()
	if err := f.c.OnReply([]byte(r)); err != nil {
		t.Fatal(err)
	}
}

func (f *fake) lastReq(t *testing.T) map[string]any {
	t.Helper()
	if len(f.reqs) == 0 {
		t.Fatal("no request")
	}
	return f.reqs[len(f.reqs)-1]
}

func TestSyncPagesUntilComplete(t *testing.T) {
	f := newFake(State{})
	if err := f.c.Sync(); err != nil {
		t.Fatal(err)
	}
	if r := f.lastReq(t); r["topic"] != "im/req/sync" || r["Since"] != 0.0 || r["Epoch"] != nil {
		t.Fatalf("first request %v", r)
	}
	f.event(t, 2, 7) // out of order within a page: held until the reply
	f.event(t, 1, 7)
	f.reply(t, `{"Id":"sync-1","Op":"sync","ErrorCode":0,"Seq":2,"Epoch":7,"HeadSeq":3,"OldestSeq":1,"Complete":false}`)
	if r := f.lastReq(t); r["Id"] != "sync-2" || r["Since"] != 2.0 || r["Epoch"] != 7.0 {
		t.Fatalf("second page request %v", r)
	}
	f.event(t, 3, 7)
	f.event(t, 4, 7) // a live event arriving during the replay
	f.reply(t, `{"Id":"sync-2","Op":"sync","ErrorCode":0,"Seq":3,"Epoch":7,"HeadSeq":3,"OldestSeq":1,"Complete":true}`)
	f.event(t, 4, 7) // its duplicate
	want := "[sync #1] alice -> bob: m1\n[sync #2] alice -> bob: m2\n[sync #3] alice -> bob: m3\n[live #4] alice -> bob: m4\ncaught up at Seq 4\n"
	if f.out.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", f.out.String(), want)
	}
	if len(f.reqs) != 2 {
		t.Fatalf("requests %v", f.reqs)
	}
}

func TestSyncResetStartsFromZero(t *testing.T) {
	f := newFake(State{Seq: 10, Epoch: 1}) // from a data dir that was wiped since
	_ = f.c.Sync()
	if r := f.lastReq(t); r["Since"] != 10.0 || r["Epoch"] != 1.0 {
		t.Fatalf("request %v", r)
	}
	f.event(t, 1, 2)
	f.event(t, 2, 2)
	f.reply(t, `{"Id":"sync-1","Op":"sync","ErrorCode":0,"Seq":2,"Epoch":2,"HeadSeq":2,"OldestSeq":1,"Complete":true,"Reset":true}`)
	if f.c.State != (State{Seq: 2, Epoch: 2}) || !strings.Contains(f.out.String(), "[sync #2]") || !strings.HasSuffix(f.out.String(), "caught up at Seq 2\n") {
		t.Fatalf("state %+v, printed\n%s", f.c.State, f.out.String())
	}
	// A live event of yet another Epoch: history lost again, catch up from 0.
	f.event(t, 1, 3)
	if r := f.lastReq(t); r["Since"] != 0.0 || r["Epoch"] != nil {
		t.Fatalf("request after an Epoch change %v", r)
	}
}

func TestLiveGapSyncs(t *testing.T) {
	f := newFake(State{Seq: 3, Epoch: 7})
	f.event(t, 5, 7) // 4 was lost live
	if r := f.lastReq(t); r["Since"] != 3.0 {
		t.Fatalf("no sync after a gap: %v", f.reqs)
	}
	f.event(t, 4, 7)
	f.reply(t, `{"Id":"sync-1","Op":"sync","ErrorCode":0,"Seq":5,"Epoch":7,"HeadSeq":5,"OldestSeq":1,"Complete":true}`)
	if want := "[sync #4] alice -> bob: m4\n[sync #5] alice -> bob: m5\ncaught up at Seq 5\n"; f.out.String() != want {
		t.Fatalf("printed\n%s", f.out.String())
	}
}

func TestSyncTrimmed(t *testing.T) {
	f := newFake(State{Seq: 2, Epoch: 7})
	_ = f.c.Sync()
	f.reply(t, `{"Id":"sync-1","Op":"sync","ErrorCode":0,"Seq":2,"Epoch":7,"HeadSeq":20,"OldestSeq":11,"Complete":false,"Trimmed":true}`)
	if r := f.lastReq(t); r["Since"] != 10.0 || !strings.Contains(f.out.String(), "events 3..10 were deleted") {
		t.Fatalf("after Trimmed: %v, printed %s", r, f.out.String())
	}
}

func TestCommand(t *testing.T) {
	f := newFake(State{})
	if quit, err := f.c.Command("  send alice  hello  there "); quit || err != nil {
		t.Fatal(quit, err)
	}
	r := f.lastReq(t)
	body, _ := json.Marshal(r["MsgBody"])
	if r["topic"] != "im/send/c2c/alice" || string(body) != `[{"MsgContent":{"Text":"hello  there"},"MsgType":"TIMTextElem"}]` {
		t.Fatalf("publish %v %s", r, body)
	}
	if quit, _ := f.c.Command("quit"); !quit {
		t.Fatal("quit did not quit")
	}
}
