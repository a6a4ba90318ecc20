package usersig

// UserSig v1 (TLS sig "201610110000"): the ECDSA-SHA256 tickets of apps
// created before Tencent's 2019 switch to HMAC. The app keeps the private
// key; the server verifies with the public key (app.public_key). The format
// is the one tencentyun/tls-sig-api-golang and tls-sig-api-node write: a JSON
// object of string values, zlib, the '*' '-' '_' base64; TLS.sig is the
// standard base64 of an ASN.1 DER ECDSA signature of SHA-256 over the
// "key:value\n" lines v1Content lists.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/imbroker/imbroker/internal/imerr"
)

// ErrNoPublicKey: a v1 (ECDSA) UserSig reached an app without
// app.public_key (Tencent 70016, "public key not found").
var ErrNoPublicKey = imerr.UserSigNoKey.Err()

// v1Version is TLS.version as every v1 generator writes it.
const v1Version = "201610110000"

// Curve OIDs Go's x509 does not know. Tencent's own v1 keys (the node
// generator's ec_key.pem, the console's old downloads) are secp256k1.
var oidSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}

var oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

// PublicKey verifies v1 UserSigs: NIST P-224, P-256, P-384, P-521 (what
// Go's and OpenSSL's generators accept) and secp256k1.
type PublicKey struct {
	Curve  string // "P-256", "secp256k1", ...
	verify func(digest, der []byte) bool
}

// PrivateKey signs v1 UserSigs (imbroker usersig, tests).
type PrivateKey struct {
	Curve string
	sign  func(digest []byte) ([]byte, error)
	pub   *PublicKey
}

// Public is the verifying half of k.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// ParsePublicKey reads a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) block.
func ParsePublicKey(pemText []byte) (*PublicKey, error) {
	for rest := pemText; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("usersig: no PEM PUBLIC KEY block")
		}
		if b.Type != "PUBLIC KEY" {
			continue
		}
		if k, err := x509.ParsePKIXPublicKey(b.Bytes); err == nil {
			ek, ok := k.(*ecdsa.PublicKey)
			if !ok {
				return nil, fmt.Errorf("usersig: public key is %T, not ECDSA", k)
			}
			return stdPublic(ek), nil
		}
		return parseSecp256k1SPKI(b.Bytes)
	}
}

func stdPublic(k *ecdsa.PublicKey) *PublicKey {
	return &PublicKey{Curve: k.Curve.Params().Name, verify: func(d, der []byte) bool { return ecdsa.VerifyASN1(k, d, der) }}
}

func secpPublic(k *secp256k1.PublicKey) *PublicKey {
	return &PublicKey{Curve: "secp256k1", verify: func(d, der []byte) bool {
		sig, err := secpecdsa.ParseDERSignature(der)
		return err == nil && sig.Verify(d, k)
	}}
}

// parseSecp256k1SPKI reads an SPKI that x509 refused: only secp256k1.
func parseSecp256k1SPKI(der []byte) (*PublicKey, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) > 0 {
		return nil, errors.New("usersig: malformed public key")
	}
	var curve asn1.ObjectIdentifier
	if !spki.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, errors.New("usersig: public key is not an EC key")
	}
	if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(oidSecp256k1) {
		return nil, errors.New("usersig: unsupported EC curve")
	}
	k, err := secp256k1.ParsePubKey(spki.Key.RightAlign())
	if err != nil {
		return nil, fmt.Errorf("usersig: secp256k1 public key: %w", err)
	}
	return secpPublic(k), nil
}

// ParsePrivateKey reads a PEM "EC PRIVATE KEY" (SEC 1) or "PRIVATE KEY"
// (PKCS #8) block; "EC PARAMETERS" blocks before it are skipped, as
// Tencent's generators do.
func ParsePrivateKey(pemText []byte) (*PrivateKey, error) {
	for rest := pemText; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("usersig: no PEM private key block")
		}
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "EC PRIVATE KEY":
			if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
				return stdPrivate(k), nil
			}
			return parseSecp256k1SEC1(b.Bytes, nil)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err == nil {
				ek, ok := k.(*ecdsa.PrivateKey)
				if !ok {
					return nil, fmt.Errorf("usersig: private key is %T, not ECDSA", k)
				}
				return stdPrivate(ek), nil
			}
			return parseSecp256k1PKCS8(b.Bytes)
		default:
			return nil, fmt.Errorf("usersig: unexpected PEM block %q", b.Type)
		}
	}
}

func stdPrivate(k *ecdsa.PrivateKey) *PrivateKey {
	return &PrivateKey{Curve: k.Curve.Params().Name, pub: stdPublic(&k.PublicKey),
		sign: func(d []byte) ([]byte, error) { return ecdsa.SignASN1(rand.Reader, k, d) }}
}

// sec1Key is RFC 5915's ECPrivateKey.
type sec1Key struct {
	Version    int
	PrivateKey []byte
	Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// parseSecp256k1SEC1 reads a SEC 1 key that x509 refused; curve is the
// PKCS #8 wrapper's when the SEC 1 body names none.
func parseSecp256k1SEC1(der []byte, curve asn1.ObjectIdentifier) (*PrivateKey, error) {
	var k sec1Key
	if _, err := asn1.Unmarshal(der, &k); err != nil || k.Version != 1 {
		return nil, errors.New("usersig: malformed EC private key")
	}
	if len(k.Curve) > 0 {
		curve = k.Curve
	}
	if !curve.Equal(oidSecp256k1) || len(k.PrivateKey) == 0 || len(k.PrivateKey) > 32 {
		return nil, errors.New("usersig: unsupported EC private key")
	}
	priv := secp256k1.PrivKeyFromBytes(k.PrivateKey)
	return &PrivateKey{Curve: "secp256k1", pub: secpPublic(priv.PubKey()),
		// RFC 6979 deterministic nonces: no randomness needed.
		sign: func(d []byte) ([]byte, error) { return secpecdsa.Sign(priv, d).Serialize(), nil }}, nil
}

func parseSecp256k1PKCS8(der []byte) (*PrivateKey, error) {
	var p8 struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &p8); err != nil || !p8.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, errors.New("usersig: malformed or non-EC PKCS #8 key")
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(p8.Algorithm.Parameters.FullBytes, &curve); err != nil {
		return nil, errors.New("usersig: PKCS #8 key names no curve")
	}
	return parseSecp256k1SEC1(p8.PrivateKey, curve)
}

// v1Doc is a decoded v1 UserSig: every value a string, as generated.
type v1Doc map[string]string

// v1Content is the signed text: appid_at_3rd (when present: the node
// generator checks for it, the Go one always writes it), account_type,
// identifier, sdk_appid, time, expire_after, and userbuf when present.
func v1Content(d v1Doc) []byte {
	var b bytes.Buffer
	line := func(k string) { b.WriteString(k + ":" + d[k] + "\n") }
	if _, ok := d["TLS.appid_at_3rd"]; ok {
		line("TLS.appid_at_3rd")
	}
	for _, k := range []string{"TLS.account_type", "TLS.identifier", "TLS.sdk_appid", "TLS.time", "TLS.expire_after"} {
		line(k)
	}
	if _, ok := d["TLS.userbuf"]; ok {
		line("TLS.userbuf")
	}
	return b.Bytes()
}

// decodeV1 parses a v1 JSON document; every failure is ErrMalformed.
func decodeV1(js []byte) (d v1Doc, t, expire int64, err error) {
	if json.Unmarshal(js, &d) != nil {
		return nil, 0, 0, ErrMalformed // also: a value that is not a string
	}
	for _, k := range []string{"TLS.account_type", "TLS.identifier", "TLS.sdk_appid", "TLS.time", "TLS.expire_after", "TLS.sig"} {
		if _, ok := d[k]; !ok {
			return nil, 0, 0, ErrMalformed
		}
	}
	t, err1 := strconv.ParseInt(d["TLS.time"], 10, 64)
	expire, err2 := strconv.ParseInt(d["TLS.expire_after"], 10, 64)
	if err1 != nil || err2 != nil || !rangeOK(t, expire) {
		return nil, 0, 0, ErrMalformed
	}
	return d, t, expire, nil
}

// verifyV1 checks a v1 document in the order Verify checks v2: app, user,
// signature, then expiry, so a forged sig never reports "expired".
func (s *Signer) verifyV1(js []byte, userID string, now time.Time) (Checked, error) {
	d, t, expire, err := decodeV1(js)
	switch {
	case err != nil:
		return Checked{}, err
	case d["TLS.sdk_appid"] != strconv.FormatUint(s.AppID, 10):
		return Checked{}, ErrAppMismatch
	case d["TLS.identifier"] != userID:
		return Checked{}, ErrUserMismatch
	case s.PublicKey == nil:
		return Checked{}, ErrNoPublicKey
	}
	der, err := base64.StdEncoding.DecodeString(d["TLS.sig"])
	if err != nil {
		return Checked{}, ErrBadSig
	}
	digest := sha256.Sum256(v1Content(d))
	if !s.PublicKey.verify(digest[:], der) {
		return Checked{}, ErrBadSig
	}
	if now.Unix() > t+expire {
		return Checked{}, ErrExpired
	}
	return Checked{Issued: time.Unix(t, 0), Expires: time.Unix(t+expire, 0)}, nil
}

// GenV1 makes a v1 UserSig for appID and userID with key, issued at issued
// and valid for expire seconds, in the layout of Tencent's Go generator.
func GenV1(key *PrivateKey, appID uint64, userID string, issued time.Time, expire int64) (string, error) {
	if userID == "" || !utf8.ValidString(userID) {
		return "", errors.New("usersig: UserID must be non-empty valid UTF-8")
	}
	if !rangeOK(issued.Unix(), expire) {
		return "", errors.New("usersig: issue time and expire must be non-negative")
	}
	d := v1Doc{
		"TLS.account_type": "0", "TLS.identifier": userID, "TLS.appid_at_3rd": "0",
		"TLS.sdk_appid": strconv.FormatUint(appID, 10), "TLS.expire_after": strconv.FormatInt(expire, 10),
		"TLS.version": v1Version, "TLS.time": strconv.FormatInt(issued.Unix(), 10),
	}
	digest := sha256.Sum256(v1Content(d))
	der, err := key.sign(digest[:])
	if err != nil {
		return "", fmt.Errorf("usersig: sign: %w", err)
	}
	d["TLS.sig"] = base64.StdEncoding.EncodeToString(der)
	js, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	out, err := compress(js)
	if err == nil && len(out) > MaxLen {
		return "", errors.New("usersig: UserSig would exceed MaxLen")
	}
	return out, err
}
