package broker

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/imerr"
)

// The core of the REST admin API (rest/v4.go, docs/rest.md): im/req ops run
// without an MQTT client, and the account registry.

// errKickedAdmin is the DISCONNECT reason of a connection the admin kicked.
var errKickedAdmin = packets.Code{Code: packets.ErrAdministrativeAction.Code, Reason: "kicked: admin"}

// VerifyUserSig checks sig for user against this app's SDKAppID and key.
// A failure is a *usersig.Error carrying Tencent's code (70001, 70003, ...).
func (b *Broker) VerifyUserSig(user, sig string) error {
	_, err := b.signer.Verify(user, sig, time.Now())
	return err
}

// AdminRequest runs the im/req op as actor without an MQTT client: as the
// app admin (with its rights) when actor is the admin identifier, otherwise
// as that user. It returns the reply fields (without Id, Op, ErrorCode,
// ErrorInfo) or an error; an *imerr.Error carries the Tencent code. Ops that
// replay to a connection (sync, group.sync) are refused with 60009.
func (b *Broker) AdminRequest(ctx context.Context, op, actor string, body []byte) (map[string]any, error) {
	if op == "sync" || op == "group.sync" {
		return nil, imerr.BadCommand.New("%s needs an MQTT connection", op)
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	res, err := b.runOp(ctx, op, ops.Actor{User: actor, Admin: actor == b.cfg.App.Admin}, nil, packets.Packet{}, body)
	if err != nil {
		if e := imerr.As(err); e.Code == imerr.Internal.Code {
			b.log.Error("admin request failed", "op", op, "actor", actor, "error", err)
			return nil, e
		}
		return nil, err
	}
	out := map[string]any{}
	if res != nil {
		raw, err := json.Marshal(res)
		if err != nil {
			return nil, err
		}
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		if err := d.Decode(&out); err != nil {
			return nil, err
		}
	}
	return out, nil
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

// The groups service's REST operations, for rest.Admin until the REST API
// calls the service itself.

func (b *Broker) SendGroup(ctx context.Context, from, gid string, payload []byte) (uint64, bool, error) {
	res, err := b.groups.Send(ctx, from, gid, payload)
	return res.MsgSeq, res.Dropped, err
}

func (b *Broker) GroupIDs(groupType string) ([]string, error) { return b.groups.GroupIDs(groupType) }

func (b *Broker) GroupOnlineMemberNum(gid string) (int, error) { return b.groups.OnlineMemberNum(gid) }

func (b *Broker) GroupSystemNotice(gid string, to []string, content string) (int, error) {
	return b.groups.SystemNotice(gid, to, content)
}

func (b *Broker) SetGroupUnread(ctx context.Context, gid, uid string, n int) error {
	return b.groups.SetUnread(ctx, gid, uid, n)
}

func (b *Broker) DeleteGroupMsgBySender(ctx context.Context, gid, sender string) (int, error) {
	return b.groups.DeleteMsgsBySender(ctx, gid, sender)
}

func (b *Broker) ImportGroup(ctx context.Context, q *groups.CreateRequest, createTime int64) (string, error) {
	res, err := b.groups.ImportGroup(ctx, ops.Actor{User: b.cfg.App.Admin, Admin: true}, q, createTime)
	if err != nil {
		return "", err
	}
	return res.GroupId, nil
}

func (b *Broker) ImportGroupMembers(ctx context.Context, gid string, list []groups.ImportedMember) ([]int, error) {
	return b.groups.ImportMembers(ctx, gid, list)
}

func (b *Broker) ImportGroupMsgs(ctx context.Context, gid string, recentContact bool, msgs []groups.ImportedMsg) ([]uint64, error) {
	return b.groups.ImportMsgs(ctx, gid, recentContact, msgs)
}
