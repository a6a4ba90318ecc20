package test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fdConfig writes a config for a child broker under a small open-file
// limit: idle connections are not timed out during the test.
func fdConfig(t *testing.T, dir, mqttKeys string) string {
	t.Helper()
	return writeConfigWith(t, dir, "  fd_reserve: 64\n  connect_timeout: 2m\n"+mqttKeys, "  read_timeout: 2m\n", "")
}

// underFileLimit runs imbroker with args under an open-file limit of n
// (soft and hard), through sh's ulimit.
func underFileLimit(t *testing.T, n string, args ...string) *exec.Cmd {
	if runtime.GOOS != "linux" {
		t.Skip("open-file limits are handled on Linux only")
	}
	cmd := exec.Command("sh", append([]string{"-c", `ulimit -n ` + n + ` && exec "$0" "$@"`, imbrokerBinary(t)}, args...)...)
	cmd.Env = append(os.Environ(), "IMBROKER_SECRET_KEY="+TestKey)
	return cmd
}

// logWhere returns the first log line for which match is true, or nil.
func (p *proc) logWhere(match func(map[string]any) bool) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if match(l) {
			return l
		}
	}
	return nil
}

// Out of file descriptors, the listeners keep accepting: idle connections
// fill the process's open-file limit through the HTTP port, one more MQTT
// connection makes the MQTT accept fail with "too many open files" (logged),
// and once the idle connections are gone MQTT logins work again and
// /readyz is ready. mochi's own listener stopped for good at the first
// accept error (issue 14).
func TestE2E_ProcessSurvivesFDExhaustion(t *testing.T) {
	dir := t.TempDir()
	p := startCmd(t, underFileLimit(t, "256", "-config", fdConfig(t, dir, "")))
	lim := p.logWhere(func(l map[string]any) bool { return l["msg"] == "open-file limit" })
	if lim == nil || lim["limit"] != 256.0 || lim["max_clients"] != 192.0 {
		t.Fatalf("open-file limit line %v, want limit 256 and max_clients 256-64", lim)
	}
	retrying := func(listener string) bool {
		return p.logWhere(func(l map[string]any) bool {
			return l["msg"] == "accept failed; retrying" && l["listener"] == listener &&
				strings.Contains(l["error"].(string), "too many open files")
		}) != nil
	}

	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !retrying("http") {
		if time.Now().After(deadline) || len(idle) > 1000 {
			t.Fatalf("no accept failure logged for http after %d idle connections: %s", len(idle), p.logText())
		}
		c, err := net.DialTimeout("tcp", p.addrs["http"], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// The process is out of descriptors: an MQTT connection waits in the
	// backlog and the MQTT listener's accept fails too.
	c, err := net.DialTimeout("tcp", p.addrs["tcp"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	idle = append(idle, c)
	for !retrying("tcp") {
		if time.Now().After(deadline) {
			t.Fatalf("no accept failure logged for tcp: %s", p.logText())
		}
		c, err := net.DialTimeout("tcp", p.addrs["tcp"], 5*time.Second) // each dial is one more failed accept
		if err != nil {
			t.Fatalf("%d idle: %v; %s", len(idle), err, p.logText())
		}
		idle = append(idle, c)
	}
	for _, c := range idle {
		c.Close()
	}
	idle = nil

	b := p.broker(t, TestKey)
	b.Accounts("bob") // bob logs in once: an account
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", Text("after exhaustion", Random()))
	alice.NextEvent()
	resp, err := http.Get("http://" + p.addrs["http"] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d after recovery", resp.StatusCode)
	}
}

// A max_clients the open-file limit cannot hold refuses to start, saying
// which limit and what to do.
func TestE2E_ProcessRefusesMaxClientsOverFileLimit(t *testing.T) {
	dir := t.TempDir()
	out, err := underFileLimit(t, "256", "-config", fdConfig(t, dir, "  max_clients: 1000\n")).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want code 1: %s", err, out)
	}
	for _, want := range []string{"start failed", "mqtt.max_clients 1000", "the limit is 256"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q: %s", want, out)
		}
	}
}

// With the default max_clients (0) a hard limit below mqtt.fd_reserve, as
// some hosts give (1024), does not stop the broker: it keeps a quarter of the
// limit for the store and HTTP, warns, and serves.
func TestE2E_ProcessStartsUnderSmallFileLimit(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfigWith(t, dir, "", "", "")
	p := startCmd(t, underFileLimit(t, "1024", "-config", cfg))
	warn := p.logWhere(func(l map[string]any) bool {
		return l["level"] == "WARN" && strings.HasPrefix(l["msg"].(string), "open-file limit is below mqtt.fd_reserve")
	})
	if warn == nil || warn["max_clients"] != 768.0 {
		t.Fatalf("warning %v, want max_clients 768 (1024 less a quarter)", warn)
	}
	resp, err := http.Get("http://" + p.addrs["http"] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d, want 200", resp.StatusCode)
	}
}
