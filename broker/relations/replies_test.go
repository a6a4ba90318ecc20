package relations

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/imbroker/imbroker/broker/ops"
)

// fakePresence has alice online on two devices.
type fakePresence struct{}

func (fakePresence) OnlineDevices(user string) []string {
	if user == "alice" {
		return []string{"alice", "alice:pad"}
	}
	return nil
}

var unixTime = regexp.MustCompile(`\b1\d{9}\b`)

// TestReplies: the typed replies are the JSON the map-built ones were:
// the same fields, lists never null, optional fields only when asked for.
func TestReplies(t *testing.T) {
	s, _, _ := newTestService(t)
	s.presence = fakePresence{}
	reg, err := ops.NewRegistry(s.Ops())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	importFriends(t, s, "zoe", "ann")
	for _, tc := range []struct {
		op, user, body, want string
	}{
		{"friend.group_add", "zoe", `{"GroupName":["work"],"To_Account":["ann","bob"]}`,
			`{"ResultItem":[{"To_Account":"ann","ResultCode":0,"ResultInfo":""},{"To_Account":"bob","ResultCode":30001,"ResultInfo":"bob is not your friend"}],"Fail_Account":["bob"]}`},
		{"friend.group_get", "zoe", `{}`, `{"ResultItem":[{"GroupName":"work","FriendNumber":1}]}`},
		{"friend.group_get", "zoe", `{"NeedFriend":"Need_Friend_Type_Yes"}`, `{"ResultItem":[{"GroupName":"work","FriendNumber":1,"To_Account":["ann"]}]}`},
		{"friend.group_delete", "zoe", `{"GroupName":["work"]}`, `{}`},
		{"friend.get", "zoe", `{}`, `{"UserDataItem":[{"To_Account":"ann","ValueItem":[{"Tag":"Tag_SNS_IM_Group","Value":[]},` +
			`{"Tag":"Tag_SNS_IM_Remark","Value":""},{"Tag":"Tag_SNS_IM_AddSource","Value":""},{"Tag":"Tag_SNS_IM_AddWording","Value":""},` +
			`{"Tag":"Tag_SNS_IM_AddTime","Value":T}]}],"FriendNum":1,"CompleteFlag":1,"NextStartIndex":1,"StandardSequence":0,"CustomSequence":0}`},
		{"friend.check", "zoe", `{"To_Account":["ann","a/b"]}`, `{"InfoItem":[{"To_Account":"ann","Relation":"CheckResult_Type_AWithB","ResultCode":0,"ResultInfo":""},` +
			`{"To_Account":"a/b","Relation":"","ResultCode":30001,"ResultInfo":"invalid To_Account"}],"Fail_Account":["a/b"]}`},
		{"friend.add", "zoe", `{"AddFriendItem":[{"To_Account":"kim","Remark":"k"}]}`,
			`{"ResultItem":[{"To_Account":"kim","ResultCode":30539,"ResultInfo":"waiting for kim to accept"}],"Fail_Account":[]}`},
		{"friend.pending", "kim", `{}`, `{"PendencyItem":[{"To_Account":"zoe","AddTime":T,"AddType":"Add_Type_Both","AddSource":"","AddWording":""}],"TotalCount":1}`},
		{"friend.pending", "zoe", `{"PendencyType":"Pendency_Type_SendOut"}`,
			`{"PendencyItem":[{"To_Account":"kim","AddTime":T,"AddType":"Add_Type_Both","AddSource":"","AddWording":"","Remark":"k","GroupName":[]}],"TotalCount":1}`},
		{"black.get", "zoe", `{}`, `{"BlackListItem":[],"StartIndex":0,"TotalCount":0}`},
		{"black.check", "zoe", `{"To_Account":["ann"]}`, `{"BlackListCheckItem":[{"To_Account":"ann","Relation":"BlackCheckResult_Type_NO","ResultCode":0,"ResultInfo":""}],"Fail_Account":[]}`},
		{"status.query", "zoe", `{"To_Account":["alice","ann","a/b"]}`,
			`{"QueryResult":[{"To_Account":"alice","State":"Online"},{"To_Account":"ann","State":"Offline"}],"ErrorList":[{"To_Account":"a/b","ErrorCode":70107}]}`},
		{"status.query", "zoe", `{"To_Account":["alice","ann"],"IsNeedDetail":1}`,
			`{"QueryResult":[{"To_Account":"alice","State":"Online","Detail":[{"Platform":"Unknown","Status":"Online"},{"Platform":"pad","Status":"Online"}]},` +
				`{"To_Account":"ann","State":"Offline","Detail":[]}],"ErrorList":[]}`},
		{"profile.set", "zoe", `{"ProfileItem":[{"Tag":"Tag_Profile_IM_Nick","Value":"Zoe"}]}`, `{}`},
		{"profile.get", "ann", `{"To_Account":["zoe"],"TagList":["Tag_Profile_IM_Nick","Tag_Profile_IM_Level"]}`,
			`{"UserProfileItem":[{"To_Account":"zoe","ProfileItem":[{"Tag":"Tag_Profile_IM_Nick","Value":"Zoe"},{"Tag":"Tag_Profile_IM_Level","Value":0}],"ResultCode":0,"ResultInfo":""}],"Fail_Account":[]}`},
	} {
		op, ok := reg.Lookup(tc.op)
		if !ok {
			t.Fatalf("%s is not registered", tc.op)
		}
		res, err := op.Run(ctx, ops.Actor{User: tc.user}, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.op, tc.body, err)
		}
		raw, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if got := unixTime.ReplaceAllString(string(raw), "T"); got != tc.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.op, tc.body, got, tc.want)
		}
	}
}
