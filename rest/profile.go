package rest

import (
	"context"

	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/broker/relations"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Profiles is what the profile service calls (broker/relations).
type Profiles interface {
	ProfileSet(ctx context.Context, a ops.Actor, q *relations.ProfileSetRequest) (*relations.Empty, error)
	ProfileGet(ctx context.Context, a ops.Actor, q *relations.ProfileGetRequest) (*relations.ProfileGetResponse, error)
}

// profileEndpoints are the profile service: a user's profile fields, read
// and written as the app admin (portrait_set names the user in
// From_Account).
func profileEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "profile/portrait_set", Summary: "set profile fields", Request: []string{"From_Account", "ProfileItem"},
			typed: typed(asAdmin(imerr.ProfileBadParams, Relations.ProfileSet))},
		{Path: "profile/portrait_get", Summary: "read profile fields of up to 100 users", Request: []string{"To_Account", "TagList"},
			typed: typed(asAdmin(imerr.ProfileBadParams, Relations.ProfileGet))},
	}
}
