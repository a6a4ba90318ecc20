package relations

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// Global mute (Tencent openconfigsvr/setnospeaking): an account may be
// stopped from sending one-to-one and/or group messages for a number of
// seconds. The app admin is never muted. [IM-NOSPEAKING]

// NoSpeakingForever is the Tencent value for "muted until unmuted".
const NoSpeakingForever = 4294967295

// noSpeaking is the stored record: Unix seconds until which the account
// is muted; 0 none, -1 forever.
type noSpeaking struct {
	C2C   int64 `json:"c2c,omitempty"`
	Group int64 `json:"group,omitempty"`
}

// untilOf turns a Tencent duration (seconds) into a stored deadline.
func untilOf(secs uint32, now time.Time) int64 {
	switch secs {
	case 0:
		return 0
	case NoSpeakingForever:
		return -1
	}
	return now.Unix() + int64(secs)
}

// remaining is the Tencent duration left of a stored deadline.
func remaining(until int64, now time.Time) uint32 {
	switch {
	case until == -1:
		return NoSpeakingForever
	case until <= now.Unix():
		return 0
	}
	return uint32(until - now.Unix())
}

// SetNoSpeaking sets uid's global mute; a nil duration leaves that kind
// unchanged, 0 unmutes, NoSpeakingForever mutes until unmuted.
func (s *Service) SetNoSpeaking(ctx context.Context, uid string, c2c, group *uint32) error {
	if err := ids.CheckUserID(uid); err != nil {
		return imerr.BadAccount.New("invalid Set_Account: %v", err)
	}
	now := time.Now()
	_, err := s.store.Commit(ctx, storage.Batch{Updates: []storage.Update{{Name: noSpeakingKey(uid),
		Fn: func(old []byte, found bool, _ []storage.Pos) ([]byte, error) {
			var ns noSpeaking
			if found {
				_ = json.Unmarshal(old, &ns)
			}
			if c2c != nil {
				ns.C2C = untilOf(*c2c, now)
			}
			if group != nil {
				ns.Group = untilOf(*group, now)
			}
			if ns.C2C == 0 && ns.Group == 0 {
				return nil, nil
			}
			return mustJSON(ns), nil
		}}}})
	if err != nil {
		return fmt.Errorf("set nospeaking of %s: %w", uid, err)
	}
	return nil
}

// GetNoSpeaking is the seconds left of uid's one-to-one and group mutes
// (0 unmuted, NoSpeakingForever until unmuted).
func (s *Service) GetNoSpeaking(uid string) (c2c, group uint32, err error) {
	if err := ids.CheckUserID(uid); err != nil {
		return 0, 0, imerr.BadAccount.New("invalid Get_Account: %v", err)
	}
	var ns noSpeaking
	if _, err := s.getJSON(noSpeakingKey(uid), &ns); err != nil {
		return 0, 0, err
	}
	now := time.Now()
	return remaining(ns.C2C, now), remaining(ns.Group, now), nil
}

// CheckNoSpeaking refuses a send by a globally muted account: 20012 for
// one-to-one, 10017 for group messages. The C2C and group send paths call
// it.
func (s *Service) CheckNoSpeaking(uid string, group bool) error {
	if uid == s.admin || ids.CheckUserID(uid) != nil { // an invalid sender is refused elsewhere
		return nil
	}
	c2c, grp, err := s.GetNoSpeaking(uid)
	if err != nil {
		return err
	}
	if group && grp > 0 {
		return imerr.GroupMuted.New("%s is muted for group messages", uid)
	}
	if !group && c2c > 0 {
		return imerr.C2CMuted.New("%s is muted", uid)
	}
	return nil
}
