package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/imbroker/imbroker/internal/imerr"
)

// Cluster seam (docs/architecture.md, "Cluster seams"): in cluster mode a
// call that writes, made on a node that does not write, runs on the owner.
// The call is forwarded after this node authenticated it and charged its
// rate limit: the owner runs the endpoint on the same body with the same
// admin identity and OptPlatform RESTAPI (V4.run), and its response body
// is written here byte for byte, so codes and replies are the owner's.

// Forwarder hands a call to the owner (cluster.Node; the same contract as
// mqttd.Forwarder: Forward returns once this node applied the owner's
// writes, and its error is a transport failure).
type Forwarder interface {
	IsOwner() bool
	Forward(ctx context.Context, kind string, req []byte) ([]byte, error)
}

// Barrier is what a Forwarder may also do (cluster.Node does): wait until
// this node applied everything the log held when it was called, so a read
// on this node sees every write acknowledged before the call began.
type Barrier interface {
	Barrier(ctx context.Context) error
}

// barrier runs the Forwarder's Barrier before a read on a node that does
// not write, when it has one. It waits no longer than a call's writes
// (storage.commit_timeout): while the log fails over (a killed node's
// consumer or JetStream meta leader) this node may apply nothing for
// seconds, and the read is then refused rather than left hanging.
func (v V4) barrier(ctx context.Context) error {
	b, ok := v.Forwarder.(Barrier)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, v.callTimeout())
	defer cancel()
	if err := b.Barrier(ctx); err != nil {
		if imerr.CodeOf(err) == imerr.Internal.Code {
			v.logger().Error("v4 API: catching up with the owner failed", "error", err)
		}
		return err
	}
	return nil
}

// KindV4 is the kind of a forwarded v4 call; V4Owner answers it.
const KindV4 = "rest.v4"

// v4Forward is KindV4's request. The answer is the response body.
type v4Forward struct {
	Path string // the endpoint, "{service}/{command}"
	Body []byte // as read and checked by readBody
	Base string // scheme://host of links the call hands out (get_history)
}

// readEndpoints change nothing in the store: every node runs them itself.
// Any endpoint not listed writes and is forwarded, so a new endpoint
// forgotten here costs a round trip, never a lost write. Online status
// answers from this node's view of every node's connections (broker/peers);
// GetIPList answers for the node asked.
//
// localEndpoints, a subset, read nothing from the store either, so they run
// without the barrier: online status answers from presence at once, also
// while a node is dead and the log fails over (the barrier may then wait
// for seconds).
var localEndpoints = map[string]bool{
	"ConfigSvc/GetIPList":        true,
	"openim/query_online_status": true,
	"openim/querystate":          true,
}

var readEndpoints = map[string]bool{
	"im_open_login_svc/account_check":            true,
	"ConfigSvc/GetIPList":                        true,
	"openconfigsvr/getnospeaking":                true,
	"openim/admin_getroammsg":                    true,
	"openim/get_c2c_unread_msg_num":              true,
	"openim/query_online_status":                 true,
	"openim/querystate":                          true,
	"open_msg_svc/get_history":                   true, // reads messages; writes files under this node's storage.dir
	"profile/portrait_get":                       true,
	"recentcontact/get_list":                     true,
	"sns/friend_check":                           true,
	"sns/friend_get":                             true,
	"sns/friend_get_list":                        true,
	"sns/black_list_get":                         true,
	"sns/black_list_check":                       true,
	"sns/group_get":                              true,
	"all_member_push/im_get_attr_name":           true,
	"all_member_push/im_get_attr":                true,
	"all_member_push/im_get_tag":                 true,
	groupServicePath + "get_group_info":          true,
	groupServicePath + "get_group_member_info":   true,
	groupServicePath + "get_joined_group_list":   true,
	groupServicePath + "get_role_in_group":       true,
	groupServicePath + "group_msg_get_simple":    true,
	groupServicePath + "get_group_muted_account": true,
	groupServicePath + "get_appid_group_list":    true,
	groupServicePath + "get_group_shutted_uin":   true,
	groupServicePath + "get_online_member_num":   true,
}

// forward runs ep on the owner and returns its response body; a transport
// failure is answered here, as Internal (logged).
func (v V4) forward(ctx context.Context, ep *endpoint, body []byte, base string) []byte {
	req, err := json.Marshal(v4Forward{Path: ep.Path, Body: body, Base: base})
	if err == nil {
		var out []byte
		if out, err = v.Forwarder.Forward(ctx, KindV4, req); err == nil {
			return out
		}
	}
	if imerr.CodeOf(err) == imerr.Internal.Code {
		v.logger().Error("v4 API not forwarded to the owner", "api", ep.Path, "error", err)
	}
	return envelopeBytes(err, nil)
}

// V4Owner is the owner's handler of KindV4: it runs the call with v, as
// the node it arrived on would have with no cluster.
func V4Owner(v V4) func(ctx context.Context, req []byte) ([]byte, error) {
	byPath := map[string]*endpoint{}
	for _, ep := range registry() {
		byPath[ep.Path] = ep
	}
	log := v.logger()
	return func(ctx context.Context, req []byte) (out []byte, err error) {
		var q v4Forward
		if err := json.Unmarshal(req, &q); err != nil {
			return nil, fmt.Errorf("decode %s request: %w", KindV4, err)
		}
		ep, ok := byPath[q.Path]
		if !ok {
			return envelopeBytes(fail(imerr.BadCommand, "unknown API "+q.Path), nil), nil
		}
		defer func() {
			if p := recover(); p != nil {
				log.Error("v4 API panicked", "api", ep.Path, "panic", p)
				out, err = envelopeBytes(fail(imerr.Internal, "internal error"), nil), nil
			}
		}()
		return v.run(ctx, ep, q.Body, q.Base, log), nil
	}
}

func (v V4) logger() *slog.Logger {
	if v.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return v.Log
}
