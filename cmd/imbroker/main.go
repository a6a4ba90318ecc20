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

	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/app"
)

const defaultConfig = "config.yaml"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "usersig" {
		return runUsersig(args[1:], os.Stdout, os.Stderr)
	}
	fl := flag.NewFlagSet("imbroker", flag.ContinueOnError)
	path := fl.String("config", defaultConfig, "config file (YAML)")
	check := fl.Bool("check-config", false, "report every config problem and exit")
	newEpochs := fl.Bool("new-epochs", false, "give every stream a new Epoch at this start (after restoring the data dir from a backup: clients resync)")
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "Usage:\n  imbroker [-config FILE] [-check-config] [-new-epochs]\n  imbroker usersig -user ID [flags]   (imbroker usersig -h for its flags)\n\nFlags:\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *check {
		fmt.Println("config OK")
		return 0
	}
	cfg.Storage.NewEpochs = *newEpochs
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
