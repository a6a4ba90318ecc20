package broker

import (
	"context"
	"time"

	"github.com/imbroker/imbroker/broker/wire"
)

// msgTimeKey carries an imported message's MsgTime through SendC2C.
type msgTimeKey struct{}

// msgTimeOf is the MsgTime a send stores: the import's when ctx carries
// one, else now.
func msgTimeOf(ctx context.Context, now time.Time) int64 {
	if t, ok := ctx.Value(msgTimeKey{}).(int64); ok && t > 0 {
		return t
	}
	return now.Unix()
}

// ImportC2C stores a one-to-one message from an old system (Tencent
// openim/importmsg) through SendC2C's path with msgTime (Unix seconds) as
// its MsgTime. The caller puts what the import mode implies in payload
// (SendMsgControl, OfflinePushInfo, ForbidCallbackControl). [IM-IMPORTMSG]
func (b *Broker) ImportC2C(ctx context.Context, from, to string, payload []byte, msgTime int64) (wire.SendResult, error) {
	return b.SendC2C(context.WithValue(ctx, msgTimeKey{}, msgTime), from, to, payload)
}
