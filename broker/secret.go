package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imbroker/imbroker/config"
)

// SecretKeyFile is where a generated app key is kept, inside storage.dir.
const SecretKeyFile = "secret_key"

// KeySource says where the app key came from, for the start-up log.
type KeySource struct {
	Generated bool   // created now
	Path      string // the key file, when the key lives in one
	FromEnv   bool
}

// ResolveSecretKey returns the app's UserSig key. A key in the config (or
// its environment override) wins. Otherwise the key kept in the data dir is
// used, and generated there on first start: there is no shared default
// secret. `imbroker usersig` uses this same function, so both agree.
func ResolveSecretKey(cfg config.Config) (string, KeySource, error) {
	if cfg.App.SecretKey != "" {
		return cfg.App.SecretKey, KeySource{FromEnv: os.Getenv(config.EnvSecretKey) != ""}, nil
	}
	if cfg.Storage.InMemory {
		k, err := newKey()
		return k, KeySource{Generated: true}, err
	}
	path := filepath.Join(cfg.Storage.Dir, SecretKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if len(k) < 16 {
			return "", KeySource{}, fmt.Errorf("secret key in %s is shorter than 16 bytes", path)
		}
		return k, KeySource{Path: path}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", KeySource{}, fmt.Errorf("read secret key: %w", err)
	}
	k, err := newKey()
	if err != nil {
		return "", KeySource{}, err
	}
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		return "", KeySource{}, fmt.Errorf("create data dir: %w", err)
	}
	// O_EXCL: if two processes race on first start, one key wins and the
	// loser reads it instead of overwriting it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ResolveSecretKey(cfg)
	}
	if err != nil {
		return "", KeySource{}, fmt.Errorf("write secret key: %w", err)
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return "", KeySource{}, fmt.Errorf("write secret key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", KeySource{}, fmt.Errorf("sync secret key: %w", err)
	}
	return k, KeySource{Generated: true, Path: path}, f.Close()
}

func newKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret key: %w", err)
	}
	return hex.EncodeToString(b), nil
}
