package broker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Group admin operations for the REST API (rest/group.go, docs/rest.md).

// Group admin limits and names.
const (
	// NoticeSuffix: im/u/{uid}/notice carries group system notifications,
	// QoS 0, online only, never stored (docs/protocol.md).
	NoticeSuffix          = "/notice"
	eventGroupSystemNote  = "GroupSystemNotification"
	deleteBySenderBatch   = 200 // replaces per commit
	deleteBySenderReadMax = 500 // entries read per page
)

// stableGroup loads an existing, not destroyed group (without its op lock).
func (b *Broker) stableGroup(gid string) (*group, error) {
	if err := ids.CheckGroupID(gid, false); err != nil {
		return nil, imerr.GroupInvalid.New("invalid GroupId: %v", err)
	}
	g, err := b.loadGroup(gid)
	if err != nil {
		return nil, err
	}
	if g == nil || g.isDestroyed() {
		return nil, imerr.GroupNotFound.New("group %s does not exist", gid)
	}
	return g, nil
}

// GroupOnlineMemberNum counts the group's members that have at least one
// live MQTT connection now (Tencent get_online_member_num). Connections
// that only read an open group without being members are not counted.
func (b *Broker) GroupOnlineMemberNum(gid string) (int, error) {
	g, err := b.stableGroup(gid)
	if err != nil {
		return 0, err
	}
	g.mu.RLock()
	uids := g.memberIDs()
	g.mu.RUnlock()
	n := 0
	for _, u := range uids {
		if len(b.OnlineDevices(u)) > 0 {
			n++
		}
	}
	return n, nil
}

// GroupSystemNotice writes a system notification to the live connections
// of the group's members (to, when not empty: those of them that are
// members) subscribed to im/u/{uid}/notice, QoS 0. Nothing is stored:
// offline members never see it. It returns how many connections got it.
func (b *Broker) GroupSystemNotice(gid string, to []string, content string) (int, error) {
	g, err := b.stableGroup(gid)
	if err != nil {
		return 0, err
	}
	g.mu.RLock()
	var users []string
	if len(to) == 0 {
		users = g.memberIDs()
	} else {
		for _, u := range dedupe(to) {
			if g.role(u) != "" {
				users = append(users, u)
			}
		}
	}
	g.mu.RUnlock()
	payload, err := wire.EncodeEvent(eventGroupSystemNote, map[string]any{"GroupId": gid, "Content": content, "MsgTime": time.Now().Unix()})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		for _, id := range b.devices.list(u) {
			cl, ok := b.mq.Clients.Get(id)
			if !ok || userOf(cl) != u {
				continue
			}
			if b.writeDirect(cl, topicUserPrefix+u+NoticeSuffix, payload, packets.Properties{}) {
				n++
			}
		}
	}
	return n, nil
}

// SetGroupUnread sets a member's unread count of the group conversation
// (Tencent set_unread_msg_num). It changes the stored conversation record,
// which is what conv.list reports for write-diffusion groups; read-diffusion
// groups compute unread from their stream, so the value does not show there.
func (b *Broker) SetGroupUnread(ctx context.Context, gid, uid string, n int) error {
	g, err := b.stableGroup(gid)
	if err != nil {
		return err
	}
	if n < 0 {
		return badParams("UnreadMsgNum must not be negative")
	}
	if !g.isMember(uid) {
		return imerr.GroupNoPermission.New("%s is not a member of %s", uid, gid)
	}
	_, err = b.store.Commit(ctx, storage.Batch{Updates: []storage.Update{setUnread(uid, gid, n)}})
	return err
}

func setUnread(uid, gid string, n int) storage.Update {
	return storage.Update{Name: convs.Key(uid, convs.GroupID(gid)), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		st := convs.State{Type: convs.TypeGroup, GroupId: gid}
		if found {
			_ = json.Unmarshal(old, &st)
		}
		st.UnreadMsgNum = n
		return mustJSON(st), nil
	}}
}

// DeleteGroupMsgBySender replaces every stored message of sender in the
// group stream by its recall marker (as a recall does, without a tip and
// without touching conversation records or user-stream copies). The stream
// is read in pages of 500 and committed in batches of 200 replacements. It
// returns how many messages were replaced.
func (b *Broker) DeleteGroupMsgBySender(ctx context.Context, gid, sender string) (int, error) {
	if ids.CheckUserID(sender) != nil {
		return 0, badParams("invalid Sender_Account")
	}
	g, err := b.lockGroup(gid)
	if err != nil {
		return 0, err
	}
	defer g.op.Unlock()
	if !g.policy.stored() {
		return 0, imerr.GroupNoPermission.New("%s keeps no messages", g.info.Type)
	}
	stream := groupStream(gid)
	var pending []storage.Replace
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		_, err := b.store.Commit(ctx, storage.Batch{Replaces: pending})
		pending = nil
		return err
	}
	n := 0
	for after := uint64(0); ; {
		_, entries, err := b.store.Read(stream, after, deleteBySenderReadMax)
		if err != nil {
			return n, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			after = e.Pos.Seq
			var ev struct {
				Event string
				Msg   struct{ From_Account string }
			}
			if json.Unmarshal(e.Payload, &ev) != nil || ev.Event != wire.EventGroupMsg || ev.Msg.From_Account != sender {
				continue
			}
			m, err := wire.RecallMarker(e.Payload)
			if err != nil {
				continue // already recalled
			}
			pending = append(pending, storage.Replace{Stream: stream, Seq: e.Pos.Seq, Payload: m.Event})
			n++
			if len(pending) >= deleteBySenderBatch {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, flush()
}

// ImportedMember is one import_group_member entry.
type ImportedMember struct {
	Member_Account string
	Role           string
	JoinTime       int64
	UnreadMsgNum   int
}

// ImportGroup sets an imported group's CreateTime (created just before).
func (b *Broker) ImportGroup(ctx context.Context, gid string, createTime int64) error {
	g, err := b.lockGroup(gid)
	if err != nil {
		return err
	}
	defer g.op.Unlock()
	if createTime <= 0 {
		return nil
	}
	g.mu.Lock() // op -> mu
	g.info.CreateTime = createTime
	raw := mustJSON(g.info)
	g.mu.Unlock()
	_, _, err = b.commitGroupChange(ctx, g, groupChange{sets: map[string][]byte{groupKey(gid): raw}})
	return err
}

// ImportGroupMembers adds members with their roles and join times (Tencent
// import_group_member). Result per member: 1 added, 2 already a member,
// 0 failed. One MemberJoin tip announces the added members.
func (b *Broker) ImportGroupMembers(ctx context.Context, gid string, list []ImportedMember) ([]int, error) {
	g, err := b.lockGroup(gid)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if g.policy.Kind == kindAVChatRoom {
		return nil, imerr.GroupNoPermission.New("AVChatRoom members cannot be imported")
	}
	res := make([]int, len(list))
	var add []string
	want := map[string]ImportedMember{}
	for i, m := range list {
		switch {
		case ids.CheckUserID(m.Member_Account) != nil:
		case m.Role != "" && m.Role != roleMember && !(m.Role == roleAdmin && g.policy.hasAdmins()):
		case g.isMember(m.Member_Account):
			res[i] = 2
		case want[m.Member_Account].Member_Account != "":
			res[i] = 2
		default:
			want[m.Member_Account] = m
			add = append(add, m.Member_Account)
			res[i] = 1
		}
	}
	if len(add) == 0 {
		return res, nil
	}
	if err := b.addMembers(ctx, g, b.cfg.App.Admin, add, nil, nil); err != nil {
		return nil, err
	}
	sets := map[string][]byte{}
	var upd []storage.Update
	g.mu.Lock() // op -> mu
	for _, uid := range add {
		m, im := g.members[uid], want[uid]
		if m == nil {
			continue
		}
		if im.Role == roleAdmin {
			m.Role = roleAdmin
		}
		if im.JoinTime > 0 {
			m.JoinTime = im.JoinTime
		}
		sets[memberKey(gid, uid)] = mustJSON(m)
		if im.UnreadMsgNum > 0 {
			upd = append(upd, setUnread(uid, gid, im.UnreadMsgNum))
		}
	}
	g.mu.Unlock()
	_, err = b.store.Commit(ctx, storage.Batch{Sets: sets, Updates: upd})
	return res, err
}

// ImportedMsg is one import_group_msg entry.
type ImportedMsg struct {
	From_Account string
	SendTime     int64
	Random       uint32
	MsgBody      json.RawMessage
}

// ImportGroupMsgs appends historical messages to the group stream, each
// with its SendTime as MsgTime and a new MsgSeq (Tencent import_group_msg).
// They count no unread; with recentContact they update write-diffusion
// members' conversation records (and copies reach their user streams),
// otherwise they are only in the group history. Results: the MsgSeq
// each got, 0 for a refused one.
func (b *Broker) ImportGroupMsgs(ctx context.Context, gid string, recentContact bool, msgs []ImportedMsg) ([]uint64, error) {
	g, err := b.lockGroup(gid)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	if !g.policy.stored() || g.policy.Kind == kindAVChatRoom {
		return nil, imerr.GroupNoPermission.New("%s keeps no imported messages", g.info.Type)
	}
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		if ids.CheckUserID(m.From_Account) != nil || len(m.MsgBody) == 0 || m.SendTime <= 0 {
			continue
		}
		c := groupChange{eventName: wire.EventGroupMsg,
			build: func(seq uint64, _ time.Time) any {
				return wire.GroupMsg{GroupId: gid, From_Account: m.From_Account, MsgSeq: seq, MsgRandom: m.Random, MsgTime: m.SendTime, MsgBody: m.MsgBody}
			}}
		if recentContact {
			c.userCopies = b.userCopiesFor(g)
			c.conv = &groupConv{from: m.From_Account, noUnread: true, msgTime: m.SendTime}
		}
		seq, _, err := b.commitGroupChange(ctx, g, c)
		if err != nil {
			return out, err
		}
		out[i] = seq
	}
	return out, nil
}
