package test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/console"
	"github.com/imbroker/imbroker/internal/app"
)

// consoleHTTP is a console client: a cookie jar and the CSRF token.
type consoleHTTP struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newConsoleHTTP(t *testing.T, addr string) *consoleHTTP {
	jar, _ := cookiejar.New(nil)
	return &consoleHTTP{t: t, base: "http://" + addr, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// do sends a request and returns the status and the decoded JSON body.
func (h *consoleHTTP) do(method, path string, body any, hdr map[string]string) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

func (h *consoleHTTP) signIn(password string) (int, map[string]any) {
	h.t.Helper()
	st, out := h.do("POST", "/console/api/signin", map[string]string{"Password": password}, nil)
	if st == http.StatusOK {
		h.csrf, _ = out["CSRFToken"].(string)
	}
	return st, out
}

// post sends a state-changing request with the session's CSRF token.
func (h *consoleHTTP) post(path string, body any) (int, map[string]any) {
	h.t.Helper()
	return h.do("POST", path, body, map[string]string{"X-CSRF-Token": h.csrf})
}

// TestConsoleOff: the console is served only with a password (configured,
// or generated into the data dir) and console.enabled; REST is unaffected
// either way. [CONSOLE-OFF]
func TestConsoleOff(t *testing.T) {
	for name, mod := range map[string]func(*config.Config){
		"no password, in-memory store": func(c *config.Config) { c.Storage.InMemory = true },
		"disabled":                     func(c *config.Config) { c.Console.Password, c.Console.Enabled = consolePassword, false },
	} {
		t.Run(name, func(t *testing.T) {
			b := StartBroker(t, mod)
			h := newConsoleHTTP(t, b.App.HTTPAddr())
			for _, p := range []string{"/console/", "/console/api/session"} {
				if st, _ := h.do("GET", p, nil, nil); st != http.StatusNotFound {
					t.Fatalf("GET %s: %d, want 404", p, st)
				}
			}
			if st, _ := h.signIn(consolePassword); st != http.StatusNotFound {
				t.Fatalf("sign-in: %d, want 404", st)
			}
			b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": []any{map[string]any{"UserID": "bob"}}})
		})
	}
}

// TestConsoleGeneratedPassword: on the embedded defaults (no
// console.password) the first start writes a password to
// {storage.dir}/console_password, mode 0600, which signs in; later starts
// keep it; a configured password wins over the file.
func TestConsoleGeneratedPassword(t *testing.T) {
	cfg := TestConfig(t)
	b := StartWith(t, cfg)
	path := filepath.Join(cfg.Storage.Dir, console.PasswordFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no generated password file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	pw := strings.TrimSpace(string(raw))
	if len(pw) < 12 {
		t.Fatalf("generated password %q is too short", pw)
	}
	if st, _ := newConsoleHTTP(t, b.App.HTTPAddr()).signIn(pw); st != http.StatusOK {
		t.Fatalf("sign-in with the generated password: %d", st)
	}
	b.Stop()

	b = StartWith(t, cfg)
	h := newConsoleHTTP(t, b.App.HTTPAddr())
	if st, _ := h.signIn(pw); st != http.StatusOK {
		t.Fatalf("sign-in after a restart: %d, want the same password", st)
	}
	b.Stop()

	cfg.Console.Password = consolePassword
	b = StartWith(t, cfg)
	h = newConsoleHTTP(t, b.App.HTTPAddr())
	if st, _ := h.signIn(pw); st != http.StatusUnauthorized {
		t.Fatalf("sign-in with the file's password while one is configured: %d, want 401", st)
	}
	if st, _ := h.signIn(consolePassword); st != http.StatusOK {
		t.Fatalf("sign-in with the configured password: %d", st)
	}
}

// TestConsoleSession: a sign-in sets an HttpOnly, SameSite=Strict cookie
// scoped to /console that expires; the APIs need it; sign-out ends it.
// (The server-side expiry is console/auth_test.go's, on a fake clock.)
// [CONSOLE-SESSION]
func TestConsoleSession(t *testing.T) {
	b := consoleBroker(t, func(c *config.Config) { c.Console.SessionTTL = 2 * time.Second })
	h := newConsoleHTTP(t, b.App.HTTPAddr())
	if st, out := h.do("GET", "/console/api/overview", nil, nil); st != http.StatusUnauthorized || !strings.Contains(out["Error"].(string), "sign in") {
		t.Fatalf("overview before sign-in: %d %v", st, out)
	}
	raw, _ := json.Marshal(map[string]string{"Password": consolePassword})
	res, err := http.Post("http://"+b.App.HTTPAddr()+"/console/api/signin", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cookie := res.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=2"} {
		if !strings.Contains(cookie, want) {
			t.Fatalf("cookie %q lacks %s", cookie, want)
		}
	}

	if st, out := h.signIn(consolePassword); st != http.StatusOK || out["Admin"] != "administrator" || h.csrf == "" {
		t.Fatalf("sign-in: %d %v", st, out)
	}
	if st, out := h.do("GET", "/console/api/overview", nil, nil); st != http.StatusOK || out["Version"] == nil {
		t.Fatalf("overview: %d %v", st, out)
	}
	// Sign-out ends a session at once.
	h.signIn(consolePassword)
	if st, _ := h.post("/console/api/signout", map[string]any{}); st != http.StatusOK {
		t.Fatalf("sign-out: %d", st)
	}
	if st, _ := h.do("GET", "/console/api/session", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("session after sign-out: %d", st)
	}
}

// TestConsoleCSRF: a state-changing console request needs the session's
// CSRF token and must not come from another site; with both, the v4 proxy
// runs the API as the app admin. [CONSOLE-CSRF]
func TestConsoleCSRF(t *testing.T) {
	b := consoleBroker(t)
	h := newConsoleHTTP(t, b.App.HTTPAddr())
	h.signIn(consolePassword)
	body := map[string]any{"UserID": "mallory"}
	const api = "/console/api/v4/im_open_login_svc/account_import"
	for name, hdr := range map[string]map[string]string{
		"no token":    nil,
		"wrong token": {"X-CSRF-Token": "x" + h.csrf},
		"cross-site":  {"X-CSRF-Token": h.csrf, "Origin": "http://evil.example"},
	} {
		if st, out := h.do("POST", api, body, hdr); st != http.StatusForbidden || out["Error"] == nil {
			t.Fatalf("%s: %d %v, want 403", name, st, out)
		}
	}
	check := b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": []any{map[string]any{"UserID": "mallory"}}})
	if !strings.Contains(jsonOf(check), "NotImported") {
		t.Fatalf("a refused request imported the account: %v", check)
	}
	if st, out := h.post(api, body); st != http.StatusOK || out["ActionStatus"] != "OK" {
		t.Fatalf("with the token: %d %v", st, out)
	}
	check = b.v4OK("im_open_login_svc/account_check", map[string]any{"CheckItem": []any{map[string]any{"UserID": "mallory"}}})
	if !strings.Contains(jsonOf(check), `"Imported"`) {
		t.Fatalf("account not imported: %v", check)
	}
	// REST's own refusals come back as they are.
	if st, out := h.post("/console/api/v4/openim/sendmsg", map[string]any{"To_Account": "bad id"}); st != http.StatusOK || out["ActionStatus"] != "FAIL" || out["ErrorCode"] == float64(0) {
		t.Fatalf("bad sendmsg: %d %v", st, out)
	}
	if st, out := h.do("GET", "/console/api/nope", nil, nil); st != http.StatusNotFound || !strings.Contains(out["Error"].(string), "no such console API") {
		t.Fatalf("unknown API: %d %v", st, out)
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestConsoleSignInRateLimit: console.sign_in_failures failed sign-ins a
// minute per address, then 429 even for the right password; each failure
// is logged with the address. [CONSOLE-SIGNIN-LIMIT]
func TestConsoleSignInRateLimit(t *testing.T) {
	cfg := TestConfig(t)
	cfg.Console.Password, cfg.Console.SignInFailures = consolePassword, 3
	logs := &lockedBuffer{}
	a, err := app.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	h := newConsoleHTTP(t, a.HTTPAddr())
	for i := 0; i < 3; i++ {
		if st, out := h.signIn("wrong-password-" + string(rune('a'+i))); st != http.StatusUnauthorized || out["Error"] != "wrong password" {
			t.Fatalf("failure %d: %d %v", i, st, out)
		}
	}
	if st, out := h.signIn(consolePassword); st != http.StatusTooManyRequests || !strings.Contains(out["Error"].(string), "too many failed sign-ins") {
		t.Fatalf("after 3 failures: %d %v", st, out)
	}
	if n := strings.Count(logs.String(), `msg="console sign-in failed" component=console remote=127.0.0.1`); n != 4 {
		t.Fatalf("%d failures logged, want 4:\n%s", n, logs.String())
	}
}

// TestConsoleStatsAPI: the statistics API and its CSV export show today's
// figures after known traffic; a bad range is refused with a message; the
// settings list the callbacks' recent failures with secrets masked.
// [CONSOLE-STATS]
func TestConsoleStatsAPI(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String() + "/cb?token=s3cret"
	dead.Close() // nothing listens there: every callback fails
	b := consoleBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Token = deadURL, "callback-token-secret"
		c.Callbacks.Commands = []string{"C2C.CallbackBeforeSendMsg"}
		c.Callbacks.Timeout = time.Second
	})
	h := newConsoleHTTP(t, b.App.HTTPAddr())
	h.signIn(consolePassword)
	b.v4OK("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []string{"alice", "bob"}})
	for i := 0; i < 3; i++ {
		req := Text("x", Random())
		req["From_Account"], req["To_Account"] = "alice", "bob"
		b.v4OK("openim/sendmsg", req) // the before-callback fails; on_failure allow sends anyway
	}
	st, out := h.do("GET", "/console/api/stats?days=7", nil, nil)
	days, _ := out["Days"].([]any)
	if st != http.StatusOK || len(days) != 7 {
		t.Fatalf("stats: %d %v", st, out)
	}
	today := days[6].(map[string]any)
	if today["Date"] != time.Now().UTC().Format("20060102") || today["C2CMsgs"] != float64(3) || today["NewAccounts"] != float64(2) {
		t.Fatalf("today: %v", today)
	}
	if st, out := h.do("GET", "/console/api/stats?days=0", nil, nil); st != http.StatusBadRequest || !strings.Contains(out["Error"].(string), "days must be") {
		t.Fatalf("days=0: %d %v", st, out)
	}
	res, err := h.c.Get(h.base + "/console/api/stats.csv?days=2")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(res.Body).ReadAll()
	res.Body.Close()
	if err != nil || len(rows) != 3 || rows[0][0] != "Date" || rows[0][6] != "C2CMsgs" || rows[2][6] != "3" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %v %v", rows, err)
	}

	_, s := h.do("GET", "/console/api/settings", nil, nil)
	yaml := s["ConfigYAML"].(string)
	for _, secret := range []string{consolePassword, TestKey, "callback-token-secret", "s3cret"} {
		if strings.Contains(yaml, secret) || strings.Contains(jsonOf(s), secret) {
			t.Fatalf("settings show %q:\n%s", secret, jsonOf(s))
		}
	}
	fails, _ := s["CallbackFailures"].([]any)
	if len(fails) != 3 || !strings.Contains(jsonOf(fails[0]), "C2C.CallbackBeforeSendMsg") || jsonOf(s["CallbacksEnabled"]) != `["C2C.CallbackBeforeSendMsg"]` {
		t.Fatalf("callbacks: %v / %v", s["CallbacksEnabled"], fails)
	}
}

// TestConsoleAssets: the pages are served from the binary with an ETag and
// security headers; a revalidation is a 304. [CONSOLE-ASSETS]
func TestConsoleAssets(t *testing.T) {
	b := consoleBroker(t)
	base := "http://" + b.App.HTTPAddr() + "/console/"
	for _, p := range []string{"", "app.js", "mqtt.min.js", "uPlot.iife.min.js", "THIRD_PARTY.md"} {
		res, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		tag := res.Header.Get("ETag")
		if res.StatusCode != http.StatusOK || tag == "" || res.Header.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Fatalf("%s: %d %v", p, res.StatusCode, res.Header)
		}
		req, _ := http.NewRequest("GET", base+p, nil)
		req.Header.Set("If-None-Match", tag)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotModified {
			t.Fatalf("%s revalidated: %d", p, res.StatusCode)
		}
	}
}

// TestConsoleApplications: the console lists a NeedPermission Public
// group's pending join applications and answers them through the core's
// group.applications / group.handle_application, as the app admin: an
// accepted applicant becomes a member and gets ApplicationHandled, a
// refused one gets it with Reject and stays out; bad input and the core's
// refusals come back with a message and the Tencent code.
// [CONSOLE-APPLICATIONS]
func TestConsoleApplications(t *testing.T) {
	consoleApplicationsScenario(t, consoleBroker(t))
}

// consoleApplicationsScenario is TestConsoleApplications on b (the cluster
// seam runs it forwarded too).
func consoleApplicationsScenario(t *testing.T, b *Broker) {
	alice, bob, carol := b.Connect("alice", "alice"), b.Connect("bob", "bob"), b.Connect("carol", "carol")
	gid := gtCreate(t, alice, map[string]any{"Type": "Public", "ApplyJoinOption": "NeedPermission"})
	if r := gtOK(t, "bob applies", bob.Req("group.join", gtG(gid, "ApplyMsg", "let me in"))); r["JoinResult"] != "Pending" {
		t.Fatalf("bob's join: %v, want Pending", r)
	}
	gtOK(t, "carol applies", carol.Req("group.join", gtG(gid)))
	h := newConsoleHTTP(t, b.App.HTTPAddr())
	list := "/console/api/groups/applications?GroupId=" + url.QueryEscape(gid)
	const handle = "/console/api/groups/handle_application"
	if st, _ := h.do("GET", list, nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("list before sign-in: %d, want 401", st)
	}
	h.signIn(consolePassword)

	st, out := h.do("GET", list, nil, nil)
	apps, _ := out["ApplicationList"].([]any)
	if st != http.StatusOK || len(apps) != 2 {
		t.Fatalf("applications: %d %v", st, out)
	}
	first := apps[0].(map[string]any)
	if first["Applicant_Account"] != "bob" || first["ApplyMsg"] != "let me in" || first["ApplyTime"].(float64) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("bob's application: %v", first)
	}

	agree := map[string]any{"GroupId": gid, "Applicant_Account": "bob", "HandleResult": "Agree"}
	if st, out := h.do("POST", handle, agree, nil); st != http.StatusForbidden {
		t.Fatalf("handle without the CSRF token: %d %v, want 403", st, out)
	}
	for name, tc := range map[string]struct {
		path string
		body any
		code float64 // 0: the console's own check
		text string
	}{
		"no GroupId":           {"/console/api/groups/applications", nil, 0, "GroupId is required"},
		"unknown group":        {"/console/api/groups/applications?GroupId=no-such-group", nil, 10010, "group.applications failed: 10010"},
		"not JSON":             {handle, "x", 0, "the body must be"},
		"no applicant":         {handle, map[string]any{"GroupId": gid, "HandleResult": "Agree"}, 0, "Applicant_Account are required"},
		"bad HandleResult":     {handle, map[string]any{"GroupId": gid, "Applicant_Account": "bob", "HandleResult": "Maybe"}, 10004, "group.handle_application failed: 10004"},
		"no such application":  {handle, map[string]any{"GroupId": gid, "Applicant_Account": "dave", "HandleResult": "Agree"}, 10004, "no pending application"},
		"application's group?": {handle, map[string]any{"GroupId": "no-such-group", "Applicant_Account": "bob", "HandleResult": "Agree"}, 10010, "10010"},
	} {
		var st int
		var out map[string]any
		if tc.body == nil {
			st, out = h.do("GET", tc.path, nil, nil)
		} else {
			st, out = h.post(tc.path, tc.body)
		}
		msg, _ := out["Error"].(string)
		if st != http.StatusBadRequest || !strings.Contains(msg, tc.text) || (tc.code != 0 && out["ErrorCode"] != tc.code) {
			t.Fatalf("%s: %d %v, want 400 with %q (code %v)", name, st, out, tc.text, tc.code)
		}
	}

	if st, out := h.post(handle, agree); st != http.StatusOK || out["HandleResult"] != "Agree" {
		t.Fatalf("accept bob: %d %v", st, out)
	}
	gtWait(t, "bob", bob.Events, func(e Event) bool { return gtTip("ApplicationHandled")(e) && gtMsg(e)["Result"] == "Agree" })
	if st, out := h.post(handle, map[string]any{"GroupId": gid, "Applicant_Account": "carol", "HandleResult": "Reject"}); st != http.StatusOK {
		t.Fatalf("refuse carol: %d %v", st, out)
	}
	gtWait(t, "carol", carol.Events, func(e Event) bool { return gtTip("ApplicationHandled")(e) && gtMsg(e)["Result"] == "Reject" })
	members := jsonOf(b.v4OK("group_open_http_svc/get_group_member_info", map[string]any{"GroupId": gid})["MemberList"])
	if !strings.Contains(members, `"bob"`) || strings.Contains(members, `"carol"`) {
		t.Fatalf("members after accepting bob and refusing carol: %s", members)
	}
	if st, out := h.do("GET", list, nil, nil); st != http.StatusOK || len(out["ApplicationList"].([]any)) != 0 {
		t.Fatalf("applications after handling both: %d %v", st, out)
	}
}
