package config

import "time"

// EnvConsolePassword overrides console.password when set, so the password
// can stay out of files.
const EnvConsolePassword = "IMBROKER_CONSOLE_PASSWORD"

// Console configures the web console served under /console on the HTTP
// listener (docs/console.md). It is served only when http.address is set,
// enabled is true and a password is set.
type Console struct {
	Enabled        bool          `yaml:"enabled"`          // serve /console; default true
	Password       string        `yaml:"password"`         // the app admin's console password, at least 12 bytes; empty = generated into {storage.dir}/console_password (console.ResolvePassword)
	SessionTTL     time.Duration `yaml:"session_ttl"`      // a sign-in lasts this long; default 8h
	SignInFailures int           `yaml:"sign_in_failures"` // failed sign-ins allowed per client address per minute; default 5
}

// Stats configures the durable per-day statistics (console Statistics page,
// openconfigsvr/getappinfo).
type Stats struct {
	Interval time.Duration `yaml:"interval"`  // how often the counters are sampled; default 10s
	KeepDays int           `yaml:"keep_days"` // days kept; at least 90; default 400
}

func defaultConsole() Console {
	return Console{Enabled: true, SessionTTL: 8 * time.Hour, SignInFailures: 5}
}

func defaultStats() Stats { return Stats{Interval: 10 * time.Second, KeepDays: 400} }

func (v *validator) console(c Console, s Stats) {
	if c.Password != "" {
		v.check(len(c.Password) >= 12, "console.password", "must be at least 12 bytes (or empty: one is generated into the data dir)")
	}
	v.positive("console.session_ttl", c.SessionTTL)
	v.check(c.SignInFailures >= 1, "console.sign_in_failures", "must be at least 1")
	v.positive("stats.interval", s.Interval)
	v.check(s.KeepDays >= 90, "stats.keep_days", "must be at least 90")
}
