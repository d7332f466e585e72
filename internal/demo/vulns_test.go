package demo_test

import (
	"context"
	"slices"
	"testing"

	"medguard"
	"medguard/internal/assets"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/detect"
	"medguard/internal/vulns"
)

// checkVulns checks, as the security office sees them, the asset register
// and the year of scans the demo made (issue 13): the register with
// equipment past its end of support and a retired server; vulnerabilities
// in every state, proposals, a reopening, overdue ones alerted; the
// suspension of exports, ended by the fix; the assets not scanned within
// the week. Without live, the real time is not the demo's, and only what
// does not depend on it is checked.
func checkVulns(t *testing.T, app *cli.App, sum *demo.Summary, live bool) {
	t.Helper()
	ctx := context.Background()
	officer := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Department: "ITD",
		Roles: []string{"security_officer"}}}
	as, _, err := app.Assets.List(ctx, officer, assets.Query{})
	if err != nil || len(as) != 13 || sum.Assets != 13 {
		t.Fatalf("%d assets (summary %d), %v", len(as), sum.Assets, err)
	}
	past, retired := 0, 0
	for _, a := range as {
		if a.PastEndOfSupport {
			past++
		}
		if a.Status == assets.Retired {
			retired++
		}
	}
	if live && past < 4 || retired != 1 {
		t.Errorf("%d past end of support, %d retired", past, retired)
	}
	vs, _, err := app.Vulns.List(ctx, officer, vulns.Query{})
	if err != nil || len(vs) < 30 || len(vs) != sum.Vulns {
		t.Fatalf("%d vulnerabilities (summary %d), %v", len(vs), sum.Vulns, err)
	}
	seen, proposed, overdue := map[string]int{}, 0, 0
	for _, v := range vs {
		seen[v.Status]++
		if v.ProposedFixedAt != nil {
			proposed++
		}
		if v.Overdue {
			overdue++
		}
	}
	for _, st := range vulns.Statuses {
		if seen[st] == 0 {
			t.Errorf("no vulnerability %s: %v", st, seen)
		}
	}
	if proposed == 0 || live && overdue == 0 {
		t.Errorf("%d proposed, %d overdue", proposed, overdue)
	}
	scans, err := app.Vulns.Scans(ctx, officer, vulns.ScanQuery{})
	if err != nil || len(scans) == 0 || sum.Scans < 200 {
		t.Fatalf("%d scans listed, %d imported, %v", len(scans), sum.Scans, err)
	}
	formats := map[string]bool{}
	reopened := 0
	for _, sc := range scans {
		formats[sc.Format] = true
		reopened += sc.Reopened
	}
	if reopened == 0 {
		t.Errorf("nothing reopened")
	}
	if !slices.Equal(sortedKeys(formats), []string{"csv", "openvas", "sarif", "trivy"}) {
		t.Errorf("formats %v", formats)
	}
	sps, err := app.Vulns.ListSuspensions(ctx, officer, false)
	if err != nil || len(sps) != 1 || sps[0].Active || sps[0].LiftReason != vulns.StatusFixed || sum.Suspensions != 1 {
		t.Errorf("suspensions %+v, %v", sps, err)
	}
	if got := app.Vulns.Suspended(); len(got) != 0 {
		t.Errorf("still suspended: %v", got)
	}
	alerts, _, err := app.Detect.Alerts(ctx, officer, detect.AlertQuery{Rule: vulns.OverdueRule, Limit: 200})
	if err != nil || len(alerts) == 0 {
		t.Errorf("%d overdue alerts, %v", len(alerts), err)
	}
	if live {
		late, err := app.Vulns.Cadence(ctx, officer, true)
		if err != nil || len(late) != 3 {
			t.Errorf("late assets %+v, %v", late, err)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
