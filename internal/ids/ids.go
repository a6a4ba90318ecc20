// Package ids checks the identifiers that enter imbroker from outside
// (UserIDs, MQTT ClientIDs, topic segments). They are checked at every entry,
// never assumed, because they become MQTT topic levels and store keys.
package ids

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUserIDBytes is Tencent IM's UserID limit.
const MaxUserIDBytes = 32

// MaxDeviceBytes bounds the device part of a ClientID.
const MaxDeviceBytes = 64

// Errors returned by the checks; callers map them to protocol codes.
var (
	ErrEmpty    = errors.New("empty identifier")
	ErrTooLong  = errors.New("identifier too long")
	ErrBadChars = errors.New("identifier contains a forbidden character")
	ErrReserved = errors.New("identifier uses a reserved prefix")
)

// CheckUserID accepts at most 32 bytes of valid UTF-8 with no MQTT wildcard
// or level separator (/ + #), no ':' (it separates user and device in a
// ClientID, so allowing it would let "a" and "a:b" claim the same ClientID),
// no NUL, no control characters, no Unicode whitespace (U+00A0, U+3000, …)
// and no invisible format characters (category Cf: U+200B, U+202E, U+FEFF,
// …): an ID that looks like another on screen, or reorders the text around
// it, must not become a distinct user.
func CheckUserID(id string) error {
	return check(id, MaxUserIDBytes)
}

// CheckDevice checks the device part of a ClientID with the same character rules.
func CheckDevice(d string) error {
	return check(d, MaxDeviceBytes)
}

func check(id string, max int) error {
	if id == "" {
		return ErrEmpty
	}
	if len(id) > max {
		return ErrTooLong
	}
	if !utf8.ValidString(id) {
		return ErrBadChars
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f || forbiddenRune(r) {
			return ErrBadChars
		}
		switch r {
		case '/', '+', '#', ':', '\\', '"':
			return ErrBadChars
		}
	}
	return nil
}

// forbiddenRune reports a non-ASCII character no identifier may hold:
// control characters (C1 included), Unicode whitespace (White_Space: NBSP,
// the U+2000 spaces, U+2028/2029, U+3000, …) and format characters (Cf:
// zero-width spaces and joiners, bidi overrides, the BOM, …).
func forbiddenRune(r rune) bool {
	return r >= 0x80 && (unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r))
}

// SplitClientID splits "{user}" or "{user}:{device}" and checks both parts.
func SplitClientID(clientID string) (user, device string, err error) {
	user, device, found := strings.Cut(clientID, ":")
	if err := CheckUserID(user); err != nil {
		return "", "", err
	}
	if found {
		if err := CheckDevice(device); err != nil {
			return "", "", err
		}
	}
	return user, device, nil
}

// MaxGroupIDBytes is Tencent IM's custom GroupId limit.
const MaxGroupIDBytes = 48

// GeneratedGroupPrefix starts every broker-made GroupId. Tencent's "@TGS#"
// cannot be used: '#' is an MQTT wildcard, and a GroupId is a topic level.
const GeneratedGroupPrefix = "@TGS_"

// CheckGroupID accepts 1 to 48 bytes of printable ASCII without / + # \ "
// or whitespace: no Unicode at all, so no Unicode whitespace or invisible
// character either. Custom IDs may not start with "@TGS" (reserved for generated ones).
func CheckGroupID(id string, custom bool) error {
	if id == "" {
		return ErrEmpty
	}
	if len(id) > MaxGroupIDBytes {
		return ErrTooLong
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 0x21 || c > 0x7e || c == '/' || c == '+' || c == '#' || c == '\\' || c == '"' {
			return ErrBadChars
		}
	}
	if custom && strings.HasPrefix(id, "@TGS") {
		return ErrReserved
	}
	return nil
}
