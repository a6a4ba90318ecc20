package messages

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
)

// Send callback commands (tencent-im.md §5).
const (
	CmdC2CBefore   = "C2C.CallbackBeforeSendMsg"
	CmdC2CAfter    = "C2C.CallbackAfterSendMsg"
	CmdGroupBefore = "Group.CallbackBeforeSendMsg"
	CmdGroupAfter  = "Group.CallbackAfterSendMsg"
)

// ErrDropped: the before-send callback dropped the message silently; the
// sender is told it was sent and nothing is stored.
var ErrDropped = errors.New("messages: dropped by the before-send callback")

// SendCallbacks are one family's before- and after-send callbacks (C2C or
// Group) [IM-CALLBACK-1].
type SendCallbacks struct {
	CB            Callbacks
	Before, After string             // the commands
	Verdicts      callbacks.Verdicts // how a refusal becomes an error
	MaxElements   int                // messages.max_elements: a rewritten MsgBody is checked again
	Log           *slog.Logger
}

// Enabled reports whether either command is configured: the callback
// fields need building only then.
func (c SendCallbacks) Enabled() bool { return c.CB.Enabled(c.Before) || c.CB.Enabled(c.After) }

// RunBefore runs the before-send callback unless ForbidCallbackControl
// (forbid) forbids it, and applies its verdict: a rewrite replaces body and
// custom data (checked again, so a callback cannot store a malformed
// message), a drop is ErrDropped, a refusal the family's error.
func (c SendCallbacks) RunBefore(ctx context.Context, forbid []string, fields map[string]any, body *[]byte, ccd *string) error {
	if slices.Contains(forbid, "ForbidBeforeSendMsgCallback") || !c.CB.Enabled(c.Before) {
		return nil
	}
	fields["MsgBody"], fields["CloudCustomData"] = RawJSON(*body), *ccd
	d := c.CB.Before(ctx, c.Before, fields)
	switch d.Action {
	case callbacks.Drop:
		return ErrDropped
	case callbacks.Reject:
		return c.Verdicts.Refusal(d)
	}
	if d.MsgBody != nil {
		nb, err := wire.ValidateBody(d.MsgBody, c.MaxElements)
		if err != nil {
			c.Log.Warn("callback rewrite ignored: invalid MsgBody", "command", c.Before, "error", err)
		} else {
			*body = nb
		}
	}
	if d.CloudCustomData != nil {
		*ccd = *d.CloudCustomData
	}
	return nil
}

// RunAfter queues the after-send callback unless forbid forbids it.
func (c SendCallbacks) RunAfter(ctx context.Context, forbid []string, fields map[string]any) {
	if slices.Contains(forbid, "ForbidAfterSendMsgCallback") {
		return
	}
	c.CB.After(ctx, c.After, fields)
}

// RawJSON is JSON already encoded, for callback fields (a MsgBody).
type RawJSON []byte

// MarshalJSON returns r as it is.
func (r RawJSON) MarshalJSON() ([]byte, error) { return r, nil }
