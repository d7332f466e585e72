package incidents_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"medguard/internal/incidents"
)

// TestIncidentsByGrade counts the incidents reported in a period by
// grade: the start included, the end excluded.
func TestIncidentsByGrade(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	from := f.clock.Now()
	f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	f.clock.Advance(time.Hour)
	f.report(t, incidents.NewIncident{Facts: &incidents.Facts{DepartmentsAffected: 1, DepartmentsTotal: 30}}) // grade 2
	f.clock.Advance(time.Hour)
	f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	to := f.clock.Now()
	f.clock.Advance(time.Hour)
	f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"}) // after the period
	got, err := f.svc.IncidentsByGrade(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int{2: 1, 3: 1}; !maps.Equal(got, want) {
		t.Errorf("by grade %v, want %v", got, want)
	}
	if got, _ := f.svc.IncidentsByGrade(ctx, from, to.Add(time.Millisecond)); got[3] != 2 {
		t.Errorf("with the end moved: %v", got)
	}
}
