package usersig

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/imerr"
)

const (
	keyA = "test-secret-key-1234567890abcdef"
	keyB = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	appB = 1400000000
	// officialB is vector B without userbuf as produced by Python (zlib level 6).
	officialB = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMikVhRkFqUCxU1NTY3goiWZuSAxc1S1xZnpQJN9yhzNU-Q9y83Tg4vzirPLwqqcXAL8nZ1dkkr9nMtN3D3KQ5wNkjILtJ1MbJVqAa3HMfI_"
	timeB     = 1700000000
	expireB   = 15552000
)

// rawSig wraps arbitrary bytes in zlib and the UserSig base64 alphabet.
func rawSig(t testing.TB, payload []byte, level int) string {
	t.Helper()
	var b bytes.Buffer
	zw, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(payload)
	zw.Close()
	return encoding.EncodeToString(b.Bytes())
}

func TestError(t *testing.T) {
	if got := ErrExpired.Error(); got != "70001 UserSig expired" {
		t.Fatalf("Error() = %q", got)
	}
	var e *imerr.Error
	if !errors.As(error(ErrBadSig), &e) || e.Code != 70009 {
		t.Fatalf("errors.As failed: %v", e)
	}
}

func TestVectors(t *testing.T) {
	tests := []struct {
		name, key, id string
		app           uint64
		time, expire  int64
		userbuf       []byte
		want          string
	}{
		{"A", keyA, "user_42", 20030819, 1718764800, 604800, nil, "8y4PAvIKGCmKvubBW+DGnAa/LQ9VpBWp4fEjtiQ/VHQ="},
		{"B", keyB, "xiaojun", appB, timeB, expireB, nil, "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="},
		{"B/userbuf", keyB, "xiaojun", appB, timeB, expireB, []byte("abc"), "QjT201xPkXk/aM1e+y0vakZb0K2iPrFue++0s5y6bFM="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.app, tc.key)
			sig, err := s.GenAt(tc.id, time.Unix(tc.time, 0), tc.expire, tc.userbuf)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Decode(sig)
			if err != nil {
				t.Fatal(err)
			}
			if d.Sig != tc.want {
				t.Fatalf("TLS.sig = %s, want %s", d.Sig, tc.want)
			}
			if d.Ver != "2.0" || d.Identifier != tc.id || d.SDKAppID != tc.app || d.Time != tc.time ||
				d.Expire != tc.expire || !bytes.Equal(d.UserBuf, tc.userbuf) || (d.UserBuf == nil) != (tc.userbuf == nil) {
				t.Fatalf("decoded %+v", d)
			}
			exp, err := s.Verify(tc.id, sig, time.Unix(tc.time+1, 0))
			if err != nil || exp.Unix() != tc.time+tc.expire {
				t.Fatalf("Verify = %v, %v", exp, err)
			}
		})
	}
}

func TestOfficialPythonSig(t *testing.T) {
	d, err := Decode(officialB)
	if err != nil {
		t.Fatal(err)
	}
	want := Doc{Ver: "2.0", Identifier: "xiaojun", SDKAppID: appB, Expire: expireB, Time: timeB,
		Sig: "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="}
	if d.Ver != want.Ver || d.Identifier != want.Identifier || d.SDKAppID != want.SDKAppID ||
		d.Expire != want.Expire || d.Time != want.Time || d.UserBuf != nil || d.Sig != want.Sig {
		t.Fatalf("Decode = %+v, want %+v", d, want)
	}
	s := New(appB, keyB)
	exp, err := s.Verify("xiaojun", officialB, time.Unix(timeB+100, 0))
	if err != nil || !exp.Equal(time.Unix(timeB+expireB, 0)) {
		t.Fatalf("Verify = %v, %v", exp, err)
	}
	// The last valid second is TLS.time+TLS.expire itself.
	if _, err := s.Verify("xiaojun", officialB, time.Unix(timeB+expireB, 0)); err != nil {
		t.Fatalf("at expiry: %v", err)
	}
	if _, err := s.Verify("xiaojun", officialB, time.Unix(timeB+expireB+1, 0)); err != ErrExpired {
		t.Fatalf("after expiry: %v, want ErrExpired", err)
	}
}

func TestCompressionLevels(t *testing.T) {
	s := New(appB, keyB)
	d := Doc{Ver: "2.0", Identifier: "xiaojun", SDKAppID: appB, Expire: expireB, Time: timeB}
	d.Sig = mac(s.Key, &d)
	for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression, zlib.BestCompression} {
		sig, err := encode(&d, level)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify("xiaojun", sig, time.Unix(timeB, 0)); err != nil {
			t.Errorf("level %d: %v", level, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	s := New(1400000001, "k1")
	sig, err := s.Gen("alice", 3600)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) > MaxLen || strings.ContainsAny(sig, "+/=") {
		t.Fatalf("bad encoding: %q", sig)
	}
	now := time.Now()
	exp, err := s.Verify("alice", sig, now)
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(now); d < 3590*time.Second || d > 3601*time.Second {
		t.Fatalf("expiry %v from now", d)
	}
	if _, err := s.Verify("alice", sig, now.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("later: %v, want ErrExpired", err)
	}
}

func TestGenAtRejects(t *testing.T) {
	s := New(1, "k")
	for _, tc := range []struct {
		id     string
		issued time.Time
		expire int64
	}{
		{"", time.Unix(1, 0), 1},
		{"bad\xff", time.Unix(1, 0), 1},
		{"u", time.Unix(1, 0), -1},
		{"u", time.Unix(-1, 0), 1},
		{incompressible(8192), time.Unix(1, 0), 1},
	} {
		if _, err := s.GenAt(tc.id, tc.issued, tc.expire, nil); err == nil {
			t.Errorf("GenAt(%.10q, %v, %d) succeeded", tc.id, tc.issued.Unix(), tc.expire)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	s := New(appB, keyB)
	now := time.Unix(timeB+100, 0)
	gen := func(sg *Signer, id string) string {
		sig, err := sg.GenAt(id, time.Unix(timeB, 0), expireB, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	// Forged: flip one character of TLS.sig inside the JSON and re-encode.
	forged := func(pos int) string {
		d, _ := Decode(officialB)
		b := []byte(d.Sig)
		if b[pos] == 'A' {
			b[pos] = 'B'
		} else {
			b[pos] = 'A'
		}
		d.Sig = string(b)
		sig, err := encode(&d, zlib.DefaultCompression)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	// A forged sig past its expiry must still say "bad sig", not "expired".
	d, _ := Decode(officialB)
	d.Sig = strings.Repeat("A", 43) + "="
	forgedExpired, _ := encode(&d, zlib.DefaultCompression)

	json := func(s string) string { return rawSig(t, []byte(s), zlib.DefaultCompression) }
	bomb := rawSig(t, make([]byte, 1<<20), zlib.BestCompression)
	okJSON := `"TLS.ver":"2.0","TLS.identifier":"xiaojun","TLS.sdkappid":1400000000,"TLS.expire":15552000,"TLS.time":1700000000`
	okSig := `"TLS.sig":"LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="`

	tests := []struct {
		name, id, sig string
		now           time.Time
		want          error
	}{
		{"empty", "xiaojun", "", now, ErrEmpty},
		{"expired", "xiaojun", officialB, time.Unix(timeB+expireB+1, 0), ErrExpired},
		{"forged first char", "xiaojun", forged(0), now, ErrBadSig},
		{"forged last char", "xiaojun", forged(42), now, ErrBadSig},
		{"forged and expired", "xiaojun", forgedExpired, time.Unix(timeB+expireB+1, 0), ErrBadSig},
		{"other key", "xiaojun", gen(New(appB, keyA), "xiaojun"), now, ErrBadSig},
		{"other user", "xiaojun", gen(s, "xiaoming"), now, ErrUserMismatch},
		{"other app", "xiaojun", gen(New(appB+1, keyB), "xiaojun"), now, ErrAppMismatch},
		{"app checked before user", "other", gen(New(appB+1, keyB), "xiaojun"), now, ErrAppMismatch},
		{"x", "xiaojun", "x", now, ErrMalformed},
		{"!!!", "xiaojun", "!!!", now, ErrMalformed},
		{"std base64 alphabet", "xiaojun", strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(officialB), now, ErrMalformed},
		{"base64 of non-zlib", "xiaojun", encoding.EncodeToString([]byte("hello, world")), now, ErrMalformed},
		{"truncated zlib", "xiaojun", encoding.EncodeToString(mustRaw(t, officialB)[:60]), now, ErrMalformed},
		{"bad adler32", "xiaojun", encoding.EncodeToString(flipLast(mustRaw(t, officialB))), now, ErrMalformed},
		{"zlib of non-JSON", "xiaojun", json("not json"), now, ErrMalformed},
		{"JSON trailing garbage", "xiaojun", json("{" + okJSON + "," + okSig + "}x"), now, ErrMalformed},
		{"ver 1.0", "xiaojun", json(`{"TLS.ver":"1.0"` + okJSON[15:] + "," + okSig + "}"), now, ErrMalformed},
		{"ver missing", "xiaojun", json("{" + okJSON[16:] + "," + okSig + "}"), now, ErrMalformed},
		{"sig missing", "xiaojun", json("{" + okJSON + "}"), now, ErrMalformed},
		{"sig null", "xiaojun", json("{" + okJSON + `,"TLS.sig":null}`), now, ErrMalformed},
		{"sdkappid as string", "xiaojun", json(strings.Replace("{"+okJSON+","+okSig+"}", "1400000000", `"1400000000"`, 1)), now, ErrMalformed},
		{"time as float", "xiaojun", json(strings.Replace("{"+okJSON+","+okSig+"}", "1700000000", "1.7e9", 1)), now, ErrMalformed},
		{"negative expire", "xiaojun", json(strings.Replace("{"+okJSON+","+okSig+"}", "15552000", "-1", 1)), now, ErrMalformed},
		{"overflowing expiry", "xiaojun", json(strings.Replace("{"+okJSON+","+okSig+"}", "15552000", "9223372036854775807", 1)), now, ErrMalformed},
		{"userbuf not base64", "xiaojun", json("{" + okJSON + `,"TLS.userbuf":"!!",` + okSig + "}"), now, ErrMalformed},
		{"v1 without app.public_key", "xiaojun", json(`{"TLS.account_type":"0","TLS.identifier":"xiaojun","TLS.appid_at_3rd":"0",` +
			`"TLS.sdk_appid":"1400000000","TLS.expire_after":"15552000","TLS.version":"201610110000","TLS.time":"1700000000","TLS.sig":"MEUCIQ=="}`), now, ErrNoPublicKey},
		{"oversized input", "xiaojun", officialB + strings.Repeat("A", MaxLen), now, ErrMalformed},
		{"zip bomb", "xiaojun", bomb, now, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Verify(tc.id, tc.sig, tc.now); err != tc.want || !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if len(bomb) > MaxLen {
		t.Fatalf("zip bomb test input is %d bytes; it should pass the length check", len(bomb))
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	// Field order and extra fields do not matter: the doc is parsed as JSON.
	js := `{"TLS.sig":"LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4=","TLS.time":1700000000,"x":[1],` +
		`"TLS.expire":15552000,"TLS.sdkappid":1400000000,"TLS.identifier":"xiaojun","TLS.ver":"2.0"}`
	if _, err := New(appB, keyB).Verify("xiaojun", rawSig(t, []byte(js), 6), time.Unix(timeB, 0)); err != nil {
		t.Fatal(err)
	}
}

// incompressible returns n hex digits of a hash chain, so zlib cannot shrink
// it much and the resulting UserSig exceeds MaxLen.
func incompressible(n int) string {
	var b strings.Builder
	h := sha256.Sum256(nil)
	for b.Len() < n {
		h = sha256.Sum256(h[:])
		b.WriteString(hex.EncodeToString(h[:]))
	}
	return b.String()[:n]
}

func mustRaw(t testing.TB, sig string) []byte {
	b, err := encoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func flipLast(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 1
	return b
}

func FuzzVerify(f *testing.F) {
	s := New(appB, keyB)
	withBuf, _ := s.GenAt("xiaojun", time.Unix(timeB, 0), expireB, []byte("abc"))
	other, _ := New(appB, keyA).GenAt("xiaojun", time.Unix(timeB, 0), expireB, nil)
	for _, seed := range []string{officialB, withBuf, other, "", "x", "!!!", "eJw_", strings.Repeat("*", 100),
		encoding.EncodeToString([]byte("hello")), rawSig(f, []byte(`{"TLS.ver":"2.0"}`), 6),
		base64.StdEncoding.EncodeToString([]byte("x"))} {
		f.Add("xiaojun", seed, int64(timeB+100))
	}
	f.Fuzz(func(t *testing.T, id, sig string, now int64) {
		exp, err := s.Verify(id, sig, time.Unix(now, 0))
		if err != nil {
			var e *imerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("non-usersig error %v", err)
			}
			return
		}
		// Success must be repeatable and must survive a decode/re-sign cycle.
		if exp2, err := s.Verify(id, sig, time.Unix(now, 0)); err != nil || !exp2.Equal(exp) {
			t.Fatalf("re-verify: %v, %v", exp2, err)
		}
		d, err := Decode(sig)
		if err != nil {
			t.Fatalf("Decode after Verify OK: %v", err)
		}
		again, err := s.GenAt(d.Identifier, time.Unix(d.Time, 0), d.Expire, d.UserBuf)
		if err != nil {
			t.Fatalf("GenAt: %v", err)
		}
		if d2, _ := Decode(again); d2.Sig != d.Sig {
			t.Fatalf("re-signed TLS.sig %s, original %s", d2.Sig, d.Sig)
		}
		if _, err := s.Verify(id, again, time.Unix(now, 0)); err != nil {
			t.Fatalf("re-signed sig: %v", err)
		}
	})
}
