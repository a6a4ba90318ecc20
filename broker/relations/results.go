package relations

import (
	"encoding/json"

	"github.com/imbroker/imbroker/internal/imerr"
)

// ResultItem is one account's result in a batch change.
type ResultItem struct {
	To_Account string
	ResultCode int
	ResultInfo string
}

// Results answers a batch change (friend.add, black.add, ...): an item per
// account, and the accounts whose item failed. A pending friend request
// (30539) is an item result but not a failure.
type Results struct {
	ResultItem   []ResultItem
	Fail_Account []string
}

// add records to's result: an *imerr.Error is the item's result; any other
// error aborts the request (it is returned).
func (rs *Results) add(to string, err error) error {
	it := ResultItem{To_Account: to}
	if err != nil {
		e := imerr.As(err)
		if e.Code == imerr.Internal.Code {
			return err
		}
		it.ResultCode, it.ResultInfo = e.Code, e.Info
		if e.Code != imerr.SnsPending.Code {
			rs.Fail_Account = append(rs.Fail_Account, to)
		}
	}
	rs.ResultItem = append(rs.ResultItem, it)
	return nil
}

// done is rs with empty lists as [] (never null).
func (rs *Results) done() *Results {
	if rs.ResultItem == nil {
		rs.ResultItem = []ResultItem{}
	}
	if rs.Fail_Account == nil {
		rs.Fail_Account = []string{}
	}
	return rs
}

// TagValue is one {Tag, Value} item of a profile or a friend record.
type TagValue struct {
	Tag   string
	Value json.RawMessage
}

// Empty is the reply of an operation that answers nothing but success.
type Empty struct{}

// orErr returns err if set, else e.
func orErr(err error, e *imerr.Error) error {
	if err != nil {
		return err
	}
	return e
}
