package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imbroker/imbroker/config"
)

// Sign-in: the app admin's console password (console.password). A session
// is a random token in an HttpOnly, SameSite=Strict cookie scoped to
// /console that expires after console.session_ttl; every state-changing
// request also carries the session's CSRF token in X-CSRF-Token (double
// submit: the page reads it from /console/api/session, which a foreign
// site cannot), and a request whose Origin is another site is refused.

const (
	cookieName  = "imbroker_console"
	csrfHeader  = "X-CSRF-Token"
	maxSessions = 64    // signed-in sessions kept; the oldest goes first
	maxLimiters = 10000 // client addresses tracked for failed sign-ins; past that the table starts over
)

type session struct {
	csrf    string
	expires time.Time
}

type auth struct {
	cfg      config.Console
	password [32]byte // sha256 of the password: compared in constant time
	now      func() time.Time

	mu       sync.Mutex
	sessions map[string]session
	failures map[string]*rate.Limiter // per client address
}

func newAuth(cfg config.Console, now func() time.Time) *auth {
	return &auth{cfg: cfg, password: sha256.Sum256([]byte(cfg.Password)), now: now,
		sessions: map[string]session{}, failures: map[string]*rate.Limiter{}}
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// limiter is addr's failed sign-in budget: console.sign_in_failures a
// minute. Called with mu held.
func (a *auth) limiter(addr string) *rate.Limiter {
	l := a.failures[addr]
	if l == nil {
		if len(a.failures) >= maxLimiters {
			a.failures = map[string]*rate.Limiter{}
		}
		n := a.cfg.SignInFailures
		l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)
		a.failures[addr] = l
	}
	return l
}

// check answers a sign-in: the new session's token, or why not.
func (a *auth) check(addr, password string) (tok string, s session, status int, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	l := a.limiter(addr)
	if l.TokensAt(now) < 1 {
		return "", session{}, http.StatusTooManyRequests, "too many failed sign-ins from this address; wait a minute"
	}
	sum := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(sum[:], a.password[:]) != 1 {
		l.AllowN(now, 1)
		return "", session{}, http.StatusUnauthorized, "wrong password"
	}
	for t, old := range a.sessions {
		if !now.Before(old.expires) {
			delete(a.sessions, t)
		}
	}
	for len(a.sessions) >= maxSessions {
		var oldest string
		for t, old := range a.sessions {
			if oldest == "" || old.expires.Before(a.sessions[oldest].expires) {
				oldest = t
			}
		}
		delete(a.sessions, oldest)
	}
	tok = token()
	s = session{csrf: token(), expires: now.Add(a.cfg.SessionTTL)}
	a.sessions[tok] = s
	return tok, s, 0, ""
}

// lookup returns the live session of r's cookie.
func (a *auth) lookup(r *http.Request) (string, session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", session{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[c.Value]
	if ok && !a.now().Before(s.expires) {
		delete(a.sessions, c.Value)
		ok = false
	}
	return c.Value, s, ok
}

func (a *auth) drop(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, tok)
}

// sameOrigin refuses a request sent by another site: its Origin header,
// when present, must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *server) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	var q struct{ Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&q); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be {\"Password\": \"...\"}")
		return
	}
	addr := clientAddr(r)
	tok, s, status, msg := c.auth.check(addr, q.Password)
	if tok == "" {
		c.log.Warn("console sign-in failed", "remote", addr, "reason", msg)
		writeError(w, status, msg)
		return
	}
	c.log.Info("console sign-in", "remote", addr)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/console", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(c.d.Config.Console.SessionTTL / time.Second)})
	writeJSON(w, http.StatusOK, c.sessionInfo(s))
}

func (c *server) signOut(w http.ResponseWriter, r *http.Request, tok string) {
	c.auth.drop(tok)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{})
}

// signedIn serves h only within a live session; a state-changing request
// must also carry the session's CSRF token and come from this site.
func (c *server) signedIn(h func(w http.ResponseWriter, r *http.Request, tok string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, s, ok := c.auth.lookup(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "not signed in, or the session expired: sign in again")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(s.csrf)) != 1 {
				c.log.Warn("console request refused: CSRF check failed", "remote", clientAddr(r), "path", r.URL.Path)
				writeError(w, http.StatusForbidden, "missing or wrong "+csrfHeader+": reload the page")
				return
			}
		}
		h(w, r, tok)
	}
}

func (c *server) session(w http.ResponseWriter, r *http.Request, tok string) {
	_, s, _ := c.auth.lookup(r)
	writeJSON(w, http.StatusOK, c.sessionInfo(s))
}

func (c *server) sessionInfo(s session) map[string]any {
	return map[string]any{"CSRFToken": s.csrf, "Admin": c.d.Config.App.Admin, "SDKAppID": c.d.Config.App.SDKAppID,
		"Expires": s.expires.Unix()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"Error": msg}: every console API failure, shown by
// the page as it is.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"Error": msg})
}

func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
