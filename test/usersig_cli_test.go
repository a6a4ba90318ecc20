package test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/usersig"
)

// runUsersig runs `imbroker usersig args...` in dir with env added to the
// environment, and returns its stdout, stderr and exit code.
func runUsersig(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(imbrokerBinary(t), append([]string{"usersig"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run usersig: %v", err)
	}
	return out.String(), errb.String(), code
}

// dirEntries lists dir, for checking that usersig wrote nothing.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

var noEnvKey = []string{"IMBROKER_SECRET_KEY="}

// Without a key, usersig creates nothing and says where it looked (absolute
// paths) and how to point it at the broker's config or data dir.
func TestE2E_UsersigNoKeyCreatesNothing(t *testing.T) {
	t.Run("default config absent", func(t *testing.T) {
		dir := t.TempDir()
		out, msg, code := runUsersig(t, dir, noEnvKey, "-user", "alice")
		if code != 1 || out != "" {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, msg)
		}
		wants := []string{
			filepath.Join(dir, "config.yaml"), filepath.Join(dir, "data", "secret_key"),
			"IMBROKER_SECRET_KEY", "never creates", "-config path/to/config.yaml", "-data path/to/data",
		}
		for _, want := range wants {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Fatalf("usersig created %v in its directory", names)
		}
	})
	t.Run("config given, key file absent", func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := writeConfig(t, dir, "")
		cwd := t.TempDir()
		_, msg, code := runUsersig(t, cwd, noEnvKey, "-config", cfgPath, "-user", "alice")
		if code != 1 {
			t.Fatalf("exit %d, stderr:\n%s", code, msg)
		}
		for _, want := range []string{cfgPath, filepath.Join(dir, "data", "secret_key")} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("data dir created: %v", err)
		}
		if names := dirEntries(t, cwd); len(names) != 0 {
			t.Fatalf("usersig created %v in its directory", names)
		}
	})
	t.Run("data dir given, empty", func(t *testing.T) {
		dir := t.TempDir()
		_, msg, code := runUsersig(t, t.TempDir(), noEnvKey, "-data", dir, "-user", "alice")
		if code != 1 || !strings.Contains(msg, filepath.Join(dir, "secret_key")) {
			t.Fatalf("exit %d, stderr:\n%s", code, msg)
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Fatalf("usersig created %v in the data dir", names)
		}
	})
}

func TestE2E_UsersigUsageErrors(t *testing.T) {
	withKey := []string{"IMBROKER_SECRET_KEY=" + TestKey}
	dir := t.TempDir()

	out, msg, code := runUsersig(t, dir, withKey, "-user", "bad/user")
	if code == 0 || out != "" || !strings.Contains(msg, `invalid UserID "bad/user"`) {
		t.Errorf("bad/user: exit %d, stdout %q, stderr:\n%s", code, out, msg)
	}
	long := strings.Repeat("a", 33)
	if out, msg, code := runUsersig(t, dir, withKey, "-user", long); code == 0 || out != "" || !strings.Contains(msg, "invalid UserID") {
		t.Errorf("33-byte UserID: exit %d, stdout %q, stderr:\n%s", code, out, msg)
	}

	out, msg, code = runUsersig(t, dir, withKey)
	if code == 0 || out != "" || !strings.Contains(msg, "-user is required") || strings.Contains(msg, "usersig: usersig:") {
		t.Errorf("no -user: exit %d, stdout %q, stderr:\n%s", code, out, msg)
	}

	out, msg, code = runUsersig(t, dir, nil, "-h")
	if code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	help := out + msg
	for _, want := range []string{"imbroker usersig", "-user", "-expire", "-config", "-data"} {
		if !strings.Contains(help, want) {
			t.Errorf("usersig -h lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "-check-config") {
		t.Errorf("usersig -h prints the top-level usage:\n%s", help)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Fatalf("usersig created %v in its directory", names)
	}
}

// With a key in the data dir, usersig run from elsewhere signs with it,
// whether pointed at the config or at the data dir.
func TestE2E_UsersigFromAnotherDirectory(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	const key = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(filepath.Join(data, "secret_key"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, dir, "")
	cwd := t.TempDir()
	for _, args := range [][]string{{"-config", cfgPath}, {"-data", data}} {
		out, msg, code := runUsersig(t, cwd, noEnvKey, append(args, "-user", "alice", "-expire", "600")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, msg)
		}
		if _, err := usersig.New(1400000000, key).Verify("alice", strings.TrimSpace(out), time.Now()); err != nil {
			t.Fatalf("%v: sig not made with the key file: %v", args, err)
		}
	}
	if names := dirEntries(t, cwd); len(names) != 0 {
		t.Fatalf("usersig created %v in its directory", names)
	}
}
