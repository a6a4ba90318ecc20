package rest

import (
	"context"

	"github.com/imbroker/imbroker/broker/push"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Push is all-member push (broker/push.Service).
type Push interface {
	Push(ctx context.Context, q *push.Request) (string, error)
	SetAttrNames(ctx context.Context, names map[string]string) error
	AttrNames() (map[string]string, error)
	SetAttrs(ctx context.Context, items []push.UserAttrs) error
	Attrs(uids []string) ([]push.UserAttrs, error)
	RemoveAttrs(ctx context.Context, items []push.UserAttrNames) error
	AddTags(ctx context.Context, items []push.UserTags) error
	Tags(uids []string) ([]push.UserTags, error)
	RemoveTags(ctx context.Context, items []push.UserTags) error
	RemoveAllTags(ctx context.Context, uids []string) error
}

// allMemberPushEndpoints are the all_member_push service: push to all users
// or by tags or attributes, and the attributes and tags themselves. Field
// errors are 90001, Tencent's code for these APIs.
func allMemberPushEndpoints() []*endpoint {
	const p = "all_member_push/"
	return []*endpoint{
		{Path: p + "im_push", Summary: "push a message to all users, or to users selected by tags or attributes; answers TaskId",
			Request: []string{"From_Account", "MsgRandom", "MsgBody", "MsgLifeTime", "Condition", "OfflinePushInfo"}, typed: typed(imPush)},
		{Path: p + "im_set_attr_name", Summary: "name the app's user attributes (indices 0-9)", Request: []string{"AttrNames"}, typed: typed(imSetAttrName)},
		{Path: p + "im_get_attr_name", Summary: "the app's user attribute names", typed: typed(imGetAttrName)},
		{Path: p + "im_set_attr", Summary: "set users' attributes", Request: []string{"UserAttrs"}, typed: typed(imSetAttr)},
		{Path: p + "im_get_attr", Summary: "users' attributes", Request: []string{"To_Account"}, typed: typed(imGetAttr)},
		{Path: p + "im_remove_attr", Summary: "remove users' attributes", Request: []string{"UserAttrs"}, typed: typed(imRemoveAttr)},
		{Path: p + "im_add_tag", Summary: "add tags to users", Request: []string{"UserTags"}, typed: typed(imAddTag)},
		{Path: p + "im_get_tag", Summary: "users' tags", Request: []string{"To_Account"}, typed: typed(imGetTag)},
		{Path: p + "im_remove_tag", Summary: "remove tags from users", Request: []string{"UserTags"}, typed: typed(imRemoveTag)},
		{Path: p + "im_remove_all_tags", Summary: "remove every tag of users", Request: []string{"To_Account"}, typed: typed(imRemoveAllTags)},
	}
}

type taskReply struct{ TaskId string }

func imPush(c *call) (*taskReply, error) {
	q := new(push.Request)
	if err := c.decode(q, imerr.BadJSON); err != nil {
		return nil, err
	}
	id, err := c.push.Push(c.ctx, q)
	if err != nil {
		return nil, err
	}
	return &taskReply{TaskId: id}, nil
}

func imSetAttrName(c *call) (*noFields, error) {
	var q struct{ AttrNames map[string]string }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	return &noFields{}, c.push.SetAttrNames(c.ctx, q.AttrNames)
}

type attrNamesReply struct{ AttrNames map[string]string }

func imGetAttrName(c *call) (*attrNamesReply, error) {
	names, err := c.push.AttrNames()
	if err != nil {
		return nil, err
	}
	return &attrNamesReply{AttrNames: names}, nil
}

func imSetAttr(c *call) (*noFields, error) {
	var q struct{ UserAttrs []push.UserAttrs }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	return &noFields{}, c.push.SetAttrs(c.ctx, q.UserAttrs)
}

type userAttrsReply struct{ UserAttrs []push.UserAttrs }

func imGetAttr(c *call) (*userAttrsReply, error) {
	var q struct{ To_Account []string }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	items, err := c.push.Attrs(q.To_Account)
	if err != nil {
		return nil, err
	}
	return &userAttrsReply{UserAttrs: items}, nil
}

func imRemoveAttr(c *call) (*noFields, error) {
	var q struct{ UserAttrs []push.UserAttrNames }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	return &noFields{}, c.push.RemoveAttrs(c.ctx, q.UserAttrs)
}

func imAddTag(c *call) (*noFields, error) {
	var q struct{ UserTags []push.UserTags }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	return &noFields{}, c.push.AddTags(c.ctx, q.UserTags)
}

type userTagsReply struct{ UserTags []push.UserTags }

func imGetTag(c *call) (*userTagsReply, error) {
	var q struct{ To_Account []string }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	items, err := c.push.Tags(q.To_Account)
	if err != nil {
		return nil, err
	}
	return &userTagsReply{UserTags: items}, nil
}

func imRemoveTag(c *call) (*noFields, error) {
	var q struct{ UserTags []push.UserTags }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	return &noFields{}, c.push.RemoveTags(c.ctx, q.UserTags)
}

func imRemoveAllTags(c *call) (*noFields, error) {
	var q struct{ To_Account []string }
	if err := c.decode(&q, imerr.BadJSON); err != nil {
		return nil, err
	}
	return &noFields{}, c.push.RemoveAllTags(c.ctx, q.To_Account)
}
