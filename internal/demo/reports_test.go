package demo_test

import (
	"context"
	"os"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/reports"
)

// checkPostureReports checks the leadership's posture reports the demo
// made (issue 14): the last weeks', months' and quarters' reports, made
// by the schedule (the system), complete, each signed by a report.generate
// entry naming its PDF, the newest of each kind the last complete period
// before the demo's end in Beijing. Without the report font the demo
// makes none (unless MEDGUARD_TEST_PDF=1, which requires the font).
func checkPostureReports(t *testing.T, app *cli.App, sum *demo.Summary, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := app.Reports.CheckFont(); err != nil {
		if os.Getenv("MEDGUARD_TEST_PDF") == "1" {
			t.Fatal(err)
		}
		if sum.PostureReports != 0 {
			t.Errorf("%d reports without a font", sum.PostureReports)
		}
		return
	}
	leader := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Roles: []string{"leadership"}}}
	list, _, err := app.Reports.List(ctx, leader, reports.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != sum.PostureReports || len(list) < 8+10+3 {
		t.Fatalf("%d reports listed, %d made", len(list), sum.PostureReports)
	}
	cst := time.FixedZone("CST", 8*60*60)
	newest := map[string]string{}
	for _, r := range list {
		if r.Trigger != reports.Scheduled || r.GeneratedBy != "system" || r.Partial || r.PDFSize == 0 || r.AuditIndex == 0 {
			t.Errorf("report %+v", r)
		}
		if r.Label > newest[r.Kind] {
			newest[r.Kind] = r.Label
		}
	}
	for _, k := range reports.Kinds {
		if want := reports.LastComplete(k, now, cst).Label; newest[k] != want {
			t.Errorf("the newest %s report is %s, want %s", k, newest[k], want)
		}
	}
	entries, _, err := app.Log.Search(ctx, audit.Query{Action: "report.generate", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	signed := map[string]bool{}
	for _, e := range entries {
		signed[e.Entry.TargetID] = e.Entry.Actor == "system" && e.Entry.TargetType == "report_pdf"
	}
	for _, r := range list {
		if !signed[r.PDFSHA256] {
			t.Errorf("report %s %s is not signed in the log", r.Kind, r.Label)
		}
	}
}
