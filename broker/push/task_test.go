package push

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// heldTasks keeps spawned fan-outs instead of running them, so the test
// decides when and how far each runs.
type heldTasks struct{ fns []func(context.Context) }

func (h *heldTasks) Spawn(fn func(context.Context)) bool {
	h.fns = append(h.fns, fn)
	return true
}

// stopAfter is the store, cancelling ctx after n commits: a shutdown that
// lands between two pages of a fan-out.
type stopAfter struct {
	*storage.Store
	n      int
	cancel context.CancelFunc
}

func (s *stopAfter) Commit(ctx context.Context, b storage.Batch) (storage.Result, error) {
	res, err := s.Store.Commit(context.Background(), b)
	if s.n--; s.n == 0 {
		s.cancel()
	}
	return res, err
}

// TestPushResumesExactlyOnce: a fan-out stopped after its first page
// resumes in a new service over the same store (a restart) and every
// recipient ends with exactly one copy.
func TestPushResumesExactlyOnce(t *testing.T) {
	st, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	for _, u := range users {
		if err := st.Set(context.Background(), accountPrefix+u, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := config.Default()
	cfg.Push.BatchUsers = 2
	tasks := &heldTasks{}
	// Commit 1 stores the task, commit 2 is the first page; then "shutdown".
	s := New(Options{Store: &stopAfter{Store: st, n: 2, cancel: cancel}, Tasks: tasks, Config: cfg.Push, Messages: cfg.Messages, Admin: "admin"})
	random := uint32(7)
	id, err := s.Push(context.Background(), &Request{MsgRandom: &random, MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks.fns) != 1 {
		t.Fatalf("%d fan-outs spawned", len(tasks.fns))
	}
	tasks.fns[0](ctx)
	t2, err := s.load(id)
	if err != nil {
		t.Fatal(err)
	}
	if t2.Done || t2.Sent != 2 || t2.Cursor != "u2" {
		t.Fatalf("after the stop: %+v, want 2 sent up to u2", t2)
	}

	// Restart: a new service resumes the task from its cursor.
	tasks2 := &heldTasks{}
	s2 := New(Options{Store: st, Tasks: tasks2, Config: cfg.Push, Messages: cfg.Messages, Admin: "admin"})
	s2.Resume()
	if len(tasks2.fns) != 1 {
		t.Fatalf("resume spawned %d fan-outs, want 1", len(tasks2.fns))
	}
	tasks2.fns[0](context.Background())
	for _, u := range users {
		pg, err := st.ReadFrom(streamPrefix+u, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Entries) != 1 {
			t.Fatalf("%s has %d copies, want 1", u, len(pg.Entries))
		}
	}
	if t3, _ := s2.load(id); !t3.Done || t3.Sent != len(users) {
		t.Fatalf("final task %+v", t3)
	}
	// A retry of the finished task (same MsgRandom) answers its TaskId and
	// starts nothing.
	again, err := s2.Push(context.Background(), &Request{MsgRandom: &random, MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`)})
	if err != nil || again != id || len(tasks2.fns) != 1 {
		t.Fatalf("retry: %s %v, %d fan-outs", again, err, len(tasks2.fns))
	}
	s2.running.Range(func(k, _ any) bool { t.Fatalf("task %v still marked running", k); return false })
}
