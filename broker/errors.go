package broker

import (
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/internal/imerr"
)

// packetCode is a refusal as mochi sends it: the table's reason code plus
// the reason string "{code} {info}".
func packetCode(e *imerr.Error) packets.Code {
	return packets.Code{Code: e.Reason, Reason: e.Error()}
}
