package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

var restClient = &http.Client{Timeout: 10 * time.Second}

// v4URL is the URL a Tencent server SDK calls, with query values q
// (nil: the admin's, correctly signed).
func (b *Broker) v4URL(path string, q url.Values) string {
	if q == nil {
		q = b.adminQuery()
	}
	return "http://" + b.HTTPAddr() + "/v4/" + path + "?" + q.Encode()
}

// adminQuery is a correct query: the app, the admin and its UserSig.
func (b *Broker) adminQuery() url.Values {
	return url.Values{
		"sdkappid":    {fmt.Sprint(b.Cfg.App.SDKAppID)},
		"identifier":  {b.Cfg.App.Admin},
		"usersig":     {b.Sig(b.Cfg.App.Admin)},
		"random":      {fmt.Sprint(Random())},
		"contenttype": {"json"},
	}
}

// v4Raw POSTs body to url and returns the decoded envelope; the HTTP
// status must be 200.
func v4Raw(tb testing.TB, u string, body []byte) map[string]any {
	tb.Helper()
	out, err := v4Post(tb, u, body)
	if err != nil {
		tb.Fatalf("POST %s: %v", u, err)
	}
	return out
}

// v4Post is v4Raw with the request's own error (no answer) returned.
func v4Post(tb testing.TB, u string, body []byte) (map[string]any, error) {
	tb.Helper()
	resp, err := restClient.Post(u, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("POST %s: HTTP %d %s", u, resp.StatusCode, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("POST %s: body %q: %v", u, raw, err)
	}
	if _, ok := out["ActionStatus"]; !ok {
		tb.Fatalf("POST %s: no envelope in %s", u, raw)
	}
	return out, nil
}

// v4Try is v4, but a request that gets no answer (the client's timeout)
// is returned as an error, not a failure: for writes resent while a
// cluster recovers.
func (b *Broker) v4Try(path string, body any) (map[string]any, error) {
	b.tb.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		b.tb.Fatal(err)
	}
	return v4Post(b.tb, b.v4URL(path, nil), raw)
}

// v4 calls path as the admin with body and returns the envelope.
func (b *Broker) v4(path string, body any) map[string]any {
	b.tb.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		b.tb.Fatal(err)
	}
	return v4Raw(b.tb, b.v4URL(path, nil), raw)
}

// v4OK calls path and fails unless it succeeded.
func (b *Broker) v4OK(path string, body any) map[string]any {
	b.tb.Helper()
	out := b.v4(path, body)
	if out["ActionStatus"] != "OK" || errCode(out) != 0 {
		b.tb.Fatalf("%s: %v", path, out)
	}
	return out
}

// errCode is the envelope's ErrorCode.
func errCode(out map[string]any) int {
	f, _ := out["ErrorCode"].(float64)
	return int(f)
}

// wantCode fails unless out is a FAIL with code.
func wantCode(tb testing.TB, what string, out map[string]any, code int) {
	tb.Helper()
	if errCode(out) != code || out["ActionStatus"] != "FAIL" {
		tb.Fatalf("%s: want FAIL %d, got %v", what, code, out)
	}
}

// items is out[field] as a list of objects.
func items(out map[string]any, field string) []map[string]any {
	list, _ := out[field].([]any)
	res := make([]map[string]any, 0, len(list))
	for _, it := range list {
		m, _ := it.(map[string]any)
		res = append(res, m)
	}
	return res
}

// jsonAt walks decoded JSON v by object keys (string) and list indexes
// (int); nil when the path is not there.
func jsonAt(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// importAccounts imports users over REST (multiaccount_import): accounts
// that may receive one-to-one messages before they ever log in
// (relations.require_accounts).
func (b *Broker) importAccounts(users ...string) {
	b.tb.Helper()
	b.v4OK("im_open_login_svc/multiaccount_import", map[string]any{"Accounts": users})
}
