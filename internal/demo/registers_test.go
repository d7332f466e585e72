package demo_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/detect"
	"medguard/internal/plans"
	"medguard/internal/risks"
)

// checkRisksAndPlans checks, through the services, the security office's
// registers the demo made (issue 13): the year's risks with one
// acceptance accepted and one waiting, one closed, two reviews overdue
// (alerted), the mobile nursing system assessed and approved; the four
// plans published through the workflow, one revised, one revision in
// review; drills of both kinds with gaps and improvement items, a missed
// quarter and an overdue item alerted, cardiology flagged for retraining.
// What depends on the real time is checked only when the demo was built
// for it.
func checkRisksAndPlans(t *testing.T, app *cli.App, sum *demo.Summary, now time.Time) {
	t.Helper()
	ctx := context.Background()
	officer := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Roles: []string{"security_officer"}}}
	if sum.Risks != 15 || sum.Plans != 4 || sum.Drills < 5 {
		t.Errorf("registers: %d risks, %d plans, %d drills", sum.Risks, sum.Plans, sum.Drills)
	}
	all, _, err := app.Risks.ListRisks(ctx, officer, risks.RiskQuery{})
	if err != nil || len(all) != 15 {
		t.Fatalf("risks: %d, %v", len(all), err)
	}
	count := func(q risks.RiskQuery) int {
		rs, _, err := app.Risks.ListRisks(ctx, officer, q)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if n := count(risks.RiskQuery{Acceptance: risks.AcceptancePending}); n != 1 {
		t.Errorf("%d acceptances waiting, want 1", n)
	}
	if n := count(risks.RiskQuery{Acceptance: risks.AcceptanceAccepted}); n != 1 {
		t.Errorf("%d acceptances accepted, want 1", n)
	}
	if n := count(risks.RiskQuery{Status: risks.Closed}); n != 1 {
		t.Errorf("%d risks closed, want 1", n)
	}
	its, err := app.Risks.ListIntroductions(ctx, officer)
	if err != nil || len(its) != 2 || its[1].Status != risks.IntroductionApproved || its[0].Ready {
		t.Errorf("introductions: %+v, %v", its, err)
	}
	ps, err := app.Plans.ListPlans(ctx, officer, plans.PlanQuery{Status: plans.Published})
	if err != nil || len(ps) != 4 {
		t.Fatalf("published plans: %d, %v", len(ps), err)
	}
	versions := map[string]int{}
	for _, p := range ps {
		versions[p.Type] = p.PublishedVersion*10 + p.OpenVersion
	}
	if versions[plans.TechnicalFailure] != 20 || versions[plans.PublicHealth] != 12 || versions[plans.NaturalDisaster] != 10 {
		t.Errorf("plans' versions: %v", versions)
	}
	ds, err := app.Plans.ListDrills(ctx, officer, plans.DrillQuery{})
	if err != nil || len(ds) != sum.Drills {
		t.Fatalf("drills: %d, %v", len(ds), err)
	}
	kinds := map[string]int{}
	for _, d := range ds {
		kinds[d.Kind]++
		if len(d.Gaps) == 0 || len(d.Improvements) == 0 || len(d.Participants) == 0 {
			t.Errorf("drill %s without gaps, improvements or participants", d.ID)
		}
	}
	if kinds[plans.Tabletop] < 3 || kinds[plans.Live] < 2 {
		t.Errorf("drills by kind: %v", kinds)
	}
	if flags, err := app.Plans.RetrainingNeeded(ctx); err != nil || len(flags) != 1 || flags[0].Department != "CARD" {
		t.Errorf("retraining: %+v, %v", flags, err)
	}
	for _, c := range []struct {
		rule string
		min  int
	}{{risks.ReviewOverdueRule, 2}, {plans.CadenceMissedRule, 1}, {plans.RetrainingRule, 1}, {plans.ImprovementOverdueRule, 1}} {
		as, _, err := app.Detect.Alerts(ctx, officer, detect.AlertQuery{Rule: c.rule})
		if err != nil || len(as) < c.min {
			t.Errorf("alerts %s: %d, %v", c.rule, len(as), err)
		}
	}
	if live := now.After(time.Now().Add(-time.Hour)) && !now.After(time.Now()); live {
		st, err := app.Plans.Status(ctx, officer)
		if err != nil || len(st.Cadence) != 2 || !slices.ContainsFunc(st.Cadence, func(c plans.Cadence) bool { return len(c.Missed) > 0 }) {
			t.Errorf("cadence now: %+v, %v", st, err)
		}
		h, err := app.Risks.HeatMap(ctx, officer)
		if err != nil || h.Overdue < 2 || h.PendingAcceptance != 1 {
			t.Errorf("heat map now: %+v, %v", h, err)
		}
	}
}
