package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// group: the app admin sends Messages messages into a group of Clients
// online members (live room by default, read diffusion on im/g/{gid}).
// Extra reach_all_ms_*: time for one message to reach every member.
func (r *run) group(ctx context.Context) (int64, error) {
	o := r.opts
	admin, err := r.newRequester(o.Admin)
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
	topic := "im/g/" + gid
	// Per message: deliveries seen, and when the last one arrived.
	type reach struct {
		n    atomic.Int64
		last atomic.Int64
	}
	reaches := make([]reach, o.Messages)
	sentAt := make([]int64, o.Messages)
	handler := func(_ paho.Client, m paho.Message) {
		ev, text := textOf(m.Payload())
		ts, ok := unstamp(text)
		if ev != "GroupMsg" || !ok {
			return
		}
		r.observe(ts)
		for i := range sentAt { // few messages: a scan is fine
			if atomic.LoadInt64(&sentAt[i]) == ts {
				reaches[i].n.Add(1)
				reaches[i].last.Store(time.Now().UnixNano())
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
			user := fmt.Sprintf("m%d", i)
			q, err := r.newRequester(user)
			if err != nil {
				joinErr.Store(err)
				return
			}
			members[i] = q.c
			if _, err := q.do("group.join", map[string]any{"GroupId": gid}); err != nil {
				joinErr.Store(err)
			}
		}(i)
	}
	wg.Wait()
	if e, ok := joinErr.Load().(error); ok {
		return 0, e
	}
	// Subscribe only once everyone joined: each join's MemberJoin tip goes
	// to every subscriber, so subscribing while others still join makes the
	// set-up quadratic.
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
	r.start = time.Now()
	for i := 0; i < o.Messages && ctx.Err() == nil; i++ {
		ts := time.Now().UnixNano()
		atomic.StoreInt64(&sentAt[i], ts)
		body := fmt.Sprintf(`{"MsgRandom":%d,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"t%d"}}]}`, i+1, ts)
		tok := admin.c.Publish("im/send/group/"+gid, 1, false, body)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			r.errs.Add(1)
		}
		r.sent.Add(1)
	}
	want := int64(o.Messages * o.Clients)
	r.waitDelivered(ctx, want, 3*time.Second)
	var all []float64
	for i := range reaches {
		if reaches[i].n.Load() == int64(o.Clients) {
			all = append(all, float64(reaches[i].last.Load()-sentAt[i])/1e6)
		}
	}
	sort.Float64s(all)
	if len(all) > 0 {
		r.extra["reach_all_ms_p50"] = all[len(all)/2]
		r.extra["reach_all_ms_max"] = all[len(all)-1]
	}
	r.extra["messages_reaching_all"] = float64(len(all))
	return want, nil
}

// catchup: one user is offline while Messages arrive, then connects and
// syncs to the end. Extra replay_seconds: connect to Complete.
func (r *run) catchup(ctx context.Context) (int64, error) {
	o := r.opts
	sender, err := r.connectUser("cu-sender", nil)
	if err != nil {
		return 0, err
	}
	defer sender.Disconnect(0)
	r.publishAll(ctx, sender, o.Messages, 1, func(k int) (string, []byte) { return "im/send/c2c/cu-reader", textMsg(k + 1) })
	done := make(chan map[string]any, 16)
	var replayed atomic.Int64
	start := time.Now()
	reader, err := r.connectUser("cu-reader", func(_ paho.Client, m paho.Message) {
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
	if o.PID > 0 {
		before = RSS(o.PID)
	}
	rate := max(o.Rate, 1)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	conns := make([]paho.Client, 0, o.Clients)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < o.Clients && ctx.Err() == nil; i++ {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := r.connectUser(fmt.Sprintf("idle%d", i), nil)
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
	if o.PID > 0 && r.delivered.Load() > 0 {
		after := RSS(o.PID)
		r.extra["broker_kb_per_conn"] = float64(after-before) / float64(r.delivered.Load())
	}
	select {
	case <-time.After(o.Hold):
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.Disconnect(0)
	}
	return int64(o.Clients), nil
}
