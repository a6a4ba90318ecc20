package config

import (
	"errors"
	"strings"
	"testing"
)

// TestConfig_ProblemMessages checks what -check-config prints for each kind
// of problem: every message names its key path, and the decoder's own
// wording (Go type names) never shows.
func TestConfig_ProblemMessages(t *testing.T) {
	dur := `is not a duration: write it like 168h, 90m or 30s (units ns, us, ms, s, m, h)`
	for _, tc := range []struct {
		name string
		yaml string
		want []string // each must be one problem's text, up to its " (line N)"
	}{
		{"misspelled top-level key", "mqqt:\n  tcp: \":1883\"\n",
			[]string{`mqqt: unknown key (did you mean "mqtt"?) (line 1)`}},
		{"misspelled nested key", "mqtt:\n  anonymus: true\n",
			[]string{`mqtt.anonymus: unknown key (did you mean "anonymous"?) (line 2)`}},
		{"misspelled key in a nested struct", "mqtt:\n  tls:\n    adress: \":8883\"\n",
			[]string{`mqtt.tls.adress: unknown key (did you mean "address"?) (line 3)`}},
		{"misspelled key in a list item", "mqtt:\n  acl:\n    - permission: allow\n      action: all\n      topik: a/b\n      who: all\n",
			[]string{`mqtt.acl[0].topik: unknown key (did you mean "topic"?)`, `mqtt.acl[0].topic: required`}},
		{"misspelled key in a map value", "groups:\n  types:\n    Support: { base: Public, max_member: 5 }\n",
			[]string{`groups.types.Support.max_member: unknown key (did you mean "max_members"?)`}},
		{"unknown key far from any", "storage:\n  colour: blue\n",
			[]string{`storage.colour: unknown key (known keys here: cache_mb, commit_interval, commit_timeout,`}},
		{"case differs", "log:\n  Level: info\n",
			[]string{`log.Level: unknown key (did you mean "level"?)`}},
		{"bad duration", "retention:\n  max_age: 7d\n",
			[]string{`retention.max_age: "7d" ` + dur + ` (line 2)`}},
		{"duration without unit", "http:\n  read_timeout: 10\n",
			[]string{`http.read_timeout: "10" ` + dur}},
		{"duration given a list", "callbacks:\n  timeout: [2s]\n",
			[]string{`callbacks.timeout: must be a duration, not a list: write it like 168h`}},
		{"callback command not of the form Family.Name", "callbacks:\n  commands: [C2C.CallbackAfterSendMsg, CallbackBeforeSendMsg]\n",
			[]string{`callbacks.commands[1]: not a callback command (Family.Name): "CallbackBeforeSendMsg"`}},
		{"bad number", "storage:\n  max_batch: lots\n",
			[]string{`storage.max_batch: "lots" is not a whole number (line 2)`}},
		{"number out of range", "mqtt:\n  keepalive_min: 70000\n",
			[]string{`mqtt.keepalive_min: "70000" is out of range: a whole number from 0 to 65535`}},
		{"negative unsigned", "app:\n  sdk_app_id: -1\n",
			[]string{`app.sdk_app_id: "-1" is out of range: a whole number from 0 to 18446744073709551615`}},
		{"public key file missing", "app:\n  public_key: /nonexistent/public.pem\n",
			[]string{`app.public_key: open /nonexistent/public.pem: no such file or directory`}},
		{"public key not PEM", "app:\n  public_key: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"\n",
			[]string{`app.public_key: usersig: malformed public key`}},
		{"bad bool", "storage:\n  sync: maybe\n",
			[]string{`storage.sync: "maybe" is not true or false`}},
		{"string given a mapping", "mqtt:\n  tcp: {port: 1883}\n",
			[]string{`mqtt.tcp: must be a single value, not a mapping (line 2)`}},
		{"section given a scalar", "mqtt: yes\n",
			[]string{`mqtt: must be a mapping of keys, not "yes"`}},
		{"list given a scalar", "mqtt:\n  ws_allowed_origins: https://a.example\n",
			[]string{`mqtt.ws_allowed_origins: must be a list, not "https://a.example"`}},
		{"misspelled key brought in by a merge key", "mqtt:\n  acl:\n    - &r {permission: allow, action: all, topic: a/b, who: all}\n    - <<: [{permision: deny}, *r]\n",
			[]string{`mqtt.acl[1].permision: unknown key (did you mean "permission"?) (line 4)`}},
		{"key set twice", "http:\n  pprof: true\n  pprof: false\n",
			[]string{`http.pprof: set twice (first at line 2) (line 3)`}},
		{"merge key set twice", "mqtt:\n  tls:\n    <<: {address: \"\"}\n    <<: {cert_file: \"\"}\n",
			[]string{`mqtt.tls.<<: set twice (first at line 3) (line 4)`}},
		{"several problems at once", "mqtt:\n  anonymus: true\n  ws_path: mqtt\nretention:\n  max_age: 7d\nstorage:\n  max_batch: 0\n  sync: maybe\nloggg: {}\n",
			[]string{
				`mqtt.anonymus: unknown key (did you mean "anonymous"?)`,
				`retention.max_age: "7d" ` + dur,
				`storage.sync: "maybe" is not true or false`,
				`loggg: unknown key (did you mean "log"?)`,
				`mqtt.ws_path: must start with /`,
				`storage.max_batch: must be at least 1`,
			}},
		{"listeners on one port", "mqtt:\n  tcp: \":1883\"\n  ws: \":1883\"\n",
			[]string{`mqtt.ws: ":1883" uses the same port as mqtt.tcp (":1883"): give each listener its own port`}},
		{"listener on all interfaces clashes with one on a host", "mqtt:\n  ws: \"127.0.0.1:9000\"\nhttp:\n  address: \"0.0.0.0:9000\"\n",
			[]string{`http.address: "0.0.0.0:9000" uses the same port as mqtt.ws ("127.0.0.1:9000")`}},
		{"same host and port", "mqtt:\n  tcp: \"localhost:1883\"\n  tls: {address: \"LOCALHOST:1883\", cert_file: c.pem, key_file: k.pem}\n",
			[]string{`mqtt.tls.address: "LOCALHOST:1883" uses the same port as mqtt.tcp ("localhost:1883")`}},
		{"IPv6 any clashes", "mqtt:\n  tcp: \"[::]:8080\"\n",
			[]string{`http.address: ":8080" uses the same port as mqtt.tcp ("[::]:8080")`}},
		{"three on one port", "mqtt:\n  tcp: \":7000\"\n  ws: \":7000\"\nhttp:\n  address: \":7000\"\n",
			[]string{
				`mqtt.ws: ":7000" uses the same port as mqtt.tcp (":7000")`,
				`http.address: ":7000" uses the same port as mqtt.tcp (":7000")`,
				`http.address: ":7000" uses the same port as mqtt.ws (":7000")`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvSecretKey, "")
			_, err := Parse([]byte(tc.yaml))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a *ValidationError, got %v", err)
			}
			if len(ve.Problems) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%v", len(ve.Problems), len(tc.want), err)
			}
			for _, w := range tc.want {
				found := false
				for _, p := range ve.Problems {
					found = found || strings.HasPrefix(p, w)
				}
				if !found {
					t.Errorf("no problem reads %q:\n%v", w, err)
				}
			}
			for _, p := range ve.Problems {
				if strings.Contains(p, "config.") || strings.Contains(p, "time.Duration") || strings.Contains(p, "!!") {
					t.Errorf("decoder internals leak: %q", p)
				}
			}
		})
	}
}

func TestConfig_ListenersThatDoNotClash(t *testing.T) {
	for name, y := range map[string]string{
		"defaults":               "",
		"comments only":          "# nothing set\n",
		"anchors and merge keys": "mqtt:\n  acl:\n    - &r {permission: allow, action: all, topic: a/b, who: all}\n    - <<: *r\n      topic: c/d\n",
		"any free port, twice":   "mqtt:\n  tcp: \":0\"\n  ws: \":0\"\n  tls: {address: \"127.0.0.1:0\", cert_file: c, key_file: k}\nhttp:\n  address: \":0\"\n",
		"disabled listeners":     "mqtt:\n  tcp: \":8080\"\n  ws: \"\"\nhttp:\n  address: \"\"\n",
		"same port, other host":  "mqtt:\n  tcp: \"127.0.0.1:1883\"\n  ws: \"127.0.0.2:1883\"\n",
		"shipped file ports":     "mqtt:\n  tcp: \":1883\"\n  ws: \":8083\"\n  tls: {address: \":8883\", cert_file: c, key_file: k}\nhttp:\n  address: \":8080\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvSecretKey, "")
			if _, err := Parse([]byte(y)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfig_NotYAML(t *testing.T) {
	_, err := Parse([]byte("mqtt:\n  tcp: \":1883\"\n bad indent: [\n"))
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("want the parser's line: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"", "abc", 3}, {"anonymus", "anonymous", 1}, {"tpc", "tcp", 2}, {"kitten", "sitting", 3}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}
