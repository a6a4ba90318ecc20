package broker

import "time"

// What the REST admin API (rest/v4.go, docs/rest.md) needs of the broker
// itself: UserSig checks, kicking a user off, the app's counters. The
// domain operations it calls on the services directly.

// VerifyUserSig checks sig for user against this app's SDKAppID and key.
// A failure is an *imerr.Error carrying Tencent's code (70001, 70003, ...).
func (b *Broker) VerifyUserSig(user, sig string) error {
	_, err := b.signer.Verify(user, sig, time.Now())
	return err
}

// KickUser disconnects every connection of user (Tencent kick; see
// mqttd.Server.KickUser) and returns how many were connected.
func (b *Broker) KickUser(user string) int { return b.mqtt.KickUser(user) }

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
	c.OnlineUserNum, c.OnlineConnNum = b.mqtt.OnlineCounts()
	var err error
	if c.RegistUserNumTotal, err = b.relations.AccountCount(); err != nil {
		return c, err
	}
	gids, err := b.groups.GroupIDs("")
	c.GroupAllGroupNum = len(gids)
	return c, err
}
