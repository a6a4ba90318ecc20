package broker

import (
	"log/slog"

	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
)

// newCallbacks builds the callback client from config.
func newCallbacks(cfg config.Config, log *slog.Logger) *callbacks.Client {
	c := cfg.Callbacks
	cmds := map[string]bool{} // none enabled unless listed, as in Tencent's console
	for _, x := range c.Commands {
		cmds[x] = true
	}
	return callbacks.New(callbacks.Options{URL: c.URL, SDKAppID: cfg.App.SDKAppID, Token: c.Token, Timeout: c.Timeout,
		Refuse: c.OnFailure == "refuse", Commands: cmds, Queue: c.Queue, Workers: c.Workers, Retries: c.Retries,
		Logger: log.With("component", "callbacks")})
}
