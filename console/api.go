package console

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/broker/stats"
	"github.com/imbroker/imbroker/internal/ids"
)

const (
	adminSigTTL  = time.Hour        // the admin UserSig the proxy signs per request
	chatSigTTL   = 24 * time.Hour   // a test chat login's UserSig
	maxStatsDays = 400              // the longest Statistics range
	maxPage      = 200              // accounts per page
	proxyTimeout = 15 * time.Second // a proxied v4 call (REST bounds its own work at 10s)
)

// overviewReply is the Overview page's live figures. Messages are counted
// since the process started; the page derives messages per second from
// two polls.
type overviewReply struct {
	Version     string
	Started     int64 // unix seconds
	Uptime      int64 // seconds
	Now         int64 // unix milliseconds: the page's rate clock
	OnlineUsers int
	OnlineConns int
	C2CSent     int64
	GroupSent   int64
	Accounts    int
	Groups      int
	StoreBytes  int64 // bytes on disk under storage.dir (0 in memory)
	StoreInMem  bool
	Listeners   []listener
	ConsoleTTL  int64 // seconds a sign-in lasts
}

type listener struct{ Name, Address string }

func (c *server) overview(w http.ResponseWriter, r *http.Request, _ string) {
	n, err := c.d.Broker.Counters()
	if err != nil {
		c.internal(w, "counters", err)
		return
	}
	now := c.d.Now()
	cfg := c.d.Config
	out := overviewReply{Version: version(), Started: c.d.Started.Unix(), Uptime: int64(now.Sub(c.d.Started) / time.Second),
		Now: now.UnixMilli(), OnlineUsers: n.OnlineUserNum, OnlineConns: n.OnlineConnNum, C2CSent: n.C2CUpMsgNum,
		GroupSent: n.GroupUpMsgNum, Accounts: n.RegistUserNumTotal, Groups: n.GroupAllGroupNum,
		StoreInMem: cfg.Storage.InMemory, ConsoleTTL: int64(cfg.Console.SessionTTL / time.Second)}
	if !cfg.Storage.InMemory {
		out.StoreBytes = dirSize(cfg.Storage.Dir)
	}
	for _, l := range []struct{ name, id, path string }{{"MQTT TCP", broker.ListenerTCP, ""},
		{"MQTT over WebSocket", broker.ListenerWS, cfg.MQTT.WSPath}, {"MQTT over TLS", broker.ListenerTLS, ""}} {
		if a := c.d.Broker.Addr(l.id); a != "" {
			out.Listeners = append(out.Listeners, listener{l.name, a + l.path})
		}
	}
	out.Listeners = append(out.Listeners, listener{"HTTP (REST, console)", c.d.HTTPAddr})
	writeJSON(w, http.StatusOK, out)
}

// version is the module version and VCS revision the binary was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil // a file gone mid-walk (compaction) is skipped
	})
	return n
}

// days reads ?days= (default 30) and the figures.
func (c *server) days(w http.ResponseWriter, r *http.Request) ([]stats.Day, bool) {
	n := 30
	if v := r.URL.Query().Get("days"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxStatsDays {
			writeError(w, http.StatusBadRequest, "days must be a number from 1 to "+strconv.Itoa(maxStatsDays))
			return nil, false
		}
	}
	days, err := c.d.Broker.Days(r.Context(), n)
	if err != nil {
		c.internal(w, "statistics", err)
		return nil, false
	}
	return days, true
}

func (c *server) stats(w http.ResponseWriter, r *http.Request, _ string) {
	if days, ok := c.days(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"Days": days})
	}
}

// csvColumns are the CSV export's header, in Day's field order.
var csvColumns = []string{"Date", "NewAccounts", "TotalAccounts", "ActiveUsers", "PeakOnlineUsers", "PeakOnlineConns",
	"C2CMsgs", "GroupMsgs", "GroupsCreated", "GroupsActive", "TotalGroups"}

func (c *server) statsCSV(w http.ResponseWriter, r *http.Request, _ string) {
	days, ok := c.days(w, r)
	if !ok {
		return
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write(csvColumns)
	for _, d := range days {
		row := []string{d.Date}
		for _, v := range []int64{d.NewAccounts, d.TotalAccounts, d.ActiveUsers, d.PeakOnlineUsers, d.PeakOnlineConns,
			d.C2CMsgs, d.GroupMsgs, d.GroupsCreated, d.GroupsActive, d.TotalGroups} {
			row = append(row, strconv.FormatInt(v, 10))
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="imbroker-stats.csv"`)
	_, _ = w.Write(buf.Bytes())
}

// callbackCommands are every command imbroker sends (docs/callbacks.md).
var callbackCommands = []string{
	"C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg", "C2C.CallbackAfterMsgWithDraw", "C2C.CallbackAfterMsgReport",
	"Group.CallbackBeforeSendMsg", "Group.CallbackAfterSendMsg", "Group.CallbackBeforeCreateGroup", "Group.CallbackAfterCreateGroup",
	"Group.CallbackBeforeApplyJoinGroup", "Group.CallbackBeforeInviteJoinGroup", "Group.CallbackAfterNewMemberJoin",
	"Group.CallbackAfterMemberExit", "Group.CallbackAfterGroupInfoChanged", "Group.CallbackAfterGroupDestroyed",
	"Group.CallbackAfterGroupFull", "Group.CallbackAfterRecallMsg", "Sns.CallbackPrevFriendAdd", "Sns.CallbackPrevFriendResponse",
	"Sns.CallbackFriendAdd", "Sns.CallbackFriendDelete", "Sns.CallbackBlackListAdd", "Sns.CallbackBlackListDelete",
	"Profile.CallbackPortraitSet", "Push.CallbackOfflinePush", "State.StateChange",
}

// masked is shown instead of a secret.
const masked = "********"

// secretKey matches the config keys whose values are masked: any key
// naming a secret, password or token, so a setting added later is masked
// too.
var secretKey = regexp.MustCompile(`(?i)secret|password|token|private`)

// maskSecrets replaces the value of every secret key under n.
func maskSecrets(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Value != "" && secretKey.MatchString(k.Value) {
				v.Value, v.Tag, v.Style = masked, "!!str", yaml.SingleQuotedStyle
			}
		}
	}
	for _, k := range n.Content {
		maskSecrets(k)
	}
}

// settings answers the effective configuration as YAML with every secret
// masked, and the callbacks' enabled commands and recent failures.
func (c *server) settings(w http.ResponseWriter, r *http.Request, _ string) {
	cfg := c.d.Config
	if cfg.Callbacks.URL != "" { // a URL may carry credentials or a token in its query
		if u, err := url.Parse(cfg.Callbacks.URL); err == nil {
			if u.User != nil {
				u.User = url.User(masked)
			}
			if u.RawQuery != "" {
				u.RawQuery = masked
			}
			cfg.Callbacks.URL = u.String()
		}
	}
	var doc yaml.Node
	if err := doc.Encode(cfg); err != nil {
		c.internal(w, "settings", err)
		return
	}
	maskSecrets(&doc)
	var y bytes.Buffer
	enc := yaml.NewEncoder(&y)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		c.internal(w, "settings", err)
		return
	}
	var enabled []string
	for _, cmd := range callbackCommands {
		if c.d.Broker.CallbackEnabled(cmd) {
			enabled = append(enabled, cmd)
		}
	}
	type failure struct{ Time, Command, Error string }
	fails := []failure{}
	for _, f := range c.d.Broker.CallbackFailures() {
		fails = append(fails, failure{f.Time.UTC().Format(time.RFC3339), f.Command, f.Error})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ConfigYAML": y.String(), "CallbackURL": cfg.Callbacks.URL,
		"CallbacksEnabled": enabled, "CallbackFailures": fails})
}

func (c *server) accounts(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPage {
			writeError(w, http.StatusBadRequest, "limit must be a number from 1 to "+strconv.Itoa(maxPage))
			return
		}
	}
	// One more than asked tells whether there is a next page.
	list, err := c.d.Broker.Accounts(q.Get("prefix"), q.Get("after"), limit+1)
	if err != nil {
		c.internal(w, "accounts", err)
		return
	}
	more := len(list) > limit
	if more {
		list = list[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"Accounts": list, "More": more})
}

// userSig signs a UserSig for a test chat login, with where to connect.
func (c *server) userSig(w http.ResponseWriter, r *http.Request, _ string) {
	var q struct{ UserID string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&q); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be {\"UserID\": \"...\"}")
		return
	}
	if err := ids.CheckUserID(q.UserID); err != nil {
		writeError(w, http.StatusBadRequest, "invalid UserID: "+err.Error())
		return
	}
	sig, err := c.d.Broker.UserSig(q.UserID, chatSigTTL)
	if err != nil {
		c.internal(w, "usersig", err)
		return
	}
	ws := c.d.Broker.Addr(broker.ListenerWS)
	port := ""
	if i := strings.LastIndexByte(ws, ':'); i >= 0 {
		port = ws[i+1:]
	}
	c.log.Info("console signed a test chat UserSig", "user", q.UserID)
	writeJSON(w, http.StatusOK, map[string]any{"UserID": q.UserID, "UserSig": sig, "WSPort": port,
		"WSPath": c.d.Config.MQTT.WSPath, "WSEnabled": ws != ""})
}

// v4 runs one v4 REST API as the app admin: the request goes to the REST
// router itself, with the admin's identity and a fresh UserSig in the
// query, so REST's checks, rate limits and replies apply unchanged.
func (c *server) v4(w http.ResponseWriter, r *http.Request, _ string) {
	admin := c.d.Config.App.Admin
	sig, err := c.d.Broker.UserSig(admin, adminSigTTL)
	if err != nil {
		c.internal(w, "admin usersig", err)
		return
	}
	q := url.Values{"sdkappid": {strconv.FormatUint(c.d.Config.App.SDKAppID, 10)}, "identifier": {admin},
		"usersig": {sig}, "random": {strconv.FormatUint(uint64(rand.Uint32()), 10)}, "contenttype": {"json"}}
	path := "/v4/" + r.PathValue("service") + "/" + r.PathValue("command")
	ctx, cancel := contextWithTimeout(r, proxyTimeout)
	defer cancel()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(c.d.Config.REST.MaxBodyBytes)+1))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad API path "+path)
		return
	}
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	req.Header.Set("Content-Type", "application/json")
	c.d.V4.ServeHTTP(w, req)
}

func (c *server) internal(w http.ResponseWriter, what string, err error) {
	c.log.Error("console: "+what+" failed", "error", err)
	writeError(w, http.StatusInternalServerError, what+" failed: see the server log")
}
