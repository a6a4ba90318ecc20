package test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestRESTCommandCoverage: docs/rest.md's command coverage table names
// every command once with a known status, and the commands it marks done or
// differs are exactly the v4 paths of /v4/openapi.json.
func TestRESTCommandCoverage(t *testing.T) {
	raw, err := os.ReadFile("../docs/rest.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Tencent v4 command coverage\n")
	if !ok {
		t.Fatal("docs/rest.md has no \"## Tencent v4 command coverage\" section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	row := regexp.MustCompile("^\\| `([A-Za-z0-9_]+/[A-Za-z0-9_]+)` \\| (done|differs|not done) \\|")
	status := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("bad coverage row: %s", line)
		}
		if _, dup := status[m[1]]; dup {
			t.Fatalf("%s is listed twice", m[1])
		}
		status[m[1]] = m[2]
	}
	var served []string
	for cmd, st := range status {
		if st != "not done" {
			served = append(served, cmd)
		}
	}

	b := StartBroker(t)
	resp, err := restClient.Get("http://" + b.App.HTTPAddr() + "/v4/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Paths map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var inDoc []string
	for p := range doc.Paths {
		if p != "/v4/openapi.json" {
			inDoc = append(inDoc, strings.TrimPrefix(p, "/v4/"))
		}
	}
	sort.Strings(served)
	sort.Strings(inDoc)
	if strings.Join(served, "\n") != strings.Join(inDoc, "\n") {
		t.Fatalf("coverage table (done/differs) and OpenAPI document differ:\ntable:\n%s\n\nopenapi:\n%s",
			strings.Join(served, "\n"), strings.Join(inDoc, "\n"))
	}
	// A command the table says is not done really is not served.
	for cmd, st := range status {
		if st == "not done" {
			wantCode(t, cmd, b.v4(cmd, map[string]any{}), 60009)
		}
	}
}
