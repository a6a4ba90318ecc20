package rest

// profileEndpoints are the profile service: a user's profile fields.
func profileEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "profile/portrait_set", Summary: "set profile fields", Request: []string{"From_Account", "ProfileItem"}, handle: passOp("profile.set")},
		{Path: "profile/portrait_get", Summary: "read profile fields of up to 100 users", Request: []string{"To_Account", "TagList"}, handle: passOp("profile.get")},
	}
}
