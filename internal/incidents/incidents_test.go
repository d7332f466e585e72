package incidents_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/keys"
	"medguard/internal/medguardtest"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

type fixture struct {
	clock *testkit.Clock
	dir   string // the SQLite data directory ("" on PostgreSQL)
	db    *storage.DB
	log   *audit.Log
	cps   *audit.Checkpoints
	id    *identity.Service
	rec   *records.Service
	svc   *incidents.Service
	calls map[string]*medguard.Call
}

// start is Monday 23 November 2026, 09:00:37 UTC: the seconds show that
// deadlines run from the minute of the report.
var start = time.Date(2026, 11, 23, 9, 0, 37, 0, time.UTC)

// setup builds the service on SQLite, or PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set, with cardiology and neurology, their
// doctors, a records clerk, a security officer and two quality auditors.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(start), calls: map[string]*medguard.Call{}}
	schemas := []storage.Schema{keys.Schema(), audit.Schema(), identity.Schema(), records.Schema(), incidents.Schema()}
	if os.Getenv(storagetest.PostgresEnv) != "" {
		f.db = storagetest.Open(t, schemas...)
	} else {
		f.dir = t.TempDir()
		db, err := storage.Open(ctx, "", f.dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx, schemas...); err != nil {
			t.Fatal(err)
		}
		f.db = db
	}
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	signer, _, err := audit.LoadOrCreateSigner(filepath.Join(t.TempDir(), "audit.key"), "medguard/test")
	if err != nil {
		t.Fatal(err)
	}
	f.cps = audit.NewCheckpoints(f.log, signer, "", f.clock)
	g := gate.New(f.log, f.clock)
	kr := keys.NewKeyring(f.db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	id := identity.New(f.db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.id = id
	f.rec = records.New(f.db, g, kr, id, records.Config{})
	f.svc = incidents.New(f.db, g, f.cps, kr, id, f.rec)
	adminID, err := id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"MRD", "病案室"}} {
		if _, err := id.CreateDepartment(ctx, admin, d[0], d[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhangwei", "张伟", "CARD", policy.Doctor}, {"lina", "李娜", "NEUR", policy.Doctor},
		{"chenjing", "陈静", "MRD", policy.RecordsClerk},
	} {
		created, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}, IP: "10.1.1.1"}
	}
	// Commanders must be members of staff with the role their grade calls
	// for: the leadership's 刘华, a second security officer 孙丽 (who also
	// confirms steps), IT's 徐明. Their privileged roles are granted as an
	// approval would.
	for _, u := range []struct{ name, display, role string }{
		{"liuhua", "刘华", policy.Leadership}, {"sunli", "孙丽", policy.SecurityOfficer}, {"xuming", "徐明", policy.ITEngineer},
	} {
		created, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Roles: []string{policy.Researcher}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Record(ctx, gate.Event{Call: admin, Action: "approval.approve", Allowed: true, Rule: "test"},
			id.GrantApprovedRole(created.ID, u.role, adminID, medguard.NewID(f.clock.Now()))); err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Roles: []string{u.role}}, IP: "10.1.9.8"}
	}
	// Privileged roles would need a four-eyes approval; the policy decides
	// on the call, so the calls name them directly.
	for _, u := range []struct{ name, role string }{
		{"zhouqiang", policy.SecurityOfficer}, {"wuyan", policy.Auditor}, {"zhaomin", policy.Auditor},
	} {
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(f.clock.Now()),
			Name: u.name, Roles: []string{u.role}}, IP: "10.1.9.9"}
	}
	return f
}

func deadlineOf(t *testing.T, in *incidents.Incident, name string) incidents.Deadline {
	t.Helper()
	for _, d := range in.Deadlines {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("incident has no %s deadline: %+v", name, in.Deadlines)
	return incidents.Deadline{}
}

func (f *fixture) get(t *testing.T, id string) *incidents.Incident {
	t.Helper()
	in, err := f.svc.Get(context.Background(), f.calls["zhouqiang"], id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// entries returns every audit entry.
func (f *fixture) entries(t *testing.T) []audit.Stored {
	t.Helper()
	size, _, err := f.log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Stored
	for i := uint64(0); i < size; i += audit.MaxEntries {
		st, err := f.log.Entries(context.Background(), i, size)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st...)
	}
	return out
}

// confirmSteps has the second security officer confirm every handling
// step of the incident not yet confirmed.
func (f *fixture) confirmSteps(t *testing.T, in *incidents.Incident) {
	t.Helper()
	for _, u := range in.Timeline {
		if u.Step && u.ConfirmedAt == nil {
			if _, err := f.svc.ConfirmStep(context.Background(), f.calls["sunli"], in.ID, u.AuditIndex); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (f *fixture) report(t *testing.T, in incidents.NewIncident) *incidents.Incident {
	t.Helper()
	if in.Title == "" {
		in.Title = "心内科病案系统无法访问"
	}
	if in.Description == "" {
		in.Description = "心内科病案系统无法访问，影响门诊；患者王芳的出院小结无法打印"
	}
	out, err := f.svc.Report(context.Background(), f.calls["zhouqiang"], in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSuggest(t *testing.T) {
	for _, c := range []struct {
		facts     incidents.Facts
		grade     int
		criterion string
	}{
		{incidents.Facts{HospitalWideOutage: true}, 1, "hospital_outage"},
		{incidents.Facts{CoreDataLeaked: true, DepartmentsAffected: 1}, 1, "core_data_leak"},
		{incidents.Facts{DepartmentsAffected: 11, DepartmentsTotal: 20}, 1, "majority_departments"},
		{incidents.Facts{DepartmentsAffected: 10, DepartmentsTotal: 20}, 2, "department_affected"},
		{incidents.Facts{DepartmentsAffected: 1, DepartmentsTotal: 20}, 2, "department_affected"},
		{incidents.Facts{LocalDataAbnormal: true}, 2, "local_data_abnormal"},
		{incidents.Facts{QueryFailureRate: 0.11}, 2, "query_failure_rate"},
		{incidents.Facts{QueryFailureRate: 0.10}, 3, "minor_fault"},
		{incidents.Facts{RecordsAffected: 1}, 3, "single_record"},
		{incidents.Facts{}, 3, "minor_fault"},
	} {
		g, crit := incidents.Suggest(c.facts)
		if g != c.grade || crit != c.criterion {
			t.Errorf("Suggest(%+v) = %d %s, want %d %s", c.facts, g, crit, c.grade, c.criterion)
		}
		if cr, ok := incidents.LookupCriterion(crit); !ok || cr.Grade != g {
			t.Errorf("criterion %s is not of grade %d", crit, g)
		}
	}
}

func TestReportValidates(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	_, err := f.svc.Report(ctx, so, incidents.NewIncident{Title: "门诊挂号缓慢", Description: "门诊挂号系统响应缓慢"})
	medguardtest.WantField(t, err, "grade")
	_, err = f.svc.Report(ctx, so, incidents.NewIncident{Title: "门诊挂号缓慢", Description: "x", Grade: 2, Criterion: "minor_fault"})
	medguardtest.WantField(t, err, "criterion")
	_, err = f.svc.Report(ctx, so, incidents.NewIncident{Description: "x", Grade: 3, Criterion: "minor_fault"})
	medguardtest.WantField(t, err, "title")
	_, err = f.svc.Report(ctx, so, incidents.NewIncident{Title: "x", Description: "x",
		Facts: &incidents.Facts{DepartmentsAffected: 3, DepartmentsTotal: 2}})
	medguardtest.WantField(t, err, "facts.departments_total")
	// Control characters other than NUL were let through, and a title
	// could hold a line break: both are refused, and nothing is stored.
	for _, c := range []struct{ field, title, desc string }{
		{"description", "门诊挂号缓慢", "门诊挂号系统\x1b[2J响应缓慢"},
		{"description", "门诊挂号缓慢", "门诊挂号系统\u0085响应缓慢"},
		{"description", "门诊挂号缓慢", "门诊挂号系统\xff响应缓慢"},
		{"title", "门诊挂号\n缓慢", "门诊挂号系统响应缓慢"},
		{"title", "门诊挂号\x7f缓慢", "门诊挂号系统响应缓慢"},
	} {
		_, err = f.svc.Report(ctx, so, incidents.NewIncident{Title: c.title, Description: c.desc, Grade: 3, Criterion: "minor_fault"})
		medguardtest.WantField(t, err, c.field)
	}
	var stored int
	if err := f.db.QueryRowContext(ctx, `SELECT count(*) FROM incidents`).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("%d refused incidents stored (%v)", stored, err)
	}
	// Doctors and auditors do not report or manage incidents; auditors read them.
	_, err = f.svc.Report(ctx, f.calls["zhangwei"], incidents.NewIncident{Title: "x", Description: "x", Grade: 3, Criterion: "minor_fault"})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	// The grade suggested from the facts is used and recorded.
	in := f.report(t, incidents.NewIncident{Facts: &incidents.Facts{DepartmentsAffected: 1, DepartmentsTotal: 30}})
	if in.Grade != 2 || in.Criterion != "department_affected" || in.SuggestedGrade != 2 || in.GradeConfirmed ||
		in.Status != incidents.Open || in.Description != "心内科病案系统无法访问，影响门诊；患者王芳的出院小结无法打印" {
		t.Fatalf("%+v", in)
	}
	if _, err := f.svc.Get(ctx, f.calls["wuyan"], in.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Get(ctx, f.calls["zhangwei"], in.ID)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, err = f.svc.Get(ctx, f.calls["wuyan"], "01jd0000000000000000000000")
	medguardtest.WantKind(t, err, medguard.NotFound)
}

var rootCause = incidents.RootCause{
	What:  "心内科病案系统无法访问，影响门诊",
	When:  "2026年11月23日 08:40 至 10:15",
	Where: "住院部三楼心内科",
	Who:   "信息科值班工程师",
	Why:   "核心交换机端口故障",
	How:   "更换交换机端口并增加链路冗余",
}

func TestGradeConfirmationAndOverdueHook(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	in := f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	var told []string
	f.svc.OnOverdue(func(in incidents.Incident, d incidents.Deadline) {
		if in.Title != "" || in.Description != "" {
			t.Errorf("the hook was given free text: %+v", in)
		}
		told = append(told, in.ID+" "+d.Name)
	})
	f.clock.Advance(29 * time.Minute) // 09:29:37
	if got, err := f.svc.CheckOverdue(ctx); err != nil || len(got) != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	f.clock.Advance(2 * time.Minute) // 09:31:37, past 09:30
	if d := deadlineOf(t, f.get(t, in.ID), incidents.DeadlineGradeConfirmation); d.State != incidents.Overdue {
		t.Fatalf("%+v", d)
	}
	got, err := f.svc.CheckOverdue(ctx)
	if err != nil || len(got) != 1 || got[0].Deadline.Name != incidents.DeadlineGradeConfirmation {
		t.Fatalf("%+v %v", got, err)
	}
	// Announced once, logged as the system.
	if got, err := f.svc.CheckOverdue(ctx); err != nil || len(got) != 0 {
		t.Fatalf("announced twice: %+v %v", got, err)
	}
	if !slices.Equal(told, []string{in.ID + " grade_confirmation"}) {
		t.Fatalf("hook told %v", told)
	}
	es := f.entries(t)
	if !slices.ContainsFunc(es, func(s audit.Stored) bool {
		return s.Entry.Action == "incident.deadline_overdue" && s.Entry.Actor == "system" && s.Entry.TargetID == in.ID
	}) {
		t.Error("the overdue deadline was not logged")
	}
	list, err := f.svc.ListOverdue(ctx, f.calls["wuyan"])
	if err != nil || len(list) != 1 {
		t.Fatalf("%+v %v", list, err)
	}
	// Confirmed late: met, late; a second confirmation is a conflict.
	done, err := f.svc.ConfirmGrade(ctx, f.calls["zhouqiang"], in.ID, incidents.GradeConfirmation{Grade: 3, Criterion: "single_record"})
	if err != nil || !done.GradeConfirmed || done.GradeConfirmedBy != "zhouqiang" || !done.SingleRecord {
		t.Fatalf("%+v %v", done, err)
	}
	if d := deadlineOf(t, done, incidents.DeadlineGradeConfirmation); d.State != incidents.Met || !d.Late {
		t.Errorf("%+v", d)
	}
	// The fix deadline follows the confirmed criterion: one record, 24 h.
	if d := deadlineOf(t, done, incidents.DeadlineFix); !d.DueAt.Equal(start.Truncate(time.Minute).Add(24 * time.Hour)) {
		t.Errorf("%+v", d)
	}
	_, err = f.svc.ConfirmGrade(ctx, f.calls["zhouqiang"], in.ID, incidents.GradeConfirmation{Grade: 3, Criterion: "minor_fault"})
	medguardtest.WantKind(t, err, medguard.Conflict)
}

func TestProgressUpdateEveryTwoHours(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	in := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "query_failure_rate"})
	base := start.Truncate(time.Minute)
	if d := deadlineOf(t, in, incidents.DeadlineProgressUpdate); !d.DueAt.Equal(base.Add(2 * time.Hour)) {
		t.Fatalf("%+v", d)
	}
	f.clock.Set(base.Add(100 * time.Minute)) // 10:40
	in, err := f.svc.AddUpdate(ctx, f.calls["zhouqiang"], in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress,
		Text: "已切换至备用数据库，门诊查询恢复正常"})
	if err != nil {
		t.Fatal(err)
	}
	next := base.Add(220 * time.Minute) // 12:40
	if d := deadlineOf(t, in, incidents.DeadlineProgressUpdate); !d.DueAt.Equal(next) || d.State != incidents.Pending {
		t.Fatalf("next update %+v, want %s", d, next)
	}
	f.clock.Set(next.Add(time.Minute))
	got, err := f.svc.CheckOverdue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got, func(it incidents.OverdueItem) bool {
		return it.Deadline.Name == incidents.DeadlineProgressUpdate && it.Deadline.DueAt.Equal(next)
	}) {
		t.Fatalf("progress update not announced: %+v", got)
	}
	// The next missed update, two hours after the last, is announced again.
	f.clock.Advance(time.Minute)
	if _, err := f.svc.AddUpdate(ctx, f.calls["zhouqiang"], in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress, Text: "持续监测"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2*time.Hour + time.Minute)
	got, err = f.svc.CheckOverdue(ctx)
	if err != nil || !slices.ContainsFunc(got, func(it incidents.OverdueItem) bool { return it.Deadline.Name == incidents.DeadlineProgressUpdate }) {
		t.Fatalf("%+v %v", got, err)
	}
	in = f.get(t, in.ID)
	if n := len(in.Timeline); n != 3 || in.Timeline[1].Text != "已切换至备用数据库，门诊查询恢复正常" || in.Timeline[0].Kind != "reported" {
		t.Fatalf("timeline %+v", in.Timeline)
	}
}

func TestClosure(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	var told []string
	f.svc.OnClose(func(_ context.Context, in incidents.Incident) {
		if in.Status != incidents.Closed {
			t.Errorf("told of %s while %s", in.ID, in.Status)
		}
		told = append(told, in.ID)
	})
	for _, grade := range []int{1, 2} {
		crit := map[int]string{1: "majority_departments", 2: "local_data_abnormal"}[grade]
		in := f.report(t, incidents.NewIncident{Grade: grade, Criterion: crit})
		_, err := f.svc.Close(ctx, so, in.ID, "")
		medguardtest.WantField(t, err, "grade")
		if _, err := f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: grade, Criterion: crit,
			Commander: map[int]string{1: "liuhua"}[grade]}); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Close(ctx, so, in.ID, "")
		medguardtest.WantField(t, err, "analysis")
		if _, err := f.svc.SetAnalysis(ctx, so, in.ID, incidents.RootCause{What: "x", When: "y", Where: "z", Who: "w", Why: "", How: "h"}); err != nil {
			medguardtest.WantField(t, err, "why")
		} else {
			t.Fatal("an analysis without why was accepted")
		}
		if _, err := f.svc.SetAnalysis(ctx, so, in.ID, rootCause); err != nil {
			t.Fatal(err)
		}
		if grade == 1 {
			_, err = f.svc.Close(ctx, so, in.ID, "")
			medguardtest.WantField(t, err, "authority_report")
			up, err := f.svc.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: incidents.UpdateAuthorityReport, Text: "已上报"})
			if err != nil {
				t.Fatal(err)
			}
			// The step waits for a second person's confirmation.
			_, err = f.svc.Close(ctx, so, in.ID, "")
			medguardtest.WantField(t, err, "steps")
			f.confirmSteps(t, up)
		}
		if len(told) != 0 {
			t.Fatalf("told of a closure that failed: %v", told)
		}
		closed, err := f.svc.Close(ctx, so, in.ID, "故障已排除，整改完成")
		if err != nil || closed.Status != incidents.Closed || closed.Analysis == nil || closed.Analysis.Why != rootCause.Why {
			t.Fatalf("%+v %v", closed, err)
		}
		if len(told) != 1 || told[0] != in.ID {
			t.Fatalf("the close hooks were told of %v", told)
		}
		told = nil
		want := map[int]string{1: "其他 · 一级（超过50%科室受影响）", 2: "其他 · 二级（局部数据异常）"}[grade]
		cmd := map[int]string{1: "liuhua", 2: "zhouqiang"}[grade]
		if tl := closed.Timeline; tl[0].Text != want || tl[1].Kind != "grade_confirmed" || tl[1].Text != want+"；指挥 commander "+cmd ||
			closed.Commander != cmd {
			t.Errorf("timeline %+v", tl)
		}
		_, err = f.svc.Close(ctx, so, in.ID, "")
		medguardtest.WantKind(t, err, medguard.Conflict)
		_, err = f.svc.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress, Text: "x"})
		medguardtest.WantKind(t, err, medguard.Conflict)
		// A closed incident has no overdue deadline.
		f.clock.Advance(100 * time.Hour)
		items, _ := f.svc.Overdue(ctx, f.clock.Now())
		if slices.ContainsFunc(items, func(it incidents.OverdueItem) bool { return it.Incident.ID == in.ID }) {
			t.Errorf("closed incident listed overdue: %+v", items)
		}
	}
	// Grade 3 closes without analysis once the grade is confirmed.
	in := f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	if _, err := f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 3, Criterion: "minor_fault"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Close(ctx, so, in.ID, ""); err != nil {
		t.Fatal(err)
	}
}

func TestCorrectiveActions(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	in := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "department_affected"})
	_, err := f.svc.AddAction(ctx, so, in.ID, incidents.NewAction{Description: "更换交换机", Owner: "xinxike", DueAt: f.clock.Now().Add(-time.Hour)})
	medguardtest.WantField(t, err, "due_at")
	a, err := f.svc.AddAction(ctx, so, in.ID, incidents.NewAction{Description: "为心内科增加备用链路", Owner: "xinxike",
		DueAt: f.clock.Now().Add(7 * 24 * time.Hour)})
	if err != nil || a.State != incidents.ActionOpen {
		t.Fatalf("%+v %v", a, err)
	}
	_, err = f.svc.SetActionState(ctx, so, in.ID, a.ID, incidents.ActionVerified)
	medguardtest.WantKind(t, err, medguard.Conflict)
	if a, err = f.svc.SetActionState(ctx, so, in.ID, a.ID, incidents.ActionDone); err != nil || a.State != incidents.ActionDone {
		t.Fatalf("%+v %v", a, err)
	}
	// Who marked it done does not verify it: a second person does.
	_, err = f.svc.SetActionState(ctx, so, in.ID, a.ID, incidents.ActionVerified)
	if e := medguardtest.WantKind(t, err, medguard.Forbidden); e.Rule != "deny.own_step" {
		t.Fatalf("rule %s", e.Rule)
	}
	if a, err = f.svc.SetActionState(ctx, f.calls["sunli"], in.ID, a.ID, incidents.ActionVerified); err != nil ||
		a.State != incidents.ActionVerified || a.DoneBy != "zhouqiang" {
		t.Fatalf("%+v %v", a, err)
	}
	_, err = f.svc.SetActionState(ctx, so, in.ID, "01jd0000000000000000000000", incidents.ActionDone)
	medguardtest.WantKind(t, err, medguard.NotFound)
	if _, err := f.db.ExecContext(ctx, `DELETE FROM incident_actions`); err == nil {
		t.Error("the database let a corrective action be deleted")
	}
	got := f.get(t, in.ID)
	if len(got.Actions) != 1 || got.Actions[0].Description != "为心内科增加备用链路" || got.Actions[0].State != incidents.ActionVerified {
		t.Fatalf("%+v", got.Actions)
	}
}

// TestEvidence attaches audit entries and checks them as an outside
// auditor would: the inclusion proof against the signed checkpoint's root.
func TestEvidence(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	in := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "local_data_abnormal"})
	size, _, _ := f.log.Head(ctx)
	_, err := f.svc.AttachEvidence(ctx, so, in.ID, []uint64{size + 100})
	medguardtest.WantField(t, err, "indexes")
	_, err = f.svc.AttachEvidence(ctx, so, in.ID, nil)
	medguardtest.WantField(t, err, "indexes")
	// The auditor reads incidents but does not manage them.
	_, err = f.svc.AttachEvidence(ctx, f.calls["wuyan"], in.ID, []uint64{1})
	medguardtest.WantKind(t, err, medguard.Forbidden)

	ev, err := f.svc.AttachEvidence(ctx, so, in.ID, []uint64{3, 1, 3})
	if err != nil || len(ev) != 2 || ev[0].Index != 3 || ev[1].Index != 1 {
		t.Fatalf("%+v %v", ev, err)
	}
	verifier := f.cps.Signer().VerifierKey()
	for _, e := range ev {
		_, cpSize, cpRoot, err := audit.OpenCheckpoint([]byte(e.Checkpoint), verifier)
		if err != nil || cpSize != e.TreeSize || !bytes.Equal(cpRoot, e.Root) {
			t.Fatalf("checkpoint: %v %d %x", err, cpSize, cpRoot)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.Index, e.TreeSize, rfc6962.DefaultHasher.HashLeaf(e.Leaf), e.Proof, cpRoot); err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
		// Content addressing: the id is the SHA-256 of the canonical bytes.
		sum := sha256.Sum256(incidents.EvidenceBytes(&e))
		if e.ID != hex.EncodeToString(sum[:]) {
			t.Errorf("id %s is not the hash of the evidence", e.ID)
		}
		if e.Entry.Action == "" {
			t.Errorf("entry %d not decoded", e.Index)
		}
	}
	// A tampered proof does not verify.
	bad := ev[0]
	bad.Proof = slices.Clone(bad.Proof)
	bad.Proof[0] = make([]byte, 32)
	if proof.VerifyInclusion(rfc6962.DefaultHasher, bad.Index, bad.TreeSize, rfc6962.DefaultHasher.HashLeaf(bad.Leaf), bad.Proof, bad.Root) == nil {
		t.Error("a changed proof verified")
	}
	if incidents.EvidenceID(incidents.EvidenceBytes(&bad)) == ev[0].ID {
		t.Error("changed evidence kept its id")
	}
	// Same evidence, same id; attaching again returns it unchanged.
	again, err := f.svc.AttachEvidence(ctx, so, in.ID, []uint64{3})
	if err != nil || len(again) != 1 || again[0].ID != ev[0].ID || again[0].TreeSize != ev[0].TreeSize {
		t.Fatalf("%+v %v", again, err)
	}
	copyOf := ev[0]
	if incidents.EvidenceID(incidents.EvidenceBytes(&copyOf)) != ev[0].ID {
		t.Error("the same evidence got another id")
	}
	if got := f.get(t, in.ID); len(got.Evidence) != 2 {
		t.Fatalf("evidence %+v", got.Evidence)
	}
	// The database refuses changing or removing evidence, timelines and incidents.
	for _, q := range []string{
		`UPDATE incident_evidence SET attached_by = 'mallory'`,
		`UPDATE incident_evidence SET body = body`,
		`DELETE FROM incident_evidence`,
		`UPDATE incident_updates SET by_name = 'mallory'`,
		`DELETE FROM incident_updates`,
		`DELETE FROM incidents`,
	} {
		if _, err := f.db.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: the database allowed it", q)
		}
	}
	if got := f.get(t, in.ID); len(got.Evidence) != 2 || got.Evidence[0].ID != ev[1].ID && got.Evidence[0].ID != ev[0].ID {
		t.Fatalf("evidence changed: %+v", got.Evidence)
	}
}

// TestFreeTextSealed checks that no free text is in the database in clear.
func TestFreeTextSealed(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	in := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "department_affected"})
	if _, err := f.svc.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress, Text: "患者王芳病历已恢复"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetAnalysis(ctx, so, in.ID, rootCause); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AddAction(ctx, so, in.ID, incidents.NewAction{Description: "核对王芳的全部病历", Owner: "chenjing",
		DueAt: f.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`SELECT title FROM incidents`, `SELECT description FROM incidents`, `SELECT analysis FROM incidents`,
		`SELECT text FROM incident_updates WHERE text IS NOT NULL`, `SELECT description FROM incident_actions`,
	} {
		rows, err := f.db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"王芳", "心内科", "交换机"} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds %q in clear", q, s)
				}
			}
		}
		rows.Close()
	}
}

func TestOpenForFreeze(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	in, err := f.svc.OpenForFreeze(ctx, "zhangwei", "01jd0000000000000000000001", "5分钟内读取了80名患者的病历")
	if err != nil {
		t.Fatal(err)
	}
	if in.Grade != 2 || in.Source != incidents.SourceFreeze || in.FrozenUser != "zhangwei" || in.ReportedBy != "system" ||
		in.GradeConfirmed || in.Description != "5分钟内读取了80名患者的病历" {
		t.Fatalf("%+v", in)
	}
	again, err := f.svc.OpenForFreeze(ctx, "zhangwei", "01jd0000000000000000000001", "again")
	if err != nil || again.ID != in.ID {
		t.Fatalf("a second call opened %s: %v", again.ID, err)
	}
	es := f.entries(t)
	last := es[len(es)-1].Entry
	if last.Action != "incident.report" || last.Actor != "system" || last.TargetID != in.ID || last.Rule != "allow.system.freeze" {
		t.Fatalf("%+v", last)
	}
	// The freeze isolated the risk when it happened.
	if d := deadlineOf(t, &in, incidents.DeadlineRiskIsolation); d.State != incidents.Met || d.Late || !d.MetAt.Equal(in.ReportedAt) {
		t.Fatalf("%+v", d)
	}
	if got := f.get(t, in.ID); got.Timeline[0].Text != "越权访问/非法入侵 · 二级（局部数据异常）；账号已冻结，风险已隔离" ||
		got.Title != "账号已冻结：zhangwei" {
		t.Fatalf("%q %+v", got.Title, got.Timeline)
	}
	// Like any other grade 2, it needs its emergency meeting within 15
	// minutes and its grade confirmed within 30.
	f.clock.Advance(31 * time.Minute)
	got, err := f.svc.CheckOverdue(ctx)
	if err != nil || len(got) != 2 || got[0].Incident.ID != in.ID || got[0].Deadline.Name != incidents.DeadlineEmergencyMeeting ||
		got[1].Deadline.Name != incidents.DeadlineGradeConfirmation {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestIncidentOperationsAreAudited(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	in := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "department_affected"})
	steps := []func() error{
		func() error {
			_, err := f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 2, Criterion: "department_affected"})
			return err
		},
		func() error {
			_, err := f.svc.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress, Text: "处理中"})
			return err
		},
		func() error { _, err := f.svc.AttachEvidence(ctx, so, in.ID, []uint64{0}); return err },
		func() error { _, err := f.svc.SetAnalysis(ctx, so, in.ID, rootCause); return err },
		func() error {
			a, err := f.svc.AddAction(ctx, so, in.ID, incidents.NewAction{Description: "培训", Owner: "xinxike", DueAt: f.clock.Now().Add(time.Hour)})
			if err != nil {
				return err
			}
			if _, err = f.svc.SetActionState(ctx, so, in.ID, a.ID, incidents.ActionDone); err != nil {
				return err
			}
			_, err = f.svc.SetActionState(ctx, f.calls["sunli"], in.ID, a.ID, incidents.ActionVerified)
			return err
		},
		func() error { _, _, err := f.svc.List(ctx, f.calls["wuyan"], "", "", 10); return err },
		func() error { _, err := f.svc.Get(ctx, f.calls["wuyan"], in.ID); return err },
		func() error { _, err := f.svc.Close(ctx, so, in.ID, "完成"); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for _, s := range f.entries(t) {
		if s.Entry.TargetType == "incident" && s.Entry.Outcome == audit.Success {
			seen[s.Entry.Action] = true
		}
	}
	for _, a := range []string{"incident.report", "incident.grade_confirm", "incident.update", "incident.evidence",
		"incident.analysis", "incident.action_add", "incident.action_state", "incident.list", "incident.read", "incident.close"} {
		if !seen[a] {
			t.Errorf("no audit entry for %s (have %v)", a, seen)
		}
	}
	// Entries hold no free text.
	for _, s := range f.entries(t) {
		if bytes.Contains(s.Leaf, []byte("心内科")) || bytes.Contains(s.Leaf, []byte("培训")) {
			t.Errorf("entry %d holds free text", s.Index)
		}
	}
	// Listing pages, newest first.
	f.clock.Advance(time.Second)
	f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	page, next, err := f.svc.List(ctx, f.calls["wuyan"], "", "", 1)
	if err != nil || len(page) != 1 || next == "" || page[0].Title == "" || len(page[0].Deadlines) == 0 {
		t.Fatalf("%+v %q %v", page, next, err)
	}
	rest, next2, err := f.svc.List(ctx, f.calls["wuyan"], "", next, 1)
	if err != nil || len(rest) != 1 || rest[0].ID != in.ID || next2 != "" {
		t.Fatalf("%+v %q %v", rest, next2, err)
	}
	open, _, err := f.svc.List(ctx, f.calls["wuyan"], incidents.Open, "", 10)
	if err != nil || len(open) != 1 || open[0].ID == in.ID {
		t.Fatalf("%+v %v", open, err)
	}
	_, _, err = f.svc.List(ctx, f.calls["wuyan"], "bogus", "", 10)
	medguardtest.WantField(t, err, "status")
}
