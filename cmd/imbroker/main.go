// Command imbroker runs the IM broker, checks its config, or prints a UserSig.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/app"
	"github.com/imbroker/imbroker/internal/usersig"
)

const defaultConfig = "config.yaml"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	sub := "serve"
	if len(args) > 0 && args[0] == "usersig" {
		sub, args = "usersig", args[1:]
	}
	fl := flag.NewFlagSet("imbroker", flag.ContinueOnError)
	path := fl.String("config", defaultConfig, "config file (YAML)")
	check := fl.Bool("check-config", false, "report every config problem and exit")
	user := fl.String("user", "", "usersig: the UserID to sign for")
	expire := fl.Int64("expire", 180*86400, "usersig: validity in seconds")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch {
	case *check:
		fmt.Println("config OK")
		return 0
	case sub == "usersig":
		key, _, err := broker.ResolveSecretKey(cfg)
		if err == nil {
			var sig string
			sig, err = usersig.New(cfg.App.SDKAppID, key).Gen(*user, *expire)
			if err == nil {
				fmt.Println(sig)
				return 0
			}
		}
		fmt.Fprintln(os.Stderr, "usersig:", err)
		return 1
	}
	log := app.NewLogger(cfg.Log, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.Start(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "error", err)
		return 1
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		log.Error("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// loadConfig reads the config file; the default file may be absent, and then
// the embedded defaults apply (with the environment override).
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) && path == defaultConfig {
		cfg = config.Default()
		cfg.ApplyEnv()
		return cfg, cfg.Validate()
	}
	return cfg, err
}
