package test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/config"
)

// cbRequest is one callback the app's server received.
type cbRequest struct {
	Command string
	Query   map[string]string
	Body    map[string]any
}

// cbServer is a real HTTP callback server answering with reply(command, body).
type cbServer struct {
	*httptest.Server
	got   chan cbRequest
	mu    sync.Mutex
	reply func(cmd string, body map[string]any) (int, string)
}

func newCBServer(t *testing.T) *cbServer {
	s := &cbServer{got: make(chan cbRequest, 1000)}
	s.reply = func(string, map[string]any) (int, string) {
		return 200, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		q := map[string]string{}
		for k := range r.URL.Query() {
			q[k] = r.URL.Query().Get(k)
		}
		req := cbRequest{Command: q["CallbackCommand"], Query: q, Body: body}
		s.got <- req
		s.mu.Lock()
		reply := s.reply
		s.mu.Unlock()
		status, out := reply(req.Command, body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *cbServer) setReply(f func(cmd string, body map[string]any) (int, string)) {
	s.mu.Lock()
	s.reply = f
	s.mu.Unlock()
}

// next waits for the next callback of a command.
func (s *cbServer) next(t *testing.T, cmd string) cbRequest {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-s.got:
			if r.Command == cmd {
				return r
			}
		case <-deadline:
			t.Fatalf("no %s callback within 5s", cmd)
		}
	}
}

func TestE2E_CallbackBeforeSendC2C(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Token, c.Callbacks.Timeout = cb.URL, "s3cret", 300*time.Millisecond
		c.Callbacks.Commands = config.CallbackCommands // every command imbroker sends
	})
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	send := func(text string) { alice.Publish1("im/send/c2c/bob", Text(text, Random())) }
	textOf := func(e Event) string {
		var body []struct{ MsgContent struct{ Text string } }
		_ = json.Unmarshal(e.Msg.MsgBody, &body)
		return body[0].MsgContent.Text
	}

	// allow: the callback sees the message, signed, and bob gets it.
	send("hello")
	r := cb.next(t, "C2C.CallbackBeforeSendMsg")
	if r.Body["From_Account"] != "alice" || r.Body["To_Account"] != "bob" || r.Query["SdkAppid"] != "1400000000" ||
		r.Query["Sign"] != callbacks.Sign("s3cret", r.Query["RequestTime"]) {
		t.Fatalf("callback request %+v", r)
	}
	if e := bob.NextEvent(); textOf(e) != "hello" {
		t.Fatalf("bob got %s", e.Raw)
	}
	after := cb.next(t, "C2C.CallbackAfterSendMsg")
	if after.Body["MsgKey"] == "" || after.Body["SendMsgResult"].(float64) != 0 {
		t.Fatalf("after-callback %+v", after.Body)
	}

	// rewrite: what is stored and delivered is the callback's body.
	cb.setReply(func(cmd string, _ map[string]any) (int, string) {
		if cmd == "C2C.CallbackBeforeSendMsg" {
			return 200, `{"ActionStatus":"OK","ErrorCode":0,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"***"}}],"CloudCustomData":"rewritten"}`
		}
		return 200, `{"ErrorCode":0}`
	})
	send("a rude word")
	if e := bob.NextEvent(); textOf(e) != "***" || e.Msg.CloudCustomData != "rewritten" {
		t.Fatalf("rewrite not applied: %s", e.Raw)
	}

	// reject: default 20006, and the app's own code with its text.
	for _, tc := range []struct {
		reply string
		code  float64
	}{
		{`{"ActionStatus":"FAIL","ErrorCode":1,"ErrorInfo":"no"}`, 20006},
		{`{"ActionStatus":"FAIL","ErrorCode":120123,"ErrorInfo":"red packet expired"}`, 120123},
	} {
		cb.setReply(func(string, map[string]any) (int, string) { return 200, tc.reply })
		send("refused")
		rep := alice.NextReply()
		if rep["ErrorCode"].(float64) != tc.code {
			t.Fatalf("reject %s: %v", tc.reply, rep)
		}
	}

	// drop: the sender sees success, nobody receives.
	cb.setReply(func(string, map[string]any) (int, string) { return 200, `{"ErrorCode":2}` })
	send("dropped")
	cb.setReply(func(string, map[string]any) (int, string) { return 200, `{"ErrorCode":0}` })
	send("marker")
	if e := bob.NextEvent(); textOf(e) != "marker" {
		t.Fatalf("a dropped message arrived: %s", e.Raw)
	}

	// timeout with the default policy (allow): delivered.
	release := make(chan struct{})
	cb.setReply(func(cmd string, _ map[string]any) (int, string) {
		if cmd == "C2C.CallbackBeforeSendMsg" {
			<-release // slower than the 300 ms timeout
		}
		return 200, `{"ErrorCode":0}`
	})
	send("slow callback")
	if e := bob.NextEvent(); textOf(e) != "slow callback" {
		t.Fatalf("timeout under allow: %s", e.Raw)
	}
	close(release)

	// ForbidCallbackControl skips the before-callback.
	cb.setReply(func(string, map[string]any) (int, string) { return 200, `{"ErrorCode":1}` })
	m := Text("forbidden callback", Random())
	m["ForbidCallbackControl"] = []string{"ForbidBeforeSendMsgCallback"}
	alice.Publish1("im/send/c2c/bob", m)
	if e := bob.NextEvent(); textOf(e) != "forbidden callback" {
		t.Fatalf("ForbidBeforeSendMsgCallback ignored: %s", e.Raw)
	}
}

func TestE2E_CallbackRefusePolicyAndGroup(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.OnFailure, c.Callbacks.Timeout = cb.URL, "refuse", 300*time.Millisecond
		c.Callbacks.Commands = config.CallbackCommands // every command imbroker sends
	})
	cb.setReply(func(cmd string, _ map[string]any) (int, string) {
		if strings.HasSuffix(cmd, "BeforeSendMsg") {
			return 500, "boom"
		}
		return 200, `{"ErrorCode":0}`
	})
	b.importAccounts("bob")
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bob", Text("x", Random()))
	if rep := alice.NextReply(); rep["ErrorCode"].(float64) != 80003 {
		t.Fatalf("refuse policy: %v", rep)
	}
	// A timeout under refuse is refused the same way.
	release := make(chan struct{})
	cb.setReply(func(string, map[string]any) (int, string) { <-release; return 200, `{"ErrorCode":0}` })
	alice.Publish1("im/send/c2c/bob", Text("slow", Random()))
	rep := alice.NextReply()
	close(release)
	if rep["ErrorCode"].(float64) != 80003 {
		t.Fatalf("refuse policy on timeout: %v", rep)
	}
	if st := b.App.Broker.Stats(); st.CallbacksFailed < 2 {
		t.Fatalf("failed callbacks not counted: %+v", st)
	}
	// Group: reject with the default 10016 and a rewrite that reaches members.
	r := alice.Req("group.create", map[string]any{"Type": "Private", "Name": "cb", "MemberList": []any{map[string]any{"Member_Account": "bob"}}})
	gid := r["GroupId"].(string)
	bob := b.Connect("bob", "bob")
	cb.setReply(func(cmd string, body map[string]any) (int, string) {
		if cmd == "Group.CallbackBeforeSendMsg" {
			if body["GroupId"] != gid || body["Type"] != "Private" {
				return 200, `{"ErrorCode":1}`
			}
			return 200, `{"ErrorCode":0,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"edited"}}]}`
		}
		return 200, `{"ErrorCode":0}`
	})
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("original", Random()))
	e := nextEventOf(bob, "GroupMsg")
	if !strings.Contains(string(e.Msg.MsgBody), "edited") {
		t.Fatalf("group rewrite: %s", e.Raw)
	}
	after := cb.next(t, "Group.CallbackAfterSendMsg")
	if after.Body["GroupId"] != gid || after.Body["MsgSeq"] == nil {
		t.Fatalf("group after-callback: %+v", after.Body)
	}
	cb.setReply(func(string, map[string]any) (int, string) { return 200, `{"ErrorCode":1}` })
	alice.Publish1("im/send/group/"+gidLevel(gid), Text("refused", Random()))
	if rep := alice.NextReply(); rep["ErrorCode"].(float64) != 10016 {
		t.Fatalf("group reject: %v", rep)
	}
}

// TestE2E_CallbackAfterDoesNotSlowSenders: with the callback server stuck,
// sends still complete at once; the after-callbacks arrive once it answers.
func TestE2E_CallbackAfterDoesNotSlowSenders(t *testing.T) {
	cb := newCBServer(t)
	b := StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Timeout = cb.URL, 10*time.Second
		c.Callbacks.Commands = []string{"C2C.CallbackAfterSendMsg"} // no before-callback
	})
	stuck := make(chan struct{})
	cb.setReply(func(string, map[string]any) (int, string) { <-stuck; return 200, `{"ErrorCode":0}` })
	alice := b.Connect("alice", "alice")
	bob := b.Connect("bob", "bob")
	const n = 20
	for i := 0; i < n; i++ {
		alice.Publish1("im/send/c2c/bob", Text("fast", Random())) // waits for each PUBACK
	}
	for i := 0; i < n; i++ {
		bob.NextEvent()
	}
	close(stuck)
	for i := 0; i < n; i++ {
		cb.next(t, "C2C.CallbackAfterSendMsg")
	}
}
