package rest

import "github.com/imbroker/imbroker/internal/imerr"

// Account codes (tencent-im.md §2).
const (
	maxAccountBatch = 100
)

// accountEndpoints are the im_open_login_svc service: accounts and kicking
// users off.
func accountEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "im_open_login_svc/account_import", Summary: "import one account", Request: []string{"UserID", "Nick", "FaceUrl"}, handle: accountImport},
		{Path: "im_open_login_svc/multiaccount_import", Summary: "import up to 100 accounts", Request: []string{"Accounts"}, handle: multiAccountImport},
		{Path: "im_open_login_svc/account_delete", Summary: "delete up to 100 accounts", Request: []string{"DeleteItem"}, handle: accountDelete},
		{Path: "im_open_login_svc/account_check", Summary: "check up to 100 accounts are imported", Request: []string{"CheckItem"}, handle: accountCheck},
		{Path: "im_open_login_svc/kick", Summary: "disconnect every connection of a user", Request: []string{"UserID"}, handle: kick},
	}
}

func accountImport(c *call) (map[string]any, error) {
	var q struct{ UserID, Identifier, Nick, FaceUrl string }
	if err := c.decode(&q, imerr.AccountBadParams); err != nil {
		return nil, err
	}
	if q.UserID == "" {
		q.UserID = q.Identifier // the API's old field name
	}
	if q.UserID == "" {
		return nil, fail(imerr.AccountBadParams, "UserID is required")
	}
	return nil, c.a.ImportAccount(c.ctx, q.UserID, q.Nick, q.FaceUrl)
}

func multiAccountImport(c *call) (map[string]any, error) {
	var q struct{ Accounts []string }
	if err := c.decode(&q, imerr.AccountBadParams); err != nil {
		return nil, err
	}
	if len(q.Accounts) == 0 || len(q.Accounts) > maxAccountBatch {
		return nil, fail(imerr.AccountBadParams, "Accounts must hold 1 to 100 UserIDs")
	}
	failed := []string{}
	for _, uid := range q.Accounts {
		if err := c.a.ImportAccount(c.ctx, uid, "", ""); err != nil {
			if code(err) == imerr.Internal.Code {
				return nil, err
			}
			failed = append(failed, uid)
		}
	}
	return map[string]any{"FailAccounts": failed}, nil
}

type userItem struct{ UserID string }

func userItems(c *call, field string) ([]userItem, error) {
	var q map[string][]userItem
	if err := c.decode(&q, imerr.AccountBadParams); err != nil {
		return nil, err
	}
	items := q[field]
	if len(items) == 0 || len(items) > maxAccountBatch {
		return nil, fail(imerr.AccountBadParams, field+" must hold 1 to 100 items")
	}
	return items, nil
}

func resultItem(uid string, err error) map[string]any {
	it := map[string]any{"UserID": uid, "ResultCode": 0, "ResultInfo": ""}
	if err != nil {
		it["ResultCode"], it["ResultInfo"] = errInfo(err)
	}
	return it
}

func accountDelete(c *call) (map[string]any, error) {
	items, err := userItems(c, "DeleteItem")
	if err != nil {
		return nil, err
	}
	res := []map[string]any{}
	for _, it := range items {
		err := c.a.DeleteAccount(c.ctx, it.UserID)
		if code(err) == imerr.Internal.Code {
			return nil, err
		}
		res = append(res, resultItem(it.UserID, err))
	}
	return map[string]any{"ResultItem": res}, nil
}

func accountCheck(c *call) (map[string]any, error) {
	items, err := userItems(c, "CheckItem")
	if err != nil {
		return nil, err
	}
	res := []map[string]any{}
	for _, it := range items {
		ok, err := c.a.AccountImported(it.UserID)
		if err != nil {
			return nil, err
		}
		r := resultItem(it.UserID, nil)
		r["AccountStatus"] = "NotImported"
		if ok {
			r["AccountStatus"] = "Imported"
		}
		res = append(res, r)
	}
	return map[string]any{"ResultItem": res}, nil
}

func kick(c *call) (map[string]any, error) {
	var q struct{ UserID, Identifier string }
	if err := c.decode(&q, imerr.AccountBadParams); err != nil {
		return nil, err
	}
	if q.UserID == "" {
		q.UserID = q.Identifier
	}
	if q.UserID == "" {
		return nil, fail(imerr.AccountBadParams, "UserID is required")
	}
	_ = c.a.KickUser(q.UserID)
	return nil, nil
}
