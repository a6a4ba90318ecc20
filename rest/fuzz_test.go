package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imbroker/imbroker/broker"
	"github.com/imbroker/imbroker/broker/stats"
	"github.com/imbroker/imbroker/broker/wire"
	"github.com/imbroker/imbroker/config"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/internal/usersig"
)

const fuzzKey = "imbroker-fuzz-secret-key-0123456789"

// sigAdmin verifies UserSigs with a real signer.
type sigAdmin struct{ s *usersig.Signer }

func (a sigAdmin) VerifyUserSig(user, sig string) error {
	_, err := a.s.Verify(user, sig, time.Now())
	return err
}
func (sigAdmin) Counters() (broker.AppCounters, error)          { return broker.AppCounters{}, nil }
func (sigAdmin) KickUser(string) int                            { return 0 }
func (sigAdmin) Days(context.Context, int) ([]stats.Day, error) { return nil, nil }

// FuzzCheckAuth: the REST query check never panics, accepts a query only
// when it names the app, the admin and a valid UserSig of the admin with a
// 32-bit random, and refuses everything else with a coded error.
func FuzzCheckAuth(f *testing.F) {
	signer := usersig.New(1400000000, fuzzKey)
	adminSig, _ := signer.Gen("administrator", 86400*365)
	userSig, _ := signer.Gen("alice", 86400*365)
	good := url.Values{"sdkappid": {"1400000000"}, "identifier": {"administrator"}, "usersig": {adminSig}, "random": {"99"}, "contenttype": {"json"}}
	f.Add(good.Encode())
	f.Add(strings.Replace(good.Encode(), "administrator", "alice", 1) + "&usersig=" + url.QueryEscape(userSig))
	f.Add("sdkappid=1400000000&identifier=administrator&usersig=x&random=4294967296")
	f.Add("sdkappid=%zz&random=1")
	f.Add("")
	v := V4{Admin: sigAdmin{signer}, App: config.App{SDKAppID: 1400000000, Admin: "administrator"}}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return // the router answers a bad query before checkAuth
		}
		err = checkAuth(v, q)
		if err != nil {
			var e *imerr.Error
			if !errors.As(err, &e) || e.Code == 0 {
				t.Fatalf("%q: refusal %v has no code", query, err)
			}
			return
		}
		first := func(k string) string { return q[k][0] }
		if first("sdkappid") == "" || strings.TrimLeft(first("sdkappid"), "0") != "1400000000" || first("identifier") != "administrator" {
			t.Fatalf("%q accepted for another app or identifier", query)
		}
		if _, err := signer.Verify("administrator", first("usersig"), time.Now()); err != nil {
			t.Fatalf("%q accepted with a UserSig that does not verify: %v", query, err)
		}
		if ct, ok := q["contenttype"]; ok && len(ct) > 0 && ct[0] != "json" {
			t.Fatalf("%q accepted with contenttype %q", query, ct[0])
		}
	})
}

// FuzzReadBody: a REST body is accepted only as a JSON object of at most
// the limit with every number finite; every refusal is coded.
func FuzzReadBody(f *testing.F) {
	for _, s := range []string{`{}`, ` {"From_Account":"a","MsgRandom":1} `, `[]`, `{"x":1e400}`, ``, `{"a":` + strings.Repeat("1", 80) + `}`, `{"a":"\xff"}`, strings.Repeat("{", 300)} {
		f.Add([]byte(s), true)
	}
	const max = 256
	f.Fuzz(func(t *testing.T, body []byte, openim bool) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v4/openim/sendmsg", bytes.NewReader(body))
		got, err := readBody(w, r, max, openim)
		if err != nil {
			var e *imerr.Error
			if !errors.As(err, &e) || e.Code == 0 {
				t.Fatalf("%q: refusal %v has no code", body, err)
			}
			return
		}
		if len(got) > max || len(got) == 0 || got[0] != '{' || !jsonValid(got) || wire.CheckNumbers(got) != nil {
			t.Fatalf("%q accepted as %q", body, got)
		}
	})
}

func jsonValid(b []byte) bool { return json.Valid(b) }
