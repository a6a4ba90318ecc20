package broker

import (
	"encoding/json"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// What the REST admin API (rest/v4.go, docs/rest.md) needs of the broker
// itself: UserSig checks, kicking a user off, the app's counters. The
// domain operations it calls on the services directly.

// errKickedAdmin is the DISCONNECT reason of a connection the admin kicked.
var errKickedAdmin = packets.Code{Code: packets.ErrAdministrativeAction.Code, Reason: "kicked: admin"}

// VerifyUserSig checks sig for user against this app's SDKAppID and key.
// A failure is a *usersig.Error carrying Tencent's code (70001, 70003, ...).
func (b *Broker) VerifyUserSig(user, sig string) error {
	_, err := b.signer.Verify(user, sig, time.Now())
	return err
}

// KickUser disconnects every connection of user (Tencent kick): each gets
// an rpc notice {Op:"kicked", Reason:"admin"} and then DISCONNECT 0x98 (3.1.1
// clients see the connection close). It returns how many were connected.
// The user's UserSig stays valid: the client may log in again.
func (b *Broker) KickUser(user string) int {
	n := 0
	for _, id := range b.devices.list(user) {
		cl, ok := b.mq.Clients.Get(id)
		if !ok || userOf(cl) != user {
			continue
		}
		n++
		if cl.Net.Conn != nil {
			_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(kickWriteTimeout))
		}
		if payload, err := json.Marshal(kickNotice{Op: "kicked", Reason: "admin", By: b.cfg.App.Admin}); err == nil {
			b.writeDirect(cl, topicUserPrefix+user+rpcSuffix, payload, packets.Properties{})
		}
		_ = b.mq.DisconnectClient(cl, errKickedAdmin)
	}
	return n
}

// AppCounters are the node's counters for Tencent getappinfo: messages
// since the process started, and current totals.
type AppCounters struct {
	C2CUpMsgNum, GroupUpMsgNum, GroupDroppedMsgNum int64 // accepted sends since start
	OnlineUserNum, OnlineConnNum                   int   // now
	RegistUserNumTotal, GroupAllGroupNum           int   // imported accounts, groups
}

// Counters returns the AppCounters.
func (b *Broker) Counters() (AppCounters, error) {
	gs := b.groups.Stats()
	c := AppCounters{C2CUpMsgNum: b.messages.Sent(), GroupUpMsgNum: gs.Sent, GroupDroppedMsgNum: gs.Dropped}
	b.devices.mu.Lock()
	for user := range b.devices.users {
		if n := len(b.devices.live(user)); n > 0 {
			c.OnlineUserNum++
			c.OnlineConnNum += n
		}
	}
	b.devices.mu.Unlock()
	var err error
	if c.RegistUserNumTotal, err = b.relations.AccountCount(); err != nil {
		return c, err
	}
	gids, err := b.groups.GroupIDs("")
	c.GroupAllGroupNum = len(gids)
	return c, err
}
