package broker

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Multi-device policy [IM-DEVICES]: a user may be online on several
// connections (ClientIDs {UserID} and {UserID}:{device}) at once, up to
// devices.max_per_user (0 = unlimited). A new ClientID past the limit either
// kicks the user's oldest connection (kick_oldest) or is refused at CONNECT
// (refuse). The same ClientID connecting again is an MQTT session takeover:
// it replaces the old connection and is never counted twice. Guests are not
// tracked.

// errKickedDeviceLimit is the DISCONNECT reason a connection kicked by a
// newer login gets. Not 0x8E "session taken over": MQTT 5 defines that as
// "another connection with the same ClientID", which a client must be able
// to tell apart from another device of the same user.
var errKickedDeviceLimit = packets.Code{Code: packets.ErrAdministrativeAction.Code, Reason: "kicked: device limit"}

// kickWriteTimeout bounds the notice and DISCONNECT written to a kicked
// connection: a stalled peer must not hold its goroutine for 1.5 × keepalive.
const kickWriteTimeout = 5 * time.Second

// device is one live connection of a user.
type device struct {
	cl          *mqtt.Client
	connectedAt time.Time
	order       uint64 // login order, strictly increasing: defines "oldest" (clock readings can tie)
}

// devices tracks every user's live connections: user -> ClientID -> device.
type devices struct {
	mu    sync.Mutex
	users map[string]map[string]device
	next  uint64
}

// live returns user's connections that are still open, pruning closed ones
// (a connection that failed between auth and CONNACK gets no SessionEnded).
// Called with d.mu held.
func (d *devices) live(user string) map[string]device {
	m := d.users[user]
	for id, dv := range m {
		if dv.cl.Closed() {
			delete(m, id)
		}
	}
	if len(m) == 0 {
		delete(d.users, user)
		return nil
	}
	return m
}

// put records cl as the connection of its ClientID, replacing (taking over)
// any older one. Called with d.mu held.
func (d *devices) put(user string, cl *mqtt.Client) {
	m := d.users[user]
	if m == nil {
		if d.users == nil {
			d.users = map[string]map[string]device{}
		}
		m = map[string]device{}
		d.users[user] = m
	}
	if dv, ok := m[cl.ID]; ok && dv.cl == cl {
		return // reserved at auth time already
	}
	d.next++
	m[cl.ID] = device{cl: cl, connectedAt: time.Now(), order: d.next}
}

// reserve is the refuse policy's check at authentication time: it admits cl
// and records it in the same critical section, so two logins racing for the
// last slot cannot both pass. A takeover (cl's ClientID is already online)
// is always admitted and recorded later by add.
func (d *devices) reserve(user string, cl *mqtt.Client, max int) (online int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.live(user)
	if _, takeover := m[cl.ID]; takeover {
		return len(m), true
	}
	if len(m) >= max {
		return len(m), false
	}
	d.put(user, cl)
	return len(m), true
}

// add records cl and, when kick is set and the user now has more than max
// connections, removes and returns the oldest other ones to be kicked.
func (d *devices) add(user string, cl *mqtt.Client, max int, kick bool) []device {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.live(user)
	d.put(user, cl)
	m := d.users[user]
	if !kick || max <= 0 || len(m) <= max {
		return nil
	}
	others := make([]device, 0, len(m)-1)
	for id, dv := range m {
		if id != cl.ID {
			others = append(others, dv)
		}
	}
	slices.SortFunc(others, func(a, b device) int { return cmp.Compare(a.order, b.order) })
	victims := others[:len(m)-max]
	for _, dv := range victims {
		delete(m, dv.cl.ID)
	}
	return victims
}

// remove forgets cl, unless its ClientID now belongs to a newer connection
// (the old connection of a takeover ending late, #173).
func (d *devices) remove(user string, cl *mqtt.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.users[user]
	if dv, ok := m[cl.ID]; ok && dv.cl == cl {
		delete(m, cl.ID)
		if len(m) == 0 {
			delete(d.users, user)
		}
	}
}

// list returns user's open connections' ClientIDs, oldest first.
func (d *devices) list(user string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.live(user)
	ds := make([]device, 0, len(m))
	for _, dv := range m {
		ds = append(ds, dv)
	}
	slices.SortFunc(ds, func(a, b device) int { return cmp.Compare(a.order, b.order) })
	ids := make([]string, len(ds))
	for i, dv := range ds {
		ids[i] = dv.cl.ID
	}
	return ids
}

// OnlineDevices returns the ClientIDs user is connected with right now,
// oldest connection first; nil when the user is offline.
func (b *Broker) OnlineDevices(user string) []string { return b.devices.OnlineDevices(user) }

// OnlineDevices is Broker.OnlineDevices; it makes the device registry the
// relations service's Presence.
func (d *devices) OnlineDevices(user string) []string {
	if user == "" {
		return nil
	}
	if ids := d.list(user); len(ids) > 0 {
		return ids
	}
	return nil
}

// checkDeviceLimit runs at the end of Authenticate, for an authenticated
// user. Under on_exceed: refuse it refuses a new ClientID past the limit
// with CONNACK 0x97 (3.1.1: return code 3) naming imerr.DeviceLimit (70114).
// [IM-DEVICES]
func (b *Broker) checkDeviceLimit(cl *mqtt.Client, user string) packets.Code {
	dc := b.cfg.Devices
	if dc.MaxPerUser <= 0 || dc.OnExceed != config.DevicesRefuse {
		return packets.CodeSuccess
	}
	online, ok := b.devices.reserve(user, cl, dc.MaxPerUser)
	if ok {
		return packets.CodeSuccess
	}
	b.log.Debug("login refused: device limit", "user", user, "client", cl.ID, "online", online, "max", dc.MaxPerUser)
	return connackCode(packets.ErrQuotaExceeded, imerr.DeviceLimit.New("device limit reached: %d of %d devices online", online, dc.MaxPerUser))
}

// trackDevice records a user's new connection (from SessionStarting: after
// auth, before CONNACK) and, under on_exceed: kick_oldest, kicks the oldest
// other connections past the limit. [IM-DEVICES]
func (b *Broker) trackDevice(cl *mqtt.Client) {
	user := userOf(cl)
	if user == "" || cl.Net.Inline {
		return // guests and the inline client are not devices
	}
	dc := b.cfg.Devices
	victims := b.devices.add(user, cl, dc.MaxPerUser, dc.OnExceed == config.DevicesKickOldest)
	for _, v := range victims {
		b.log.Info("device kicked: device limit", "user", user, "client", v.cl.ID, "online_since", v.connectedAt,
			"by", cl.ID, "max", dc.MaxPerUser)
		// Off the new connection's goroutine: its CONNACK must not wait
		// on a write to another, possibly stalled, connection. Refused at
		// shutdown, which disconnects the victim anyway.
		b.tasks.spawn(func(ctx context.Context) { b.kickDevice(ctx, v.cl, user, cl.ID) })
	}
}

// untrackDevice forgets a connection that ended (from SessionEnded).
func (b *Broker) untrackDevice(cl *mqtt.Client) {
	if user := userOf(cl); user != "" {
		b.devices.remove(user, cl)
	}
}

// kickNotice is the rpc message a kicked connection gets before DISCONNECT.
type kickNotice struct {
	ID        string `json:"Id"`
	Op        string `json:"Op"`
	ErrorCode int    `json:"ErrorCode"`
	Reason    string `json:"Reason"`
	By        string `json:"By"`
}

// kickDevice tells cl on its rpc topic (if it subscribed) that it was kicked
// by the login of byClientID, then disconnects it: MQTT 5 clients get
// DISCONNECT 0x98 "kicked: device limit"; 3.1.1 clients see the connection
// close. A shutdown (ctx) cancels a kick still waiting for its victim.
func (b *Broker) kickDevice(ctx context.Context, cl *mqtt.Client, user, byClientID string) {
	// A victim chosen while its own login is still in progress (logins
	// racing) is closed only after its CONNACK.
	if !b.fix.WaitAttached(ctx, cl, kickWriteTimeout) {
		return // ended, or taken over by its own ClientID, or shutting down, meanwhile
	}
	if cl.Net.Conn != nil {
		// The connection is being closed: a write deadline only bounds how
		// long a stalled peer can hold this goroutine (and the client lock).
		_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(kickWriteTimeout))
	}
	payload, err := json.Marshal(kickNotice{Op: "kicked", Reason: "device limit", By: byClientID})
	if err == nil {
		b.writeDirect(cl, topicUserPrefix+user+rpcSuffix, payload, packets.Properties{})
	}
	_ = b.mq.DisconnectClient(cl, errKickedDeviceLimit)
}
