package peers

import (
	"encoding/json"
	"time"
)

// Started announces a connection of user holding clientID on this node,
// connected at at (unix nanoseconds); the node holding the same ClientID
// elsewhere kicks its older connection (0x8E). The user's connections
// past the device limit over every node that this node holds are kicked
// (limit.go): the new one itself, if it is the oldest.
func (p *Peers) Started(user, clientID string, at int64) {
	p.mu.Lock()
	kicks := p.startedLocked(user, clientID, at)
	p.mu.Unlock()
	p.kickExcess(kicks)
}

func (p *Peers) startedLocked(user, clientID string, at int64) []kick {
	m := p.local[user]
	if m == nil {
		m = map[string]int64{}
		p.local[user] = m
	}
	m[clientID] = at
	p.seq++
	p.publishPresence(presenceMsg{Op: opStart, Seq: p.seq, User: user, ClientID: clientID, At: at})
	p.markLocked(user)
	return p.excessLocked(user)
}

// Ended announces the end of the connection Started with the same at; a
// later connection of the same ClientID on this node (a takeover) stays.
func (p *Peers) Ended(user, clientID string, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.local[user]
	if got, ok := m[clientID]; !ok || got != at {
		return
	}
	delete(m, clientID)
	if len(m) == 0 {
		delete(p.local, user)
	}
	delete(p.kicked, user+"\x00"+clientID)
	p.seq++
	p.publishPresence(presenceMsg{Op: opEnd, Seq: p.seq, User: user, ClientID: clientID, At: at})
	p.markLocked(user)
}

// Recheck queues every user online on any node for Changed: a node that
// just became the owner announces the states its predecessor may have
// missed (the check writes only where the state differs).
func (p *Peers) Recheck() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for u := range p.local {
		p.markLocked(u)
	}
	for _, v := range p.remote {
		for u := range v.users {
			p.markLocked(u)
		}
	}
}

// Devices lists user's connections on the other nodes, in no order.
func (p *Peers) Devices(user string) []Device {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Device
	for node, v := range p.remote {
		for id, at := range v.users[user] {
			out = append(out, Device{Node: node, ClientID: id, At: at})
		}
	}
	return out
}

// Users lists the users with a connection on another node, in no order
// (a user on several nodes once).
func (p *Peers) Users() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, v := range p.remote {
		for u := range v.users {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// Conns counts the connections held on the other nodes.
func (p *Peers) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.remote {
		for _, devs := range v.users {
			n += len(devs)
		}
	}
	return n
}

// onPresence applies another node's presence message (this node's own
// come back too: only a snapshot asked of it matters).
func (p *Peers) onPresence(data []byte) {
	var m presenceMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Node == "" {
		p.log.Warn("cluster: bad presence message", "error", err)
		return
	}
	p.mu.Lock()
	if m.Node == p.o.Node {
		p.mu.Unlock()
		return
	}
	if m.Op == opWant {
		if m.Target == p.o.Node {
			p.snapshotLocked()
		}
		p.mu.Unlock()
		return
	}
	if m.Op == opBye {
		p.dropViewLocked(m.Node)
		p.mu.Unlock()
		return
	}
	v := p.remote[m.Node]
	if v == nil || v.inc != m.Inc {
		p.dropViewLocked(m.Node) // a restarted node: what it held before is gone
		v = &view{inc: m.Inc, users: map[string]map[string]int64{}}
		p.remote[m.Node] = v
	}
	v.heard = time.Now()
	var takeovers []snapConn // ClientIDs this node holds that logged in there
	var kicks []kick         // this node's connections past the device limit
	switch m.Op {
	case opHello:
		p.snapshotLocked() // the newcomer learns this node's connections
		v.synced = m.Seq == 0
	case opSnap:
		if m.Part == 0 {
			v.staging, v.nextPart = map[string]map[string]int64{}, 0
		}
		if v.staging == nil || m.Part != v.nextPart {
			v.staging = nil // a part was lost: ask again
			p.wantLocked(m.Node)
			break
		}
		v.nextPart++
		for _, c := range m.Devices {
			setDev(v.staging, c.User, c.ClientID, c.At)
			if _, ok := p.local[c.User][c.ClientID]; ok { // its start may have been lost
				takeovers = append(takeovers, c)
			}
		}
		if m.More {
			break
		}
		for u := range v.users {
			p.markLocked(u)
		}
		for u := range v.staging {
			p.markLocked(u)
		}
		v.users, v.staging = v.staging, nil
		v.seq, v.synced = m.Seq, true
		for u := range v.users {
			kicks = append(kicks, p.excessLocked(u)...) // nil unless u has connections here
		}
	case opBeat:
		if !v.synced && m.Seq == 0 && v.seq == 0 && len(v.users) == 0 {
			v.synced = true // a node with nothing announced yet
		}
		if !v.synced || m.Seq != v.seq {
			p.wantLocked(m.Node)
		}
	case opStart, opEnd:
		if v.synced && m.Seq <= v.seq {
			break // seen already (before a snapshot that covered it)
		}
		if !v.synced || m.Seq != v.seq+1 {
			v.synced = false // a gap: apply it anyway, a snapshot corrects
			p.wantLocked(m.Node)
		}
		v.seq = max(v.seq, m.Seq)
		if m.Op == opStart {
			setDev(v.users, m.User, m.ClientID, m.At)
			kicks = p.excessLocked(m.User)
			if _, ok := p.local[m.User][m.ClientID]; ok {
				takeovers = append(takeovers, snapConn{User: m.User, ClientID: m.ClientID, At: m.At})
			}
		} else if devs := v.users[m.User]; devs[m.ClientID] == m.At {
			delete(devs, m.ClientID)
			if len(devs) == 0 {
				delete(v.users, m.User)
			}
		}
		p.markLocked(m.User)
	}
	p.mu.Unlock()
	for _, c := range takeovers { // TakeOver ends only an older connection
		p.o.Local.TakeOver(c.User, c.ClientID, c.At)
	}
	p.kickExcess(kicks)
}

func setDev(users map[string]map[string]int64, user, clientID string, at int64) {
	devs := users[user]
	if devs == nil {
		devs = map[string]int64{}
		users[user] = devs
	}
	devs[clientID] = at
}

// snapshotLocked publishes this node's connections at its current number,
// in parts of at most about snapPartBytes.
func (p *Peers) snapshotLocked() {
	var devs []snapConn
	part, size := 0, 0
	for u, m := range p.local {
		for id, at := range m {
			if size > snapPartBytes {
				p.publishPresence(presenceMsg{Op: opSnap, Seq: p.seq, Devices: devs, Part: part, More: true})
				devs, part, size = nil, part+1, 0
			}
			devs = append(devs, snapConn{User: u, ClientID: id, At: at})
			size += len(u) + len(id) + 48 // the JSON around them and the time
		}
	}
	p.publishPresence(presenceMsg{Op: opSnap, Seq: p.seq, Devices: devs, Part: part})
}

// wantLocked asks node for a snapshot, at most once per heartbeat interval.
func (p *Peers) wantLocked(node string) {
	if time.Since(p.wanted[node]) < p.o.Interval {
		return
	}
	p.wanted[node] = time.Now()
	p.publishPresence(presenceMsg{Op: opWant, Target: node})
}
