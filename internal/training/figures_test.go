package training_test

import (
	"context"
	"testing"
	"time"

	"medguard/internal/training"
)

// TestCoverageAt counts the staff current at an instant, judged on what
// was recorded by then: a pass and a signature after the instant do not
// count for it; staff not yet on the staff are not counted; now it agrees
// with the register's summary.
func TestCoverageAt(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.privacy(t)
	l := f.letter(t)
	must[*training.Course](t)(f.svc.SetRequired(ctx, f.call("zhouqiang"), c.ID, training.Requirement{Required: true}))
	f.clock.Advance(time.Hour)
	before := f.clock.Now()
	staff0, current0, err := f.svc.CoverageAt(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	f.sit(t, c.ID, map[string]int{"zhangwei": 92, "wangfang": 95})
	f.sign(t, "zhangwei", l)
	f.sign(t, "wangfang", l)
	f.clock.Advance(time.Hour)
	staff1, current1, err := f.svc.CoverageAt(ctx, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if staff1 != staff0 || current1 != current0+2 || staff0 < 9 {
		t.Errorf("before the course %d of %d current, after %d of %d", current0, staff0, current1, staff1)
	}
	if s, c, _ := f.svc.CoverageAt(ctx, before); s != staff0 || c != current0 {
		t.Errorf("the earlier instant changed: %d of %d", c, s)
	}
	sum, err := f.svc.Summarise(ctx, f.call("zhouqiang"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Staff != staff1 || sum.Current != current1 {
		t.Errorf("summary %d of %d, CoverageAt %d of %d", sum.Current, sum.Staff, current1, staff1)
	}
	if s, _, _ := f.svc.CoverageAt(ctx, start.Add(-time.Hour)); s != 0 {
		t.Errorf("%d staff before anyone joined", s)
	}
}
