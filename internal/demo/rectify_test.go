package demo_test

import (
	"context"
	"testing"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/rectify"
)

// checkRectification checks, through the services, the rectification
// register the demo made (issue 14): items of every source, in every
// state, a few overdue (when the demo was built for now); two quarterly
// checks published to the department heads, sampling at least 30 % of
// the departments reproducibly, with a failing finding each that opened
// an item; six monthly reviews signed.
func checkRectification(t *testing.T, app *cli.App, sum *demo.Summary, live bool) {
	t.Helper()
	ctx := context.Background()
	leader := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Roles: []string{"leadership"}}}
	items, _, err := app.Rectify.ListItems(ctx, leader, rectify.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != sum.Rectifications || len(items) < 17 {
		t.Fatalf("%d items, the summary says %d", len(items), sum.Rectifications)
	}
	kinds, states, overdue := map[string]int{}, map[string]int{}, 0
	for _, it := range items {
		kinds[it.Kind]++
		states[it.Status]++
		if it.Overdue {
			overdue++
		}
	}
	for _, k := range rectify.Kinds {
		if kinds[k] == 0 {
			t.Errorf("no item from %s: %v", k, kinds)
		}
	}
	for _, s := range rectify.Statuses {
		if states[s] == 0 {
			t.Errorf("no item %s: %v", s, states)
		}
	}
	if live && overdue < 2 {
		t.Errorf("%d items overdue, want a few", overdue)
	}
	runs, err := app.Rectify.ListRuns(ctx, leader)
	if err != nil || len(runs) != 2 || sum.QuarterlyChecks != 2 {
		t.Fatalf("quarterly checks: %d (%d), %v", len(runs), sum.QuarterlyChecks, err)
	}
	for _, r := range runs {
		if r.Status != rectify.RunPublished || r.SampledShare < 0.3 || r.Summary.Failed == 0 ||
			len(rectify.Sample(r.Seed, r.Departments)) != len(r.Sampled) {
			t.Errorf("run %+v", r)
		}
		whole, err := app.Rectify.GetRun(ctx, leader, r.ID)
		if err != nil || len(whole.Recipients) == 0 {
			t.Errorf("run %s: recipients %+v, %v", r.Quarter, whole, err)
		}
	}
	reviews, err := app.Rectify.ListReviews(ctx, leader)
	if err != nil || len(reviews) != sum.Reviews || sum.Reviews < 5 {
		t.Errorf("reviews: %d (%d), %v", len(reviews), sum.Reviews, err)
	}
}
