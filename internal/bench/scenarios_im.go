package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/imbroker/imbroker/internal/ids"
)

// group: the app admin sends into a group of Clients online members (live
// room by default, read diffusion on im/g/{gid}). Members connect, join and
// subscribe before anything is timed. Then two timed phases of Messages
// messages each:
//   - paced: each message is sent once the previous one reached every member
//     (or 10 s passed). reach_all_ms_p50/max is the time for one message to
//     reach all members on its own, the figure; broker_cpu_ms_per_msg
//     (with -pid; summed over a cluster's nodes) and bench_cpu_ms_per_msg split the CPU the two processes
//     spent per message in this phase, so the broker's share can be told
//     apart from the clients' on a shared machine.
//   - burst: the messages are sent back to back; burst_deliveries_per_sec
//     and burst_reach_all_ms_max show throughput when messages queue.
//
// Members are lean on purpose (the clients share the cores with the broker):
// they read through a buffered connection (bufconn.go), handlers run on
// each client's router goroutine (no goroutine per message) and find the
// send stamp in the payload without decoding the JSON, and imbench's own
// garbage collection is held off during the paced phase (pauseGC).
func (r *run) group(ctx context.Context) (int64, error) {
	o := r.opts
	admin, err := r.newRequester(0, o.Admin)
	if err != nil {
		return 0, err
	}
	defer admin.c.Disconnect(0)
	typ := o.GroupTy
	if typ == "" {
		typ = "AVChatRoom"
	}
	rep, err := admin.do("group.create", map[string]any{"Type": typ, "Name": "imbench", "ApplyJoinOption": "FreeAccess"})
	if err != nil {
		return 0, err
	}
	gid, _ := rep["GroupId"].(string)
	topic := "im/g/" + ids.GroupTopicLevel(gid)
	// Per message: deliveries seen, and when the last one arrived.
	type reach struct {
		n    atomic.Int64
		last atomic.Int64
	}
	total := 2 * o.Messages
	reaches := make([]reach, total)
	sentAt := make([]int64, total)
	reachedAll := make([]chan struct{}, total) // closed when message i reached everyone
	for i := range reachedAll {
		reachedAll[i] = make(chan struct{})
	}
	handler := func(_ paho.Client, m paho.Message) {
		ts, ok := groupStamp(m.Payload())
		if !ok {
			return
		}
		r.observe(ts)
		for i := range sentAt { // few messages: a scan is fine
			if atomic.LoadInt64(&sentAt[i]) == ts {
				reaches[i].last.Store(time.Now().UnixNano())
				if reaches[i].n.Add(1) == int64(o.Clients) {
					close(reachedAll[i])
				}
				break
			}
		}
	}
	members := make([]paho.Client, o.Clients)
	defer func() {
		for _, c := range members {
			if c != nil {
				c.Disconnect(0)
			}
		}
	}()
	var joinErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < o.Clients; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := r.groupMember(i, fmt.Sprintf("m%d", i), gid)
			if err != nil {
				joinErr.Store(err)
				return
			}
			members[i] = c
		}(i)
	}
	wg.Wait()
	if e, ok := joinErr.Load().(error); ok {
		return 0, e
	}
	// Subscribe once everyone joined: the join tips (merged in live rooms,
	// groups.member_tips_per_second) are not part of what is measured.
	for i := range members {
		wg.Add(1)
		sem <- struct{}{}
		go func(c paho.Client) {
			defer wg.Done()
			defer func() { <-sem }()
			if tok := c.Subscribe(topic, 0, handler); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				joinErr.Store(fmt.Errorf("subscribe: %v", tok.Error()))
			}
		}(members[i])
	}
	wg.Wait()
	if e, ok := joinErr.Load().(error); ok {
		return 0, e
	}
	send := func(i int) {
		ts := time.Now().UnixNano()
		atomic.StoreInt64(&sentAt[i], ts)
		body := fmt.Sprintf(`{"MsgRandom":%d,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"t%d"}}]}`, i+1, ts)
		tok := admin.c.Publish("im/send/group/"+ids.GroupTopicLevel(gid), 1, false, body)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			r.errs.Add(1)
		}
		r.sent.Add(1)
	}
	reachAll := func(from, to int) []float64 {
		var all []float64
		for i := from; i < to; i++ {
			if reaches[i].n.Load() == int64(o.Clients) {
				all = append(all, float64(reaches[i].last.Load()-sentAt[i])/1e6)
			}
		}
		sort.Float64s(all)
		return all
	}

	// Paced: one message at a time.
	restoreGC := pauseGC()
	r.clock()
	r.profile(true)
	brokerCPU0 := procsCPU(o.PIDs)
	paced := 0
	for i := 0; i < o.Messages && ctx.Err() == nil; i++ {
		send(i)
		select {
		case <-reachedAll[i]:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
		}
		paced++
	}
	r.profile(false)
	restoreGC()
	if paced > 0 {
		if len(o.PIDs) > 0 {
			r.extra["broker_cpu_ms_per_msg"] = (procsCPU(o.PIDs) - brokerCPU0).Seconds() * 1000 / float64(paced)
		}
		r.extra["bench_cpu_ms_per_msg"] = (selfCPU() - r.startCPU).Seconds() * 1000 / float64(paced)
	}
	if all := reachAll(0, o.Messages); len(all) > 0 {
		r.extra["reach_all_ms_p50"] = all[len(all)/2]
		r.extra["reach_all_ms_max"] = all[len(all)-1]
		r.extra["messages_reaching_all"] = float64(len(all))
	}

	// Burst: back to back.
	burstStart, before := time.Now(), r.delivered.Load()
	for i := o.Messages; i < total && ctx.Err() == nil; i++ {
		send(i)
	}
	want := int64(total * o.Clients)
	r.waitDelivered(ctx, want, 3*time.Second)
	var lastAt int64
	for i := o.Messages; i < total; i++ {
		lastAt = max(lastAt, reaches[i].last.Load())
	}
	if lastAt > 0 {
		r.extra["burst_deliveries_per_sec"] = float64(r.delivered.Load()-before) / (float64(lastAt-burstStart.UnixNano()) / 1e9)
	}
	if all := reachAll(o.Messages, total); len(all) > 0 {
		r.extra["burst_reach_all_ms_max"] = all[len(all)-1]
		r.extra["burst_messages_reaching_all"] = float64(len(all))
	}
	return want, nil
}

// pauseGC collects the setup's garbage (10,000 logins' UserSigs, the
// joins), then turns imbench's own garbage collector off until the returned
// func is called, within a memory bound. The paced phase's deliveries cost
// the clients ~1.4 kB of garbage each (paho's packet decoding), about 14 MB
// per message in a 10,000-member room; a collection then came every ~10
// messages and, scanning the stacks of ~70,000 client goroutines, took
// ~300 ms of CPU on the cores the broker runs on, landing on one message's
// reach time (docs/benchmarks.md, "Round 6: the live room"). Real clients
// are separate devices, each with its own collector; the deferred
// collection runs after the paced phase, and bench_cpu_ms_per_msg then
// leaves it out.
func pauseGC() (restore func()) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	oldLimit := debug.SetMemoryLimit(int64(ms.Sys-ms.HeapReleased) + pausedGCBound)
	oldPercent := debug.SetGCPercent(-1)
	return func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	}
}

// pausedGCBound is how much garbage pauseGC lets pile up before the memory
// limit makes the runtime collect anyway (about 70 messages to 10,000).
const pausedGCBound = 1 << 30

// groupMember connects a lean member to node and joins it to gid: handlers run in
// order on the client's router goroutine, so a delivery costs no goroutine.
func (r *run) groupMember(node int, user, gid string) (paho.Client, error) {
	u, p := r.creds(user)
	o := paho.NewClientOptions().AddBroker(r.broker(node)).SetClientID(user).SetUsername(u).SetPassword(p)
	o.SetAutoReconnect(false).SetCleanSession(true).SetOrderMatters(true).SetConnectTimeout(10 * time.Second)
	o.SetKeepAlive(60 * time.Second).SetWriteTimeout(10 * time.Second)
	readBuffered(o, r.broker(node)) // one read syscall per delivery
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", user, tok.Error())
	}
	replies := make(chan []byte, 4)
	if tok := c.Subscribe("im/u/"+user+"/rpc", 1, func(_ paho.Client, m paho.Message) {
		select {
		case replies <- m.Payload():
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.Disconnect(0)
		return nil, fmt.Errorf("subscribe rpc: %v", tok.Error())
	}
	c.Publish("im/req/group.join", 1, false, fmt.Sprintf(`{"Id":"j","GroupId":%q}`, gid))
	select {
	case rep := <-replies:
		var v struct{ ErrorCode int }
		if json.Unmarshal(rep, &v) != nil || v.ErrorCode != 0 {
			c.Disconnect(0)
			return nil, fmt.Errorf("%s joins: %s", user, rep)
		}
		return c, nil
	case <-time.After(15 * time.Second):
		c.Disconnect(0)
		return nil, fmt.Errorf("%s joins: no reply", user)
	}
}

// groupStamp finds the send stamp of a GroupMsg delivery; tips and other
// events have none.
func groupStamp(p []byte) (int64, bool) { return eventStamp(p, "GroupMsg") }

// eventStamp finds the send stamp ("Text":"t{ns}") of an event of the given
// kind without decoding the JSON: the clients' decoding shares the cores
// with the broker, and a benchmark should spend them on the broker.
func eventStamp(p []byte, event string) (int64, bool) {
	if !bytes.Contains(p, []byte(`"Event":"`+event+`"`)) {
		return 0, false
	}
	const key = `"Text":"t`
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return 0, false
	}
	p = p[i+len(key):]
	var n int64
	j := 0
	for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
		n = n*10 + int64(p[j]-'0')
	}
	return n, j > 0 && j < len(p) && p[j] == '"'
}

// procCPU is a process's user+system CPU time from /proc (0 if unreadable).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// catchup: one user is offline while Messages arrive, then connects and
// syncs to the end. Extra replay_seconds: connect to Complete.
func (r *run) catchup(ctx context.Context) (int64, error) {
	o := r.opts
	sender, err := r.connectUser(0, "cu-sender", nil)
	if err != nil {
		return 0, err
	}
	defer sender.Disconnect(0)
	// The reader logs in once first: one-to-one messages go to accounts
	// (relations.require_accounts), and a login makes one.
	once, err := r.connectUser(1, "cu-reader", nil)
	if err != nil {
		return 0, err
	}
	once.Disconnect(0)
	r.publishAll(ctx, sender, o.Messages, 1, func(k int) (string, []byte) { return "im/send/c2c/cu-reader", textMsg(k + 1) })
	done := make(chan map[string]any, 16)
	var replayed atomic.Int64
	start := time.Now()
	reader, err := r.connectUser(1, "cu-reader", func(_ paho.Client, m paho.Message) {
		if len(m.Topic()) > 4 && m.Topic()[len(m.Topic())-4:] == "/rpc" {
			var rep map[string]any
			if json.Unmarshal(m.Payload(), &rep) == nil {
				done <- rep
			}
			return
		}
		if ev, _ := textOf(m.Payload()); ev == "C2CMsg" {
			replayed.Add(1)
			r.delivered.Add(1)
		}
	})
	if err != nil {
		return 0, err
	}
	defer reader.Disconnect(0)
	if tok := reader.Subscribe("im/u/cu-reader/#", 0, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return 0, fmt.Errorf("subscribe: %v", tok.Error())
	}
	since := 0.0
	for i := 0; ctx.Err() == nil; i++ {
		reader.Publish("im/req/sync", 1, false, fmt.Sprintf(`{"Id":"c%d","Since":%d}`, i, int64(since)))
		select {
		case rep := <-done:
			since, _ = rep["Seq"].(float64)
			if rep["Complete"] == true {
				r.extra["replay_seconds"] = time.Since(start).Seconds()
				// Handlers run concurrently: let the last events land.
				r.waitDelivered(ctx, int64(o.Messages), time.Second)
				return int64(o.Messages), nil
			}
		case <-ctx.Done():
			return int64(o.Messages), ctx.Err()
		}
	}
	return int64(o.Messages), ctx.Err()
}

// connections: open Clients idle connections at Rate per second, hold them,
// and report the connect rate and (with -pid) broker memory per connection.
func (r *run) connections(ctx context.Context) (int64, error) {
	o := r.opts
	before := int64(0)
	if len(o.PIDs) > 0 {
		before = procsRSS(o.PIDs)
	}
	rate := max(o.Rate, 1)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	conns := make([]paho.Client, 0, o.Clients)
	// UserSigs are signed before the clock starts: signing (zlib + HMAC) is
	// the app server's work, not the broker's, and the brokers without
	// credentials would otherwise get a cheaper client.
	type cred struct{ user, pass string }
	creds := make([]cred, o.Clients)
	for i := range creds {
		creds[i].user, creds[i].pass = r.creds(fmt.Sprintf("idle%d", i))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < o.Clients && ctx.Err() == nil; i++ {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := r.client(i, fmt.Sprintf("idle%d", i), creds[i].user, creds[i].pass, nil, false)
			if err != nil {
				r.errs.Add(1)
				return
			}
			r.delivered.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}(i)
		r.sent.Add(1)
	}
	wg.Wait()
	r.extra["connect_per_sec"] = float64(r.delivered.Load()) / time.Since(start).Seconds()
	if len(o.PIDs) > 0 && r.delivered.Load() > 0 {
		after := procsRSS(o.PIDs)
		r.extra["broker_kb_per_conn"] = float64(after-before) / float64(r.delivered.Load())
	}
	select {
	case <-time.After(o.Hold):
		// Again at the end of the hold: what the idle connections keep
		// once the burst is over (a broker may give memory back then).
		if len(o.PIDs) > 0 && r.delivered.Load() > 0 {
			r.extra["broker_kb_per_conn_held"] = float64(procsRSS(o.PIDs)-before) / float64(r.delivered.Load())
		}
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.Disconnect(0)
	}
	return int64(o.Clients), nil
}
