// Package bench is imbench's engine: bounded load scenarios against an MQTT
// broker on loopback, measuring throughput, end-to-end latency (from send
// timestamps carried in the payload) and losses.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// Options configure a run. Every run is bounded by Messages and Timeout.
type Options struct {
	Brokers    []string      // tcp://127.0.0.1:1883, … (loopback only): a cluster's nodes; connections spread over them
	Scenario   string        // pubsub, c2c, group, catchup, connections
	Clients    int           // publishers (pubsub), pairs (c2c), members (group), connections
	Messages   int           // per publisher (pubsub, c2c), total (group, catchup)
	QoS        byte          // pubsub
	Fanout     bool          // pubsub: 1 publisher -> Clients subscribers
	Size       int           // pubsub payload bytes (≥ 8)
	Rate       int           // connections per second (connections)
	MsgRate    int           // pubsub, c2c: messages per second in total, paced; 0: as fast as the window allows
	Hold       time.Duration // how long to hold idle connections
	Timeout    time.Duration // hard bound for the whole run
	AppID      uint64        // IM scenarios: SDKAppID
	Key        string        // IM scenarios: secret key to sign UserSigs
	Admin      string        // IM scenarios: the app admin identifier
	GroupTy    string        // group scenario: group type
	PIDs       []int         // broker processes (a cluster's nodes) to read memory and CPU from; none: not measured
	CPUProfile io.Writer     // imbench's own CPU profile of the timed phase goes here; nil: none
	Progress   io.Writer     // live progress line; nil = none
}

// Result is what a run measured.
type Result struct {
	Scenario    string  `json:"scenario"`
	Sent        int64   `json:"sent"`
	Delivered   int64   `json:"delivered"`
	Lost        int64   `json:"lost"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	SentRate    float64 `json:"sent_per_sec"`
	DeliverRate float64 `json:"delivered_per_sec"`
	P50, P90    float64 // milliseconds
	P99, P999   float64
	Max         float64
	Extra       map[string]float64 `json:"extra,omitempty"`
	PeakRSSKB   int64              `json:"peak_rss_kb,omitempty"`
}

// run carries a scenario's counters.
type run struct {
	opts      Options
	sent      atomic.Int64
	delivered atomic.Int64
	errs      atomic.Int64
	mu        sync.Mutex
	hist      *hdrhistogram.Histogram
	gap       time.Duration // the longest time between two successful PUBACKs of one connection (mu)
	gapEnd    time.Time     // when that gap ended
	start     time.Time
	startCPU  time.Duration // imbench's own CPU time at start
	extra     map[string]float64
}

func (r *run) observe(sentNanos int64) {
	d := time.Now().UnixNano() - sentNanos
	if d < 0 {
		d = 0
	}
	r.mu.Lock()
	_ = r.hist.RecordValue(d / 1000) // microseconds
	r.mu.Unlock()
	r.delivered.Add(1)
}

// ackGaps follows one connection's successful PUBACKs. The longest time
// between two of them, over every connection of the run (ack_gap_max_ms),
// is the write stall a failover causes: paced senders make a gap stand
// out, and a connection whose send waits holds up the sends behind it.
type ackGaps struct {
	last time.Time
	gap  time.Duration
	end  time.Time // when gap ended
}

func (g *ackGaps) acked() {
	now := time.Now()
	if !g.last.IsZero() && now.Sub(g.last) > g.gap {
		g.gap, g.end = now.Sub(g.last), now
	}
	g.last = now
}

// addGaps keeps the longest gap of the run.
func (r *run) addGaps(g *ackGaps) {
	r.mu.Lock()
	if g.gap > r.gap {
		r.gap, r.gapEnd = g.gap, g.end
	}
	r.mu.Unlock()
}

func (r *run) ackGap() (time.Duration, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gap, r.gapEnd
}

// Run executes one scenario.
func Run(ctx context.Context, o Options) (Result, error) {
	if len(o.Brokers) == 0 {
		return Result{}, errors.New("no broker")
	}
	for _, b := range o.Brokers {
		if err := checkLoopback(b); err != nil {
			return Result{}, err
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &run{opts: o, hist: hdrhistogram.New(1, 60_000_000, 3), extra: map[string]float64{}}
	if len(o.Brokers) > 1 {
		r.extra["nodes"] = float64(len(o.Brokers))
	}
	stop := r.progress(ctx)
	var expected int64
	var err error
	r.clock()
	if o.Scenario != "group" { // group profiles its paced phase only
		r.profile(true)
	}
	switch o.Scenario {
	case "pubsub":
		expected, err = r.pubsub(ctx)
	case "c2c":
		expected, err = r.c2c(ctx)
	case "group":
		expected, err = r.group(ctx)
	case "catchup":
		expected, err = r.catchup(ctx)
	case "connections":
		expected, err = r.connections(ctx)
	default:
		err = fmt.Errorf("unknown scenario %q", o.Scenario)
	}
	elapsed := time.Since(r.start)
	benchCPU := selfCPU() - r.startCPU
	r.profile(false)
	stop()
	res := Result{Scenario: o.Scenario, Sent: r.sent.Load(), Delivered: r.delivered.Load(), Errors: r.errs.Load(),
		Seconds: elapsed.Seconds(), Extra: r.extra}
	if o.Scenario == "pubsub" || o.Scenario == "c2c" {
		// The load generator's share of the cores it shares with the broker
		// (test/tail.sh sets it beside the broker's, paced and at full speed).
		res.Extra["bench_cpu_s"] = benchCPU.Seconds()
	}
	if expected > res.Delivered {
		res.Lost = expected - res.Delivered
	}
	res.SentRate = float64(res.Sent) / elapsed.Seconds()
	res.DeliverRate = float64(res.Delivered) / elapsed.Seconds()
	ms := func(q float64) float64 { return float64(r.hist.ValueAtQuantile(q)) / 1000 }
	res.P50, res.P90, res.P99, res.P999, res.Max = ms(50), ms(90), ms(99), ms(99.9), float64(r.hist.Max())/1000
	if gap, end := r.ackGap(); gap > 0 {
		res.Extra["ack_gap_max_ms"] = gap.Seconds() * 1000
		res.Extra["ack_gap_end_unix"] = float64(end.UnixNano()) / 1e9
	}
	for _, pid := range o.PIDs {
		res.PeakRSSKB += peakRSS(pid)
	}
	return res, err
}

// clock starts the timed phase: its time and imbench's own CPU from now.
func (r *run) clock() {
	r.start, r.startCPU = time.Now(), selfCPU()
}

// profile starts or stops imbench's own CPU profile (Options.CPUProfile):
// the load generator shares the cores with the broker, and its share of
// them is part of what a run measures. Stopping twice is harmless.
func (r *run) profile(start bool) {
	if r.opts.CPUProfile == nil {
		return
	}
	if !start {
		pprof.StopCPUProfile()
		return
	}
	if err := pprof.StartCPUProfile(r.opts.CPUProfile); err != nil {
		fmt.Fprintln(os.Stderr, "imbench: cpu profile:", err)
	}
}

// checkLoopback refuses any target that is not on this machine.
func checkLoopback(broker string) error {
	u, err := url.Parse(broker)
	if err != nil {
		return fmt.Errorf("broker url: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errors.New("imbench targets loopback brokers only (127.0.0.1, ::1, localhost)")
	}
	return nil
}

// progress prints a live line every second until stopped.
func (r *run) progress(ctx context.Context) func() {
	if r.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(r.opts.Progress)
				return
			case <-ctx.Done():
				return
			case <-t.C:
				el := time.Since(r.start).Seconds()
				fmt.Fprintf(r.opts.Progress, "\r%s %5.0fs sent %d (%.0f/s) delivered %d (%.0f/s) errors %d   ",
					r.opts.Scenario, el, r.sent.Load(), float64(r.sent.Load())/el, r.delivered.Load(),
					float64(r.delivered.Load())/el, r.errs.Load())
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// broker is the address of node i (modulo the nodes): scenarios put
// clients on nodes by index so that, on a cluster, the two ends of a
// conversation are on different nodes.
func (r *run) broker(i int) string { return r.opts.Brokers[i%len(r.opts.Brokers)] }

// client opens a paho (3.1.1) connection to node. With inline, paho calls
// handler on its router goroutine, in order, instead of on a goroutine
// started for each message: for the handlers that only record a latency
// (which must not block), so that a delivery's measured time holds no
// goroutine start and hand-off of the load generator's own.
func (r *run) client(node int, id, user, pass string, handler paho.MessageHandler, inline bool) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(r.broker(node)).SetClientID(id).SetUsername(user).SetPassword(pass)
	o.SetAutoReconnect(false).SetCleanSession(true).SetOrderMatters(inline).SetConnectTimeout(10 * time.Second)
	o.SetKeepAlive(60 * time.Second).SetWriteTimeout(10 * time.Second).SetMaxResumePubInFlight(100)
	readBuffered(o, r.broker(node)) // one read syscall per packet, not four
	if handler != nil {
		o.SetDefaultPublishHandler(handler)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", id, tok.Error())
	}
	return c, nil
}

// waitDelivered waits until want deliveries arrived or nothing new arrived
// for quiet, or ctx ended.
func (r *run) waitDelivered(ctx context.Context, want int64, quiet time.Duration) {
	last, lastChange := r.delivered.Load(), time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for r.delivered.Load() < want {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := r.delivered.Load(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > quiet {
			return
		}
	}
}

// appendStamp and unstamp carry the send time in an IM text element:
// appendStamp appends the stamp (the time now) that unstamp reads back.
func appendStamp(b []byte) []byte {
	return strconv.AppendInt(append(b, 't'), time.Now().UnixNano(), 10)
}

func unstamp(text string) (int64, bool) {
	if !strings.HasPrefix(text, "t") {
		return 0, false
	}
	n, err := strconv.ParseInt(text[1:], 10, 64)
	return n, err == nil
}

// textOf extracts the first text element of an IM event's message.
func textOf(payload []byte) (string, string) {
	var ev struct {
		Event string
		Msg   struct {
			MsgBody []struct{ MsgContent struct{ Text string } }
		}
	}
	if json.Unmarshal(payload, &ev) != nil || len(ev.Msg.MsgBody) == 0 {
		return ev.Event, ""
	}
	return ev.Event, ev.Msg.MsgBody[0].MsgContent.Text
}

// procsRSS is the current resident memory of the processes (kB).
func procsRSS(pids []int) int64 {
	var kb int64
	for _, p := range pids {
		kb += RSS(p)
	}
	return kb
}

// selfCPU is imbench's own user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procsCPU is the processes' user+system CPU time.
func procsCPU(pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		d += procCPU(p)
	}
	return d
}

// peakRSS reads a process's peak resident memory (kB) from /proc.
func peakRSS(pid int) int64 { return procStatusKB(pid, "VmHWM:") }

// RSS reads a process's current resident memory (kB).
func RSS(pid int) int64 { return procStatusKB(pid, "VmRSS:") }

// procStatusKB reads one kB field of /proc/{pid}/status (0 if unreadable).
func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			if f := strings.Fields(line); len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}
