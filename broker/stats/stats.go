// Package stats keeps the app's per-day figures durably: new and total
// accounts, daily active users, peak online users and connections, messages
// sent one-to-one and in groups, groups created and active. The console's
// Statistics page and openconfigsvr/getappinfo read them.
//
// Figures come from two sources. A sample, taken every stats.interval (and
// whenever the figures are read), reads the node's counters: messages since
// the process started and the account and group totals; the day's counts
// grow by the differences between samples. Events name who was active: a
// user whose connection started or ended (Seen) and a group that got a
// message (GroupActive); each is recorded once per day in the store, so
// DAU and active groups survive a restart.
package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imbroker/imbroker/storage"
)

// Day is one day's figures (UTC). Date is "YYYYMMDD".
type Day struct {
	Date            string `json:"Date"`
	NewAccounts     int64  `json:"NewAccounts"`     // accounts imported (total's growth between samples)
	TotalAccounts   int64  `json:"TotalAccounts"`   // accounts at the day's last sample
	ActiveUsers     int64  `json:"ActiveUsers"`     // distinct users with a connection that day (DAU)
	PeakOnlineUsers int64  `json:"PeakOnlineUsers"` // most users online at once
	PeakOnlineConns int64  `json:"PeakOnlineConns"` // most connections at once
	C2CMsgs         int64  `json:"C2CMsgs"`         // one-to-one messages accepted
	GroupMsgs       int64  `json:"GroupMsgs"`       // group messages accepted
	GroupsCreated   int64  `json:"GroupsCreated"`   // group total's growth between samples
	GroupsActive    int64  `json:"GroupsActive"`    // distinct groups with a message that day
	TotalGroups     int64  `json:"TotalGroups"`     // groups at the day's last sample
}

// Sample is the node's counters at one moment.
type Sample struct {
	C2CSent, GroupSent       int64 // since the process started
	Accounts, Groups         int   // now
	OnlineUsers, OnlineConns int   // now
}

// Store is the KV part of storage.Store.
type Store interface {
	Get(name string) ([]byte, bool, error)
	Scan(prefix, after string, limit int) ([]storage.KV, error)
	Commit(ctx context.Context, b storage.Batch) (storage.Result, error)
}

// Options configure a Collector.
type Options struct {
	Store    Store
	Sample   func() (Sample, error)
	Interval time.Duration // between samples
	KeepDays int           // days kept; older records are deleted
	Now      func() time.Time
	Log      *slog.Logger
}

// Record names. Days sort by date, so one scan finds the old ones.
const (
	dayPrefix    = "sd/"
	userPrefix   = "sa/" // sa/{date}/{uid}
	groupPrefix  = "sg/" // sg/{date}/{gid}
	pruneBatch   = 1000  // records one prune commit deletes
	commitBudget = 10 * time.Second
)

// Collector keeps today's figures in memory and writes them on every
// sample.
type Collector struct {
	o      Options
	flush  sync.Mutex // one sample at a time: taken before mu, held across the commit
	mu     sync.Mutex // today, the sets, last: held only while they are read or changed
	today  Day
	users  map[string]bool // active today: true once written
	groups map[string]bool
	last   Sample
	cancel context.CancelFunc
	done   chan struct{}
}

// Start loads today's record and active sets, takes the first sample (its
// totals are the baseline for new accounts and groups) and starts sampling.
func Start(o Options) (*Collector, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{o: o, done: make(chan struct{})}
	date := dateOf(o.Now())
	if err := c.load(date); err != nil {
		return nil, err
	}
	s, err := o.Sample()
	if err != nil {
		return nil, fmt.Errorf("stats: first sample: %w", err)
	}
	// Messages counted since the process started belong to today; the
	// totals are where growth is measured from.
	c.last = Sample{Accounts: s.Accounts, Groups: s.Groups}
	if err := c.apply(context.Background(), s); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c, nil
}

func (c *Collector) load(date string) error {
	c.today = Day{Date: date}
	c.users, c.groups = map[string]bool{}, map[string]bool{}
	if v, ok, err := c.o.Store.Get(dayPrefix + date); err != nil {
		return fmt.Errorf("stats: load %s: %w", date, err)
	} else if ok {
		if err := json.Unmarshal(v, &c.today); err != nil {
			return fmt.Errorf("stats: decode %s: %w", date, err)
		}
	}
	for prefix, set := range map[string]map[string]bool{userPrefix + date + "/": c.users, groupPrefix + date + "/": c.groups} {
		err := storage.ScanAll(c.o.Store, prefix, func(name string, _ []byte) error {
			set[strings.TrimPrefix(name, prefix)] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("stats: load %s: %w", prefix, err)
		}
	}
	c.today.ActiveUsers, c.today.GroupsActive = int64(len(c.users)), int64(len(c.groups))
	return nil
}

func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.o.Log.Warn("stats sample failed", "error", err)
		}
	}
}

// Stop ends sampling and writes a last sample; the store must still be
// open. Idempotent.
func (c *Collector) Stop() {
	if c == nil || c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), commitBudget)
	defer cancel()
	if err := c.Refresh(ctx); err != nil {
		c.o.Log.Warn("stats: last sample failed", "error", err)
	}
}

// Refresh takes a sample now and writes today's figures.
func (c *Collector) Refresh(ctx context.Context) error {
	s, err := c.o.Sample()
	if err != nil {
		return fmt.Errorf("stats: sample: %w", err)
	}
	return c.apply(ctx, s)
}

// apply adds a sample to today (closing the day first when the date
// changed) and writes today's record with the newly active users and groups.
// mu is held only to read and change the figures, never across a commit:
// Seen runs on every login and must not wait for an fsync.
func (c *Collector) apply(ctx context.Context, s Sample) error {
	c.flush.Lock()
	defer c.flush.Unlock()
	now := c.o.Now()
	c.mu.Lock()
	if date := dateOf(now); date != c.today.Date {
		old, pending := c.pending()
		c.mu.Unlock()
		if err := c.write(ctx, old, pending); err != nil { // the old day, as last sampled
			return err
		}
		c.mu.Lock()
		c.today = Day{Date: date}
		c.users, c.groups = map[string]bool{}, map[string]bool{}
		c.mu.Unlock()
		c.prune(ctx, now)
		c.mu.Lock()
	}
	d := &c.today
	d.C2CMsgs += max(0, s.C2CSent-c.last.C2CSent)
	d.GroupMsgs += max(0, s.GroupSent-c.last.GroupSent)
	d.NewAccounts += int64(max(0, s.Accounts-c.last.Accounts))
	d.GroupsCreated += int64(max(0, s.Groups-c.last.Groups))
	d.TotalAccounts, d.TotalGroups = int64(s.Accounts), int64(s.Groups)
	d.PeakOnlineUsers = max(d.PeakOnlineUsers, int64(s.OnlineUsers))
	d.PeakOnlineConns = max(d.PeakOnlineConns, int64(s.OnlineConns))
	c.last = s
	day, pending := c.pending()
	c.mu.Unlock()
	if err := c.write(ctx, day, pending); err != nil {
		return err
	}
	c.mu.Lock()
	for _, m := range pending { // the same day: only apply changes days, and flush is held
		m.set[m.id] = true
	}
	c.mu.Unlock()
	return nil
}

// member is an active user or group not yet written.
type member struct {
	set    map[string]bool
	prefix string
	id     string
}

// pending is today's figures and the active users and groups not yet
// written. Called with mu held.
func (c *Collector) pending() (Day, []member) {
	var out []member
	for prefix, set := range map[string]map[string]bool{userPrefix: c.users, groupPrefix: c.groups} {
		for id, written := range set {
			if !written {
				out = append(out, member{set, prefix, id})
			}
		}
	}
	return c.today, out
}

// write stores a day's record and its newly active users and groups in
// one commit.
func (c *Collector) write(ctx context.Context, d Day, pending []member) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	sets := map[string][]byte{dayPrefix + d.Date: v}
	for _, m := range pending {
		sets[m.prefix+d.Date+"/"+m.id] = []byte{}
	}
	if _, err := c.o.Store.Commit(ctx, storage.Batch{Sets: sets}); err != nil {
		return fmt.Errorf("stats: write %s: %w", d.Date, err)
	}
	return nil
}

// prune deletes day records older than KeepDays and the active sets of
// days before today (their counts live on in the day records). A failure
// is logged; the next day's prune tries again.
func (c *Collector) prune(ctx context.Context, now time.Time) {
	oldest := dateOf(now.AddDate(0, 0, -(c.o.KeepDays - 1)))
	today := dateOf(now)
	for _, p := range []struct{ prefix, before string }{{dayPrefix, oldest}, {userPrefix, today}, {groupPrefix, today}} {
		for {
			kvs, err := c.o.Store.Scan(p.prefix, "", pruneBatch)
			if err != nil {
				c.o.Log.Warn("stats: prune scan failed", "error", err)
				return
			}
			var del []string
			for _, kv := range kvs {
				if kv.Name[len(p.prefix):len(p.prefix)+8] < p.before {
					del = append(del, kv.Name)
				}
			}
			if len(del) == 0 {
				break
			}
			if _, err := c.o.Store.Commit(ctx, storage.Batch{Deletes: del}); err != nil {
				c.o.Log.Warn("stats: prune failed", "error", err)
				return
			}
			if len(del) < len(kvs) || len(kvs) < pruneBatch {
				break
			}
		}
	}
}

// Seen records that user had a connection start or end now. It runs on
// every login and logout: a map lookup, no I/O.
func (c *Collector) Seen(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.users[user]; !ok {
		c.users[user] = false
		c.today.ActiveUsers++
	}
}

// GroupActive records that gid got a message now.
func (c *Collector) GroupActive(gid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.groups[gid]; !ok {
		c.groups[gid] = false
		c.today.GroupsActive++
	}
}

// Days returns the n days ending today, oldest first; a day without a
// record (the node was down, or before it first started) has only its Date.
func (c *Collector) Days(n int) ([]Day, error) {
	c.mu.Lock()
	today := c.today
	c.mu.Unlock()
	end, err := time.Parse("20060102", today.Date)
	if err != nil {
		return nil, err
	}
	from := dateOf(end.AddDate(0, 0, -(n - 1)))
	stored := map[string]Day{}
	err = storage.ScanAll(c.o.Store, dayPrefix, func(name string, v []byte) error {
		if date := strings.TrimPrefix(name, dayPrefix); date >= from {
			var d Day
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode %s: %w", name, err)
			}
			stored[date] = d
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: read days: %w", err)
	}
	stored[today.Date] = today
	out := make([]Day, 0, n)
	for i := n - 1; i >= 0; i-- {
		date := dateOf(end.AddDate(0, 0, -i))
		d, ok := stored[date]
		if !ok {
			d = Day{Date: date}
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date < out[j].Date })
	return out, nil
}

func dateOf(t time.Time) string { return t.UTC().Format("20060102") }
