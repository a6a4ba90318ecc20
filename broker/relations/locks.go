package relations

import (
	"hash/maphash"
	"slices"
	"sync"
)

// stripes serialise changes of relation records per user. Each Service has
// its own, so services sharing a process (tests) never wait on each other's
// users.
type stripes [256]sync.Mutex

var stripeSeed = maphash.MakeSeed() // picks a user's stripe; never changes

// lockUsers takes the relation locks of users and returns the unlock. Lock
// order: stripes in ascending index (sorted here), so two changes never
// deadlock; a caller holding stripes takes no other stripe.
func (s *Service) lockUsers(users ...string) (unlock func()) {
	locks := &s.locks
	idx := make([]int, 0, len(users))
	for _, u := range users {
		idx = append(idx, int(maphash.String(stripeSeed, u)%uint64(len(locks))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		locks[i].Lock()
	}
	return func() {
		for i := len(idx) - 1; i >= 0; i-- {
			locks[idx[i]].Unlock()
		}
	}
}
