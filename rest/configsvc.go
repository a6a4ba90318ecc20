package rest

import (
	"net"
	"slices"
	"sort"
)

// configSvcEndpoints are the ConfigSvc service.
func configSvcEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "ConfigSvc/GetIPList", Summary: "the IP addresses of this node's listeners (Tencent: the IPs clients and callbacks use)", typed: typed(getIPList)},
	}
}

// ipListReply is Tencent's IPList plus, as an imbroker addition, each
// listener's bound address by name (mqtt.tcp, mqtt.ws, mqtt.tls, http).
type ipListReply struct {
	IPList    []string
	Listeners map[string]string
}

// getIPList answers the IPs of the listeners: a listener bound to every
// interface (0.0.0.0, ::) stands for each address of the host's interfaces.
func getIPList(c *call) (*ipListReply, error) {
	out := &ipListReply{IPList: []string{}, Listeners: map[string]string{}}
	if c.listeners == nil {
		return out, nil
	}
	for name, addr := range c.listeners() {
		if addr == "" {
			continue
		}
		out.Listeners[name] = addr
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsUnspecified() {
			out.IPList = append(out.IPList, host)
			continue
		}
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				out.IPList = append(out.IPList, n.IP.String())
			}
		}
	}
	sort.Strings(out.IPList)
	out.IPList = slices.Compact(out.IPList)
	return out, nil
}
