package relations

import (
	"context"
	"fmt"
	"time"

	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// The account registry (Tencent im_open_login_svc account_*): which
// UserIDs the app imported. Logging in needs no import; an imported
// account is only counted and checked.

// accountRec is an imported account.
type accountRec struct {
	UserID     string
	ImportTime int64
}

// ImportAccount records uid as imported (Tencent account_import); importing
// again is a success. Nick and FaceUrl, when given, go to the profile, in
// the same commit as the record: a refused value leaves nothing imported.
func (s *Service) ImportAccount(ctx context.Context, uid, nick, faceURL string) error {
	if ids.CheckUserID(uid) != nil {
		return imerr.AccountBadParams.New("invalid UserID %q", uid)
	}
	rec := mustJSON(accountRec{UserID: uid, ImportTime: time.Now().Unix()})
	// The first import's time stays.
	first := storage.Batch{Updates: []storage.Update{{Name: accountKey(uid), Fn: func(cur []byte, found bool, _ []storage.Pos) ([]byte, error) {
		if found {
			return cur, nil
		}
		return rec, nil
	}}}}
	var items []TagValue
	if nick != "" {
		items = append(items, TagValue{tagNick, mustJSON(nick)})
	}
	if faceURL != "" {
		items = append(items, TagValue{tagImage, mustJSON(faceURL)})
	}
	if len(items) == 0 {
		if _, err := s.store.Commit(ctx, first); err != nil {
			return fmt.Errorf("import account %s: %w", uid, err)
		}
		return nil
	}
	ch, err := s.profileChange(uid, items, true)
	if err != nil {
		return err
	}
	if err := s.commitProfile(ctx, first, ch); err != nil {
		return fmt.Errorf("import account %s: %w", uid, err)
	}
	s.afterPortraitSet(ctx, uid, s.admin, ch.all) // Profile.CallbackPortraitSet, as the app admin set it
	return nil
}

// AccountImported reports whether uid was imported.
func (s *Service) AccountImported(uid string) (bool, error) {
	if ids.CheckUserID(uid) != nil {
		return false, nil
	}
	return s.has(accountKey(uid))
}

// DeleteAccount forgets an imported account (Tencent account_delete) and
// disconnects its connections. Its messages, relations and profile stay.
func (s *Service) DeleteAccount(ctx context.Context, uid string) error {
	ok, err := s.AccountImported(uid)
	if err != nil {
		return err
	}
	if !ok {
		return imerr.AccountUnknown.New("account %q is not imported", uid)
	}
	if _, err := s.store.Commit(ctx, storage.Batch{Deletes: []string{accountKey(uid)}}); err != nil {
		return fmt.Errorf("delete account %s: %w", uid, err)
	}
	if s.kicker != nil {
		s.kicker.KickUser(uid)
	}
	return nil
}

// AccountCount is how many accounts are imported (Tencent
// getappinfo RegistUserNumTotal).
func (s *Service) AccountCount() (int, error) {
	n := 0
	err := storage.ScanAll(s.store, accountPrefix, func(string, []byte) error { n++; return nil })
	if err != nil {
		return 0, fmt.Errorf("count accounts: %w", err)
	}
	return n, nil
}
