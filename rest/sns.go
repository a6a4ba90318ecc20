package rest

import (
	"context"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Sns is what the sns service calls: the relations domain's friend,
// friend list and blacklist operations, run as From_Account.
type Sns interface {
	FriendAdd(ctx context.Context, a ops.Actor, q *relations.FriendAddRequest) (*relations.Results, error)
	FriendUpdate(ctx context.Context, a ops.Actor, q *relations.FriendUpdateRequest) (*relations.Results, error)
	FriendDelete(ctx context.Context, a ops.Actor, q *relations.FriendDeleteRequest) (*relations.Results, error)
	FriendDeleteAll(ctx context.Context, a ops.Actor, q *relations.FriendDeleteAllRequest) (*relations.Empty, error)
	FriendCheck(ctx context.Context, a ops.Actor, q *relations.CheckRequest) (*relations.FriendCheckResponse, error)
	FriendGet(ctx context.Context, a ops.Actor, q *relations.FriendGetRequest) (*relations.FriendGetResponse, error)
	FriendGetList(ctx context.Context, a ops.Actor, q *relations.FriendGetListRequest) (*relations.FriendGetListResponse, error)
	FriendImport(ctx context.Context, a ops.Actor, q *relations.FriendImportRequest) (*relations.Results, error)
	BlackAdd(ctx context.Context, a ops.Actor, q *relations.AccountsRequest) (*relations.Results, error)
	BlackDelete(ctx context.Context, a ops.Actor, q *relations.AccountsRequest) (*relations.Results, error)
	BlackGet(ctx context.Context, a ops.Actor, q *relations.BlackGetRequest) (*relations.BlackGetResponse, error)
	BlackCheck(ctx context.Context, a ops.Actor, q *relations.CheckRequest) (*relations.BlackCheckResponse, error)
	FriendGroupAdd(ctx context.Context, a ops.Actor, q *relations.FriendGroupAddRequest) (*relations.Results, error)
	FriendGroupDelete(ctx context.Context, a ops.Actor, q *relations.FriendGroupDeleteRequest) (*relations.Empty, error)
	FriendGroupGet(ctx context.Context, a ops.Actor, q *relations.FriendGroupGetRequest) (*relations.FriendGroupGetResponse, error)
}

// snsEndpoints are the sns service: friends, friend lists and the
// blacklist. Each is one operation of the relations domain (friend_get_list
// and friend_delete_all included), run as From_Account.
func snsEndpoints() []*endpoint {
	sns := func(cmd, summary string, h func(c *call) (any, error), fields ...string) *endpoint {
		return &endpoint{Path: "sns/" + cmd, Summary: summary, Request: append([]string{"From_Account"}, fields...), typed: h}
	}
	bad := imerr.SnsBadParams
	return []*endpoint{
		sns("friend_add", "add friends (per the peer's AllowType)", typed(asFrom(bad, Relations.FriendAdd)), "AddFriendItem", "AddType"),
		sns("friend_update", "update friend fields", typed(asFrom(bad, Relations.FriendUpdate)), "UpdateItem"),
		sns("friend_delete", "delete friends", typed(asFrom(bad, Relations.FriendDelete)), "To_Account", "DeleteType"),
		sns("friend_check", "check friendships", typed(asFrom(bad, Relations.FriendCheck)), "To_Account", "CheckType"),
		sns("friend_get", "page through the friend list", typed(asFrom(bad, Relations.FriendGet)), "StartIndex", "StandardSequence", "CustomSequence"),
		sns("black_list_add", "blacklist users", typed(asFrom(bad, Relations.BlackAdd)), "To_Account"),
		sns("black_list_delete", "remove users from the blacklist", typed(asFrom(bad, Relations.BlackDelete)), "To_Account"),
		sns("black_list_get", "page through the blacklist", typed(blackListGet), "StartIndex", "MaxLimited", "LastSequence"),
		sns("black_list_check", "check blacklist relations", typed(asFrom(bad, Relations.BlackCheck)), "To_Account", "CheckType"),
		sns("group_add", "add friend lists", typed(groupAdd), "GroupName", "To_Account"),
		sns("group_delete", "delete friend lists", typed(groupDelete), "GroupName"),
		sns("group_get", "read friend lists", typed(groupGet), "NeedFriend", "GroupName"),
		sns("friend_get_list", "SNS and profile tags of chosen friends", typed(asFrom(bad, Relations.FriendGetList)), "To_Account", "TagList"),
		sns("friend_delete_all", "delete every friend of a user", typed(asFrom(bad, Relations.FriendDeleteAll)), "DeleteType"),
		sns("friend_import", "import friends without approval", typed(friendImport), "AddFriendItem"),
	}
}

// Tencent always answers these with a sequence the app may ignore; ours
// is 0.

type blackListGetReply struct {
	*relations.BlackGetResponse
	CurruentSequence int // sic, Tencent's spelling
}

func blackListGet(c *call) (*blackListGetReply, error) {
	r, err := asFrom(imerr.SnsBadParams, Relations.BlackGet)(c)
	if err != nil {
		return nil, err
	}
	return &blackListGetReply{BlackGetResponse: r}, nil
}

type groupAddReply struct {
	*relations.Results
	CurrentSequence int
}

func groupAdd(c *call) (*groupAddReply, error) {
	r, err := asFrom(imerr.SnsBadParams, Relations.FriendGroupAdd)(c)
	if err != nil {
		return nil, err
	}
	return &groupAddReply{Results: r}, nil
}

type groupDeleteReply struct {
	CurrentSequence int
}

func groupDelete(c *call) (*groupDeleteReply, error) {
	if _, err := asFrom(imerr.SnsBadParams, Relations.FriendGroupDelete)(c); err != nil {
		return nil, err
	}
	return &groupDeleteReply{}, nil
}

type groupGetReply struct {
	*relations.FriendGroupGetResponse
	CurrentSequence int
}

func groupGet(c *call) (*groupGetReply, error) {
	r, err := asFrom(imerr.SnsBadParams, Relations.FriendGroupGet)(c)
	if err != nil {
		return nil, err
	}
	return &groupGetReply{FriendGroupGetResponse: r}, nil
}

// friendImport runs friend import as From_Account, which it requires
// without checking it (the operation does).
func friendImport(c *call) (*relations.Results, error) {
	var q struct {
		From_Account string
		relations.FriendImportRequest
	}
	if err := c.decode(&q, imerr.SnsBadParams); err != nil {
		return nil, err
	}
	if q.From_Account == "" {
		return nil, fail(imerr.SnsBadParams, "From_Account is required")
	}
	return c.rel.FriendImport(c.ctx, c.actor(q.From_Account), &q.FriendImportRequest)
}
