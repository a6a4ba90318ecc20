package usersig

import "time"

// IssuedAt is the issue time (TLS.time) of a UserSig, v2 or v1; ok is
// false when sig does not decode. The kick rule (a sig issued before the
// user's last kick no longer logs in) reads it after Verify succeeded.
func IssuedAt(sig string) (t time.Time, ok bool) {
	js, err := inflate(sig)
	if err != nil {
		return time.Time{}, false
	}
	if isV1(js) {
		_, issued, _, err := decodeV1(js)
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(issued, 0), true
	}
	d, err := decodeV2(js)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(d.Time, 0), true
}
