package groups

import (
	"github.com/imbroker/imbroker/config"
)

// kind is a built-in Tencent group type; custom types have one as base.
type kind int

const (
	kindPrivate kind = iota // Work
	kindPublic
	kindChatRoom // Meeting
	kindAVChatRoom
	kindBChatRoom
)

var kindNames = map[string]kind{
	"Private": kindPrivate, "Public": kindPublic, "ChatRoom": kindChatRoom,
	"AVChatRoom": kindAVChatRoom, "BChatRoom": kindBChatRoom,
}

// Member roles (Tencent strings).
const (
	roleOwner  = "Owner"
	roleAdmin  = "Admin"
	roleMember = "Member"
)

// policy is one group type's rules (tencent-im.md §6). [IM-GROUP-TYPES]
type policy struct {
	Name              string
	Kind              kind
	MaxMembers        int
	HistoryBeforeJoin bool
	Guests            bool // guests may receive (when guests are enabled)
}

// policies resolves every configured type, built-in and custom.
func policies(cfg config.Groups) map[string]*policy {
	out := make(map[string]*policy, len(cfg.Types))
	for name, t := range cfg.Types {
		base := t.Base
		if base == "" {
			base = name
		}
		bt := cfg.Types[base]
		p := &policy{Name: name, Kind: kindNames[base], MaxMembers: bt.MaxMembers}
		if bt.HistoryBeforeJoin != nil {
			p.HistoryBeforeJoin = *bt.HistoryBeforeJoin
		}
		if bt.Guests != nil {
			p.Guests = *bt.Guests
		}
		if t.MaxMembers > 0 {
			p.MaxMembers = t.MaxMembers
		}
		if t.HistoryBeforeJoin != nil {
			p.HistoryBeforeJoin = *t.HistoryBeforeJoin
		}
		if t.Guests != nil {
			p.Guests = *t.Guests
		}
		out[name] = p
	}
	return out
}

// stored: messages are kept and roamed (not for live rooms).
func (p *policy) stored() bool { return p.Kind != kindAVChatRoom && p.Kind != kindBChatRoom }

// readDiffusion reports whether messages go through the group stream
// (im/g/{gid}) instead of every member's user stream.
func (p *policy) readDiffusion(members, above int) bool {
	return p.Kind == kindChatRoom || p.Kind == kindAVChatRoom || p.Kind == kindBChatRoom || members > above
}

// hasAdmins: Work groups and AVChatRooms have no admins.
func (p *policy) hasAdmins() bool { return p.Kind != kindPrivate && p.Kind != kindAVChatRoom }

// ownerMayQuit: only a Work group's owner may leave (it becomes ownerless).
func (p *policy) ownerMayQuit() bool { return p.Kind == kindPrivate }

// ownerMayDestroy: a Work group is disbanded only by the app admin.
func (p *policy) ownerMayDestroy() bool { return p.Kind != kindPrivate }

// unread: only Work and Public groups count unread messages.
func (p *policy) unread() bool { return p.Kind == kindPrivate || p.Kind == kindPublic }

// openReceive: a BChatRoom reaches every online user, member or not.
func (p *policy) openReceive() bool { return p.Kind == kindBChatRoom }

// isManager: owner, or admin where the type has admins.
func (p *policy) isManager(role string) bool {
	return role == roleOwner || (role == roleAdmin && p.hasAdmins())
}

// canEdit: who may change name, introduction, notification, face, options.
func (p *policy) canEdit(role string) bool {
	switch p.Kind {
	case kindPrivate:
		return role != "" // any member
	case kindAVChatRoom:
		return role == roleOwner
	default:
		return p.isManager(role)
	}
}

// canRemove: may actor kick (or mute) target? Owners act on anyone but
// themselves; admins only on ordinary members. Work groups: owner kicks,
// nobody mutes; AVChatRoom: no kick, owner mutes.
func (p *policy) canRemove(actor, target string, mute bool) bool {
	if target == "" || target == roleOwner {
		return false
	}
	switch p.Kind {
	case kindPrivate:
		return !mute && actor == roleOwner
	case kindAVChatRoom:
		return mute && actor == roleOwner
	}
	return actor == roleOwner || (actor == roleAdmin && target == roleMember)
}

// canInvite: only Work group members invite (Public, ChatRoom and live rooms
// are joined by applying); the app admin adds members anywhere but AVChatRoom.
func (p *policy) canInvite(role string, appAdmin bool) bool {
	if p.Kind == kindAVChatRoom {
		return false
	}
	return appAdmin || (p.Kind == kindPrivate && role != "")
}
