// Package console serves the web console under /console on the HTTP
// listener (docs/console.md): embedded static pages, sign-in for the app
// admin, and a small JSON API. Every domain operation the pages run goes
// through the v4 REST API itself (/console/api/v4/..., proxied with the
// admin's identity), so the console has no second implementation of
// anything; the console's own endpoints only read what REST has no API
// for (live figures, per-day statistics, the settings, the account list)
// and run the core's join-application operations, which Tencent offers
// only to apps, not in v4.
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/broker/stats"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
)

//go:embed assets
var assets embed.FS

// Broker is what the console reads of the node.
type Broker interface {
	Counters() (broker.AppCounters, error)
	Days(ctx context.Context, n int) ([]stats.Day, error)
	UserSig(user string, ttl time.Duration) (string, error)
	CallbackFailures() []callbacks.Failure
	CallbackEnabled(command string) bool
	Accounts(prefix, after string, limit int) ([]string, error)
	Addr(listener string) string
}

// Deps are what the console needs.
type Deps struct {
	Config   config.Config // the effective configuration
	Broker   Broker
	V4       http.Handler // serves /v4/{service}/{command} (rest.NewRouter)
	Groups   Groups       // the group service, for what v4 has no call for
	HTTPAddr string       // the bound HTTP address
	Started  time.Time
	Log      *slog.Logger
	Now      func() time.Time // for tests; nil: time.Now
}

// Enabled reports whether cfg serves the console: the HTTP listener is on,
// console.enabled is true and a password is set (after ResolvePassword).
func Enabled(cfg config.Config) bool {
	return cfg.HTTP.Address != "" && cfg.Console.Enabled && cfg.Console.Password != ""
}

// Handler serves /console and everything under it.
func Handler(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	c := &server{d: d, log: d.Log.With("component", "console"), auth: newAuth(d.Config.Console, d.Now)}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.StripPrefix("/console/", withETags(static, http.FileServer(http.FS(static))))
	mux := http.NewServeMux()
	mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	mux.Handle("GET /console/", securityHeaders(files))
	mux.HandleFunc("POST /console/api/signin", c.signIn)
	mux.HandleFunc("POST /console/api/signout", c.signedIn(c.signOut))
	mux.HandleFunc("GET /console/api/session", c.signedIn(c.session))
	mux.HandleFunc("GET /console/api/overview", c.signedIn(c.overview))
	mux.HandleFunc("GET /console/api/stats", c.signedIn(c.stats))
	mux.HandleFunc("GET /console/api/stats.csv", c.signedIn(c.statsCSV))
	mux.HandleFunc("GET /console/api/settings", c.signedIn(c.settings))
	mux.HandleFunc("GET /console/api/accounts", c.signedIn(c.accounts))
	mux.HandleFunc("POST /console/api/usersig", c.signedIn(c.userSig))
	mux.HandleFunc("GET /console/api/groups/applications", c.signedIn(c.applications))
	mux.HandleFunc("POST /console/api/groups/handle_application", c.signedIn(c.handleApplication))
	mux.HandleFunc("POST /console/api/v4/{service}/{command}", c.signedIn(c.v4))
	// Anything else under /console/api/ is an unknown API, not a file.
	unknown := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such console API: "+r.Method+" "+r.URL.Path)
	}
	mux.HandleFunc("GET /console/api/", unknown)
	mux.HandleFunc("POST /console/", unknown)
	return mux
}

// server is one console.
type server struct {
	d    Deps
	log  *slog.Logger
	auth *auth
}

// withETags gives each embedded file an ETag (its content hash), which
// http.FileServer honours with 304s: the embedded files have no modification
// time, and a phone should not fetch MQTT.js again on every visit.
func withETags(files fs.FS, h http.Handler) http.Handler {
	tags := map[string]string{}
	_ = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		tags[path] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if name == "" || strings.HasSuffix(name, "/") {
			name += "index.html"
		}
		if tag, ok := tags[name]; ok {
			w.Header().Set("ETag", tag)
		}
		h.ServeHTTP(w, r)
	})
}

// securityHeaders keeps the pages out of frames and scripts to our own.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
