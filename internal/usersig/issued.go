package usersig

import "time"

// IssuedAt is the issue time (TLS.time) of a UserSig that verified; ok is
// false when sig does not decode. The kick rule (a sig issued before the
// user's last kick no longer logs in) reads it.
func IssuedAt(sig string) (t time.Time, ok bool) {
	d, err := Decode(sig)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(d.Time, 0), true
}
