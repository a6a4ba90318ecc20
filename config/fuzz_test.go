package config

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse: config parsing never panics; a file it accepts is a valid
// configuration, and writing that configuration out and parsing it again
// gives the same configuration.
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile("../config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(shipped),
		"storage:\n  dir: /tmp/x\n  commit_timeout: 5s\n  min_free_mb: 0\n",
		"mqtt:\n  max_clients: -1\n",
		"stroage:\n  dir: x\n",
		"app: [1, 2]\n",
		"{}",
		"",
		"retention:\n  max_age: 1h\n  max_per_stream: 10\n",
		"\t- not yaml",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if os.Getenv("IMBROKER_SECRET_KEY") != "" {
			t.Skip("the environment overrides the file")
		}
		cfg, err := Parse(b)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) && len(ve.Problems) == 0 {
				t.Fatalf("%q: a validation error without problems", b)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%q: Parse accepted an invalid config: %v", b, err)
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("%q: marshal: %v", b, err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("%q: the config written out does not parse: %v\n%s", b, err, out)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("%q: written out and parsed again it differs:\n%+v\n%+v", b, cfg, again)
		}
	})
}
