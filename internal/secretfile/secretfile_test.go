package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateOnceThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "secret")
	if _, err := Read(path, 8); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of no file: %v, want fs.ErrNotExist", err)
	}
	s, created, err := Create(path, 16, 32)
	if err != nil || !created || len(s) != 32 {
		t.Fatalf("Create: %q %v %v", s, created, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	again, created, err := Create(path, 16, 32)
	if err != nil || created || again != s {
		t.Fatalf("second Create: %q %v %v, want the first secret kept", again, created, err)
	}
	if got, err := Read(path, 32); err != nil || got != s {
		t.Fatalf("Read: %q %v", got, err)
	}
}

func TestReadRefusesShortSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, err := Read(path, 16); err == nil {
		t.Fatal("a 5-byte secret was accepted with minimum 16")
	}
	if _, _, err := Create(path, 16, 16); err == nil {
		t.Fatal("Create returned a short existing secret instead of an error")
	}
}
