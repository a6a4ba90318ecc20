package config

import "time"

// History configures open_msg_svc/get_history: hourly message-record files
// served by imbroker's own HTTP listener behind time-limited signed links
// (docs/rest.md).
type History struct {
	// LinkTTL is how long a download link stays valid; default 1h.
	LinkTTL time.Duration `yaml:"link_ttl"`
	// PublicURL is the base of download links ("https://im.example.com");
	// empty (default): the scheme and Host of the get_history request.
	PublicURL string `yaml:"public_url"`
	// MaxMessages caps the messages one hour's file lists; default 1000000.
	MaxMessages int `yaml:"max_messages"`
}

func defaultHistory() History {
	return History{LinkTTL: time.Hour, MaxMessages: 1000000}
}

func (v *validator) history(h History) {
	v.positive("history.link_ttl", h.LinkTTL)
	v.check(h.MaxMessages >= 1, "history.max_messages", "must be at least 1")
}
