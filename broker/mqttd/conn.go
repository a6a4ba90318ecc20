package mqttd

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// conn is the state of one user connection on the broker's side: its device
// record and its pipelined PUBACKs. It is created once, when its session
// starts (or, under devices.on_exceed: refuse, when auth reserves its device
// slot, and adopted when the session starts), and removed in one place,
// conns.drop, when the connection ends. Guests, anonymous clients and the
// inline client have none: they send no IM messages and are not devices.
//
// mochi's own per-connection tables stay in their hooks: hooks/auth's
// "passed" set (OnConnect to OnConnectAuthenticate) and mochifix's topic
// aliases and attach waits, each cleaned up by that hook's OnDisconnect.
type conn struct {
	cl          *mqtt.Client
	user        string
	connectedAt time.Time
	order       uint64                       // login order, strictly increasing: defines "oldest" (clock readings can tie)
	acks        ackPipe                      // PUBACKs of pipelined sends, in receive order (acks.go)
	reqs        atomic.Pointer[rate.Limiter] // im/req requests (mqtt.req_rate), made by the first request
}

// reqLimiter returns c's im/req token bucket, making it on first use.
func (c *conn) reqLimiter(perSecond, burst int) *rate.Limiter {
	if l := c.reqs.Load(); l != nil {
		return l
	}
	c.reqs.CompareAndSwap(nil, rate.NewLimiter(rate.Limit(perSecond), burst))
	return c.reqs.Load()
}

// conns holds every conn, by client for the publish path (a lock-free read
// per publish) and by user and ClientID for the device policy, presence and
// kicks [IM-DEVICES].
type conns struct {
	byClient sync.Map // *mqtt.Client -> *conn: sessions started, not yet ended

	mu    sync.Mutex
	users map[string]map[string]*conn // user -> ClientID -> the connection holding it
	next  uint64
	// lost holds the started conns live dropped, for unlock to hand to
	// ended: whoever takes a conn out of byClient announces its end, once.
	lost  []*conn
	ended func(*conn) // called holding nothing (conns.mu is a leaf)
}

// of returns cl's conn, or nil (no session, or not a user).
func (cs *conns) of(cl *mqtt.Client) *conn {
	if c, ok := cs.byClient.Load(cl); ok {
		return c.(*conn)
	}
	return nil
}

// live returns user's connections that are still open, dropping closed
// ones: mochi fires no OnDisconnect for a connection that failed between
// auth and its CONNACK write (v2.7.9, attachClient returns early). Called
// with cs.mu held.
func (cs *conns) live(user string) map[string]*conn {
	m := cs.users[user]
	for id, c := range m {
		if c.cl.Closed() {
			delete(m, id)
			// A closed connection's session may not have ended yet (a kick
			// closes it before mochi runs OnDisconnect), or never will: its
			// end is announced here then, as SessionEnded will not find it.
			if cs.byClient.CompareAndDelete(c.cl, c) {
				cs.lost = append(cs.lost, c)
			}
		}
	}
	if len(m) == 0 {
		delete(cs.users, user)
		return nil
	}
	return m
}

// unlock releases cs.mu, then hands the conns live dropped to ended.
func (cs *conns) unlock() {
	lost := cs.lost
	cs.lost = nil
	cs.mu.Unlock()
	for _, c := range lost {
		if cs.ended != nil {
			cs.ended(c)
		}
	}
}

// put returns cl's conn, creating it as the holder of its ClientID, which
// replaces (takes over) any older one. Called with cs.mu held.
func (cs *conns) put(user string, cl *mqtt.Client) *conn {
	m := cs.users[user]
	if m == nil {
		if cs.users == nil {
			cs.users = map[string]map[string]*conn{}
		}
		m = map[string]*conn{}
		cs.users[user] = m
	}
	if c, ok := m[cl.ID]; ok && c.cl == cl {
		return c // reserved at auth time already
	}
	cs.next++
	c := &conn{cl: cl, user: user, connectedAt: time.Now(), order: cs.next}
	m[cl.ID] = c
	return c
}

// reserve is the refuse policy's check at authentication time: it admits cl
// and records it in the same critical section, so two logins racing for the
// last slot cannot both pass. A takeover (cl's ClientID is already online)
// is always admitted and recorded when its session starts.
func (cs *conns) reserve(user string, cl *mqtt.Client, max int) (online int, ok bool) {
	cs.mu.Lock()
	defer cs.unlock()
	m := cs.live(user)
	if _, takeover := m[cl.ID]; takeover {
		return len(m), true
	}
	if len(m) >= max {
		return len(m), false
	}
	cs.put(user, cl)
	return len(m), true
}

// start records cl's session: its conn becomes findable by client and, when
// kick is set and the user now has more than max connections, the oldest
// other ones are removed from the user's devices and returned, to be kicked.
func (cs *conns) start(user string, cl *mqtt.Client, max int, kick bool) (*conn, []*conn) {
	cs.mu.Lock()
	defer cs.unlock()
	cs.live(user)
	c := cs.put(user, cl)
	cs.byClient.Store(cl, c)
	m := cs.users[user]
	if !kick || max <= 0 || len(m) <= max {
		return c, nil
	}
	others := make([]*conn, 0, len(m)-1)
	for id, o := range m {
		if id != cl.ID {
			others = append(others, o)
		}
	}
	slices.SortFunc(others, func(a, b *conn) int { return cmp.Compare(a.order, b.order) })
	victims := others[:len(m)-max]
	for _, v := range victims {
		delete(m, v.cl.ID)
	}
	return c, victims
}

// drop is the one cleanup of a connection that ended, taken over included;
// it returns the conn, or nil when cl had none.
// Its ClientID stays with a newer connection that holds it by now (the old
// connection of a takeover ending late, #173). An ack writer still running
// keeps its pipe and finishes (Server.pipelined).
func (cs *conns) drop(cl *mqtt.Client) *conn {
	v, ok := cs.byClient.LoadAndDelete(cl)
	if !ok {
		return nil
	}
	c := v.(*conn)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if m := cs.users[c.user]; m[cl.ID] == c {
		delete(m, cl.ID)
		if len(m) == 0 {
			delete(cs.users, c.user)
		}
	}
	return c
}

// list returns user's open connections' ClientIDs, oldest first.
func (cs *conns) list(user string) []string {
	all := cs.conns(user)
	ids := make([]string, len(all))
	for i, c := range all {
		ids[i] = c.cl.ID
	}
	return ids
}

// conns returns user's open connections, oldest first.
func (cs *conns) conns(user string) []*conn {
	cs.mu.Lock()
	defer cs.unlock()
	m := cs.live(user)
	all := make([]*conn, 0, len(m))
	for _, c := range m {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b *conn) int { return cmp.Compare(a.order, b.order) })
	return all
}

// forget removes c from user's devices (a device kicked: it no longer
// counts while it closes) and reports whether it was there.
func (cs *conns) forget(user string, c *conn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	m := cs.users[user]
	if m[c.cl.ID] != c {
		return false
	}
	delete(m, c.cl.ID)
	return true
}

// online counts the users with an open connection and their connections.
func (cs *conns) online() (users, conns int) {
	cs.mu.Lock()
	defer cs.unlock()
	for user := range cs.users {
		if n := len(cs.live(user)); n > 0 {
			users++
			conns += n
		}
	}
	return users, conns
}
