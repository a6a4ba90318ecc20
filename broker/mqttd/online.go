package mqttd

import (
	"slices"
	"sort"
)

// OnlineUsers returns the users with at least one live connection, in
// UserID order (all-member push reaches them even before they have a
// stream), on every node.
func (s *Server) OnlineUsers() []string {
	cs := &s.conns
	cs.mu.Lock()
	out := make([]string, 0, len(cs.users))
	for u, devs := range cs.users {
		if len(devs) > 0 {
			out = append(out, u)
		}
	}
	cs.mu.Unlock()
	if s.Peers != nil {
		out = append(out, s.Peers.Users()...)
		sort.Strings(out)
		return slices.Compact(out)
	}
	sort.Strings(out)
	return out
}
