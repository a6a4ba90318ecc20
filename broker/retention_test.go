package broker

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

func retentionStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fill appends n events to each stream, in one batch.
func fill(t *testing.T, s *storage.Store, n int, streams ...string) {
	t.Helper()
	var b storage.Batch
	for _, st := range streams {
		for i := 0; i < n; i++ {
			b.Appends = append(b.Appends, storage.Append{Stream: st, Payload: []byte(`{}`)})
		}
	}
	if _, err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func lowOf(t *testing.T, s *storage.Store, stream string) uint64 {
	t.Helper()
	_, low, err := s.Bounds(stream)
	if err != nil {
		t.Fatal(err)
	}
	return low
}

func TestRetention_CapPerStreamOverManyStreams(t *testing.T) {
	s := retentionStore(t)
	// More streams than one listing page and than one trim commit.
	var many []string
	for i := 0; i < retentionStreamsPage+50; i++ {
		many = append(many, fmt.Sprintf("u/user%04d", i))
	}
	fill(t, s, 8, many...)
	fill(t, s, 3, "g/small")
	r := &retention{store: s, cfg: config.Retention{MaxPerStream: 5}, log: slog.New(slog.DiscardHandler)}
	n, err := r.sweep(context.Background(), time.Now())
	if err != nil || n != len(many) {
		t.Fatalf("sweep trimmed %d streams, %v; want %d", n, err, len(many))
	}
	for _, st := range many {
		if low := lowOf(t, s, st); low != 4 {
			t.Fatalf("%s: low %d, want 4 (keeps 4..8)", st, low)
		}
	}
	if low := lowOf(t, s, "g/small"); low != 1 {
		t.Fatalf("g/small under the cap trimmed to %d", low)
	}
	// A second sweep has nothing to do.
	if n, err := r.sweep(context.Background(), time.Now()); n != 0 || err != nil {
		t.Fatalf("second sweep: %d %v", n, err)
	}
}

// A sweep trims at most retentionScanLimit entries of a stream, and the
// trims of one commit at most about retentionEntriesPerCommit entries: a
// trim reads what it deletes on the committer (body references).
func TestRetention_TrimsABoundedShareEachSweep(t *testing.T) {
	s := retentionStore(t)
	fill(t, s, retentionScanLimit+retentionScanLimit/2+10, "u/long")
	r := &retention{store: s, cfg: config.Retention{MaxPerStream: 10}, log: slog.New(slog.DiscardHandler)}
	if _, err := r.sweep(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if low := lowOf(t, s, "u/long"); low != retentionScanLimit+1 {
		t.Fatalf("after one sweep low %d, want %d", low, retentionScanLimit+1)
	}
	// In commits of at most retentionEntriesPerCommit entries each: one
	// of 10,000 held every send behind it for ~250 ms.
	groups := s.Stats().Groups
	if _, err := r.sweep(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, want := s.Stats().Groups-groups, uint64(retentionScanLimit/2/retentionEntriesPerCommit); n < want {
		t.Fatalf("the second sweep trimmed %d entries in %d commits, want at least %d", retentionScanLimit/2-10, n, want)
	}
	if low, want := lowOf(t, s, "u/long"), uint64(retentionScanLimit+retentionScanLimit/2+1); low != want {
		t.Fatalf("after two sweeps low %d, want %d (keeps the newest 10)", low, want)
	}
}

// A stream trimmed in several commits counts once, and ends where one
// trim would have left it.
func TestRetention_TrimsInPiecesCountOnce(t *testing.T) {
	s := retentionStore(t)
	fill(t, s, 3*retentionEntriesPerCommit+7, "c/a:b")
	r := &retention{store: s, cfg: config.Retention{MaxPerStream: 5}, log: slog.New(slog.DiscardHandler)}
	groups := s.Stats().Groups
	if n, err := r.sweep(context.Background(), time.Now()); n != 1 || err != nil {
		t.Fatalf("sweep: %d streams, %v", n, err)
	}
	if n := s.Stats().Groups - groups; n != 4 {
		t.Fatalf("%d commits, want 4", n)
	}
	if low, want := lowOf(t, s, "c/a:b"), uint64(3*retentionEntriesPerCommit+3); low != want {
		t.Fatalf("low %d, want %d", low, want)
	}
}

func TestRetention_MaxAge(t *testing.T) {
	s := retentionStore(t)
	fill(t, s, 3, "u/a")
	_, old, _ := s.Read("u/a", 2, 1)
	// Wait (at most a millisecond) until commits get a later millisecond
	// than the old ones, so the two sets are told apart exactly.
	for time.Now().UnixMilli() <= old[0].Time.UnixMilli() {
		runtime.Gosched()
	}
	fill(t, s, 2, "u/a")
	const maxAge = time.Hour
	r := &retention{store: s, cfg: config.Retention{MaxAge: maxAge}, log: slog.New(slog.DiscardHandler)}
	// As of just after the old ones turn maxAge old: they go, the new ones stay.
	now := old[0].Time.Add(maxAge + time.Millisecond)
	if n, err := r.sweep(context.Background(), now); n != 1 || err != nil {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if low := lowOf(t, s, "u/a"); low != 4 {
		t.Fatalf("low %d, want 4", low)
	}
	// Much later everything goes; the head stays, so seqs go on.
	if _, err := r.sweep(context.Background(), now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	head, low, _ := s.Bounds("u/a")
	if head.Seq != 5 || low != 6 {
		t.Fatalf("head %+v low %d, want everything trimmed", head, low)
	}
	// With both limits, the stricter one wins.
	fill(t, s, 10, "u/b")
	r.cfg.MaxPerStream = 4
	if _, err := r.sweep(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if low := lowOf(t, s, "u/b"); low != 7 {
		t.Fatalf("u/b low %d, want 7", low)
	}
}

func TestRetention_StartStop(t *testing.T) {
	s := retentionStore(t)
	b := &Broker{store: s, log: slog.New(slog.DiscardHandler)}
	if r := b.startRetention(); r != nil {
		t.Fatal("retention started with no limits")
	}
	(*retention)(nil).stop() // a disabled sweep stops as a no-op
	fill(t, s, 9, "u/a")
	b.cfg.Retention = config.Retention{MaxPerStream: 2, SweepInterval: 5 * time.Millisecond}
	r := b.startRetention()
	deadline := time.After(5 * time.Second)
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for lowOf(t, s, "u/a") != 8 {
		select {
		case <-deadline:
			t.Fatal("the background sweep did not trim within 5s")
		case <-poll.C:
		}
	}
	r.stop()
	select {
	case <-r.done:
	default:
		t.Fatal("stop returned before the sweep ended")
	}
}

// Each pass also deletes expired dedup records (storage.dedup_sweep_max),
// with or without stream retention limits, and the loop runs for it alone.
func TestRetention_PassSweepsDedups(t *testing.T) {
	s := retentionStore(t)
	ctx := context.Background()
	for i, ttl := range []time.Duration{-time.Second, time.Hour, -time.Second} {
		b := storage.Batch{Appends: []storage.Append{{Stream: "u/a", Payload: []byte(`{}`)}},
			DedupKey: []byte(fmt.Sprint("k", i)), DedupValue: []byte("v"), DedupTTL: ttl}
		if _, err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	b := &Broker{store: s, log: slog.New(slog.DiscardHandler)}
	b.cfg.Storage.DedupSweepMax = 100
	b.cfg.Retention = config.Retention{SweepInterval: time.Hour} // no stream limits
	r := b.startRetention()
	if r == nil {
		t.Fatal("no maintenance loop although the dedup sweep is on")
	}
	r.stop()
	if err := r.pass(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SweepDedups(ctx, time.Now(), 100, nil); err != nil || n != 0 {
		t.Fatalf("after a pass, a second sweep still finds %d expired records (%v)", n, err)
	}
	if _, ok, _ := s.Dedup([]byte("k1")); !ok {
		t.Fatal("the live dedup record was deleted")
	}
}

// After a piece of work the sweep rests (1-duty)/duty times as long as the
// piece took (never less: a timer does not fire early), not at all with a
// duty of 1, and a stop during a rest ends it at once.
func TestRetention_RestsBetweenPieces(t *testing.T) {
	ctx := context.Background()
	r := &retention{cfg: config.Retention{SweepDuty: 0.5}}
	r.worked = time.Now().Add(-20 * time.Millisecond)
	began := time.Now()
	if err := r.rest(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 20*time.Millisecond {
		t.Fatalf("after 20ms of work at duty 0.5 the sweep rested %v, want >= 20ms", d)
	}
	if time.Since(r.worked) > time.Second {
		t.Fatal("rest did not start the next piece's clock")
	}

	r.cfg.SweepDuty = 1
	r.worked = time.Now().Add(-time.Hour)
	if err := r.rest(ctx); err != nil {
		t.Fatal(err)
	}

	r.cfg.SweepDuty = 0.5
	r.worked = time.Now().Add(-time.Hour) // an hour's rest
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.rest(cctx) }()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("a cancelled rest returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled rest did not end")
	}
}

// The sweep rests between its trim commits: at duty 1 never, at duty 0.5
// after each of them.
func TestRetention_SweepRestsBetweenCommits(t *testing.T) {
	for _, duty := range []float64{1, 0.5} {
		s := retentionStore(t)
		fill(t, s, 4*retentionEntriesPerCommit+7, "c/a:b", "c/b:c")
		r := &retention{store: s, cfg: config.Retention{MaxPerStream: 5, SweepDuty: duty}, log: slog.New(slog.DiscardHandler)}
		groups := s.Stats().Groups
		if err := r.pass(context.Background(), time.Now()); err != nil {
			t.Fatal(err)
		}
		commits := s.Stats().Groups - groups
		if commits < 2 {
			t.Fatalf("duty %v: %d trim commits, want the trims in pieces", duty, commits)
		}
		if duty == 1 && (r.rests != 0 || r.rested != 0) {
			t.Fatalf("duty 1: %d rests (%v)", r.rests, r.rested)
		}
		if duty < 1 && (r.rests != int(commits) || r.rested <= 0) {
			t.Fatalf("duty %v: %d rests (%v) after %d commits, want one after each", duty, r.rests, r.rested, commits)
		}
	}
}
