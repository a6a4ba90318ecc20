package ids

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// refusedChars are the single characters CheckUserID and CheckDevice must
// refuse wherever they appear in an identifier.
var refusedChars = []struct {
	name string
	s    string
}{
	{"slash", "/"},
	{"plus", "+"},
	{"hash", "#"},
	{"colon", ":"},
	{"NUL", "\x00"},
	{"SOH", "\x01"},
	{"US", "\x1f"},
	{"DEL", "\x7f"},
	{"NEL", "\u0085"},
	{"C1 CSI", "\u009b"},
	{"space", " "},
	{"tab", "\t"},
	{"newline", "\n"},
	{"CR", "\r"},
	{"invalid UTF-8", "\xff"},
	{"truncated UTF-8", "\xe5\xbc"},
	{"line separator", "\u2028"},
	{"paragraph separator", "\u2029"},
	{"BOM", "\ufeff"},
	{"NBSP", "\u00a0"},
	{"ogham space", "\u1680"},
	{"en quad", "\u2000"},
	{"hair space", "\u200a"},
	{"narrow NBSP", "\u202f"},
	{"math space", "\u205f"},
	{"ideographic space", "\u3000"},
	{"soft hyphen", "\u00ad"},
	{"zero-width space", "\u200b"},
	{"ZWNJ", "\u200c"},
	{"ZWJ", "\u200d"},
	{"LRM", "\u200e"},
	{"RLO", "\u202e"},
	{"word joiner", "\u2060"},
	{"invisible times", "\u2062"},
	{"Arabic letter mark", "\u061c"},
	{"Mongolian vowel separator", "\u180e"},
	{"tag space", "\U000e0020"},
	{"backslash", `\`},
	{"double quote", `"`},
}

func TestCheckUserIDAccepts(t *testing.T) {
	for _, id := range []string{
		"alice",
		"user_42",
		"a-b",
		"a",
		"A.b~c!d$e&f'g(h)i*j,k;l=m@n",
		strings.Repeat("x", MaxUserIDBytes),
		"张三",
		strings.Repeat("张", MaxUserIDBytes/3), // 30 bytes
		"émile",
		"ǅ", "Ⅻ", "①", "😀", // letters, numbers and symbols outside ASCII are fine
	} {
		if err := CheckUserID(id); err != nil {
			t.Errorf("CheckUserID(%q) = %v, want nil", id, err)
		}
	}
}

func TestCheckUserIDRefuses(t *testing.T) {
	type refusal struct {
		name string
		id   string
		want error
	}
	tests := []refusal{
		{"empty", "", ErrEmpty},
		{"33 bytes", strings.Repeat("x", MaxUserIDBytes+1), ErrTooLong},
		{"11 CJK runes = 33 bytes", strings.Repeat("张", 11), ErrTooLong},
		{"64 bytes", strings.Repeat("x", MaxDeviceBytes), ErrTooLong},
	}
	for _, c := range refusedChars {
		tests = append(tests,
			refusal{c.name + " alone", c.s, ErrBadChars},
			refusal{c.name + " inside", "al" + c.s + "ice", ErrBadChars},
			refusal{c.name + " at end", "alice" + c.s, ErrBadChars},
		)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckUserID(tc.id); !errors.Is(err, tc.want) {
				t.Errorf("CheckUserID(%q) = %v, want %v", tc.id, err, tc.want)
			}
		})
	}
}

func TestCheckDevice(t *testing.T) {
	for _, d := range []string{
		"phone",
		"web-1",
		strings.Repeat("d", MaxUserIDBytes+1), // longer than a UserID may be
		strings.Repeat("d", MaxDeviceBytes),
		"手机",
	} {
		if err := CheckDevice(d); err != nil {
			t.Errorf("CheckDevice(%q) = %v, want nil", d, err)
		}
	}
	if err := CheckDevice(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("CheckDevice(\"\") = %v, want ErrEmpty", err)
	}
	if err := CheckDevice(strings.Repeat("d", MaxDeviceBytes+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("CheckDevice(65 bytes) = %v, want ErrTooLong", err)
	}
	for _, c := range refusedChars {
		if err := CheckDevice("ph" + c.s + "one"); !errors.Is(err, ErrBadChars) {
			t.Errorf("CheckDevice with %s = %v, want ErrBadChars", c.name, err)
		}
	}
}

func TestSplitClientID(t *testing.T) {
	tests := []struct {
		clientID  string
		user, dev string
		wantErr   error // nil means success
	}{
		{clientID: "alice", user: "alice"},
		{clientID: "alice:phone", user: "alice", dev: "phone"},
		{clientID: "张三:手机", user: "张三", dev: "手机"},
		{clientID: strings.Repeat("u", 32) + ":" + strings.Repeat("d", 64), user: strings.Repeat("u", 32), dev: strings.Repeat("d", 64)},
		{clientID: "alice:", wantErr: ErrEmpty},
		{clientID: "alice:a:b", wantErr: ErrBadChars},
		{clientID: ":x", wantErr: ErrEmpty},
		{clientID: ":", wantErr: ErrEmpty},
		{clientID: "", wantErr: ErrEmpty},
		{clientID: "alice/x", wantErr: ErrBadChars},
		{clientID: "alice:ph/one", wantErr: ErrBadChars},
		{clientID: "alice:ph one", wantErr: ErrBadChars},
		{clientID: strings.Repeat("u", 33) + ":d", wantErr: ErrTooLong},
		{clientID: "alice:" + strings.Repeat("d", 65), wantErr: ErrTooLong},
		{clientID: "\xff:phone", wantErr: ErrBadChars},
	}
	for _, tc := range tests {
		user, dev, err := SplitClientID(tc.clientID)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("SplitClientID(%q) error = %v, want %v", tc.clientID, err, tc.wantErr)
			}
			if user != "" || dev != "" {
				t.Errorf("SplitClientID(%q) = %q, %q on error, want empty", tc.clientID, user, dev)
			}
			continue
		}
		if err != nil || user != tc.user || dev != tc.dev {
			t.Errorf("SplitClientID(%q) = %q, %q, %v; want %q, %q, nil", tc.clientID, user, dev, err, tc.user, tc.dev)
		}
	}
}

func FuzzSplitClientID(f *testing.F) {
	for _, s := range []string{
		"alice", "alice:phone", "alice:", "alice:a:b", ":x", ":", "", "张三:手机",
		"a/b", "a+b:c", "a#", "\x00", "\xff", "\u2028", "\ufeff:x", `a\b`, `a"b`,
		strings.Repeat("u", 32) + ":" + strings.Repeat("d", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, clientID string) {
		user, dev, err := SplitClientID(clientID)
		if err != nil {
			if user != "" || dev != "" {
				t.Fatalf("SplitClientID(%q) = %q, %q with error %v", clientID, user, dev, err)
			}
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrBadChars) {
				t.Fatalf("SplitClientID(%q): unexpected error %v", clientID, err)
			}
			return
		}
		if strings.Contains(user, ":") {
			t.Fatalf("SplitClientID(%q): user %q contains ':'", clientID, user)
		}
		if err := CheckUserID(user); err != nil {
			t.Fatalf("SplitClientID(%q): user %q fails CheckUserID: %v", clientID, user, err)
		}
		if !utf8.ValidString(user) || !utf8.ValidString(dev) {
			t.Fatalf("SplitClientID(%q): invalid UTF-8 in %q, %q", clientID, user, dev)
		}
		if dev == "" {
			if clientID != user {
				t.Fatalf("SplitClientID(%q) = %q, \"\": clientID != user", clientID, user)
			}
			return
		}
		if err := CheckDevice(dev); err != nil {
			t.Fatalf("SplitClientID(%q): device %q fails CheckDevice: %v", clientID, dev, err)
		}
		if clientID != user+":"+dev {
			t.Fatalf("SplitClientID(%q) = %q, %q: clientID != user:device", clientID, user, dev)
		}
	})
}

func TestCheckGroupID(t *testing.T) {
	for _, id := range []string{"team-1", "@TGS#2ABCDEF", "a#b", "100%", "x"} {
		if err := CheckGroupID(id, false); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, tc := range []struct {
		id     string
		custom bool
		want   error
	}{{"", false, ErrEmpty}, {"a/b", false, ErrBadChars}, {"a+b", false, ErrBadChars}, {"a b", false, ErrBadChars},
		{strings.Repeat("g", MaxGroupIDBytes+1), false, ErrTooLong}, {"@TGS#MINE", true, ErrReserved}} {
		if err := CheckGroupID(tc.id, tc.custom); !errors.Is(err, tc.want) {
			t.Errorf("%q (custom %v): %v, want %v", tc.id, tc.custom, err, tc.want)
		}
	}
}

// TestGroupTopicLevel: a GroupId becomes a topic level with no '#' and
// comes back unchanged; levels never escaped ('%' alone) read as they are.
func TestGroupTopicLevel(t *testing.T) {
	for _, tc := range []struct{ gid, level string }{
		{"team-1", "team-1"}, {"@TGS#2ABC", "@TGS%232ABC"}, {"a%b", "a%25b"}, {"%23", "%2523"}, {"#%#", "%23%25%23"}, {"%", "%25"},
	} {
		if got := GroupTopicLevel(tc.gid); got != tc.level {
			t.Errorf("GroupTopicLevel(%q) = %q, want %q", tc.gid, got, tc.level)
		}
		if got := GroupIDFromTopicLevel(tc.level); got != tc.gid {
			t.Errorf("GroupIDFromTopicLevel(%q) = %q, want %q", tc.level, got, tc.gid)
		}
	}
	for level, gid := range map[string]string{"a%b": "a%b", "50%": "50%", "%2": "%2", "%2x": "%2x"} {
		if got := GroupIDFromTopicLevel(level); got != gid {
			t.Errorf("unescaped level %q = %q, want %q", level, got, gid)
		}
	}
}

func FuzzGroupTopicLevel(f *testing.F) {
	for _, s := range []string{"@TGS#A", "%", "%23", "a#%b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, gid string) {
		level := GroupTopicLevel(gid)
		if strings.Contains(level, "#") {
			t.Fatalf("level %q of %q holds '#'", level, gid)
		}
		if back := GroupIDFromTopicLevel(level); back != gid {
			t.Fatalf("%q -> %q -> %q", gid, level, back)
		}
	})
}
