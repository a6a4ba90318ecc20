package relations

import (
	"context"
	"encoding/json"
	"fmt"

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
// (ResultItem[{To_Account, ResultCode}]). It returns each refused account's
// item error. Tencent's reply rules (docs/callbacks.md): the top-level
// ErrorCode says whether the app's backend handled the callback (0) or
// failed (1), so a non-zero ErrorCode is a failed callback and follows
// callbacks.on_failure; only a code in 38000–39000 refuses every item with
// that code. An item's ResultCode 0 allows it; any other refuses it, with
// that code when in 38000–39000, else 38000.
func (s *Service) snsVerdict(ctx context.Context, command string, fields map[string]any, accounts []string) map[string]error {
	d := s.cb.Before(ctx, command, fields)
	if d.Action != callbacks.Allow && !d.Failed && !callbacks.SnsVerdicts.AppCode(d.Code) {
		d = s.cb.Failure(command, fmt.Errorf("the app answered ErrorCode %d (not in 38000-39000)", d.RawCode))
	}
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
		if it.ResultCode == 0 {
			continue
		}
		code, info := it.ResultCode, it.ResultInfo
		if !callbacks.SnsVerdicts.AppCode(code) {
			code = imerr.CallbackRejectSns.Code
		}
		if info == "" {
			info = "refused by the app's callback"
		}
		refused[it.To_Account] = imerr.Custom(code, info)
	}
	return refused
}

// firstGroupName is a friend item's GroupName as Tencent's callbacks send
// it: one string (a friend request names at most one list), "" for none.
func firstGroupName(raw json.RawMessage) string {
	groups, _ := groupNames(raw)
	if len(groups) == 0 {
		return ""
	}
	return groups[0]
}

// prevFriendAdd: Sns.CallbackPrevFriendAdd. Tencent fires it only for a
// client's request: a REST friend_add never triggers it.
func (s *Service) prevFriendAdd(ctx context.Context, requester string, items []FriendAddItem, addType string, force int) map[string]error {
	if !s.cb.Enabled(cbSnsPrevAdd) || callbacks.FromREST(ctx) {
		return nil
	}
	list := make([]map[string]any, 0, len(items))
	accounts := make([]string, 0, len(items))
	for _, it := range items {
		list = append(list, map[string]any{"To_Account": it.To_Account, "Remark": it.Remark, "GroupName": firstGroupName(it.GroupName),
			"AddSource": it.AddSource, "AddWording": it.AddWording})
		accounts = append(accounts, it.To_Account)
	}
	return s.snsVerdict(ctx, cbSnsPrevAdd, map[string]any{"Requester_Account": requester, "From_Account": requester,
		"FriendItem": list, "AddType": addType, "ForceAddFlags": force}, accounts)
}

// prevFriendResponse: Sns.CallbackPrevFriendResponse (like PrevFriendAdd,
// never for a REST call).
func (s *Service) prevFriendResponse(ctx context.Context, responder string, items []FriendResponseItem) map[string]error {
	if !s.cb.Enabled(cbSnsPrevResponse) || callbacks.FromREST(ctx) {
		return nil
	}
	list := make([]map[string]any, 0, len(items))
	accounts := make([]string, 0, len(items))
	for _, it := range items {
		list = append(list, map[string]any{"To_Account": it.To_Account, "ResponseAction": it.ResponseAction, "Remark": it.Remark,
			"TagName": firstGroupName(it.GroupName)})
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
func (s *Service) sendAfter(ctx context.Context, rb *relBatch) {
	for command, pairs := range rb.after {
		fields := map[string]any{"PairList": pairs}
		if command == cbSnsFriendAdd || command == cbSnsFriendDelete {
			fields["ForceFlag"] = 0
			if rb.forced {
				fields["ForceFlag"] = 1
			}
		}
		s.cb.After(ctx, command, fields)
	}
}

// afterPortraitSet: Profile.CallbackPortraitSet.
func (s *Service) afterPortraitSet(ctx context.Context, target, operator string, items []TagValue) {
	s.cb.After(ctx, cbPortraitSet, map[string]any{"From_Account": target, "Operator_Account": operator, "ProfileItem": items})
}
