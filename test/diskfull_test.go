package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/testfs"

	paho5 "github.com/eclipse/paho.golang/paho"
)

// httpGet returns the status and body of a GET on the broker's HTTP port.
func httpGet(t *testing.T, b *Broker, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric reads one sample of /metrics.
func metric(t *testing.T, b *Broker, name string) float64 {
	t.Helper()
	_, body := httpGet(t, b, "/metrics")
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics lacks %s", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestDiskFull: on a real full disk (a tmpfs) every write ends in an error
// within storage.commit_timeout: an MQTT 5 send gets PUBACK 0x97 with
// 20004, an MQTT 3.1.1 send the rpc error, an im/req request and a REST
// call their 20004; /readyz says 503 and why; /metrics counts the
// failures. Once space is freed, writes succeed without a restart, and
// after a restart every acknowledged message is there. [STORE-DISKFULL]
func TestDiskFull(t *testing.T) {
	fs := testfs.MountTmpfs(t, 48<<20)
	cfg := TestConfig(t)
	cfg.Storage.Dir = filepath.Join(fs, "data")
	cfg.Storage.MinFreeMB = 8
	cfg.Storage.MemtableMB = 1
	cfg.Storage.CommitTimeout = 3 * time.Second
	b := StartWith(t, cfg)
	b.importAccounts("bob") // the recipient of every send
	alice := mqUser5(t, b, "alice", "alice")
	carol := b.Connect("carol", "carol") // MQTT 3.1.1
	send5 := func(r uint32) (byte, time.Duration) {
		raw, _ := json.Marshal(Text(fmt.Sprint("m", r), r))
		began := time.Now()
		return alice.pub(&paho5.Publish{Topic: "im/send/c2c/bob", QoS: 1, Payload: raw}), time.Since(began)
	}
	var acked []uint32
	for range 3 {
		r := Random()
		if rc, _ := send5(r); rc != 0 {
			t.Fatalf("send before the disk filled: 0x%02x", rc)
		}
		acked = append(acked, r)
	}
	if code, body := httpGet(t, b, "/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s before the disk filled", code, body)
	}

	release := testfs.Fill(t, fs, 2<<20)
	if code, body := httpGet(t, b, "/readyz"); code != 503 || !regexp.MustCompile(`disk is full`).MatchString(body) {
		t.Fatalf("/readyz on a full disk: %d %s", code, body)
	}
	rc, took := send5(Random())
	if rc != 0x97 || took > cfg.Storage.CommitTimeout {
		t.Fatalf("MQTT 5 send on a full disk: PUBACK 0x%02x after %v, want 0x97 within %v", rc, took, cfg.Storage.CommitTimeout)
	}
	carol.Publish1("im/send/c2c/bob", Text("refused", Random()))
	if r := carol.NextReply(); code(r) != 20004 {
		t.Fatalf("MQTT 3.1.1 send on a full disk: rpc %v, want 20004", r)
	}
	if r := carol.Req("group.create", map[string]any{"Type": "Public", "Name": "full"}); code(r) != 20004 {
		t.Fatalf("group.create on a full disk: %v, want 20004", r)
	}
	wantCode(t, "REST sendmsg on a full disk", b.v4("openim/sendmsg", map[string]any{"From_Account": "alice", "To_Account": "bob", "MsgRandom": Random(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "x"}}}}), 20004)
	if n := metric(t, b, "imbroker_store_write_failures_total"); n < 4 {
		t.Fatalf("store_write_failures_total = %v, want at least 4", n)
	}
	if v := metric(t, b, "imbroker_store_writable"); v != 0 {
		t.Fatalf("store_writable = %v on a full disk", v)
	}

	release()
	if code, body := httpGet(t, b, "/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s after space was freed", code, body)
	}
	for range 2 {
		r := Random()
		if rc, _ := send5(r); rc != 0 {
			t.Fatalf("send after space was freed: 0x%02x", rc)
		}
		acked = append(acked, r)
	}
	if r := carol.Req("group.create", map[string]any{"Type": "Public", "Name": "freed"}); code(r) != 0 {
		t.Fatalf("group.create after space was freed: %v", r)
	}

	b.Stop()
	b2 := StartWith(t, cfg)
	bob := b2.Connect("bob", "bob")
	var got []uint32
	for _, e := range bob.SyncAll(0) {
		got = append(got, e.Msg.MsgRandom)
	}
	if fmt.Sprint(got) != fmt.Sprint(acked) {
		t.Fatalf("after a restart bob has %v, want exactly the acknowledged %v", got, acked)
	}
}
