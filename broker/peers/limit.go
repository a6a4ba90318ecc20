package peers

import (
	"cmp"
	"slices"
)

// The device limit across nodes. Each node decides a login on its own view,
// which may lack a login racing on another node: both may pass. So every
// node recounts a user whenever a connection of the user starts, here or on
// another node (its start applied), and kicks the connections past the
// limit that it holds itself. Every node orders the user's connections the
// same way (connect time, then node, then ClientID), so once the starts
// have crossed the bus each node picks the same victims and only their
// holder kicks them: no connection is kicked twice, and none is kicked by
// two nodes for the same excess.

type limitDev struct {
	node, id string
	at       int64
}

// kick is one of this node's connections to close for the device limit.
type kick struct {
	user, id, by string
}

// excessLocked lists user's connections on this node past the limit over
// every node's view: the oldest under kick_oldest, the newest under refuse
// (the login refuse would have refused). Lock held.
func (p *Peers) excessLocked(user string) []kick {
	max := p.o.MaxDevices
	if max <= 0 || len(p.local[user]) == 0 {
		return nil
	}
	var all []limitDev
	seen := map[string]int{}
	add := func(d limitDev) {
		if i, ok := seen[d.id]; ok { // a takeover under way: the newer counts
			if o := all[i]; d.at > o.at || (d.at == o.at && d.node > o.node) {
				all[i] = d
			}
			return
		}
		seen[d.id] = len(all)
		all = append(all, d)
	}
	for id, at := range p.local[user] {
		add(limitDev{node: p.o.Node, id: id, at: at})
	}
	for node, v := range p.remote {
		for id, at := range v.users[user] {
			add(limitDev{node: node, id: id, at: at})
		}
	}
	if len(all) <= max {
		return nil
	}
	slices.SortFunc(all, func(a, b limitDev) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.node, b.node), cmp.Compare(a.id, b.id))
	})
	victims, by := all[:len(all)-max], all[len(all)-1].id
	if p.o.RefuseDevices {
		victims, by = all[max:], all[max-1].id
	}
	var out []kick
	for _, d := range victims {
		key := user + "\x00" + d.id
		if d.node != p.o.Node || p.kicked[key] == d.at {
			continue // another node's, or kicked already (a later recount)
		}
		p.kicked[key] = d.at
		out = append(out, kick{user: user, id: d.id, by: by})
	}
	return out
}

// kickExcess closes the connections excessLocked chose. Outside p.mu.
func (p *Peers) kickExcess(kicks []kick) {
	for _, k := range kicks {
		p.log.Info("device kicked: device limit over every node", "user", k.user, "client", k.id, "by", k.by,
			"max", p.o.MaxDevices)
		p.o.Local.KickLocal(k.user, k.id, ReasonDeviceLimit, k.by)
	}
}
