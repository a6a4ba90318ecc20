// Package refusals makes every refusal the broker answers visible to the
// operator: one Warn line per refusal with its reason, Tencent code,
// ClientID, UserID and remote address, rate-limited per reason so a flood
// cannot fill the disk, and a count per reason and code for /metrics that
// is never limited.
package refusals

import (
	"log/slog"
	"maps"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Reasons, the `reason` label of imbroker_refusals_total. The set is fixed
// so the metric's cardinality is bounded.
const (
	Login     = "login"     // CONNECT refused: UserSig, UserID, ClientID, device limit, will, guest/anonymous rules
	Subscribe = "subscribe" // a SUBSCRIBE filter refused (SUBACK >= 0x80)
	Publish   = "publish"   // a PUBLISH refused: not allowed, or an IM send refused with an error code
	Origin    = "ws_origin" // a WebSocket upgrade from an Origin not in mqtt.ws_allowed_origins (HTTP 403)
	ReqRate   = "req_rate"  // an im/req request over mqtt.req_rate (error 60007)
	// ServerBusy is a login over mqtt.max_clients, refused by mochi before
	// any hook (CONNACK 0x89 / 3.1.1 return code 3; no Tencent code).
	ServerBusy = "server_busy"
)

// Reasons lists every reason, for metrics that show zeros before the first
// refusal.
var Reasons = []string{Login, Subscribe, Publish, Origin, ReqRate, ServerBusy}

// Event is one refusal.
type Event struct {
	Reason   string // one of the Reasons
	Code     int    // Tencent-style error code; 0 when the refusal has none (Origin)
	ClientID string
	UserID   string
	Remote   string // the client's address
	Detail   string // what was refused and why, e.g. the topic or the error text
}

// Key is what a count is kept by.
type Key struct {
	Reason string
	Code   int
}

// Recorder logs and counts refusals. The zero value is not usable; use New.
type Recorder struct {
	log   *slog.Logger
	every rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	counts  map[Key]int64
	reasons map[string]*reasonLog
}

type reasonLog struct {
	lim        *rate.Limiter
	suppressed int64 // refusals not logged since the last line
}

// New returns a Recorder logging at most burst lines at once and perSecond
// lines a second after that, per reason.
func New(log *slog.Logger, perSecond float64, burst int) *Recorder {
	return &Recorder{log: log, every: rate.Limit(perSecond), burst: burst, now: time.Now,
		counts: map[Key]int64{}, reasons: map[string]*reasonLog{}}
}

// Refuse counts e and logs it unless its reason is over its line budget;
// the next line logged for the reason carries how many were suppressed.
func (r *Recorder) Refuse(e Event) {
	r.mu.Lock()
	r.counts[Key{e.Reason, e.Code}]++
	rl := r.reasons[e.Reason]
	if rl == nil {
		rl = &reasonLog{lim: rate.NewLimiter(r.every, r.burst)}
		r.reasons[e.Reason] = rl
	}
	if !rl.lim.AllowN(r.now(), 1) {
		rl.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := rl.suppressed
	rl.suppressed = 0
	r.mu.Unlock()
	attrs := []any{"reason", e.Reason, "code", e.Code, "client", e.ClientID, "user", e.UserID, "remote", e.Remote, "detail", e.Detail}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	r.log.Warn("refused", attrs...)
}

// Counts returns every refusal counted so far by reason and code.
func (r *Recorder) Counts() map[Key]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// Total returns the refusals counted for reason, all codes together.
func (r *Recorder) Total(reason string) int64 {
	var n int64
	for k, c := range r.Counts() {
		if k.Reason == reason {
			n += c
		}
	}
	return n
}
