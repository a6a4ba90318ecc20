package broker

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
)

func keyTestConfig(t *testing.T) config.Config {
	t.Helper()
	t.Setenv(config.EnvSecretKey, "")
	cfg := config.Default()
	cfg.Storage.Dir = filepath.Join(t.TempDir(), "data")
	return cfg
}

// LoadSecretKey never creates a key or the data dir; ResolveSecretKey (the
// broker) creates the key file on first start, and then both return it.
func TestLoadSecretKeyNeverCreates(t *testing.T) {
	cfg := keyTestConfig(t)
	_, _, err := LoadSecretKey(cfg)
	if !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("no key: err %v, want ErrNoSecretKey", err)
	}
	if _, err := os.Stat(cfg.Storage.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadSecretKey touched the data dir: %v", err)
	}
	key, src, err := ResolveSecretKey(cfg)
	if err != nil || !src.Generated || src.Path != SecretKeyPath(cfg) {
		t.Fatalf("ResolveSecretKey: %v %+v", err, src)
	}
	got, src, err := LoadSecretKey(cfg)
	if err != nil || got != key || src.Generated || src.Path != SecretKeyPath(cfg) {
		t.Fatalf("LoadSecretKey after start: %q %+v %v, want %q", got, src, err, key)
	}
	again, src, err := ResolveSecretKey(cfg)
	if err != nil || again != key || src.Generated {
		t.Fatalf("second start: %q %+v %v", again, src, err)
	}
}

func TestLoadSecretKeySources(t *testing.T) {
	cfg := keyTestConfig(t)
	cfg.App.SecretKey = "configured-secret-key-0123"
	if k, _, err := LoadSecretKey(cfg); err != nil || k != cfg.App.SecretKey {
		t.Fatalf("config key: %q %v", k, err)
	}

	cfg = keyTestConfig(t)
	cfg.Storage.InMemory = true
	if _, _, err := LoadSecretKey(cfg); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("in-memory: %v, want ErrNoSecretKey", err)
	}

	cfg = keyTestConfig(t)
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SecretKeyPath(cfg), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSecretKey(cfg); err == nil || errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("short key file: %v, want a refusal", err)
	}
	if _, _, err := ResolveSecretKey(cfg); err == nil {
		t.Fatal("broker accepted a short key file")
	}
}

// Cluster mode refuses to generate a key (every node must share one) and
// takes a configured one.
func TestSecretKey_ClusterRefusesGenerated(t *testing.T) {
	t.Setenv(config.EnvSecretKey, "")
	cfg := keyTestConfig(t)
	cfg.Cluster.Enabled = true
	_, _, err := ResolveSecretKey(cfg)
	if !errors.Is(err, ErrNoSecretKey) || !strings.Contains(err.Error(), "cluster mode") {
		t.Fatalf("cluster without a key: %v", err)
	}
	if _, err := os.Stat(SecretKeyPath(cfg)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a key file was written: %v", err)
	}
	cfg.Storage.InMemory = true
	if _, _, err := ResolveSecretKey(cfg); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("cluster in memory without a key: %v", err)
	}
	cfg.App.SecretKey = "shared-cluster-secret-key"
	if k, _, err := ResolveSecretKey(cfg); err != nil || k != cfg.App.SecretKey {
		t.Fatalf("configured key: %q %v", k, err)
	}
}
