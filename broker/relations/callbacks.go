package relations

import (
	"context"
	"encoding/json"

	"github.com/imbroker/imbroker/callbacks"
	"github.com/imbroker/imbroker/internal/imerr"
)

// The relation and profile callbacks (tencent-im.md §5; docs/callbacks.md
// "Event commands").
const (
	cbSnsPrevAdd      = "Sns.CallbackPrevFriendAdd"
	cbSnsPrevResponse = "Sns.CallbackPrevFriendResponse"
	cbSnsFriendAdd    = "Sns.CallbackFriendAdd"
	cbSnsFriendDelete = "Sns.CallbackFriendDelete"
	cbSnsBlackAdd     = "Sns.CallbackBlackListAdd"
	cbSnsBlackDelete  = "Sns.CallbackBlackListDelete"
	cbPortraitSet     = "Profile.CallbackPortraitSet"
)

// snsVerdict runs a Sns before-callback whose reply refuses items
// (ResultItem[{To_Account, ResultCode}], ResultCode in 38000–39000). It
// returns each refused account's item error. A reject of the whole request
// refuses every item: with the app's code when in range, 80003 when the
// callback failed under the refuse policy, else 38000.
func (s *Service) snsVerdict(ctx context.Context, command string, fields map[string]any, accounts []string) map[string]error {
	d := s.cb.Before(ctx, command, fields)
	refused := map[string]error{}
	if d.Action != callbacks.Allow {
		e := callbacks.SnsVerdicts.Refusal(d)
		for _, a := range accounts {
			refused[a] = e
		}
		return refused
	}
	var rep struct {
		ResultItem []struct {
			To_Account string
			ResultCode int
			ResultInfo string
		}
	}
	if d.Reply != nil {
		_ = json.Unmarshal(d.Reply, &rep)
	}
	for _, it := range rep.ResultItem {
		if callbacks.SnsVerdicts.AppCode(it.ResultCode) {
			info := it.ResultInfo
			if info == "" {
				info = "refused by the app's callback"
			}
			refused[it.To_Account] = imerr.Custom(it.ResultCode, info)
		}
	}
	return refused
}

// prevFriendAdd: Sns.CallbackPrevFriendAdd.
func (s *Service) prevFriendAdd(ctx context.Context, requester string, items []FriendAddItem, addType string) map[string]error {
	if !s.cb.Enabled(cbSnsPrevAdd) {
		return nil
	}
	list := make([]map[string]any, 0, len(items))
	accounts := make([]string, 0, len(items))
	for _, it := range items {
		groups, _ := groupNames(it.GroupName)
		list = append(list, map[string]any{"To_Account": it.To_Account, "Remark": it.Remark, "GroupName": nonNilStrs(groups),
			"AddSource": it.AddSource, "AddWording": it.AddWording})
		accounts = append(accounts, it.To_Account)
	}
	return s.snsVerdict(ctx, cbSnsPrevAdd, map[string]any{"Requester_Account": requester, "From_Account": requester,
		"FriendItem": list, "AddType": addType, "ForceAddFlags": 0}, accounts)
}

// prevFriendResponse: Sns.CallbackPrevFriendResponse.
func (s *Service) prevFriendResponse(ctx context.Context, responder string, items []FriendResponseItem) map[string]error {
	if !s.cb.Enabled(cbSnsPrevResponse) {
		return nil
	}
	list := make([]map[string]any, 0, len(items))
	accounts := make([]string, 0, len(items))
	for _, it := range items {
		list = append(list, map[string]any{"To_Account": it.To_Account, "ResponseAction": it.ResponseAction, "Remark": it.Remark})
		accounts = append(accounts, it.To_Account)
	}
	return s.snsVerdict(ctx, cbSnsPrevResponse, map[string]any{"Requester_Account": responder, "From_Account": responder,
		"ResponseFriendItem": list}, accounts)
}

// callback records a pair for an after-callback sent once the relation
// batch commits (Sns.CallbackFriendAdd / FriendDelete / BlackListAdd /
// BlackListDelete): one callback per command and commit, with every pair.
func (rb *relBatch) callback(command string, from, to, initiator string) {
	if rb.after == nil {
		rb.after = map[string][]map[string]any{}
	}
	rb.after[command] = append(rb.after[command], map[string]any{"From_Account": from, "To_Account": to, "Initiator_Account": initiator})
}

// sendAfter queues a committed relation batch's after-callbacks.
func (s *Service) sendAfter(rb *relBatch) {
	for command, pairs := range rb.after {
		fields := map[string]any{"PairList": pairs}
		if command == cbSnsFriendAdd || command == cbSnsFriendDelete {
			fields["ForceFlag"] = 0
		}
		s.cb.After(command, fields)
	}
}

// afterPortraitSet: Profile.CallbackPortraitSet.
func (s *Service) afterPortraitSet(target, operator string, items []TagValue) {
	s.cb.After(cbPortraitSet, map[string]any{"From_Account": target, "Operator_Account": operator, "ProfileItem": items})
}
