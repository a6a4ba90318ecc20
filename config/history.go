package config

import "time"

// History configures open_msg_svc/get_history: hourly message-record files
// written under {storage.dir}/history and served by imbroker's own HTTP
// listener behind time-limited signed links (docs/rest.md).
type History struct {
	// LinkTTL is how long a download link (and its file) stays valid; default 1h.
	LinkTTL time.Duration `yaml:"link_ttl"`
	// PublicURL is the base of download links ("https://im.example.com");
	// empty (default): the scheme and Host of the get_history request.
	PublicURL string `yaml:"public_url"`
	// FileMessages is how many messages one file holds; an hour with more
	// gets several files; default 100000.
	FileMessages int `yaml:"file_messages"`
	// UTCOffset is the time zone of MsgTime ("YYYYMMDDHH"). Tencent reads it
	// as Beijing time, UTC+8; default 8h.
	UTCOffset time.Duration `yaml:"utc_offset"`
}

func defaultHistory() History {
	return History{LinkTTL: time.Hour, FileMessages: 100000, UTCOffset: 8 * time.Hour}
}

func (v *validator) history(h History) {
	v.positive("history.link_ttl", h.LinkTTL)
	v.check(h.FileMessages >= 1, "history.file_messages", "must be at least 1")
	v.check(h.UTCOffset > -24*time.Hour && h.UTCOffset < 24*time.Hour && h.UTCOffset%time.Minute == 0,
		"history.utc_offset", "must be whole minutes between -24h and 24h")
}
