package push

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/imbroker/imbroker/internal/ids"
	"github.com/imbroker/imbroker/internal/imerr"
	"github.com/imbroker/imbroker/storage"
)

// The attribute and tag APIs (im_set_attr_name ... im_remove_all_tags).
// Every call is one commit: a refused item leaves nothing changed.

// UserAttrs is one user's attributes, by attribute name.
type UserAttrs struct {
	To_Account string
	Attrs      map[string]string
}

// UserAttrNames names attributes of one user (im_remove_attr).
type UserAttrNames struct {
	To_Account string
	Attrs      []string
}

// UserTags is one user's tags.
type UserTags struct {
	To_Account string
	Tags       []string
}

// AttrNames returns the app's attribute names by index ("0".."9").
func (s *Service) AttrNames() (map[string]string, error) {
	v, found, err := s.store.Get(attrNamesKey)
	if err != nil {
		return nil, fmt.Errorf("read attribute names: %w", err)
	}
	names := map[string]string{}
	if found {
		if err := json.Unmarshal(v, &names); err != nil {
			return nil, fmt.Errorf("decode attribute names: %w", err)
		}
	}
	return names, nil
}

// SetAttrNames sets the names of the given attribute indices (0 to
// push.max_attr_names-1); others keep theirs. Names are unique.
func (s *Service) SetAttrNames(ctx context.Context, set map[string]string) error {
	if len(set) == 0 {
		return imerr.PushBadAttr.New("AttrNames is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := s.AttrNames()
	if err != nil {
		return err
	}
	for idx, name := range set {
		n, err := strconv.Atoi(idx)
		if err != nil || n < 0 || n >= s.cfg.MaxAttrNames || strconv.Itoa(n) != idx {
			return imerr.PushBadAttr.New("attribute index %q is not 0 to %d", idx, s.cfg.MaxAttrNames-1)
		}
		if err := s.checkText("attribute name", name, s.cfg.MaxAttrBytes); err != nil {
			return err
		}
		names[idx] = name
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			return imerr.PushBadAttr.New("attribute name %q is used twice", name)
		}
		seen[name] = true
	}
	b, _ := json.Marshal(names)
	if _, err := s.store.Commit(ctx, storage.Batch{Sets: map[string][]byte{attrNamesKey: b}}); err != nil {
		return fmt.Errorf("set attribute names: %w", err)
	}
	return nil
}

// knownAttrs is the set of attribute names defined now.
func (s *Service) knownAttrs() (map[string]bool, error) {
	names, err := s.AttrNames()
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	return known, nil
}

// checkText refuses an empty, invalid-UTF-8 or oversized name, value or tag.
func (s *Service) checkText(what, v string, max int) error {
	if v == "" || len(v) > max || !validText(v) {
		return imerr.PushBadAttr.New("%s %q must be 1 to %d bytes of text", what, v, max)
	}
	return nil
}

// validText: UTF-8 without control characters.
func validText(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// checkAccounts refuses an empty or oversized list and invalid UserIDs.
func (s *Service) checkAccounts(uids []string) error {
	if len(uids) == 0 {
		return imerr.BadParams.New("To_Account is empty")
	}
	if len(uids) > s.cfg.MaxAccounts {
		return imerr.PushTooManyAccounts.New("%d accounts, at most %d", len(uids), s.cfg.MaxAccounts)
	}
	for _, u := range uids {
		if ids.CheckUserID(u) != nil {
			return imerr.BadAccount.New("invalid To_Account %q", u)
		}
	}
	return nil
}

// update commits one read-modify-write of each user's record.
func (s *Service) update(ctx context.Context, uids []string, fn func(uid string, r *userRec) error) error {
	b := storage.Batch{}
	for _, uid := range uids {
		b.Updates = append(b.Updates, storage.Update{Name: userKey(uid), Fn: func(cur []byte, found bool, _ []storage.Pos) ([]byte, error) {
			r, err := decodeUser(cur, found)
			if err != nil {
				return nil, err
			}
			// A copy: the store keeps cur, which must not change.
			r.Attrs, r.Tags = cloneMap(r.Attrs), slices.Clone(r.Tags)
			if err := fn(uid, &r); err != nil {
				return nil, err
			}
			return r.encode(), nil
		}})
	}
	if _, err := s.store.Commit(ctx, b); err != nil {
		return err // a refusal from fn keeps its code; the batch wrote nothing
	}
	return nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SetAttrs sets users' attributes (im_set_attr); every name must be one of
// the app's attribute names.
func (s *Service) SetAttrs(ctx context.Context, items []UserAttrs) error {
	uids := make([]string, len(items))
	for i, it := range items {
		uids[i] = it.To_Account
	}
	if err := s.checkAccounts(uids); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known, err := s.knownAttrs()
	if err != nil {
		return err
	}
	byUser := map[string]map[string]string{}
	for _, it := range items {
		if len(it.Attrs) == 0 {
			return imerr.PushBadAttr.New("Attrs of %s is empty", it.To_Account)
		}
		for name, v := range it.Attrs {
			if !known[name] {
				return imerr.PushBadAttr.New("%q is not an attribute name (im_set_attr_name)", name)
			}
			if err := s.checkText("attribute value", v, s.cfg.MaxAttrBytes); err != nil {
				return err
			}
		}
		if byUser[it.To_Account] == nil {
			byUser[it.To_Account] = map[string]string{}
		}
		for name, v := range it.Attrs {
			byUser[it.To_Account][name] = v
		}
	}
	return s.update(ctx, keys(byUser), func(uid string, r *userRec) error {
		if r.Attrs == nil {
			r.Attrs = map[string]string{}
		}
		for name, v := range byUser[uid] {
			r.Attrs[name] = v
		}
		return nil
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// RemoveAttrs removes the named attributes of users (im_remove_attr).
func (s *Service) RemoveAttrs(ctx context.Context, items []UserAttrNames) error {
	uids := make([]string, len(items))
	drop := map[string][]string{}
	for i, it := range items {
		uids[i] = it.To_Account
		drop[it.To_Account] = append(drop[it.To_Account], it.Attrs...)
	}
	if err := s.checkAccounts(uids); err != nil {
		return err
	}
	return s.update(ctx, keys(drop), func(uid string, r *userRec) error {
		for _, name := range drop[uid] {
			delete(r.Attrs, name)
		}
		return nil
	})
}

// Attrs returns users' attributes (im_get_attr), in request order; a user
// without any has an empty Attrs.
func (s *Service) Attrs(uids []string) ([]UserAttrs, error) {
	recs, err := s.records(uids)
	if err != nil {
		return nil, err
	}
	out := make([]UserAttrs, len(uids))
	for i, uid := range uids {
		out[i] = UserAttrs{To_Account: uid, Attrs: recs[i].Attrs}
		if out[i].Attrs == nil {
			out[i].Attrs = map[string]string{}
		}
	}
	return out, nil
}

// Tags returns users' tags (im_get_tag), in request order.
func (s *Service) Tags(uids []string) ([]UserTags, error) {
	recs, err := s.records(uids)
	if err != nil {
		return nil, err
	}
	out := make([]UserTags, len(uids))
	for i, uid := range uids {
		out[i] = UserTags{To_Account: uid, Tags: recs[i].Tags}
		if out[i].Tags == nil {
			out[i].Tags = []string{}
		}
	}
	return out, nil
}

func (s *Service) records(uids []string) ([]userRec, error) {
	if err := s.checkAccounts(uids); err != nil {
		return nil, err
	}
	out := make([]userRec, len(uids))
	for i, uid := range uids {
		v, found, err := s.store.Get(userKey(uid))
		if err != nil {
			return nil, fmt.Errorf("read push record %s: %w", uid, err)
		}
		if out[i], err = decodeUser(v, found); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddTags adds tags to users (im_add_tag): at most push.max_tags_per_call
// per item, push.max_tags_per_user in all (over it, the call is refused).
func (s *Service) AddTags(ctx context.Context, items []UserTags) error {
	add, err := s.tagItems(items)
	if err != nil {
		return err
	}
	for uid, tags := range add {
		if len(tags) > s.cfg.MaxTagsPerCall {
			return imerr.PushBadAttr.New("%d tags for %s in one call, at most %d", len(tags), uid, s.cfg.MaxTagsPerCall)
		}
	}
	return s.update(ctx, keys(add), func(uid string, r *userRec) error {
		for _, t := range add[uid] {
			if !r.hasTag(t) {
				r.Tags = append(r.Tags, t)
			}
		}
		if len(r.Tags) > s.cfg.MaxTagsPerUser {
			return imerr.PushBadAttr.New("%s would hold %d tags, at most %d: remove some first", uid, len(r.Tags), s.cfg.MaxTagsPerUser)
		}
		return nil
	})
}

// RemoveTags removes tags from users (im_remove_tag).
func (s *Service) RemoveTags(ctx context.Context, items []UserTags) error {
	drop, err := s.tagItems(items)
	if err != nil {
		return err
	}
	return s.update(ctx, keys(drop), func(uid string, r *userRec) error {
		r.Tags = slices.DeleteFunc(r.Tags, func(t string) bool { return slices.Contains(drop[uid], t) })
		return nil
	})
}

// RemoveAllTags removes every tag of users (im_remove_all_tags).
func (s *Service) RemoveAllTags(ctx context.Context, uids []string) error {
	if err := s.checkAccounts(uids); err != nil {
		return err
	}
	return s.update(ctx, uids, func(_ string, r *userRec) error {
		r.Tags = nil
		return nil
	})
}

// tagItems checks tag items and merges them per user, without repeats.
func (s *Service) tagItems(items []UserTags) (map[string][]string, error) {
	uids := make([]string, len(items))
	byUser := map[string][]string{}
	for i, it := range items {
		uids[i] = it.To_Account
		if len(it.Tags) == 0 {
			return nil, imerr.PushBadAttr.New("Tags of %s is empty", it.To_Account)
		}
		for _, t := range it.Tags {
			if err := s.checkText("tag", t, s.cfg.MaxTagBytes); err != nil {
				return nil, err
			}
			if !slices.Contains(byUser[it.To_Account], t) {
				byUser[it.To_Account] = append(byUser[it.To_Account], t)
			}
		}
	}
	if err := s.checkAccounts(uids); err != nil {
		return nil, err
	}
	return byUser, nil
}
