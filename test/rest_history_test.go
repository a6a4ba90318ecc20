package test

import (
	"github.com/imbroker/imbroker/config"

	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// historyHour is the Tencent MsgTime (Beijing time, UTC+8) of unix t.
func historyHour(t int64) string {
	return time.Unix(t, 0).In(time.FixedZone("CST", 8*3600)).Format("2006010215")
}

// download GETs u and returns the status and body.
func download(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := restClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// historyRecords fetches get_history's file(s) for hour, checks sizes and
// MD5s against what was downloaded, and returns the records.
func historyRecords(t *testing.T, b *Broker, chatType, hour string) []map[string]any {
	t.Helper()
	out := b.v4OK("open_msg_svc/get_history", map[string]any{"ChatType": chatType, "MsgTime": hour})
	var recs []map[string]any
	for _, f := range items(out, "File") {
		status, gz := download(t, f["URL"].(string))
		if status != http.StatusOK {
			t.Fatalf("download %v: HTTP %d %s", f["URL"], status, gz)
		}
		sum := md5.Sum(gz)
		if int(f["GzipSize"].(float64)) != len(gz) || f["GzipMD5"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("gzip size/md5 %v %v, downloaded %d bytes", f["GzipSize"], f["GzipMD5"], len(gz))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		sum = md5.Sum(raw)
		if int(f["FileSize"].(float64)) != len(raw) || f["FileMD5"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("file size/md5 %v %v, got %d bytes", f["FileSize"], f["FileMD5"], len(raw))
		}
		if _, err := time.Parse(time.DateTime, f["ExpireTime"].(string)); err != nil {
			t.Fatalf("ExpireTime %v: %v", f["ExpireTime"], err)
		}
		var doc struct{ MsgList []map[string]any }
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("file content %s: %v", raw, err)
		}
		recs = append(recs, doc.MsgList...)
	}
	return recs
}

func recordText(r map[string]any) string {
	return fmt.Sprint(jsonAt(r, "MsgBody", 0, "MsgContent", "Text"))
}

// get_history: links to gzip files of the hour's C2C and group messages in
// Tencent's record fields, served by imbroker's HTTP listener; the links'
// sizes and MD5s match; a forged, moved or expired link gets 403.
func TestREST_GetHistory(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.History.FileMessages = 2 })
	b.importAccounts("bob")
	var sent []map[string]any
	for _, text := range []string{"one", "two", "three"} {
		out := b.v4OK("openim/sendmsg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgRandom": Random(),
			"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": text}}}})
		out["Text"] = text
		sent = append(sent, out)
	}
	b.v4OK("group_open_http_svc/create_group", map[string]any{"Owner_Account": "alice", "Type": "Public", "GroupId": "hist1", "Name": "h"})
	g := b.v4OK("group_open_http_svc/send_group_msg", map[string]any{"GroupId": "hist1", "From_Account": "alice", "Random": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "group one"}}}})

	hour := historyHour(int64(sent[0]["MsgTime"].(float64)))
	recs := historyRecords(t, b, "C2C", hour)
	byKey := map[string]map[string]any{}
	for _, r := range recs {
		byKey[r["MsgKey"].(string)] = r
	}
	for _, s := range sent {
		if historyHour(int64(s["MsgTime"].(float64))) != hour {
			continue // sent across the hour's end
		}
		r := byKey[s["MsgKey"].(string)]
		if r == nil || r["From_Account"] != "alice" || r["To_Account"] != "bob" || recordText(r) != s["Text"] ||
			r["MsgTimestamp"] != s["MsgTime"] {
			t.Fatalf("record of %v: %v (all: %v)", s, r, recs)
		}
	}
	if len(recs) != len(byKey) || len(recs) > 3 {
		t.Fatalf("%d C2C records, want each message once: %v", len(recs), recs)
	}

	grecs := historyRecords(t, b, "Group", historyHour(int64(g["MsgTime"].(float64))))
	if len(grecs) != 1 || grecs[0]["GroupId"] != "hist1" || grecs[0]["MsgSeq"] != g["MsgSeq"] || recordText(grecs[0]) != "group one" {
		t.Fatalf("group records: %v", grecs)
	}

	// An hour without messages has no file.
	if out := b.v4OK("open_msg_svc/get_history", map[string]any{"ChatType": "C2C", "MsgTime": "2020010100"}); len(items(out, "File")) != 0 {
		t.Fatalf("empty hour: %v", out)
	}
	for name, body := range map[string]map[string]any{
		"bad ChatType":   {"ChatType": "c2c", "MsgTime": hour},
		"bad MsgTime":    {"ChatType": "C2C", "MsgTime": "2020-01-01"},
		"future MsgTime": {"ChatType": "C2C", "MsgTime": historyHour(time.Now().Add(3 * time.Hour).Unix())},
	} {
		wantCode(t, name, b.v4("open_msg_svc/get_history", body), 60003)
	}

	// Links: forged, moved to another file, expired.
	f := items(b.v4OK("open_msg_svc/get_history", map[string]any{"ChatType": "C2C", "MsgTime": hour}), "File")[0]
	u, err := url.Parse(f["URL"].(string))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/history/")
	sign := func(name string, expires int64) string {
		m := hmac.New(sha256.New, []byte(TestKey))
		fmt.Fprintf(m, "imbroker-history\n%s\n%d", name, expires)
		return hex.EncodeToString(m.Sum(nil))
	}
	base := "http://" + b.App.HTTPAddr() + "/history/"
	past := time.Now().Add(-time.Minute).Unix()
	if want := u.Query().Get("sig"); want != sign(name, mustInt(t, u.Query().Get("expires"))) {
		t.Fatalf("the test's signing differs from the broker's: %s", u)
	}
	for what, link := range map[string]string{
		"forged sig":     base + name + "?expires=" + u.Query().Get("expires") + "&sig=" + strings.Repeat("0", 64),
		"no sig":         base + name,
		"other file":     base + strings.Replace(name, "_0.gz", "_1.gz", 1) + "?" + u.RawQuery,
		"expiry changed": base + name + "?expires=" + fmt.Sprint(mustInt(t, u.Query().Get("expires"))+3600) + "&sig=" + u.Query().Get("sig"),
		"expired":        base + name + fmt.Sprintf("?expires=%d&sig=%s", past, sign(name, past)),
		"path traversal": base + "..%2fsecret_key?" + u.RawQuery,
	} {
		if status, body := download(t, link); status != http.StatusForbidden {
			t.Fatalf("%s: HTTP %d %s, want 403", what, status, body)
		}
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// GetIPList answers the listeners' IPs (Tencent's IPList) and addresses.
func TestREST_GetIPList(t *testing.T) {
	b := StartBroker(t)
	out := b.v4OK("ConfigSvc/GetIPList", map[string]any{})
	ips, _ := json.Marshal(out["IPList"])
	if string(ips) != `["127.0.0.1"]` {
		t.Fatalf("IPList %s, want the loopback the harness binds", ips)
	}
	if jsonAt(out, "Listeners", "http") != b.App.HTTPAddr() || jsonAt(out, "Listeners", "mqtt.tcp") != b.MQTTAddr() {
		t.Fatalf("Listeners: %v", out["Listeners"])
	}
}
