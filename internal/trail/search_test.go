package trail_test

import (
	"context"
	"testing"
	"time"

	"medguard"
	"medguard/internal/trail"
)

// TestSearchByStatus searches 张三's trail by status: the refused read,
// the change that did not complete, and the accesses that did; a page of
// one continues where it stopped; an unknown status is refused.
func TestSearchByStatus(t *testing.T) {
	f := setup(t)
	zhang, _ := f.history(t)
	ctx := context.Background()
	f.clock.Set(at(time.March, 6, 9, 0))
	call := f.as("wuyan", "audit")
	for _, c := range []struct {
		status  string
		actions []string
	}{
		{trail.StatusDenied, []string{"record.read"}},
		{trail.StatusIncomplete, []string{"patient.update"}},
		{trail.StatusCompleted, []string{"record.read", "record.read", "record.create", "patient.create"}},
		{"", []string{"patient.update", "record.read", "record.read", "record.read", "record.create", "patient.create"}},
	} {
		es, next, err := f.trail.Search(ctx, call, trail.Query{PatientID: zhang, Status: c.status, Limit: 50})
		if err != nil || next != 0 || len(es) != len(c.actions) {
			t.Fatalf("%q: %d entries, next %d, %v", c.status, len(es), next, err)
		}
		for i, e := range es {
			if e.Entry.Action != c.actions[i] || e.Entry.PatientID != zhang {
				t.Errorf("%q: entry %d is %s", c.status, i, e.Entry.Action)
			}
		}
	}
	// A page at a time.
	var seen []uint64
	var before uint64
	for {
		es, next, err := f.trail.Search(ctx, call, trail.Query{PatientID: zhang, Status: trail.StatusCompleted, Before: before, Limit: 1})
		if err != nil || len(es) != 1 {
			t.Fatalf("page %d: %v %v", len(seen), es, err)
		}
		seen = append(seen, es[0].Index)
		if next == 0 {
			break
		}
		before = next
	}
	if len(seen) != 4 || seen[0] <= seen[1] || seen[2] <= seen[3] {
		t.Errorf("pages %v", seen)
	}
	_, _, err := f.trail.Search(ctx, call, trail.Query{Status: "allow"})
	if !medguard.IsKind(err, medguard.Invalid) {
		t.Errorf("unknown status: %v", err)
	}
}
