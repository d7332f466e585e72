package incidents_test

import (
	"context"
	"testing"
	"time"

	"medguard/internal/incidents"
)

// TestUpheldCasesAreCounted: the upheld cases of a period are counted for
// the training register's quarterly staff assessment; dismissed ones and
// other periods are not.
func TestUpheldCasesAreCounted(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	from := f.clock.Now()
	for _, outcome := range []string{incidents.Upheld, incidents.Upheld, incidents.Dismissed} {
		c := f.openCase(t, "wuyan")
		if _, err := f.svc.Decide(ctx, f.calls["zhaomin"], c.ID, incidents.CaseDecision{Outcome: outcome, Text: "越权查询核查结论"}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := f.svc.UpheldCases(ctx, from, f.clock.Now().Add(time.Minute))
	if err != nil || n[f.calls["zhangwei"].Actor.ID] != 2 {
		t.Fatalf("upheld %v %v", n, err)
	}
	if n, _ := f.svc.UpheldCases(ctx, from.Add(-48*time.Hour), from.Add(-24*time.Hour)); len(n) != 0 {
		t.Fatalf("upheld before: %v", n)
	}
}
