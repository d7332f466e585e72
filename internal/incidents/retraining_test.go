package incidents_test

import (
	"context"
	"testing"
	"time"

	"medguard"
	"medguard/internal/incidents"
)

// TestDecisionOrdersRetraining: an upheld decision may order retraining,
// which the training register is told of as the decider, with the case;
// a dismissal may not; without a register the decision is recorded and
// the order refused. The upheld cases of a period are counted for the
// staff assessment.
func TestDecisionOrdersRetraining(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	from := f.clock.Now()
	c := f.openCase(t, "wuyan")
	_, err := f.svc.Decide(ctx, f.calls["zhaomin"], c.ID, incidents.CaseDecision{Outcome: incidents.Dismissed, Text: "证据不足", Retraining: true})
	wantField(t, err, "retraining")
	// No register yet: the decision stands, the order is refused.
	got, err := f.svc.Decide(ctx, f.calls["zhaomin"], c.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Text: "越权查询属实，警告并重新培训",
		Retraining: true})
	if e := wantKind(t, err, medguard.Conflict); e.Code != "no_training_register" || got == nil || got.Status != incidents.Decided {
		t.Fatalf("%+v %v", got, err)
	}
	type order struct{ by, user, caseID, reason string }
	var orders []order
	f.svc.SetRetraining(func(_ context.Context, call *medguard.Call, userID, caseID, reason string) error {
		orders = append(orders, order{call.Actor.Name, userID, caseID, reason})
		return nil
	})
	c2 := f.openCase(t, "wuyan")
	if _, err := f.svc.Decide(ctx, f.calls["zhaomin"], c2.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Text: "属实", Retraining: true}); err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 || orders[0].by != "zhaomin" || orders[0].user != f.calls["zhangwei"].Actor.ID || orders[0].caseID != c2.ID {
		t.Fatalf("orders %+v", orders)
	}
	c3 := f.openCase(t, "wuyan")
	if _, err := f.svc.Decide(ctx, f.calls["zhaomin"], c3.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Text: "属实"}); err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 {
		t.Fatalf("a decision without retraining ordered it: %+v", orders)
	}
	n, err := f.svc.UpheldCases(ctx, from, f.clock.Now().Add(time.Minute))
	if err != nil || n[f.calls["zhangwei"].Actor.ID] != 3 {
		t.Fatalf("upheld %v %v", n, err)
	}
	if n, _ := f.svc.UpheldCases(ctx, from.Add(-48*time.Hour), from.Add(-24*time.Hour)); len(n) != 0 {
		t.Fatalf("upheld before: %v", n)
	}
}
