package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"

	"github.com/imbroker/imbroker/broker/groups"
	"github.com/imbroker/imbroker/broker/ops"
	"github.com/imbroker/imbroker/internal/imerr"
)

// Groups is what the console runs of the group service directly: the
// operations the v4 REST API has no call for (Tencent answers join
// applications only in the app), the MQTT ops group.applications and
// group.handle_application.
type Groups interface {
	Applications(ctx context.Context, a ops.Actor, q *groups.GroupRequest) (*groups.ApplicationsResponse, error)
	HandleApplication(ctx context.Context, a ops.Actor, q *groups.HandleApplicationRequest) (*groups.Empty, error)
}

// adminActor is the app admin as an MQTT client of its own would be: the
// core's owner-or-admin checks let it see and answer any group's
// applications.
func (c *server) adminActor() ops.Actor {
	return ops.Actor{User: c.d.Config.App.Admin, Admin: true}
}

// applications lists a group's pending join applications, oldest first
// (the core keeps them in no particular order).
func (c *server) applications(w http.ResponseWriter, r *http.Request, _ string) {
	gid := r.URL.Query().Get("GroupId")
	if gid == "" {
		writeError(w, http.StatusBadRequest, "GroupId is required: /console/api/groups/applications?GroupId=...")
		return
	}
	ctx, cancel := contextWithTimeout(r, proxyTimeout)
	defer cancel()
	res, err := c.d.Groups.Applications(ctx, c.adminActor(), &groups.GroupRequest{GroupId: gid})
	if err != nil {
		c.refused(w, "group.applications", err)
		return
	}
	sort.Slice(res.ApplicationList, func(i, j int) bool {
		a, b := res.ApplicationList[i], res.ApplicationList[j]
		if a.ApplyTime != b.ApplyTime {
			return a.ApplyTime < b.ApplyTime
		}
		return a.Applicant_Account < b.Applicant_Account
	})
	writeJSON(w, http.StatusOK, res)
}

// handleApplication accepts (Agree) or refuses (Reject) one application.
func (c *server) handleApplication(w http.ResponseWriter, r *http.Request, _ string) {
	var q groups.HandleApplicationRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&q); err != nil {
		writeError(w, http.StatusBadRequest, `the body must be {"GroupId": "...", "Applicant_Account": "...", "HandleResult": "Agree" or "Reject"}`)
		return
	}
	if q.GroupId == "" || q.Applicant_Account == "" {
		writeError(w, http.StatusBadRequest, "GroupId and Applicant_Account are required")
		return
	}
	ctx, cancel := contextWithTimeout(r, proxyTimeout)
	defer cancel()
	if _, err := c.d.Groups.HandleApplication(ctx, c.adminActor(), &q); err != nil {
		c.refused(w, "group.handle_application", err)
		return
	}
	c.log.Info("console handled a join application", "group", q.GroupId, "applicant", q.Applicant_Account, "result", q.HandleResult)
	writeJSON(w, http.StatusOK, map[string]any{"GroupId": q.GroupId, "Applicant_Account": q.Applicant_Account, "HandleResult": q.HandleResult})
}

// refused answers a core operation's error: a refusal (an imerr code) is a
// 400 with its Tencent code in the text and in ErrorCode, as the v4 calls
// show theirs; anything else is logged and a 500.
func (c *server) refused(w http.ResponseWriter, op string, err error) {
	var e *imerr.Error
	if !errors.As(err, &e) {
		c.internal(w, op, err)
		return
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"Error": op + " failed: " + strconv.Itoa(e.Code) + " " + e.Info, "ErrorCode": e.Code})
}
