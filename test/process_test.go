package test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/imbroker/imbroker/internal/usersig"
)

// proc is imbroker running as a child process.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	addrs map[string]string
	done  chan struct{}
}

// writeConfig writes a config file for a process test into dir.
func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	return writeConfigWith(t, dir, "", "", extra)
}

// writeConfigWith is writeConfig with more keys under mqtt: and http:
// (each line indented by two spaces, ending in a newline).
func writeConfigWith(t *testing.T, dir, mqttKeys, httpKeys, extra string) string {
	t.Helper()
	cfg := `app:
  sdk_app_id: 1400000000
mqtt:
  tcp: "127.0.0.1:0"
  ws: "127.0.0.1:0"
` + mqttKeys + `http:
  address: "127.0.0.1:0"
` + httpKeys + `storage:
  dir: "` + filepath.Join(dir, "data") + `"
log:
  format: json
  level: info
` + extra
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startProc runs the binary with args and the test key in its environment,
// and waits until its listeners are up.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, []string{"IMBROKER_SECRET_KEY=" + TestKey}, args...)
}

func startProcEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(imbrokerBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, cmd)
}

// startCmd runs cmd, which runs imbroker (maybe through a wrapper), and
// waits until its listeners are up.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, cmd: cmd, addrs: map[string]string{}, done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go p.readLog(stderr, ready)
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
			_ = p.cmd.Wait()
		}
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("imbroker exited during start-up: %v", p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("imbroker not ready: %v", p.logText())
	}
	return p
}

func (p *proc) readLog(r io.Reader, ready chan struct{}) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	signalled := false
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			m = map[string]any{"msg": sc.Text()}
		}
		p.mu.Lock()
		p.lines = append(p.lines, m)
		switch m["msg"] {
		case "mqtt listener started":
			p.addrs[m["listener"].(string)] = m["address"].(string)
		case "http listener started":
			p.addrs["http"] = m["address"].(string)
		}
		if !signalled && p.addrs["tcp"] != "" && p.addrs["ws"] != "" && p.addrs["http"] != "" {
			signalled = true
			close(ready)
		}
		p.mu.Unlock()
	}
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, _ := json.Marshal(p.lines)
	return string(b)
}

func (p *proc) hasLog(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("imbroker did not exit")
	}
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return 0
}

// broker returns a harness view of the process for connecting clients,
// signing UserSigs with key.
func (p *proc) broker(t *testing.T, key string) *Broker {
	cfg := TestConfig(t)
	return &Broker{Cfg: cfg, tb: t, Signer: usersig.New(cfg.App.SDKAppID, key), tcp: p.addrs["tcp"], ws: p.addrs["ws"], http: p.addrs["http"]}
}

func TestE2E_ProcessGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, "-config", writeConfig(t, dir, ""))
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + p.addrs["http"] + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	b := p.broker(t, TestKey)
	disc := make(chan byte, 1)
	_, ca := connect5With(t, b, "alice", "alice", b.Sig("alice"), func(cc *paho5.ClientConfig) {
		cc.OnServerDisconnect = func(d *paho5.Disconnect) { disc <- d.ReasonCode }
	})
	if ca.ReasonCode != 0 {
		t.Fatalf("connack 0x%02x", ca.ReasonCode)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-disc:
		if code != 0x8B { // server shutting down
			t.Fatalf("DISCONNECT reason 0x%02x, want 0x8B", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no DISCONNECT before shutdown")
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.logText())
	}
	if !p.hasLog("stopped") {
		t.Fatalf("no clean stop logged: %s", p.logText())
	}
}

func TestE2E_ProcessCheckConfigAndUsersig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("mqtt:\n  tcp: nonsense\n  bogus: 1\nlog:\n  level: loud\n"), 0o600)
	out, err := exec.Command(imbrokerBinary(t), "-config", bad, "-check-config").CombinedOutput()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"mqtt.tcp", "bogus", "log.level"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
	good := writeConfig(t, dir, "")
	if out, err := exec.Command(imbrokerBinary(t), "-config", good, "-check-config").CombinedOutput(); err != nil {
		t.Fatalf("good config refused: %v %s", err, out)
	}
}

// -check-config names the key path of every problem, with a hint, and exits 2.
func TestE2E_ProcessCheckConfigNamesKeyPaths(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("mqtt:\n  tcp: \":1883\"\n  ws: \":1883\"\n  anonymus: true\nretention:\n  max_age: 7d\n"), 0o600)
	cmd := exec.Command(imbrokerBinary(t), "-config", bad, "-check-config")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("exit code %d (%v), want 2:\n%s", code, err, out)
	}
	for _, want := range []string{
		"config has 3 problem(s)",
		`mqtt.anonymus: unknown key (did you mean "anonymous"?) (line 4)`,
		`retention.max_age: "7d" is not a duration: write it like 168h, 90m or 30s (units ns, us, ms, s, m, h) (line 6)`,
		`mqtt.ws: ":1883" uses the same port as mqtt.tcp (":1883")`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
	for _, internal := range []string{"config.MQTT", "time.Duration", "!!str"} {
		if strings.Contains(string(out), internal) {
			t.Errorf("check-config output shows decoder internals %q:\n%s", internal, out)
		}
	}
}

func TestE2E_ProcessGeneratesKeyAndUsersigUsesIt(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	env := []string{"IMBROKER_SECRET_KEY="}
	p := startProcEnv(t, env, "-config", cfgPath)
	keyFile := filepath.Join(dir, "data", "secret_key")
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if !strings.Contains(p.logText(), keyFile) {
		t.Fatalf("log does not say where the key is: %s", p.logText())
	}
	cmd := exec.Command(imbrokerBinary(t), "usersig", "-config", cfgPath, "-user", "alice", "-expire", "600")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("usersig: %v", err)
	}
	sig := strings.TrimSpace(string(out))
	b := p.broker(t, "unused")
	_, ca := connect5(t, b, "alice", "alice", sig)
	if ca.ReasonCode != 0 {
		t.Fatalf("sig from `imbroker usersig` refused: 0x%02x", ca.ReasonCode)
	}
	key, _ := os.ReadFile(keyFile)
	if _, err := usersig.New(1400000000, strings.TrimSpace(string(key))).Verify("alice", sig, time.Now()); err != nil {
		t.Fatalf("sig not made with the stored key: %v", err)
	}
	// From another directory, pointed at the broker's data dir: the same key,
	// and nothing created where it ran.
	cwd := t.TempDir()
	out2, msg, code := runUsersig(t, cwd, env, "-data", filepath.Join(dir, "data"), "-user", "bob")
	if code != 0 {
		t.Fatalf("usersig -data: exit %d: %s", code, msg)
	}
	if _, ca := connect5(t, b, "bob", "bob", strings.TrimSpace(out2)); ca.ReasonCode != 0 {
		t.Fatalf("sig from `imbroker usersig -data` refused: 0x%02x", ca.ReasonCode)
	}
	if names := dirEntries(t, cwd); len(names) != 0 {
		t.Fatalf("usersig created %v in its directory", names)
	}
}
