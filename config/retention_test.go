package config

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_Retention(t *testing.T) {
	t.Setenv(EnvSecretKey, "")
	d := Default().Retention
	if d.MaxAge != 168*time.Hour || d.MaxPerStream != 10000 || d.SweepInterval != time.Minute || d.SweepDuty != 0.1 {
		t.Fatalf("defaults %+v", d)
	}
	cfg, err := Parse([]byte("retention:\n  max_age: 0s\n  max_per_stream: 0\n  sweep_interval: 50ms\n  sweep_duty: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retention != (Retention{SweepInterval: 50 * time.Millisecond, SweepDuty: 1}) {
		t.Fatalf("parsed %+v", cfg.Retention)
	}
	_, err = Parse([]byte("retention:\n  max_age: -1h\n  max_per_stream: -1\n  sweep_interval: 0s\n  sweep_duty: 0\n"))
	if err == nil {
		t.Fatal("bad retention accepted")
	}
	for _, want := range []string{"retention.max_age", "retention.max_per_stream", "retention.sweep_interval", "retention.sweep_duty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}
