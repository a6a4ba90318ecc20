package groups

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/broker/convs"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Group admin operations of the REST API (rest/group.go, docs/rest.md).

const (
	// NoticeSuffix: im/u/{uid}/notice carries group system notifications,
	// QoS 0, online only, never stored (docs/protocol.md).
	NoticeSuffix          = "/notice"
	eventSystemNotice     = "GroupSystemNotification"
	deleteBySenderBatch   = 200 // replaces per commit
	deleteBySenderReadMax = 500 // entries read per page
)

// OnlineMemberNum counts the group's members that have at least one live
// MQTT connection now (Tencent get_online_member_num). Connections that
// only read an open group without being members are not counted.
func (s *Service) OnlineMemberNum(gid string) (int, error) {
	g, err := s.existing(gid)
	if err != nil {
		return 0, err
	}
	g.mu.RLock()
	uids := g.memberIDs()
	g.mu.RUnlock()
	n := 0
	for _, u := range uids {
		if len(s.conns.Online(u)) > 0 {
			n++
		}
	}
	return n, nil
}

// systemNotice is a GroupSystemNotification event (fields in name order,
// as the map it replaced encoded them).
type systemNotice struct {
	Content string
	GroupId string
	MsgTime int64
}

// SystemNotice writes a system notification to the live connections of
// the group's members (to, when not empty: those of them that are members)
// subscribed to im/u/{uid}/notice, QoS 0. Nothing is stored: offline
// members never see it. It returns how many connections got it.
func (s *Service) SystemNotice(gid string, to []string, content string) (int, error) {
	g, err := s.existing(gid)
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
	payload, err := wire.EncodeEvent(eventSystemNotice, systemNotice{GroupId: gid, Content: content, MsgTime: time.Now().Unix()})
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", eventSystemNotice, err)
	}
	n := 0
	for _, u := range users {
		n += s.conns.Notify(u, NoticeSuffix, payload)
	}
	return n, nil
}

// SetUnread sets a member's unread count of the group conversation
// (Tencent set_unread_msg_num). It changes the stored conversation record,
// which is what conv.list reports for write-diffusion groups; read-diffusion
// groups compute unread from their stream, so the value does not show there.
func (s *Service) SetUnread(ctx context.Context, gid, uid string, n int) error {
	g, err := s.existing(gid)
	if err != nil {
		return err
	}
	if n < 0 {
		return badParams("UnreadMsgNum must not be negative")
	}
	if !g.isMember(uid) {
		return imerr.GroupNoPermission.New("%s is not a member of %s", uid, gid)
	}
	if _, err = s.store.Commit(ctx, storage.Batch{Updates: []storage.Update{setUnread(uid, gid, n)}}); err != nil {
		return fmt.Errorf("commit unread count of %s in %s: %w", uid, gid, err)
	}
	return nil
}

// setUnread sets uid's unread count of the gid conversation.
func setUnread(uid, gid string, n int) storage.Update {
	return storage.Update{Name: convs.Key(uid, convs.GroupID(gid)), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		st := convs.State{Type: convs.TypeGroup, GroupId: gid}
		if found {
			_ = convs.Decode(old, &st) // a record that does not decode is rebuilt
		}
		st.UnreadMsgNum = n
		return convs.Encode(&st), nil
	}}
}

// DeleteMsgsBySender replaces every stored message of sender in the group
// stream by its recall marker (as a recall does, without a tip and without
// touching conversation records or user-stream copies). The stream is read
// in pages of 500 and committed in batches of 200 replacements. It returns
// how many messages were replaced.
func (s *Service) DeleteMsgsBySender(ctx context.Context, gid, sender string) (int, error) {
	if ids.CheckUserID(sender) != nil {
		return 0, badParams("invalid Sender_Account")
	}
	g, err := s.lock(gid)
	if err != nil {
		return 0, err
	}
	defer g.op.Unlock()
	if !g.policy.stored() {
		return 0, imerr.GroupNoPermission.New("%s keeps no messages", g.info.Type)
	}
	stream := convs.GroupStream(gid)
	var pending []storage.Replace
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		_, err := s.store.Commit(ctx, storage.Batch{Replaces: pending})
		pending = nil
		if err != nil {
			return fmt.Errorf("commit recall markers in %s: %w", gid, err)
		}
		return nil
	}
	n := 0
	for after := uint64(0); ; {
		_, entries, err := s.store.Read(stream, after, deleteBySenderReadMax)
		if err != nil {
			return n, fmt.Errorf("read %s: %w", stream, err)
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
