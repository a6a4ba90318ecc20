package test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli is examples/chatcli running as a child process.
type cli struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// buildChatcli builds the example into dir.
func buildChatcli(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "chatcli")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/chatcli").CombinedOutput(); err != nil {
		t.Fatalf("go build chatcli: %v\n%s", err, out)
	}
	return bin
}

func startCLI(t *testing.T, bin, dir string, args ...string) *cli {
	t.Helper()
	c := &cli{t: t, name: strings.Join(args, " "), cmd: exec.Command(bin, args...), lines: make(chan string, 1000)}
	c.cmd.Dir = dir
	c.cmd.Stderr = os.Stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			for range c.lines {
			}
			_ = c.cmd.Wait()
		}
	})
	return c
}

// expect reads stdout lines until one contains want, and returns the lines
// read before it.
func (c *cli) expect(want string) []string {
	c.t.Helper()
	var before []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("chatcli exited before %q; it printed %q", want, before)
			}
			if strings.Contains(l, want) {
				return before
			}
			before = append(before, l)
		case <-deadline:
			c.t.Fatalf("chatcli: no %q within 10s; it printed %q", want, before)
		}
	}
}

func (c *cli) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// quit sends "quit" and waits for a clean exit.
func (c *cli) quit() {
	c.t.Helper()
	c.send("quit")
	var rest []string
	for l := range c.lines {
		rest = append(rest, l)
	}
	if err := c.cmd.Wait(); err != nil {
		c.t.Fatalf("chatcli exit: %v (printed %q)", err, rest)
	}
}

// TestChatcliCatchUp runs examples/chatcli for real: bob is offline while
// alice sends three messages with it; bob's chatcli then prints all three
// from sync, and a fourth one live. A second run of bob's chatcli catches up
// from its state file: nothing is replayed again.
func TestChatcliCatchUp(t *testing.T) {
	b := StartBroker(t)
	b.importAccounts("bob") // as the README's quick start does
	dir := t.TempDir()
	bin := buildChatcli(t, dir)
	url := "tcp://" + b.MQTTAddr()

	alice := startCLI(t, bin, dir, "-broker", url, "-user", "alice", "-sig", b.Sig("alice"))
	alice.expect("caught up at Seq 0")
	for _, m := range []string{"one", "two", "three"} {
		alice.send("send bob " + m + " from alice")
		alice.expect("sent to bob") // PUBACK: stored
	}

	sigFile := filepath.Join(dir, "bob.sig")
	if err := os.WriteFile(sigFile, []byte(b.Sig("bob")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bob := startCLI(t, bin, dir, "-broker", url, "-user", "bob", "-sig-file", sigFile, "-device", "laptop")
	got := bob.expect("caught up at Seq 3")
	want := []string{
		"[sync #1] alice -> bob: one from alice",
		"[sync #2] alice -> bob: two from alice",
		"[sync #3] alice -> bob: three from alice",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("bob's catch-up printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	alice.send("send bob four, live")
	alice.expect("sent to bob")
	if got := bob.expect("[live #4] alice -> bob: four, live"); len(got) != 0 {
		t.Fatalf("bob printed %q before the live message", got)
	}
	bob.send("send alice got them")
	bob.expect("sent to alice")
	bob.expect("[live #5] bob -> alice: got them")   // the sent copy on bob's own stream
	alice.expect("[live #5] bob -> alice: got them") // alice: 4 sent copies, then this
	bob.quit()

	// The state file holds where bob stopped: a second run replays nothing.
	again := startCLI(t, bin, dir, "-broker", url, "-user", "bob", "-sig-file", sigFile, "-device", "laptop")
	if got := again.expect("caught up at Seq 5"); len(got) != 0 {
		t.Fatalf("second run replayed %q", got)
	}
	again.quit()

	// -since overrides the state file.
	from := startCLI(t, bin, dir, "-broker", url, "-user", "bob", "-sig-file", sigFile, "-device", "phone", "-since", "3")
	if got := from.expect("caught up at Seq 5"); len(got) != 2 || got[0] != "[sync #4] alice -> bob: four, live" {
		t.Fatalf("-since 3 replayed %q", got)
	}
	from.quit()
	alice.quit()
}
