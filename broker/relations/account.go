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

// What an account is (docs/relations.md "Accounts"): Tencent's, a UserID
// that was imported (account_import) or that logged in once with a valid
// UserSig (the login imports it). The app admin always is one. With
// relations.require_accounts, one-to-one messages go to accounts only.

// AccountExists reports whether uid is an account.
func (s *Service) AccountExists(uid string) (bool, error) {
	if uid == s.admin {
		return true, nil
	}
	return s.AccountImported(uid)
}

// checkAccounts refuses a C2C send whose recipient is no account, under
// relations.require_accounts. The sender is not looked up: a client is an
// account once logged in, and a REST From_Account is the app's word.
func (s *Service) checkAccounts(to string) error {
	if !s.cfg.RequireAccounts {
		return nil
	}
	ok, err := s.AccountExists(to)
	if err != nil {
		return fmt.Errorf("account check of %s: %w", to, err)
	}
	if !ok {
		return imerr.ToUnknown.New("%s is not an account: import it (account_import) or let it log in once", to)
	}
	return nil
}

// kickRec is when the app last invalidated uid's logins (Tencent kick).
type kickRec struct {
	KickedAt int64
}

// Login admits uid's login with a valid UserSig issued at issued: a sig
// issued before the user's last kick is refused (Tencent kick: "logging
// in with a historical UserSig fails"), and a UserID that is no account
// yet becomes one (Tencent imports it at its first login).
func (s *Service) Login(ctx context.Context, uid string, issued time.Time) error {
	var k kickRec
	found, err := s.getJSON(kickKey(uid), &k)
	if err != nil {
		return fmt.Errorf("kick record of %s: %w", uid, err)
	}
	if found && issued.Unix() < k.KickedAt {
		return imerr.UserSigExpired.New("this UserSig was issued before %s was kicked; log in with a new one", uid)
	}
	ok, err := s.AccountImported(uid)
	if err != nil || ok {
		return err
	}
	return s.ImportAccount(ctx, uid, "", "")
}

// InvalidateLogins is Tencent kick: UserSigs of uid issued before now no
// longer log in (the record is committed first, so a reconnect racing the
// kick cannot slip through with the old sig), then every connection of
// uid is closed. A sig issued in the kick's second still logs in: sigs
// carry whole seconds. It returns how many connections were closed.
func (s *Service) InvalidateLogins(ctx context.Context, uid string) (int, error) {
	if ids.CheckUserID(uid) != nil {
		return 0, imerr.AccountBadParams.New("invalid UserID %q", uid)
	}
	rec := mustJSON(kickRec{KickedAt: time.Now().Unix()})
	if _, err := s.store.Commit(ctx, storage.Batch{Sets: map[string][]byte{kickKey(uid): rec}}); err != nil {
		return 0, fmt.Errorf("kick %s: %w", uid, err)
	}
	if s.kicker == nil {
		return 0, nil
	}
	return s.kicker.KickUser(uid), nil
}

// Accounts lists up to limit imported accounts whose ids start with prefix
// and sort after `after` ("" for the first page), in id order (the
// console's Users page).
func (s *Service) Accounts(prefix, after string, limit int) ([]string, error) {
	if after != "" {
		after = accountKey(after)
	}
	kvs, err := s.store.Scan(accountPrefix+prefix, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Name[len(accountPrefix):]
	}
	return out, nil
}
