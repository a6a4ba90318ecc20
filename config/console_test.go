package config

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_Console(t *testing.T) {
	t.Setenv(EnvSecretKey, "")
	t.Setenv(EnvConsolePassword, "")
	d := Default()
	if !d.Console.Enabled || d.Console.Password != "" || d.Console.SessionTTL != 8*time.Hour || d.Console.SignInFailures != 5 ||
		d.Stats.Interval != 10*time.Second || d.Stats.KeepDays != 400 {
		t.Fatalf("defaults %+v %+v", d.Console, d.Stats)
	}
	_, err := Parse([]byte("console:\n  password: short\n  session_ttl: 0s\n  sign_in_failures: 0\nstats:\n  interval: 0s\n  keep_days: 89\n"))
	if err == nil {
		t.Fatal("bad console settings accepted")
	}
	for _, want := range []string{"console.password: must be at least 12 bytes", "console.session_ttl", "console.sign_in_failures",
		"stats.interval", "stats.keep_days: must be at least 90"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	t.Setenv(EnvConsolePassword, "from-the-environment")
	cfg, err := Parse([]byte("console:\n  password: from-the-config-file\n"))
	if err != nil || cfg.Console.Password != "from-the-environment" {
		t.Fatalf("environment override: %q %v", cfg.Console.Password, err)
	}
}
