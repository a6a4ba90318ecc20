package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/secretfile"
)

// SecretKeyFile is where a generated app key is kept, inside storage.dir.
const SecretKeyFile = "secret_key"

// KeySource says where the app key came from, for the start-up log.
type KeySource struct {
	Generated bool   // created now
	Path      string // the key file, when the key lives in one
	FromEnv   bool
}

// ErrNoSecretKey is returned (wrapped) by LoadSecretKey when there is no key
// to load: none in the config or the environment, and no key file.
var ErrNoSecretKey = errors.New("no app secret key")

// SecretKeyPath is the key file for cfg: {storage.dir}/secret_key.
func SecretKeyPath(cfg config.Config) string {
	return filepath.Join(cfg.Storage.Dir, SecretKeyFile)
}

// ResolveSecretKey returns the app's UserSig key. A key in the config (or
// its environment override) wins. Otherwise the key kept in the data dir is
// used, and generated there on first start: there is no shared default
// secret. It finds the key exactly as LoadSecretKey does (which `imbroker
// usersig` uses), so both agree; only the broker creates a key. In cluster
// mode it never generates one: each node would make its own, and a UserSig
// from one node would fail on the others.
func ResolveSecretKey(cfg config.Config) (string, KeySource, error) {
	if cfg.Cluster.Enabled {
		k, src, err := LoadSecretKey(cfg)
		if errors.Is(err, ErrNoSecretKey) {
			return "", KeySource{}, fmt.Errorf("secret key: cluster mode needs the same app.secret_key (or %s) on every node; a generated key would differ per node: %w", config.EnvSecretKey, err)
		}
		return k, src, err
	}
	if cfg.App.SecretKey == "" && cfg.Storage.InMemory {
		k, err := newKey()
		return k, KeySource{Generated: true}, err
	}
	k, src, err := LoadSecretKey(cfg)
	if !errors.Is(err, ErrNoSecretKey) {
		return k, src, err
	}
	path := SecretKeyPath(cfg)
	k, created, err := secretfile.Create(path, 32, minKeyLen)
	if err != nil {
		return "", KeySource{}, fmt.Errorf("secret key: %w", err)
	}
	return k, KeySource{Generated: created, Path: path}, nil
}

// LoadSecretKey returns the app's key as ResolveSecretKey finds it, but never
// creates one: with no key in the config, the environment or the key file it
// returns an error wrapping ErrNoSecretKey. With storage.in_memory the broker
// makes a new key on every start and keeps it nowhere, so there is none to load.
func LoadSecretKey(cfg config.Config) (string, KeySource, error) {
	if cfg.App.SecretKey != "" {
		return cfg.App.SecretKey, KeySource{FromEnv: os.Getenv(config.EnvSecretKey) != ""}, nil
	}
	if cfg.Storage.InMemory {
		return "", KeySource{}, fmt.Errorf("%w: storage.in_memory keeps no key file (the broker makes a new key on every start)", ErrNoSecretKey)
	}
	path := SecretKeyPath(cfg)
	k, err := secretfile.Read(path, minKeyLen)
	if errors.Is(err, fs.ErrNotExist) {
		return "", KeySource{}, fmt.Errorf("%w: no key file %s", ErrNoSecretKey, path)
	}
	if err != nil {
		return "", KeySource{}, fmt.Errorf("read secret key: %w", err)
	}
	return k, KeySource{Path: path}, nil
}

// minKeyLen is the shortest app key accepted from the key file.
const minKeyLen = 16

func newKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret key: %w", err)
	}
	return hex.EncodeToString(b), nil
}
