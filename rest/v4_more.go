package rest

// moreEndpoints are the profile, relations, conversation and group APIs.
func moreEndpoints() []*endpoint {
	return []*endpoint{
		{Path: "profile/portrait_set", Summary: "set profile fields", Request: []string{"From_Account", "ProfileItem"}, handle: passOp("profile.set")},
		{Path: "profile/portrait_get", Summary: "read profile fields of up to 100 users", Request: []string{"To_Account", "TagList"}, handle: passOp("profile.get")},
	}
}
