// Package callbacks sends Tencent-shaped third-party callbacks to the app's
// backend: before-callbacks that may allow, reject, drop or rewrite, and
// after-callbacks queued off the send path with retries. It knows nothing of
// MQTT; the broker decides what to do with a Decision.
package callbacks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure the client.
type Options struct {
	URL       string          // the app's callback URL; "" disables callbacks
	SDKAppID  uint64          // echoed as SdkAppid
	Token     string          // when set, requests carry Sign = sha256(Token + RequestTime) and RequestTime
	Timeout   time.Duration   // per request (Tencent: 2 s)
	Refuse    bool            // a failed or timed-out before-callback refuses (80003) instead of allowing
	Commands  map[string]bool // enabled commands; nil or empty = none
	Queue     int             // after-callbacks waiting to be sent
	Workers   int             // goroutines sending after-callbacks
	Retries   int             // extra attempts for a failed after-callback
	Logger    *slog.Logger
	Transport http.RoundTripper // for tests; nil = default
}

// Action is a before-callback's verdict.
type Action int

// Verdicts (Tencent ErrorCode 0 / 1 / 2).
const (
	Allow Action = iota
	Reject
	Drop
)

// Decision is what a before-callback answered.
type Decision struct {
	Action          Action
	Code            int             // the app's own error code (in Tencent's callback ranges), or 0
	Info            string          // the app's ErrorInfo, passed to the client with Code
	MsgBody         json.RawMessage // a rewrite of the message body, or nil
	CloudCustomData *string         // a rewrite of CloudCustomData, or nil
	Failed          bool            // the callback failed or timed out (the policy chose Action)
	RawCode         int             // the reply's ErrorCode as the app sent it
	Reply           json.RawMessage // the whole reply body (commands with their own reply fields), or nil
}

// Client sends callbacks.
type Client struct {
	opts    Options
	http    *http.Client
	log     *slog.Logger
	queue   chan job
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool
	dropped atomic.Int64
	sent    atomic.Int64
	failed  atomic.Int64
	recent  failures // the latest failures, for the console
}

type job struct {
	command  string
	platform string
	body     []byte
}

// New starts the after-callback workers (none when URL is empty).
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Queue <= 0 {
		o.Queue = 10000
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: o, log: o.Logger, http: &http.Client{Timeout: o.Timeout, Transport: o.Transport}}
	if o.URL != "" {
		c.queue = make(chan job, o.Queue)
		for i := 0; i < o.Workers; i++ {
			c.wg.Add(1)
			go c.worker()
		}
	}
	return c
}

// Enabled reports whether a command is sent at all.
func (c *Client) Enabled(command string) bool {
	return c != nil && c.opts.URL != "" && c.opts.Commands[command]
}

// Before sends a before-callback and waits for its verdict (bounded by the
// timeout). body is the command's fields; CallbackCommand and EventTime are added.
func (c *Client) Before(ctx context.Context, command string, body map[string]any) Decision {
	if !c.Enabled(command) {
		return Decision{Action: Allow}
	}
	failed := func(err error) Decision { return c.Failure(command, err) }
	raw, err := c.post(ctx, command, Platform(ctx), encode(command, body))
	if err != nil {
		return failed(err)
	}
	var rep struct {
		ActionStatus    string
		ErrorCode       *int
		ErrorInfo       string
		MsgBody         json.RawMessage
		CloudCustomData *string
	}
	if err := json.Unmarshal(raw, &rep); err != nil || rep.ErrorCode == nil {
		return failed(fmt.Errorf("reply is not a callback answer: %q", truncate(raw)))
	}
	d := Decision{Info: rep.ErrorInfo, Reply: raw, RawCode: *rep.ErrorCode}
	switch code := *rep.ErrorCode; code {
	case 0:
		d.Action = Allow
		if len(rep.MsgBody) > 0 && string(rep.MsgBody) != "null" {
			d.MsgBody = rep.MsgBody
		}
		d.CloudCustomData = rep.CloudCustomData
	case 1:
		d.Action = Reject
	case 2:
		d.Action = Drop
	default:
		d.Action, d.Code = Reject, code
	}
	return d
}

// Failure is the decision for a before-callback that failed (why): the
// on_failure policy's, counted and logged. Commands whose replies say
// "failed" in their own way (the Sns ones) use it too.
func (c *Client) Failure(command string, why error) Decision {
	c.failed.Add(1)
	c.recent.add(command, why)
	c.log.Warn("before-callback failed", "command", command, "error", why, "refuse", c.opts.Refuse)
	if c.opts.Refuse {
		return Decision{Action: Reject, Failed: true}
	}
	return Decision{Action: Allow, Failed: true}
}

// After queues an after-callback; it never blocks. A full queue drops it
// (counted, logged at a rate limit). ctx only says where the event came
// from (OptPlatform); its end does not cancel the callback.
func (c *Client) After(ctx context.Context, command string, body map[string]any) {
	if !c.Enabled(command) {
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return
	}
	select {
	case c.queue <- job{command: command, platform: Platform(ctx), body: encode(command, body)}:
	default:
		if n := c.dropped.Add(1); n%1000 == 1 {
			c.log.Warn("after-callback queue full; dropped", "command", command, "dropped_total", n)
		}
	}
}

func (c *Client) worker() {
	defer c.wg.Done()
	for j := range c.queue {
		for attempt := 0; attempt <= c.opts.Retries; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
			_, err := c.post(ctx, j.command, j.platform, j.body)
			cancel()
			if err == nil {
				c.sent.Add(1)
				break
			}
			if attempt == c.opts.Retries {
				c.failed.Add(1)
				c.recent.add(j.command, err)
				c.log.Debug("after-callback failed", "command", j.command, "error", err)
			}
		}
	}
}

// Close stops taking after-callbacks, sends what is queued (each bounded by
// the timeout) and waits for the workers.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed || c.queue == nil {
		c.closed = true
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.queue)
	c.mu.Unlock()
	c.wg.Wait()
}

// Stats are the client's counters.
func (c *Client) Stats() (sent, failed, dropped int64) {
	return c.sent.Load(), c.failed.Load(), c.dropped.Load()
}

// Sign is Tencent's callback signature: hex(sha256(token + requestTime)).
func Sign(token, requestTime string) string {
	h := sha256.Sum256([]byte(token + requestTime))
	return hex.EncodeToString(h[:])
}

func encode(command string, body map[string]any) []byte {
	m := make(map[string]any, len(body)+2)
	for k, v := range body {
		m[k] = v
	}
	m["CallbackCommand"] = command
	if _, ok := m["EventTime"]; !ok {
		m["EventTime"] = time.Now().UnixMilli()
	}
	b, _ := json.Marshal(m)
	return b
}

func (c *Client) post(ctx context.Context, command, platform string, body []byte) ([]byte, error) {
	q := url.Values{}
	q.Set("SdkAppid", strconv.FormatUint(c.opts.SDKAppID, 10))
	q.Set("CallbackCommand", command)
	q.Set("contenttype", "json")
	q.Set("ClientIP", "")
	q.Set("OptPlatform", platform)
	if c.opts.Token != "" {
		rt := strconv.FormatInt(time.Now().Unix(), 10)
		q.Set("RequestTime", rt)
		q.Set("Sign", Sign(c.opts.Token, rt))
	}
	u := c.opts.URL
	if bytes.ContainsRune([]byte(u), '?') {
		u += "&" + q.Encode()
	} else {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("callback answered HTTP " + strconv.Itoa(resp.StatusCode))
	}
	return raw, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
