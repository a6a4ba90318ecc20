package relations

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// testStore is a real in-memory store whose calls a test can observe and
// fail.
type testStore struct {
	*storage.Store
	mu         sync.Mutex
	commits    int
	failCommit func(storage.Batch) bool // a commit it returns true for fails, writing nothing
	onGet      func(name string)        // called before every Get
}

var errInjected = errors.New("injected commit failure")

func (s *testStore) Commit(ctx context.Context, b storage.Batch) (storage.Result, error) {
	s.mu.Lock()
	fail := s.failCommit != nil && s.failCommit(b)
	if !fail {
		s.commits++
	}
	s.mu.Unlock()
	if fail {
		return storage.Result{}, errInjected
	}
	return s.Store.Commit(ctx, b)
}

func (s *testStore) Get(name string) ([]byte, bool, error) {
	s.mu.Lock()
	hook := s.onGet
	s.mu.Unlock()
	if hook != nil {
		hook(name)
	}
	return s.Store.Get(name)
}

func (s *testStore) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// testCallbacks records after-callbacks.
type testCallbacks struct {
	mu    sync.Mutex
	after []map[string]any
	cmds  []string
}

func (c *testCallbacks) Enabled(string) bool { return true }
func (c *testCallbacks) Before(context.Context, string, map[string]any) callbacks.Decision {
	return callbacks.Decision{}
}
func (c *testCallbacks) Failure(string, error) callbacks.Decision {
	return callbacks.Decision{Failed: true}
}
func (c *testCallbacks) After(_ context.Context, cmd string, fields map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds, c.after = append(c.cmds, cmd), append(c.after, fields)
}

func newTestService(t *testing.T) (*Service, *testStore, *testCallbacks) {
	t.Helper()
	st, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ts, cb := &testStore{Store: st}, &testCallbacks{}
	cfg := config.Default().Relations
	return New(Options{Store: ts, Config: cfg, Admin: "admin", Callbacks: cb}), ts, cb
}

// events are the event names in uid's stream.
func events(t *testing.T, s *testStore, uid string) []string {
	t.Helper()
	page, err := s.ReadFrom(userStream(uid), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Entries {
		var ev struct{ Event string }
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Event)
	}
	return out
}

func friendsOf(t *testing.T, s *Service, uid string) []string {
	t.Helper()
	peers, _, err := s.loadFriends(uid)
	if err != nil {
		t.Fatal(err)
	}
	return peers
}

// importFriends puts peers in uid's list (one-way, no callbacks).
func importFriends(t *testing.T, s *Service, uid string, peers ...string) {
	t.Helper()
	q := &FriendImportRequest{}
	for _, p := range peers {
		q.AddFriendItem = append(q.AddFriendItem, FriendImportItem{To_Account: p})
	}
	res, err := s.FriendImport(context.Background(), ops.Actor{User: uid}, q)
	if err != nil || len(res.Fail_Account) > 0 {
		t.Fatalf("import %v: %v %+v", peers, err, res)
	}
}

// TestFriendDeleteAllIsAllOrNothing: friend_delete_all is one commit. When
// it fails (here: the store refuses any batch deleting kim's record, the
// third of five), no friend is deleted and no event or callback is out;
// when it succeeds, it is one commit with one FriendDeleted per friend and
// one callback naming every pair.
func TestFriendDeleteAllIsAllOrNothing(t *testing.T) {
	s, st, cb := newTestService(t)
	ctx := context.Background()
	friends := []string{"ann", "ben", "kim", "lee", "max"}
	importFriends(t, s, "zoe", friends...)
	before := events(t, st, "zoe")

	st.set(func() {
		st.failCommit = func(b storage.Batch) bool { return slices.Contains(b.Deletes, friendKey("zoe", "kim")) }
	})
	if _, err := s.FriendDeleteAll(ctx, ops.Actor{User: "zoe"}, &FriendDeleteAllRequest{}); !errors.Is(err, errInjected) {
		t.Fatalf("delete all: %v, want the injected failure", err)
	}
	if got := friendsOf(t, s, "zoe"); !slices.Equal(got, friends) {
		t.Fatalf("after a failed delete all, friends %v, want %v", got, friends)
	}
	if got := events(t, st, "zoe"); len(got) != len(before) {
		t.Fatalf("after a failed delete all, events %v, want %v", got, before)
	}
	for _, f := range friends {
		if got := events(t, st, f); slices.Contains(got, eventFriendDeleted) {
			t.Fatalf("%s got %v after a failed delete all", f, got)
		}
	}
	if len(cb.cmds) != 0 {
		t.Fatalf("callbacks after a failed delete all: %v", cb.cmds)
	}

	st.set(func() { st.failCommit, st.commits = nil, 0 })
	if _, err := s.FriendDeleteAll(ctx, ops.Actor{User: "zoe"}, &FriendDeleteAllRequest{}); err != nil {
		t.Fatal(err)
	}
	if st.commits != 1 {
		t.Fatalf("delete all took %d commits, want 1", st.commits)
	}
	if got := friendsOf(t, s, "zoe"); len(got) != 0 {
		t.Fatalf("friends left: %v", got)
	}
	n := 0
	for _, e := range events(t, st, "zoe") {
		if e == eventFriendDeleted {
			n++
		}
	}
	if n != len(friends) {
		t.Fatalf("zoe got %d FriendDeleted, want %d", n, len(friends))
	}
	for _, f := range friends {
		if got := events(t, st, f); got[len(got)-1] != eventFriendDeleted || slices.Index(got, eventFriendDeleted) != len(got)-1 {
			t.Fatalf("%s: events %v, want one FriendDeleted last", f, got)
		}
	}
	if len(cb.cmds) != 1 || cb.cmds[0] != cbSnsFriendDelete || len(cb.after[0]["PairList"].([]map[string]any)) != len(friends) {
		t.Fatalf("callbacks %v %v, want one %s with %d pairs", cb.cmds, cb.after, cbSnsFriendDelete, len(friends))
	}
}

// TestFriendDeleteAllBoth: with Delete_Type_Both the friends' lists lose
// the user too, in the same commit.
func TestFriendDeleteAllBoth(t *testing.T) {
	s, st, _ := newTestService(t)
	importFriends(t, s, "zoe", "ann", "ben")
	importFriends(t, s, "ann", "zoe")
	st.set(func() { st.commits = 0 })
	if _, err := s.FriendDeleteAll(context.Background(), ops.Actor{User: "zoe"}, &FriendDeleteAllRequest{DeleteType: deleteTypeBoth}); err != nil {
		t.Fatal(err)
	}
	if st.commits != 1 || len(friendsOf(t, s, "zoe")) != 0 || len(friendsOf(t, s, "ann")) != 0 {
		t.Fatalf("commits %d, zoe %v, ann %v", st.commits, friendsOf(t, s, "zoe"), friendsOf(t, s, "ann"))
	}
	if _, err := s.FriendDeleteAll(context.Background(), ops.Actor{User: "zoe"}, &FriendDeleteAllRequest{DeleteType: "x"}); err == nil {
		t.Fatal("a bad DeleteType was accepted")
	}
}

// TestFriendGetListReadsUnderTheLock: friend_get_list reads under the
// owner's relation lock, so its answer is of one state of the list: a
// change of the list started while it reads waits until it has answered.
func TestFriendGetListReadsUnderTheLock(t *testing.T) {
	s, st, _ := newTestService(t)
	ctx := context.Background()
	importFriends(t, s, "zoe", "ann", "ben")
	reading, release, changeRead := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var parked, changed sync.Once
	var released atomic.Bool
	defer func() { // a failed test must not leave friend_get_list parked
		if !released.Swap(true) {
			close(release)
		}
	}()
	st.set(func() {
		st.onGet = func(name string) {
			switch {
			case name == friendKey("zoe", "ann"):
				parked.Do(func() { close(reading); <-release })
			case name == friendKey("zoe", "ben") && !released.Load():
				changed.Do(func() { close(changeRead) }) // only the delete reads ben's record this early
			}
		}
	})
	got := make(chan *FriendGetListResponse, 1)
	go func() {
		res, err := s.FriendGetList(ctx, ops.Actor{User: "zoe"}, &FriendGetListRequest{To_Account: []string{"ann", "ben"},
			TagList: []string{tagSnsAddTime}})
		if err != nil {
			t.Error(err)
		}
		got <- res
	}()
	<-reading
	deleted := make(chan error, 1)
	go func() {
		_, err := s.FriendDelete(ctx, ops.Actor{User: "zoe"}, &FriendDeleteRequest{To_Account: []string{"ben"}})
		deleted <- err
	}()
	select {
	case <-changeRead:
		t.Fatal("friend.delete read zoe's list while friend_get_list was reading it")
	case <-time.After(100 * time.Millisecond): // the delete waits for the lock
	}
	released.Store(true)
	close(release)
	res := <-got
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if res == nil || len(res.Fail_Account) != 0 || len(res.InfoItem) != 2 {
		t.Fatalf("friend_get_list during a delete: %+v", res)
	}
	if got := friendsOf(t, s, "zoe"); !slices.Equal(got, []string{"ann"}) {
		t.Fatalf("after the delete: %v", got)
	}
}
