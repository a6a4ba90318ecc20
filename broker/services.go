package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/history"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/mqttd"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/push"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/internal/tasks"
	"github.com/imbroker/imbroker/storage"
)

// What each part needs of the others, implemented by the store, the
// callback client, another service, the task owner or the MQTT side.
var (
	_ relations.Store     = (*storage.Store)(nil)
	_ relations.Callbacks = (*callbacks.Client)(nil)
	_ relations.Presence  = (*mqttd.Server)(nil)
	_ relations.Kicker    = (*mqttd.Server)(nil)

	_ messages.Store     = (*storage.Store)(nil)
	_ messages.Callbacks = (*callbacks.Client)(nil)
	_ messages.Relations = (*relations.Service)(nil)
	_ messages.Presence  = (*mqttd.Server)(nil)

	_ convs.Store     = (*storage.Store)(nil)
	_ convs.Callbacks = (*callbacks.Client)(nil)
	_ convs.Groups    = (*groups.Service)(nil)

	_ groups.Store     = (*storage.Store)(nil)
	_ groups.Callbacks = (*callbacks.Client)(nil)
	_ groups.Conns     = (*mqttd.Server)(nil)
	_ groups.Timers    = (*tasks.Owner)(nil)
	_ groups.Mutes     = (*relations.Service)(nil)

	_ mqttd.Store     = (*storage.Store)(nil)
	_ mqttd.Messages  = (*messages.Service)(nil)
	_ mqttd.Groups    = (*groups.Service)(nil)
	_ mqttd.Status    = (*relations.Service)(nil)
	_ mqttd.Accounts  = (*relations.Service)(nil)
	_ mqttd.Callbacks = (*callbacks.Client)(nil)
	_ mqttd.Tasks     = (*tasks.Owner)(nil)

	_ push.Store    = (*storage.Store)(nil)
	_ push.Tasks    = (*tasks.Owner)(nil)
	_ push.Online   = (*mqttd.Server)(nil)
	_ history.Store = (*storage.Store)(nil)
)

// startServices builds the domain services over the open store and returns
// the registry of their typed operations (for im/req).
func (b *Broker) startServices() (*ops.Registry, error) {
	cfg, log := b.cfg, b.log
	b.relations = relations.New(relations.Options{Store: b.store, Config: cfg.Relations, Admin: cfg.App.Admin,
		Callbacks: b.callbacks, Presence: b.mqtt, Kicker: b.mqtt, Log: log.With("component", "relations")})
	b.messages = messages.New(messages.Options{Store: b.store, Config: cfg.Messages, Callbacks: b.callbacks,
		Relations: b.relations, Presence: b.mqtt, Convs: b.convCache, Log: log.With("component", "messages")})
	b.groups = groups.New(groups.Options{Store: b.store, Groups: cfg.Groups, Messages: cfg.Messages,
		Conversations: cfg.Conversations, Admin: cfg.App.Admin, Guests: cfg.Guests.Enabled, Callbacks: b.callbacks,
		Conns: b.groupConns(), Timers: b.tasks, Mutes: b.relations, ConvCache: b.convCache, OnSent: b.groupSent,
		Log: log.With("component", "groups")})
	b.liveGroups.Store(b.groups)
	if b.peers != nil {
		b.peers.WantLiveHeads() // a node that starts late numbers live rooms as the others
	}
	b.convs = convs.New(convs.Options{Store: b.store, Config: cfg.Conversations, Messages: cfg.Messages,
		Callbacks: b.callbacks, Groups: b.groups, Log: log.With("component", "convs")})
	dir := filepath.Join(cfg.Storage.Dir, "history")
	if cfg.Storage.InMemory { // files still go to disk: a temporary dir, removed at shutdown
		var err error
		if dir, err = os.MkdirTemp("", "imbroker-history-"); err != nil {
			return nil, fmt.Errorf("history dir: %w", err)
		}
		b.histTemp = true
	}
	b.history = history.New(history.Options{Store: b.store, Dir: dir, Key: b.signer.Key, Config: cfg.History,
		Log: log.With("component", "history")})
	b.push = push.New(push.Options{Store: b.store, Tasks: b.tasks, Online: b.mqtt, Config: cfg.Push, Messages: cfg.Messages,
		Admin: cfg.App.Admin, Log: log.With("component", "push")})
	return ops.NewRegistry(b.relations.Ops(), b.convs.Ops(), b.groups.Ops())
}

// SendC2C sends a one-to-one message (messages.Service.SendC2C).
func (b *Broker) SendC2C(ctx context.Context, from, to string, payload []byte) (wire.SendResult, error) {
	return b.messages.SendC2C(ctx, from, to, payload)
}

// Relations is the relations service (for the REST API).
func (b *Broker) Relations() *relations.Service { return b.relations }

// Messages is the message pipeline (for the REST API).
func (b *Broker) Messages() *messages.Service { return b.messages }

// Conversations is the conversations service (for the REST API).
func (b *Broker) Conversations() *convs.Service { return b.convs }

// History is get_history's exporter and file server (for the HTTP API).
func (b *Broker) History() *history.Service { return b.history }

// Push is all-member push (for the REST API).
func (b *Broker) Push() *push.Service { return b.push }

// Groups is the groups service (for the REST API).
func (b *Broker) Groups() *groups.Service { return b.groups }

// OnlineDevices returns the ClientIDs user is connected with right now,
// oldest first; nil when offline.
func (b *Broker) OnlineDevices(user string) []string { return b.mqtt.OnlineDevices(user) }

// MQTTSession reports, for operators and tests, whether mochi holds a
// session for clientID, whether its connection is open, and how many QoS 1/2
// messages it has queued or in flight.
func (b *Broker) MQTTSession(clientID string) (exists, connected bool, queued int) {
	return b.mqtt.MQTTSession(clientID)
}

// HasRetained reports whether a retained message is stored on topic.
func (b *Broker) HasRetained(topic string) bool { return b.mqtt.HasRetained(topic) }
