package relations

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Profiles (Tencent profile/portrait_set, portrait_get) [IM-REL-PROFILE]:
// docs/relations.md. A user's profile is one KV record pf/{uid}: a JSON
// object of the tags set so far (unset tags read as their defaults).

const eventProfileChanged = "ProfileChanged" // to the user's devices and to those who have them as a friend

const (
	tagNick            = "Tag_Profile_IM_Nick"
	tagImage           = "Tag_Profile_IM_Image"
	tagAllowType       = "Tag_Profile_IM_AllowType"
	tagAdminForbidType = "Tag_Profile_IM_AdminForbidType"
	customTagPrefix    = "Tag_Profile_Custom_"

	allowNeedConfirm   = "AllowType_Type_NeedConfirm"
	allowAllowAny      = "AllowType_Type_AllowAny"
	allowDenyAny       = "AllowType_Type_DenyAny"
	adminForbidNone    = "AdminForbid_Type_None"
	adminForbidSendOut = "AdminForbid_Type_SendOut"

	maxProfileValue = 500 // bytes of a string value (Tencent)
	maxProfileGet   = 100 // accounts of one profile.get (Tencent)
	maxProfileItems = 64  // items of one profile.set
)

type profileKind int

const (
	profString profileKind = iota
	profUint
	profEnum
)

// profileTag describes one profile field.
type profileTag struct {
	kind      profileKind
	max       int      // string bytes
	enum      []string // profEnum values; the first is the default
	adminOnly bool     // only the app admin may set it (40008)
	private   bool     // only the user and the app admin may read it
}

// standardTags are Tencent's Tag_Profile_IM_* fields (tencent-im.md §8), in
// the order profile.get lists them.
var standardTags = []struct {
	name string
	profileTag
}{
	{tagNick, profileTag{kind: profString, max: maxProfileValue}},
	{"Tag_Profile_IM_Gender", profileTag{kind: profEnum, enum: []string{"Gender_Type_Unknown", "Gender_Type_Female", "Gender_Type_Male"}}},
	{"Tag_Profile_IM_BirthDay", profileTag{kind: profUint}},
	{"Tag_Profile_IM_Location", profileTag{kind: profString, max: 16}},
	{"Tag_Profile_IM_SelfSignature", profileTag{kind: profString, max: maxProfileValue}},
	{tagAllowType, profileTag{kind: profEnum, enum: []string{allowNeedConfirm, allowAllowAny, allowDenyAny}}},
	{"Tag_Profile_IM_Language", profileTag{kind: profUint}},
	{tagImage, profileTag{kind: profString, max: maxProfileValue}},
	{"Tag_Profile_IM_MsgSettings", profileTag{kind: profUint}},
	{tagAdminForbidType, profileTag{kind: profEnum, enum: []string{adminForbidNone, adminForbidSendOut}, adminOnly: true, private: true}},
	{"Tag_Profile_IM_Level", profileTag{kind: profUint, adminOnly: true}},
	{"Tag_Profile_IM_Role", profileTag{kind: profUint, adminOnly: true}},
}

// profileTagOf describes a standard or configured custom tag.
func (s *Service) profileTagOf(tag string) (profileTag, bool) {
	for _, t := range standardTags {
		if t.name == tag {
			return t.profileTag, true
		}
	}
	if name, ok := strings.CutPrefix(tag, customTagPrefix); ok {
		if f, ok := s.cfg.CustomProfile[name]; ok {
			t := profileTag{kind: profString, max: maxProfileValue, private: !f.Public}
			if f.Type == config.ProfileTypeUint {
				t.kind = profUint
			}
			return t, true
		}
	}
	return profileTag{}, false
}

// allProfileTags lists every tag: standard ones, then custom ones by name.
func (s *Service) allProfileTags() []string {
	out := make([]string, 0, len(standardTags)+len(s.cfg.CustomProfile))
	for _, t := range standardTags {
		out = append(out, t.name)
	}
	var custom []string
	for name := range s.cfg.CustomProfile {
		custom = append(custom, customTagPrefix+name)
	}
	sort.Strings(custom)
	return append(out, custom...)
}

// def is a field's value when unset.
func (t profileTag) def() json.RawMessage {
	switch t.kind {
	case profUint:
		return json.RawMessage("0")
	case profEnum:
		return mustJSON(t.enum[0])
	}
	return json.RawMessage(`""`)
}

// check validates a value and returns its stored (compact) form.
func (t profileTag) check(tag string, raw json.RawMessage) (json.RawMessage, error) {
	if t.kind == profUint {
		n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil || n > math.MaxUint32 {
			return nil, imerr.ProfileBadParams.New("%s takes an integer from 0 to 4294967295", tag)
		}
		return json.RawMessage(strconv.FormatUint(n, 10)), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, imerr.ProfileBadParams.New("%s takes a string", tag)
	}
	if t.kind == profEnum {
		if !slices.Contains(t.enum, s) {
			return nil, imerr.ProfileBadParams.New("%s must be one of %s", tag, strings.Join(t.enum, ", "))
		}
	} else if len(s) > t.max {
		return nil, imerr.ProfileTooLong.New("%s is %d bytes, at most %d", tag, len(s), t.max)
	}
	return mustJSON(s), nil
}

// loadProfile reads a user's stored tags (none when never set).
func (s *Service) loadProfile(uid string) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if _, err := s.getJSON(profileKey(uid), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// profileString reads a string tag, with its default when unset.
func profileString(p map[string]json.RawMessage, tag string) string {
	var s string
	if v, ok := p[tag]; ok && json.Unmarshal(v, &s) == nil {
		return s
	}
	for _, t := range standardTags {
		if t.name == tag && t.kind == profEnum {
			return t.enum[0]
		}
	}
	return ""
}

// ProfileSetRequest is profile.set (Tencent portrait_set).
type ProfileSetRequest struct {
	From_Account string // another user's profile: the app admin only
	ProfileItem  []TagValue
}

// ProfileSet sets profile fields (Tencent portrait_set). All items are
// checked first; the change is one commit. The app admin may set another
// user's profile with From_Account, and only the admin may set the
// admin-only fields (AdminForbidType, Level, Role). [IM-REL-PROFILE]
func (s *Service) ProfileSet(ctx context.Context, a ops.Actor, q *ProfileSetRequest) (*Empty, error) {
	target := a.User
	if q.From_Account != "" && q.From_Account != a.User {
		if !a.Admin {
			return nil, imerr.ProfileAdminOnly.New("only the app admin may set another user's profile")
		}
		if ids.CheckUserID(q.From_Account) != nil {
			return nil, imerr.ProfileBadParams.New("invalid From_Account")
		}
		target = q.From_Account
	}
	if len(q.ProfileItem) == 0 || len(q.ProfileItem) > maxProfileItems {
		return nil, imerr.ProfileBadParams.New("ProfileItem must hold 1 to %d items", maxProfileItems)
	}
	ch, err := s.profileChange(target, q.ProfileItem, a.Admin)
	if err != nil {
		return nil, err
	}
	if err := s.commitProfile(ctx, storage.Batch{}, ch); err != nil {
		return nil, err
	}
	s.afterPortraitSet(ctx, target, a.User, ch.all) // Profile.CallbackPortraitSet
	return &Empty{}, nil
}

// profileChange is a checked change of one user's profile.
type profileChange struct {
	target  string
	changed map[string]json.RawMessage
	all     []TagValue // every item set, in request order (last value of a repeated tag)
	public  []TagValue // those others may read
}

// profileChange checks items (all of them before anything is written).
func (s *Service) profileChange(target string, items []TagValue, admin bool) (*profileChange, error) {
	ch := &profileChange{target: target, changed: map[string]json.RawMessage{}}
	var order []string
	for _, it := range items {
		t, ok := s.profileTagOf(it.Tag)
		if !ok {
			return nil, imerr.ProfileUnknownTag.New("unknown profile tag %q", it.Tag)
		}
		if t.adminOnly && !admin {
			return nil, imerr.ProfileNoWrite.New("%s can be set by the app admin only", it.Tag)
		}
		v, err := t.check(it.Tag, it.Value)
		if err != nil {
			return nil, err
		}
		if _, seen := ch.changed[it.Tag]; !seen {
			order = append(order, it.Tag)
		}
		ch.changed[it.Tag] = v
	}
	for _, tag := range order {
		ch.all = append(ch.all, TagValue{tag, ch.changed[tag]})
		if t, _ := s.profileTagOf(tag); !t.private {
			ch.public = append(ch.public, TagValue{tag, ch.changed[tag]})
		}
	}
	return ch, nil
}

// commitProfile commits first (which may hold other records of the same
// change) with ch: the profile record, ProfileChanged to the user's
// devices and, when public items changed, to every watcher.
func (s *Service) commitProfile(ctx context.Context, first storage.Batch, ch *profileChange) error {
	upd := storage.Update{Name: profileKey(ch.target), Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
		m := map[string]json.RawMessage{}
		if found {
			_ = json.Unmarshal(old, &m)
		}
		for k, v := range ch.changed {
			m[k] = v
		}
		return mustJSON(m), nil
	}}
	own, err := wire.EncodeEvent(eventProfileChanged, map[string]any{"From_Account": ch.target, "ProfileItem": ch.all})
	if err != nil {
		return err
	}
	first.Updates = append(first.Updates, upd)
	first.Appends = append(first.Appends, storage.Append{Stream: userStream(ch.target), Payload: own})
	var events []storage.Append
	if len(ch.public) > 0 {
		ws, err := s.watchers(ch.target)
		if err != nil {
			return err
		}
		ev, err := wire.EncodeEvent(eventProfileChanged, map[string]any{"From_Account": ch.target, "ProfileItem": ch.public})
		if err != nil {
			return err
		}
		for _, w := range ws {
			events = append(events, storage.Append{Stream: userStream(w), Payload: ev})
		}
	}
	if err := s.commitFanout(ctx, first, events); err != nil {
		return fmt.Errorf("set profile of %s: %w", ch.target, err)
	}
	return nil
}

// ProfileGetRequest is profile.get (Tencent portrait_get).
type ProfileGetRequest struct {
	To_Account []string
	TagList    []string // none: every field
}

// UserProfileItem is one user's profile.
type UserProfileItem struct {
	To_Account  string
	ProfileItem []TagValue
	ResultCode  int
	ResultInfo  string
}

// ProfileGetResponse answers profile.get.
type ProfileGetResponse struct {
	UserProfileItem []UserProfileItem
	Fail_Account    []string
}

// ProfileGet reads profiles (Tencent portrait_get). Another user's
// private fields (AdminForbidType, custom fields not `public`) are left out
// of their item; the user and the app admin see everything. An empty
// TagList asks for every field.
func (s *Service) ProfileGet(_ context.Context, a ops.Actor, q *ProfileGetRequest) (*ProfileGetResponse, error) {
	if len(q.To_Account) == 0 || len(q.To_Account) > maxProfileGet {
		return nil, imerr.ProfileBadParams.New("To_Account must hold 1 to %d accounts", maxProfileGet)
	}
	tags := q.TagList
	if len(tags) == 0 {
		tags = s.allProfileTags()
	}
	defs := make([]profileTag, len(tags))
	for i, tag := range tags {
		t, ok := s.profileTagOf(tag)
		if !ok {
			return nil, imerr.ProfileUnknownTag.New("unknown profile tag %q", tag)
		}
		defs[i] = t
	}
	res := &ProfileGetResponse{UserProfileItem: []UserProfileItem{}, Fail_Account: []string{}}
	for _, to := range q.To_Account {
		if ids.CheckUserID(to) != nil {
			res.UserProfileItem = append(res.UserProfileItem, UserProfileItem{To_Account: to, ProfileItem: []TagValue{},
				ResultCode: imerr.ProfileBadParams.Code, ResultInfo: "invalid To_Account"})
			res.Fail_Account = append(res.Fail_Account, to)
			continue
		}
		prof, err := s.loadProfile(to)
		if err != nil {
			return nil, err
		}
		all := to == a.User || a.Admin
		pi := []TagValue{}
		for i, tag := range tags {
			if defs[i].private && !all {
				continue
			}
			v, ok := prof[tag]
			if !ok {
				v = defs[i].def()
			}
			pi = append(pi, TagValue{tag, v})
		}
		res.UserProfileItem = append(res.UserProfileItem, UserProfileItem{To_Account: to, ProfileItem: pi})
	}
	return res, nil
}
