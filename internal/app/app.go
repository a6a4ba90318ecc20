// Package app composes one imbroker process: the broker core and the HTTP
// server around it. cmd/imbroker and the end-to-end tests both start it, so
// tests run exactly the wiring the binary runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/history"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/push"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/console"
	"github.com/imbroker/imbroker/internal/netlisten"
	"github.com/imbroker/imbroker/rest"
)

// What the REST API needs from the domain services: their typed operations.
var (
	_ rest.Relations     = (*relations.Service)(nil)
	_ rest.Messages      = (*messages.Service)(nil)
	_ rest.Conversations = (*convs.Service)(nil)
	_ rest.Groups        = (*groups.Service)(nil)
	_ rest.Push          = (*push.Service)(nil)
	_ rest.History       = (*history.Service)(nil)
	// The console runs the join-application operations v4 has no call for.
	_ console.Groups = (*groups.Service)(nil)
	// A cluster node forwards writing REST calls to the owner.
	_ rest.Forwarder = broker.Cluster(nil)
)

// App is a running imbroker.
type App struct {
	Broker   *broker.Broker
	log      *slog.Logger
	http     *http.Server
	httpLn   net.Listener
	httpDone chan struct{}
	once     sync.Once
	err      error
}

// Start starts the broker and binds the HTTP listener; on error nothing is
// left running.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...broker.Option) (*App, error) {
	b, err := broker.Start(ctx, cfg, log, opts...)
	if err != nil {
		return nil, err
	}
	a := &App{Broker: b, log: log, httpDone: make(chan struct{})}
	if cfg.HTTP.Address == "" {
		close(a.httpDone)
		return a, nil
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		_ = b.Shutdown(ctx)
		return nil, fmt.Errorf("http listener on %s: %w", cfg.HTTP.Address, err)
	}
	// net/http retries temporary accept errors itself but logs every one;
	// the wrapper waits and logs rate-limited, as the MQTT listeners do.
	a.httpLn = netlisten.Wrap(ln, netlisten.Options{Name: "http", Log: log})
	v4 := &rest.V4{Admin: b, Relations: b.Relations(), Messages: b.Messages(), Conversations: b.Conversations(),
		Groups: b.Groups(), Push: b.Push(), History: b.History(), Listeners: a.listeners, PublicURL: cfg.History.PublicURL,
		App: cfg.App, REST: cfg.REST, Log: log, CommitTimeout: cfg.Storage.CommitTimeout}
	if c := b.Cluster(); c != nil { // cluster mode: writing calls run on the owner
		v4.Forwarder = c
		c.Handle(rest.KindV4, rest.V4Owner(*v4))
	}
	var handler http.Handler = rest.NewRouter(rest.Deps{Ready: b, Metrics: metricsHandler(b), Pprof: cfg.HTTP.Pprof, V4: v4})
	cfg, pwFile, err := console.ResolvePassword(cfg)
	if err != nil {
		_ = a.httpLn.Close()
		_ = b.Shutdown(ctx)
		return nil, err
	}
	if console.Enabled(cfg) {
		var cg console.Groups = b.Groups()
		if b.Cluster() != nil {
			cg = clusterGroups{b}
		}
		handler = withConsole(handler, console.Handler(console.Deps{Config: cfg, Broker: b, V4: handler, Groups: cg,
			HTTPAddr: a.httpLn.Addr().String(), Started: time.Now(), Log: log}))
		if pwFile != "" {
			log.Info("web console enabled", "url", "http://"+a.httpLn.Addr().String()+"/console/", "password_file", pwFile)
		} else {
			log.Info("web console enabled", "url", "http://"+a.httpLn.Addr().String()+"/console/")
		}
	} else if cfg.Console.Enabled {
		log.Info("web console off: storage.in_memory keeps no generated password; set console.password (or " + config.EnvConsolePassword + ") to serve /console")
	}
	a.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTP.ReadTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(a.httpDone)
		if err := a.http.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "error", err)
		}
	}()
	log.Info("http listener started", "address", a.httpLn.Addr().String())
	return a, nil
}

// listeners is every bound listener's address by name (GetIPList).
func (a *App) listeners() map[string]string {
	return map[string]string{"mqtt.tcp": a.MQTTAddr(), "mqtt.ws": a.WSAddr(),
		"mqtt.tls": a.Broker.Addr(broker.ListenerTLS), "http": a.HTTPAddr()}
}

// withConsole serves /console and below from the console, the rest from
// the REST router.
func withConsole(rest, con http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/") {
			con.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// MQTTAddr is the bound MQTT TCP address.
func (a *App) MQTTAddr() string { return a.Broker.Addr(broker.ListenerTCP) }

// WSAddr is the bound MQTT-over-WebSocket address.
func (a *App) WSAddr() string { return a.Broker.Addr(broker.ListenerWS) }

// HTTPAddr is the bound HTTP address, or "".
func (a *App) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Shutdown stops HTTP first (no new admin calls), then the broker, which
// closes the store last. Idempotent.
func (a *App) Shutdown(ctx context.Context) error {
	a.once.Do(func() {
		var errs []error
		if a.http != nil {
			errs = append(errs, a.http.Shutdown(ctx))
			<-a.httpDone
		}
		errs = append(errs, a.Broker.Shutdown(ctx))
		a.err = errors.Join(errs...)
	})
	return a.err
}

// clusterGroups is the console's group service in cluster mode: answering
// a join application writes, so it runs as the im/req operation
// group.handle_application, which a node that does not write forwards to
// the owner. Listing applications reads and stays local.
type clusterGroups struct{ b *broker.Broker }

func (g clusterGroups) Applications(ctx context.Context, a ops.Actor, q *groups.GroupRequest) (*groups.ApplicationsResponse, error) {
	return g.b.Groups().Applications(ctx, a, q)
}

func (g clusterGroups) HandleApplication(ctx context.Context, a ops.Actor, q *groups.HandleApplicationRequest) (*groups.Empty, error) {
	out := new(groups.Empty)
	if err := g.b.RunOp(ctx, a, "group.handle_application", q, out); err != nil {
		return nil, err
	}
	return out, nil
}
