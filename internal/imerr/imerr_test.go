package imerr

import (
	"errors"
	"fmt"
	"testing"
)

func TestTableRowsAreUnique(t *testing.T) {
	names, codes := map[string]bool{}, map[int]string{}
	for _, k := range Table {
		if names[k.Name] {
			t.Errorf("name %s twice", k.Name)
		}
		names[k.Name] = true
		if prev, ok := codes[k.Code]; ok {
			t.Errorf("code %d is both %s and %s", k.Code, prev, k.Name)
		}
		codes[k.Code] = k.Name
		if k.Reason < 0x80 || k.Text == "" {
			t.Errorf("%s: reason 0x%02x, text %q", k.Name, k.Reason, k.Text)
		}
	}
	if len(Table) < 70 {
		t.Fatalf("table has %d rows", len(Table))
	}
}

func TestAsFindsWrappedRefusalsAndHidesOthers(t *testing.T) {
	err := fmt.Errorf("join: %w", GroupFull.New("group %s has %d members", "g1", 3))
	e := As(err)
	if e.Code != 10014 || e.Reason != ReasonImplementation || e.Info != "group g1 has 3 members" {
		t.Fatalf("As = %+v", e)
	}
	if !GroupFull.Is(err) || GroupNotFound.Is(err) {
		t.Fatal("Is does not match the wrapped kind")
	}
	if got := As(errors.New("disk on fire")); got.Code != 20005 || got.Info != "internal error" {
		t.Fatalf("uncoded error rendered as %+v", got)
	}
	if CodeOf(nil) != 0 || CodeOf(err) != 10014 {
		t.Fatal("CodeOf")
	}
	if s := BadJSON.Err().Error(); s != "90001 body is not valid JSON" {
		t.Fatalf("Error() = %q", s)
	}
}
