package config

import "fmt"

// Relations configures profiles, friends, friend lists, the blacklist and
// online status (docs/relations.md). The limits default to Tencent's.
type Relations struct {
	MaxFriends         int `yaml:"max_friends"`           // friends per user (Tencent: 3000); 30010 / 30014 beyond
	MaxPending         int `yaml:"max_pending"`           // friend requests waiting for one user's answer (Tencent: 100); 30012 beyond
	MaxFriendGroups    int `yaml:"max_friend_groups"`     // friend lists per user (Tencent: 32); 30011 beyond
	MaxBlacklist       int `yaml:"max_blacklist"`         // blacklist entries per user (Tencent: 1000); 30013 beyond
	MaxRemarkBytes     int `yaml:"max_remark_bytes"`      // friend remark (Tencent: 96)
	MaxAddWordingBytes int `yaml:"max_add_wording_bytes"` // friend request wording (Tencent: 256)
	// BlacklistedSend is what a sender sees when the recipient has
	// blacklisted them: success (Tencent's default: the publish is
	// acknowledged as sent, nothing is stored or delivered) or error (20007).
	BlacklistedSend         string `yaml:"blacklisted_send"`
	RequireFriendshipForC2C bool   `yaml:"require_friendship_for_c2c"` // non-friends get 20009 (one-way: 20010 / 20011); default false
	StatusEvents            bool   `yaml:"status_events"`              // StatusChanged to friends when a user's first device connects / last disconnects; default false
	// RequireAccounts refuses a C2C send to a UserID that is no account
	// (90012), as Tencent does: an account exists once imported
	// (account_import) or once it logged in with a valid UserSig. false:
	// every valid UserID can receive. Default true.
	RequireAccounts bool `yaml:"require_accounts"`
	// CustomProfile declares the custom profile fields
	// Tag_Profile_Custom_{name}: name is 1 to 8 ASCII letters.
	CustomProfile map[string]ProfileField `yaml:"custom_profile"`
}

// ProfileField is one custom profile field.
type ProfileField struct {
	Type   string `yaml:"type"`   // string (≤ 500 bytes) or uint (0 to 4294967295)
	Public bool   `yaml:"public"` // readable by other users; default false (only the user and the app admin)
}

// Relations.BlacklistedSend values.
const (
	BlacklistedSendSuccess = "success"
	BlacklistedSendError   = "error"
)

// ProfileField.Type values.
const (
	ProfileTypeString = "string"
	ProfileTypeUint   = "uint"
)

func defaultRelations() Relations {
	return Relations{
		MaxFriends: 3000, MaxPending: 100, MaxFriendGroups: 32, MaxBlacklist: 1000,
		MaxRemarkBytes: 96, MaxAddWordingBytes: 256, BlacklistedSend: BlacklistedSendSuccess, RequireAccounts: true,
		CustomProfile: map[string]ProfileField{},
	}
}

func (v *validator) relations(r Relations) {
	v.check(r.MaxFriends >= 1, "relations.max_friends", "must be at least 1")
	v.check(r.MaxPending >= 1, "relations.max_pending", "must be at least 1")
	v.check(r.MaxFriendGroups >= 1, "relations.max_friend_groups", "must be at least 1")
	v.check(r.MaxBlacklist >= 1, "relations.max_blacklist", "must be at least 1")
	v.check(r.MaxRemarkBytes >= 1, "relations.max_remark_bytes", "must be at least 1")
	v.check(r.MaxAddWordingBytes >= 1, "relations.max_add_wording_bytes", "must be at least 1")
	v.oneOf("relations.blacklisted_send", r.BlacklistedSend, BlacklistedSendSuccess, BlacklistedSendError)
	for name, f := range r.CustomProfile {
		path := "relations.custom_profile." + name
		ok := len(name) >= 1 && len(name) <= 8
		for _, c := range name {
			ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
		}
		v.check(ok, path, fmt.Sprintf("custom profile names are 1 to 8 ASCII letters (Tag_Profile_Custom_%s)", name))
		v.oneOf(path+".type", f.Type, ProfileTypeString, ProfileTypeUint)
	}
}
