// Command chatcli is a small IM client for imbroker on plain MQTT 3.1.1
// (paho.mqtt.golang). It logs in with a UserSig, sends text messages, prints
// live events, and on every connect catches up with sync: subscribe
// im/u/{self}/#, then publish im/req/sync from the last Seq it processed and
// page until the reply on im/u/{self}/rpc says Complete (docs/protocol.md,
// "Sessions and catch-up").
//
//	go run ./examples/chatcli -user bob -sig "$(./imbroker usersig -user bob)"
//
// Commands on stdin: "send <to> <text>" and "quit".
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// State is what a client keeps between runs: the last Seq it processed and
// the Epoch of the stream that Seq belongs to.
type State struct {
	Seq   uint64 `json:"Seq"`
	Epoch uint64 `json:"Epoch"`
}

// LoadState reads a state file; a missing file is the empty state.
func LoadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// SaveState writes the state file atomically.
func SaveState(path string, s State) error {
	b, _ := json.Marshal(s)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Event is one event of the user stream im/u/{self}.
type Event struct {
	Seq   uint64          `json:"Seq"`
	Epoch uint64          `json:"Epoch"`
	Event string          `json:"Event"`
	Msg   json.RawMessage `json:"Msg"`
}

// SyncReply is the reply to im/req/sync.
type SyncReply struct {
	Id, Op, ErrorInfo              string
	ErrorCode                      int
	Seq, Epoch, HeadSeq, OldestSeq uint64
	Complete, Reset, Trimmed       bool
	Topic                          string // send errors (Op "send")
}

// Chat is the client logic, driven by what arrives (OnEvent, OnReply), by
// (re)connects (Sync) and by commands (Command). It is not safe for
// concurrent use: one loop drives it.
type Chat struct {
	User      string
	Out       io.Writer
	StatePath string // "" keeps no state
	// Publish publishes at QoS 1 and waits for the PUBACK.
	Publish func(topic string, payload []byte) error

	State   State
	syncing bool   // a sync request is outstanding
	syncID  string // its Id
	nsync   int
	buf     []Event // events not yet processed: during a sync, or after a gap
}

// Sync asks for the events after State.Seq. Events arriving until the reply
// are held back and processed in Seq order once it comes.
func (c *Chat) Sync() error {
	c.nsync++
	c.syncing, c.syncID = true, fmt.Sprintf("sync-%d", c.nsync)
	req := map[string]any{"Id": c.syncID, "Since": c.State.Seq}
	if c.State.Epoch != 0 {
		req["Epoch"] = c.State.Epoch
	}
	b, _ := json.Marshal(req)
	return c.Publish("im/req/sync", b)
}

// OnEvent handles a payload from im/u/{self}.
func (c *Chat) OnEvent(payload []byte) error {
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		fmt.Fprintf(c.Out, "bad event %q: %v\n", payload, err)
		return nil
	}
	if c.syncing {
		c.buf = append(c.buf, e)
		return nil
	}
	if c.State.Epoch != 0 && e.Epoch != c.State.Epoch {
		fmt.Fprintf(c.Out, "history reset (Epoch %d -> %d): catching up from 0\n", c.State.Epoch, e.Epoch)
		c.State, c.buf = State{}, nil
		return c.Sync()
	}
	c.buf = append(c.buf, e)
	c.drain("live", 0)
	if len(c.buf) > 0 { // a gap: a live copy was lost, the store has it
		return c.Sync()
	}
	return nil
}

// OnReply handles a payload from im/u/{self}/rpc.
func (c *Chat) OnReply(payload []byte) error {
	var r SyncReply
	if err := json.Unmarshal(payload, &r); err != nil {
		fmt.Fprintf(c.Out, "bad reply %q: %v\n", payload, err)
		return nil
	}
	switch {
	case r.Op == "send" && r.ErrorCode != 0:
		fmt.Fprintf(c.Out, "refused: %s: %d %s\n", r.Topic, r.ErrorCode, r.ErrorInfo)
		return nil
	case r.Op != "sync" || !c.syncing || r.Id != c.syncID:
		return nil
	case r.ErrorCode != 0:
		c.syncing = false
		return fmt.Errorf("sync: %d %s", r.ErrorCode, r.ErrorInfo)
	}
	if r.Reset { // our Epoch is not the stream's (or our Seq is beyond its head): history was lost
		fmt.Fprintf(c.Out, "history reset (Epoch %d -> %d): starting from 0\n", c.State.Epoch, r.Epoch)
		c.State = State{Epoch: r.Epoch}
		keep := c.buf[:0]
		for _, e := range c.buf {
			if e.Epoch == r.Epoch {
				keep = append(keep, e)
			}
		}
		c.buf = keep
		sortEvents(c.buf)
		if len(c.buf) > 0 && c.buf[0].Seq > 1 { // replayed from the oldest event kept
			c.State.Seq = c.buf[0].Seq - 1
		}
	}
	c.State.Epoch = r.Epoch
	c.drain("sync", r.Seq)
	if r.Trimmed && r.OldestSeq > c.State.Seq+1 {
		fmt.Fprintf(c.Out, "events %d..%d were deleted by retention\n", c.State.Seq+1, r.OldestSeq-1)
		c.State.Seq = r.OldestSeq - 1
		c.drain("sync", r.Seq)
	}
	c.save()
	if !r.Complete || r.Trimmed || len(c.buf) > 0 { // page on from the last event processed
		return c.Sync()
	}
	c.syncing = false
	fmt.Fprintf(c.Out, "caught up at Seq %d\n", c.State.Seq)
	return nil
}

// drain prints the held events that follow State.Seq without a gap, drops
// duplicates and keeps the rest. Events up to replayed are labelled "sync".
func (c *Chat) drain(label string, replayed uint64) {
	sortEvents(c.buf)
	var keep []Event
	for _, e := range c.buf {
		switch {
		case e.Seq <= c.State.Seq: // already processed (live and replay overlap)
		case e.Seq == c.State.Seq+1 && len(keep) == 0:
			l := label
			if e.Seq > replayed {
				l = "live"
			}
			fmt.Fprintf(c.Out, "[%s #%d] %s\n", l, e.Seq, Format(c.User, e))
			c.State.Seq = e.Seq
		default:
			keep = append(keep, e)
		}
	}
	c.buf = keep
	if label == "live" {
		c.save()
	}
}

func (c *Chat) save() {
	if c.StatePath == "" {
		return
	}
	if err := SaveState(c.StatePath, c.State); err != nil {
		fmt.Fprintf(c.Out, "save state: %v\n", err)
	}
}

func sortEvents(es []Event) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Seq < es[j].Seq })
}

// Format renders an event as one line.
func Format(self string, e Event) string {
	var m struct {
		From_Account, To_Account, GroupId string
		MsgBody                           []struct {
			MsgType    string
			MsgContent struct{ Text string }
		}
	}
	_ = json.Unmarshal(e.Msg, &m)
	var parts []string
	for _, el := range m.MsgBody {
		if el.MsgType == "TIMTextElem" {
			parts = append(parts, el.MsgContent.Text)
		} else {
			parts = append(parts, "["+el.MsgType+"]")
		}
	}
	switch e.Event {
	case "C2CMsg":
		return fmt.Sprintf("%s -> %s: %s", m.From_Account, m.To_Account, strings.Join(parts, " "))
	case "GroupMsg":
		return fmt.Sprintf("%s @ %s: %s", m.From_Account, m.GroupId, strings.Join(parts, " "))
	default:
		return fmt.Sprintf("%s %s", e.Event, e.Msg)
	}
}

// Command runs one stdin line. It reports whether to quit.
func (c *Chat) Command(line string) (quit bool, err error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 0:
		return false, nil
	case f[0] == "quit":
		return true, nil
	case f[0] == "send" && len(f) >= 3:
		rest := strings.TrimSpace(strings.TrimSpace(line)[len("send"):])
		text := strings.TrimSpace(rest[len(f[1]):])
		b, _ := json.Marshal(map[string]any{
			"MsgRandom": rand.Uint32(),
			"MsgBody":   []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": text}}},
		})
		if err := c.Publish("im/send/c2c/"+f[1], b); err != nil {
			return false, fmt.Errorf("send to %s: %w", f[1], err)
		}
		fmt.Fprintf(c.Out, "sent to %s\n", f[1])
		return false, nil
	default:
		fmt.Fprintln(c.Out, "commands: send <to> <text> | quit")
		return false, nil
	}
}

type message struct {
	topic   string
	payload []byte
}

// Run connects and drives c until "quit", the end of stdin or a fatal error.
func Run(c *Chat, opts *paho.ClientOptions, in io.Reader) error {
	msgs := make(chan message, 4096)
	connected := make(chan struct{}, 1)
	opts.SetOrderMatters(true) // events and the sync reply in the order the broker wrote them
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- message{m.Topic(), m.Payload()} })
	opts.SetOnConnectHandler(func(paho.Client) {
		select {
		case connected <- struct{}{}:
		default:
		}
	})
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) { fmt.Fprintf(c.Out, "connection lost: %v\n", err) })
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer cl.Disconnect(250)
	c.Publish = func(topic string, payload []byte) error {
		tok := cl.Publish(topic, 1, false, payload)
		if !tok.WaitTimeout(10 * time.Second) {
			return errors.New("no PUBACK within 10s")
		}
		return tok.Error()
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	self := "im/u/" + c.User
	for {
		var err error
		select {
		case <-connected: // first connect or reconnect: subscribe, then catch up
			tok := cl.Subscribe(self+"/#", 1, nil)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				return fmt.Errorf("subscribe: %v", tok.Error())
			}
			c.buf = nil
			err = c.Sync()
		case m := <-msgs:
			switch m.topic {
			case self:
				err = c.OnEvent(m.payload)
			case self + "/rpc":
				err = c.OnReply(m.payload)
			}
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			var quit bool
			if quit, err = c.Command(l); quit {
				return nil
			}
		}
		if err != nil {
			fmt.Fprintf(c.Out, "error: %v\n", err)
		}
	}
}

func main() {
	broker := flag.String("broker", "tcp://127.0.0.1:1883", "broker URL (tcp://, ssl://, ws://)")
	user := flag.String("user", "", "UserID (the MQTT user name)")
	sig := flag.String("sig", "", "UserSig (the MQTT password), e.g. from `imbroker usersig -user ID`")
	sigFile := flag.String("sig-file", "", "read the UserSig from this file instead of -sig")
	device := flag.String("device", "", "device name: the ClientID is {user}:{device} (default: {user})")
	since := flag.Int64("since", -1, "catch up after this Seq (the last one seen) instead of the state file's; 0 replays everything kept")
	statePath := flag.String("state", "", "state file (default chatcli-{user}[-{device}].json in the current directory); \"none\" keeps none")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `usage: chatcli -user ID (-sig SIG | -sig-file FILE) [flags]

Logs in to imbroker over MQTT, subscribes im/u/{user}/#, catches up with sync
(paging until Complete) and prints each replayed event as [sync #Seq], then
live events as [live #Seq]. Commands on stdin:

  send <to> <text>   send a one-to-one text message
  quit               disconnect and exit

The last Seq processed (and the stream's Epoch) is kept in a small state file
per user and device, so a second run catches up from where the first stopped;
-since overrides it. A changed Epoch (history lost) starts again from 0.

flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *sigFile != "" {
		b, err := os.ReadFile(*sigFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chatcli:", err)
			os.Exit(2)
		}
		*sig = strings.TrimSpace(string(b))
	}
	if *user == "" || *sig == "" {
		flag.Usage()
		os.Exit(2)
	}
	clientID, name := *user, *user
	if *device != "" {
		clientID, name = *user+":"+*device, *user+"-"+*device
	}
	if *statePath == "" {
		*statePath = "chatcli-" + name + ".json"
	} else if *statePath == "none" {
		*statePath = ""
	}
	c := &Chat{User: *user, Out: os.Stdout, StatePath: *statePath}
	if *statePath != "" {
		st, err := LoadState(*statePath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chatcli: state:", err)
			os.Exit(1)
		}
		c.State = st
	}
	if *since >= 0 {
		c.State = State{Seq: uint64(*since)} // Epoch unknown: taken from the first reply
	}
	opts := paho.NewClientOptions().AddBroker(*broker).SetClientID(clientID).
		SetUsername(*user).SetPassword(*sig).SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectTimeout(10 * time.Second)
	if err := Run(c, opts, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "chatcli:", err)
		os.Exit(1)
	}
}
