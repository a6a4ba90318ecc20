package usersig

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imbroker/imbroker/internal/imerr"
)

// Test vectors made by Tencent's own v1 generators (not by this package):
//
//   - v1NodeK1, v1NodeK1Userbuf: tencentyun/tls-sig-api-node (npm
//     tls-sig-api 1.0.2, TLSAPI.js genSig / genSigWithUserbuf "abc") with the
//     key pair that package ships (ec_key.pem, public.pem: secp256k1),
//     sdk_appid 1400001052, expire_after 15552000.
//   - v1GoP256: tencentyun/tls-sig-api-golang GenerateUsersigWithExpire with
//     the P-256 key pair of that repository's tls-sig-api_test.go,
//     sdk_appid 1400000000, expire 15552000.
const (
	v1NodeK1        = "eJxNjttOwkAURf-lvNaYM0Mv0MQHBtsqFFAuTeSlqczQnCLtZJgKxvjvxgaCr3tl7b2-YZUu74vttmlrm9svrSAEhLsuJqlqSztSBkI4U9FUbX1BhdYk88LmPSP-GUe5zzsEITAXEZGhxy9QnTUZlRc72xUyz-M44lX9VOZITQ0hcGQ*Q8bwBi0d-o6xYOC7PODcv*5RCSFMo-XoeWTczHFWfPDUFyZavj6m2cyxG6en2Lx9Een4LWmNlv3MSYYUDcuZbaVZTzYiK6nC6COZnkQ8GcfiYAPvneYx21exVsni9AA-v6emV2Q_"
	v1NodeK1Userbuf = "eJxNjttOg0AURf-lvGrMmaEDlTciFME2bVO89InQziAD5eIwUKrx342ERl-XytrZXxAtd3fJ8Vh3lY71pRFgA8LtiCUXlZapFApsGGRS5101qaRpJI8THRuK-ytaXsSjAhvIDBGRIKOTFEMjlYiTVI*DhDFGEa9pL1Qr6wpsoEhMgoTgn9Sy-D1GrHtzRi1KzYl3rVCHLgUb9q9hfj0h38GGlbd-CLau4efror4Ea5dlvudHj*TgeWwzD*sNz9w3VZw-c3we*r50gswJy3TBI*Y*aWFRTYKPF306p*HiZO5WhhuaN-7cUaXotksLvn8AbZ1exQ__"
	v1NodeTime      = 1796427226
	v1GoP256        = "eJxMj0FPs0AQhv-LXPvl6*62gHCrxTZQQEkr6olQdimjdCHsQrDG-26KNHGOz5OZed8vOAT7-1me153Uqf5sBDhA4N8vbhrkaabTRcv-YDE02Io0K7RowQFqGAYj5GaRC6mxwNENmNXvnZyU4h-pePO6tSTT3CSewIHw4W3txe5sXvLtiyJYuGEdJItyZ7jhcRfK*vWR91FwsGWvI7rePsVeufIHpejJZ-e*ecfQqrp5nlRhMrNWl-giNtGZHvfVs-bsjT8903i*FqWWbS6ZxZg18V60CmsJDjBCTUooHRN*-wQAAP--IfFX0w__"
	v1GoTime        = 1796427227

	// tls-sig-api-golang's test key pair (P-256).
	tencentP256Private = `-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIHu8zGfpauyNJ0eMT8tq9FMARsYhcGPnd1Q/pkLPUMxeoAoGCCqGSM49
AwEHoUQDQgAEnVSjrROQGp3NV37boSqrxIo5Jkd/IZxWS5daT4gJTCzagSZG3FqT
PHykr4GXXzT+o/aJlvKVXi7ksthSHOUmqQ==
-----END EC PRIVATE KEY-----
`
	tencentP256Public = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnVSjrROQGp3NV37boSqrxIo5Jkd/
IZxWS5daT4gJTCzagSZG3FqTPHykr4GXXzT+o/aJlvKVXi7ksthSHOUmqQ==
-----END PUBLIC KEY-----
`
	// Made with openssl for these tests: a PKCS #8 secp256k1 key and its
	// public key, and a PKCS #8 P-384 key.
	otherK1PKCS8 = `-----BEGIN PRIVATE KEY-----
MIGEAgEAMBAGByqGSM49AgEGBSuBBAAKBG0wawIBAQQgYKidUDlTUTIjgal82n+Y
2xNguH5KAUhldqJWtXW5kqGhRANCAAQCAH9U2zYT9EeOTR/gp8aUfNtyAeyYcoO6
k1UtGRRjcN1/u5n0ZaV4Dh+m4xnVKlV3aAFaOZU7GnjFRDWq4NsK
-----END PRIVATE KEY-----
`
	otherK1Public = `-----BEGIN PUBLIC KEY-----
MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEAgB/VNs2E/RHjk0f4KfGlHzbcgHsmHKD
upNVLRkUY3Ddf7uZ9GWleA4fpuMZ1SpVd2gBWjmVOxp4xUQ1quDbCg==
-----END PUBLIC KEY-----
`
	p384PKCS8 = `-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDD01qg2qk7MfzjssXeo
7aaogOFOw7MUwoZIAztDkPt8B7kU8+5qHi3q9F8GVhokYgOhZANiAATEPPcQVcy1
7hftRTa6Z3RUMkXDJhJdR7oQLxi+dltEi0TrAMQIu1q4DvDEkoxGGyAZSipYr8TG
y5ECKUKOxRuZ4/P0LEm40h5rrbLp4hXmgA0zkP33FijshHg3bN3hvuE=
-----END PRIVATE KEY-----
`
)

// The node package's ec_key.pem and public.pem (secp256k1), in testdata.
var tencentK1Private, tencentK1Public = readTestdata("tencent-node-ec_key.pem"), readTestdata("tencent-node-public.pem")

func readTestdata(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func mustPublic(t *testing.T, pemText string) *PublicKey {
	t.Helper()
	k, err := ParsePublicKey([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPrivate(t *testing.T, pemText string) *PrivateKey {
	t.Helper()
	k, err := ParsePrivateKey([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestV1TencentVectors: sigs from Tencent's generators verify, on both
// curves, and each wrong input gets v2's code.
func TestV1TencentVectors(t *testing.T) {
	k1 := &Signer{AppID: 1400001052, Key: []byte(keyB), PublicKey: mustPublic(t, tencentK1Public)}
	p256 := &Signer{AppID: 1400000000, Key: []byte(keyB), PublicKey: mustPublic(t, tencentP256Public)}
	if k1.PublicKey.Curve != "secp256k1" || p256.PublicKey.Curve != "P-256" {
		t.Fatalf("curves %s, %s", k1.PublicKey.Curve, p256.PublicKey.Curve)
	}
	at := func(sec int64) time.Time { return time.Unix(sec, 0) }
	wrongKey := &Signer{AppID: 1400001052, PublicKey: mustPublic(t, otherK1Public)}
	noKey := &Signer{AppID: 1400001052, Key: []byte(keyB)}
	wrongApp := &Signer{AppID: 1400000001, PublicKey: k1.PublicKey}
	tests := []struct {
		name string
		s    *Signer
		id   string
		sig  string
		now  time.Time
		want error
	}{
		{"node secp256k1", k1, "xiaojun", v1NodeK1, at(v1NodeTime + 1), nil},
		{"node secp256k1 userbuf", k1, "xiaojun", v1NodeK1Userbuf, at(v1NodeTime + 1), nil},
		{"go P-256", p256, "xiaojun", v1GoP256, at(v1GoTime + 15552000), nil},
		{"expired", k1, "xiaojun", v1NodeK1, at(v1NodeTime + 15552001), ErrExpired},
		{"other user", k1, "xiaoming", v1NodeK1, at(v1NodeTime), ErrUserMismatch},
		{"other app", wrongApp, "xiaojun", v1NodeK1, at(v1NodeTime), ErrAppMismatch},
		{"other key", wrongKey, "xiaojun", v1NodeK1, at(v1NodeTime), ErrBadSig},
		{"other curve's key", &Signer{AppID: 1400000000, PublicKey: k1.PublicKey}, "xiaojun", v1GoP256, at(v1GoTime), ErrBadSig},
		{"no public key", noKey, "xiaojun", v1NodeK1, at(v1NodeTime), ErrNoPublicKey},
		{"forged: expiry raised", k1, "xiaojun", tamper(t, v1NodeK1, "TLS.expire_after", "99999999999"), at(v1NodeTime + 15552001), ErrBadSig},
		{"forged: identifier changed", k1, "mallory", tamper(t, v1NodeK1, "TLS.identifier", "mallory"), at(v1NodeTime), ErrBadSig},
		{"forged: userbuf dropped", k1, "xiaojun", tamper(t, v1NodeK1Userbuf, "TLS.userbuf", ""), at(v1NodeTime), ErrBadSig},
		{"sig not base64", k1, "xiaojun", tamper(t, v1NodeK1, "TLS.sig", "!!"), at(v1NodeTime), ErrBadSig},
		{"time not a number", k1, "xiaojun", tamper(t, v1NodeK1, "TLS.time", "soon"), at(v1NodeTime), ErrMalformed},
		{"account_type missing", k1, "xiaojun", tamper(t, v1NodeK1, "TLS.account_type", ""), at(v1NodeTime), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Verify(tc.id, tc.sig, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// v2 sigs still verify beside a public key.
	if _, err := (&Signer{AppID: appB, Key: []byte(keyB), PublicKey: k1.PublicKey}).Verify("xiaojun", officialB, time.Unix(timeB, 0)); err != nil {
		t.Fatalf("v2 beside v1: %v", err)
	}
}

// tamper rewrites one field of a v1 sig (deleting it for ""), keeping TLS.sig.
func tamper(t *testing.T, sig, field, value string) string {
	t.Helper()
	_, js, err := inflate(sig)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]string
	if err := json.Unmarshal(js, &d); err != nil {
		t.Fatal(err)
	}
	if value == "" {
		delete(d, field)
	} else {
		d[field] = value
	}
	out, _ := json.Marshal(d)
	return rawSig(t, out, 6)
}

// TestV1GenRoundTrip: GenV1 signs with every supported key form, and the
// result verifies with the matching public key only.
func TestV1GenRoundTrip(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct{ name, priv, curve string }{
		{"secp256k1 SEC1 with EC PARAMETERS", tencentK1Private, "secp256k1"},
		{"secp256k1 PKCS8", otherK1PKCS8, "secp256k1"},
		{"P-256 SEC1", tencentP256Private, "P-256"},
		{"P-384 PKCS8", p384PKCS8, "P-384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustPrivate(t, tc.priv)
			if k.Curve != tc.curve {
				t.Fatalf("curve %s, want %s", k.Curve, tc.curve)
			}
			sig, err := GenV1(k, 1400000000, "alice", now, 3600)
			if err != nil {
				t.Fatal(err)
			}
			s := &Signer{AppID: 1400000000, PublicKey: k.Public()}
			if _, err := s.Verify("alice", sig, now.Add(time.Hour)); err != nil {
				t.Fatalf("own sig: %v", err)
			}
			if _, err := s.Verify("alice", sig, now.Add(time.Hour+time.Second)); !errors.Is(err, ErrExpired) {
				t.Fatalf("past expiry: %v", err)
			}
			other := &Signer{AppID: 1400000000, PublicKey: mustPublic(t, otherK1Public)}
			if tc.priv == otherK1PKCS8 {
				other.PublicKey = mustPublic(t, tencentK1Public)
			}
			if _, err := other.Verify("alice", sig, now); !errors.Is(err, ErrBadSig) {
				t.Fatalf("other key: %v", err)
			}
		})
	}
}

func TestV1ParseKeyErrors(t *testing.T) {
	for _, bad := range []string{"", "not pem", tencentK1Private, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := ParsePublicKey([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKey(%.30q) succeeded", bad)
		}
	}
	for _, bad := range []string{"", tencentK1Public, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"} {
		if _, err := ParsePrivateKey([]byte(bad)); err == nil {
			t.Errorf("ParsePrivateKey(%.30q) succeeded", bad)
		}
	}
}

// FuzzVerifyV1: any input gets a coded error or verifies; never a panic.
func FuzzVerifyV1(f *testing.F) {
	pub, err := ParsePublicKey([]byte(tencentK1Public))
	if err != nil {
		f.Fatal(err)
	}
	s := &Signer{AppID: 1400001052, Key: []byte(keyB), PublicKey: pub}
	for _, seed := range []string{v1NodeK1, v1NodeK1Userbuf, v1GoP256, rawSig(f, []byte(`{"TLS.version":"201610110000"}`), 6)} {
		f.Add("xiaojun", seed, int64(v1NodeTime+1))
	}
	f.Fuzz(func(t *testing.T, id, sig string, now int64) {
		if _, err := s.Verify(id, sig, time.Unix(now, 0)); err != nil {
			var e *imerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("non-usersig error %v", err)
			}
		}
	})
}
