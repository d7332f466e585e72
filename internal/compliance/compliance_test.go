package compliance_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/compliance"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/medguardtest"
	"medguard/internal/policy"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// start is 29 February 2028, 23:40 in Beijing (still the 29th in UTC):
// a leap day at the end of a month.
var start = time.Date(2028, 2, 29, 15, 40, 0, 0, time.UTC)

var beijing = time.FixedZone("CST", 8*3600)

type fixture struct {
	clock *testkit.Clock
	db    *storage.DB
	log   *audit.Log
	svc   *compliance.Service
	src   *fakeSources
	rect  *fakeRectifier
	calls map[string]*medguard.Call
	// alerts raised and resolved through the hooks, by check.
	raised, resolved []string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(start), calls: map[string]*medguard.Call{}}
	f.db = storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), compliance.Schema())
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	kr := keys.NewKeyring(f.db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	id := identity.New(f.db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.svc = compliance.New(f.db, g, kr, id, compliance.Config{Location: beijing})
	f.src = passing(start)
	f.svc.SetSources(f.src.sources())
	f.rect = &fakeRectifier{}
	f.svc.SetRectifier(f.rect)
	f.svc.OnFailing(func(_ context.Context, fd compliance.Finding) { f.raised = append(f.raised, fd.CheckID) })
	f.svc.OnPassing(func(_ context.Context, id string) { f.resolved = append(f.resolved, id) })
	adminID, err := id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	if _, err := id.CreateDepartment(ctx, admin, "CARD", "心内科"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhouqiang", "周强", "", policy.SecurityOfficer}, {"zhouqiang2", "周敏", "", policy.SecurityOfficer},
		{"wuyan", "吴燕", "", policy.ITEngineer}, {"zhengguohua", "郑国华", "", policy.Leadership},
		{"sunli", "孙丽", "", policy.Auditor}, {"zhangwei", "张伟", "CARD", policy.Doctor},
	} {
		created, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}, IP: "10.1.1.1"}
	}
	return f
}

// fresh makes the backups as recent as the clock.
func (f *fixture) fresh() {
	last := f.clock.Now().Add(-5 * time.Minute)
	for i := range f.src.backups.Targets {
		f.src.backups.Targets[i].LastBackup = &last
	}
}

type fakeRectifier struct{ findings []compliance.Finding }

func (r *fakeRectifier) OpenForCheck(_ context.Context, f compliance.Finding) error {
	r.findings = append(r.findings, f)
	return nil
}

// fakeSources are the registers as the measures see them, by default a
// hospital where everything holds.
type fakeSources struct {
	accounts    []compliance.Account
	keys        []compliance.APIKey
	columns     []compliance.ColumnScan
	links       []compliance.Link
	audit       compliance.AuditState
	siem        compliance.SIEMState
	backups     compliance.BackupState
	vulns       []compliance.Overdue
	standings   []compliance.Standing
	breakGlass  []compliance.Overdue
	archives    []compliance.Overdue
	rec         *compliance.Reconciliation
	days        []compliance.InspectionDay
	risks       []compliance.Overdue
	plans       []compliance.Overdue
	cadences    []compliance.DrillCadence
	auditErr    error
	verifyCalls int
}

func passing(now time.Time) *fakeSources {
	year := now.AddDate(-1, 0, 0)
	recent := now.Add(-48 * time.Hour)
	last := now.Add(-5 * time.Minute)
	f := &fakeSources{
		accounts: []compliance.Account{
			{ID: "u1", Username: "zhouqiang", DisplayName: "周强", Roles: []string{"security_officer"}, Active: true, CreatedAt: year, TOTP: true, LastSignIn: &recent},
			{ID: "u2", Username: "zhangwei", DisplayName: "张伟", Department: "CARD", Roles: []string{"doctor"}, Active: true, CreatedAt: year, LastSignIn: &recent},
			{ID: "u3", Username: "lina", DisplayName: "李娜", Department: "CARD", Roles: []string{"nurse"}, Active: false, CreatedAt: year,
				DeactivatedAt: &recent},
			{ID: "u4", Username: "wangfang", DisplayName: "王芳", Department: "CARD", Roles: []string{"nurse"}, Active: true, CreatedAt: year, LastActive: &recent},
		},
		keys:    []compliance.APIKey{{ID: "k1", Name: "his-push", Status: "active", OwnerID: "u1", OwnerUsername: "zhouqiang", OwnerActive: true}},
		columns: []compliance.ColumnScan{{Table: "patients", Column: "name", Values: 40, Sealed: 40}, {Table: "record_versions", Column: "body", Values: 120, Sealed: 120}},
		links: []compliance.Link{{Name: "api", Target: ":8443", Protocol: "TLS 1.3", Encrypted: true},
			{Name: "siem", Target: "siem.yiyuan.cn:6514", Protocol: "TLS 1.3", Encrypted: true}},
		audit: compliance.AuditState{Verified: true, VerifiedAt: now, Size: 1234, RetentionDays: 180},
		siem:  compliance.SIEMState{Configured: true, Destination: "siem.yiyuan.cn:6514", Connected: true, Lag: 3},
		backups: compliance.BackupState{Configured: true, Copies: 3, Media: 2, OffSite: 1, Met321: true,
			Targets: []compliance.BackupTarget{{URL: "/srv/backup", Media: "disk", LastBackup: &last},
				{URL: "s3://bak/medguard?endpoint=oss.yiyuan.cn", Media: "object", OffSite: true, LastBackup: &last}},
			LastDrill: &compliance.RestoreDrill{ID: "d1", At: now.Add(-72 * time.Hour), OK: true, RTOMet: true}},
		standings: []compliance.Standing{{UserID: "u1", Username: "zhouqiang", DisplayName: "周强", Current: true},
			{UserID: "u2", Username: "zhangwei", DisplayName: "张伟", Department: "CARD", Current: true}},
		rec:      &compliance.Reconciliation{Day: "2028-02-29", Rate: 100, Folders: 12, Inpatients: 12, Matched: 12},
		days:     []compliance.InspectionDay{{Day: "2028-02-28", Status: compliance.DaySigned}, {Day: "2028-02-27", Status: compliance.DaySigned}},
		cadences: []compliance.DrillCadence{{Kind: "ransomware", Started: true, Missed: []string{}}},
	}
	return f
}

func (f *fakeSources) sources() compliance.Sources {
	return compliance.Sources{Staff: f, Fields: f, Links: f, Audit: f, SIEM: f, Backups: f, Registers: f}
}

func (f *fakeSources) Accounts(context.Context) ([]compliance.Account, error) { return f.accounts, nil }
func (f *fakeSources) APIKeys(context.Context) ([]compliance.APIKey, error)   { return f.keys, nil }
func (f *fakeSources) ScanSealed(context.Context) ([]compliance.ColumnScan, error) {
	return f.columns, nil
}
func (f *fakeSources) Links(context.Context) ([]compliance.Link, error) { return f.links, nil }
func (f *fakeSources) VerifyAudit(context.Context) (compliance.AuditState, error) {
	f.verifyCalls++
	return f.audit, f.auditErr
}
func (f *fakeSources) SIEMState(context.Context) (compliance.SIEMState, error) { return f.siem, nil }
func (f *fakeSources) BackupState(context.Context) (compliance.BackupState, error) {
	return f.backups, nil
}
func (f *fakeSources) OverdueVulns(context.Context, time.Time) ([]compliance.Overdue, error) {
	return f.vulns, nil
}
func (f *fakeSources) TrainingStandings(context.Context) ([]compliance.Standing, error) {
	return f.standings, nil
}
func (f *fakeSources) OverdueBreakGlass(context.Context, time.Time) ([]compliance.Overdue, error) {
	return f.breakGlass, nil
}
func (f *fakeSources) LateArchives(context.Context, time.Time, time.Time) ([]compliance.Overdue, error) {
	return f.archives, nil
}
func (f *fakeSources) LatestReconciliation(context.Context) (*compliance.Reconciliation, error) {
	return f.rec, nil
}
func (f *fakeSources) InspectionDays(context.Context, int) ([]compliance.InspectionDay, error) {
	return f.days, nil
}
func (f *fakeSources) OverdueRiskReviews(context.Context, time.Time) ([]compliance.Overdue, error) {
	return f.risks, nil
}
func (f *fakeSources) OverduePlanReviews(context.Context, time.Time) ([]compliance.Overdue, error) {
	return f.plans, nil
}
func (f *fakeSources) DrillCadences(context.Context) ([]compliance.DrillCadence, error) {
	return f.cadences, nil
}

func result(t *testing.T, run *compliance.Run, id string) compliance.Result {
	t.Helper()
	for _, r := range run.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result %s", id)
	return compliance.Result{}
}

// TestCatalogue: every measured check has a measure and every measure a
// catalogue entry; clause ids are well-formed; a malformed catalogue is
// refused.
func TestCatalogue(t *testing.T) {
	c := compliance.DefaultCatalogue()
	measured := map[string]bool{}
	attested := 0
	for _, ch := range c.Checks {
		switch ch.Kind {
		case compliance.Measured:
			measured[ch.ID] = true
		case compliance.Attested:
			attested++
		}
	}
	ids := compliance.MeasureIDs()
	for _, id := range ids {
		if !measured[id] {
			t.Errorf("measure %s has no measured catalogue entry", id)
		}
	}
	if len(ids) != len(measured) {
		t.Errorf("%d measures for %d measured checks", len(ids), len(measured))
	}
	if len(measured) < 24 || attested < 5 {
		t.Errorf("%d measured and %d attested checks", len(measured), attested)
	}
	for _, bad := range []string{
		"version: x\nchecks:\n- {id: a_b, kind: measured, title: {zh: 甲, en: A}, how: {zh: 甲, en: A}, threshold: {zh: 0, en: '0'}, clauses: ['GB/T 22239-2019 8.1.4']}\n",
		"version: x\nchecks:\n- {id: a_b, kind: measured, title: {zh: 甲, en: A}, how: {zh: 甲, en: A}, threshold: {zh: 0, en: '0'}, clauses: ['GB/T 39786-2021 8.4 z']}\n",
		"version: x\nchecks:\n- {id: a_b, kind: measured, title: {zh: 甲, en: A}, how: {zh: 甲, en: A}, threshold: {zh: 0, en: '0'}, clauses: ['ISO 27001']}\n",
		"version: x\nchecks:\n- {id: a_b, kind: guessed, title: {zh: 甲, en: A}, how: {zh: 甲, en: A}, threshold: {zh: 0, en: '0'}, clauses: ['seed 003 §4.2']}\n",
		"version: x\nchecks:\n- {id: a_b, kind: attested, title: {zh: 甲, en: A}, how: {zh: 甲, en: A}, threshold: {zh: 0, en: '0'}, clauses: ['seed 003 §4.2']}\n",
		"version: x\nchecks:\n- {id: a_b, kind: measured, title: {zh: 甲}, how: {zh: 甲, en: A}, threshold: {zh: 0, en: '0'}, clauses: ['seed 003 §4.2']}\n",
	} {
		if _, err := compliance.ParseCatalogue([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	good := "version: x\nchecks:\n- {id: a_b, kind: measured, title: {zh: 甲, en: A}, how: {zh: 甲, en: A}, threshold: {zh: 0, en: '0'}, clauses: ['GB/T 22239-2019 8.1.4.11', 'GB/T 39786-2021 8.4 e', 'seed 003 §4.2.1']}\n"
	if _, err := compliance.ParseCatalogue([]byte(good)); err != nil {
		t.Error(err)
	}
}

// TestEverythingPasses: on a hospital where the rules hold, every
// measured check passes, the attested ones need evidence, and the run is
// kept with its score.
func TestEverythingPasses(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	run, err := f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range run.Results {
		want := compliance.Pass
		if r.Kind == compliance.Attested {
			want = compliance.NeedsEvidence
		}
		if r.Status != want {
			t.Errorf("%s: %s %q (%s), want %s", r.ID, r.Status, r.Value, r.Reason, want)
		}
		if len(r.Clauses) == 0 || r.Evidence.Items == nil || r.Evidence.Console == "" {
			t.Errorf("%s: clauses %v, evidence %+v", r.ID, r.Clauses, r.Evidence)
		}
	}
	if f.src.verifyCalls != 1 {
		t.Errorf("the audit log was verified %d times in one run", f.src.verifyCalls)
	}
	if run.Fail != 0 || run.Score >= 100 || run.Score <= 0 || run.NeedsEvidence != 6 {
		t.Errorf("run %+v", run)
	}
	if len(f.rect.findings) != 0 || len(f.raised) != 0 {
		t.Errorf("findings %v, alerts %v", f.rect.findings, f.raised)
	}
	rep, err := f.svc.Report(ctx, f.calls["zhengguohua"], "zh-CN")
	if err != nil {
		t.Fatal(err)
	}
	if rep.RunID != run.ID || len(rep.Checks) != len(run.Results) || rep.Checks[0].Title != "离职人员仍有访问" {
		t.Errorf("report %+v", rep)
	}
}

// TestMeasures: each measure fails for its own reason, with the list
// behind the number, and never names a patient.
func TestMeasures(t *testing.T) {
	now := start
	past := now.Add(-30 * time.Hour)
	old := now.Add(-200 * 24 * time.Hour)
	cases := []struct {
		id     string
		break_ func(f *fakeSources)
		value  string
		item   string
	}{
		{"departed_staff_access", func(f *fakeSources) {
			f.accounts[2].LiveSessions = 1
		}, "1", "lina 李娜"},
		{"departed_staff_access", func(f *fakeSources) {
			f.keys = append(f.keys, compliance.APIKey{ID: "k2", Name: "lis-lab", OwnerID: "u3", OwnerUsername: "lina"})
		}, "1", "lina 李娜"},
		{"departed_owner_api_keys", func(f *fakeSources) {
			f.keys = append(f.keys, compliance.APIKey{ID: "k2", Name: "lis-lab", OwnerID: "u3", OwnerUsername: "lina", OwnerDepartment: "CARD"})
		}, "1", "lis-lab"},
		{"sensitive_fields_encrypted", func(f *fakeSources) {
			f.columns[1] = compliance.ColumnScan{Table: "record_versions", Column: "body", Values: 120, Sealed: 119, Unsealed: []string{"v9"}}
		}, "99 %", "record_versions.body"},
		{"transport_encrypted", func(f *fakeSources) {
			f.links[1] = compliance.Link{Name: "siem", Target: "siem.yiyuan.cn:514", Protocol: "plain TCP"}
		}, "50 %", "siem"},
		{"audit_tree_verified", func(f *fakeSources) {
			f.audit.Verified, f.audit.Problem = false, "first bad index 17"
		}, "✗", "audit_log"},
		{"audit_retention", func(f *fakeSources) { f.audit.RetentionDays = 90 }, "90 d", ""},
		{"siem_forwarding", func(f *fakeSources) { f.siem.Lag = 5000 }, "5000", "siem.yiyuan.cn:6514"},
		{"backup_age", func(f *fakeSources) {
			f.backups.Targets[1].LastBackup = &past
		}, "30 h", "s3://bak/medguard?endpoint=oss.yiyuan.cn"},
		{"restore_drill", func(f *fakeSources) { f.backups.LastDrill.At = old }, "200 d", "d1"},
		{"backup_321", func(f *fakeSources) {
			f.backups.Met321, f.backups.OffSite, f.backups.Copies = false, 0, 2
		}, "2/2/0", "/srv/backup"},
		{"vulns_past_due", func(f *fakeSources) {
			f.vulns = []compliance.Overdue{{ID: "v1", Title: "OpenSSL 远程代码执行", Severity: "critical", DueAt: past}}
		}, "1", "OpenSSL 远程代码执行"},
		{"training_coverage", func(f *fakeSources) { f.standings[1].Current = false }, "50 %", "zhangwei 张伟"},
		{"training_overdue", func(f *fakeSources) { f.standings[1].Overdue = true }, "1", "zhangwei 张伟"},
		{"commitment_letters", func(f *fakeSources) { f.standings[0].LetterOwed = true }, "1", "zhouqiang 周强"},
		{"breakglass_reviews_overdue", func(f *fakeSources) {
			f.breakGlass = []compliance.Overdue{{ID: "bg1", Owner: "zhangwei", Department: "CARD", DueAt: past}}
		}, "1", "bg1"},
		{"records_archived_late", func(f *fakeSources) {
			f.archives = []compliance.Overdue{{ID: "adm1", Department: "CARD", DueAt: past}}
		}, "1", "adm1"},
		{"paper_sync_rate", func(f *fakeSources) {
			f.rec = &compliance.Reconciliation{Day: "2028-02-29", Rate: 91.67, Folders: 11, Inpatients: 12, Matched: 11, PatientsWithoutFolder: 1}
		}, "91.6 %", "2028-02-29"},
		{"inspections_signed", func(f *fakeSources) {
			f.days[1] = compliance.InspectionDay{Day: "2028-02-27", Status: compliance.DayAwaitingReview, Inspector: "吴燕"}
		}, "50 %", "2028-02-27"},
		{"risks_past_review", func(f *fakeSources) {
			f.risks = []compliance.Overdue{{ID: "r1", Title: "病历服务器勒索软件", Severity: "high", Owner: "zhouqiang", DueAt: past}}
		}, "1", "病历服务器勒索软件"},
		{"plans_past_review", func(f *fakeSources) {
			f.plans = []compliance.Overdue{{ID: "p1", Title: "勒索软件应急预案", DueAt: past}}
		}, "1", "勒索软件应急预案"},
		{"drills_on_cadence", func(f *fakeSources) { f.cadences[0].Missed = []string{"2027-H2"} }, "1", "ransomware"},
		{"privileged_second_factor", func(f *fakeSources) { f.accounts[0].TOTP = false }, "0 %", "zhouqiang 周强"},
		{"separation_of_duties", func(f *fakeSources) {
			f.accounts[0].Roles = []string{"admin", "auditor"}
		}, "1", "zhouqiang 周强"},
		{"unused_accounts", func(f *fakeSources) { f.accounts[1].LastSignIn = &old }, "1", "zhangwei 张伟"},
		{"unused_accounts", func(f *fakeSources) { f.accounts[1].LastSignIn, f.accounts[1].LastActive = nil, &old }, "1", "zhangwei 张伟"},
	}
	seen := map[string]bool{}
	for i, c := range cases {
		seen[c.id] = true
		t.Run(fmt.Sprintf("%02d_%s", i, c.id), func(t *testing.T) {
			f := setup(t)
			c.break_(f.src)
			run, err := f.svc.Run(context.Background(), f.calls["zhouqiang"])
			if err != nil {
				t.Fatal(err)
			}
			r := result(t, run, c.id)
			if r.Status != compliance.Fail || r.Value != c.value || r.Reason == "" {
				t.Fatalf("%s: %s %q (%s), want fail %q", c.id, r.Status, r.Value, r.Reason, c.value)
			}
			if c.item != "" && !hasItem(r, c.item) {
				t.Errorf("%s: evidence %+v lacks %s", c.id, r.Evidence.Items, c.item)
			}
			// A departed owner's live key is both a departed person's access
			// and a key whose owner left.
			linked := map[string]bool{c.id: true}
			if strings.HasPrefix(c.id, "departed_") && c.item != "" && len(f.src.keys) > 1 {
				linked["departed_staff_access"], linked["departed_owner_api_keys"] = true, true
			}
			for _, o := range run.Results {
				if !linked[o.ID] && o.Status == compliance.Fail {
					t.Errorf("%s also fails: %s", o.ID, o.Reason)
				}
			}
			if len(f.rect.findings) != len(linked) || f.rect.findings[0].CheckID != c.id && !linked[f.rect.findings[0].CheckID] || len(f.raised) != len(linked) {
				t.Errorf("findings %+v, alerts %v", f.rect.findings, f.raised)
			}
		})
	}
	for _, id := range compliance.MeasureIDs() {
		if !seen[id] {
			t.Errorf("no test makes %s fail", id)
		}
	}
}

func hasItem(r compliance.Result, s string) bool {
	for _, it := range r.Evidence.Items {
		if it.ID == s || it.Name == s {
			return true
		}
	}
	return false
}

// TestNotConfigured: without a SIEM, backups or any source, the checks
// say so rather than pass.
func TestNotConfigured(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.src.siem = compliance.SIEMState{}
	f.src.backups = compliance.BackupState{}
	run, err := f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, run, "siem_forwarding"); r.Status != compliance.NotApplicable || !strings.Contains(r.Reason, "SIEM") {
		t.Errorf("siem %+v", r)
	}
	for _, id := range []string{"backup_age", "restore_drill", "backup_321"} {
		if r := result(t, run, id); r.Status != compliance.NotApplicable || !strings.Contains(r.Reason, "no backups") {
			t.Errorf("%s %+v", id, r)
		}
	}
	f.svc.SetSources(compliance.Sources{})
	run, err = f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range run.Results {
		if r.Kind == compliance.Measured && (r.Status != compliance.NotApplicable || !strings.Contains(r.Reason, "not connected")) {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Reason)
		}
	}
	// A source that cannot be read makes its checks fail, saying why.
	f.svc.SetSources(f.src.sources())
	f.src.auditErr = errors.New("disk I/O error")
	run, err = f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, run, "audit_tree_verified"); r.Status != compliance.Fail || !strings.Contains(r.Reason, "could not be measured") {
		t.Errorf("audit %+v", r)
	}
}

// TestTransitions: a check that turns to fail opens one rectification
// item and raises one alert; the next run, still failing, opens nothing
// more; passing again resolves the alert; the daily run happens once per
// hospital day; history and the score trend are kept.
func TestTransitions(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.src.keys = append(f.src.keys, compliance.APIKey{ID: "k2", Name: "lis-lab", OwnerID: "u3", OwnerUsername: "lina", OwnerDepartment: "CARD"})
	first, err := f.svc.RunDaily(ctx)
	if err != nil || first == nil {
		t.Fatal(first, err)
	}
	if again, err := f.svc.RunDaily(ctx); again != nil || err != nil {
		t.Fatalf("second daily run the same day: %v %v", again, err)
	}
	if len(f.rect.findings) != 2 || len(f.raised) != 2 { // departed staff access and the key's owner
		t.Fatalf("findings %+v alerts %v", f.rect.findings, f.raised)
	}
	fd := f.rect.findings[1]
	if fd.CheckID != "departed_owner_api_keys" || fd.Department != "CARD" || fd.Title.ZH == "" || len(fd.Clauses) == 0 || fd.Value != "1" ||
		!fd.DetectedAt.Equal(first.At) {
		t.Errorf("finding %+v", fd)
	}
	f.clock.Advance(10 * time.Minute) // 23:50 in Beijing: the same hospital day
	if again, _ := f.svc.RunDaily(ctx); again != nil {
		t.Fatal("ran twice in one hospital day")
	}
	f.clock.Advance(20 * time.Minute) // 1 March, 00:10 in Beijing
	f.fresh()
	second, err := f.svc.RunDaily(ctx)
	if err != nil || second == nil {
		t.Fatal(second, err)
	}
	if len(f.rect.findings) != 2 || len(f.raised) != 2 {
		t.Errorf("a failure that persists opened more: %+v", f.rect.findings)
	}
	f.src.keys[1].Revoked = true
	f.clock.Advance(time.Hour)
	f.fresh()
	third, err := f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	if third.Fail != 0 || len(f.resolved) != 2 {
		t.Errorf("fail %d, resolved %v", third.Fail, f.resolved)
	}
	hist, err := f.svc.History(ctx, f.calls["zhengguohua"], "departed_owner_api_keys", "zh-CN", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Status != compliance.Pass || hist[2].Status != compliance.Fail || hist[0].Title != "创建人已离职的 API 密钥" {
		t.Errorf("history %+v", hist)
	}
	pts, err := f.svc.ScoreHistory(ctx, f.calls["zhengguohua"], start.Add(-time.Hour), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 3 || pts[0].Fail != 2 || pts[2].Fail != 0 || pts[2].Score <= pts[0].Score {
		t.Errorf("scores %+v", pts)
	}
	figs, err := f.svc.DepartmentFigures(ctx, f.calls["sunli"], "CARD")
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 3 {
		t.Errorf("department figures %+v", figs)
	}
	if _, err := f.svc.DepartmentFigures(ctx, f.calls["sunli"], "NOPE"); !medguard.IsKind(err, medguard.NotFound) {
		t.Errorf("unknown department: %v", err)
	}
}

// TestDepartmentFigures: the per-department figures carry only the
// department's evidence.
func TestDepartmentFigures(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.src.accounts[2].LiveSessions = 2
	f.src.standings[1].Current = false
	f.src.archives = []compliance.Overdue{{ID: "adm1", Department: "CARD", DueAt: start.Add(-time.Hour)},
		{ID: "adm2", Department: "ICU", DueAt: start.Add(-time.Hour)}}
	if _, err := f.svc.Run(ctx, f.calls["sunli"]); err != nil {
		t.Fatal(err)
	}
	figs, err := f.svc.DepartmentFigures(ctx, f.calls["sunli"], "CARD")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]compliance.Result{}
	for _, r := range figs {
		by[r.ID] = r
	}
	if r := by["departed_staff_access"]; r.Status != compliance.Fail || r.Value != "1" || len(r.Evidence.Items) != 1 {
		t.Errorf("departed %+v", r)
	}
	if r := by["training_coverage"]; r.Status != compliance.Fail || r.Value != "0 %" {
		t.Errorf("training %+v", r)
	}
	if r := by["records_archived_late"]; r.Value != "1" || len(r.Evidence.Items) != 1 || r.Evidence.Items[0].ID != "adm1" {
		t.Errorf("archives %+v", r)
	}
	if _, err := f.svc.DepartmentFigures(ctx, f.calls["zhangwei"], "CARD"); !medguard.IsKind(err, medguard.Forbidden) {
		t.Errorf("a doctor read the department figures: %v", err)
	}
}

// TestAttestation: evidence attached by the IT engineer needs another
// person's signature; it is in force until it expires, then due again.
func TestAttestation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	photo := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)
	up := func(u compliance.Upload) func() (compliance.Upload, error) {
		return func() (compliance.Upload, error) { return u, nil }
	}
	good := compliance.Upload{Kind: compliance.EvidencePhoto, Filename: "机房门禁.png", Content: photo, Note: "机房门禁与温湿度记录，2028 年 2 月"}
	if _, err := f.svc.Attest(ctx, f.calls["zhangwei"], "machine_room", up(good)); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("a doctor attached evidence: %v", err)
	}
	if _, err := f.svc.Attest(ctx, f.calls["wuyan"], "departed_staff_access", up(good)); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("evidence for a measured check: %v", err)
	}
	if _, err := f.svc.Attest(ctx, f.calls["wuyan"], "no_such", up(good)); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("unknown check: %v", err)
	}
	for field, bad := range map[string]compliance.Upload{
		"filename": {Filename: "../../etc/passwd", Content: photo, Note: "x"},
		"file":     {Filename: "a.exe", Content: []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00"), Note: "x"},
		"note":     {Filename: "a.png", Content: photo},
		"kind":     {Kind: "video", Filename: "a.png", Content: photo, Note: "x"},
	} {
		_, err := f.svc.Attest(ctx, f.calls["wuyan"], "machine_room", up(bad))
		if me := medguardtest.WantKind(t, err, medguard.Invalid); me.Field != field {
			t.Errorf("%s: %+v", field, me)
		}
	}
	a, err := f.svc.Attest(ctx, f.calls["wuyan"], "machine_room", up(good))
	if err != nil {
		t.Fatal(err)
	}
	run, err := f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, run, "machine_room"); r.Status != compliance.NeedsEvidence || r.Value != "—" || r.Evidence.Attestation == nil {
		t.Errorf("awaiting %+v", r)
	}
	// The engineer never signs (no permission); a security officer who
	// attached evidence never signs their own.
	if _, err := f.svc.Review(ctx, f.calls["wuyan"], a.ID, "好"); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("engineer signed: %v", err)
	}
	own, err := f.svc.Attest(ctx, f.calls["zhouqiang"], "fire_suppression", up(good))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Review(ctx, f.calls["zhouqiang"], own.ID, "自己签"); medguardtest.WantKind(t, err, medguard.Forbidden).Rule != policy.RuleSeparationOfDuties {
		t.Fatalf("own evidence signed: %v", err)
	}
	if _, err := f.svc.Review(ctx, f.calls["zhouqiang2"], own.ID, "已核对"); err != nil {
		t.Fatal(err)
	}
	signed, err := f.svc.Review(ctx, f.calls["sunli"], a.ID, "已现场核对")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Review(ctx, f.calls["zhouqiang"], a.ID, "再签"); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("signed twice: %v", err)
	}
	if signed.State != compliance.AttestationInForce || !signed.ExpiresAt.Equal(f.clock.Now().Truncate(time.Millisecond).AddDate(0, 0, 365)) {
		t.Errorf("signed %+v", signed)
	}
	run, err = f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, run, "machine_room"); r.Status != compliance.Pass || r.Evidence.Attestation.Filename != "" {
		t.Errorf("signed %+v", r)
	}
	list, err := f.svc.Attestations(ctx, f.calls["zhengguohua"], "machine_room")
	if err != nil || len(list) != 1 || list[0].Filename != "机房门禁.png" || list[0].Note != good.Note {
		t.Fatalf("list %+v %v", list, err)
	}
	got, content, err := f.svc.AttestationFile(ctx, f.calls["zhengguohua"], a.ID)
	if err != nil || string(content) != string(photo) || got.ContentType != "image/png" {
		t.Fatalf("file %+v %v", got, err)
	}
	// Nothing readable at rest: the file name, the note and the content
	// are sealed.
	var name, note, stored []byte
	if err := f.db.QueryRowContext(ctx, `SELECT filename, note, content FROM compliance_attestations WHERE id = $1`, a.ID).Scan(&name, &note, &stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(name), "机房") || strings.Contains(string(note), "机房") || string(stored) == string(photo) {
		t.Error("evidence stored in clear")
	}
	// A year later the evidence expired: due again.
	f.clock.Advance(366 * 24 * time.Hour)
	f.src = passing(f.clock.Now())
	f.svc.SetSources(f.src.sources())
	run, err = f.svc.Run(ctx, f.calls["sunli"])
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, run, "machine_room"); r.Status != compliance.NeedsEvidence || r.Value != f.clock.Now().AddDate(0, 0, -1).Format("2006-01-02") && !strings.Contains(r.Reason, "expired") {
		t.Errorf("expired %+v", r)
	}
}

// TestRefusals: a doctor runs and reads nothing; the refusals are in the
// audit log.
func TestRefusals(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if _, err := f.svc.Run(ctx, f.calls["zhangwei"]); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("doctor ran: %v", err)
	}
	if _, err := f.svc.Report(ctx, f.calls["zhangwei"], "zh-CN"); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("doctor read: %v", err)
	}
	if _, err := f.svc.Run(ctx, f.calls["zhengguohua"]); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("leadership ran: %v", err)
	}
	n := 0
	if err := f.db.QueryRowContext(ctx, `SELECT count(*) FROM compliance_runs`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("runs %d %v", n, err)
	}
	// The report before any run is computed now and not kept.
	rep, err := f.svc.Report(ctx, f.calls["sunli"], "en")
	if err != nil || rep.RunID != "" || len(rep.Checks) == 0 || rep.Checks[0].Title != "Departed staff with access" {
		t.Fatalf("report %+v %v", rep, err)
	}
	if _, err := f.svc.History(ctx, f.calls["sunli"], "nope", "en", 0); !medguard.IsKind(err, medguard.NotFound) {
		t.Errorf("history of no check: %v", err)
	}
}

// TestCISOAssistantExport: the catalogue as a CISO Assistant library —
// one framework, a node per standard and an assessable node per check
// under the standard of its first clause, the clauses as annotation,
// English as the translation.
func TestCISOAssistantExport(t *testing.T) {
	f := setup(t)
	cat, b, err := f.svc.ExportCatalogue(context.Background(), f.calls["sunli"], true)
	if err != nil {
		t.Fatal(err)
	}
	var lib struct {
		URN     string `yaml:"urn"`
		Locale  string `yaml:"locale"`
		Objects struct {
			Framework struct {
				URN   string `yaml:"urn"`
				Nodes []struct {
					URN        string `yaml:"urn"`
					Assessable bool   `yaml:"assessable"`
					Depth      int    `yaml:"depth"`
					Parent     string `yaml:"parent_urn"`
					RefID      string `yaml:"ref_id"`
					Name       string `yaml:"name"`
					Annotation string `yaml:"annotation"`
				} `yaml:"requirement_nodes"`
			} `yaml:"framework"`
		} `yaml:"objects"`
	}
	if err := yaml.Unmarshal(b, &lib); err != nil {
		t.Fatal(err)
	}
	if lib.Locale != "zh" || !strings.HasPrefix(lib.URN, "urn:") || !strings.HasPrefix(lib.Objects.Framework.URN, "urn:") {
		t.Fatalf("library %s", b)
	}
	checks, groups := 0, map[string]bool{}
	for _, n := range lib.Objects.Framework.Nodes {
		switch n.Depth {
		case 1:
			groups[n.URN] = true
		case 2:
			checks++
			if !n.Assessable || !groups[n.Parent] || n.Name == "" || n.Annotation == "" {
				t.Errorf("node %+v", n)
			}
		}
	}
	if checks != len(cat.Checks) || len(groups) == 0 {
		t.Errorf("%d checks in %d groups, want %d", checks, len(groups), len(cat.Checks))
	}
	if _, _, err := f.svc.ExportCatalogue(context.Background(), f.calls["zhangwei"], true); !medguard.IsKind(err, medguard.Forbidden) {
		t.Errorf("a doctor exported the catalogue: %v", err)
	}
}
