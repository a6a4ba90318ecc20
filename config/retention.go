package config

import "time"

// Retention bounds how long stored events are kept. A background sweep
// deletes, per stream (a user's or a stored group's events), the events older
// than MaxAge and those beyond the MaxPerStream newest. A sync from before
// what is kept is told so (docs/protocol.md, sync).
type Retention struct {
	MaxAge        time.Duration `yaml:"max_age"`        // events older than this are deleted; 0 = kept regardless of age; default 168h (7 days)
	MaxPerStream  int           `yaml:"max_per_stream"` // newest events kept per stream; 0 = no cap; default 10000
	SweepInterval time.Duration `yaml:"sweep_interval"` // how often the sweep runs; default 1m
	SweepDuty     float64       `yaml:"sweep_duty"`     // share of its time the sweep works: after each piece it rests (1-duty)/duty as long as the piece took; default 0.1; 1 = back to back
}

func defaultRetention() Retention {
	return Retention{MaxAge: 168 * time.Hour, MaxPerStream: 10000, SweepInterval: time.Minute, SweepDuty: 0.1}
}

func (v *validator) retention(r Retention) {
	v.check(r.MaxAge >= 0, "retention.max_age", "must not be negative (0 = no age limit)")
	v.check(r.MaxPerStream >= 0, "retention.max_per_stream", "must not be negative (0 = no cap)")
	v.positive("retention.sweep_interval", r.SweepInterval)
	v.check(r.SweepDuty > 0 && r.SweepDuty <= 1, "retention.sweep_duty", "must be above 0 and at most 1 (1 = no rests)")
}
