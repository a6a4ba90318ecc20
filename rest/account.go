package rest

import (
	"context"

	"github.com/imbroker/imbroker/internal/imerr"
)

// maxAccountBatch is how many accounts one call names (Tencent).
const maxAccountBatch = 100

// Accounts is the account registry (broker/relations).
type Accounts interface {
	ImportAccount(ctx context.Context, uid, nick, faceURL string) error
	AccountImported(uid string) (bool, error)
	DeleteAccount(ctx context.Context, uid string) error
	InvalidateLogins(ctx context.Context, uid string) (int, error)
}

// accountEndpoints are the im_open_login_svc service: accounts and kicking
// users off.
func accountEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "im_open_login_svc/account_import", Summary: "import one account", Request: []string{"UserID", "Nick", "FaceUrl"}, typed: typed(accountImport)},
		{Path: "im_open_login_svc/multiaccount_import", Summary: "import up to 100 accounts", Request: []string{"Accounts"}, typed: typed(multiAccountImport)},
		{Path: "im_open_login_svc/account_delete", Summary: "delete up to 100 accounts", Request: []string{"DeleteItem"}, typed: typed(accountDelete)},
		{Path: "im_open_login_svc/account_check", Summary: "check up to 100 accounts are imported", Request: []string{"CheckItem"}, typed: typed(accountCheck)},
		{Path: "im_open_login_svc/kick", Summary: "invalidate a user's login: older UserSigs no longer log in; connections are closed", Request: []string{"UserID"}, typed: typed(kick)},
	}
}

// noFields is the reply of a call that answers only the envelope.
type noFields struct{}

func accountImport(c *call) (*noFields, error) {
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
	return &noFields{}, c.rel.ImportAccount(c.ctx, q.UserID, q.Nick, q.FaceUrl)
}

type multiImportReply struct {
	FailAccounts []string
}

func multiAccountImport(c *call) (*multiImportReply, error) {
	var q struct{ Accounts []string }
	if err := c.decode(&q, imerr.AccountBadParams); err != nil {
		return nil, err
	}
	if len(q.Accounts) == 0 || len(q.Accounts) > maxAccountBatch {
		return nil, fail(imerr.AccountBadParams, "Accounts must hold 1 to 100 UserIDs")
	}
	failed := []string{}
	for _, uid := range q.Accounts {
		if err := c.rel.ImportAccount(c.ctx, uid, "", ""); err != nil {
			if code(err) == imerr.Internal.Code {
				return nil, err
			}
			failed = append(failed, uid)
		}
	}
	return &multiImportReply{FailAccounts: failed}, nil
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

// accountResult is one account's item of account_delete and account_check.
type accountResult struct {
	UserID        string
	ResultCode    int
	ResultInfo    string
	AccountStatus string `json:",omitempty"` // account_check: Imported or NotImported
}

type accountResults struct {
	ResultItem []accountResult
}

func accountDelete(c *call) (*accountResults, error) {
	items, err := userItems(c, "DeleteItem")
	if err != nil {
		return nil, err
	}
	res := &accountResults{ResultItem: []accountResult{}}
	for _, it := range items {
		r := accountResult{UserID: it.UserID}
		if err := c.rel.DeleteAccount(c.ctx, it.UserID); err != nil {
			if code(err) == imerr.Internal.Code {
				return nil, err
			}
			r.ResultCode, r.ResultInfo = errInfo(err)
		}
		res.ResultItem = append(res.ResultItem, r)
	}
	return res, nil
}

func accountCheck(c *call) (*accountResults, error) {
	items, err := userItems(c, "CheckItem")
	if err != nil {
		return nil, err
	}
	res := &accountResults{ResultItem: []accountResult{}}
	for _, it := range items {
		ok, err := c.rel.AccountImported(it.UserID)
		if err != nil {
			return nil, err
		}
		r := accountResult{UserID: it.UserID, AccountStatus: "NotImported"}
		if ok {
			r.AccountStatus = "Imported"
		}
		res.ResultItem = append(res.ResultItem, r)
	}
	return res, nil
}

func kick(c *call) (*noFields, error) {
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
	if _, err := c.rel.InvalidateLogins(c.ctx, q.UserID); err != nil {
		return nil, err
	}
	return &noFields{}, nil
}
