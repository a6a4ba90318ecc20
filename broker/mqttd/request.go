package mqttd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/internal/refusals"
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
func (s *Server) handleRequest(ctx context.Context, cl *mqtt.Client, pk packets.Packet, op string) {
	hdr, e := checkRequest(pk.Payload, s.cfg.Messages.MaxRequestBytes)
	fail := func(e *imerr.Error) {
		s.reply(cl, pk, replyHeader{ID: hdr.ID, Op: op, ErrorCode: e.Code, ErrorInfo: e.Info})
	}
	if c := s.conns.of(cl); c != nil && !c.reqLimiter(s.cfg.MQTT.ReqRate, s.cfg.MQTT.ReqBurst).Allow() {
		e := imerr.RateLimited.New("im/req rate limit exceeded: %d requests per second (burst %d) per connection", s.cfg.MQTT.ReqRate, s.cfg.MQTT.ReqBurst)
		s.refuse(cl, refusals.ReqRate, e.Code, "im/req/"+op+": "+e.Info)
		fail(e) // with the Id when it could be read
		return
	}
	if e != nil {
		fail(e)
		return
	}
	user := userOf(cl)
	res, err := s.runOp(ctx, cl, ops.Actor{User: user, Admin: user == s.cfg.App.Admin}, op, pk.Payload)
	if err != nil {
		e := imerr.As(err)
		if e.Code == imerr.Internal.Code {
			s.log.Error("request failed", "op", op, "user", user, "error", err)
		}
		fail(e)
		return
	}
	payload, err := okReply(replyHeader{ID: hdr.ID, Op: op}, res)
	if err != nil {
		s.log.Error("encode reply", "op", op, "user", user, "error", err)
		fail(imerr.As(err))
		return
	}
	s.replyRaw(cl, pk, payload)
}

// checkRequest checks an im/req payload before its operation decodes it:
// its size, that it is a JSON object whose numbers are all finite, and its
// Id. The header is returned even with an error, its Id cut to
// maxRequestID, so the error reply can echo it.
func checkRequest(payload []byte, maxBytes int) (requestHeader, *imerr.Error) {
	var hdr requestHeader
	if len(payload) > maxBytes {
		return hdr, imerr.TooLarge.New("request of %d bytes is too large", len(payload))
	}
	if err := json.Unmarshal(payload, &hdr); err != nil {
		return hdr, imerr.BadJSON.New("request is not a valid JSON object: %v", err)
	}
	if len(hdr.ID) > maxRequestID {
		hdr.ID = hdr.ID[:maxRequestID]
		return hdr, imerr.BadParams.New("Id longer than %d bytes", maxRequestID)
	}
	if err := wire.CheckNumbers(payload); err != nil { // fields kept as raw JSON would store it verbatim
		return hdr, imerr.BadJSON.New("%v", err)
	}
	return hdr, nil
}

// runOp runs the im/req operation op as a: one of the server's connection
// ops (sync, group.sync: they write to cl), else a typed one of the
// registry. The result is the typed response, encoded once by okReply.
func (s *Server) runOp(ctx context.Context, cl *mqtt.Client, a ops.Actor, op string, body []byte) (any, error) {
	if res, ok, err := s.runConnOp(cl, a, op, body); ok {
		return res, err
	}
	o, ok := s.Ops.Lookup(op)
	if !ok {
		return nil, imerr.BadCommand.New("unknown request %q", op)
	}
	return s.runRegistryOp(ctx, o, a, body)
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
