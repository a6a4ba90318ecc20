package callbacks

import (
	"errors"
	"net/url"
	"sync"
	"time"
)

// recentFailures is how many failed callbacks the console's Settings page
// can show.
const recentFailures = 50

// Failure is one failed callback (a before-callback's, or an
// after-callback's last attempt).
type Failure struct {
	Time    time.Time
	Command string
	Error   string
}

// failures is a ring of the latest Failures.
type failures struct {
	mu   sync.Mutex
	ring []Failure
	next int
}

func (f *failures) add(command string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := Failure{Time: time.Now(), Command: command, Error: redacted(err)}
	if len(f.ring) < recentFailures {
		f.ring = append(f.ring, x)
		return
	}
	f.ring[f.next] = x
	f.next = (f.next + 1) % recentFailures
}

// RecentFailures returns the latest failed callbacks, newest first.
func (c *Client) RecentFailures() []Failure {
	c.recent.mu.Lock()
	defer c.recent.mu.Unlock()
	out := make([]Failure, 0, len(c.recent.ring))
	for i := range c.recent.ring {
		j := (c.recent.next - 1 - i + 2*len(c.recent.ring)) % len(c.recent.ring)
		out = append(out, c.recent.ring[j])
	}
	return out
}

// redacted is err's text without the callback URL's query and user info,
// which may carry the app's credentials (the console shows it).
func redacted(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err.Error()
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return ue.Op + " (callback URL): " + ue.Err.Error()
	}
	u.RawQuery, u.User = "", nil
	return ue.Op + " " + u.String() + ": " + ue.Err.Error()
}
