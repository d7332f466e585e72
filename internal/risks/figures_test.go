package risks_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"medguard/internal/risks"
)

// TestLevelsAt counts the open risks by level as their history stood at
// an instant: a risk counts from its recording, at the level of its last
// review by then, and no more once closed.
func TestLevelsAt(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	officer := f.calls["zhouqiang"]
	t0 := f.clock.Now()
	a, err := f.svc.CreateRisk(ctx, officer, newRisk(2, 2, risks.Reduce)) // low
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	t1 := f.clock.Now()
	if _, err := f.svc.CreateRisk(ctx, officer, newRisk(3, 3, risks.Reduce)); err != nil { // medium
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	t2 := f.clock.Now()
	if _, err := f.svc.ReviewRisk(ctx, officer, a.ID, risks.Review{Likelihood: 5, Impact: 5, Treatment: risks.Reduce}); err != nil { // critical
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	t3 := f.clock.Now()
	if _, err := f.svc.CloseRisk(ctx, officer, a.ID, risks.Closing{Note: "服务器已下线，由吴燕确认"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	for _, c := range []struct {
		at   time.Time
		want map[string]int
	}{
		{t0.Add(-time.Minute), map[string]int{}},
		{t0, map[string]int{"low": 1}},
		{t1.Add(time.Minute), map[string]int{"low": 1, "medium": 1}},
		{t2.Add(time.Minute), map[string]int{"critical": 1, "medium": 1}},
		{t3.Add(time.Minute), map[string]int{"medium": 1}},
	} {
		got, err := f.svc.LevelsAt(ctx, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("at %s: %v, want %v", c.at, got, c.want)
		}
	}
}
