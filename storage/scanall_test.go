package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestScanAllVisitsEveryPageInOrder(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sets := map[string][]byte{"other/x": []byte("no")}
	const n = scanPage*2 + 7 // three pages, the last one short
	for i := range n {
		sets[fmt.Sprintf("p/%05d", i)] = []byte(fmt.Sprint(i))
	}
	if _, err := s.Commit(context.Background(), Batch{Sets: sets}); err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = ScanAll(s, "p/", func(name string, v []byte) error {
		if want := fmt.Sprintf("p/%05d", seen); name != want || string(v) != fmt.Sprint(seen) {
			return fmt.Errorf("record %d is %s=%s, want %s", seen, name, v, want)
		}
		seen++
		return nil
	})
	if err != nil || seen != n {
		t.Fatalf("visited %d of %d: %v", seen, n, err)
	}
	stop := errors.New("stop")
	if err := ScanAll(s, "p/", func(string, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error not returned: %v", err)
	}
}
