package mqttd

import (
	"context"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/storage"
)

// Services that do nothing, for tests of the connection side alone.

type nopStore struct{}

func (nopStore) ReadFrom(string, uint64, int) (storage.Page, error) { return storage.Page{}, nil }

type nopMessages struct{}

func (nopMessages) StartC2C(context.Context, string, string, []byte) (*messages.Pending, wire.SendResult, error) {
	return nil, wire.SendResult{}, nil
}

func (nopMessages) SendC2C(context.Context, string, string, []byte) (wire.SendResult, error) {
	return wire.SendResult{}, nil
}

type nopGroups struct{}

func (nopGroups) Send(context.Context, string, string, []byte) (groups.SendResult, error) {
	return groups.SendResult{}, nil
}
func (nopGroups) CanRead(string, string) bool                { return false }
func (nopGroups) Readable(ops.Actor, string) (uint64, error) { return 0, nil }

type nopStatus struct{}

func (nopStatus) PresenceChanged(context.Context, string) {}

type nopCallbacks struct{}

func (nopCallbacks) Enabled(string) bool                           { return false }
func (nopCallbacks) After(context.Context, string, map[string]any) {}
