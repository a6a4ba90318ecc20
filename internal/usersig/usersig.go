// Package usersig generates and verifies Tencent Cloud IM UserSig tickets
// (TLS sig v2, HMAC-SHA256), byte-compatible with Tencent's official
// generators (tencentyun/tls-sig-api-v2-*), so clients that already hold a
// UserSig from a Tencent-style app server work unchanged.
package usersig

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/imbroker/imbroker/internal/imerr"
)

// Sentinel errors returned by Verify and Decode (rows of the error table,
// so the API boundary reports the code a Tencent client expects); compare
// with errors.Is.
var (
	// ErrEmpty: no UserSig was supplied.
	ErrEmpty = imerr.UserSigEmpty.Err()
	// ErrMalformed: bad encoding, compression, JSON, field types or version.
	ErrMalformed = imerr.UserSigInvalid.Err()
	// ErrExpired: the (authentic) UserSig is past TLS.time + TLS.expire.
	ErrExpired = imerr.UserSigExpired.Err()
	// ErrBadSig: the HMAC does not match (forged, or signed with another key).
	ErrBadSig = imerr.UserSigVerify.Err()
	// ErrUserMismatch: the UserSig was issued for another UserID.
	ErrUserMismatch = imerr.UserSigUser.Err()
	// ErrAppMismatch: the UserSig was issued for another SDKAppID.
	ErrAppMismatch = imerr.UserSigApp.Err()
)

// MaxLen bounds both the encoded UserSig and its inflated JSON; real ones
// are a few hundred bytes, and the bound stops zip bombs and memory abuse.
const MaxLen = 4096

// encoding is standard base64 with '+' '/' '=' replaced by '*' '-' '_',
// exactly as the official Go library declares it, so URL-safe in queries.
var encoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-").WithPadding('_')

// Signer holds one app's SDKAppID, secret key and, for v1 UserSigs,
// public key.
type Signer struct {
	AppID uint64
	Key   []byte // the console key's UTF-8 bytes; Tencent does not hex-decode it
	// PublicKey verifies v1 (ECDSA) UserSigs; nil: only v2 is accepted.
	PublicKey *PublicKey
}

// New returns a Signer for appID with the console secret key.
func New(appID uint64, key string) *Signer { return &Signer{AppID: appID, Key: []byte(key)} }

// Doc is the decoded content of a UserSig.
type Doc struct {
	Ver, Identifier string
	SDKAppID        uint64
	Expire, Time    int64  // Expire is relative to Time, in seconds
	UserBuf         []byte // nil when the field is absent
	Sig             string // std base64 HMAC-SHA256, as carried in the JSON
}

// wire is the JSON layout; field order matches the official generators.
// Pointers let decoding tell a missing or null field from a zero value.
type wire struct {
	Ver        *string `json:"TLS.ver"`
	Identifier *string `json:"TLS.identifier"`
	SDKAppID   *uint64 `json:"TLS.sdkappid"`
	Expire     *int64  `json:"TLS.expire"`
	Time       *int64  `json:"TLS.time"`
	UserBuf    *string `json:"TLS.userbuf,omitempty"`
	Sig        *string `json:"TLS.sig"`
}

// mac computes TLS.sig over the fixed-order "key:value\n" lines of d.
func mac(key []byte, d *Doc) string {
	m := getMAC(key)
	defer macs.Put(m)
	return string(m.sum(d))
}

// macState is one keyed HMAC and its buffers, reused across logins: a new
// HMAC-SHA256 and its message were ~1 kB of garbage per login.
type macState struct {
	key []byte
	h   hash.Hash
	buf []byte // the signed lines, then the encoded sum
}

var macs sync.Pool

// getMAC returns a pooled HMAC for key (one built for another key is
// replaced: a process normally has one).
func getMAC(key []byte) *macState {
	if m, ok := macs.Get().(*macState); ok && bytes.Equal(m.key, key) {
		m.h.Reset()
		return m
	}
	return &macState{key: bytes.Clone(key), h: hmac.New(sha256.New, key)}
}

// sum returns d's TLS.sig, std base64, in m's buffer (valid until m is
// reused).
func (m *macState) sum(d *Doc) []byte {
	b := append(m.buf[:0], "TLS.identifier:"...)
	b = append(b, d.Identifier...)
	b = append(b, "\nTLS.sdkappid:"...)
	b = strconv.AppendUint(b, d.SDKAppID, 10)
	b = append(b, "\nTLS.time:"...)
	b = strconv.AppendInt(b, d.Time, 10)
	b = append(b, "\nTLS.expire:"...)
	b = strconv.AppendInt(b, d.Expire, 10)
	b = append(b, '\n')
	if d.UserBuf != nil {
		b = append(b, "TLS.userbuf:"...)
		b = base64.StdEncoding.AppendEncode(b, d.UserBuf)
		b = append(b, '\n')
	}
	m.h.Write(b)
	n := len(b)
	b = m.h.Sum(b)
	b = base64.StdEncoding.AppendEncode(b, b[n:])
	m.buf = b
	return b[n+sha256.Size:]
}

// valid reports whether d.Sig is d's HMAC under key, in constant time.
func valid(key []byte, d *Doc) bool {
	m := getMAC(key)
	defer macs.Put(m)
	want := m.sum(d)
	if len(want) != len(d.Sig) {
		return false
	}
	var diff byte
	for i := range len(want) {
		diff |= want[i] ^ d.Sig[i]
	}
	return diff == 0
}

// Gen makes a UserSig valid for expire seconds from now.
func (s *Signer) Gen(userID string, expire int64) (string, error) {
	return s.GenAt(userID, time.Now(), expire, nil)
}

// GenAt is Gen with an explicit issue time and optional userbuf (nil = none;
// a non-nil empty slice is emitted as "" and signed, like the Python library).
// It is meant for tests and tools.
func (s *Signer) GenAt(userID string, issued time.Time, expire int64, userbuf []byte) (string, error) {
	if userID == "" || !utf8.ValidString(userID) {
		// JSON would mangle invalid UTF-8, leaving a sig that never verifies.
		return "", errors.New("usersig: UserID must be non-empty valid UTF-8")
	}
	d := Doc{Ver: "2.0", Identifier: userID, SDKAppID: s.AppID, Expire: expire, Time: issued.Unix(), UserBuf: userbuf}
	if !rangeOK(d.Time, d.Expire) {
		return "", errors.New("usersig: issue time and expire must be non-negative")
	}
	d.Sig = mac(s.Key, &d)
	out, err := encode(&d, zlib.BestCompression)
	if err == nil && len(out) > MaxLen {
		return "", errors.New("usersig: UserSig would exceed MaxLen")
	}
	return out, err
}

// encode serialises d as JSON, zlib and the UserSig base64 variant.
func encode(d *Doc, level int) (string, error) {
	w := wire{Ver: &d.Ver, Identifier: &d.Identifier, SDKAppID: &d.SDKAppID, Expire: &d.Expire, Time: &d.Time, Sig: &d.Sig}
	if d.UserBuf != nil {
		ub := base64.StdEncoding.EncodeToString(d.UserBuf)
		w.UserBuf = &ub
	}
	js, err := json.Marshal(&w)
	if err != nil {
		return "", err
	}
	return compressLevel(js, level)
}

// compress is compressLevel at the best compression.
func compress(js []byte) (string, error) { return compressLevel(js, zlib.BestCompression) }

// compressLevel deflates js into a zlib stream in the UserSig base64.
func compressLevel(js []byte, level int) (string, error) {
	var b bytes.Buffer
	zw, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(js); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return encoding.EncodeToString(b.Bytes()), nil
}

// rangeOK rejects negative times and a sum that would overflow int64.
func rangeOK(t, expire int64) bool { return t >= 0 && expire >= 0 && expire <= math.MaxInt64-t }

// Decode parses a UserSig without checking its HMAC (fields for diagnostics
// and tests). Every failure, including oversized input, is ErrMalformed.
func Decode(sig string) (Doc, error) {
	z, js, err := inflate(sig)
	if err != nil {
		return Doc{}, err
	}
	defer inflaters.Put(z)
	return decodeV2(js)
}

// inflater is one login's decoding memory, reused across logins: a new
// zlib reader allocates a ~40 kB flate window, garbage that grew the
// broker's heap (and so its memory per connection) by about that much per
// login in flight; the base64 and JSON buffers were another ~1 kB.
type inflater struct {
	sig []byte // the UserSig's bytes
	raw []byte // the zlib stream
	br  bytes.Reader
	zr  io.ReadCloser // nil until the first use
	lr  io.LimitedReader
	js  bytes.Buffer
}

var inflaters sync.Pool

// inflate undoes the base64 and zlib layers into a pooled buffer, valid
// until z goes back to inflaters; every failure is ErrMalformed.
func inflate[S string | []byte](sig S) (z *inflater, js []byte, err error) {
	if len(sig) > MaxLen {
		return nil, nil, ErrMalformed
	}
	z, _ = inflaters.Get().(*inflater)
	if z == nil {
		z = new(inflater)
	}
	z.sig = append(z.sig[:0], sig...)
	if z.raw, err = encoding.AppendDecode(z.raw[:0], z.sig); err != nil {
		inflaters.Put(z)
		return nil, nil, ErrMalformed
	}
	z.br.Reset(z.raw)
	if z.zr == nil {
		z.zr, err = zlib.NewReader(&z.br)
	} else {
		err = z.zr.(zlib.Resetter).Reset(&z.br, nil)
	}
	if err != nil {
		z.zr = nil // a reader that failed to start is not reused
		inflaters.Put(z)
		return nil, nil, ErrMalformed
	}
	// Read one byte past the limit to tell "exactly MaxLen" from "more";
	// reading to EOF is also what makes zlib check the Adler-32 trailer.
	z.lr = io.LimitedReader{R: z.zr, N: MaxLen + 1}
	z.js.Reset()
	if _, err = z.js.ReadFrom(&z.lr); err != nil || z.js.Len() > MaxLen {
		inflaters.Put(z)
		return nil, nil, ErrMalformed
	}
	return z, z.js.Bytes(), nil
}

// isV1 reports whether the JSON document is a v1 ticket: it carries
// TLS.version (v1) and no TLS.ver (v2).
func isV1(js []byte) bool {
	var probe struct {
		Ver     *json.RawMessage `json:"TLS.ver"`
		Version *json.RawMessage `json:"TLS.version"`
	}
	return json.Unmarshal(js, &probe) == nil && probe.Ver == nil && probe.Version != nil
}

// decodeV2 parses a v2 JSON document.
func decodeV2(js []byte) (Doc, error) {
	var err error
	var w wire
	// Typed fields make json refuse numbers given as strings, and vice versa.
	if json.Unmarshal(js, &w) != nil {
		return Doc{}, ErrMalformed
	}
	// A v1 (ECDSA) sig has TLS.version etc. instead, so it fails here.
	if w.Ver == nil || *w.Ver != "2.0" || w.Identifier == nil || w.SDKAppID == nil ||
		w.Expire == nil || w.Time == nil || w.Sig == nil || !rangeOK(*w.Time, *w.Expire) {
		return Doc{}, ErrMalformed
	}
	d := Doc{Ver: *w.Ver, Identifier: *w.Identifier, SDKAppID: *w.SDKAppID, Expire: *w.Expire, Time: *w.Time, Sig: *w.Sig}
	if w.UserBuf != nil {
		if d.UserBuf, err = base64.StdEncoding.DecodeString(*w.UserBuf); err != nil {
			return Doc{}, ErrMalformed
		}
	}
	return d, nil
}

// Verify checks sig for userID at time now; returns the expiry time on success.
// A v2 sig is checked with the HMAC key, a v1 sig (v1.go) with PublicKey.
// The signature is checked before expiry so a forged sig never reports
// "expired".
// A sig carrying TLS.userbuf (TRTC PrivateMapKey) is accepted if its HMAC,
// which covers the userbuf, matches; IM itself never issues one.
func (s *Signer) Verify(userID, sig string, now time.Time) (expiresAt time.Time, err error) {
	c, err := s.Check(userID, sig, now)
	return c.Expires, err
}

// Checked is what a verified sig says of its own life.
type Checked struct {
	Issued, Expires time.Time
}

// Check is Verify that also returns when the sig was issued, from the one
// decoding (a login needs both: decoding a sig twice was ~1.5 kB of garbage
// per login).
func (s *Signer) Check(userID, sig string, now time.Time) (Checked, error) {
	return check(s, userID, sig, now)
}

// CheckBytes is Check of a sig as the CONNECT packet carries it, without
// copying it into a string first (~300 bytes of garbage per login).
func (s *Signer) CheckBytes(userID string, sig []byte, now time.Time) (Checked, error) {
	return check(s, userID, sig, now)
}

func check[S string | []byte](s *Signer, userID string, sig S, now time.Time) (Checked, error) {
	if len(sig) == 0 {
		return Checked{}, ErrEmpty
	}
	z, js, err := inflate(sig)
	if err != nil {
		return Checked{}, err
	}
	defer inflaters.Put(z)
	d, err := decodeV2(js)
	switch {
	case err != nil && isV1(js): // a v1 document is never a valid v2 one: no TLS.ver
		return s.verifyV1(js, userID, now)
	case err != nil:
		return Checked{}, err
	case d.SDKAppID != s.AppID:
		return Checked{}, ErrAppMismatch
	case d.Identifier != userID:
		return Checked{}, ErrUserMismatch
	case !valid(s.Key, &d):
		return Checked{}, ErrBadSig
	case now.Unix() > d.Time+d.Expire:
		return Checked{}, ErrExpired
	}
	return Checked{Issued: time.Unix(d.Time, 0), Expires: time.Unix(d.Time+d.Expire, 0)}, nil
}
