package app

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/internal/refusals"
	"github.com/imbroker/imbroker/storage"
)

// metricsHandler serves Prometheus metrics: the broker's counters (read at
// scrape time, no hot-path cost) plus Go runtime and process metrics.
func metricsHandler(b *broker.Broker) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	stat := func(f func(broker.Stats) int64) func() float64 {
		return func() float64 { return float64(f(b.Stats())) }
	}
	counter := func(name, help string, f func(broker.Stats) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "imbroker", Name: name, Help: help}, stat(f)))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "imbroker", Name: "mqtt_connections",
		Help: "Open MQTT connections."}, stat(func(s broker.Stats) int64 { return s.ClientsConnected })))
	counter("c2c_messages_total", "One-to-one messages stored.", func(s broker.Stats) int64 { return s.C2CSent })
	counter("group_messages_total", "Group messages stored or published.", func(s broker.Stats) int64 { return s.GroupSent })
	counter("group_messages_rate_dropped_total", "Group messages dropped by the per-group rate limit.", func(s broker.Stats) int64 { return s.GroupDropped })
	counter("publishes_refused_total", "Client publishes refused with an error code.", func(s broker.Stats) int64 { return s.Refused })
	counter("syncs_total", "sync requests served.", func(s broker.Stats) int64 { return s.Syncs })
	counter("live_copies_dropped_client_queue_total", "Live copies dropped at a full client queue (clients recover by sync).", func(s broker.Stats) int64 { return s.MessagesDropped })
	counter("publishes_held_total", "Deliveries whose publisher waited for room in the subscriber's queue (mqtt.queue_full_wait).", func(s broker.Stats) int64 { return s.PublishesHeld })
	counter("publish_holds_gave_up_total", "Waits for room in a subscriber's queue that ended without the subscriber writing anything.", func(s broker.Stats) int64 { return s.HoldsGaveUp })
	counter("live_copies_dropped_inflight_total", "QoS>0 copies dropped at a full inflight window.", func(s broker.Stats) int64 { return s.InflightDropped })
	counter("live_copies_dropped_delivery_queue_total", "Live copies dropped at a full delivery worker queue.", func(s broker.Stats) int64 { return s.DeliveryDropped })
	counter("callbacks_sent_total", "After-callbacks delivered to the app.", func(s broker.Stats) int64 { return s.CallbacksSent })
	counter("callbacks_failed_total", "Callbacks that failed or timed out.", func(s broker.Stats) int64 { return s.CallbacksFailed })
	counter("callbacks_dropped_total", "After-callbacks dropped at a full queue.", func(s broker.Stats) int64 { return s.CallbacksDropped })
	counter("login_gcs_total", "GCs started during a burst of logins, one every mqtt.gc_every_logins logins, so that login garbage is reused rather than kept resident.", func(s broker.Stats) int64 { return s.LoginGCs })
	counter("memory_trims_total", "GCs that gave memory back to the OS once logins went quiet after a burst (mqtt.trim_after_logins, mqtt.trim_quiet).", func(s broker.Stats) int64 { return s.MemoryTrims })
	store := func(f func(storage.Stats) float64) func() float64 {
		return func() float64 { return f(b.StoreStats()) }
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "imbroker", Name: "store_group_commits_total",
		Help: "Group commits of the store (each one Pebble write, fsynced when storage.sync)."}, store(func(s storage.Stats) float64 { return float64(s.Groups) })))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "imbroker", Name: "store_batches_total",
		Help: "Batches the group commits carried (one per message send or change); divided by group commits, the average group."}, store(func(s storage.Stats) float64 { return float64(s.Batches) })))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "imbroker", Name: "store_queue_length",
		Help: "Batches waiting for the committer (storage.max_queue at most)."}, store(func(s storage.Stats) float64 { return float64(s.Queued) })))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "imbroker", Name: "store_write_failures_total",
		Help: "Batches (sends, changes) the store failed: disk below storage.min_free_mb, or a failed write."}, store(func(s storage.Stats) float64 { return float64(s.Failed) })))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "imbroker", Name: "store_writable",
		Help: "1 while the store can write, 0 while it refuses writes (see /readyz for why)."}, func() float64 {
		if b.StoreHealth() != nil {
			return 0
		}
		return 1
	}))
	if _, ok := b.ClusterStatus(); ok { // cluster mode only
		cluster := func(f func(broker.ClusterStatus) float64) func() float64 {
			return func() float64 { st, _ := b.ClusterStatus(); return f(st) }
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "imbroker", Name: "cluster_owner",
			Help: "1 while this node owns the cluster's log (its store writes, the others forward to it), else 0."}, cluster(func(s broker.ClusterStatus) float64 {
			if s.Owner {
				return 1
			}
			return 0
		})))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "imbroker", Name: "cluster_applied_position",
			Help: "The last position of the cluster's log this node's store applied; the owner's is the log's end."}, cluster(func(s broker.ClusterStatus) float64 { return float64(s.Applied) })))
	}
	reg.MustRegister(commitHistogram{b}, lsmCollector{b}, refusalCounters{b})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// commitHistogram exports the committer's write+fsync latency, kept as
// plain counters in the store, as a Prometheus histogram at scrape time.
type commitHistogram struct{ b *broker.Broker }

var commitDesc = prometheus.NewDesc("imbroker_store_commit_seconds",
	"Time of each group commit's Pebble write, fsync included.", nil, nil)

func (h commitHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- commitDesc }

func (h commitHistogram) Collect(ch chan<- prometheus.Metric) {
	st := h.b.StoreStats()
	buckets := make(map[float64]uint64, len(storage.CommitBuckets))
	for i, le := range storage.CommitBuckets {
		buckets[le] = st.CommitCounts[i]
	}
	ch <- prometheus.MustNewConstHistogram(commitDesc, st.Groups, st.CommitSeconds, buckets)
}

// lsmCollector exports Pebble's flush and compaction counters, read once
// per scrape (Pebble's Metrics takes its locks).
type lsmCollector struct{ b *broker.Broker }

var lsmDescs = struct{ flushes, flushed, compactions, compactionSecs, compacted, l0Files, l0Sublevels, paced *prometheus.Desc }{
	flushes:        prometheus.NewDesc("imbroker_pebble_flushes_total", "Memtables Pebble flushed to L0.", nil, nil),
	flushed:        prometheus.NewDesc("imbroker_pebble_flushed_bytes_total", "Bytes Pebble's flushes wrote.", nil, nil),
	compactions:    prometheus.NewDesc("imbroker_pebble_compactions_total", "Compactions Pebble finished.", nil, nil),
	compactionSecs: prometheus.NewDesc("imbroker_pebble_compaction_seconds_total", "Summed wall time of Pebble's compactions.", nil, nil),
	compacted:      prometheus.NewDesc("imbroker_pebble_compacted_bytes_total", "Bytes Pebble's compactions wrote.", nil, nil),
	l0Files:        prometheus.NewDesc("imbroker_pebble_l0_files", "Tables in Pebble's L0.", nil, nil),
	l0Sublevels:    prometheus.NewDesc("imbroker_pebble_l0_sublevels", "Sublevels of Pebble's L0 (its read amplification).", nil, nil),
	paced:          prometheus.NewDesc("imbroker_pebble_paced_seconds_total", "Time Pebble's flushes and compactions waited for storage.table_write_mb while Pebble kept up.", nil, nil),
}

func (c lsmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lsmDescs.flushes, lsmDescs.flushed, lsmDescs.compactions, lsmDescs.compactionSecs, lsmDescs.compacted, lsmDescs.l0Files, lsmDescs.l0Sublevels, lsmDescs.paced} {
		ch <- d
	}
}

func (c lsmCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.StoreLSMStats()
	ch <- prometheus.MustNewConstMetric(lsmDescs.flushes, prometheus.CounterValue, float64(st.Flushes))
	ch <- prometheus.MustNewConstMetric(lsmDescs.flushed, prometheus.CounterValue, float64(st.FlushedBytes))
	ch <- prometheus.MustNewConstMetric(lsmDescs.compactions, prometheus.CounterValue, float64(st.Compactions))
	ch <- prometheus.MustNewConstMetric(lsmDescs.compactionSecs, prometheus.CounterValue, st.CompactionSeconds)
	ch <- prometheus.MustNewConstMetric(lsmDescs.compacted, prometheus.CounterValue, float64(st.CompactedBytes))
	ch <- prometheus.MustNewConstMetric(lsmDescs.l0Files, prometheus.GaugeValue, float64(st.L0Files))
	ch <- prometheus.MustNewConstMetric(lsmDescs.l0Sublevels, prometheus.GaugeValue, float64(st.L0Sublevels))
	ch <- prometheus.MustNewConstMetric(lsmDescs.paced, prometheus.CounterValue, st.PacedSeconds)
}

// refusalCounters exports the refusals the broker counted, by reason (every
// reason, zeros included, so alerts can be written before the first) and by
// reason and Tencent code.
type refusalCounters struct{ b *broker.Broker }

var (
	refusalDesc = prometheus.NewDesc("imbroker_refusals_total",
		"Refusals by reason: login, subscribe, publish, ws_origin, req_rate, server_busy (each also logged at Warn, rate-limited).", []string{"reason"}, nil)
	refusalCodeDesc = prometheus.NewDesc("imbroker_refusals_by_code_total",
		"Refusals by reason and Tencent error code (0: none, as for ws_origin and server_busy).", []string{"reason", "code"}, nil)
)

func (r refusalCounters) Describe(ch chan<- *prometheus.Desc) {
	ch <- refusalDesc
	ch <- refusalCodeDesc
}

func (r refusalCounters) Collect(ch chan<- prometheus.Metric) {
	byReason := map[string]int64{}
	for _, reason := range refusals.Reasons {
		byReason[reason] = 0
	}
	for k, n := range r.b.Refusals() {
		byReason[k.Reason] += n
		ch <- prometheus.MustNewConstMetric(refusalCodeDesc, prometheus.CounterValue, float64(n), k.Reason, strconv.Itoa(k.Code))
	}
	for reason, n := range byReason {
		ch <- prometheus.MustNewConstMetric(refusalDesc, prometheus.CounterValue, float64(n), reason)
	}
}
