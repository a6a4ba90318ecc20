package mqttd

import (
	"fmt"
	"log/slog"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/netlisten"
)

// maxClients raises the open-file limit to its hard limit and returns the
// MQTT connection cap: mqtt.max_clients, or when it is 0 what the limit
// holds after mqtt.fd_reserve. A max_clients the limit cannot hold is an
// error: past it, accepts fail with "too many open files" and the store
// and HTTP starve with MQTT, so the broker refuses to start rather than
// promise it. Where the limit is unknown (not Linux) max_clients is taken
// as set, 0 meaning no cap.
func maxClients(m config.MQTT, log *slog.Logger) (int64, error) {
	limit, before, err := netlisten.RaiseOpenFiles()
	if err != nil {
		log.Warn("open-file limit unknown; mqtt.max_clients not checked", "error", err)
		if m.MaxClients == 0 {
			return 1 << 62, nil
		}
		return m.MaxClients, nil
	}
	room := int64(limit) - m.FDReserve
	if limit > 1<<62 {
		room = 1 << 62
	}
	if room < 1 && m.MaxClients == 0 {
		// A small hard limit (1024 on some hosts) must not stop the default
		// configuration from starting: keep a quarter for the store and HTTP.
		room = int64(limit) - int64(limit)/4
		log.Warn("open-file limit is below mqtt.fd_reserve; keeping a quarter of it for the store and HTTP", "limit", limit, "fd_reserve", m.FDReserve, "max_clients", room)
	}
	log.Info("open-file limit", "limit", limit, "soft_limit_before", before, "fd_reserve", m.FDReserve, "max_clients", cmpOr(m.MaxClients, room))
	if room < 1 {
		return 0, fmt.Errorf("open-file limit %d leaves no room for MQTT connections after mqtt.fd_reserve %d: raise the limit (ulimit -n, systemd LimitNOFILE) or lower mqtt.fd_reserve", limit, m.FDReserve)
	}
	if m.MaxClients == 0 {
		return room, nil
	}
	if m.MaxClients > room {
		return 0, fmt.Errorf("mqtt.max_clients %d needs %d open files with mqtt.fd_reserve %d, but the limit is %d: raise the limit (ulimit -n, systemd LimitNOFILE), or lower mqtt.max_clients (0 = what the limit holds)",
			m.MaxClients, m.MaxClients+m.FDReserve, m.FDReserve, limit)
	}
	return m.MaxClients, nil
}

func cmpOr(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}
