package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/imerr"
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

// reqCtx is what a request handler gets.
type reqCtx struct {
	cl      *mqtt.Client
	pk      packets.Packet
	user    string
	admin   bool // the app admin identifier
	payload []byte
}

// decode unmarshals the request body into v, mapping failure to code.
func (r *reqCtx) decode(v any, kind *imerr.Kind) error {
	if err := json.Unmarshal(r.payload, v); err != nil {
		return kind.New("request fields: %v", err)
	}
	return nil
}

// reqHandler handles one op not yet in the typed registry (broker/ops). It
// returns the reply fields (a struct or map; nil for none) or an error
// mapped to a code. Handlers that write to the connection themselves (sync)
// return errReplied.
type reqHandler func(ctx context.Context, r *reqCtx) (any, error)

func (b *Broker) requestHandlers() map[string]reqHandler {
	return map[string]reqHandler{
		"sync":       b.reqSync,
		"group.sync": b.reqGroupSync,
	}
}

// handleRequest runs an im/req/{op} request and always replies, with the
// request's Id echoed. The publish itself is always acknowledged: errors
// travel in the reply.
func (b *Broker) handleRequest(ctx context.Context, cl *mqtt.Client, pk packets.Packet, op string) {
	var hdr requestHeader
	fail := func(e *imerr.Error) {
		b.reply(cl, pk, replyHeader{ID: hdr.ID, Op: op, ErrorCode: e.Code, ErrorInfo: e.Info})
	}
	if len(pk.Payload) > b.cfg.Messages.MaxRequestBytes {
		fail(imerr.TooLarge.New("request of %d bytes is too large", len(pk.Payload)))
		return
	}
	if err := json.Unmarshal(pk.Payload, &hdr); err != nil {
		fail(imerr.BadJSON.New("request is not a valid JSON object: %v", err))
		return
	}
	if len(hdr.ID) > maxRequestID {
		hdr.ID = hdr.ID[:maxRequestID]
		fail(imerr.BadParams.New("Id longer than %d bytes", maxRequestID))
		return
	}
	user := userOf(cl)
	res, err := b.runOp(ctx, op, ops.Actor{User: user, Admin: user == b.cfg.App.Admin}, cl, pk, pk.Payload)
	if err == errReplied {
		return
	}
	if err != nil {
		e := imerr.As(err)
		if e.Code == imerr.Internal.Code {
			b.log.Error("request failed", "op", op, "user", user, "error", err)
		}
		fail(e)
		return
	}
	payload, err := okReply(replyHeader{ID: hdr.ID, Op: op}, res)
	if err != nil {
		b.log.Error("encode reply", "op", op, "user", user, "error", err)
		fail(imerr.As(err))
		return
	}
	b.replyRaw(cl, pk, payload)
}

// runOp runs the im/req operation op as a: a typed one of the registry,
// else one of the handler map (the operations that write to the asking
// connection: sync, group.sync).
func (b *Broker) runOp(ctx context.Context, op string, a ops.Actor, cl *mqtt.Client, pk packets.Packet, payload []byte) (any, error) {
	if o, ok := b.ops.Lookup(op); ok {
		return o.Run(ctx, a, payload)
	}
	h, ok := b.handlers[op]
	if !ok {
		return nil, imerr.BadCommand.New("unknown request %q", op)
	}
	return h(ctx, &reqCtx{cl: cl, pk: pk, user: a.User, admin: a.Admin, payload: payload})
}

// okReply is a success reply: hdr's fields, then res's (a JSON object, or
// nil). res is marshalled once and its members spliced in: decoding it into
// a map would turn every number into a float64, and int64s above 2^53
// (MuteUntil of a permanent mute, a FileSize) would come back changed.
func okReply(hdr replyHeader, res any) ([]byte, error) {
	head, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return head, nil
	}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if string(body) == "null" {
		return head, nil
	}
	if body[0] != '{' {
		return nil, fmt.Errorf("reply of %T is not a JSON object", res)
	}
	// The header's fields win over the result's (sync's result embeds a
	// replyHeader). Marshalled JSON escapes quotes inside strings, so
	// `"Id":` can only be a key: most replies skip the scan.
	for _, k := range []string{`"Id":`, `"Op":`, `"ErrorCode":`, `"ErrorInfo":`} {
		if bytes.Contains(body, []byte(k)) {
			if body, err = withoutHeaderFields(body); err != nil {
				return nil, err
			}
			break
		}
	}
	if string(body) == "{}" {
		return head, nil
	}
	out := make([]byte, 0, len(head)+len(body))
	out = append(out, head[:len(head)-1]...) // without its '}'
	out = append(out, ',')
	return append(out, body[1:]...), nil
}

// withoutHeaderFields drops the top-level members of obj named like the
// header's fields and keeps the others byte for byte.
func withoutHeaderFields(obj []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, err
	}
	out := []byte{'{'}
	for dec.More() {
		start := dec.InputOffset()
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		switch key {
		case "Id", "Op", "ErrorCode", "ErrorInfo":
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		// The member as marshalled, without the comma before it.
		out = append(out, bytes.TrimLeft(obj[start:dec.InputOffset()], ",")...)
	}
	return append(out, '}'), nil
}

// errReplied tells handleRequest the handler has replied itself.
var errReplied = errors.New("replied")
