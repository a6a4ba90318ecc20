package broker

import (
	"context"

	"github.com/imbroker/imbroker/broker/mqttd"
	"github.com/imbroker/imbroker/broker/stats"
	"github.com/imbroker/imbroker/internal/imerr"
)

// The per-day statistics (broker/stats): sampled from the node's counters
// and told of every login or logout (statusTap) and group message
// (groups.Options.OnSent).

// startStats starts the collector over the open store and services.
func (b *Broker) startStats() (*stats.Collector, error) {
	return stats.Start(stats.Options{Store: b.store, Sample: b.statsSample, Interval: b.cfg.Stats.Interval,
		KeepDays: b.cfg.Stats.KeepDays, Log: b.log.With("component", "stats")})
}

func (b *Broker) statsSample() (stats.Sample, error) {
	c, err := b.Counters()
	return stats.Sample{C2CSent: c.C2CUpMsgNum, GroupSent: c.GroupUpMsgNum, Accounts: c.RegistUserNumTotal,
		Groups: c.GroupAllGroupNum, OnlineUsers: c.OnlineUserNum, OnlineConns: c.OnlineConnNum}, err
}

// groupSent marks a group active today (nil-safe: sends before the
// collector started are counted by its first sample, not as activity).
func (b *Broker) groupSent(gid string) {
	if s := b.stats.Load(); s != nil {
		s.GroupActive(gid)
	}
}

// statusTap tells the collector of every login and logout, then the
// relations service (presence to friends). The peaks come from the
// samples: counting who is online walks every connection, too much for
// every login.
type statusTap struct {
	b    *Broker
	next mqttd.Status
}

func (t statusTap) PresenceChanged(ctx context.Context, user string) {
	if s := t.b.stats.Load(); s != nil {
		s.Seen(user)
	}
	t.next.PresenceChanged(ctx, user)
}

// Days returns the last n days' figures, today's sampled now.
func (b *Broker) Days(ctx context.Context, n int) ([]stats.Day, error) {
	s := b.stats.Load()
	if s == nil {
		return nil, imerr.Internal.New("statistics are collected by the cluster's owner")
	}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s.Days(n)
}
