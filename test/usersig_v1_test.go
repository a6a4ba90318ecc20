package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/usersig"
)

// The key pair tencentyun/tls-sig-api-node ships (ec_key.pem, public.pem):
// secp256k1, the curve of Tencent's own v1 keys (internal/usersig/testdata).
var v1PrivateK1, v1PublicK1 = readV1Key("../internal/usersig/testdata/tencent-node-ec_key.pem"),
	readV1Key("../internal/usersig/testdata/tencent-node-public.pem")

func readV1Key(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const (
	// Another P-256 key pair (tls-sig-api-golang's pem_test.go private key),
	// standing in for a forger's key.
	v1ForgerP256 = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQge7zMZ+lq7I0nR4xP
y2r0UwBGxiFwY+d3VD+mQs9QzF6hRANCAASdVKOtE5Aanc1XftuhKqvEijkmR38h
nFZLl1pPiAlMLNqBJkbcWpM8fKSvgZdfNP6j9omW8pVeLuSy2FIc5Sap
-----END PRIVATE KEY-----
`
)

// v1Sigs makes the v1 cases every entry point must treat as v2's.
func v1Sigs(t *testing.T, app uint64, user string) map[string]string {
	t.Helper()
	k, err := usersig.ParsePrivateKey([]byte(v1PrivateK1))
	if err != nil {
		t.Fatal(err)
	}
	forger, err := usersig.ParsePrivateKey([]byte(v1ForgerP256))
	if err != nil {
		t.Fatal(err)
	}
	gen := func(k *usersig.PrivateKey, app uint64, user string, issued time.Time) string {
		s, err := usersig.GenV1(k, app, user, issued, 3600)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return map[string]string{
		"valid":      gen(k, app, user, time.Now()),
		"expired":    gen(k, app, user, time.Now().Add(-2*time.Hour)),
		"forged":     gen(forger, app, user, time.Now()),
		"other user": gen(k, app, "mallory", time.Now()),
		"other app":  gen(k, app+1, user, time.Now()),
	}
}

// v1Codes: the same codes as v2 (TestE2E_LoginV5, TestRESTAuth).
var v1Codes = map[string]int{"valid": 0, "expired": 70001, "forged": 70009, "other user": 70013, "other app": 70014}

// A v1 UserSig (ECDSA, secp256k1 as Tencent's keys) logs in over MQTT 5 and
// 3.1.1 when app.public_key is set (here as a file path); forged, expired,
// other-user and other-app v1 sigs get v2's CONNACK codes; v2 still works.
func TestE2E_UserSigV1MQTT(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(keyFile, []byte(v1PublicK1), 0o600); err != nil {
		t.Fatal(err)
	}
	b := StartBroker(t, func(c *config.Config) { c.App.PublicKey = keyFile })
	reasons := map[string]byte{"valid": 0, "expired": 0x86, "forged": 0x86, "other user": 0x87, "other app": 0x87}
	for name, sig := range v1Sigs(t, b.Cfg.App.SDKAppID, "alice") {
		t.Run(name, func(t *testing.T) {
			_, ca := connect5(t, b, "alice", "alice", sig)
			if ca.ReasonCode != reasons[name] {
				t.Fatalf("CONNACK 0x%02x, want 0x%02x (%+v)", ca.ReasonCode, reasons[name], ca.Properties)
			}
			if want := v1Codes[name]; want != 0 && (ca.Properties == nil || !strings.HasPrefix(ca.Properties.ReasonString, strconv.Itoa(want))) {
				t.Fatalf("reason %+v does not name %d", ca.Properties, want)
			}
		})
	}
	// MQTT 3.1.1 with a real paho client, and a v2 sig beside v1.
	alice := b.Connect("alice", "alice") // v2
	b.importAccounts("bob")              // bob's first login comes later
	alice.Publish1("im/send/c2c/bob", Text("v2 still works", Random()))
	sig := v1Sigs(t, b.Cfg.App.SDKAppID, "bob")["valid"]
	bob := ConnectOpts(t, b.ClientOpts("bob", "bob", sig), "bob")
	if ev := bob.SyncAll(0); len(ev) != 1 {
		t.Fatalf("bob (v1 login) synced %d events, want 1", len(ev))
	}
}

// Without app.public_key a v1 sig is refused with 70016.
func TestE2E_UserSigV1NeedsPublicKey(t *testing.T) {
	b := StartBroker(t)
	_, ca := connect5(t, b, "alice", "alice", v1Sigs(t, b.Cfg.App.SDKAppID, "alice")["valid"])
	if ca.ReasonCode != 0x86 || ca.Properties == nil || !strings.HasPrefix(ca.Properties.ReasonString, "70016") {
		t.Fatalf("CONNACK 0x%02x %+v, want 0x86 70016", ca.ReasonCode, ca.Properties)
	}
}

// REST authenticates the admin with a v1 sig (app.public_key as PEM text),
// with the same codes as v2.
func TestREST_UserSigV1(t *testing.T) {
	b := StartBroker(t, func(c *config.Config) { c.App.PublicKey = v1PublicK1 })
	for name, sig := range v1Sigs(t, b.Cfg.App.SDKAppID, b.Cfg.App.Admin) {
		t.Run(name, func(t *testing.T) {
			q := b.adminQuery()
			q.Set("usersig", sig)
			out := v4Raw(t, b.v4URL("im_open_login_svc/account_check", q), []byte(`{"CheckItem":[{"UserID":"alice"}]}`))
			if want := v1Codes[name]; want != 0 {
				wantCode(t, name, out, want)
			} else if errCode(out) != 0 {
				t.Fatalf("valid v1 admin sig: %v", out)
			}
		})
	}
}

// imbroker usersig -private-key prints a v1 sig that logs in.
func TestE2E_UsersigCLIV1(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ec_key.pem")
	if err := os.WriteFile(keyFile, []byte(v1PrivateK1), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, dir, "")
	out, msg, code := runUsersig(t, dir, noEnvKey, "-config", cfgPath, "-private-key", keyFile, "-user", "alice", "-expire", "600")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	b := StartBroker(t, func(c *config.Config) { c.App.PublicKey = v1PublicK1 })
	_, ca := connect5(t, b, "alice", "alice", strings.TrimSpace(out))
	if ca.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x %+v", ca.ReasonCode, ca.Properties)
	}
	if _, msg, code := runUsersig(t, dir, noEnvKey, "-config", cfgPath, "-private-key", cfgPath, "-user", "alice"); code != 1 || !strings.Contains(msg, "private-key") {
		t.Fatalf("bad key file: exit %d, %s", code, msg)
	}
}
