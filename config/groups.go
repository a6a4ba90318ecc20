package config

import "fmt"

// Built-in group types (Tencent's REST Type strings: Work = Private, Meeting = ChatRoom).
var BuiltinGroupTypes = []string{"Private", "Public", "ChatRoom", "AVChatRoom", "BChatRoom"}

// Groups configures group chat.
type Groups struct {
	// Types holds one entry per group type: the five built-in ones (to
	// override their limits) and custom ones, which name a built-in Base
	// and inherit everything they do not set.
	Types              map[string]GroupType `yaml:"types"`
	RateLimit          int                  `yaml:"rate_limit"`           // client messages per second per group; excess is dropped (Tencent: 40); default 40
	ReadDiffusionAbove int                  `yaml:"read_diffusion_above"` // Private/Public groups with more members use read diffusion (im/g/{gid}); default 2000
	MaxJoinedPerUser   int                  `yaml:"max_joined_per_user"`  // groups one user may be in (10037 beyond); default 500
	MaxInitialMembers  int                  `yaml:"max_initial_members"`  // MemberList size on create and per invite (Tencent: 100); default 100
	MaxPageSize        int                  `yaml:"max_page_size"`        // largest member-list / joined-list page; default 500
	// MemberTipsPerSecond bounds the MemberJoin / MemberQuit tips a live
	// room (AVChatRoom, BChatRoom and types based on them) publishes on
	// im/g/{gid}: at most this many per second per room. Changes that come
	// faster are merged into the next tip (docs/protocol.md, "Member tips in
	// live rooms"). 0 turns these room tips off. Default 2.
	MemberTipsPerSecond int `yaml:"member_tips_per_second"`
	// MemberTipsMaxList caps a merged tip's MemberList; MemberCount gives
	// the full number. Default 100.
	MemberTipsMaxList int `yaml:"member_tips_max_list"`
}

// GroupType sets or overrides a group type's limits and policies. Unset
// fields inherit from the base type.
type GroupType struct {
	Base              string `yaml:"base"`                // custom types only: Private, Public, ChatRoom, AVChatRoom or BChatRoom
	MaxMembers        int    `yaml:"max_members"`         // member limit (10014 beyond); 0 = inherit
	HistoryBeforeJoin *bool  `yaml:"history_before_join"` // may a new member read messages from before joining
	Guests            *bool  `yaml:"guests"`              // may guests (guests.enabled) receive; AVChatRoom/BChatRoom bases only
}

// Guests configures anonymous, receive-only clients for live rooms.
type Guests struct {
	Enabled bool `yaml:"enabled"` // allow CONNECT with empty user name and password and ClientID guest/{id}; default false
}

func defaultGroups() Groups {
	f := false
	t := true
	return Groups{
		Types: map[string]GroupType{
			"Private":    {MaxMembers: 200, HistoryBeforeJoin: &f},
			"Public":     {MaxMembers: 2000, HistoryBeforeJoin: &f},
			"ChatRoom":   {MaxMembers: 2000, HistoryBeforeJoin: &f},
			"AVChatRoom": {MaxMembers: 1000000, Guests: &t},
			"BChatRoom":  {MaxMembers: 1000000, Guests: &t},
		},
		RateLimit: 40, ReadDiffusionAbove: 2000, MaxJoinedPerUser: 500, MaxInitialMembers: 100, MaxPageSize: 500,
		MemberTipsPerSecond: 2, MemberTipsMaxList: 100,
	}
}

func isBuiltin(name string) bool {
	for _, b := range BuiltinGroupTypes {
		if b == name {
			return true
		}
	}
	return false
}

func (v *validator) groups(g Groups) {
	v.check(g.RateLimit >= 1, "groups.rate_limit", "must be at least 1")
	v.check(g.ReadDiffusionAbove >= 1, "groups.read_diffusion_above", "must be at least 1")
	v.check(g.MaxJoinedPerUser >= 1, "groups.max_joined_per_user", "must be at least 1")
	v.check(g.MaxInitialMembers >= 1, "groups.max_initial_members", "must be at least 1")
	v.check(g.MaxPageSize >= 1, "groups.max_page_size", "must be at least 1")
	v.check(g.MemberTipsPerSecond >= 0 && g.MemberTipsPerSecond <= 1000, "groups.member_tips_per_second", "must be 0 (off) to 1000")
	v.check(g.MemberTipsMaxList >= 1 && g.MemberTipsMaxList <= 1000, "groups.member_tips_max_list", "must be 1 to 1000")
	for _, b := range BuiltinGroupTypes {
		if _, ok := g.Types[b]; !ok {
			v.add("groups.types."+b, "built-in type missing")
		}
	}
	for name, t := range g.Types {
		path := "groups.types." + name
		if len(name) == 0 || len(name) > 32 {
			v.add(path, "type names are 1 to 32 bytes")
		}
		if isBuiltin(name) {
			v.check(t.Base == "" || t.Base == name, path+".base", "a built-in type has no base")
		} else {
			v.check(isBuiltin(t.Base), path+".base", fmt.Sprintf("must be one of %v", BuiltinGroupTypes))
		}
		v.check(t.MaxMembers >= 0, path+".max_members", "must not be negative")
		if isBuiltin(name) {
			v.check(t.MaxMembers >= 1, path+".max_members", "must be at least 1")
		}
		base := t.Base
		if base == "" {
			base = name
		}
		if t.Guests != nil && *t.Guests {
			v.check(base == "AVChatRoom" || base == "BChatRoom", path+".guests", "only AVChatRoom and BChatRoom types take guests")
		}
	}
}
