package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/internal/usersig"
)

// window bounds unacknowledged QoS>0 publishes per client.
const window = 64

// creds returns the user name and password for a bench user: a UserSig
// when a key is given (imbroker), nothing otherwise (mosquitto, mochi).
func (r *run) creds(user string) (string, string) {
	if r.opts.Key == "" {
		return "", ""
	}
	sig, err := usersig.New(r.opts.AppID, r.opts.Key).Gen(user, 3600)
	if err != nil {
		return user, ""
	}
	return user, sig
}

func (r *run) connectUser(node int, user string, h paho.MessageHandler) (paho.Client, error) {
	u, p := r.creds(user)
	return r.client(node, user, u, p, h, false)
}

// connectMeasuring connects user with a handler that only records
// latencies: paho calls it inline (see client).
func (r *run) connectMeasuring(node int, user string, h paho.MessageHandler) (paho.Client, error) {
	u, p := r.creds(user)
	return r.client(node, user, u, p, h, true)
}

// publishAll sends n messages with a bounded window of unacknowledged ones,
// paced to perClient messages per second when that is positive (a schedule,
// not a sleep per message, so a late send does not lower the rate).
func (r *run) publishAll(ctx context.Context, c paho.Client, n int, qos byte, next func(i int) (string, []byte)) {
	r.publishPaced(ctx, c, n, qos, 0, next)
}

func (r *run) publishPaced(ctx context.Context, c paho.Client, n int, qos byte, perClient float64, next func(i int) (string, []byte)) {
	tokens := make(chan paho.Token, window)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var gaps ackGaps
		for tok := range tokens {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				r.errs.Add(1)
			} else if qos > 0 {
				gaps.acked()
			}
		}
		r.addGaps(&gaps)
	}()
	begin := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if perClient > 0 {
			if wait := time.Until(begin.Add(time.Duration(float64(i) / perClient * float64(time.Second)))); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
		topic, payload := next(i)
		tokens <- c.Publish(topic, qos, false, payload)
		r.sent.Add(1)
	}
	close(tokens)
	wg.Wait()
}

// pubsub: raw MQTT, p2p (publisher i -> subscriber i) or fan-out (1 -> N).
func (r *run) pubsub(ctx context.Context) (int64, error) {
	o := r.opts
	size := max(o.Size, 8)
	handler := func(_ paho.Client, m paho.Message) {
		if p := m.Payload(); len(p) >= 8 {
			r.observe(int64(binary.BigEndian.Uint64(p)))
		}
	}
	subs := o.Clients
	pubs := o.Clients
	if o.Fanout {
		pubs = 1
	}
	var clients []paho.Client
	defer func() {
		for _, c := range clients {
			c.Disconnect(0)
		}
	}()
	for i := 0; i < subs; i++ {
		c, err := r.connectMeasuring(i, fmt.Sprintf("sub%d", i), handler)
		if err != nil {
			return 0, err
		}
		clients = append(clients, c)
		topic := fmt.Sprintf("bench/%d", i)
		if o.Fanout {
			topic = "bench/all"
		}
		if tok := c.Subscribe(topic, o.QoS, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return 0, fmt.Errorf("subscribe: %v", tok.Error())
		}
	}
	r.clock()
	err := r.publishers(ctx, &clients, "pub", pubs, o.QoS, false, func(i int) string {
		if o.Fanout {
			return "bench/all"
		}
		return fmt.Sprintf("bench/%d", i)
	}, func(int, int) []byte {
		p := make([]byte, size)
		binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
		return p
	})
	if err != nil {
		return 0, err
	}
	want := int64(pubs * o.Messages)
	if o.Fanout {
		want = int64(o.Messages * subs)
	}
	r.waitDelivered(ctx, want, 3*time.Second)
	return want, nil
}

// publishers connects n publishers named {prefix}{i} (added to clients), on
// node i+1 (the node after their subscriber's, when there are several), and
// has publisher i send o.Messages payload(i, k) to topic(i), together paced
// to o.MsgRate; it returns when all have sent. With im, each listens on its
// rpc topic for refused sends (extra "refused"): an MQTT 3.1.1 client gets a
// PUBACK for a send the broker refused, and the reason there.
func (r *run) publishers(ctx context.Context, clients *[]paho.Client, prefix string, n int, qos byte, im bool,
	topic func(i int) string, payload func(i, k int) []byte) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("%s%d", prefix, i)
		c, err := r.connectUser(i+1, user, nil)
		if err != nil {
			return err
		}
		*clients = append(*clients, c)
		if im {
			if tok := c.Subscribe("im/u/"+user+"/rpc", 1, r.countRefusals); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				return fmt.Errorf("subscribe rpc: %v", tok.Error())
			}
		}
		wg.Add(1)
		go func(i int, c paho.Client) {
			defer wg.Done()
			t := topic(i)
			r.publishPaced(ctx, c, r.opts.Messages, qos, float64(r.opts.MsgRate)/float64(n), func(k int) (string, []byte) { return t, payload(i, k) })
		}(i, c)
	}
	return nil
}

// textMsg is an IM text message carrying its send time (the stamp, as its
// Text). Appended rather than marshalled: json.Marshal of the nested maps
// was an eighth of the load generator's CPU in a paced c2c run.
func textMsg(random int) []byte {
	b := make([]byte, 0, 112)
	b = append(b, `{"MsgBody":[{"MsgContent":{"Text":"`...)
	b = appendStamp(b)
	b = append(b, `"},"MsgType":"TIMTextElem"}],"MsgRandom":`...)
	b = strconv.AppendInt(b, int64(random), 10)
	return append(b, '}')
}

// countRefusals counts the refused sends an rpc topic reports.
func (r *run) countRefusals(_ paho.Client, m paho.Message) {
	var rep struct {
		Op        string
		ErrorCode int
	}
	if json.Unmarshal(m.Payload(), &rep) == nil && rep.Op == "send" && rep.ErrorCode != 0 {
		r.mu.Lock()
		r.extra["refused"]++
		r.mu.Unlock()
	}
}

// imHandler observes stamped IM messages of the given event kind.
func (r *run) imHandler(event string) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		if ts, ok := eventStamp(m.Payload(), event); ok {
			r.observe(ts)
		}
	}
}

// c2c: Clients pairs, a{i} -> b{i}, durable one-to-one messages. Against a
// cluster b{i} is on node i and a{i} on node i+1: every message crosses nodes.
func (r *run) c2c(ctx context.Context) (int64, error) {
	o := r.opts
	var clients []paho.Client
	defer func() {
		for _, c := range clients {
			c.Disconnect(0)
		}
	}()
	for i := 0; i < o.Clients; i++ {
		b := fmt.Sprintf("b%d", i)
		c, err := r.connectMeasuring(i, b, r.imHandler("C2CMsg"))
		if err != nil {
			return 0, err
		}
		clients = append(clients, c)
		if tok := c.Subscribe("im/u/"+b, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return 0, fmt.Errorf("subscribe: %v", tok.Error())
		}
	}
	r.clock()
	err := r.publishers(ctx, &clients, "a", o.Clients, 1, true, func(i int) string { return fmt.Sprintf("im/send/c2c/b%d", i) },
		func(i, k int) []byte { return textMsg(i<<20 | k) })
	if err != nil {
		return 0, err
	}
	want := int64(o.Clients * o.Messages)
	r.waitDelivered(ctx, want, 3*time.Second)
	return want, nil
}

// requester sends im/req ops and waits for their replies.
type requester struct {
	c       paho.Client
	mu      sync.Mutex
	waiting map[string]chan map[string]any
}

func (r *run) newRequester(node int, user string) (*requester, error) {
	q := &requester{waiting: map[string]chan map[string]any{}}
	c, err := r.connectUser(node, user, func(_ paho.Client, m paho.Message) {
		var rep map[string]any
		if json.Unmarshal(m.Payload(), &rep) != nil {
			return
		}
		id, _ := rep["Id"].(string)
		q.mu.Lock()
		ch := q.waiting[id]
		q.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	})
	if err != nil {
		return nil, err
	}
	q.c = c
	if tok := c.Subscribe("im/u/"+user+"/rpc", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe rpc: %v", tok.Error())
	}
	return q, nil
}

var reqCounter struct {
	sync.Mutex
	n int
}

func (q *requester) do(op string, body map[string]any) (map[string]any, error) {
	reqCounter.Lock()
	reqCounter.n++
	id := fmt.Sprintf("%s-%d", op, reqCounter.n)
	reqCounter.Unlock()
	body["Id"] = id
	ch := make(chan map[string]any, 1)
	q.mu.Lock()
	q.waiting[id] = ch
	q.mu.Unlock()
	b, _ := json.Marshal(body)
	q.c.Publish("im/req/"+op, 1, false, b)
	select {
	case rep := <-ch:
		if code, _ := rep["ErrorCode"].(float64); code != 0 {
			return rep, fmt.Errorf("%s: %v", op, rep["ErrorInfo"])
		}
		return rep, nil
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("%s: no reply", op)
	}
}
