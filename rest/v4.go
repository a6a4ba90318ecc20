package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/messages"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/stats"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Admin is what the Tencent-compatible v4 API needs from the broker core.
type Admin interface {
	VerifyUserSig(user, sig string) error
	Counters() (broker.AppCounters, error)
	Days(ctx context.Context, n int) ([]stats.Day, error) // per-day statistics, oldest first, today last
}

// Relations is the relations domain (broker/relations), whose typed
// operations the account, sns, profile, openconfigsvr (global mutes) and
// openim (online status) endpoints call directly.
type Relations interface {
	Accounts
	Sns
	Profiles
	Mutes
	Status
}

// Messages is the message pipeline (broker/messages.Service): the openim
// send and import endpoints call it.
type Messages interface {
	SendC2C(ctx context.Context, from, to string, payload []byte) (wire.SendResult, error)
	BatchSendC2C(ctx context.Context, from string, tos []string, payload []byte) (messages.BatchResult, error)
	ImportC2C(ctx context.Context, from, to string, payload []byte, msgTime int64, realtime bool) (wire.SendResult, error)
}

// Conversations are the conversation operations (broker/convs.Service):
// the openim history, recall, read and unread endpoints and recentcontact
// call them.
type Conversations interface {
	List(ctx context.Context, a ops.Actor, q *convs.ListRequest) (*convs.ListResponse, error)
	Delete(ctx context.Context, a ops.Actor, q *convs.DeleteRequest) (*convs.Empty, error)
	Read(ctx context.Context, a ops.Actor, q *convs.ReadRequest) (*convs.ReadResponse, error)
	Recall(ctx context.Context, a ops.Actor, q *convs.RecallRequest) (*convs.Empty, error)
	Roam(ctx context.Context, q *convs.RoamRequest) (*convs.HistoryResponse, error)
	C2CUnread(uid string, peers []string) ([]convs.PeerUnread, int, error)
	ModifyC2C(ctx context.Context, from, to, msgKey string, body json.RawMessage, ccd *string) error
}

// V4 configures the v4 API.
type V4 struct {
	Admin         Admin
	Relations     Relations
	Messages      Messages
	Conversations Conversations
	Groups        Groups
	Push          Push
	History       History
	// Listeners returns every bound listener's address by name (mqtt.tcp,
	// mqtt.ws, mqtt.tls, http) for ConfigSvc/GetIPList; nil: none.
	Listeners func() map[string]string
	// PublicURL is the base of get_history's links; "": the request's own
	// scheme and Host.
	PublicURL string
	App       config.App
	REST      config.REST
	Log       *slog.Logger
	// CommitTimeout bounds a call's writes (storage.commit_timeout): the
	// store starts no write with less than half of it left (0: 10s).
	CommitTimeout time.Duration
	// Forwarder, in cluster mode, runs writing calls on the owner
	// (forward.go); nil: this node runs every call.
	Forwarder Forwarder
}

// fail is a refusal of kind with a detail.
func fail(kind *imerr.Kind, info string) error { return kind.New("%s", info) }

// endpoint is one v4 API. The router and /v4/openapi.json are both built
// from the registry, so they cannot drift.
type endpoint struct {
	Path    string // "{service}/{command}"
	Summary string
	Request []string // top-level request fields (documentation)
	handle  func(c *call) (map[string]any, error)
	typed   func(c *call) (any, error) // instead of handle: a typed reply, encoded once (replyFields)
}

// call is one authenticated request.
type call struct {
	ctx   context.Context
	a     Admin
	rel   Relations
	msgs  Messages
	convs Conversations
	grp   Groups
	push  Push
	hist  History
	// listeners reports the bound listeners (GetIPList).
	listeners func() map[string]string
	base      string // scheme://host of links this call hands out
	admin     string // the admin identifier
	body      []byte
	ep        *endpoint
}

// actor is who a typed operation runs as: user, with the app admin's
// rights when user is the admin identifier.
func (c *call) actor(user string) ops.Actor {
	return ops.Actor{User: user, Admin: user == c.admin, ViaAdmin: true}
}

// typed adapts a typed handler to an endpoint's.
func typed[Resp any](h func(c *call) (*Resp, error)) func(c *call) (any, error) {
	return func(c *call) (any, error) {
		r, err := h(c)
		if err != nil || r == nil {
			return nil, err // never a typed nil in an interface
		}
		return r, nil
	}
}

// asFrom runs op as the required From_Account with the body decoded into
// its request; a bad field is refused as kind.
func asFrom[Req, Resp any](kind *imerr.Kind, op func(Relations, context.Context, ops.Actor, *Req) (*Resp, error)) func(c *call) (*Resp, error) {
	return func(c *call) (*Resp, error) {
		from, err := fromAccount(c, kind)
		if err != nil {
			return nil, err
		}
		q := new(Req)
		if err := c.decode(q, kind); err != nil {
			return nil, err
		}
		return op(c.rel, c.ctx, c.actor(from), q)
	}
}

// asAdmin runs op as the app admin with the body decoded into its request.
func asAdmin[Req, Resp any](kind *imerr.Kind, op func(Relations, context.Context, ops.Actor, *Req) (*Resp, error)) func(c *call) (*Resp, error) {
	return func(c *call) (*Resp, error) {
		q := new(Req)
		if err := c.decode(q, kind); err != nil {
			return nil, err
		}
		return op(c.rel, c.ctx, c.actor(c.admin), q)
	}
}

// decode unmarshals the body into v; a type mismatch is refused as kind.
func (c *call) decode(v any, kind *imerr.Kind) error {
	if err := json.Unmarshal(c.body, v); err != nil {
		return fail(kind, "request fields: "+err.Error())
	}
	return nil
}

// sender is From_Account, or the admin when it is omitted.
func sender(c *call, from string) (string, error) {
	if from == "" {
		return c.admin, nil
	}
	if ids.CheckUserID(from) != nil {
		return "", fail(imerr.BadAccount, "invalid From_Account")
	}
	return from, nil
}

// fromAccount decodes and checks the required From_Account.
func fromAccount(c *call, kind *imerr.Kind) (string, error) {
	var q struct{ From_Account string }
	if err := c.decode(&q, kind); err != nil {
		return "", err
	}
	if q.From_Account == "" || ids.CheckUserID(q.From_Account) != nil {
		return "", fail(kind, "From_Account is missing or invalid")
	}
	return q.From_Account, nil
}

// registry lists every v4 endpoint: one list per Tencent service, each in
// the service's file (account.go for im_open_login_svc, openim.go, sns.go,
// profile.go, recentcontact.go, group.go for group_open_http_svc,
// openconfigsvr.go, allmemberpush.go, openmsgsvc.go, configsvc.go).
func registry() []*endpoint {
	var eps []*endpoint
	for _, service := range [][]*endpoint{accountEndpoints(), openimEndpoints(), snsEndpoints(), profileEndpoints(),
		recentContactEndpoints(), groupEndpoints(), openconfigsvrEndpoints(), allMemberPushEndpoints(),
		openMsgSvcEndpoints(), configSvcEndpoints()} {
		eps = append(eps, service...)
	}
	return eps
}

// mountV4 adds the v4 API to r.
func mountV4(r chi.Router, v V4) {
	log := v.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	eps := registry()
	for _, ep := range eps {
		// Per API: rest.rate_limit(s) calls per second, burst one second's worth.
		n := v.REST.Limit(ep.Path)
		r.Post("/v4/"+ep.Path, v4Handler(v, ep, rate.NewLimiter(rate.Limit(n), n), log))
	}
	doc := openAPI(eps)
	r.Get("/v4/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
}

// v4NotFound answers unknown /v4 paths (and wrong methods) in the envelope.
func v4NotFound(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/v4/") {
		return false
	}
	if r.Method != http.MethodPost {
		writeEnvelope(w, fail(imerr.URLParse, "only POST is supported"), nil)
		return true
	}
	writeEnvelope(w, fail(imerr.BadCommand, "unknown API "+strings.TrimPrefix(r.URL.Path, "/v4/")), nil)
	return true
}

func v4Handler(v V4, ep *endpoint, lim *rate.Limiter, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("v4 API panicked", "api", ep.Path, "panic", p)
				writeEnvelope(w, fail(imerr.Internal, "internal error"), nil)
			}
		}()
		if err := checkAuth(v, r.URL.Query()); err != nil {
			writeEnvelope(w, err, nil)
			return
		}
		// After authentication, so unauthenticated calls cannot use up the
		// admin's budget.
		if !lim.Allow() {
			writeEnvelope(w, fail(imerr.RateLimited, "REST API call rate exceeded for "+ep.Path), nil)
			return
		}
		body, err := readBody(w, r, v.REST.MaxBodyBytes, strings.HasPrefix(ep.Path, "openim/"))
		if err != nil {
			writeEnvelope(w, err, nil)
			return
		}
		base := baseURL(v.PublicURL, r)
		if v.Forwarder != nil && !v.Forwarder.IsOwner() {
			if !readEndpoints[ep.Path] {
				writeBody(w, v.forward(r.Context(), ep, body, base))
				return
			}
			if !localEndpoints[ep.Path] {
				if err := v.barrier(r.Context()); err != nil {
					writeEnvelope(w, err, nil)
					return
				}
			}
		}
		writeBody(w, v.run(r.Context(), ep, body, base, log))
	}
}

// run runs ep with body and returns the response body: the envelope with
// the endpoint's reply or its refusal. The owner runs forwarded calls
// through it too (V4Owner).
func (v V4) run(ctx context.Context, ep *endpoint, body []byte, base string, log *slog.Logger) []byte {
	ctx, cancel := context.WithTimeout(ctx, v.callTimeout())
	defer cancel()
	ctx = callbacks.WithPlatform(ctx, callbacks.PlatformREST) // OptPlatform=RESTAPI; no Sns before-callbacks
	c := &call{ctx: ctx, a: v.Admin, rel: v.Relations, msgs: v.Messages, convs: v.Conversations, grp: v.Groups, push: v.Push, hist: v.History, listeners: v.Listeners, base: base, admin: v.App.Admin, body: body, ep: ep}
	if ep.typed != nil {
		out, err := ep.typed(c)
		var fields []byte
		if err == nil {
			fields, err = replyFields(out)
		}
		if err != nil && code(err) == imerr.Internal.Code {
			log.Error("v4 API failed", "api", ep.Path, "error", err)
		}
		return replyBytes(err, fields)
	}
	out, err := ep.handle(c)
	if err != nil && code(err) == imerr.Internal.Code {
		log.Error("v4 API failed", "api", ep.Path, "error", err)
	}
	return envelopeBytes(err, out)
}

// callTimeout bounds a call (storage.commit_timeout; 10s unset).
func (v V4) callTimeout() time.Duration {
	if v.CommitTimeout <= 0 {
		return 10 * time.Second
	}
	return v.CommitTimeout
}

// baseURL is public, or the scheme and Host the request came to.
func baseURL(public string, r *http.Request) string {
	if public != "" {
		return public
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// checkAuth checks the query: the app's SDKAppID and a valid UserSig of the
// admin identifier.
func checkAuth(v V4, q map[string][]string) error {
	get := func(k string) (string, bool) {
		vs, ok := q[k]
		if !ok || len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	}
	appID, ok := get("sdkappid")
	if !ok || appID == "" {
		return fail(imerr.AppIDMissing, "sdkappid is missing")
	}
	n, err := strconv.ParseUint(appID, 10, 64)
	if err != nil {
		return fail(imerr.URLParse, "sdkappid is not a number")
	}
	if n != v.App.SDKAppID {
		return fail(imerr.BadAppID, "invalid sdkappid")
	}
	id, _ := get("identifier")
	sig, _ := get("usersig")
	if id == "" || sig == "" {
		return fail(imerr.URLParse, "identifier and usersig are required")
	}
	if rnd, ok := get("random"); !ok {
		return fail(imerr.URLParse, "random is required")
	} else if _, err := strconv.ParseUint(rnd, 10, 32); err != nil {
		return fail(imerr.URLParse, "random must be a 32-bit unsigned integer")
	}
	if ct, ok := get("contenttype"); ok && ct != "json" {
		return fail(imerr.URLParse, "contenttype must be json")
	}
	if err := v.Admin.VerifyUserSig(id, sig); err != nil {
		return err
	}
	if id != v.App.Admin {
		return fail(imerr.AdminOnly, "identifier is not the app admin")
	}
	return nil
}

// readBody reads a JSON object body of at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int, openim bool) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(max)))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fail(imerr.TooLarge, "request body over "+strconv.Itoa(max)+" bytes")
	}
	parseCode := imerr.BadParams
	if openim {
		parseCode = imerr.BadJSON
	}
	if err != nil {
		return nil, fail(imerr.URLParse, "reading the body failed")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fail(parseCode, "empty body: send {} when there is nothing to say")
	}
	var obj map[string]json.RawMessage
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &obj) != nil {
		return nil, fail(parseCode, "body is not a JSON object")
	}
	if err := wire.CheckNumbers(trimmed); err != nil { // fields kept as raw JSON would store it verbatim
		return nil, fail(parseCode, err.Error())
	}
	return trimmed, nil
}

// code is err's Tencent code.
func code(err error) int { return imerr.CodeOf(err) }

// writeEnvelope writes {ActionStatus, ErrorCode, ErrorInfo, ...out} with
// HTTP 200. Error texts come only from coded errors; anything else is
// "internal error" (logged by the caller).
func writeEnvelope(w http.ResponseWriter, err error, out map[string]any) {
	writeBody(w, envelopeBytes(err, out))
}

// envelopeBytes is writeEnvelope's body, as json.Encoder writes it.
func envelopeBytes(err error, out map[string]any) []byte {
	res := map[string]any{}
	for k, v := range out {
		res[k] = v
	}
	res["ActionStatus"], res["ErrorCode"], res["ErrorInfo"] = "OK", 0, ""
	if err != nil {
		c, info := errInfo(err)
		res["ActionStatus"], res["ErrorCode"], res["ErrorInfo"] = "FAIL", c, info
	}
	b, merr := json.Marshal(res)
	if merr != nil { // a handler's reply that does not encode
		return envelopeBytes(fail(imerr.Internal, "internal error"), nil)
	}
	return append(b, '\n')
}

// writeBody writes a v4 response body with HTTP 200.
func writeBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// replyFields is the members of out's JSON object, without its braces
// (empty for nil or an object without members). out is marshalled once and
// never decoded, so numbers keep every digit.
func replyFields(out any) ([]byte, error) {
	if out == nil {
		return nil, nil
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", out, err)
	}
	if string(raw) == "null" {
		return nil, nil
	}
	if len(raw) < 2 || raw[0] != '{' {
		return nil, fmt.Errorf("reply of %T is not a JSON object", out)
	}
	return raw[1 : len(raw)-1], nil
}

// writeReply writes {ActionStatus, ErrorCode, ErrorInfo, fields...} with
// HTTP 200; a failure carries no fields.
func writeReply(w http.ResponseWriter, err error, fields []byte) {
	writeBody(w, replyBytes(err, fields))
}

// replyBytes is writeReply's body.
func replyBytes(err error, fields []byte) []byte {
	env := struct {
		ActionStatus string
		ErrorCode    int
		ErrorInfo    string
	}{ActionStatus: "OK"}
	if err != nil {
		env.ActionStatus = "FAIL"
		env.ErrorCode, env.ErrorInfo = errInfo(err)
		fields = nil
	}
	head, _ := json.Marshal(env) // three plain fields: cannot fail
	out := head
	if len(fields) > 0 {
		out = append(head[:len(head)-1], ',')
		out = append(append(out, fields...), '}')
	}
	return append(out, '\n') // as json.Encoder ends writeJSON's
}

// errInfo is err's code and the text a client may see.
func errInfo(err error) (int, string) {
	e := imerr.As(err)
	return e.Code, e.Info
}
