// Package secretfile keeps a secret the broker generates itself (the app
// key, the console password) in a file of the data dir: created once with
// mode 0600 and read back on every later start.
package secretfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Read returns the secret kept at path, trimmed. With no file it returns an
// error wrapping fs.ErrNotExist; a secret shorter than minLen is an error.
func Read(path string, minLen int) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if len(s) < minLen {
		return "", fmt.Errorf("the secret in %s is shorter than %d bytes", path, minLen)
	}
	return s, nil
}

// Create returns the secret kept at path (at least minLen bytes), first
// writing a new one there (n random bytes, hex) when there is none,
// creating path's directory. It
// reports whether it wrote the secret now. The file is created with
// O_EXCL, so two processes racing on a first start agree on one secret.
func Create(path string, n, minLen int) (secret string, created bool, err error) {
	s, err := Read(path, minLen)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("generate secret: %w", err)
	}
	s = hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		s, err := Read(path, minLen)
		return s, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, fmt.Errorf("sync %s: %w", path, err)
	}
	return s, true, f.Close()
}
