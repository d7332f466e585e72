package training_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/medguardtest"
	"medguard/internal/policy"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
	"medguard/internal/training"
)

// start is Monday 2 March 2026, 10:00 in Beijing.
var start = time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)

type fixture struct {
	clock *testkit.Clock
	db    *storage.DB
	log   *audit.Log
	gate  *gate.Gate
	id    *identity.Service
	staff *flakyStaff
	svc   *training.Service
	calls map[string]*medguard.Call
	// overdue and cleared are what the hooks were told.
	mu      sync.Mutex
	overdue []training.OverdueNotice
	cleared []string
	flagged []training.Assessment
}

// flakyStaff is the identity capability, which a test can make fail.
type flakyStaff struct {
	*identity.Service
	fail bool
}

func (f *flakyStaff) Roster(ctx context.Context) ([]identity.StaffMember, error) {
	if f.fail {
		return nil, errors.New("the database is away")
	}
	return f.Service.Roster(ctx)
}

// upheld is the accountability cases the assessment sees.
type upheld map[string]int

func (u upheld) UpheldCases(context.Context, time.Time, time.Time) (map[string]int, error) {
	return u, nil
}

// setup builds the register on SQLite, or PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set, wired to the gate as the server wires it,
// with cardiology and the offices, two doctors, a nurse, a department
// head, a records clerk, a security officer, a member of medical affairs,
// one of medical affairs who is also a doctor, and an auditor.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(start), calls: map[string]*medguard.Call{}}
	f.db = storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), training.Schema())
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	f.gate = gate.New(f.log, f.clock)
	kr := keys.NewKeyring(f.db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	f.id = identity.New(f.db, f.gate, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.staff = &flakyStaff{Service: f.id}
	f.svc = training.New(f.db, f.gate, kr, f.staff, training.Config{Location: time.FixedZone("CST", 8*3600)})
	f.svc.OnOverdue(func(_ context.Context, n training.OverdueNotice) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.overdue = append(f.overdue, n)
	})
	f.svc.OnCleared(func(_ context.Context, id string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cleared = append(f.cleared, id)
	})
	f.svc.OnFlagged(func(_ context.Context, a training.Assessment) { f.flagged = append(f.flagged, a) })
	adminID, err := f.id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	f.calls["admin"] = admin
	for _, d := range [][2]string{{"CARD", "心内科"}, {"MRD", "病案室"}, {"ITD", "信息科"}, {"MAD", "医务科"}, {"QCD", "质控科"}} {
		if _, err := f.id.CreateDepartment(ctx, admin, d[0], d[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct {
		name, display, dept string
		roles               []string
	}{
		{"zhangwei", "张伟", "CARD", []string{policy.Doctor}}, {"wangfang", "王芳", "CARD", []string{policy.Doctor}},
		{"liuyang", "刘洋", "CARD", []string{policy.Nurse}}, {"chenlei", "陈磊", "CARD", []string{policy.DeptHead}},
		{"zhaomin", "赵敏", "MRD", []string{policy.RecordsClerk}}, {"zhouqiang", "周强", "ITD", []string{policy.SecurityOfficer}},
		{"sunli", "孙丽", "MAD", []string{policy.MedicalAffairs}}, {"hejun", "何军", "MAD", []string{policy.MedicalAffairs, policy.Doctor}},
		{"wuyan", "吴燕", "QCD", []string{policy.Auditor}},
	} {
		created, pending, err := f.id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Department: u.dept, Roles: u.roles, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range pending {
			// The four-eyes approval itself is the approvals capability's:
			// here the grant is committed as its decision would.
			if _, err := f.gate.Record(ctx, gate.Event{Call: admin, Action: "approval.approve", Allowed: true, Rule: "allow.test"},
				f.id.GrantApprovedRole(created.ID, r, adminID, "test")); err != nil {
				t.Fatal(err)
			}
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: u.roles}, IP: "10.1.1.1", RequestID: "req-" + u.name}
	}
	f.calls["his"] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.APIKeyActor, ID: medguard.NewID(start), Name: "apikey:his",
		Department: "CARD", Scopes: []string{"record.read", "patient.read"}}, IP: "10.9.9.9"}
	if err := f.svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f.gate.Restrict(f.svc.Restrictions)
	return f
}

func (f *fixture) call(name string) *medguard.Call { return f.calls[name] }

// read asks the gate for a read of one of cardiology's records, as the
// records capability does, and returns the rule that decided (and
// whether it was a break-glass).
func (f *fixture) read(t *testing.T, who string, breakGlass bool) (string, bool) {
	t.Helper()
	call := *f.call(who)
	if breakGlass {
		call.BreakGlassReason, call.Purpose = "抢救：患者意识丧失", "emergency"
	}
	d, _, err := f.gate.Enter(context.Background(), gate.Passage{Call: &call, Action: policy.RecordRead,
		Resource: policy.Resource{Type: "record", ID: "01jrecord0000000000000000a", PatientID: "01jpatient000000000000000a",
			Departments: []string{"CARD"}, RecordType: "progress_note", Classification: policy.General}},
		func(policy.Decision) (audit.Mutation, error) { return nil, nil })
	if d.Allowed != (err == nil) {
		t.Fatalf("%s: decision %+v with error %v", who, d, err)
	}
	return d.Rule, d.BreakGlass
}

func (f *fixture) wantRead(t *testing.T, who, rule string) {
	t.Helper()
	if got, _ := f.read(t, who, false); got != rule {
		t.Fatalf("%s reads with rule %s, want %s", who, got, rule)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// privacy creates the general privacy course (pass mark 80).
func (f *fixture) privacy(t *testing.T) *training.Course {
	t.Helper()
	return must[*training.Course](t)(f.svc.CreateCourse(context.Background(), f.call("zhouqiang"), training.NewCourse{
		Code: "PRIV-101", Title: "患者隐私保护与病案安全", Kind: training.General, PassMark: 80,
		Description: "全体员工：病案保密制度、最小必要原则、违规责任追究。"}))
}

// sit holds a session of course now and records scores (-1: absent).
func (f *fixture) sit(t *testing.T, courseID string, scores map[string]int) *training.Session {
	t.Helper()
	ctx := context.Background()
	ss := must[*training.Session](t)(f.svc.CreateSession(ctx, f.call("sunli"), training.NewSession{CourseID: courseID,
		HeldAt: f.clock.Now().Add(-time.Hour), Location: "门诊楼三楼会议室", Trainer: "孙丽"}))
	var ids []string
	for who := range scores {
		ids = append(ids, f.call(who).Actor.ID)
	}
	must[*training.Session](t)(f.svc.Enrol(ctx, f.call("sunli"), ss.ID, training.Enrolment{UserIDs: ids}))
	for who, score := range scores {
		in := training.NewResult{Attended: score >= 0}
		if score >= 0 {
			in.Score = &score
		}
		recorder := f.call("sunli")
		if who == "sunli" {
			recorder = f.call("zhouqiang")
		}
		must[*training.Attendance](t)(f.svc.RecordResult(ctx, recorder, ss.ID, f.call(who).Actor.ID, in))
	}
	return ss
}

// letter publishes the commitment letter's first version.
func (f *fixture) letter(t *testing.T) *training.Letter {
	t.Helper()
	return must[*training.Letter](t)(f.svc.PublishLetter(context.Background(), f.call("zhouqiang"), training.NewLetter{
		Title: "病案信息安全承诺书", Body: "本人承诺：严格遵守医院病案管理与信息安全制度，不越权查询、不泄露患者信息。"}))
}

func (f *fixture) sign(t *testing.T, who string, l *training.Letter) {
	t.Helper()
	must[*training.Signature](t)(f.svc.Sign(context.Background(), f.call(who), l.Version, training.SignLetter{SHA256: l.SHA256}))
}

func (f *fixture) notices() []training.OverdueNotice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.overdue)
}

// TestNewInstallationGatesNobody: without a course required for record
// access nobody is refused, whatever they owe.
func TestNewInstallationGatesNobody(t *testing.T) {
	f := setup(t)
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	c := f.privacy(t)
	f.sit(t, c.ID, map[string]int{"zhangwei": 30}) // failed, and the letter unsigned
	f.letter(t)
	f.clock.Advance(400 * 24 * time.Hour) // and overdue
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	st, ok := f.svc.StandingOf(&f.call("zhangwei").Actor)
	if !ok || st.Gated || st.Enforced || !st.Warned || !st.Overdue {
		t.Fatalf("standing %+v", st)
	}
}

// TestNewDoctorGated is the acceptance: once the privacy course
// is required, a new doctor is refused records (deny.training_required)
// until the course is passed and the commitment letter signed, then
// allowed; break-glass in an emergency still opens, as break-glass.
func TestNewDoctorGated(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.privacy(t)
	l := f.letter(t)
	must[*training.Course](t)(f.svc.SetRequired(ctx, f.call("zhouqiang"), c.ID, training.Requirement{Required: true}))
	for _, step := range []struct {
		name string
		do   func()
		rule string
	}{
		{"not trained", func() {}, policy.RuleTrainingRequired},
		{"failed the exam", func() { f.sit(t, c.ID, map[string]int{"zhangwei": 60}) }, policy.RuleTrainingRequired},
		{"absent from the retake", func() { f.sit(t, c.ID, map[string]int{"zhangwei": -1}) }, policy.RuleTrainingRequired},
		{"passed, the letter unsigned", func() { f.sit(t, c.ID, map[string]int{"zhangwei": 92}) }, policy.RuleTrainingRequired},
		{"signed", func() { f.sign(t, "zhangwei", l) }, policy.RuleSameDepartment},
	} {
		step.do()
		if got, _ := f.read(t, "zhangwei", false); got != step.rule {
			t.Fatalf("%s: rule %s, want %s", step.name, got, step.rule)
		}
		if step.rule == policy.RuleTrainingRequired {
			// In an emergency the glass still breaks: marked, alerted and
			// reviewed like any break-glass.
			if rule, bg := f.read(t, "zhangwei", true); rule != policy.RuleBreakGlass || !bg {
				t.Fatalf("%s: break-glass gave %s (%v)", step.name, rule, bg)
			}
		}
	}
	// Those the rule is not about: a colleague untrained is refused too;
	// the security officer holds no clinical role; an API key is a system.
	f.wantRead(t, "wangfang", policy.RuleTrainingRequired)
	f.wantRead(t, "zhouqiang", policy.RuleNoPermission)
	f.wantRead(t, "his", policy.RuleSameDepartment)
	// The refusal is in the audit log with its rule.
	es, _, err := f.log.Search(ctx, audit.Query{Actor: "wangfang", Action: "record.read"})
	if err != nil || len(es) == 0 || es[0].Entry.Rule != policy.RuleTrainingRequired || es[0].Entry.Decision != audit.Deny {
		t.Fatalf("logged %+v (%v)", es, err)
	}
}

// TestRequiredFromLater: a course required from a later day warns the
// staff who have not passed it, and closes their access that day.
func TestRequiredFromLater(t *testing.T) {
	f := setup(t)
	c := f.privacy(t)
	from := start.Add(10 * 24 * time.Hour)
	must[*training.Course](t)(f.svc.SetRequired(context.Background(), f.call("zhouqiang"), c.ID, training.Requirement{Required: true, From: from}))
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	st, _ := f.svc.StandingOf(&f.call("zhangwei").Actor)
	if st.Gated || !st.Warned || st.GatesAt() == nil || !st.GatesAt().Equal(from) {
		t.Fatalf("standing before the day: %+v", st)
	}
	f.clock.Set(from)
	f.wantRead(t, "zhangwei", policy.RuleTrainingRequired)
	// Unmarking it opens again.
	must[*training.Course](t)(f.svc.SetRequired(context.Background(), f.call("sunli"), c.ID, training.Requirement{}))
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	_, err := f.svc.SetRequired(context.Background(), f.call("sunli"), c.ID, training.Requirement{Required: true, From: start})
	medguardtest.WantField(t, err, "from")
}

// TestOverdueWarnedThenGated: the twice-yearly training falls due a period
// after the last pass; the member of staff is warned (an announced
// notice), then refused after the grace period, then allowed again once
// trained; the notices are announced once and cleared.
func TestOverdueWarnedThenGated(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.privacy(t)
	l := f.letter(t)
	f.sit(t, c.ID, map[string]int{"zhangwei": 95, "wangfang": 88})
	f.sign(t, "zhangwei", l)
	f.sign(t, "wangfang", l)
	must[*training.Course](t)(f.svc.SetRequired(ctx, f.call("zhouqiang"), c.ID, training.Requirement{Required: true}))
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	settings := must[*training.Settings](t)(f.svc.GetSettings(ctx, f.call("wuyan")))
	if settings.PeriodDays != 182 || settings.GraceDays != 14 {
		t.Fatalf("default settings %+v", settings)
	}
	// Twice a year: due 182 days after the exam (held an hour before start).
	due := start.Add(-time.Hour).Add(182 * 24 * time.Hour)
	// The others (untrained) are announced at once; the two doctors not
	// before their training falls due.
	trained := func(ns []training.OverdueNotice) []training.OverdueNotice {
		return slices.DeleteFunc(ns, func(n training.OverdueNotice) bool { return n.Username != "zhangwei" && n.Username != "wangfang" })
	}
	if ns := must[[]training.OverdueNotice](t)(f.svc.CheckOverdue(ctx)); len(ns) == 0 || len(trained(ns)) != 0 {
		t.Fatalf("announced at start: %+v", ns)
	}
	f.clock.Set(due.Add(-time.Minute))
	if ns := trained(must[[]training.OverdueNotice](t)(f.svc.CheckOverdue(ctx))); len(ns) != 0 {
		t.Fatalf("announced before due: %+v", ns)
	}
	f.clock.Set(due)
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment) // warned, not refused
	ns := trained(must[[]training.OverdueNotice](t)(f.svc.CheckOverdue(ctx)))
	if len(ns) != 2 || ns[0].Obligation.Kind != training.ObligationPeriodic || ns[0].Obligation.Gating ||
		ns[0].Obligation.GatesAt == nil || !ns[0].Obligation.GatesAt.Equal(due.Add(14*24*time.Hour)) {
		t.Fatalf("notices %+v", ns)
	}
	if again := must[[]training.OverdueNotice](t)(f.svc.CheckOverdue(ctx)); len(again) != 0 {
		t.Fatalf("announced twice: %+v", again)
	}
	st, _ := f.svc.StandingOf(&f.call("zhangwei").Actor)
	if !st.Overdue || !st.Warned || st.Gated {
		t.Fatalf("standing when due: %+v", st)
	}
	// The grace period ends.
	f.clock.Set(due.Add(14 * 24 * time.Hour))
	f.wantRead(t, "zhangwei", policy.RuleTrainingRequired)
	ns = trained(must[[]training.OverdueNotice](t)(f.svc.CheckOverdue(ctx)))
	if len(ns) != 2 || !ns[0].Obligation.Gating {
		t.Fatalf("closing notices %+v", ns)
	}
	// A longer grace period, set by the office, opens again (and is logged).
	must[*training.Settings](t)(f.svc.SetSettings(ctx, f.call("sunli"), training.Settings{PeriodDays: 182, GraceDays: 30, AssessmentPassMark: 60}))
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	must[*training.Settings](t)(f.svc.SetSettings(ctx, f.call("sunli"), training.Settings{PeriodDays: 182, GraceDays: 14, AssessmentPassMark: 60}))
	f.wantRead(t, "zhangwei", policy.RuleTrainingRequired)
	// Trained again: allowed, and the notices are cleared.
	f.sit(t, c.ID, map[string]int{"zhangwei": 90})
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	f.wantRead(t, "wangfang", policy.RuleTrainingRequired)
	f.mu.Lock()
	cleared := slices.Clone(f.cleared)
	f.mu.Unlock()
	if !slices.Equal(cleared, []string{f.call("zhangwei").Actor.ID}) {
		t.Fatalf("cleared %v", cleared)
	}
	for _, bad := range []training.Settings{{PeriodDays: 7, GraceDays: 14, AssessmentPassMark: 60},
		{PeriodDays: 182, GraceDays: 90, AssessmentPassMark: 60}, {PeriodDays: 182, GraceDays: 14}} {
		if _, err := f.svc.SetSettings(ctx, f.call("sunli"), bad); !medguard.IsKind(err, medguard.Invalid) {
			t.Fatalf("settings %+v: %v", bad, err)
		}
	}
}

// TestRetrainingOrdersGate: an accountability case's retraining closes
// access at once, until the course is passed after the order; a
// department's retraining (the drills) after the grace period; the office
// lifts an order, but nobody their own.
func TestRetrainingOrdersGate(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.privacy(t)
	l := f.letter(t)
	f.sit(t, c.ID, map[string]int{"zhangwei": 95, "wangfang": 90, "liuyang": 85, "chenlei": 99, "hejun": 90})
	for _, who := range []string{"zhangwei", "wangfang", "liuyang", "chenlei", "hejun"} {
		f.sign(t, who, l)
	}
	must[*training.Course](t)(f.svc.SetRequired(ctx, f.call("zhouqiang"), c.ID, training.Requirement{Required: true}))
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)

	// The case's decider (an auditor) orders retraining: closed at once.
	caseID := medguard.NewID(start)
	o := must[*training.Order](t)(f.svc.OrderRetraining(ctx, f.call("wuyan"), f.call("zhangwei").Actor.ID, caseID, "越权查询病历，警告并重新培训"))
	if o.Source != training.SourceAccountability || o.CourseID != c.ID || o.Reference != caseID {
		t.Fatalf("order %+v", o)
	}
	f.wantRead(t, "zhangwei", policy.RuleTrainingRequired)
	// Nobody orders on a case about themselves; nobody without the
	// permission orders at all.
	_, err := f.svc.OrderRetraining(ctx, f.call("wuyan"), f.call("wuyan").Actor.ID, caseID, "自己")
	medguardtest.WantRule(t, err, policy.RuleOwnCase)
	_, err = f.svc.OrderRetraining(ctx, f.call("sunli"), f.call("wangfang").Actor.ID, caseID, "无权")
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	// Passing the course after the order satisfies it.
	f.clock.Advance(2 * time.Hour)
	f.sit(t, c.ID, map[string]int{"zhangwei": 85})
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)

	// The drills flag cardiology: warned, closed after the grace period.
	os := must[[]training.Order](t)(f.svc.OrderDepartmentRetraining(ctx, f.call("zhouqiang"), "CARD", "drills", "drill-2026-03", "连续两次应急演练不合格"))
	if len(os) != 4 { // zhangwei, wangfang, liuyang, chenlei: the clinical staff of CARD
		t.Fatalf("%d orders: %+v", len(os), os)
	}
	f.wantRead(t, "wangfang", policy.RuleSameDepartment)
	f.clock.Advance(14 * 24 * time.Hour)
	f.wantRead(t, "wangfang", policy.RuleTrainingRequired)
	// The office lifts liuyang's; hejun (medical affairs and a doctor,
	// gated by an order) may not lift his own, nor run the register.
	var nurseOrder string
	for _, o := range os {
		if o.UserID == f.call("liuyang").Actor.ID {
			nurseOrder = o.ID
		}
	}
	must[*training.Order](t)(f.svc.CancelOrder(ctx, f.call("sunli"), nurseOrder))
	if r, _ := f.read(t, "liuyang", false); r != policy.RuleSameDepartment {
		t.Fatalf("the nurse's order lifted: %s", r)
	}
	own := must[*training.Order](t)(f.svc.Retrain(ctx, f.call("sunli"), training.NewOrder{UserID: f.call("hejun").Actor.ID,
		Reason: "岗位调整，重新培训"}))
	f.wantRead(t, "hejun", policy.RuleTrainingRequired)
	_, err = f.svc.CancelOrder(ctx, f.call("hejun"), own.ID)
	medguardtest.WantRule(t, err, policy.RuleTrainingRequired)
	_, err = f.svc.Retrain(ctx, f.call("sunli"), training.NewOrder{UserID: f.call("sunli").Actor.ID, Reason: "自己"})
	medguardtest.WantRule(t, err, policy.RuleOwnTraining)
	open := must[[]training.Order](t)(f.svc.ListOrders(ctx, f.call("wuyan"), true))
	if len(open) != 4 { // wangfang, chenlei (department), zhangwei's second (department), hejun
		t.Fatalf("%d open orders", len(open))
	}
}

// TestNobodyCertifiesThemselves: the attacks on the register. A
// department head or an administrator records no result; a manager does
// not record their own, nor a member of staff their own attendance; a
// result is recorded once and only after the session; nobody signs a
// letter for someone else; a gated manager runs nothing.
func TestNobodyCertifiesThemselves(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.privacy(t)
	ss := must[*training.Session](t)(f.svc.CreateSession(ctx, f.call("sunli"), training.NewSession{CourseID: c.ID,
		HeldAt: start.Add(-time.Hour), Location: "礼堂", Trainer: "周强"}))
	ids := []string{f.call("zhangwei").Actor.ID, f.call("sunli").Actor.ID, f.call("chenlei").Actor.ID, f.call("hejun").Actor.ID}
	must[*training.Session](t)(f.svc.Enrol(ctx, f.call("sunli"), ss.ID, training.Enrolment{UserIDs: ids}))
	pass := 100
	full := training.NewResult{Attended: true, Score: &pass}
	for _, c := range []struct {
		by, about, rule string
	}{
		{"chenlei", "zhangwei", policy.RuleNoPermission},  // a department head
		{"admin", "zhangwei", policy.RuleNoPermission},    // an administrator
		{"zhangwei", "zhangwei", policy.RuleNoPermission}, // the doctor himself
		{"sunli", "sunli", policy.RuleOwnTraining},        // a manager about herself
		{"chenlei", "chenlei", policy.RuleNoPermission},
	} {
		_, err := f.svc.RecordResult(ctx, f.call(c.by), ss.ID, f.call(c.about).Actor.ID, full)
		medguardtest.WantRule(t, err, c.rule)
	}
	// Scheduled sessions take no results; a result is recorded once.
	later := must[*training.Session](t)(f.svc.CreateSession(ctx, f.call("sunli"), training.NewSession{CourseID: c.ID,
		HeldAt: start.Add(48 * time.Hour), Location: "礼堂", Trainer: "周强"}))
	must[*training.Session](t)(f.svc.Enrol(ctx, f.call("sunli"), later.ID, training.Enrolment{Department: "CARD"}))
	_, err := f.svc.RecordResult(ctx, f.call("sunli"), later.ID, f.call("zhangwei").Actor.ID, full)
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "not_held" {
		t.Fatalf("%v", err)
	}
	must[*training.Attendance](t)(f.svc.RecordResult(ctx, f.call("sunli"), ss.ID, f.call("zhangwei").Actor.ID, full))
	_, err = f.svc.RecordResult(ctx, f.call("zhouqiang"), ss.ID, f.call("zhangwei").Actor.ID, full)
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "recorded" {
		t.Fatalf("%v", err)
	}
	// Someone not enrolled; bad scores.
	_, err = f.svc.RecordResult(ctx, f.call("sunli"), ss.ID, f.call("wangfang").Actor.ID, full)
	medguardtest.WantField(t, err, "user_id")
	over := 101
	_, err = f.svc.RecordResult(ctx, f.call("sunli"), ss.ID, f.call("chenlei").Actor.ID, training.NewResult{Attended: true, Score: &over})
	medguardtest.WantField(t, err, "score")
	_, err = f.svc.RecordResult(ctx, f.call("sunli"), ss.ID, f.call("chenlei").Actor.ID, training.NewResult{Attended: false, Score: &pass})
	medguardtest.WantField(t, err, "score")
	// Letters are signed by their signer alone: the call is the signer.
	l := f.letter(t)
	_, err = f.svc.Sign(ctx, f.call("his"), l.Version, training.SignLetter{SHA256: l.SHA256})
	medguardtest.WantRule(t, err, policy.RuleNotOwnTraining)
	_, err = f.svc.Sign(ctx, f.call("zhangwei"), l.Version, training.SignLetter{SHA256: letterOther})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "text_changed" {
		t.Fatalf("%v", err)
	}
	f.sign(t, "zhangwei", l)
	_, err = f.svc.Sign(ctx, f.call("zhangwei"), l.Version, training.SignLetter{SHA256: l.SHA256})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "signed" {
		t.Fatalf("%v", err)
	}
	// A gated manager (medical affairs and a doctor) runs no register.
	must[*training.Course](t)(f.svc.SetRequired(ctx, f.call("zhouqiang"), c.ID, training.Requirement{Required: true}))
	_, err = f.svc.RecordResult(ctx, f.call("hejun"), ss.ID, f.call("chenlei").Actor.ID, full)
	medguardtest.WantRule(t, err, policy.RuleTrainingRequired)
	_, err = f.svc.SetRequired(ctx, f.call("hejun"), c.ID, training.Requirement{})
	medguardtest.WantRule(t, err, policy.RuleTrainingRequired)
	// The refusals are in the audit log.
	es, _, err := f.log.Search(ctx, audit.Query{Actor: "sunli", Action: "training.result"})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range es {
		if e.Entry.Decision == audit.Deny && e.Entry.Rule == policy.RuleOwnTraining {
			denied++
		}
	}
	if denied != 1 {
		t.Fatalf("%d refusals of sunli's own result logged", denied)
	}
}

const letterOther = "0000000000000000000000000000000000000000000000000000000000000000"

// TestLetterVersions: a new version that must be signed anew closes the
// access of those who signed only an earlier one from its effective day;
// one that need not be signed anew does not.
func TestLetterVersions(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.privacy(t)
	l1 := f.letter(t)
	f.sit(t, c.ID, map[string]int{"zhangwei": 90})
	f.sign(t, "zhangwei", l1)
	must[*training.Course](t)(f.svc.SetRequired(ctx, f.call("zhouqiang"), c.ID, training.Requirement{Required: true}))
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	l2 := must[*training.Letter](t)(f.svc.PublishLetter(ctx, f.call("zhouqiang"), training.NewLetter{Title: "病案信息安全承诺书（2026修订）",
		Body: "措辞修订，无新义务。"}))
	if l2.Version != 2 || l2.Resign {
		t.Fatalf("%+v", l2)
	}
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	eff := start.Add(7 * 24 * time.Hour)
	l3 := must[*training.Letter](t)(f.svc.PublishLetter(ctx, f.call("zhouqiang"), training.NewLetter{Title: "病案信息安全承诺书（第三版）",
		Body: "新增：不得使用移动存储介质拷贝病案。", Resign: true, EffectiveFrom: eff}))
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	st, _ := f.svc.StandingOf(&f.call("zhangwei").Actor)
	if !st.Warned || st.LetterVersion != 1 {
		t.Fatalf("standing %+v", st)
	}
	// Only the newest version is signed.
	_, err := f.svc.Sign(ctx, f.call("zhangwei"), l2.Version, training.SignLetter{SHA256: l2.SHA256})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "not_current" {
		t.Fatalf("%v", err)
	}
	f.clock.Set(eff)
	f.wantRead(t, "zhangwei", policy.RuleTrainingRequired)
	my := must[*training.MyLetter](t)(f.svc.MyLetter(ctx, f.call("zhangwei")))
	if my.Letter.Version != 3 || !my.Owed || len(my.Signatures) != 1 {
		t.Fatalf("my letter %+v", my)
	}
	f.sign(t, "zhangwei", l3)
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	ls := must[[]training.Letter](t)(f.svc.ListLetters(ctx, f.call("wuyan")))
	if len(ls) != 3 || ls[0].Signed != 1 || ls[2].Signed != 1 {
		t.Fatalf("letters %+v", ls)
	}
	_, err = f.svc.PublishLetter(ctx, f.call("zhouqiang"), training.NewLetter{Title: "承诺书", Body: "x", EffectiveFrom: start})
	medguardtest.WantField(t, err, "effective_from")
	_, err = f.svc.PublishLetter(ctx, f.call("zhouqiang"), training.NewLetter{Title: "承诺书", Body: " "})
	medguardtest.WantField(t, err, "body")
}

// TestSnapshotFailsClosed: before its first load the register refuses
// every clinical member of staff; a reload that fails keeps the last
// snapshot, so whoever was refused stays refused; a member of staff the
// snapshot does not know yet is judged untrained.
func TestSnapshotFailsClosed(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.privacy(t)
	l := f.letter(t)
	f.sit(t, c.ID, map[string]int{"zhangwei": 90})
	f.sign(t, "zhangwei", l)
	must[*training.Course](t)(f.svc.SetRequired(ctx, f.call("zhouqiang"), c.ID, training.Requirement{Required: true}))
	fresh := training.New(f.db, f.gate, nil, f.staff, training.Config{})
	if own, _ := fresh.Restrictions(&f.call("zhangwei").Actor, start); len(own) != 1 || own[0].Rule != policy.RuleTrainingRequired {
		t.Fatalf("before its load: %+v", own)
	}
	if own, _ := fresh.Restrictions(&f.call("zhouqiang").Actor, start); len(own) != 0 {
		t.Fatalf("a security officer before the load: %+v", own)
	}
	f.staff.fail = true
	if err := f.svc.Load(ctx); err == nil {
		t.Fatal("the reload did not fail")
	}
	if at, err := f.svc.LoadError(); err == nil || at.IsZero() {
		t.Fatal("the failure is not kept")
	}
	f.wantRead(t, "wangfang", policy.RuleTrainingRequired)
	f.wantRead(t, "zhangwei", policy.RuleSameDepartment)
	f.staff.fail = false
	if err := f.svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	stranger := medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(start), Name: "newbie", Department: "CARD", Roles: []string{policy.Doctor}}
	if own, _ := f.svc.Restrictions(&stranger, f.clock.Now()); len(own) != 1 {
		t.Fatalf("someone unknown: %+v", own)
	}
}
