package broker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// Retention: a background sweep deletes each stream's oldest events, those
// older than retention.max_age and those beyond the retention.max_per_stream
// newest, with range deletes through the committer (storage.Trim). It raises
// the stream's low watermark; sync, group.sync and group.history report
// what was deleted instead of skipping it (sync.go). The same loop deletes
// expired dedup records (storage.SweepDedups, storage.dedup_sweep_max).
//
// A sweep works in pieces (a commit of trims, a page of dedup records) and
// rests between them (retention.sweep_duty): a minute's trims done back to
// back held the committer and a core for seconds, and every send behind
// them waited (the c2c tail, docs/benchmarks.md Round 9).

const (
	retentionStreamsPage    = 256   // streams listed per store read
	retentionTrimsPerCommit = 128   // trims per commit: bounds each batch and its wait on the committer
	retentionScanLimit      = 10000 // entries one sweep examines per stream for age, and trims per stream; the rest waits for the next sweep
	// retentionEntriesPerCommit bounds the entries one commit's trims
	// delete: a trim reads them on the committer (the body references they
	// give back, storage/bodies.go), and every send queued behind it waits.
	// A longer trim goes in several commits. 10,000 held the committer for
	// ~250 ms on a million-message store (the c2c tail, docs/benchmarks.md);
	// 500 is a few ms.
	retentionEntriesPerCommit = 500
)

// retention runs the sweep every retention.sweep_interval until stopped.
type retention struct {
	store    *storage.Store
	cfg      config.Retention
	dedupMax int // dedup records one pass examines (storage.dedup_sweep_max); 0: none
	log      *slog.Logger
	now      func() time.Time
	worked   time.Time     // when the piece of work in progress began (rest)
	rests    int           // rests taken by the pass in progress (logged, tests)
	rested   time.Duration // their summed length
	cancel   context.CancelFunc
	done     chan struct{}
}

// startRetention starts the sweep (nil when neither retention nor the dedup
// sweep is enabled). The store must stay open until stop returns.
func (b *Broker) startRetention() *retention {
	r := &retention{store: b.store, cfg: b.cfg.Retention, dedupMax: b.cfg.Storage.DedupSweepMax,
		log: b.log.With("component", "retention"), now: time.Now}
	if r.cfg.MaxAge <= 0 && r.cfg.MaxPerStream <= 0 && r.dedupMax <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(ctx)
	return r
}

// stop cancels the sweep and waits for it: no trim is in flight afterwards.
func (r *retention) stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
}

func (r *retention) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if r.pass(ctx, r.now()) != nil {
			return
		}
	}
}

// rest waits after a piece of the sweep's work: as long as the piece took,
// times (1-duty)/duty, so the sweep works at most retention.sweep_duty of
// the time. It returns ctx's error if cancelled meanwhile.
func (r *retention) rest(ctx context.Context) error {
	if r.cfg.SweepDuty > 0 && r.cfg.SweepDuty < 1 && !r.worked.IsZero() {
		began := time.Now()
		t := time.NewTimer(time.Duration(float64(began.Sub(r.worked)) * (1 - r.cfg.SweepDuty) / r.cfg.SweepDuty))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		r.rests++
		r.rested += time.Since(began)
	}
	r.worked = time.Now()
	return nil
}

// pass runs one retention sweep over the streams (when limits are set) and
// one pass of the dedup sweep, which deletes expired dedup records
// (storage.SweepDedups), and logs what they did. It returns an error only
// when the loop must stop: cancelled, or the store closed.
func (r *retention) pass(ctx context.Context, now time.Time) error {
	r.worked, r.rests, r.rested = time.Now(), 0, 0
	if r.cfg.MaxAge > 0 || r.cfg.MaxPerStream > 0 {
		start := time.Now()
		n, err := r.sweep(ctx, now)
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrClosed):
			return err
		case err != nil:
			r.log.Error("retention sweep", "error", err, "streams_trimmed", n)
		case n > 0:
			r.log.Info("retention sweep", "streams_trimmed", n, "took", time.Since(start), "rested", r.rested)
		}
	}
	if r.dedupMax > 0 {
		n, err := r.store.SweepDedups(ctx, now, r.dedupMax, r.rest)
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrClosed):
			return err
		case err != nil:
			r.log.Error("dedup sweep", "error", err, "expired", n)
		case n > 0:
			r.log.Debug("dedup sweep", "expired", n)
		}
	}
	return nil
}

// sweep makes one pass over every stream and trims what retention no longer
// keeps, as of now. It returns the number of streams trimmed.
func (r *retention) sweep(ctx context.Context, now time.Time) (int, error) {
	var trims []storage.Trim
	var inline []storage.Update // conversation records whose last message a trim deletes
	trimmed, entries := 0, uint64(0)
	flush := func() error {
		entries = 0
		if len(trims) == 0 {
			return nil
		}
		if _, err := r.store.Commit(ctx, storage.Batch{Trims: trims, Updates: inline}); err != nil {
			return err
		}
		trims, inline = trims[:0], inline[:0]
		return r.rest(ctx)
	}
	for after := ""; ; {
		if err := ctx.Err(); err != nil {
			return trimmed, err
		}
		streams, err := r.store.Streams("", after, retentionStreamsPage)
		if err != nil {
			return trimmed, err
		}
		for _, st := range streams {
			below, err := r.cutoff(st, now)
			if err != nil {
				return trimmed, err
			}
			if below > st.Low {
				trimmed++
			}
			for low := st.Low; below > low; { // in pieces of at most retentionEntriesPerCommit entries
				to := min(below, low+retentionEntriesPerCommit-entries)
				// Epoch: a drop and a new history in between leave the new one alone.
				trims = append(trims, storage.Trim{Stream: st.Name, Below: to, Epoch: st.Head.Epoch})
				ups, err := convs.InlineLastMsgs(r.store, st.Name, to)
				if err != nil {
					return trimmed, err
				}
				inline = append(inline, ups...)
				entries += to - low
				low = to
				if len(trims) >= retentionTrimsPerCommit || entries >= retentionEntriesPerCommit {
					if err := flush(); err != nil {
						return trimmed, err
					}
				}
			}
		}
		if len(streams) < retentionStreamsPage {
			return trimmed, flush()
		}
		after = streams[len(streams)-1].Name
	}
}

// cutoff is the first seq of st that retention keeps as of now: past the
// max_per_stream newest, and past every event older than max_age.
func (r *retention) cutoff(st storage.StreamInfo, now time.Time) (uint64, error) {
	below := st.Low
	if n := uint64(r.cfg.MaxPerStream); n > 0 && st.Head.Seq > n {
		below = max(below, st.Head.Seq+1-n)
	}
	if r.cfg.MaxAge > 0 {
		// Seq order is commit order: read from the oldest kept event
		// forward until the first one young enough.
		aged, err := r.store.ExpiredBelow(st.Name, below, now.Add(-r.cfg.MaxAge), retentionScanLimit)
		if err != nil {
			return 0, err
		}
		below = max(below, aged)
	}
	return min(below, st.Low+retentionScanLimit), nil
}

// StreamBounds returns a stream's head and its low watermark, the oldest
// seq retention kept (head.Seq+1 when it deleted everything). Streams are
// "u/{UserID}" and "g/{GroupId}". For tests and operators.
func (b *Broker) StreamBounds(stream string) (head storage.Pos, low uint64, err error) {
	return b.store.Bounds(stream)
}
