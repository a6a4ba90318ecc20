package mqttd

import (
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/peers"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/tasks"
)

// fakePeers holds other nodes' devices.
type fakePeers struct {
	devs []peers.Device // all of one user's
}

func (f *fakePeers) Started(string, string, int64)       {}
func (f *fakePeers) Ended(string, string, int64)         {}
func (f *fakePeers) Devices(string) []peers.Device       { return slices.Clone(f.devs) }
func (f *fakePeers) Users() []string                     { return nil }
func (f *fakePeers) Conns() int                          { return len(f.devs) }
func (f *fakePeers) KickUser(string, string, string) int { return len(f.devs) }

// The device limit counts the user's connections on every node: under
// refuse a login past it is refused (a ClientID held elsewhere is a
// takeover, admitted); under kick_oldest the login is admitted and the
// peers kick the excess (each node its own: broker/peers, limit.go).
func TestDeviceLimitAcrossNodes(t *testing.T) {
	owner := tasks.New()
	defer owner.Stop()
	other := []peers.Device{{Node: "n2", ClientID: "ann:a", At: 1}, {Node: "n3", ClientID: "ann:b", At: 2}}

	s := newTestServer(t, owner, func(c *config.Config) { c.Devices.MaxPerUser, c.Devices.OnExceed = 2, config.DevicesRefuse })
	defer s.CloseDelivery()
	defer s.Close()
	s.Services.Peers = &fakePeers{devs: other}
	if code := s.checkDeviceLimit(s.mq.NewClient(nil, ListenerTCP, "ann:c", false), "ann"); code.Code != packets.ErrQuotaExceeded.Code {
		t.Fatalf("a third device with two on other nodes: 0x%02x, want 0x%02x", code.Code, packets.ErrQuotaExceeded.Code)
	}
	if code := s.checkDeviceLimit(s.mq.NewClient(nil, ListenerTCP, "ann:a", false), "ann"); code.Code != 0 {
		t.Fatalf("ann:a taking over its ClientID from another node: 0x%02x, want success", code.Code)
	}
	s.Services.Peers = &fakePeers{devs: other[:1]}
	if code := s.checkDeviceLimit(s.mq.NewClient(nil, ListenerTCP, "ann:c", false), "ann"); code.Code != 0 {
		t.Fatalf("a second device: 0x%02x, want success", code.Code)
	}

	k := newTestServer(t, owner, func(c *config.Config) { c.Devices.MaxPerUser, c.Devices.OnExceed = 2, config.DevicesKickOldest })
	defer k.CloseDelivery()
	defer k.Close()
	fp := &fakePeers{devs: other}
	k.Services.Peers = fp
	k.startConn(loggingIn(t, k, "ann:c", "ann"))
	if got, want := k.OnlineDevices("ann"), []string{"ann:a", "ann:b", "ann:c"}; !slices.Equal(got, want) {
		t.Fatalf("devices %v, want %v (oldest first; the kicked one until its node says it ended)", got, want)
	}
}
