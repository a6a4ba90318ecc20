package broker

import (
	"context"
	"encoding/json"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// requestHeader is common to every im/req/{op} body.
type requestHeader struct {
	ID string `json:"Id"`
}

// replyHeader starts every reply.
type replyHeader struct {
	ID        string `json:"Id"`
	Op        string `json:"Op"`
	ErrorCode int    `json:"ErrorCode"`
	ErrorInfo string `json:"ErrorInfo"`
}

const maxRequestID = 64

// handleRequest runs an im/req/{op} request and always replies, with the
// request's Id echoed. The publish itself is always acknowledged: errors
// travel in the reply.
func (b *Broker) handleRequest(ctx context.Context, cl *mqtt.Client, pk packets.Packet, op string) {
	var hdr requestHeader
	fail := func(e *Error) {
		b.reply(cl, pk, replyHeader{ID: hdr.ID, Op: op, ErrorCode: e.Code, ErrorInfo: e.Info})
	}
	if len(pk.Payload) > b.cfg.Messages.MaxRequestBytes {
		fail(newError(CodeJSONTooLarge, reasonPayloadFormat, "request of %d bytes is too large", len(pk.Payload)))
		return
	}
	if err := json.Unmarshal(pk.Payload, &hdr); err != nil {
		fail(newError(CodeBadJSON, reasonPayloadFormat, "request is not a valid JSON object: %v", err))
		return
	}
	if len(hdr.ID) > maxRequestID {
		hdr.ID = hdr.ID[:maxRequestID]
		fail(newError(CodeBadParams, reasonPayloadFormat, "Id longer than %d bytes", maxRequestID))
		return
	}
	switch op {
	case "sync":
		b.handleSync(ctx, cl, pk, hdr)
	default:
		fail(newError(CodeBadCommand, reasonTopicInvalid, "unknown request %q", op))
	}
}
