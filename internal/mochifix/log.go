package mochifix

import (
	"context"
	"log/slog"
)

// Logger returns the logger to give mochi: records below Error (below Debug
// when debug is set) and mochi's "publish packet error" are dropped.
//
// mochi v2.7.9, no upstream issue:
//   - it logs per event at Warn, with no rate limit: every refused login and
//     every dropped connection (listeners, "error processing packet"), every
//     message dropped at a full inflight window ("client store quota
//     reached"), which floods the log under load;
//   - it logs "publish packet error" at Error, with the whole packet, for
//     every OnPublish hook returning an error (Hooks.OnPublish), although a
//     packets.Code is how a hook refuses a publish with a reason: refusals
//     are expected traffic, counted and logged by the broker itself. PR #438
//     exempted only CodeSuccessIgnore;
//   - it logs "publish packet rejected" at Debug, with the whole packet, for
//     every publish a hook answers with ErrRejectPacket, which imbroker's
//     pipelined sends use for every accepted send (their PUBACK is written
//     once durable): accepted sends would read as rejected.
func Logger(log *slog.Logger, debug bool) *slog.Logger {
	min := slog.LevelError
	if debug {
		min = slog.LevelDebug
	}
	return slog.New(logFilter{log.Handler(), min})
}

// publishPacketError is the message mochi logs a refused publish with.
const (
	publishPacketError    = "publish packet error"
	publishPacketRejected = "publish packet rejected"
)

type logFilter struct {
	slog.Handler
	min slog.Level
}

func (f logFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f logFilter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == publishPacketError || r.Message == publishPacketRejected {
		return nil
	}
	return f.Handler.Handle(ctx, r)
}

func (f logFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return logFilter{f.Handler.WithAttrs(as), f.min}
}

func (f logFilter) WithGroup(g string) slog.Handler { return logFilter{f.Handler.WithGroup(g), f.min} }
