// Package config holds imbroker's single configuration tree: its defaults,
// strict YAML loading (unknown keys are errors) and validation that reports
// every problem at once with its key path.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imbroker/imbroker/internal/usersig"
)

// EnvSecretKey overrides app.secret_key when set, so the key can stay out of files.
const EnvSecretKey = "IMBROKER_SECRET_KEY"

// Config is the whole configuration. Every limit the broker enforces is here.
type Config struct {
	App           App           `yaml:"app"`
	MQTT          MQTT          `yaml:"mqtt"`
	HTTP          HTTP          `yaml:"http"`
	Storage       Storage       `yaml:"storage"`
	Messages      Messages      `yaml:"messages"`
	Retention     Retention     `yaml:"retention"`
	Delivery      Delivery      `yaml:"delivery"`
	Groups        Groups        `yaml:"groups"`
	Conversations Conversations `yaml:"conversations"`
	Callbacks     Callbacks     `yaml:"callbacks"`
	Relations     Relations     `yaml:"relations"`
	REST          REST          `yaml:"rest"`
	Push          Push          `yaml:"push"`
	History       History       `yaml:"history"`
	Guests        Guests        `yaml:"guests"`
	Devices       Devices       `yaml:"devices"`
	Log           Log           `yaml:"log"`
	Console       Console       `yaml:"console"`
	Stats         Stats         `yaml:"stats"`
	Cluster       Cluster       `yaml:"cluster"`
}

// App identifies the IM application and its signing key.
type App struct {
	SDKAppID  uint64 `yaml:"sdk_app_id"` // Tencent-style SDKAppID; default 1400000000
	SecretKey string `yaml:"secret_key"` // HMAC key for UserSig; empty = generated once and kept in storage.dir
	Admin     string `yaml:"admin"`      // app admin identifier; default "administrator"
	// PublicKey enables UserSig v1 (ECDSA-SHA256, apps created before
	// Tencent's 2019 switch to HMAC) beside v2: the app's EC public key as
	// PEM text ("-----BEGIN PUBLIC KEY-----...") or the path of a PEM file;
	// P-224, P-256, P-384, P-521 or secp256k1. Empty (default): v2 only.
	PublicKey string `yaml:"public_key"`
}

// VerifyKey parses app.public_key; nil when unset.
func (a App) VerifyKey() (*usersig.PublicKey, error) {
	pemText, err := a.PublicKeyPEM()
	if err != nil || pemText == nil {
		return nil, err
	}
	return usersig.ParsePublicKey(pemText)
}

// PublicKeyPEM returns app.public_key's PEM text: the value itself when it
// holds a PEM block, else the content of the file it names; "" when unset.
func (a App) PublicKeyPEM() ([]byte, error) {
	if a.PublicKey == "" {
		return nil, nil
	}
	if strings.Contains(a.PublicKey, "-----BEGIN") {
		return []byte(a.PublicKey), nil
	}
	return os.ReadFile(a.PublicKey)
}

// MQTT configures the MQTT listeners and protocol limits.
type MQTT struct {
	TCP                    string        `yaml:"tcp"`                       // TCP listener address; "" disables; default ":1883"
	WS                     string        `yaml:"ws"`                        // WebSocket listener address; "" disables; default ":8083"
	WSPath                 string        `yaml:"ws_path"`                   // WebSocket path; default "/mqtt"
	WSAllowedOrigins       []string      `yaml:"ws_allowed_origins"`        // exact Origin values allowed; empty = any
	TLS                    TLS           `yaml:"tls"`                       // optional MQTT over TLS listener
	MaxPacketSize          uint32        `yaml:"max_packet_size"`           // bytes; larger packets disconnect the client; default 65536
	MaxClientWritesPending int32         `yaml:"max_client_writes_pending"` // mochi's outbound packet queue per client; default 64
	QueueFullWait          time.Duration `yaml:"queue_full_wait"`           // a publish waits for room in a subscriber's nearly full queue while the subscriber makes progress, at most this long without; 0 = drop at once; default 1s
	TrimAfterLogins        int64         `yaml:"trim_after_logins"`         // logins since the last memory trim before one is due; 0 disables trimming; default 1000
	TrimQuiet              time.Duration `yaml:"trim_quiet"`                // a due trim (GC, freed memory back to the OS) runs once no login or PUBLISH came for this long; 0 disables; default 1s
	TrimInterval           time.Duration `yaml:"trim_interval"`             // at least this long between two trims; default 1m
	GCEveryLogins          int64         `yaml:"gc_every_logins"`           // a GC every this many logins while logins keep coming (login garbage reused, not resident); 0 off; default 2000
	LoginWorkers           int           `yaml:"login_workers"`             // goroutines kept to run logins on, off the connection's stack; 0 = a goroutine per login; default 64
	WriteBufferMax         int           `yaml:"write_buffer_max"`          // bytes queued per connection ahead of its socket before writes wait; default 262144
	ReadBuffer             int           `yaml:"read_buffer"`               // bytes of the pooled read buffer a streaming client borrows; default 4096
	CloseFlushTimeout      time.Duration `yaml:"close_flush_timeout"`       // how long a closing connection may take to write what is queued; default 1s
	MaxInflight            uint16        `yaml:"max_inflight"`              // unacked QoS>0 messages per client; default 1024
	ReceiveMaximum         uint16        `yaml:"receive_maximum"`           // inbound QoS>0 quota per client; default 256
	SessionExpiry          time.Duration `yaml:"session_expiry"`            // max persistent session lifetime; default 168h
	KeepaliveMin           uint16        `yaml:"keepalive_min"`             // seconds; 0 or lower keepalives are raised to this; default 10
	KeepaliveMax           uint16        `yaml:"keepalive_max"`             // seconds; higher keepalives are lowered to this; default 300
	MaxClients             int64         `yaml:"max_clients"`               // concurrent connections; 0 = what the open-file limit holds after fd_reserve; more than that refuses to start; default 0
	FDReserve              int64         `yaml:"fd_reserve"`                // open files kept free of MQTT connections for the store, HTTP and callbacks; default 2048
	ConnectTimeout         time.Duration `yaml:"connect_timeout"`           // a connection that has not completed CONNECT by then is closed; default 10s
	ReqRate                int           `yaml:"req_rate"`                  // im/req requests per second per connection; excess gets error 60007; default 50
	ReqBurst               int           `yaml:"req_burst"`                 // im/req requests a connection may send at once above req_rate; default 100
	DisconnectLinger       time.Duration `yaml:"disconnect_linger"`         // after a server DISCONNECT (MQTT 5), how long the client may still read it before the socket closes; default 500ms; 0 closes at once

	// Anonymous access, the topic ACL outside im/, topic aliases (config/plain.go, docs/mqtt.md).
	MQTTPlain `yaml:",inline"`
}

// TLS configures MQTT over TLS. It is enabled when Address is set.
type TLS struct {
	Address  string `yaml:"address"`   // e.g. ":8883"; "" disables
	CertFile string `yaml:"cert_file"` // PEM certificate chain
	KeyFile  string `yaml:"key_file"`  // PEM private key
}

// HTTP configures the REST / health listener.
type HTTP struct {
	Address      string        `yaml:"address"`       // default ":8080"; "" disables
	ReadTimeout  time.Duration `yaml:"read_timeout"`  // default 10s
	WriteTimeout time.Duration `yaml:"write_timeout"` // default 10s
	// Pprof serves Go's profiler under /debug/pprof on this listener. Off by
	// default: profiles expose internals and cost CPU while taken.
	Pprof bool `yaml:"pprof"`
}

// Storage configures the embedded Pebble store.
type Storage struct {
	Dir            string        `yaml:"dir"`             // data directory; default "./data"
	Sync           bool          `yaml:"sync"`            // fsync each commit group before acking; default true
	MaxBatch       int           `yaml:"max_batch"`       // appends per group commit; default 1024
	MaxQueue       int           `yaml:"max_queue"`       // appends waiting for the committer; default 8192
	InMemory       bool          `yaml:"in_memory"`       // keep everything in memory (tests, benchmarks); default false
	CommitTimeout  time.Duration `yaml:"commit_timeout"`  // longest a write waits for its commit (then an error: 90994, or 20004 when the store cannot write); default 10s
	CommitInterval time.Duration `yaml:"commit_interval"` // while writers are busy, the least time between the starts of two group commits (sends arriving sooner join the next one); default 1ms; 0 off
	RecoverDamaged bool          `yaml:"recover_damaged"` // start a store that lost acknowledged commits (damaged WAL) with what is readable, every stream under a new Epoch; default false: refuse to start
	NewEpochs      bool          `yaml:"-"`               // the -new-epochs flag, for one start after restoring a backup: every stream gets a new Epoch
	MinFreeMB      int           `yaml:"min_free_mb"`     // free space the data dir's filesystem keeps: below it writes are refused (20004) and /readyz fails; default 256; 0 off
	CacheMB        int           `yaml:"cache_mb"`        // Pebble block cache in MiB; default 64
	MemtableMB     int           `yaml:"memtable_mb"`     // size Pebble memtables grow to, MiB; default 64
	TableWriteMB   int           `yaml:"table_write_mb"`  // MB/s Pebble's flushes and compactions together write while they keep up; default 32; 0 unpaced
	ReadCacheMB    int           `yaml:"read_cache_mb"`   // cache of KV records read outside the committer, MiB; default 16; 0 off
	DedupMemory    int           `yaml:"dedup_memory"`    // recent dedup keys remembered (2.5 B each) to skip a disk read per send; default 16777216 (a 10m dedup window at ~28,000 sends/s); 0 off
	DedupSweepMax  int           `yaml:"dedup_sweep_max"` // dedup records one sweep (every retention.sweep_interval) examines, deleting the expired; default 1048576; 0 off
}

// Messages configures message validation, dedup and catch-up.
type Messages struct {
	MaxBytes        int           `yaml:"max_bytes"`         // max MsgBody+CloudCustomData bytes; default 12000 (Tencent: 12 KB)
	MaxElements     int           `yaml:"max_elements"`      // max elements in MsgBody; default 32
	MaxPayloadBytes int           `yaml:"max_payload_bytes"` // max send payload (JSON with every field); default 16384
	DedupWindow     time.Duration `yaml:"dedup_window"`      // a resend with the same From/To/MsgRandom inside it is not stored twice; default 10m
	SyncPageSize    int           `yaml:"sync_page_size"`    // events per sync page; default 100
	SyncMaxEvents   int           `yaml:"sync_max_events"`   // events replayed by one sync request before Complete=false; default 1000
	MaxRequestBytes int           `yaml:"max_request_bytes"` // max im/req payload; default 16384
}

// Delivery configures live fan-out of committed events.
type Delivery struct {
	Workers int `yaml:"workers"` // goroutines delivering group events; a group's always go through the same one, in order (a user's are written by the committer); default 16
	Queue   int `yaml:"queue"`   // events buffered per worker; default 4096
}

// Devices is the multi-device policy: how many connections (ClientIDs
// {UserID} and {UserID}:{device}) one user may hold at once. The same
// ClientID connecting again takes over its old connection and never counts
// twice; guests are not counted.
type Devices struct {
	MaxPerUser int    `yaml:"max_per_user"` // live connections per user; 0 = unlimited; default 10
	OnExceed   string `yaml:"on_exceed"`    // a login past the limit: kick_oldest (its oldest other connection is disconnected) or refuse (CONNACK 0x97); default kick_oldest
}

// Devices.OnExceed values.
const (
	DevicesKickOldest = "kick_oldest"
	DevicesRefuse     = "refuse"
)

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error; default info
	Format string `yaml:"format"` // text or json; default text
	// RefusalRate and RefusalBurst bound the Warn lines for refusals (logins,
	// subscriptions, publishes, Origins, rate limits): per reason, a token
	// bucket of RefusalBurst lines refilled at RefusalRate a second; the next
	// line logged says how many were suppressed. Every refusal is counted
	// in /metrics whatever is logged.
	RefusalRate  float64 `yaml:"refusal_rate"`  // lines per second per reason; default 1
	RefusalBurst int     `yaml:"refusal_burst"` // default 10
}

// Default returns the configuration that config.yaml ships with.
func Default() Config {
	return Config{
		App: App{SDKAppID: 1400000000, Admin: "administrator"},
		MQTT: MQTT{
			TCP: ":1883", WS: ":8083", WSPath: "/mqtt", WSAllowedOrigins: []string{},
			MaxPacketSize: 65536, MaxClientWritesPending: 64, QueueFullWait: time.Second,
			TrimAfterLogins: 1000, TrimQuiet: time.Second, TrimInterval: time.Minute, GCEveryLogins: 2000, LoginWorkers: 64, WriteBufferMax: 256 << 10, ReadBuffer: 4096, CloseFlushTimeout: time.Second, MaxInflight: 1024, ReceiveMaximum: 256,
			SessionExpiry: 168 * time.Hour, KeepaliveMin: 10, KeepaliveMax: 300, MaxClients: 0,
			FDReserve: 2048, ConnectTimeout: 10 * time.Second, ReqRate: 50, ReqBurst: 100,
			DisconnectLinger: 500 * time.Millisecond,
			MQTTPlain:        defaultMQTTPlain(),
		},
		HTTP: HTTP{Address: ":8080", ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second},
		Storage: Storage{Dir: "./data", Sync: true, MaxBatch: 1024, MaxQueue: 8192, CommitTimeout: 10 * time.Second, CommitInterval: time.Millisecond, MinFreeMB: 256, CacheMB: 64,
			MemtableMB: 64, TableWriteMB: 32, ReadCacheMB: 16, DedupMemory: 1 << 24, DedupSweepMax: 1 << 20},
		Messages:      Messages{MaxBytes: 12000, MaxElements: 32, MaxPayloadBytes: 16384, DedupWindow: 10 * time.Minute, SyncPageSize: 100, SyncMaxEvents: 1000, MaxRequestBytes: 16384},
		Retention:     defaultRetention(),
		Delivery:      Delivery{Workers: 16, Queue: 4096},
		Groups:        defaultGroups(),
		Conversations: defaultConversations(),
		Push:          defaultPush(),
		History:       defaultHistory(),
		Callbacks:     defaultCallbacks(),
		Relations:     defaultRelations(),
		REST:          defaultREST(),
		Devices:       Devices{MaxPerUser: 10, OnExceed: DevicesKickOldest},
		Log:           Log{Level: "info", Format: "text", RefusalRate: 1, RefusalBurst: 10},
		Console:       defaultConsole(),
		Stats:         defaultStats(),
		Cluster:       defaultCluster(),
	}
}

// Load reads a YAML file over the defaults, applies the environment override
// and validates. A missing file is an error; use Default() for no file.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(b)
}

// Parse decodes YAML over the defaults strictly, applies the environment
// override and validates, returning every problem found, each named by its
// key path: unknown keys (with the nearest known key), values of the wrong
// type (with how to write them), and what Validate finds.
func Parse(b []byte) (Config, error) {
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, fmt.Errorf("config: %w", err) // not YAML at all: the parser's line and reason
	}
	problems := checkYAML(&doc, reflect.TypeOf(cfg))
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		// checkYAML explains whatever the decoder rejects; should the
		// decoder ever reject more, say so rather than accept the file.
		for _, e := range te.Errors {
			if !lineCovered(e, problems) {
				problems = append(problems, problem{msg: e})
			}
		}
	}
	cfg.ApplyEnv()
	decoding := problems
	if err := cfg.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				path, msg, _ := strings.Cut(p, ": ")
				if !pathReported(path, decoding) { // a value not decoded kept its default: one problem is enough
					problems = append(problems, problem{path: path, msg: msg})
				}
			}
		}
	}
	if len(problems) > 0 {
		out := make([]string, len(problems))
		for i, p := range problems {
			out[i] = p.String()
		}
		return Config{}, &ValidationError{Problems: out}
	}
	return cfg, nil
}

// lineCovered reports whether a decoder error ("line N: ...") is on a line
// checkYAML already reported.
func lineCovered(e string, problems []problem) bool {
	var line int
	if _, err := fmt.Sscanf(e, "line %d:", &line); err != nil {
		return false
	}
	for _, p := range problems {
		if p.line == line {
			return true
		}
	}
	return false
}

func pathReported(path string, problems []problem) bool {
	for _, p := range problems {
		if p.path == path {
			return true
		}
	}
	return false
}

// EnvClusterRoutePassword overrides cluster.route_password.
const EnvClusterRoutePassword = "IMBROKER_CLUSTER_ROUTE_PASSWORD"

// ApplyEnv applies environment overrides: the secret key, the console
// password and the cluster's route password.
func (c *Config) ApplyEnv() {
	if v := os.Getenv(EnvClusterRoutePassword); v != "" {
		c.Cluster.RoutePassword = v
	}
	if v := os.Getenv(EnvSecretKey); v != "" {
		c.App.SecretKey = v
	}
	if v := os.Getenv(EnvConsolePassword); v != "" {
		c.Console.Password = v
	}
}

// ValidationError lists every configuration problem, one per line.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	return "config has " + fmt.Sprint(len(e.Problems)) + " problem(s):\n  " + strings.Join(e.Problems, "\n  ")
}
