package broker

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
)

// Callback commands (tencent-im.md §5).
const (
	cbC2CBefore   = "C2C.CallbackBeforeSendMsg"
	cbC2CAfter    = "C2C.CallbackAfterSendMsg"
	cbGroupBefore = "Group.CallbackBeforeSendMsg"
	cbGroupAfter  = "Group.CallbackAfterSendMsg"
)

// errDroppedByCallback: the before-callback asked to drop the message
// silently; the sender is told success and nothing is stored.
var errDroppedByCallback = errors.New("dropped by callback")

// beforeSend runs a before-send callback unless ForbidCallbackControl
// forbids it, and applies its verdict: a rewrite replaces body and custom
// data (re-validated, so a callback cannot store a malformed message), a
// reject becomes the Tencent code (or the app's own code in its range).
// [IM-CALLBACK-1]
func (b *Broker) beforeSend(ctx context.Context, command string, forbid []string, fields map[string]any,
	body *[]byte, ccd *string, verdicts callbacks.Verdicts) error {
	if slices.Contains(forbid, "ForbidBeforeSendMsgCallback") || !b.callbacks.Enabled(command) {
		return nil
	}
	fields["MsgBody"], fields["CloudCustomData"] = rawJSON(*body), *ccd
	d := b.callbacks.Before(ctx, command, fields)
	switch d.Action {
	case callbacks.Drop:
		return errDroppedByCallback
	case callbacks.Reject:
		return verdicts.Refusal(d)
	}
	if d.MsgBody != nil {
		nb, err := wire.ValidateBody(d.MsgBody, b.cfg.Messages.MaxElements)
		if err != nil {
			b.log.Warn("callback rewrite ignored: invalid MsgBody", "command", command, "error", err)
		} else {
			*body = nb
		}
	}
	if d.CloudCustomData != nil {
		*ccd = *d.CloudCustomData
	}
	return nil
}

// afterSend queues an after-send callback unless forbidden.
func (b *Broker) afterSend(command string, forbid []string, fields map[string]any) {
	if slices.Contains(forbid, "ForbidAfterSendMsgCallback") {
		return
	}
	b.callbacks.After(command, fields)
}

type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// newCallbacks builds the callback client from config.
func newCallbacks(cfg config.Config, log *slog.Logger) *callbacks.Client {
	c := cfg.Callbacks
	var cmds map[string]bool
	if len(c.Commands) > 0 {
		cmds = map[string]bool{}
		for _, x := range c.Commands {
			cmds[x] = true
		}
	}
	return callbacks.New(callbacks.Options{URL: c.URL, SDKAppID: cfg.App.SDKAppID, Token: c.Token, Timeout: c.Timeout,
		Refuse: c.OnFailure == "refuse", Commands: cmds, Queue: c.Queue, Workers: c.Workers, Retries: c.Retries,
		Logger: log.With("component", "callbacks")})
}
