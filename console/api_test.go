package console

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestMaskSecrets: every key naming a secret is masked at any depth, so a
// setting added later is covered without a list to keep up to date.
func TestMaskSecrets(t *testing.T) {
	var doc yaml.Node
	src := "app:\n  secret_key: k1\n  admin: administrator\nnew:\n  deeper:\n    api_token: t1\n    Password: p1\n    password_hint: \"\"\n  tls_private_key: x\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	maskSecrets(&doc)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"k1", "t1", "p1", ": x"} {
		if strings.Contains(string(out), secret) {
			t.Fatalf("%q shown:\n%s", secret, out)
		}
	}
	if strings.Count(string(out), masked) != 4 || !strings.Contains(string(out), "admin: administrator") || !strings.Contains(string(out), `password_hint: ""`) {
		t.Fatalf("masked wrongly:\n%s", out)
	}
}
