package broker

import (
	"encoding/json"

	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/wire"
)

// pushGroup queues the offline push of a stored write-diffusion group
// message for each recipient (its user-stream copy holders but the sender)
// with no live connection. UnreadMsgNum is omitted (a record read per
// recipient is not cheap on the send path).
func (b *Broker) pushGroup(gid, from string, seq uint64, recipients []string, body, opi json.RawMessage) {
	if !b.callbacks.Enabled(messages.CmdOfflinePush) {
		return
	}
	for _, to := range recipients {
		if to == from || len(b.OnlineDevices(to)) > 0 {
			continue
		}
		f := wire.PushFields(to, from, body, opi)
		if f == nil {
			return
		}
		f["GroupId"], f["MsgSeq"] = gid, seq
		b.callbacks.After(messages.CmdOfflinePush, f)
	}
}
