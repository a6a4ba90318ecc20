package config

// Push configures all-member push (Tencent all_member_push: im_push and the
// attribute and tag APIs; docs/rest.md). The limits default to Tencent's.
type Push struct {
	BatchUsers       int `yaml:"batch_users"`        // recipients appended per commit while a push fans out; default 500
	MaxAttrNames     int `yaml:"max_attr_names"`     // app attribute names, indices 0..n-1 (Tencent: 10); default 10
	MaxAttrBytes     int `yaml:"max_attr_bytes"`     // bytes of an attribute name or value (Tencent: 50); default 50
	MaxTagsPerUser   int `yaml:"max_tags_per_user"`  // tags one user may hold (Tencent: 100); default 100
	MaxTagsPerCall   int `yaml:"max_tags_per_call"`  // tags added to one user in one im_add_tag item (Tencent: 10); default 10
	MaxTagBytes      int `yaml:"max_tag_bytes"`      // bytes of a tag (Tencent: 50); default 50
	MaxAccounts      int `yaml:"max_accounts"`       // accounts per attribute or tag call (Tencent: 100); default 100
	MaxConditionTags int `yaml:"max_condition_tags"` // tags in TagsOr or TagsAnd (Tencent: 10); default 10
}

func defaultPush() Push {
	return Push{BatchUsers: 500, MaxAttrNames: 10, MaxAttrBytes: 50, MaxTagsPerUser: 100, MaxTagsPerCall: 10,
		MaxTagBytes: 50, MaxAccounts: 100, MaxConditionTags: 10}
}

func (v *validator) push(p Push) {
	for _, f := range []struct {
		name string
		n    int
	}{{"batch_users", p.BatchUsers}, {"max_attr_names", p.MaxAttrNames}, {"max_attr_bytes", p.MaxAttrBytes},
		{"max_tags_per_user", p.MaxTagsPerUser}, {"max_tags_per_call", p.MaxTagsPerCall}, {"max_tag_bytes", p.MaxTagBytes},
		{"max_accounts", p.MaxAccounts}, {"max_condition_tags", p.MaxConditionTags}} {
		v.check(f.n >= 1, "push."+f.name, "must be at least 1")
	}
}
