package peers

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func startLimited(t *testing.T, b *bus, name string, max int, refuse bool) (*Peers, *local) {
	t.Helper()
	l := &local{}
	p, err := Start(Options{Bus: b, Node: name, Interval: 20 * time.Millisecond, Timeout: time.Second,
		Local: l, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxDevices: max, RefuseDevices: refuse})
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

func kicksOf(l *local) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.kicks)
}

// Two logins of one user racing on two nodes, each deciding before it
// hears of the other: once the starts have crossed, exactly one node kicks
// exactly one connection, the same one whichever node learns first.
func TestPeersDeviceLimitRace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse bool
		victim string // "node/kick" of the one kick
	}{
		{"kick_oldest", false, "a/u/u:a/device limit"}, // u:a connected first
		{"refuse", true, "c/u/u:c/device limit"},       // u:c is the login refuse would have refused
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bus{}
			a, al := startLimited(t, b, "a", 1, tc.refuse)
			c, cl := startLimited(t, b, "c", 1, tc.refuse)
			eventually(t, "the nodes know each other", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				c.mu.Lock()
				defer c.mu.Unlock()
				return a.remote["c"] != nil && a.remote["c"].synced && c.remote["a"] != nil && c.remote["a"].synced
			})
			// The starts are lost: neither node sees the other's login
			// when it decides (the widest race); the heartbeats show the
			// gap and the snapshots bring each login to the other node.
			b.setDrop(func(subj string, data []byte) bool { return strings.Contains(string(data), `"Op":"start"`) })
			a.Started("u", "u:a", 100)
			c.Started("u", "u:c", 200)
			if k := append(kicksOf(al), kicksOf(cl)...); len(k) != 0 {
				t.Fatalf("kicked before either node saw the other's login: %v", k)
			}
			b.setDrop(nil)
			eventually(t, "each node sees the other's login", func() bool {
				return devices(a, "u") == "c/u:c" && devices(c, "u") == "a/u:a"
			})
			eventually(t, "the excess kicked", func() bool { return len(kicksOf(al))+len(kicksOf(cl)) > 0 })
			// More heartbeats and snapshots: still the one kick.
			a.mu.Lock()
			a.remote["c"].synced = false
			a.mu.Unlock()
			c.mu.Lock()
			c.remote["a"].synced = false
			c.mu.Unlock()
			eventually(t, "snapshots applied again", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				c.mu.Lock()
				defer c.mu.Unlock()
				return a.remote["c"].synced && c.remote["a"].synced
			})
			var got []string
			for _, k := range kicksOf(al) {
				got = append(got, "a/"+k)
			}
			for _, k := range kicksOf(cl) {
				got = append(got, "c/"+k)
			}
			if !slices.Equal(got, []string{tc.victim}) {
				t.Fatalf("kicks %v, want exactly [%s]", got, tc.victim)
			}
			c.Stop()
			a.Stop()
		})
	}
}
