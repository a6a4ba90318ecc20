package history

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/storage"
)

// TestExportPagesAndSplits: an hour spread over more entries than one
// stream read returns is exported whole, split into files of
// history.file_messages, without tips or messages of other hours, and each
// file is served as listed.
func TestExportPagesAndSplits(t *testing.T) {
	st, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default().History
	cfg.FileMessages = 250
	zone := time.FixedZone("history", int(cfg.UTCOffset/time.Second))
	hour := time.Now().In(zone).Truncate(time.Hour)
	in := hour.Unix() + 1
	ctx := context.Background()
	var b storage.Batch
	add := func(stream string, ev []byte) {
		b.Appends = append(b.Appends, storage.Append{Stream: stream, Payload: ev})
		if len(b.Appends) == 100 {
			if _, err := st.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
			b = storage.Batch{}
		}
	}
	c2c := func(seq uint32, t int64) []byte {
		ev, _ := wire.EncodeEvent(wire.EventC2CMsg, wire.C2CMsg{From: "a", To: "b", MsgSeq: seq, MsgTime: t, MsgKey: "k",
			MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]`)})
		return ev
	}
	for i := 0; i < 600; i++ {
		add("c/a:b", c2c(uint32(i), in))
	}
	add("c/a:b", c2c(9999, hour.Unix()-1))   // the hour before
	add("c/a:c", c2c(7, hour.Unix()+3600-1)) // the hour's last second
	tip, _ := wire.EncodeEvent(wire.EventGroupTip, wire.GroupTip{GroupId: "g", MsgTime: in, TipType: "MemberJoin"})
	add("g/g", tip)
	if _, err := st.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	s := New(Options{Store: st, Dir: dir, Key: []byte("k"), Config: cfg})
	srv := httptest.NewServer(http.StripPrefix("", s))
	defer srv.Close()
	files, err := s.Export(ctx, "C2C", hour.Format("2006010215"), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("%d files, want 3 (601 messages, 250 a file)", len(files))
	}
	total := 0
	for _, f := range files {
		resp, err := http.Get(f.URL)
		if err != nil {
			t.Fatal(err)
		}
		gz, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := md5.Sum(gz)
		if resp.StatusCode != 200 || int64(len(gz)) != f.GzipSize || hex.EncodeToString(sum[:]) != f.GzipMD5 {
			t.Fatalf("%s: HTTP %d, %d bytes", f.URL, resp.StatusCode, len(gz))
		}
		zr, _ := gzip.NewReader(bytes.NewReader(gz))
		raw, _ := io.ReadAll(zr)
		var doc struct{ MsgList []C2CRecord }
		if err := json.Unmarshal(raw, &doc); err != nil || int64(len(raw)) != f.FileSize {
			t.Fatalf("file: %v", err)
		}
		for _, r := range doc.MsgList {
			if r.MsgSeq == 9999 {
				t.Fatal("a message of the hour before is listed")
			}
		}
		total += len(doc.MsgList)
	}
	if total != 601 {
		t.Fatalf("%d records, want 601", total)
	}
	if files, err := s.Export(ctx, "Group", hour.Format("2006010215"), srv.URL); err != nil || len(files) != 0 {
		t.Fatalf("group export of tips only: %v %v", files, err)
	}

	// Links: a name outside the pattern and an expired link are refused;
	// files of expired links are swept by the next export.
	u, _ := url.Parse(files0(t, s, hour))
	for _, bad := range []string{"../secret", "a.b.gz", "x.txt"} {
		if validName(bad) {
			t.Fatalf("validName(%q)", bad)
		}
	}
	old := time.Now().Add(-cfg.LinkTTL - 2*time.Minute)
	for _, e := range mustReadDir(t, dir) {
		os.Chtimes(filepath.Join(dir, e), old, old)
	}
	s.sweep(time.Now())
	if left := mustReadDir(t, dir); len(left) != 0 {
		t.Fatalf("files left after their links expired: %v", left)
	}
	if resp, err := http.Get(srv.URL + u.Path + "?" + u.RawQuery); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a swept file: %v %v", resp.StatusCode, err)
	}
}

func files0(t *testing.T, s *Service, hour time.Time) string {
	t.Helper()
	files, err := s.Export(context.Background(), "C2C", hour.Format("2006010215"), "")
	if err != nil || len(files) == 0 {
		t.Fatalf("export: %v", err)
	}
	return files[0].URL
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
