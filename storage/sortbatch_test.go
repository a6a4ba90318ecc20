package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// A group's batch committed in key order, with only the last write of each
// key, leaves the database exactly as the batch in its own order does; a
// batch with a range delete is committed as it is.
func TestSortedBatchSameOutcome(t *testing.T) {
	open := func() *pebble.DB {
		db, err := pebble.Open("x", &pebble.Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	plain, sorted := open(), open()
	var st sorter
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		b1, b2 := plain.NewBatch(), sorted.NewBatch()
		for i := range 200 {
			k := []byte(fmt.Sprintf("k%03d", rng.IntN(60)))
			if rng.IntN(4) == 0 {
				_ = b1.Delete(k, nil)
				_ = b2.Delete(k, nil)
				continue
			}
			v := []byte(fmt.Sprintf("v%d.%d", round, i))
			_ = b1.Set(k, v, nil)
			_ = b2.Set(k, v, nil)
		}
		if round%10 == 9 {
			_ = b1.DeleteRange([]byte("k010"), []byte("k020"), nil)
			_ = b2.DeleteRange([]byte("k010"), []byte("k020"), nil)
			_ = b1.Set([]byte("k015"), []byte("after the range delete"), nil)
			_ = b2.Set([]byte("k015"), []byte("after the range delete"), nil)
		}
		sb, err := st.sorted(sorted, b2)
		if err != nil {
			t.Fatal(err)
		}
		if (sb == b2) != (round%10 == 9) {
			t.Fatalf("round %d: sorted batch %v, want one only without a range delete", round, sb != b2)
		}
		if sb != b2 && sb.Count() >= b2.Count() {
			t.Fatalf("round %d: %d writes sorted, %d in the batch: rewritten keys not dropped", round, sb.Count(), b2.Count())
		}
		if err := b1.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if err := sb.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		b1.Close()
		b2.Close()
		if sb != b2 {
			sb.Close()
		}
		if a, b := dumpDB(t, plain), dumpDB(t, sorted); a != b {
			t.Fatalf("round %d: databases differ:\n%s\n%s", round, a, b)
		}
	}
}

func dumpDB(t *testing.T, db *pebble.DB) string {
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	s := ""
	for ok := it.First(); ok; ok = it.Next() {
		s += string(it.Key()) + "=" + string(it.Value()) + " "
	}
	return s
}
