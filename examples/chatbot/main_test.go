package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imbroker/imbroker/config"
	imtest "github.com/imbroker/imbroker/test"
)

// TestChatbot: a user chats with the bot through the real broker; the bot
// hears of the message by callback and answers through the REST API.
func TestChatbot(t *testing.T) {
	bot := &Bot{Account: "bot", AppID: 1400000000, Key: imtest.TestKey, Admin: "administrator"}
	cb := httptest.NewServer(bot)
	defer cb.Close()
	b := imtest.StartBroker(t, func(c *config.Config) {
		c.Callbacks.URL, c.Callbacks.Commands = cb.URL, []string{"C2C.CallbackAfterSendMsg"}
	})
	bot.REST = "http://" + b.App.HTTPAddr()
	if err := bot.Register(); err != nil {
		t.Fatal(err)
	}
	alice := b.Connect("alice", "alice")
	alice.Publish1("im/send/c2c/bot", imtest.Text("echo hello bot", imtest.Random()))
	for {
		e := alice.NextEvent()
		if e.Msg.From_Account == "bot" {
			if !strings.Contains(string(e.Msg.MsgBody), `"Text":"hello bot"`) {
				t.Fatalf("bot answered %s", e.Raw)
			}
			return
		}
	}
}
