package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/gorilla/websocket"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/app"
	"github.com/imbroker/imbroker/internal/usersig"
)

// startCapturing starts a broker at log level debug whose JSON log lines
// are kept for the test to read.
func startCapturing(t *testing.T, mods ...func(*config.Config)) (*Broker, *lockedBuffer) {
	t.Helper()
	cfg := TestConfig(t)
	cfg.Log.Level = "debug"
	for _, m := range mods {
		m(&cfg)
	}
	buf := new(lockedBuffer)
	a, err := app.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{App: a, Cfg: cfg, Signer: usersig.New(cfg.App.SDKAppID, cfg.App.SecretKey), tb: t, tcp: a.MQTTAddr(), ws: a.WSAddr(), http: a.HTTPAddr()}
	t.Cleanup(b.Stop)
	return b, buf
}

// logLines decodes the captured JSON lines.
func logLines(t *testing.T, buf *lockedBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split([]byte(buf.String()), []byte("\n")) {
		var m map[string]any
		if len(l) > 0 && json.Unmarshal(l, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// refusedLines returns the "refused" lines for reason.
func refusedLines(t *testing.T, buf *lockedBuffer, reason string) []map[string]any {
	var out []map[string]any
	for _, m := range logLines(t, buf) {
		if m["msg"] == "refused" && m["reason"] == reason {
			out = append(out, m)
		}
	}
	return out
}

// scrape returns the value of the /metrics sample named by series (name
// and labels exactly as exposed), or "" when absent.
func scrape(t *testing.T, b *Broker, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + b.App.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// Every refusal is logged at Warn with its Tencent code, ClientID, UserID
// and remote address, and counted in /metrics by reason; an accepted send
// is not logged as rejected, and no line has an empty message.
func TestE2E_RefusalsLoggedAndCounted(t *testing.T) {
	b, buf := startCapturing(t, func(c *config.Config) { c.MQTT.WSAllowedOrigins = []string{"https://app.example"} })
	b.importAccounts("bob")

	bad := mqLogin(b, "alice", "alice")
	bad.Password = []byte("not-a-usersig")
	if _, ca := mqConnect5(t, b, bad); ca.ReasonCode < 0x80 {
		t.Fatalf("bad UserSig: CONNACK 0x%02x", ca.ReasonCode)
	}
	if _, ca := mqConnect5(t, b, mqLogin(b, "bob", "alice")); ca.ReasonCode < 0x80 {
		t.Fatalf("wrong ClientID: CONNACK 0x%02x", ca.ReasonCode)
	}
	alice := mqUser5(t, b, "alice", "alice")
	if rc := alice.sub(0, paho5.SubscribeOptions{Topic: "im/u/bob", QoS: 1}); rc[0] < 0x80 {
		t.Fatalf("subscribe to bob's topic: 0x%02x", rc[0])
	}
	if rc := alice.pub(&paho5.Publish{Topic: "plain/topic", QoS: 1, Payload: []byte("x")}); rc < 0x80 {
		t.Fatalf("publish outside the ACL: 0x%02x", rc)
	}
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}}
	if ws, resp, err := d.Dial("ws://"+b.WSAddr()+"/mqtt", http.Header{"Origin": {"https://evil.example"}}); err == nil {
		ws.Close()
		t.Fatal("refused Origin upgraded")
	} else if resp != nil {
		resp.Body.Close()
	}
	// An accepted send (pipelined: mochi sees ErrRejectPacket).
	alice.mustSub(1, "im/u/alice")
	if rc := alice.pub(&paho5.Publish{Topic: "im/send/c2c/bob", QoS: 1, Payload: mustJSON(Text("hi", Random()))}); rc != 0 {
		t.Fatalf("send: PUBACK 0x%02x", rc)
	}
	alice.next()

	for _, tc := range []struct {
		reason, client, user string
		code                 float64
	}{
		{"login", "alice", "alice", 70003}, // UserSig invalid
		{"login", "bob", "alice", 70402},   // ClientID not the user's
		{"subscribe", "alice", "alice", 20001},
		{"publish", "alice", "alice", 20001},
		{"ws_origin", "", "", 0},
	} {
		found := false
		for _, l := range refusedLines(t, buf, tc.reason) {
			if l["client"] == tc.client && l["user"] == tc.user && l["code"] == tc.code {
				found = true
				if l["level"] != "WARN" || !strings.HasPrefix(l["remote"].(string), "127.0.0.1:") || l["detail"] == "" {
					t.Errorf("%s line lacks level WARN, remote or detail: %v", tc.reason, l)
				}
			}
		}
		if !found {
			t.Errorf("no %s refusal logged for client %q user %q code %v: %v", tc.reason, tc.client, tc.user, tc.code, refusedLines(t, buf, tc.reason))
		}
	}
	for series, want := range map[string]string{
		`imbroker_refusals_total{reason="login"}`:                      "2",
		`imbroker_refusals_total{reason="subscribe"}`:                  "1",
		`imbroker_refusals_total{reason="publish"}`:                    "1",
		`imbroker_refusals_total{reason="ws_origin"}`:                  "1",
		`imbroker_refusals_total{reason="req_rate"}`:                   "0",
		`imbroker_refusals_by_code_total{code="70003",reason="login"}`: "1",
	} {
		if got := scrape(t, b, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	for _, l := range logLines(t, buf) {
		if l["msg"] == "publish packet rejected" || l["msg"] == "" {
			t.Errorf("log line %v: accepted sends must not read as rejected, and every line has a message", l)
		}
	}
}

// A flood of refusals logs at most log.refusal_burst lines per reason, and
// /metrics still counts every one.
func TestE2E_RefusalLogIsRateLimited(t *testing.T) {
	b, buf := startCapturing(t, func(c *config.Config) { c.Log.RefusalRate, c.Log.RefusalBurst = 0.001, 3 })
	for range 20 {
		bad := mqLogin(b, "alice", "alice")
		bad.Password = []byte("not-a-usersig")
		mqConnect5(t, b, bad)
	}
	if n := len(refusedLines(t, buf, "login")); n != 3 {
		t.Errorf("%d login refusal lines for 20 refusals, want 3 (log.refusal_burst)", n)
	}
	if got := scrape(t, b, `imbroker_refusals_total{reason="login"}`); got != "20" {
		t.Errorf("login refusals counted %q, want 20", got)
	}
}

// A login over mqtt.max_clients, which mochi refuses before any hook runs
// (CONNACK 0x89), is logged and counted too.
func TestE2E_ServerBusyRefusalCounted(t *testing.T) {
	b, buf := startCapturing(t, func(c *config.Config) { c.MQTT.MaxClients = 1 })
	mqUser5(t, b, "alice", "alice")
	if _, ca := mqConnect5(t, b, mqLogin(b, "bob", "bob")); ca.ReasonCode != 0x89 {
		t.Fatalf("login over max_clients: CONNACK 0x%02x, want 0x89", ca.ReasonCode)
	}
	waitFor(t, 5*time.Second, "server_busy counted", func() bool { return scrape(t, b, `imbroker_refusals_total{reason="server_busy"}`) == "1" })
	if l := refusedLines(t, buf, "server_busy"); len(l) != 1 || !strings.HasPrefix(l[0]["remote"].(string), "127.0.0.1:") {
		t.Errorf("server_busy lines %v", l)
	}
}
