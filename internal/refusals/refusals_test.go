package refusals

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// A flood is logged as burst lines, then one line per refill, the first of
// which says how many were suppressed; counts are never limited, and each
// reason has its own budget.
func TestRefuseRateLimitsPerReasonAndSummarises(t *testing.T) {
	var buf bytes.Buffer
	r := New(slog.New(slog.NewJSONHandler(&buf, nil)), 1, 2)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	for range 10 {
		r.Refuse(Event{Reason: Login, Code: 70003, ClientID: "c", UserID: "u", Remote: "1.2.3.4:5"})
	}
	r.Refuse(Event{Reason: Subscribe, Code: 20001})
	now = now.Add(time.Second)
	r.Refuse(Event{Reason: Login, Code: 70003})

	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 2 (burst) + 1 subscribe + 1 after refill: %s", len(lines), buf.String())
	}
	if lines[0]["level"] != "WARN" || lines[0]["client"] != "c" || lines[0]["remote"] != "1.2.3.4:5" || lines[0]["code"] != 70003.0 {
		t.Errorf("first line %v", lines[0])
	}
	if lines[2]["reason"] != Subscribe || lines[2]["suppressed"] != nil {
		t.Errorf("subscribe line %v: its own budget, nothing suppressed", lines[2])
	}
	if lines[3]["reason"] != Login || lines[3]["suppressed"] != 8.0 {
		t.Errorf("line after refill %v, want suppressed 8", lines[3])
	}
	if got := r.Total(Login); got != 11 {
		t.Errorf("login count %d, want 11", got)
	}
	if got := r.Counts()[Key{Subscribe, 20001}]; got != 1 {
		t.Errorf("subscribe count %d, want 1", got)
	}
}
