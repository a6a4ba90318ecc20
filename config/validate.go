package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/imbroker/imbroker/internal/ids"
)

// Validate checks every field and returns a *ValidationError naming each
// problem by its key path, or nil.
func (c *Config) Validate() error {
	v := &validator{}
	v.check(c.App.SDKAppID > 0 && c.App.SDKAppID <= 1<<32-1, "app.sdk_app_id", "must be between 1 and 4294967295")
	if c.App.SecretKey != "" {
		v.check(len(c.App.SecretKey) >= 16, "app.secret_key", "must be at least 16 bytes (or empty to generate one)")
	}
	if err := ids.CheckUserID(c.App.Admin); err != nil {
		v.add("app.admin", err.Error())
	}
	if _, err := c.App.VerifyKey(); err != nil {
		v.add("app.public_key", err.Error())
	}

	v.addr("mqtt.tcp", c.MQTT.TCP, true)
	v.addr("mqtt.ws", c.MQTT.WS, true)
	v.check(strings.HasPrefix(c.MQTT.WSPath, "/"), "mqtt.ws_path", "must start with /")
	v.addr("mqtt.tls.address", c.MQTT.TLS.Address, true)
	if c.MQTT.TLS.Address != "" {
		v.check(c.MQTT.TLS.CertFile != "", "mqtt.tls.cert_file", "required when mqtt.tls.address is set")
		v.check(c.MQTT.TLS.KeyFile != "", "mqtt.tls.key_file", "required when mqtt.tls.address is set")
	}
	v.check(c.MQTT.TCP != "" || c.MQTT.WS != "" || c.MQTT.TLS.Address != "", "mqtt", "at least one of tcp, ws, tls.address must be set")
	v.check(c.MQTT.MaxPacketSize >= 1024, "mqtt.max_packet_size", "must be at least 1024")
	v.check(c.MQTT.MaxClientWritesPending >= 1, "mqtt.max_client_writes_pending", "must be at least 1")
	v.check(c.MQTT.QueueFullWait >= 0, "mqtt.queue_full_wait", "must not be negative")
	v.check(c.MQTT.TrimAfterLogins >= 0, "mqtt.trim_after_logins", "must not be negative")
	v.check(c.MQTT.TrimQuiet >= 0, "mqtt.trim_quiet", "must not be negative")
	v.check(c.MQTT.LoginWorkers >= 0, "mqtt.login_workers", "must not be negative")
	v.check(c.MQTT.TrimInterval >= 0, "mqtt.trim_interval", "must not be negative")
	v.check(c.MQTT.GCEveryLogins >= 0, "mqtt.gc_every_logins", "must not be negative")
	v.check(c.MQTT.WriteBufferMax >= 1024, "mqtt.write_buffer_max", "must be at least 1024")
	v.check(c.MQTT.ReadBuffer >= 512, "mqtt.read_buffer", "must be at least 512")
	v.positive("mqtt.close_flush_timeout", c.MQTT.CloseFlushTimeout)
	v.check(c.MQTT.MaxInflight >= 1, "mqtt.max_inflight", "must be at least 1")
	v.check(c.MQTT.ReceiveMaximum >= 1, "mqtt.receive_maximum", "must be at least 1")
	v.check(c.MQTT.SessionExpiry >= 0, "mqtt.session_expiry", "must not be negative")
	v.check(c.MQTT.KeepaliveMin >= 1, "mqtt.keepalive_min", "must be at least 1 (keepalive 0 lets a stalled socket block delivery forever)")
	v.check(c.MQTT.KeepaliveMax >= c.MQTT.KeepaliveMin, "mqtt.keepalive_max", "must be >= mqtt.keepalive_min")
	v.check(c.MQTT.MaxClients >= 0, "mqtt.max_clients", "must not be negative (0 = what the open-file limit holds)")
	v.check(c.MQTT.FDReserve >= 0, "mqtt.fd_reserve", "must not be negative")
	v.positive("mqtt.connect_timeout", c.MQTT.ConnectTimeout)
	v.check(c.MQTT.ReqRate >= 1, "mqtt.req_rate", "must be at least 1")
	v.check(c.MQTT.ReqBurst >= 1, "mqtt.req_burst", "must be at least 1")
	v.check(c.MQTT.DisconnectLinger >= 0 && c.MQTT.DisconnectLinger <= 5*time.Second, "mqtt.disconnect_linger", "must be 0 to 5s (0 closes at once)")
	v.mqttPlain(c.MQTT.MQTTPlain)

	v.addr("http.address", c.HTTP.Address, true)
	ls := []listener{{"mqtt.tcp", c.MQTT.TCP}, {"mqtt.ws", c.MQTT.WS},
		{"mqtt.tls.address", c.MQTT.TLS.Address}, {"http.address", c.HTTP.Address}}
	if c.Cluster.Enabled {
		ls = append(ls, listener{"cluster.listen", c.Cluster.Listen}, listener{"cluster.client_listen", c.Cluster.ClientListen})
	}
	v.distinctPorts(ls...)
	v.positive("http.read_timeout", c.HTTP.ReadTimeout)
	v.positive("http.write_timeout", c.HTTP.WriteTimeout)

	v.check(c.Storage.InMemory || c.Storage.Dir != "", "storage.dir", "required unless storage.in_memory")
	v.check(c.Storage.MaxBatch >= 1, "storage.max_batch", "must be at least 1")
	v.check(c.Storage.MaxQueue >= 1, "storage.max_queue", "must be at least 1")
	v.positive("storage.commit_timeout", c.Storage.CommitTimeout)
	v.check(c.Storage.CommitInterval >= 0 && c.Storage.CommitInterval <= 100*time.Millisecond, "storage.commit_interval", "must be 0 (off) to 100ms")
	v.check(c.Storage.MinFreeMB >= 0, "storage.min_free_mb", "must not be negative (0 = no check)")
	v.check(c.Storage.CacheMB >= 1, "storage.cache_mb", "must be at least 1")
	v.check(c.Storage.MemtableMB >= 1 && c.Storage.MemtableMB <= 1024, "storage.memtable_mb", "must be 1 to 1024")
	v.check(c.Storage.TableWriteMB >= 0 && c.Storage.TableWriteMB <= 100000, "storage.table_write_mb", "must be 0 (unpaced) to 100000")
	v.check(c.Storage.ReadCacheMB >= 0, "storage.read_cache_mb", "must not be negative")
	v.check(c.Storage.DedupMemory >= 0 && c.Storage.DedupMemory <= 1<<32, "storage.dedup_memory", "must be 0 (off) to 4294967296 keys (2.5 bytes each)")
	v.check(c.Storage.DedupSweepMax >= 0, "storage.dedup_sweep_max", "must not be negative (0 = no sweep)")

	v.check(c.Messages.MaxBytes >= 64, "messages.max_bytes", "must be at least 64")
	v.check(c.Messages.MaxElements >= 1, "messages.max_elements", "must be at least 1")
	v.check(c.Messages.MaxPayloadBytes >= c.Messages.MaxBytes, "messages.max_payload_bytes", "must be >= messages.max_bytes")
	v.check(c.MQTT.MaxPacketSize >= uint32(c.Messages.MaxPayloadBytes)+1024, "mqtt.max_packet_size", "must exceed messages.max_payload_bytes by at least 1024")
	v.positive("messages.dedup_window", c.Messages.DedupWindow)
	v.check(c.Messages.SyncPageSize >= 1, "messages.sync_page_size", "must be at least 1")
	v.check(c.Messages.SyncMaxEvents >= c.Messages.SyncPageSize, "messages.sync_max_events", "must be >= messages.sync_page_size")
	v.check(c.Messages.MaxRequestBytes >= 256, "messages.max_request_bytes", "must be at least 256")

	v.retention(c.Retention)
	v.console(c.Console, c.Stats)

	v.check(c.Delivery.Workers >= 1 && c.Delivery.Workers <= 1024, "delivery.workers", "must be between 1 and 1024")
	v.check(c.Delivery.Queue >= 1, "delivery.queue", "must be at least 1")

	v.groups(c.Groups)
	v.conversations(c.Conversations)
	v.push(c.Push)
	v.history(c.History)
	v.callbacks(c.Callbacks)
	v.relations(c.Relations)
	v.rest(c.REST)
	v.cluster(c.Cluster)
	v.clusterStorage(c.Cluster, c.Storage)
	v.check(c.Devices.MaxPerUser >= 0, "devices.max_per_user", "must not be negative (0 = unlimited)")
	v.oneOf("devices.on_exceed", c.Devices.OnExceed, DevicesKickOldest, DevicesRefuse)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.check(c.Log.RefusalRate > 0, "log.refusal_rate", "must be positive")
	v.check(c.Log.RefusalBurst >= 1, "log.refusal_burst", "must be at least 1")
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

type validator struct{ problems []string }

func (v *validator) add(path, msg string) { v.problems = append(v.problems, path+": "+msg) }

func (v *validator) check(ok bool, path, msg string) {
	if !ok {
		v.add(path, msg)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	v.check(d > 0, path, "must be a positive duration such as 10s")
}

func (v *validator) addr(path, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.add(path, "required")
		}
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		v.add(path, fmt.Sprintf("not a host:port address: %q", addr))
	}
}

func (v *validator) oneOf(path, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(path, fmt.Sprintf("%q is not one of %s", val, strings.Join(allowed, ", ")))
}

// A listener is one configured listen address and its key.
type listener struct{ path, addr string }

// distinctPorts reports each pair of enabled listeners that would listen on
// the same port: same host, or either on all interfaces ("", 0.0.0.0, ::).
// Port 0 (any free port) never clashes; invalid addresses are reported by
// addr.
func (v *validator) distinctPorts(ls ...listener) {
	type bound struct{ path, addr, host, port string }
	var bs []bound
	for _, l := range ls {
		host, port, err := net.SplitHostPort(l.addr)
		if l.addr == "" || err != nil {
			continue
		}
		if n, err := net.LookupPort("tcp", port); err == nil {
			port = strconv.Itoa(n)
		}
		if port == "0" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = ""
		}
		b := bound{l.path, l.addr, strings.ToLower(host), port}
		for _, o := range bs {
			if o.port == b.port && (o.host == b.host || o.host == "" || b.host == "") {
				v.add(b.path, fmt.Sprintf("%q uses the same port as %s (%q): give each listener its own port", b.addr, o.path, o.addr))
			}
		}
		bs = append(bs, b)
	}
}
