package config

import (
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// CallbackCommands are the commands imbroker sends (docs/callbacks.md). A
// command enabled in callbacks.commands that is not here is allowed (a
// Tencent command list copied whole must not stop the broker) but never sent.
var CallbackCommands = []string{
	"C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg", "C2C.CallbackAfterMsgReport", "C2C.CallbackAfterMsgWithDraw",
	"Group.CallbackBeforeSendMsg", "Group.CallbackAfterSendMsg", "Group.CallbackBeforeCreateGroup", "Group.CallbackAfterCreateGroup",
	"Group.CallbackBeforeApplyJoinGroup", "Group.CallbackBeforeInviteJoinGroup", "Group.CallbackAfterNewMemberJoin",
	"Group.CallbackAfterMemberExit", "Group.CallbackAfterGroupFull", "Group.CallbackAfterGroupDestroyed",
	"Group.CallbackAfterGroupInfoChanged", "Group.CallbackAfterRecallMsg",
	"Sns.CallbackPrevFriendAdd", "Sns.CallbackPrevFriendResponse", "Sns.CallbackFriendAdd", "Sns.CallbackFriendDelete",
	"Sns.CallbackBlackListAdd", "Sns.CallbackBlackListDelete", "Profile.CallbackPortraitSet", "State.StateChange",
	"Push.CallbackOfflinePush",
}

// callbackCommand is the form of a Tencent callback command.
var callbackCommand = regexp.MustCompile(`^[A-Za-z0-9]+\.[A-Za-z0-9]+$`)

// Callbacks configures Tencent-style third-party callbacks (docs/callbacks.md).
type Callbacks struct {
	URL       string        `yaml:"url"`        // the app's callback URL (http or https); "" disables callbacks
	Token     string        `yaml:"token"`      // signs requests: Sign = sha256(token + RequestTime); "" = unsigned
	Timeout   time.Duration `yaml:"timeout"`    // per request (Tencent: 2s); default 2s
	OnFailure string        `yaml:"on_failure"` // a failed or timed-out before-callback: allow (Tencent's default) or refuse (80003)
	Commands  []string      `yaml:"commands"`   // enabled commands, e.g. C2C.CallbackBeforeSendMsg; none by default (Tencent enables each one)
	Queue     int           `yaml:"queue"`      // after-callbacks waiting to be sent; a full queue drops; default 10000
	Workers   int           `yaml:"workers"`    // goroutines sending after-callbacks; default 4
	Retries   int           `yaml:"retries"`    // extra attempts for a failed after-callback; default 1
}

func defaultCallbacks() Callbacks {
	return Callbacks{Timeout: 2 * time.Second, OnFailure: "allow", Commands: []string{}, Queue: 10000, Workers: 4, Retries: 1}
}

func (v *validator) callbacks(c Callbacks) {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		v.check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "callbacks.url", fmt.Sprintf("not an http(s) URL: %q", c.URL))
	}
	v.positive("callbacks.timeout", c.Timeout)
	v.oneOf("callbacks.on_failure", c.OnFailure, "allow", "refuse")
	v.check(c.Queue >= 1, "callbacks.queue", "must be at least 1")
	v.check(c.Workers >= 1 && c.Workers <= 256, "callbacks.workers", "must be between 1 and 256")
	v.check(c.Retries >= 0 && c.Retries <= 10, "callbacks.retries", "must be between 0 and 10")
	for i, cmd := range c.Commands {
		v.check(callbackCommand.MatchString(cmd), fmt.Sprintf("callbacks.commands[%d]", i), fmt.Sprintf("not a callback command (Family.Name): %q", cmd))
	}
}
