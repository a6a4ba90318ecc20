package broker

import (
	"context"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/storage"
)

// What the domain services need, implemented by the store, the callback
// client, another service or the MQTT side.
var (
	_ relations.Store     = (*storage.Store)(nil)
	_ relations.Callbacks = (*callbacks.Client)(nil)
	_ relations.Presence  = (*devices)(nil)
	_ relations.Kicker    = (*Broker)(nil)

	_ messages.Store     = (*storage.Store)(nil)
	_ messages.Callbacks = (*callbacks.Client)(nil)
	_ messages.Relations = (*relations.Service)(nil)
	_ messages.Presence  = (*devices)(nil)

	_ convs.Store     = (*storage.Store)(nil)
	_ convs.Callbacks = (*callbacks.Client)(nil)
	_ convs.Groups    = (*groups.Service)(nil)

	_ groups.Store     = (*storage.Store)(nil)
	_ groups.Callbacks = (*callbacks.Client)(nil)
	_ groups.Conns     = groupConns{}
	_ groups.Timers    = (*tasks)(nil)
	_ groups.Mutes     = (*relations.Service)(nil)
)

// startServices builds the domain services over the open store and the
// registry of their typed operations.
func (b *Broker) startServices() (err error) {
	cfg, log := b.cfg, b.log
	b.relations = relations.New(relations.Options{Store: b.store, Config: cfg.Relations, Admin: cfg.App.Admin,
		Callbacks: b.callbacks, Presence: &b.devices, Kicker: b, Log: log.With("component", "relations")})
	b.messages = messages.New(messages.Options{Store: b.store, Config: cfg.Messages, Callbacks: b.callbacks,
		Relations: b.relations, Presence: &b.devices, Convs: b.convCache, Log: log.With("component", "messages")})
	b.groups = groups.New(groups.Options{Store: b.store, Groups: cfg.Groups, Messages: cfg.Messages,
		Conversations: cfg.Conversations, Admin: cfg.App.Admin, Guests: cfg.Guests.Enabled, Callbacks: b.callbacks,
		Conns: groupConns{b}, Timers: b.tasks, Mutes: b.relations, ConvCache: b.convCache,
		Log: log.With("component", "groups")})
	b.convs = convs.New(convs.Options{Store: b.store, Config: cfg.Conversations, Messages: cfg.Messages,
		Callbacks: b.callbacks, Groups: b.groups, Log: log.With("component", "convs")})
	b.ops, err = ops.NewRegistry(b.relations.Ops(), b.convs.Ops(), b.groups.Ops())
	return err
}

// SendC2C sends a one-to-one message (messages.Service.SendC2C).
func (b *Broker) SendC2C(ctx context.Context, from, to string, payload []byte) (wire.SendResult, error) {
	return b.messages.SendC2C(ctx, from, to, payload)
}

// Messages is the message pipeline (for the REST API).
func (b *Broker) Messages() *messages.Service { return b.messages }

// Conversations is the conversations service (for the REST API).
func (b *Broker) Conversations() *convs.Service { return b.convs }

// Groups is the groups service (for the REST API).
func (b *Broker) Groups() *groups.Service { return b.groups }
