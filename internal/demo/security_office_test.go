package demo_test

import (
	"context"
	"testing"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/incidents"
)

// checkSecurityOffice checks, as the security office and the auditors see
// them, the demo's incidents, cases and reports (issue 13): every incident
// typed and commanded by the role its grade calls for, its steps confirmed
// by a second officer (but for yesterday's open one), the closed ones'
// files and actions verified; a doctor warned and then sanctioned a
// month's pay as a repeat offence; a case dismissed; two anonymous
// reports, one of them waiting.
func checkSecurityOffice(t *testing.T, app *cli.App, sum *demo.Summary) {
	t.Helper()
	ctx := context.Background()
	probe := func(roles ...string) *medguard.Call {
		return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Roles: roles}}
	}
	so, auditor := probe("security_officer"), probe("auditor")
	list, _, err := app.Incidents.List(ctx, so, "all", "", 50)
	if err != nil {
		t.Fatal(err)
	}
	var mine []incidents.Incident
	for _, in := range list {
		if in.Source == incidents.SourceReport {
			mine = append(mine, in)
		}
	}
	if len(mine) != 5 || sum.Incidents != 5 {
		t.Fatalf("%d incidents reported, summary %d", len(mine), sum.Incidents)
	}
	open, files := 0, 0
	for _, in := range mine {
		full, err := app.Incidents.Get(ctx, so, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		u, err := app.Identity.UserByUsername(ctx, full.Commander)
		if err != nil || !slicesHasAny(u.Roles, incidents.CommanderRoles[full.Grade]) || full.Type == "" || full.Type == incidents.TypeOther {
			t.Errorf("incident %q: commander %q (%v), type %s", full.Title, full.Commander, err, full.Type)
		}
		files += len(full.Files)
		if full.Status == incidents.Open {
			open++
			if full.UnconfirmedSteps != 1 {
				t.Errorf("the open incident has %d unconfirmed steps", full.UnconfirmedSteps)
			}
			continue
		}
		for _, tl := range full.Timeline {
			if tl.Step && (tl.ConfirmedBy == "" || tl.ConfirmedBy == tl.By) {
				t.Errorf("%q: step %s confirmed by %q", full.Title, tl.Kind, tl.ConfirmedBy)
			}
		}
		for _, a := range full.Actions {
			if a.State != incidents.ActionVerified || a.UpdatedBy == a.DoneBy {
				t.Errorf("%q: action %+v", full.Title, a)
			}
		}
	}
	if open != 1 || files != 3 {
		t.Errorf("%d open, %d files", open, files)
	}
	cases, _, err := app.Incidents.ListCases(ctx, auditor, "all", "", 50)
	if err != nil || len(cases) != 3 || sum.Cases != 3 {
		t.Fatalf("%d cases: %v", len(cases), err)
	}
	sanctions := map[string]bool{}
	for _, c := range cases {
		sanctions[c.Sanction] = true
		if c.Sanction == incidents.SanctionPayMonth {
			full, err := app.Incidents.GetCase(ctx, probe("auditor"), c.ID)
			if err != nil || full.Proposal == nil || !full.Proposal.Repeat || full.Proposal.Sanction != incidents.SanctionPayMonth {
				t.Errorf("the repeat offence: %+v %v", full, err)
			}
		}
	}
	if !sanctions[incidents.SanctionWarning] || !sanctions[incidents.SanctionPayMonth] || !sanctions[""] {
		t.Errorf("sanctions %v", sanctions)
	}
	reports, _, err := app.Incidents.ListReports(ctx, so, "all", "", 50)
	if err != nil || len(reports) != 2 || sum.Reports != 2 {
		t.Fatalf("%d reports: %v", len(reports), err)
	}
	waiting := 0
	for _, r := range reports {
		if r.Status == incidents.ReportNew {
			waiting++
		} else if r.Status != incidents.ReportClosed || r.MessageCount != 4 {
			t.Errorf("report %+v", r)
		}
	}
	if waiting != 1 {
		t.Errorf("%d reports waiting", waiting)
	}
}

func slicesHasAny(have, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}
