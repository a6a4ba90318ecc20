package console

import (
	"fmt"
	"path/filepath"

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/secretfile"
)

// PasswordFile is where a generated console password is kept, inside
// storage.dir.
const PasswordFile = "console_password"

// ResolvePassword gives the console a password when the configuration sets
// none, so the console works on the embedded defaults: one is generated on
// first start into {storage.dir}/console_password (mode 0600; the operator
// reads it there, it is never logged) and read back after. A configured
// password wins; with storage.in_memory there is nowhere to keep one and
// the console stays off. It returns the configuration to serve with and the
// password file used ("" when none).
func ResolvePassword(cfg config.Config) (config.Config, string, error) {
	c := cfg.Console
	if cfg.HTTP.Address == "" || !c.Enabled || c.Password != "" || cfg.Storage.InMemory {
		return cfg, "", nil
	}
	path := filepath.Join(cfg.Storage.Dir, PasswordFile)
	pw, _, err := secretfile.Create(path, 12, 12) // 24 hex characters
	if err != nil {
		return cfg, "", fmt.Errorf("console password: %w", err)
	}
	cfg.Console.Password = pw
	return cfg, path, nil
}
