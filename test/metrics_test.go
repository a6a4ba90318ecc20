package test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
)

func TestE2E_Metrics(t *testing.T) {
	b := StartBroker(t)
	b.importAccounts("bob")
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", Text("counted", Random()))
	alice.NextEvent() // stored and delivered
	resp, err := http.Get("http://" + b.App.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"imbroker_c2c_messages_total 1", "imbroker_mqtt_connections 1", "go_goroutines", "process_resident_memory_bytes",
		"imbroker_store_commit_seconds_bucket{le=\"+Inf\"}", "imbroker_store_group_commits_total", "imbroker_store_batches_total", "imbroker_store_queue_length 0",
		"imbroker_pebble_flushes_total", "imbroker_pebble_compactions_total", "imbroker_pebble_compaction_seconds_total", "imbroker_pebble_compacted_bytes_total",
		"imbroker_pebble_flushed_bytes_total", "imbroker_pebble_l0_files", "imbroker_pebble_l0_sublevels", "imbroker_pebble_paced_seconds_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The message took at least one group commit, timed in the histogram.
	commits := regexp.MustCompile(`(?m)^imbroker_store_group_commits_total (\d+)$`).FindStringSubmatch(string(body))
	inf := regexp.MustCompile(`(?m)^imbroker_store_commit_seconds_count (\d+)$`).FindStringSubmatch(string(body))
	if commits == nil || inf == nil || commits[1] == "0" || inf[1] == "0" {
		t.Errorf("group commits %v, commit histogram count %v: want at least 1 each", commits, inf)
	}
}

// The profiler is served only when http.pprof is on.
func TestE2E_PprofOnlyWhenEnabled(t *testing.T) {
	for _, on := range []bool{false, true} {
		b := StartBroker(t, func(c *config.Config) { c.HTTP.Pprof = on })
		resp, err := http.Get("http://" + b.App.HTTPAddr() + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("pprof %v: GET /debug/pprof/ = %d, want %d", on, resp.StatusCode, want)
		}
		b.Stop()
	}
}
