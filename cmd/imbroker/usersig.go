package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/usersig"
)

const usersigUsage = `Usage: imbroker usersig -user ID [-expire SECONDS] [-config FILE] [-data DIR] [-private-key FILE]

Prints a UserSig for ID, signed with the broker's app secret key: IMBROKER_SECRET_KEY,
else app.secret_key from the config, else the key file {storage.dir}/secret_key
that the broker creates on its first start. usersig never creates a key: point it
at the config the broker runs with (-config) or at the broker's data dir (-data).

With -private-key it prints a v1 (ECDSA-SHA256) UserSig instead, signed with that
PEM EC private key (P-224, P-256, P-384, P-521 or secp256k1; SEC 1 or PKCS #8);
the broker accepts it when app.public_key holds the matching public key.

Flags:
`

// runUsersig is `imbroker usersig`. Exit codes: 0 printed, 1 no usable key,
// 2 usage or config error.
func runUsersig(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("imbroker usersig", flag.ContinueOnError)
	fl.SetOutput(stderr)
	path := fl.String("config", defaultConfig, "the broker's config file (YAML)")
	dataDir := fl.String("data", "", "the broker's data dir holding secret_key (overrides storage.dir)")
	user := fl.String("user", "", "the UserID to sign for (required)")
	expire := fl.Int64("expire", 180*86400, "validity in seconds")
	privPath := fl.String("private-key", "", "sign a v1 (ECDSA) UserSig with this PEM EC private key")
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), usersigUsage)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "imbroker usersig: "+format+"\n", a...)
		return code
	}
	switch {
	case fl.NArg() > 0:
		return fail(2, "unexpected argument %q (the UserID goes in -user; see imbroker usersig -h)", fl.Arg(0))
	case *user == "":
		return fail(2, "-user is required: the UserID to sign for (see imbroker usersig -h)")
	case *expire <= 0:
		return fail(2, "-expire must be a positive number of seconds, got %d", *expire)
	}
	if err := ids.CheckUserID(*user); err != nil {
		return fail(2, "invalid UserID %q: %v (a UserID is at most %d bytes of UTF-8 with no whitespace, control characters, / + # : \\ or \")",
			*user, err, ids.MaxUserIDBytes)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return fail(2, "%v", err)
	}
	if *privPath != "" {
		return signV1(*privPath, cfg.App.SDKAppID, *user, *expire, stdout, fail)
	}
	if *dataDir != "" {
		cfg.Storage.Dir, cfg.Storage.InMemory = *dataDir, false
	}
	key, _, err := broker.LoadSecretKey(cfg)
	if errors.Is(err, broker.ErrNoSecretKey) {
		fmt.Fprint(stderr, noKeyMessage(*path, cfg))
		return 1
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	sig, err := usersig.New(cfg.App.SDKAppID, key).Gen(*user, *expire)
	if err != nil {
		return fail(1, "%v", err)
	}
	fmt.Fprintln(stdout, sig)
	return 0
}

// signV1 prints a v1 UserSig signed with the private key in path.
func signV1(path string, appID uint64, user string, expire int64, stdout io.Writer, fail func(int, string, ...any) int) int {
	pemText, err := os.ReadFile(path)
	if err != nil {
		return fail(1, "-private-key: %v", err)
	}
	key, err := usersig.ParsePrivateKey(pemText)
	if err != nil {
		return fail(1, "-private-key %s: %v", path, err)
	}
	sig, err := usersig.GenV1(key, appID, user, time.Now(), expire)
	if err != nil {
		return fail(1, "%v", err)
	}
	fmt.Fprintln(stdout, sig)
	return 0
}

// noKeyMessage says where usersig looked for a key and how to point it at the
// broker's, with absolute paths so a run from the wrong directory shows.
func noKeyMessage(cfgPath string, cfg config.Config) string {
	cfgLine := abs(cfgPath)
	if _, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
		cfgLine += " (no such file: built-in defaults used)"
	}
	keyLine := abs(broker.SecretKeyPath(cfg)) + " (no such file)"
	if cfg.Storage.InMemory {
		keyLine = "none: storage.in_memory is set, so the broker keeps its key nowhere (set app.secret_key or " + config.EnvSecretKey + ")"
	}
	return "imbroker usersig: no app secret key found, and usersig never creates one (the broker does, on its first start).\n" +
		"Looked in:\n" +
		"  environment                   " + config.EnvSecretKey + ": not set\n" +
		"  app.secret_key in the config  " + cfgLine + ": not set\n" +
		"  key file                      " + keyLine + "\n" +
		"Point usersig at the running broker's key:\n" +
		"  imbroker usersig -config path/to/config.yaml -user ID   (the config file the broker runs with)\n" +
		"  imbroker usersig -data path/to/data -user ID            (the broker's storage.dir, holding secret_key)\n" +
		"or run it from the directory the broker runs in.\n"
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
