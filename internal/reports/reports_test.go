package reports_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/reports"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

type fixture struct {
	clock *testkit.Clock
	db    *storage.DB
	log   *audit.Log
	gate  *gate.Gate
	id    *identity.Service
	svc   *reports.Service
	calls map[string]*medguard.Call
}

// setup builds the reports on SQLite, or PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set, with a leader (郑国华), a security officer
// (周强), an auditor (孙丽) and a doctor (张伟), the clock at start.
func setup(t *testing.T, start time.Time, src reports.Sources) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(start), calls: map[string]*medguard.Call{}}
	f.db = storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), reports.Schema())
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	f.gate = gate.New(f.log, f.clock)
	kr := keys.NewKeyring(f.db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	f.id = identity.New(f.db, f.gate, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.svc = f.service(src)
	adminID, err := f.id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	if _, err := f.id.CreateDepartment(ctx, admin, "CARD", "心内科"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhengguohua", "郑国华", "", policy.Leadership}, {"zhouqiang", "周强", "", policy.SecurityOfficer},
		{"sunli", "孙丽", "", policy.Auditor}, {"zhangwei", "张伟", "CARD", policy.Doctor},
	} {
		created, _, err := f.id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}, IP: "10.1.1.1"}
	}
	return f
}

// service makes another server's service on the same database.
func (f *fixture) service(src reports.Sources) *reports.Service {
	s := reports.New(f.db, f.gate, f.id, reports.Config{Hospital: "滨江市第一人民医院", Location: shanghai,
		RuleName: func(lang, rule string) string {
			if lang == "zh-CN" && rule == "bulk_read_user" {
				return "单用户批量查看患者数据"
			}
			return ""
		}})
	s.SetSources(src)
	return s
}

func wantKind(t *testing.T, err error, k medguard.Kind, field string) {
	t.Helper()
	var me *medguard.Error
	if !errors.As(err, &me) || me.Kind != k || me.Field != field {
		t.Fatalf("err = %v, want %s on %q", err, k, field)
	}
}

func (f *fixture) entries(t *testing.T, action string) []*audit.Entry {
	t.Helper()
	got, _, err := f.log.Search(context.Background(), audit.Query{Action: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []*audit.Entry
	for _, s := range got {
		out = append(out, s.Entry)
	}
	return out
}

// TestPeriodsOnAwkwardDates checks the periods around the year's end, a
// leap day and quarter boundaries, in the hospital's zone (UTC+8: 31
// December 16:30 UTC is already 1 January there).
func TestPeriodsOnAwkwardDates(t *testing.T) {
	cases := []struct {
		kind  string
		at    time.Time
		label string
		start string
		days  int
		last  string
	}{
		{reports.Monthly, time.Date(2026, 12, 31, 15, 59, 0, 0, time.UTC), "2026-12", "2026-12-01", 31, "2026-11"},
		{reports.Monthly, time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), "2027-01", "2027-01-01", 31, "2026-12"},
		{reports.Weekly, time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), "2026-W53", "2026-12-28", 7, "2026-W52"},
		{reports.Weekly, time.Date(2027, 1, 3, 16, 0, 0, 0, time.UTC), "2027-W01", "2027-01-04", 7, "2026-W53"},
		{reports.Quarterly, time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), "2027-Q1", "2027-01-01", 90, "2026-Q4"},
		{reports.Monthly, time.Date(2028, 2, 29, 12, 0, 0, 0, shanghai), "2028-02", "2028-02-01", 29, "2028-01"},
		{reports.Monthly, time.Date(2028, 3, 1, 0, 0, 0, 0, shanghai), "2028-03", "2028-03-01", 31, "2028-02"},
		{reports.Quarterly, time.Date(2028, 2, 29, 12, 0, 0, 0, shanghai), "2028-Q1", "2028-01-01", 91, "2027-Q4"},
		{reports.Quarterly, time.Date(2028, 4, 1, 0, 0, 0, 0, shanghai), "2028-Q2", "2028-04-01", 91, "2028-Q1"},
		{reports.Quarterly, time.Date(2028, 9, 30, 23, 59, 0, 0, shanghai), "2028-Q3", "2028-07-01", 92, "2028-Q2"},
		{reports.Weekly, time.Date(2028, 2, 29, 12, 0, 0, 0, shanghai), "2028-W09", "2028-02-28", 7, "2028-W08"},
	}
	for _, c := range cases {
		p := reports.PeriodOf(c.kind, c.at, shanghai)
		days := int(p.End.Sub(p.Start).Hours() / 24)
		if p.Label != c.label || p.Start.Format("2006-01-02") != c.start || days != c.days || p.Start.Location() != shanghai {
			t.Errorf("%s at %s: %s from %s, %d days; want %s from %s, %d days", c.kind, c.at, p.Label, p.Start, days, c.label, c.start, c.days)
		}
		if last := reports.LastComplete(c.kind, c.at, shanghai); last.Label != c.last || !last.End.Equal(p.Start) {
			t.Errorf("%s at %s: last complete %s ending %s, want %s ending %s", c.kind, c.at, last.Label, last.End, c.last, p.Start)
		}
		if n := p.Prev().Next(); n != p {
			t.Errorf("%s: prev then next is %v", p.Label, n)
		}
	}
	// Labels and days name the periods asked for; a period not begun is
	// refused, naming the field.
	now := time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC)
	for _, c := range []struct{ kind, v, label string }{
		{reports.Weekly, "2026-W53", "2026-W53"}, {reports.Weekly, "2026-W01", "2026-W01"}, {reports.Weekly, "2026-01-01", "2026-W01"},
		{reports.Monthly, "2026-02", "2026-02"}, {reports.Monthly, "", "2027-01"}, {reports.Quarterly, "2026-Q4", "2026-Q4"},
		{reports.Quarterly, "2026-11-30", "2026-Q4"},
	} {
		p, err := reports.ParsePeriod(c.kind, c.v, now, shanghai)
		if err != nil || p.Label != c.label {
			t.Errorf("ParsePeriod(%s, %q) = %s, %v; want %s", c.kind, c.v, p.Label, err, c.label)
		}
	}
	for _, c := range []struct{ kind, v, field string }{
		{"yearly", "", "kind"}, {reports.Monthly, "2027-02", "period"}, {reports.Monthly, "2026-13", "period"},
		{reports.Weekly, "2026-W54", "period"}, {reports.Quarterly, "2026-Q5", "period"}, {reports.Monthly, "2026-02-30", "period"},
		{reports.Monthly, "<script>", "period"},
	} {
		_, err := reports.ParsePeriod(c.kind, c.v, now, shanghai)
		wantKind(t, err, medguard.Invalid, c.field)
	}
}

// TestScheduleCatchesUpOnce drives the schedule with a fake clock across
// the year's end, a leap day and quarter boundaries: each kind's report is
// made once for its last complete period, by medguard itself, signed in
// the log by its PDF's SHA-256; a second server making the same report
// makes nothing; after downtime the missed report is made.
func TestScheduleCatchesUpOnce(t *testing.T) {
	pdfTools(t)
	ctx := context.Background()
	// Monday 28 December 2026, 00:05 in the hospital.
	f := setup(t, time.Date(2026, 12, 28, 0, 5, 0, 0, shanghai), allSources(fakes{}))
	var mailed []string
	f.svc.OnGenerated(func(_ context.Context, r reports.Report, pdf []byte) {
		if hexSum(pdf) != r.PDFSHA256 {
			t.Errorf("the hook got other bytes than %s", r.PDFSHA256)
		}
		mailed = append(mailed, r.Kind+" "+r.Label)
	})
	other := f.service(allSources(fakes{}))
	step := func(at time.Time, want ...string) {
		t.Helper()
		f.clock.Set(at)
		made, err := f.svc.CatchUp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range made {
			got = append(got, r.Kind+" "+r.Label)
			if r.Trigger != reports.Scheduled || r.GeneratedBy != "system" || r.Partial {
				t.Errorf("%s: %+v", r.Label, r)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("at %s made %v, want %v", at, got, want)
		}
		// Another server checking at the same time makes nothing.
		if again, err := other.CatchUp(ctx); err != nil || len(again) != 0 {
			t.Errorf("the second server made %v, %v", again, err)
		}
	}
	step(time.Date(2026, 12, 28, 0, 5, 0, 0, shanghai), "weekly 2026-W52", "monthly 2026-11", "quarterly 2026-Q3")
	step(time.Date(2026, 12, 28, 6, 0, 0, 0, shanghai))
	// New Year's Eve at 23:59 is still December; a minute later a month
	// and a quarter end (1 January 2027 is a Friday: no new week).
	step(time.Date(2026, 12, 31, 23, 59, 0, 0, shanghai))
	step(time.Date(2027, 1, 1, 0, 0, 30, 0, shanghai), "monthly 2026-12", "quarterly 2026-Q4")
	step(time.Date(2027, 1, 4, 0, 1, 0, 0, shanghai), "weekly 2026-W53")
	// Down from 5 January to 10 March: the missed reports of the last
	// complete periods are made on return.
	step(time.Date(2027, 3, 10, 9, 0, 0, 0, shanghai), "weekly 2027-W09", "monthly 2027-02")
	// The leap day: February 2028 has 29 days, and 1 April a quarter.
	step(time.Date(2028, 3, 1, 0, 0, 1, 0, shanghai), "weekly 2028-W08", "monthly 2028-02", "quarterly 2027-Q4")
	step(time.Date(2028, 4, 1, 0, 0, 1, 0, shanghai), "weekly 2028-W12", "monthly 2028-03", "quarterly 2028-Q1")
	if len(mailed) != 14 {
		t.Errorf("the hook was told of %d reports: %v", len(mailed), mailed)
	}

	list, _, err := f.svc.List(ctx, f.calls["sunli"], reports.Query{Kind: reports.Monthly})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 5 || list[0].Label != "2028-03" {
		t.Fatalf("monthly reports: %+v", list)
	}
	var feb reports.Report
	for _, r := range list {
		if r.Label == "2028-02" {
			feb = r
		}
	}
	if got := feb.PeriodEnd.Sub(feb.PeriodStart); got != 29*24*time.Hour {
		t.Errorf("February 2028 lasts %s", got)
	}
	// Each is signed: report.generate by the system, its target the PDF.
	signed := map[string]*audit.Entry{}
	for _, e := range f.entries(t, "report.generate") {
		if e.Actor != "system" || e.TargetType != "report_pdf" || e.Decision != audit.Allow {
			t.Errorf("entry %+v", e)
		}
		signed[e.TargetID] = e
	}
	if len(signed) != 14 {
		t.Errorf("%d report.generate entries, want 14", len(signed))
	}
	_, pdf, err := f.svc.Download(ctx, f.calls["zhengguohua"], feb.ID, reports.FormatPDF)
	if err != nil {
		t.Fatal(err)
	}
	if signed[hexSum(pdf)] == nil || hexSum(pdf) != feb.PDFSHA256 {
		t.Errorf("the downloaded PDF's SHA-256 %s is not the one signed", hexSum(pdf))
	}
	// Generating a period again as the schedule makes nothing.
	if r, err := other.GenerateAt(ctx, reports.PeriodOf(reports.Monthly, time.Date(2028, 2, 10, 0, 0, 0, 0, shanghai), shanghai),
		f.clock.Now()); r != nil || err != nil {
		t.Errorf("made %v, %v", r, err)
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestOnDemandReport: the leadership member generates this month's report
// (to date), reads it, downloads its HTML and PDF; the downloads are
// audited and the PDF's digest is the generation entry's target. A doctor
// is refused and logged; bad input changes nothing.
func TestOnDemandReport(t *testing.T) {
	pdfTools(t)
	ctx := context.Background()
	f := setup(t, time.Date(2026, 12, 6, 10, 0, 0, 0, shanghai), allSources(fakes{}))
	r, err := f.svc.Generate(ctx, f.calls["zhengguohua"], reports.Request{Kind: reports.Monthly})
	if err != nil {
		t.Fatal(err)
	}
	if r.Label != "2026-12" || !r.Partial || r.Trigger != reports.OnDemand || r.GeneratedBy != "zhengguohua" || r.Lang != "zh-CN" {
		t.Fatalf("report %+v", r)
	}
	got, err := f.svc.Get(ctx, f.calls["sunli"], r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Figures == nil || got.Figures.GeneratedBy != "郑国华" || len(got.Figures.Trend) != 12 || got.AuditIndex != r.AuditIndex {
		t.Fatalf("figures %+v", got)
	}
	_, html, err := f.svc.Download(ctx, f.calls["zhouqiang"], r.ID, reports.FormatHTML)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"安全态势月报", "郑国华", "<svg", "报告期尚未结束", got.ContentSHA256, "单用户批量查看患者数据"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
	if hexSum(html) != r.HTMLSHA256 {
		t.Error("the HTML's digest changed")
	}
	_, pdf, err := f.svc.Download(ctx, f.calls["zhengguohua"], r.ID, reports.FormatPDF)
	if err != nil {
		t.Fatal(err)
	}
	gen := f.entries(t, "report.generate")
	if len(gen) != 1 || gen[0].Actor != "zhengguohua" || gen[0].TargetID != hexSum(pdf) || gen[0].TargetType != "report_pdf" {
		t.Fatalf("generation entries %+v", gen)
	}
	if n := len(f.entries(t, "report.download")); n != 2 {
		t.Errorf("%d downloads logged, want 2", n)
	}
	// An English weekly report of a past week.
	en, err := f.svc.Generate(ctx, f.calls["zhouqiang"], reports.Request{Kind: reports.Weekly, Period: "2026-W48", Lang: "en"})
	if err != nil || en.Partial || en.Lang != "en" || en.Label != "2026-W48" {
		t.Fatalf("%+v, %v", en, err)
	}

	// Refusals: logged, nothing made.
	_, err = f.svc.Generate(ctx, f.calls["zhangwei"], reports.Request{Kind: reports.Monthly})
	wantKind(t, err, medguard.Forbidden, "")
	_, err = f.svc.Generate(ctx, f.calls["sunli"], reports.Request{Kind: reports.Monthly})
	wantKind(t, err, medguard.Forbidden, "")
	_, _, err = f.svc.Download(ctx, f.calls["zhangwei"], r.ID, reports.FormatPDF)
	wantKind(t, err, medguard.Forbidden, "")
	_, _, err = f.svc.List(ctx, f.calls["zhangwei"], reports.Query{})
	wantKind(t, err, medguard.Forbidden, "")
	denied := 0
	for _, a := range []string{"report.generate", "report.download", "report.list"} {
		for _, e := range f.entries(t, a) {
			if e.Decision == audit.Deny {
				denied++
				if e.Actor != "zhangwei" && e.Actor != "sunli" {
					t.Errorf("denied entry of %s", e.Actor)
				}
			}
		}
	}
	if denied != 4 {
		t.Errorf("%d refusals logged, want 4", denied)
	}
	_, err = f.svc.Generate(ctx, f.calls["zhengguohua"], reports.Request{Kind: "daily"})
	wantKind(t, err, medguard.Invalid, "kind")
	_, err = f.svc.Generate(ctx, f.calls["zhengguohua"], reports.Request{Kind: reports.Monthly, Period: "2027-01"})
	wantKind(t, err, medguard.Invalid, "period")
	_, err = f.svc.Generate(ctx, f.calls["zhengguohua"], reports.Request{Kind: reports.Monthly, Lang: "fr"})
	wantKind(t, err, medguard.Invalid, "lang")
	_, _, err = f.svc.Download(ctx, f.calls["zhengguohua"], r.ID, "docx")
	wantKind(t, err, medguard.Invalid, "format")
	_, _, err = f.svc.Download(ctx, f.calls["zhengguohua"], medguard.NewID(f.clock.Now()), reports.FormatPDF)
	wantKind(t, err, medguard.NotFound, "")
	_, err = f.svc.Get(ctx, f.calls["zhengguohua"], "../../etc/passwd")
	wantKind(t, err, medguard.NotFound, "")
	list, _, err := f.svc.List(ctx, f.calls["zhengguohua"], reports.Query{})
	if err != nil || len(list) != 2 {
		t.Fatalf("%d reports, %v", len(list), err)
	}
	// Without the font nothing is stored; the failure is logged, and says
	// what to install.
	nofont := reports.New(f.db, f.gate, f.id, reports.Config{Location: shanghai, FontPath: "/nonexistent/DroidSansFallbackFull.ttf"})
	nofont.SetSources(allSources(fakes{}))
	_, err = nofont.Generate(ctx, f.calls["zhengguohua"], reports.Request{Kind: reports.Weekly})
	var me *medguard.Error
	if !errors.As(err, &me) || me.Kind != medguard.Internal || me.Code != "report_font_missing" || !strings.Contains(me.Message, "fonts-droid-fallback") {
		t.Fatalf("without the font: %v", err)
	}
	failed := 0
	for _, e := range f.entries(t, "report.generate") {
		if e.Outcome == audit.Failed {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed generations logged, want 1", failed)
	}
	// Mailing is recorded.
	if err := f.svc.Mailed(ctx, r.ID, 2, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = f.svc.Get(ctx, f.calls["zhengguohua"], r.ID)
	if got.MailedAt == nil || len(f.entries(t, "report.mail")) != 1 {
		t.Errorf("mailing not recorded: %+v", got)
	}
}

// TestFiguresOnFixedData computes a quarterly report on fixed figures and
// checks each: the families of the rules, the grades, the open
// vulnerabilities by severity and age, the training coverage, the last
// compliance score before each quarter's end, the risks; without the
// compliance and rectification registers the report says so.
func TestFiguresOnFixedData(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2027, 1, 1, 0, 30, 0, 0, shanghai)
	p := reports.LastComplete(reports.Quarterly, now, shanghai)
	scores := []reports.ComplianceScore{
		{At: time.Date(2026, 5, 20, 0, 0, 0, 0, shanghai), Score: 60, Passed: 18, Failed: 12, Total: 30},
		{At: time.Date(2026, 11, 2, 0, 0, 0, 0, shanghai), Score: 80, Passed: 24, Failed: 6, Total: 30},
		{At: time.Date(2026, 12, 31, 23, 0, 0, 0, shanghai), Score: 90, Passed: 27, Failed: 3, Total: 30},
	}
	fx := fixed{}
	f, err := reports.Compute(ctx, reports.Sources{Alerts: fx, Incidents: fx, Vulns: fx, Training: fx, Risks: fx, Compliance: fakes{scores: scores}},
		"滨江市第一人民医院", "zh-CN", p, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Label != "2026-Q4" || f.Partial || len(f.Trend) != 8 || f.Trend[0].Label != "2025-Q1" || f.Current.Label != "2026-Q4" {
		t.Fatalf("period %s, %d periods from %s", p.Label, len(f.Trend), f.Trend[0].Label)
	}
	c := f.Current
	want := map[string]int{"access": 5 + 2, "signin": 3, "deadline": 4 + 1, "other": 1}
	for _, a := range c.Alerts {
		if a.Count != want[a.Name] {
			t.Errorf("family %s: %d, want %d", a.Name, a.Count, want[a.Name])
		}
	}
	if c.AlertsTotal != 16 || f.AlertRules[0].Name != "bulk_read_user" || f.AlertRules[0].Count != 5 {
		t.Errorf("alerts %d, rules %v", c.AlertsTotal, f.AlertRules)
	}
	if c.Incidents != [3]int{1, 0, 4} || c.IncidentsTotal != 5 {
		t.Errorf("incidents %v (grade 7 is not counted)", c.Incidents)
	}
	// Open at the quarter's end: critical 3 days old (overdue), high 20
	// days, medium 45 and 200 days (one overdue), low 100 days.
	if c.VulnsOpenTotal != 5 || c.VulnsOpen[0].Count != 1 || c.VulnsOpen[2].Count != 2 || f.VulnsOverdue != 2 {
		t.Errorf("vulns %v, overdue %d", c.VulnsOpen, f.VulnsOverdue)
	}
	ages := map[string][]int{}
	for _, r := range f.VulnAges {
		ages[r.Bucket] = r.Counts
	}
	if ages["0-7"][0] != 1 || ages["8-30"][1] != 1 || ages["31-90"][2] != 1 || ages["90+"][2] != 1 || ages["90+"][3] != 1 {
		t.Errorf("ages %v", ages)
	}
	if c.TrainingCoverage != 86 || f.TrainingStaff != 46 || f.TrainingCurrent != 40 {
		t.Errorf("training %d%% (%d/%d)", c.TrainingCoverage, f.TrainingCurrent, f.TrainingStaff)
	}
	// The compliance score of a quarter is the last run before its end.
	byLabel := map[string]*int{}
	for _, q := range f.Trend {
		byLabel[q.Label] = q.Compliance
	}
	if byLabel["2026-Q1"] != nil || *byLabel["2026-Q2"] != 60 || *byLabel["2026-Q3"] != 60 || *byLabel["2026-Q4"] != 90 {
		t.Errorf("compliance by quarter: %v", byLabel)
	}
	if f.Compliance == nil || f.Compliance.Score != 90 || !f.ComplianceWired {
		t.Errorf("compliance %+v", f.Compliance)
	}
	if c.RisksTotal != 6 || c.Risks[3].Name != "critical" || c.Risks[3].Count != 1 {
		t.Errorf("risks %v", c.Risks)
	}
	if f.Rectification != nil || f.Continuity != nil {
		t.Error("figures of registers not wired")
	}
	// Without the compliance register: "no compliance runs yet".
	f2, err := reports.Compute(ctx, reports.Sources{Alerts: fx}, "滨江市第一人民医院", "zh-CN", p, now)
	if err != nil {
		t.Fatal(err)
	}
	html, err := f2.HTML(shanghai, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"暂无合规检查记录", "未接入整改登记", "访问异常"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
	if f2.Current.TrainingCoverage != -1 || f2.ComplianceWired {
		t.Errorf("unwired: %+v", f2.Current)
	}
}

// fixed are figures that do not change with the period.
type fixed struct{}

func (fixed) AlertsByRule(context.Context, time.Time, time.Time) (map[string]int, error) {
	return map[string]int{"bulk_read_user": 5, "off_hours_read": 2, "failed_signin_ip": 3, "vuln_overdue": 4,
		"inspection_missed": 1, "anonymous_report_received": 1}, nil
}

func (fixed) IncidentsByGrade(context.Context, time.Time, time.Time) (map[int]int, error) {
	return map[int]int{1: 1, 3: 4, 7: 2}, nil
}

func (fixed) OpenVulnsAt(_ context.Context, at time.Time) ([]reports.OpenVuln, error) {
	day := 24 * time.Hour
	return []reports.OpenVuln{
		{Severity: "critical", FirstSeen: at.Add(-3 * day), DueAt: at.Add(-day)},
		{Severity: "high", FirstSeen: at.Add(-20 * day), DueAt: at.Add(day)},
		{Severity: "medium", FirstSeen: at.Add(-45 * day), DueAt: at.Add(-38 * day)},
		{Severity: "medium", FirstSeen: at.Add(-200 * day)},
		{Severity: "low", FirstSeen: at.Add(-100 * day), DueAt: at.Add(day)},
		{Severity: "informational", FirstSeen: at.Add(-100 * day)},
	}, nil
}

func (fixed) CoverageAt(context.Context, time.Time) (int, int, error) { return 46, 40, nil }

func (fixed) RiskLevelsAt(context.Context, time.Time) (map[string]int, error) {
	return map[string]int{"low": 2, "medium": 2, "high": 1, "critical": 1}, nil
}
