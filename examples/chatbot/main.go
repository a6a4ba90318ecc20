// Command chatbot is a chatbot for imbroker built only from the public
// surfaces a Tencent IM backend uses: it receives third-party callbacks and
// answers through the REST API. Users chat with the bot account like with
// anyone else.
//
//	go run ./examples/chatbot -key "$(cat data/secret_key)"
//
// with callbacks.url: http://127.0.0.1:9000/callback and callbacks.commands:
// [C2C.CallbackAfterSendMsg] in the broker's config.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/imbroker/imbroker/internal/usersig"
)

// Bot answers messages sent to its account.
type Bot struct {
	Account string // the bot's UserID
	REST    string // broker HTTP base URL, e.g. http://127.0.0.1:8080
	AppID   uint64
	Key     string // app secret key: signs the admin UserSig for REST calls
	Admin   string // app admin identifier
	client  http.Client
}

// ServeHTTP is the callback endpoint: every command is allowed; a message
// to the bot gets an answer.
func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		CallbackCommand, From_Account, To_Account string
		MsgBody                                   []struct {
			MsgType    string
			MsgContent struct{ Text string }
		}
	}
	_ = json.NewDecoder(r.Body).Decode(&ev)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`))
	if ev.CallbackCommand != "C2C.CallbackAfterSendMsg" || ev.To_Account != b.Account || ev.From_Account == b.Account {
		return
	}
	var text string
	for _, e := range ev.MsgBody {
		if e.MsgType == "TIMTextElem" {
			text = e.MsgContent.Text
		}
	}
	go func() { // answer off the callback request: the broker does not wait for us
		if err := b.Send(ev.From_Account, b.Answer(text)); err != nil {
			log.Printf("chatbot: answer %s: %v", ev.From_Account, err)
		}
	}()
}

// Answer is the bot's brain.
func (b *Bot) Answer(text string) string {
	switch t := strings.ToLower(strings.TrimSpace(text)); {
	case t == "help":
		return "I know: help, time, echo <text>"
	case t == "time":
		return "It is " + time.Now().UTC().Format(time.RFC3339)
	case strings.HasPrefix(t, "echo "):
		return strings.TrimSpace(text[5:])
	case t == "":
		return "I only read text messages. Try: help"
	default:
		return fmt.Sprintf("You said %q. Try: help", text)
	}
}

// Register imports the bot's account (im_open_login_svc/account_import):
// the bot never logs in, and messages go to accounts only.
func (b *Bot) Register() error {
	return b.v4("im_open_login_svc/account_import", map[string]any{"UserID": b.Account})
}

// Send sends a text message from the bot through the REST API (openim/sendmsg).
func (b *Bot) Send(to, text string) error {
	return b.v4("openim/sendmsg", map[string]any{"SyncOtherMachine": 2, "From_Account": b.Account, "To_Account": to,
		"MsgRandom": rand.Uint32(), "MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": text}}}})
}

// v4 calls a REST command as the app admin.
func (b *Bot) v4(command string, req any) error {
	sig, err := usersig.New(b.AppID, b.Key).Gen(b.Admin, 3600)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/v4/%s?sdkappid=%d&identifier=%s&usersig=%s&random=%d&contenttype=json",
		b.REST, command, b.AppID, b.Admin, sig, rand.Uint32())
	body, _ := json.Marshal(req)
	resp, err := b.client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		ErrorCode int
		ErrorInfo string
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if out.ErrorCode != 0 {
		return fmt.Errorf("%s: %d %s", command, out.ErrorCode, out.ErrorInfo)
	}
	return nil
}

func main() {
	b := &Bot{}
	listen := flag.String("listen", "127.0.0.1:9000", "callback endpoint address (path /callback)")
	flag.StringVar(&b.Account, "bot", "bot", "the bot's UserID")
	flag.StringVar(&b.REST, "rest", "http://127.0.0.1:8080", "broker HTTP base URL")
	flag.Uint64Var(&b.AppID, "appid", 1400000000, "SDKAppID")
	flag.StringVar(&b.Key, "key", "", "app secret key (data/secret_key)")
	flag.StringVar(&b.Admin, "admin", "administrator", "app admin identifier")
	flag.Parse()
	if err := b.Register(); err != nil {
		log.Printf("chatbot: import account %q (messages to it will be refused until it is an account): %v", b.Account, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/callback", b)
	log.Printf("chatbot %q listening on http://%s/callback", b.Account, *listen)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
