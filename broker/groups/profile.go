package groups

import (
	"cmp"
	"context"
	"time"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
)

// ModifyRequest is group.modify (Tencent modify_group_base_info): the
// fields to change, nil (absent) for those that stay.
type ModifyRequest struct {
	GroupId         string
	Name            *string
	Introduction    *string
	Notification    *string
	FaceUrl         *string
	MaxMemberNum    *int
	ApplyJoinOption *string
	AppDefinedData  []wire.KVItem
	MuteAllMember   *string
	ShutUpAllMember *string // Tencent's older name of MuteAllMember, still sent by clients; MuteAllMember wins
}

// Modify changes the group profile; who may depends on the type. One
// InfoChanged tip lists what changed.
func (s *Service) Modify(ctx context.Context, a ops.Actor, q *ModifyRequest) (*Empty, error) {
	q.MuteAllMember = cmp.Or(q.MuteAllMember, q.ShutUpAllMember)
	g, err := s.lock(q.GroupId)
	if err != nil {
		return nil, err
	}
	defer g.op.Unlock()
	role := g.role(a.User)
	info := g.info
	changed := &wire.GroupInfoChange{}
	setText := func(field string, dst *string, v *string, max int, note **string) error {
		if v == nil {
			return nil
		}
		if err := checkText(field, *v, max); err != nil {
			return err
		}
		if field == "Name" && *v == "" {
			return badParams("Name must not be empty")
		}
		*dst = *v
		*note = v
		return nil
	}
	if q.Name != nil || q.Introduction != nil || q.Notification != nil || q.FaceUrl != nil || q.MaxMemberNum != nil ||
		q.ApplyJoinOption != nil || q.AppDefinedData != nil {
		if !a.Admin && !g.policy.canEdit(role) {
			return nil, noPermission("%s may not edit this %s group", a.User, g.info.Type)
		}
	}
	for _, f := range []error{
		setText("Name", &info.Name, q.Name, maxGroupName, &changed.Name),
		setText("Introduction", &info.Introduction, q.Introduction, maxGroupIntro, &changed.Introduction),
		setText("Notification", &info.Notification, q.Notification, maxGroupNotice, &changed.Notification),
		setText("FaceUrl", &info.FaceUrl, q.FaceUrl, maxGroupFace, &changed.FaceUrl),
	} {
		if f != nil {
			return nil, f
		}
	}
	if q.MaxMemberNum != nil {
		if *q.MaxMemberNum < len(g.members) || *q.MaxMemberNum > g.policy.MaxMembers || *q.MaxMemberNum < 1 {
			return nil, badParams("MaxMemberNum must be between the member count %d and %d", len(g.members), g.policy.MaxMembers)
		}
		info.MaxMemberNum = *q.MaxMemberNum
		changed.MaxMemberNum = q.MaxMemberNum
	}
	if q.ApplyJoinOption != nil {
		if !applyOptions[*q.ApplyJoinOption] {
			return nil, badParams("ApplyJoinOption must be FreeAccess, NeedPermission or DisableApply")
		}
		info.ApplyJoinOption = *q.ApplyJoinOption
		changed.ApplyJoinOption = q.ApplyJoinOption
	}
	if q.AppDefinedData != nil {
		if err := checkDefined("AppDefinedData", q.AppDefinedData, maxGroupDefined, maxGroupDefinedVal); err != nil {
			return nil, err
		}
		info.AppDefinedData = mergeDefined(info.AppDefinedData, q.AppDefinedData)
		if len(info.AppDefinedData) > maxGroupDefined {
			return nil, badParams("AppDefinedData has more than %d keys", maxGroupDefined)
		}
		changed.AppDefinedData = &info.AppDefinedData
	}
	if q.MuteAllMember != nil {
		if *q.MuteAllMember != "On" && *q.MuteAllMember != "Off" {
			return nil, badParams("MuteAllMember must be On or Off")
		}
		// Work groups have no mute at all (Tencent), not even for the app admin.
		if g.policy.Kind == kindPrivate || (!a.Admin && !g.policy.isManager(role)) {
			return nil, noPermission("%s may not mute this %s group", a.User, g.info.Type)
		}
		info.MuteAllMember = *q.MuteAllMember
		changed.MuteAllMember = q.MuteAllMember
	}
	if changed.Empty() {
		return &Empty{}, nil
	}
	info.InfoSeq++
	info.LastInfoTime = time.Now().Unix()
	if _, _, err := s.commit(ctx, g, change{
		sets: map[string][]byte{groupKey(q.GroupId): mustJSON(info)}, userCopies: s.userCopiesFor(g),
		events: []event{tipEvent(wire.GroupTip{GroupId: q.GroupId, TipType: tipInfoChanged, Operator_Account: a.User, Changed: changed})},
	}); err != nil {
		return nil, err
	}
	g.apply(func() { g.info = info })
	s.afterInfoChanged(ctx, q.GroupId, info.Type, a.User, changed)
	return &Empty{}, nil
}

// MuteAllRequest is group.mute_all.
type MuteAllRequest struct {
	GroupId, MuteAllMember string
}

// MuteAll is Modify with only MuteAllMember.
func (s *Service) MuteAll(ctx context.Context, a ops.Actor, q *MuteAllRequest) (*Empty, error) {
	return s.Modify(ctx, a, &ModifyRequest{GroupId: q.GroupId, MuteAllMember: &q.MuteAllMember})
}
