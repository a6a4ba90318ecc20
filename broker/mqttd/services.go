package mqttd

import (
	"context"
	"time"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// What the MQTT side needs of the rest of the node, each as small as what
// it calls; the root (broker) wires the implementations and checks them at
// compile time.

// Services are the domain services the server hands publishes and
// requests to.
type Services struct {
	Store     Store
	Messages  Messages
	Groups    Groups
	Status    Status
	Accounts  Accounts
	Callbacks Callbacks
	Ops       *ops.Registry // every im/req operation but the server's own (sync, group.sync)
	Forward   Forwarder     // cluster mode: writes go to the owner when this node is not it (forward.go); nil: one node
	Peers     Peers         // cluster mode: the other nodes' connections, kicks and takeovers (peers.go); nil: one node
}

// Store is what replays read (sync, group.sync).
type Store interface {
	ReadFrom(stream string, after uint64, limit int) (storage.Page, error)
}

// Messages is the one-to-one send path (broker/messages). StartC2C queues
// the commit and returns the wait for it, for the ack pipe.
type Messages interface {
	StartC2C(ctx context.Context, from, to string, payload []byte) (pending *messages.Pending, res wire.SendResult, err error)
	SendC2C(ctx context.Context, from, to string, payload []byte) (wire.SendResult, error)
}

// Groups is what the MQTT side asks of the groups domain: group sends, the
// im/g/{gid} read ACL, and a member's history floor for group.sync.
type Groups interface {
	Send(ctx context.Context, from, gid string, payload []byte) (groups.SendResult, error)
	CanRead(user, gid string) bool
	Readable(a ops.Actor, gid string) (uint64, error)
}

// Status is told when one of a user's connections starts or ends, to
// announce the user's state to friends (broker/relations).
type Status interface {
	PresenceChanged(ctx context.Context, user string)
}

// Accounts admits a login whose UserSig verified (broker/relations): it
// refuses a sig issued before the user's last kick and makes the user an
// account (Tencent imports a UserID at its first login).
type Accounts interface {
	Login(ctx context.Context, uid string, issued time.Time) error
}

// Callbacks queues the State.StateChange after-callback.
type Callbacks interface {
	Enabled(command string) bool
	After(ctx context.Context, command string, body map[string]any)
}

// Logins is told of every successful login (internal/memtrim: memory is
// given back to the OS once a burst of logins has gone quiet).
type Logins interface {
	Login()
}

// Tasks owns goroutines started on demand (device kicks): shutdown cancels
// them and waits. Spawn reports false, running nothing, once it stopped.
type Tasks interface {
	Spawn(fn func(ctx context.Context)) bool
}
