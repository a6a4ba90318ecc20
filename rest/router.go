// Package rest is the HTTP adapter: health endpoints and the Tencent v4
// admin API (docs/rest.md). v4.go holds the v4 plumbing (registry,
// authentication, rate limit, envelope), openapi.go the OpenAPI document, and
// one file per Tencent service its endpoints: account.go
// (im_open_login_svc), openim.go, sns.go, profile.go, recentcontact.go,
// group.go (group_open_http_svc), openconfigsvr.go, allmemberpush.go
// (all_member_push), openmsgsvc.go (open_msg_svc, and the /history/ files
// its links point to), configsvc.go (ConfigSvc). Handlers are thin and
// call the broker through the small interfaces declared here.
package rest

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/imbroker/imbroker/broker/history"
)

// Readiness reports whether the node can take traffic.
type Readiness interface {
	Ready() error
}

// Deps are what the router needs.
type Deps struct {
	Ready Readiness
	V4    *V4 // the Tencent-compatible admin API (rest/v4.go); nil: not served
	// Metrics serves Prometheus metrics on /metrics; nil: not served.
	Metrics http.Handler
	// Pprof mounts Go's profiler under /debug (config http.pprof).
	Pprof bool
}

// NewRouter builds the HTTP handler. It holds no global state.
func NewRouter(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		if !v4NotFound(w, req) {
			http.NotFound(w, req)
		}
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		if !v4NotFound(w, req) {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	if d.V4 != nil {
		mountV4(r, *d.V4)
		if d.V4.History != nil {
			// get_history's files, behind signed links (broker/history).
			r.Get(history.PathPrefix+"{name}", d.V4.History.ServeHTTP)
			r.Head(history.PathPrefix+"{name}", d.V4.History.ServeHTTP)
		}
	}
	if d.Metrics != nil {
		r.Handle("/metrics", d.Metrics)
	}
	if d.Pprof {
		r.Mount("/debug", middleware.Profiler())
	}
	// Liveness: the process serves HTTP.
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Readiness: listeners bound and store open; 503 while starting or stopping.
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := d.Ready.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
