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

// GeneratedGroupPrefix starts every broker-made GroupId, as Tencent's do.
// '#' is an MQTT wildcard, so in topic names a GroupId is escaped
// (GroupTopicLevel): im/g/@TGS%23ABC.
const GeneratedGroupPrefix = "@TGS#"

// CheckGroupID accepts 1 to 48 bytes of printable ASCII without / + \ "
// or whitespace: no Unicode at all, so no Unicode whitespace or invisible
// character either. '#' is allowed, as in Tencent's "@TGS#" ids (topic
// names escape it: GroupTopicLevel). Custom IDs may not start with "@TGS"
// (reserved for generated ones).
func CheckGroupID(id string, custom bool) error {
	if id == "" {
		return ErrEmpty
	}
	if len(id) > MaxGroupIDBytes {
		return ErrTooLong
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 0x21 || c > 0x7e || c == '/' || c == '+' || c == '\\' || c == '"' {
			return ErrBadChars
		}
	}
	if custom && strings.HasPrefix(id, "@TGS") {
		return ErrReserved
	}
	return nil
}

// A GroupId is one level of the group topics (im/g/{gid},
// im/send/group/{gid}). '#' may not appear in an MQTT topic name (and is
// the multi-level wildcard in a filter), so the level is the GroupId with
// '%' written %25 and '#' written %23, the only two escapes: "@TGS#ABC"
// is the level "@TGS%23ABC". Payloads, REST and callbacks carry the
// GroupId itself. docs/protocol.md "Topics".
var groupLevelEscaper = strings.NewReplacer("%", "%25", "#", "%23")

// GroupTopicLevel is gid as a topic level.
func GroupTopicLevel(gid string) string {
	if !strings.ContainsAny(gid, "%#") {
		return gid
	}
	return groupLevelEscaper.Replace(gid)
}

// GroupIDFromTopicLevel is the GroupId of a group topic level: %23 is '#',
// %25 is '%'. Any other '%' stands for itself, so a client that never
// escaped a GroupId with '%' in it keeps working unless the id holds %23
// or %25.
func GroupIDFromTopicLevel(level string) string {
	if !strings.Contains(level, "%") {
		return level
	}
	var b strings.Builder
	for i := 0; i < len(level); i++ {
		if level[i] == '%' && i+2 < len(level) && (level[i+1:i+3] == "23" || level[i+1:i+3] == "25") {
			if level[i+2] == '3' {
				b.WriteByte('#')
			} else {
				b.WriteByte('%')
			}
			i += 2
			continue
		}
		b.WriteByte(level[i])
	}
	return b.String()
}
