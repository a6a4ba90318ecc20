// Command redpacket is a red-packet backend for imbroker. A red packet is a
// TIMCustomElem whose Data is {"type":"redpacket","total":cents,"count":n}.
// The before-send callback validates it and rewrites it with the packet's id
// (what recipients get is the rewritten packet); a claim is a custom message
// {"type":"claim","id":…} sent to the "redpacket" account, answered through
// the REST API with {"type":"claimed","id":…,"amount":cents} or a refusal.
//
//	go run ./examples/redpacket -key "$(cat data/secret_key)"
//
// with callbacks.url: http://127.0.0.1:9001/callback and callbacks.commands:
// [C2C.CallbackBeforeSendMsg, Group.CallbackBeforeSendMsg, C2C.CallbackAfterSendMsg]
// in the broker's config.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/imbroker/imbroker/internal/usersig"
)

// Codes this backend returns (Tencent's ranges for app-defined refusals).
const (
	codeBadPacketC2C   = 120100
	codeBadPacketGroup = 10150
	maxTotal           = 20000 // cents
)

type packet struct {
	ID      string
	From    string
	Total   int
	Count   int
	Claimed map[string]int
}

// Backend validates packets and pays out claims.
type Backend struct {
	Account string // the account claims are sent to
	REST    string
	AppID   uint64
	Key     string
	Admin   string
	mu      sync.Mutex
	packets map[string]*packet
	next    int
	client  http.Client
}

type element struct {
	MsgType    string          `json:"MsgType"`
	MsgContent json.RawMessage `json:"MsgContent"`
}

type custom struct {
	Type   string `json:"type"`
	ID     string `json:"id,omitempty"`
	Total  int    `json:"total,omitempty"`
	Count  int    `json:"count,omitempty"`
	Amount int    `json:"amount,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ServeHTTP is the callback endpoint.
func (s *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		CallbackCommand, From_Account, To_Account string
		MsgBody                                   []element
	}
	_ = json.NewDecoder(r.Body).Decode(&ev)
	w.Header().Set("Content-Type", "application/json")
	answer := map[string]any{"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
	switch ev.CallbackCommand {
	case "C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg":
		code := codeBadPacketC2C
		if ev.CallbackCommand == "Group.CallbackBeforeSendMsg" {
			code = codeBadPacketGroup
		}
		if body, err := s.openPacket(ev.From_Account, ev.MsgBody); err != nil {
			answer = map[string]any{"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": err.Error()}
		} else if body != nil {
			answer["MsgBody"] = body // recipients get the packet with its id
		}
	case "C2C.CallbackAfterSendMsg":
		if ev.To_Account == s.Account {
			if c, ok := customOf(ev.MsgBody); ok && c.Type == "claim" {
				go s.claim(ev.From_Account, c.ID)
			}
		}
	}
	_ = json.NewEncoder(w).Encode(answer)
}

func customOf(body []element) (custom, bool) {
	for _, e := range body {
		if e.MsgType != "TIMCustomElem" {
			continue
		}
		var c struct{ Data string }
		var d custom
		if json.Unmarshal(e.MsgContent, &c) == nil && json.Unmarshal([]byte(c.Data), &d) == nil {
			return d, true
		}
	}
	return custom{}, false
}

// openPacket validates a red packet and returns the rewritten body (nil if
// the message holds no packet).
func (s *Backend) openPacket(from string, body []element) ([]element, error) {
	c, ok := customOf(body)
	if !ok || c.Type != "redpacket" {
		return nil, nil
	}
	if c.Count < 1 || c.Total < c.Count || c.Total > maxTotal {
		return nil, fmt.Errorf("a red packet needs 1 ≤ count ≤ total ≤ %d cents", maxTotal)
	}
	s.mu.Lock()
	s.next++
	p := &packet{ID: fmt.Sprintf("rp-%d", s.next), From: from, Total: c.Total, Count: c.Count, Claimed: map[string]int{}}
	if s.packets == nil {
		s.packets = map[string]*packet{}
	}
	s.packets[p.ID] = p
	s.mu.Unlock()
	c.ID = p.ID
	data, _ := json.Marshal(c)
	content, _ := json.Marshal(map[string]any{"Data": string(data), "Desc": "[Red packet]"})
	out := make([]element, 0, len(body))
	for _, e := range body {
		if e.MsgType == "TIMCustomElem" {
			e.MsgContent = content
		}
		out = append(out, e)
	}
	return out, nil
}

// claim pays the next share of a packet once per user and answers by REST.
func (s *Backend) claim(user, id string) {
	s.mu.Lock()
	p := s.packets[id]
	reply := custom{Type: "claim_failed", ID: id}
	switch {
	case p == nil:
		reply.Reason = "no such packet"
	case p.Claimed[user] > 0:
		reply.Reason = "already claimed"
	case len(p.Claimed) == p.Count:
		reply.Reason = "empty"
	default:
		paid := 0
		for _, v := range p.Claimed {
			paid += v
		}
		share := p.Total / p.Count
		if len(p.Claimed) == p.Count-1 {
			share = p.Total - paid // the last one gets the remainder
		}
		p.Claimed[user] = share
		reply = custom{Type: "claimed", ID: id, Amount: share}
	}
	s.mu.Unlock()
	if err := s.send(user, reply); err != nil {
		log.Printf("redpacket: answer %s: %v", user, err)
	}
}

func (s *Backend) send(to string, c custom) error {
	data, _ := json.Marshal(c)
	return s.v4("openim/sendmsg", map[string]any{"SyncOtherMachine": 2, "From_Account": s.Account, "To_Account": to,
		"MsgRandom": rand.Uint32(), "ForbidCallbackControl": []string{"ForbidBeforeSendMsgCallback", "ForbidAfterSendMsgCallback"},
		"MsgBody": []any{map[string]any{"MsgType": "TIMCustomElem", "MsgContent": map[string]any{"Data": string(data)}}}})
}

// Register imports the claims account (im_open_login_svc/account_import):
// it never logs in, and messages go to accounts only.
func (s *Backend) Register() error {
	return s.v4("im_open_login_svc/account_import", map[string]any{"UserID": s.Account})
}

// v4 calls a REST command as the app admin.
func (s *Backend) v4(command string, req any) error {
	sig, err := usersig.New(s.AppID, s.Key).Gen(s.Admin, 3600)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/v4/%s?sdkappid=%d&identifier=%s&usersig=%s&random=%d&contenttype=json",
		s.REST, command, s.AppID, s.Admin, sig, rand.Uint32())
	body, _ := json.Marshal(req)
	resp, err := s.client.Post(url, "application/json", bytes.NewReader(body))
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
	s := &Backend{}
	listen := flag.String("listen", "127.0.0.1:9001", "callback endpoint address (path /callback)")
	flag.StringVar(&s.Account, "account", "redpacket", "the account claims are sent to")
	flag.StringVar(&s.REST, "rest", "http://127.0.0.1:8080", "broker HTTP base URL")
	flag.Uint64Var(&s.AppID, "appid", 1400000000, "SDKAppID")
	flag.StringVar(&s.Key, "key", "", "app secret key (data/secret_key)")
	flag.StringVar(&s.Admin, "admin", "administrator", "app admin identifier")
	flag.Parse()
	if err := s.Register(); err != nil {
		log.Printf("redpacket: import account %q (claims to it will be refused until it is an account): %v", s.Account, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/callback", s)
	log.Printf("red packets on http://%s/callback", *listen)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
