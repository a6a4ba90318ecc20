package test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/usersig"
	"github.com/imbroker/imbroker/rest"
)

// TestRESTAuth: only the configured admin with a valid UserSig for the
// configured SDKAppID gets in; everything else gets Tencent's code in the
// envelope, with HTTP 200. [REST-AUTH]
func TestRESTAuth(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.REST.MaxBodyBytes = 1024 })
	admin := b.Cfg.App.Admin
	const api = "im_open_login_svc/account_check"
	body := []byte(`{"CheckItem":[{"UserID":"alice"}]}`)
	with := func(k, v string) url.Values {
		q := b.adminQuery()
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	otherKey, _ := usersig.New(b.Cfg.App.SDKAppID, "another-app-secret-key").Gen(admin, 3600)
	otherApp, _ := usersig.New(b.Cfg.App.SDKAppID+1, TestKey).Gen(admin, 3600)
	expired, _ := b.Signer.GenAt(admin, time.Now().Add(-2*time.Hour), 60, nil)
	nonAdmin := with("identifier", "alice")
	nonAdmin.Set("usersig", b.Sig("alice"))
	cases := []struct {
		name string
		q    url.Values
		code int
	}{
		{"sdkappid missing", with("sdkappid", ""), 60012},
		{"sdkappid not a number", with("sdkappid", "abc"), 60002},
		{"wrong sdkappid", with("sdkappid", "1400000001"), 60006},
		{"identifier missing", with("identifier", ""), 60002},
		{"usersig missing", with("usersig", ""), 60002},
		{"random missing", with("random", ""), 60002},
		{"random not uint32", with("random", "99999999999"), 60002},
		{"contenttype not json", with("contenttype", "xml"), 60002},
		{"malformed usersig", with("usersig", "garbage"), 70003},
		{"usersig of another key", with("usersig", otherKey), 70009},
		{"usersig of another app", with("usersig", otherApp), 70014},
		{"expired usersig", with("usersig", expired), 70001},
		{"usersig of another user", with("usersig", b.Sig("alice")), 70013},
		{"non-admin identifier", nonAdmin, 60010},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, v4Raw(t, b.v4URL(api, tc.q), body), tc.code)
		})
	}
	ok := v4Raw(t, b.v4URL(api, nil), body)
	if ok["ActionStatus"] != "OK" || errCode(ok) != 0 || ok["ErrorInfo"] != "" {
		t.Fatalf("admin call: %v", ok)
	}
}

// TestRESTBodies: empty, malformed, non-object and oversized bodies,
// unknown endpoints and wrong methods each get their code; no Go error text
// or stack trace reaches the client. [REST-BODY]
func TestRESTBodies(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.REST.MaxBodyBytes = 1024 })
	acct := b.v4URL("im_open_login_svc/account_check", nil)
	openim := b.v4URL("openim/sendmsg", nil)
	wantCode(t, "empty body", v4Raw(t, acct, nil), 60003)
	wantCode(t, "blank body", v4Raw(t, acct, []byte("  \n")), 60003)
	wantCode(t, "bad JSON", v4Raw(t, acct, []byte(`{"CheckItem":`)), 60003)
	wantCode(t, "JSON array", v4Raw(t, acct, []byte(`[1]`)), 60003)
	wantCode(t, "openim empty body", v4Raw(t, openim, nil), 90001)
	wantCode(t, "openim bad JSON", v4Raw(t, openim, []byte(`{`)), 90001)
	big := []byte(`{"CheckItem":[{"UserID":"` + strings.Repeat("a", 2000) + `"}]}`)
	wantCode(t, "oversized", v4Raw(t, acct, big), 93000)
	wantCode(t, "wrong field type", v4Raw(t, acct, []byte(`{"CheckItem":"alice"}`)), 70402)

	unknown := v4Raw(t, b.v4URL("openim/no_such_command", nil), []byte(`{}`))
	wantCode(t, "unknown endpoint", unknown, 60009)
	wantCode(t, "unknown service", v4Raw(t, b.v4URL("nosvc/x", nil), []byte(`{}`)), 60009)
	for _, out := range []map[string]any{unknown} {
		info, _ := out["ErrorInfo"].(string)
		if strings.Contains(info, "goroutine") || strings.Contains(info, ".go:") {
			t.Fatalf("ErrorInfo leaks internals: %q", info)
		}
	}
	resp, err := restClient.Get(acct)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || errCode(got) != 60002 {
		t.Fatalf("GET on a v4 API: HTTP %d %v", resp.StatusCode, got)
	}
}

// TestRESTRateLimit: a per-API limit from config answers 60007 beyond it;
// the defaults are Tencent's. [REST-RATE]
func TestRESTRateLimit(t *testing.T) {
	d := config.Default().REST
	for api, want := range map[string]int{
		"im_open_login_svc/multiaccount_import": 100, "im_open_login_svc/account_delete": 100,
		"im_open_login_svc/account_check": 100, "openim/sendmsg": 200,
	} {
		if got := d.Limit(api); got != want {
			t.Fatalf("default limit of %s: %d, want %d", api, got, want)
		}
	}
	b := StartBroker(t, func(c *config.Config) { c.REST.RateLimits["im_open_login_svc/account_check"] = 1 })
	body := []byte(`{"CheckItem":[{"UserID":"alice"}]}`)
	limited := false
	for i := 0; i < 10 && !limited; i++ {
		out := v4Raw(t, b.v4URL("im_open_login_svc/account_check", nil), body)
		limited = errCode(out) == 60007
	}
	if !limited {
		t.Fatal("10 calls at a limit of 1/s were never refused with 60007")
	}
	// Other APIs have their own budget.
	b.v4OK("im_open_login_svc/kick", map[string]any{"UserID": "alice"})
}

// TestRESTOpenAPI: /v4/openapi.json lists exactly the router's v4 routes,
// and every listed API is routed (answers 60006 to a wrong SDKAppID, not
// 60009). [REST-OPENAPI]
func TestRESTOpenAPI(t *testing.T) {
	b := StartBroker(t)
	resp, err := restClient.Get("http://" + b.App.HTTPAddr() + "/v4/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var inDoc []string
	for p, ops := range doc.Paths {
		for m := range ops {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+p)
		}
	}
	h := rest.NewRouter(rest.Deps{Ready: b.App.Broker, V4: &rest.V4{Admin: b.App.Broker, App: b.Cfg.App, REST: b.Cfg.REST}})
	var routed []string
	if err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/v4/") {
			routed = append(routed, method+" "+route)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(inDoc)
	sort.Strings(routed)
	if strings.Join(inDoc, "\n") != strings.Join(routed, "\n") {
		t.Fatalf("router and OpenAPI document differ:\nrouter:\n%s\ndocument:\n%s", strings.Join(routed, "\n"), strings.Join(inDoc, "\n"))
	}
	q := b.adminQuery()
	q.Set("sdkappid", "1")
	for _, r := range routed {
		method, path, _ := strings.Cut(r, " ")
		if method != http.MethodPost {
			continue
		}
		out := v4Raw(t, "http://"+b.App.HTTPAddr()+path+"?"+q.Encode(), []byte(`{}`))
		wantCode(t, path, out, 60006)
	}
}
