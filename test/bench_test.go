package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/config"
)

// BenchmarkE2E_C2CDurableSend measures the whole durable send path: paho
// QoS 1 publish -> validation -> synced group commit of both stream copies
// -> PUBACK -> live delivery to the online recipient. Each sender waits for
// its PUBACK before the next send (as a chat client does); the clock stops
// when the recipient has every message.
func BenchmarkE2E_C2CDurableSend(b *testing.B) {
	for _, senders := range []int{1, 16, 64} {
		for _, sync := range []bool{true, false} {
			b.Run(fmt.Sprintf("senders=%d/fsync=%v", senders, sync), func(b *testing.B) {
				benchSend(b, senders, 1, func(c *config.Config) { c.Storage.Sync = sync; c.Retention.MaxPerStream = 0 })
			})
		}
	}
}

// BenchmarkE2E_C2CPipelined is the same path with each sender keeping up to
// 64 QoS 1 sends unacknowledged (as imbench's c2c does): the broker commits
// a connection's sends together and PUBACKs each once durable, in order.
func BenchmarkE2E_C2CPipelined(b *testing.B) {
	for _, senders := range []int{1, 10} {
		b.Run(fmt.Sprintf("senders=%d/inflight=64", senders), func(b *testing.B) {
			benchSend(b, senders, 64, func(c *config.Config) { c.Retention.MaxPerStream = 0 })
		})
	}
	// Every send through the cluster seam to the same node's owner handlers
	// (broker.Loopback): the cost of encoding, batching and decoding a
	// connection's forwarded sends, without a network.
	b.Run("senders=10/inflight=64/forwarded", func(b *testing.B) {
		benchSend(b, 10, 64, func(c *config.Config) { c.Retention.MaxPerStream = 0 }, broker.WithCluster(broker.NewLoopback()))
	})
}

func benchSend(b *testing.B, senders, inflight int, mod func(*config.Config), opts ...broker.Option) {
	cfg := TestConfig(b)
	mod(&cfg)
	br := StartWith(b, cfg, opts...)
	rx := newReceiver()
	o := br.ClientOpts("bob", "bob", br.Sig("bob"))
	o.SetDefaultPublishHandler(rx.handle)
	bob := paho.NewClient(o)
	if tok := bob.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer bob.Disconnect(0)
	bob.Subscribe("im/u/bob/#", 1, nil).WaitTimeout(5 * time.Second)

	clients := make([]paho.Client, senders)
	for i := range clients {
		u := fmt.Sprintf("s%d", i)
		clients[i] = paho.NewClient(br.ClientOpts(u, u, br.Sig(u)))
		if tok := clients[i].Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		defer clients[i].Disconnect(0)
	}
	payload, _ := json.Marshal(Text("a typical short chat message, about sixty bytes long", 1))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range clients {
		n := b.N / senders
		if i < b.N%senders {
			n++
		}
		wg.Add(1)
		go func(c paho.Client, n, i int) {
			defer wg.Done()
			window := make(chan paho.Token, inflight) // sends not yet acknowledged
			wait := func(tok paho.Token) bool {
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					b.Error("publish not acknowledged:", tok.Error())
					return false
				}
				return true
			}
			for k := 0; k < n; k++ {
				p, _ := json.Marshal(Text("a typical short chat message, about sixty bytes long", uint32(i<<20|k)))
				if len(window) == inflight && !wait(<-window) {
					return
				}
				window <- c.Publish("im/send/c2c/bob", 1, false, p)
			}
			for len(window) > 0 {
				if !wait(<-window) {
					return
				}
			}
		}(c, n, i)
	}
	wg.Wait()
	live := rx.waitQuiet(b.N, time.Second)
	// Live copies a slow recipient could not take were dropped by design
	// (its outbound queue was full); it fills the gap by sync, as a client does.
	for round, since := 0, uint64(0); rx.count() < b.N; round++ {
		bob.Publish("im/req/sync", 1, false, fmt.Sprintf(`{"Id":"%d","Since":%d}`, round, since)).WaitTimeout(5 * time.Second)
		r, ok := rx.waitReply(fmt.Sprint(round), 10*time.Second)
		if !ok || r.Complete {
			break
		}
		since = r.Seq
	}
	b.StopTimer()
	if rx.count() != b.N {
		b.Fatalf("recipient has %d of %d", rx.count(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	b.ReportMetric(float64(b.N-live), "synced")
}

// receiver records the distinct Seqs a client received, live or by sync.
type receiver struct {
	mu      sync.Mutex
	seqs    map[uint64]bool
	changed chan struct{}
	replies chan syncReplyFields
}

// syncReplyFields are the fields of an event or a sync reply the benchmark reads.
type syncReplyFields struct {
	Seq      uint64
	Id       string
	Complete bool
}

func newReceiver() *receiver {
	return &receiver{seqs: map[uint64]bool{}, changed: make(chan struct{}, 1), replies: make(chan syncReplyFields, 100)}
}

func (r *receiver) handle(_ paho.Client, m paho.Message) {
	var e syncReplyFields
	_ = json.Unmarshal(m.Payload(), &e)
	if strings.HasSuffix(m.Topic(), "/rpc") {
		r.replies <- e
		return
	}
	r.mu.Lock()
	r.seqs[e.Seq] = true
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

// waitQuiet waits until n events arrived or none arrived for quiet.
func (r *receiver) waitQuiet(n int, quiet time.Duration) int {
	for r.count() < n {
		select {
		case <-r.changed:
		case <-time.After(quiet):
			return r.count()
		}
	}
	return r.count()
}

func (r *receiver) waitReply(id string, d time.Duration) (syncReplyFields, bool) {
	deadline := time.After(d)
	for {
		select {
		case got := <-r.replies:
			if got.Id == id {
				return got, true
			}
		case <-deadline:
			return syncReplyFields{}, false
		}
	}
}

// BenchmarkBroker_SendC2C measures the core send path without MQTT framing:
// validation, synced group commit of both copies and hand-off to delivery.
func BenchmarkBroker_SendC2C(b *testing.B) {
	br := StartBroker(b)
	br.Accounts("bob") // relations.require_accounts: sends go to accounts
	payload, _ := json.Marshal(Text("a typical short chat message, about sixty bytes long", 1))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.SetParallelism(32)
	var n sync.Mutex
	next := 0
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n.Lock()
		next++
		from := fmt.Sprintf("u%d", next)
		n.Unlock()
		r := uint32(0)
		for pb.Next() {
			r++
			p, _ := json.Marshal(Text("a typical short chat message, about sixty bytes long", r))
			if _, err := br.App.Broker.SendC2C(context.Background(), from, "bob", p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
