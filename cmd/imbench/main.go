// Command imbench is a bounded, loopback-only MQTT load generator for
// imbroker and other brokers: pubsub, c2c, group, catchup, connections.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/imbroker/imbroker/internal/bench"
)

func main() {
	var o bench.Options
	brokers := flag.String("broker", "tcp://127.0.0.1:1883", "broker URL (loopback only); a cluster: the nodes' URLs, comma-separated (connections spread over them, the two ends of a c2c pair on different nodes)")
	flag.StringVar(&o.Scenario, "scenario", "pubsub", "pubsub | c2c | group | catchup | connections")
	flag.IntVar(&o.Clients, "clients", 10, "publishers (pubsub), pairs (c2c), members (group), connections")
	flag.IntVar(&o.Messages, "messages", 1000, "messages per publisher (pubsub, c2c) or in total (group, catchup)")
	qos := flag.Int("qos", 1, "pubsub QoS")
	flag.BoolVar(&o.Fanout, "fanout", false, "pubsub: one publisher to every subscriber")
	flag.IntVar(&o.Size, "size", 64, "pubsub payload bytes")
	flag.IntVar(&o.Rate, "rate", 1000, "connections per second (connections)")
	flag.IntVar(&o.MsgRate, "msg-rate", 0, "pubsub, c2c: messages per second in total, spread over the publishers (0: as fast as 64 in flight each allows)")
	flag.DurationVar(&o.Hold, "hold", 5*time.Second, "how long to hold idle connections")
	flag.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "bound for the whole run")
	flag.Uint64Var(&o.AppID, "appid", 1400000000, "imbroker SDKAppID")
	flag.StringVar(&o.Key, "key", os.Getenv("IMBROKER_SECRET_KEY"), "imbroker secret key (signs UserSigs; empty: no credentials)")
	flag.StringVar(&o.Admin, "admin", "administrator", "imbroker app admin identifier")
	flag.StringVar(&o.GroupTy, "group-type", "AVChatRoom", "group scenario: group type")
	pids := flag.String("pid", "", "broker process id, to report its memory and CPU; a cluster: the nodes' ids, comma-separated (summed)")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write imbench's own CPU profile to this file: of the timed phase (group: the paced one, where reach_all is measured)")
	flag.Parse()
	o.QoS = byte(*qos)
	o.Brokers = strings.Split(*brokers, ",")
	for _, p := range strings.Split(*pids, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "imbench: -pid: %q is not a process id\n", p)
			os.Exit(2)
		}
		o.PIDs = append(o.PIDs, n)
	}
	if !*asJSON {
		o.Progress = os.Stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "imbench: -cpuprofile:", err)
			os.Exit(2)
		}
		defer f.Close()
		o.CPUProfile = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, o)
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(res)
	} else {
		fmt.Printf("%s: sent %d (%.0f/s), delivered %d (%.0f/s), lost %d, errors %d in %.2fs\n",
			res.Scenario, res.Sent, res.SentRate, res.Delivered, res.DeliverRate, res.Lost, res.Errors, res.Seconds)
		fmt.Printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", res.P50, res.P90, res.P99, res.P999, res.Max)
		for k, v := range res.Extra {
			fmt.Printf("%s: %.2f\n", k, v)
		}
		if res.PeakRSSKB > 0 {
			fmt.Printf("broker peak RSS: %d kB\n", res.PeakRSSKB)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imbench:", err)
		os.Exit(1)
	}
}
