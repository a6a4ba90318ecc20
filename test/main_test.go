package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// imbrokerBinary builds cmd/imbroker once per test run, for tests that need
// a real process (signals, kill -9, subcommands).
func imbrokerBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "imbroker-bin-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "imbroker")
		out, err := exec.Command("go", "build", "-race", "-o", binary.path, "../cmd/imbroker").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// TestMain fails the package if any goroutine outlives the tests: every
// broker is shut down and every client disconnected by then.
func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
