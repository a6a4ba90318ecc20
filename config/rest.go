package config

import "fmt"

// REST configures the Tencent-compatible v4 admin API on the HTTP listener
// (docs/rest.md).
type REST struct {
	MaxBodyBytes int `yaml:"max_body_bytes"` // request body cap; larger bodies get 93000; default 1048576
	RateLimit    int `yaml:"rate_limit"`     // requests per second per API (Tencent: 200); excess gets 60007
	// RateLimits overrides RateLimit for single APIs, keyed
	// "{service}/{command}". The defaults are Tencent's lower limits.
	RateLimits map[string]int `yaml:"rate_limits"`
}

func defaultREST() REST {
	return REST{MaxBodyBytes: 1 << 20, RateLimit: 200, RateLimits: map[string]int{
		"im_open_login_svc/multiaccount_import": 100,
		"im_open_login_svc/account_delete":      100,
		"im_open_login_svc/account_check":       100,
		"open_msg_svc/get_history":              10,
	}}
}

// Limit is the per-second rate limit of one API.
func (r REST) Limit(api string) int {
	if n, ok := r.RateLimits[api]; ok {
		return n
	}
	return r.RateLimit
}

func (v *validator) rest(r REST) {
	v.check(r.MaxBodyBytes >= 1024, "rest.max_body_bytes", "must be at least 1024")
	v.check(r.RateLimit >= 1, "rest.rate_limit", "must be at least 1")
	for api, n := range r.RateLimits {
		v.check(n >= 1, "rest.rate_limits."+api, fmt.Sprintf("must be at least 1, got %d", n))
	}
}
