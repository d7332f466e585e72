package cli

import (
	"context"
	"os"
	"testing"
	"time"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/policy"
	"medguard/internal/reports"
	"medguard/internal/risks"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// complianceRuns is the compliance history as the compliance register
// will hand it over.
type complianceRuns []reports.ComplianceScore

func (c complianceRuns) ComplianceScores(context.Context, time.Time, time.Time) ([]reports.ComplianceScore, error) {
	return c, nil
}

type rectification reports.RectificationFigures

func (r rectification) RectificationAt(context.Context, time.Time, time.Time) (reports.RectificationFigures, error) {
	return reports.RectificationFigures(r), nil
}

// TestReportFiguresFromTheRegisters fills the registers of a fresh
// installation (SQLite, or PostgreSQL with MEDGUARD_TEST_POSTGRES) with
// fixed data through their services — alerts, incidents of two grades,
// risks owned by 吴燕 — and checks the month's report counts them through
// the App's adapters, as the registers say; the compliance history and
// the rectification register, once wired, come in too.
func TestReportFiguresFromTheRegisters(t *testing.T) {
	if _, err := os.Stat(reports.DefaultFont); err != nil {
		if os.Getenv("MEDGUARD_TEST_PDF") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx := context.Background()
	cst := time.FixedZone("CST", 8*3600)
	clock := testkit.NewClock(time.Date(2026, 12, 6, 10, 0, 0, 0, cst))
	cfg := Config{DataDir: t.TempDir(), Clock: clock, Identity: identity.Config{Location: cst,
		Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1}}, Reports: ReportsConfig{Hospital: "滨江市第一人民医院"}}
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		cfg.DB = storagetest.FreshSchema(t, dsn)
	}
	a, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	adminID, err := a.Identity.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	if _, err := a.Identity.CreateDepartment(ctx, admin, "ITD", "信息科"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Identity.CreateUser(ctx, admin, identity.NewUser{Username: "wuyan", DisplayName: "吴燕", Department: "ITD",
		Roles: []string{policy.ITEngineer}, Password: "Yiyuan#Ceshi2026"}); err != nil {
		t.Fatal(err)
	}
	// The policy decides on the call: the officer is named directly.
	officer := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: "zhouqiang",
		Department: "ITD", Roles: []string{policy.SecurityOfficer}}, IP: "10.1.1.1"}

	for _, n := range []struct{ rule, key string }{{"vuln_overdue", "v1"}, {"vuln_overdue", "v2"}, {"inspection_missed", "2026-12-05"}} {
		if err := a.Detect.RaiseNotice(ctx, n.rule, n.key, "逾期"); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []incidents.NewIncident{
		{Title: "门诊挂号缓慢", Description: "门诊挂号系统响应缓慢", Grade: 3, Criterion: "minor_fault"},
		{Title: "打印机故障", Description: "住院部打印机故障", Grade: 3, Criterion: "minor_fault"},
		{Title: "心内科病案系统无法访问", Description: "影响门诊", Facts: &incidents.Facts{DepartmentsAffected: 1, DepartmentsTotal: 30}},
	} {
		if _, err := a.Incidents.Report(ctx, officer, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct{ l, i int }{{5, 5}, {2, 2}} {
		if _, err := a.Risks.CreateRisk(ctx, officer, risks.NewRisk{Title: "核心数据库单点故障", AssetName: "电子病历数据库服务器",
			Threat: "硬件故障", Vulnerability: "无热备节点", Likelihood: r.l, Impact: r.i, Treatment: risks.Reduce,
			TreatmentPlan: "建设双机热备，吴燕负责", Owner: "wuyan"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour)

	r, err := a.Reports.Generate(ctx, officer, reports.Request{Kind: reports.Monthly})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Reports.Get(ctx, officer, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	f := got.Figures
	c := f.Current
	families := map[string]int{}
	for _, x := range c.Alerts {
		families[x.Name] = x.Count
	}
	// Each incident reported raises its own alert (incident_reported).
	if c.AlertsTotal != 6 || families[reports.FamilyDeadline] != 3 || families[reports.FamilyOther] != 3 || len(f.AlertRules) != 3 ||
		f.AlertRules[0].Name != "incident_reported" || f.AlertRules[1].Name != "vuln_overdue" || f.AlertRules[1].Count != 2 ||
		f.AlertRules[1].Title != "漏洞逾期未修复" {
		t.Errorf("alerts %d %v %+v", c.AlertsTotal, families, f.AlertRules)
	}
	if c.Incidents != [3]int{0, 1, 2} {
		t.Errorf("incidents %v", c.Incidents)
	}
	levels := map[string]int{}
	for _, x := range c.Risks {
		levels[x.Name] = x.Count
	}
	if c.RisksTotal != 2 || levels["critical"] != 1 || levels["low"] != 1 {
		t.Errorf("risks %v", levels)
	}
	sum, err := a.Training.Summarise(ctx, officer)
	if err != nil {
		t.Fatal(err)
	}
	if f.TrainingStaff != sum.Staff || f.TrainingCurrent != sum.Current || c.TrainingCoverage != sum.Coverage {
		t.Errorf("training %d/%d (%d%%), the register says %d/%d (%d%%)", f.TrainingCurrent, f.TrainingStaff, c.TrainingCoverage,
			sum.Current, sum.Staff, sum.Coverage)
	}
	// The compliance checks and the rectification register are wired in
	// (no run yet, no item).
	if c.VulnsOpenTotal != 0 || f.Continuity == nil || f.Continuity.BackupsConfigured || !f.ComplianceWired || f.Rectification == nil ||
		*f.Rectification != (reports.RectificationFigures{}) {
		t.Errorf("figures %+v", f)
	}
	// Last month had none of it.
	if prev := f.Trend[len(f.Trend)-2]; prev.AlertsTotal != 0 || prev.IncidentsTotal != 0 || prev.RisksTotal != 0 || prev.Label != "2026-11" {
		t.Errorf("November %+v", prev)
	}

	a.SetReportRegisters(complianceRuns{{At: clock.Now().Add(-24 * time.Hour), Score: 83, Passed: 25, Failed: 5, Total: 30}},
		rectification{Open: 5, Overdue: 1, Opened: 3, Closed: 2})
	r2, err := a.Reports.Generate(ctx, officer, reports.Request{Kind: reports.Monthly, Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = a.Reports.Get(ctx, officer, r2.ID)
	if f := got.Figures; f.Compliance == nil || f.Compliance.Score != 83 || f.Rectification == nil || f.Rectification.Open != 5 ||
		f.Current.Compliance == nil || *f.Current.Compliance != 83 {
		t.Errorf("wired registers: %+v", f)
	}
}
