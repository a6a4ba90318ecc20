package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfig_ShippedFileEqualsDefaults(t *testing.T) {
	t.Setenv(EnvSecretKey, "")
	cfg, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("config.yaml and Default() differ:\n%+v\n%+v", cfg, Default())
	}
}

func TestConfig_ReportsEveryProblemWithItsPath(t *testing.T) {
	t.Setenv(EnvSecretKey, "")
	_, err := Parse([]byte(`
app:
  sdk_app_id: 0
  bogus: 1
mqtt:
  ws_path: mqtt
  keepalive_min: 0
storage:
  max_batch: 0
log:
  level: loud
nope: true
`))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"bogus", "nope", "app.sdk_app_id", "mqtt.ws_path", "mqtt.keepalive_min", "storage.max_batch", "log.level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestConfig_EnvOverridesSecretKey(t *testing.T) {
	t.Setenv(EnvSecretKey, "0123456789abcdef0123")
	cfg, err := Parse([]byte("app:\n  secret_key: fromthefile-1234567\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.App.SecretKey != "0123456789abcdef0123" {
		t.Fatalf("env did not win: %q", cfg.App.SecretKey)
	}
}

func TestConfig_MissingFile(t *testing.T) {
	if _, err := Load(t.TempDir() + "/none.yaml"); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// The edge limits (issue 14) refuse values that would switch them off or
// make no sense, each named by its path.
func TestConfig_EdgeLimitsValidated(t *testing.T) {
	_, err := Parse([]byte(`
mqtt:
  max_clients: -1
  fd_reserve: -1
  connect_timeout: 0s
  req_rate: 0
  req_burst: 0
  queue_full_wait: -1s
  trim_after_logins: -1
  trim_quiet: -1s
  login_workers: -1
  trim_interval: -1s
log:
  refusal_rate: 0
  refusal_burst: 0
storage:
  dedup_memory: 4294967297
  table_write_mb: -1
  commit_interval: 1s
`))
	if err == nil {
		t.Fatal("bad limits accepted")
	}
	for _, want := range []string{"mqtt.max_clients", "mqtt.fd_reserve", "mqtt.connect_timeout", "mqtt.req_rate", "mqtt.req_burst", "mqtt.queue_full_wait", "mqtt.trim_after_logins", "mqtt.trim_quiet", "mqtt.trim_interval", "mqtt.login_workers", "log.refusal_rate", "log.refusal_burst", "storage.dedup_memory", "storage.table_write_mb", "storage.commit_interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

// Memory trimming is on by default and 0 turns it off.
func TestConfig_TrimDefaults(t *testing.T) {
	c, err := Parse([]byte("mqtt:\n  trim_quiet: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.TrimAfterLogins != 1000 || c.MQTT.TrimQuiet != 0 || c.MQTT.TrimInterval != time.Minute {
		t.Fatalf("trim config %d %v %v", c.MQTT.TrimAfterLogins, c.MQTT.TrimQuiet, c.MQTT.TrimInterval)
	}
}
