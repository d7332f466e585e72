package plans_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/medguardtest"
	"medguard/internal/plans"
	"medguard/internal/policy"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// beijing is the hospital's time zone in these tests.
var beijing = time.FixedZone("CST", 8*60*60)

type fixture struct {
	clock *testkit.Clock
	db    *storage.DB
	log   *audit.Log
	svc   *plans.Service
	calls map[string]*medguard.Call
}

// setup builds the service at now on SQLite, or PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set, with cardiology, neurology and the IT
// department, two security officers (周强, 陈刚), an IT engineer (吴燕), a
// leader (郑国华), an auditor (孙丽) and a head nurse (刘芳).
func setup(t *testing.T, now time.Time) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(now), calls: map[string]*medguard.Call{}}
	f.db = storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), plans.Schema())
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	kr := keys.NewKeyring(f.db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	id := identity.New(f.db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.svc = plans.New(f.db, g, kr, id, plans.Config{Location: beijing})
	adminID, err := id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"ITD", "信息科"}} {
		if _, err := id.CreateDepartment(ctx, admin, d[0], d[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhouqiang", "周强", "ITD", policy.SecurityOfficer}, {"chengang", "陈刚", "ITD", policy.SecurityOfficer},
		{"wuyan", "吴燕", "ITD", policy.ITEngineer}, {"zhengguohua", "郑国华", "", policy.Leadership},
		{"sunli", "孙丽", "", policy.Auditor}, {"liufang", "刘芳", "CARD", policy.Nurse},
	} {
		created, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		// Privileged roles would need a four-eyes approval; the policy
		// decides on the call, so the calls name them directly.
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}, IP: "10.1.1.1"}
	}
	return f
}

// serverDown is the technical-failure plan of the tests: three steps of
// 15, 30 and 120 minutes.
func serverDown() plans.NewPlan {
	return plans.NewPlan{Type: plans.TechnicalFailure, Title: "电子病历系统宕机应急预案",
		Scenario: "电子病历数据库服务器故障，临床科室无法书写和调阅病历。",
		Responders: []plans.Responder{{Role: "总指挥", Name: "郑国华", Duty: "决定启动预案与切换"},
			{Role: "技术处置组", Name: "吴燕", Duty: "定位故障并恢复服务"}, {Role: "临床联络组", Duty: "通知科室改用纸质病历"}},
		Steps: []plans.Step{{Title: "发现与报告", Action: "值班工程师确认故障并报告总指挥", Role: "技术处置组", LimitMinutes: 15},
			{Title: "启动预案", Action: "总指挥决定启动预案，通知各科室", Role: "总指挥", LimitMinutes: 30},
			{Title: "恢复服务", Action: "切换至备用服务器并验证", Role: "技术处置组", LimitMinutes: 120}}}
}

// publish takes a new plan through the workflow: written by 周强, reviewed
// by 吴燕, approved by 郑国华.
func (f *fixture) publish(t *testing.T, in plans.NewPlan) *plans.Plan {
	t.Helper()
	ctx := context.Background()
	p, err := f.svc.CreatePlan(ctx, f.calls["zhouqiang"], in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Submit(ctx, f.calls["zhouqiang"], p.ID, 1, plans.Note{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Review(ctx, f.calls["wuyan"], p.ID, 1, plans.Decision{Approve: true, Note: "流程完整，时限合理"}); err != nil {
		t.Fatal(err)
	}
	p, err = f.svc.Approve(ctx, f.calls["zhengguohua"], p.ID, 1, plans.Decision{Approve: true, Note: "同意发布"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWorkflowSeparatesDuties takes a plan from draft to published: the
// author never reviews it, nor does a colleague who edited it; the
// reviewer never approves it, even holding the leadership's role; a
// returned version needs a new review; every step is in the audit log,
// refused ones too.
func TestWorkflowSeparatesDuties(t *testing.T) {
	f := setup(t, time.Date(2028, 2, 29, 2, 0, 0, 0, time.UTC)) // a leap day, 10:00 in Beijing
	ctx := context.Background()
	author, editor, engineer, leader := f.calls["zhouqiang"], f.calls["chengang"], f.calls["wuyan"], f.calls["zhengguohua"]

	bad := serverDown()
	bad.Steps[1].Role = "后勤组"
	_, err := f.svc.CreatePlan(ctx, author, bad)
	medguardtest.WantField(t, err, "steps[1].role")
	bad = serverDown()
	bad.Steps[2].LimitMinutes = 0
	_, err = f.svc.CreatePlan(ctx, author, bad)
	medguardtest.WantField(t, err, "steps[2].limit_minutes")
	bad = serverDown()
	bad.Type = "flood"
	_, err = f.svc.CreatePlan(ctx, author, bad)
	medguardtest.WantField(t, err, "type")
	_, err = f.svc.CreatePlan(ctx, f.calls["sunli"], serverDown())
	medguardtest.WantRule(t, err, policy.RuleNoPermission)

	p, err := f.svc.CreatePlan(ctx, author, serverDown())
	if err != nil {
		t.Fatal(err)
	}
	if p.OpenVersion != 1 || p.OpenStatus != plans.Draft || p.PublishedVersion != 0 || len(p.Versions) != 1 ||
		!slices.Equal(p.Versions[0].Authors, []string{"zhouqiang"}) {
		t.Fatalf("new plan %+v", p)
	}
	// A colleague edits the draft: an author too.
	edit := serverDown()
	edit.Scenario += "持续超过30分钟时启动本预案。"
	if p, err = f.svc.UpdateDraft(ctx, editor, p.ID, 1, plans.DraftChanges{Title: edit.Title, Scenario: edit.Scenario,
		Responders: edit.Responders, Steps: edit.Steps}); err != nil || !slices.Equal(p.Versions[0].Authors, []string{"zhouqiang", "chengang"}) {
		t.Fatalf("edited %+v %v", p, err)
	}
	// Not reviewed before it is submitted.
	_, err = f.svc.Review(ctx, engineer, p.ID, 1, plans.Decision{Approve: true, Note: "通过"})
	medguardtest.WantKind(t, err, medguard.Conflict)
	if _, err = f.svc.Submit(ctx, author, p.ID, 1, plans.Note{Note: "请专家评审"}); err != nil {
		t.Fatal(err)
	}
	// Submitted, it is no longer a draft.
	_, err = f.svc.UpdateDraft(ctx, author, p.ID, 1, plans.DraftChanges(plans.Content{Title: edit.Title, Scenario: "改", Responders: edit.Responders,
		Steps: edit.Steps}))
	if me := medguardtest.WantKind(t, err, medguard.Conflict); me.Code != "version_immutable" {
		t.Fatalf("edited in review: %v", err)
	}
	// Neither author reviews it; a reviewer needs a note.
	_, err = f.svc.Review(ctx, author, p.ID, 1, plans.Decision{Approve: true, Note: "自审"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	_, err = f.svc.Review(ctx, editor, p.ID, 1, plans.Decision{Approve: true, Note: "自审"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	_, err = f.svc.Review(ctx, engineer, p.ID, 1, plans.Decision{Approve: true})
	medguardtest.WantField(t, err, "note")
	_, err = f.svc.Review(ctx, leader, p.ID, 1, plans.Decision{Approve: true, Note: "通过"})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	// Returned by the reviewer: a draft again.
	if p, err = f.svc.Review(ctx, engineer, p.ID, 1, plans.Decision{Approve: false, Note: "恢复服务时限需与RTO一致"}); err != nil || p.OpenStatus != plans.Draft {
		t.Fatalf("returned %+v %v", p, err)
	}
	if _, err = f.svc.Submit(ctx, author, p.ID, 1, plans.Note{}); err != nil {
		t.Fatal(err)
	}
	if p, err = f.svc.Review(ctx, engineer, p.ID, 1, plans.Decision{Approve: true, Note: "已修改，同意报批"}); err != nil || p.OpenStatus != plans.Reviewed ||
		p.Versions[0].ReviewedBy != "wuyan" {
		t.Fatalf("reviewed %+v %v", p, err)
	}
	// The reviewer never approves it, even as a leader; nor the authors.
	reviewerLeader := *engineer
	reviewerLeader.Actor.Roles = []string{policy.ITEngineer, policy.Leadership}
	_, err = f.svc.Approve(ctx, &reviewerLeader, p.ID, 1, plans.Decision{Approve: true, Note: "同意"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	authorLeader := *editor
	authorLeader.Actor.Roles = []string{policy.Leadership}
	_, err = f.svc.Approve(ctx, &authorLeader, p.ID, 1, plans.Decision{Approve: true, Note: "同意"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	_, err = f.svc.Approve(ctx, author, p.ID, 1, plans.Decision{Approve: true, Note: "同意"})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	p, err = f.svc.Approve(ctx, leader, p.ID, 1, plans.Decision{Approve: true, Note: "同意发布实施"})
	if err != nil {
		t.Fatal(err)
	}
	// Published on the leap day: the yearly review is due on 28 February
	// 2029 in the hospital's calendar… which AddDate makes 1 March.
	if p.PublishedVersion != 1 || p.OpenVersion != 0 || p.Versions[0].Status != plans.Published || p.Versions[0].ApprovedBy != "zhengguohua" ||
		p.ReviewDueAt == nil || p.ReviewDueAt.In(beijing).Format("2006-01-02 15:04") != "2029-03-01 10:00" {
		t.Fatalf("published %+v (review due %v)", p, p.ReviewDueAt)
	}
	var actions []string
	for _, e := range p.History {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "created,edited,submitted,returned,submitted,reviewed,published" {
		t.Fatalf("history %v", actions)
	}
	if p.History[3].Note != "恢复服务时限需与RTO一致" || p.History[3].Actor != "wuyan" {
		t.Fatalf("the return's event: %+v", p.History[3])
	}
	// The refused steps are in the audit log with their rule.
	refused := 0
	size, _, _ := f.log.Head(ctx)
	entries, err := f.log.Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Entry.Rule == policy.RuleSeparationOfDuties && e.Entry.TargetID == p.ID {
			refused++
		}
	}
	if refused != 4 {
		t.Fatalf("%d refusals of separation of duties in the log, want 4", refused)
	}
	if list, err := f.svc.ListPlans(ctx, f.calls["sunli"], plans.PlanQuery{Status: plans.Published}); err != nil || len(list) != 1 {
		t.Fatalf("published plans %v %v", list, err)
	}
	_, err = f.svc.ListPlans(ctx, f.calls["liufang"], plans.PlanQuery{})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
}

// TestBadTextRefused: a scenario, a step's action or a workflow note that
// is not valid UTF-8 is refused as Invalid naming the field — its bad
// bytes were silently dropped before — and nothing is stored or changed;
// line breaks and tabs are kept in a scenario as written.
func TestBadTextRefused(t *testing.T) {
	f := setup(t, time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC))
	ctx := context.Background()
	author, engineer := f.calls["zhouqiang"], f.calls["wuyan"]
	count := func(table string) int { return storagetest.Rows(t, f.db, table) }

	for _, c := range []struct {
		field string
		edit  func(*plans.NewPlan)
	}{
		{"title", func(p *plans.NewPlan) { p.Title = "电子病历系统\xff宕机应急预案" }},
		{"title", func(p *plans.NewPlan) { p.Title = "电子病历系统\n宕机应急预案" }},
		{"scenario", func(p *plans.NewPlan) { p.Scenario = "电子病历数据库服务器\xff故障" }},
		{"scenario", func(p *plans.NewPlan) { p.Scenario = "电子病历数据库服务器\xe6\x95" }},
		{"scenario", func(p *plans.NewPlan) { p.Scenario = "服务器故障\x1b[2J" }},
		{"responders[0].duty", func(p *plans.NewPlan) { p.Responders[0].Duty = "决定启动\xff预案" }},
		{"steps[2].action", func(p *plans.NewPlan) { p.Steps[2].Action = "切换至备用服务器\xff并验证" }},
		{"steps[2].action", func(p *plans.NewPlan) { p.Steps[2].Action = "切换至备用服务器\u0085并验证" }},
	} {
		in := serverDown()
		c.edit(&in)
		_, err := f.svc.CreatePlan(ctx, author, in)
		medguardtest.WantField(t, err, c.field)
	}
	if n, m, e := count("plans"), count("plan_versions"), count("plan_events"); n != 0 || m != 0 || e != 0 {
		t.Fatalf("refused plans stored: %d plans, %d versions, %d events", n, m, e)
	}

	in := serverDown()
	in.Scenario = "电子病历数据库服务器故障：\r\n\t一、临床科室无法书写病历；\n\t二、无法调阅病历。"
	p, err := f.svc.CreatePlan(ctx, author, in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Versions[0].Scenario != in.Scenario {
		t.Fatalf("scenario %q, want %q as written", p.Versions[0].Scenario, in.Scenario)
	}

	// A draft's edit and the workflow's notes refuse bad text too, and
	// change nothing.
	edit := serverDown()
	_, err = f.svc.UpdateDraft(ctx, author, p.ID, 1, plans.DraftChanges{Title: edit.Title, Scenario: "改\xff",
		Responders: edit.Responders, Steps: edit.Steps})
	medguardtest.WantField(t, err, "scenario")
	_, err = f.svc.Submit(ctx, author, p.ID, 1, plans.Note{Note: "请专家\xff评审"})
	medguardtest.WantField(t, err, "note")
	if _, err = f.svc.Submit(ctx, author, p.ID, 1, plans.Note{Note: "请专家评审"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Review(ctx, engineer, p.ID, 1, plans.Decision{Approve: false, Note: "恢复服务时限\xff需与RTO一致"})
	medguardtest.WantField(t, err, "note")
	got, err := f.svc.GetPlan(ctx, f.calls["sunli"], p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OpenStatus != plans.InReview || got.Versions[0].Scenario != in.Scenario || len(got.History) != 2 ||
		got.History[1].Note != "请专家评审" {
		t.Fatalf("after refused changes: %+v", got)
	}
}

// TestPublishedVersionsNeverChange: a published version stays as it is;
// a change is a new draft copied from it, one at a time; publishing it
// supersedes the old one, which keeps its content.
func TestPublishedVersionsNeverChange(t *testing.T) {
	f := setup(t, time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC))
	ctx := context.Background()
	p := f.publish(t, serverDown())
	v1 := p.Versions[0]
	edit := serverDown()
	edit.Steps[2].LimitMinutes = 60
	changes := plans.DraftChanges{Title: edit.Title, Scenario: edit.Scenario, Responders: edit.Responders, Steps: edit.Steps}
	_, err := f.svc.UpdateDraft(ctx, f.calls["zhouqiang"], p.ID, 1, changes)
	if me := medguardtest.WantKind(t, err, medguard.Conflict); me.Code != "version_immutable" {
		t.Fatalf("changed a published version: %v", err)
	}
	_, err = f.svc.UpdateDraft(ctx, f.calls["zhouqiang"], p.ID, 9, changes)
	medguardtest.WantKind(t, err, medguard.NotFound)
	// A new version: a copy, by 陈刚, who becomes its only author.
	p, err = f.svc.NewVersion(ctx, f.calls["chengang"], p.ID)
	if err != nil || p.OpenVersion != 2 || p.PublishedVersion != 1 || p.Versions[0].Scenario != v1.Scenario ||
		!slices.Equal(p.Versions[0].Authors, []string{"chengang"}) {
		t.Fatalf("new version %+v %v", p, err)
	}
	_, err = f.svc.NewVersion(ctx, f.calls["zhouqiang"], p.ID)
	medguardtest.WantKind(t, err, medguard.Conflict)
	if _, err = f.svc.UpdateDraft(ctx, f.calls["chengang"], p.ID, 2, changes); err != nil {
		t.Fatal(err)
	}
	// 周强 wrote version 1 but not version 2: he may review it.
	if _, err = f.svc.Submit(ctx, f.calls["chengang"], p.ID, 2, plans.Note{}); err != nil {
		t.Fatal(err)
	}
	if _, err = f.svc.Review(ctx, f.calls["zhouqiang"], p.ID, 2, plans.Decision{Approve: true, Note: "同意缩短恢复时限"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if p, err = f.svc.Approve(ctx, f.calls["zhengguohua"], p.ID, 2, plans.Decision{Approve: true, Note: "同意"}); err != nil {
		t.Fatal(err)
	}
	if p.PublishedVersion != 2 || p.Versions[0].Status != plans.Published || p.Versions[1].Status != plans.Superseded ||
		p.Versions[1].Steps[2].LimitMinutes != 120 || p.Versions[0].Steps[2].LimitMinutes != 60 ||
		!p.Versions[1].UpdatedAt.Equal(v1.UpdatedAt) || p.Versions[1].Scenario != v1.Scenario {
		t.Fatalf("after version 2: %+v", p)
	}
	_, err = f.svc.UpdateDraft(ctx, f.calls["zhouqiang"], p.ID, 1, changes)
	medguardtest.WantKind(t, err, medguard.Conflict)
}

// TestYearlyReview: a published plan's review falls due a year on; it is
// announced once, and the yearly review — never by its authors — resolves
// it and sets the next one.
func TestYearlyReview(t *testing.T) {
	f := setup(t, time.Date(2026, 12, 31, 15, 30, 0, 0, time.UTC)) // 23:30 on 31 December in Beijing
	ctx := context.Background()
	var overdue []plans.OverduePlanReview
	var reviewed []string
	f.svc.OnPlanReviewOverdue(func(_ context.Context, o plans.OverduePlanReview) { overdue = append(overdue, o) })
	f.svc.OnPlanReviewed(func(_ context.Context, p plans.Plan) { reviewed = append(reviewed, p.ID) })
	p := f.publish(t, serverDown())
	if p.ReviewDueAt.In(beijing).Format("2006-01-02") != "2027-12-31" || len(reviewed) != 1 {
		t.Fatalf("due %v, reviewed hooks %v", p.ReviewDueAt, reviewed)
	}
	if err := f.svc.CheckOverdue(ctx); err != nil || len(overdue) != 0 {
		t.Fatalf("overdue at once: %v %v", overdue, err)
	}
	f.clock.Advance(366 * 24 * time.Hour)
	if err := f.svc.CheckOverdue(ctx); err != nil || len(overdue) != 1 || overdue[0].PlanID != p.ID {
		t.Fatalf("overdue: %v %v", overdue, err)
	}
	if err := f.svc.CheckOverdue(ctx); err != nil || len(overdue) != 1 {
		t.Fatalf("announced twice: %v %v", overdue, err)
	}
	if list, _ := f.svc.ListPlans(ctx, f.calls["sunli"], plans.PlanQuery{Overdue: true}); len(list) != 1 || !list[0].ReviewOverdue {
		t.Fatalf("overdue plans %v", list)
	}
	_, err := f.svc.AnnualReview(ctx, f.calls["zhouqiang"], p.ID, plans.Note{Note: "复核"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	_, err = f.svc.AnnualReview(ctx, f.calls["chengang"], p.ID, plans.Note{})
	medguardtest.WantField(t, err, "note")
	got, err := f.svc.AnnualReview(ctx, f.calls["chengang"], p.ID, plans.Note{Note: "年度复核：联系人已更新，内容仍适用"})
	if err != nil || got.ReviewOverdue || got.LastReviewedBy != "chengang" || len(reviewed) != 2 ||
		!got.ReviewDueAt.Equal(f.clock.Now().In(beijing).AddDate(1, 0, 0).Truncate(time.Millisecond).UTC()) {
		t.Fatalf("reviewed %+v %v", got, err)
	}
	// A plan never published has nothing to review.
	draft, _ := f.svc.CreatePlan(ctx, f.calls["zhouqiang"], serverDown())
	_, err = f.svc.AnnualReview(ctx, f.calls["chengang"], draft.ID, plans.Note{Note: "复核"})
	medguardtest.WantKind(t, err, medguard.Conflict)
}

// TestPeriods checks the drill periods on awkward dates, in the
// hospital's calendar.
func TestPeriods(t *testing.T) {
	f := setup(t, time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC))
	for _, c := range []struct {
		at                 time.Time
		tabletop, live     string
		tabletopEnd, start string
	}{
		// 23:30 on 31 December in Beijing is still 2026's fourth quarter.
		{time.Date(2026, 12, 31, 15, 30, 0, 0, time.UTC), "2026-Q4", "2026-H2", "2027-01-01", "2026-10-01"},
		// 00:10 on 1 January in Beijing (31 December in UTC) is 2027's first.
		{time.Date(2026, 12, 31, 16, 10, 0, 0, time.UTC), "2027-Q1", "2027-H1", "2027-04-01", "2027-01-01"},
		{time.Date(2028, 2, 29, 12, 0, 0, 0, beijing), "2028-Q1", "2028-H1", "2028-04-01", "2028-01-01"},
		{time.Date(2026, 3, 31, 23, 59, 0, 0, beijing), "2026-Q1", "2026-H1", "2026-04-01", "2026-01-01"},
		{time.Date(2026, 4, 1, 0, 0, 0, 0, beijing), "2026-Q2", "2026-H1", "2026-07-01", "2026-04-01"},
		{time.Date(2027, 7, 1, 0, 0, 0, 0, beijing), "2027-Q3", "2027-H2", "2027-10-01", "2027-07-01"},
	} {
		name, start, end := f.svc.Period(plans.Tabletop, c.at)
		live, _, _ := f.svc.Period(plans.Live, c.at)
		if name != c.tabletop || live != c.live || end.In(beijing).Format("2006-01-02") != c.tabletopEnd ||
			start.In(beijing).Format("2006-01-02") != c.start || start.In(beijing).Hour() != 0 {
			t.Errorf("%v: %s %s %v–%v, want %s %s …–%s", c.at, name, live, start.In(beijing), end.In(beijing), c.tabletop, c.live, c.tabletopEnd)
		}
	}
}

// drill is a drill of the server-down plan: the steps took 10, 25 and 90
// minutes unless late says otherwise (then step 3 took 150, carried by
// late's department).
func drill(p *plans.Plan, kind string, held time.Time, depts []string, late string) plans.NewDrill {
	took := []int{10, 25, 90}
	d := plans.NewDrill{Kind: kind, PlanID: p.ID, HeldAt: held, Departments: depts,
		Participants: []plans.Participant{{Name: "吴燕", Department: "ITD", Role: "技术处置组"}, {Name: "郑国华", Role: "总指挥"}}}
	if !slices.Contains(depts, "ITD") {
		d.Participants[0].Department = ""
	}
	for i := range 3 {
		m := took[i]
		d.Steps = append(d.Steps, plans.StepTime{Step: i + 1, TookMinutes: &m})
	}
	if late != "" {
		m := 150
		d.Steps[2].TookMinutes, d.Steps[2].Department = &m, late
	}
	return d
}

// TestCadence: from the quarter the first plan was published, a tabletop
// drill is due every quarter and a live one every half-year; a period
// that ends without one is announced once, at the turn of the year in
// Beijing (31 December in UTC); a drill of the kind resolves it.
func TestCadence(t *testing.T) {
	// 2026-08-10 10:00 in Beijing: the third quarter.
	f := setup(t, time.Date(2026, 8, 10, 2, 0, 0, 0, time.UTC))
	ctx := context.Background()
	var missed []string
	var kept []string
	f.svc.OnCadenceMissed(func(_ context.Context, m plans.MissedCadence) { missed = append(missed, m.Key()) })
	f.svc.OnCadenceKept(func(_ context.Context, kind string, keys []string) { kept = append(kept, keys...) })
	st, err := f.svc.Status(ctx, f.calls["sunli"])
	if err != nil || len(st.Cadence) != 2 || st.Cadence[0].Started {
		t.Fatalf("before any plan: %+v %v", st, err)
	}
	p := f.publish(t, serverDown())
	st, _ = f.svc.Status(ctx, f.calls["sunli"])
	tt, live := st.Cadence[0], st.Cadence[1]
	if !tt.Started || tt.Period != "2026-Q3" || tt.Done || tt.NextDueAt.In(beijing).Format("2006-01-02") != "2026-10-01" ||
		live.Period != "2026-H2" || live.NextDueAt.In(beijing).Format("2006-01-02") != "2027-01-01" {
		t.Fatalf("cadence after publishing: %+v", st.Cadence)
	}
	// A tabletop drill in the third quarter; then nothing until New Year.
	f.clock.Advance(time.Hour)
	if _, err := f.svc.RecordDrill(ctx, f.calls["zhouqiang"], drill(p, plans.Tabletop, f.clock.Now().Add(-30*time.Minute), []string{"ITD"}, "")); err != nil {
		t.Fatal(err)
	}
	st, _ = f.svc.Status(ctx, f.calls["sunli"])
	if tt = st.Cadence[0]; !tt.Done || tt.NextDueAt.In(beijing).Format("2006-01-02") != "2027-01-01" {
		t.Fatalf("tabletop done: %+v", tt)
	}
	// 23:30 on 31 December in Beijing: nothing missed yet.
	f.clock.Set(time.Date(2026, 12, 31, 15, 30, 0, 0, time.UTC))
	if err := f.svc.CheckOverdue(ctx); err != nil || len(missed) != 0 {
		t.Fatalf("missed before the year ended: %v %v", missed, err)
	}
	// 00:10 on 1 January: the fourth quarter and the second half-year
	// ended without their drills.
	f.clock.Set(time.Date(2026, 12, 31, 16, 10, 0, 0, time.UTC))
	if err := f.svc.CheckOverdue(ctx); err != nil {
		t.Fatal(err)
	}
	slices.Sort(missed)
	if !slices.Equal(missed, []string{"live-2026-H2", "tabletop-2026-Q4"}) {
		t.Fatalf("missed %v", missed)
	}
	if err := f.svc.CheckOverdue(ctx); err != nil || len(missed) != 2 {
		t.Fatalf("announced twice: %v %v", missed, err)
	}
	st, _ = f.svc.Status(ctx, f.calls["sunli"])
	if tt = st.Cadence[0]; tt.Period != "2027-Q1" || !slices.Equal(tt.Missed, []string{"2026-Q4"}) ||
		!slices.Equal(st.Cadence[1].Missed, []string{"2026-H2"}) {
		t.Fatalf("cadence at New Year: %+v", st.Cadence)
	}
	// A tabletop drill at 00:40 on New Year's day keeps the cadence.
	f.clock.Advance(30 * time.Minute)
	if _, err := f.svc.RecordDrill(ctx, f.calls["zhouqiang"], drill(p, plans.Tabletop, f.clock.Now(), []string{"ITD"}, "")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kept, []string{"tabletop-2026-Q4"}) {
		t.Fatalf("kept %v", kept)
	}
	st, _ = f.svc.Status(ctx, f.calls["sunli"])
	if tt = st.Cadence[0]; !tt.Done || tt.Period != "2027-Q1" || tt.LastDrillAt == nil {
		t.Fatalf("cadence after the drill: %+v", tt)
	}
}

// TestTwoFailedDrillsFlagADepartment: a department that fails two drills
// in a row is flagged for retraining once; a department that passed one
// of them is not; a passed drill clears the flag.
func TestTwoFailedDrillsFlagADepartment(t *testing.T) {
	f := setup(t, time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC))
	ctx := context.Background()
	var flagged, cleared []plans.RetrainingFlag
	f.svc.OnRetrainingNeeded(func(_ context.Context, fl plans.RetrainingFlag) { flagged = append(flagged, fl) })
	f.svc.OnRetrained(func(_ context.Context, fl plans.RetrainingFlag) { cleared = append(cleared, fl) })
	p := f.publish(t, serverDown())
	officer := f.calls["zhouqiang"]
	record := func(d plans.NewDrill) *plans.Drill {
		t.Helper()
		f.clock.Advance(24 * time.Hour)
		d.HeldAt = f.clock.Now().Add(-time.Hour)
		got, err := f.svc.RecordDrill(ctx, officer, d)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// Cardiology is late on the third step; neurology is not.
	d1 := record(drill(p, plans.Tabletop, time.Time{}, []string{"CARD", "NEUR"}, "CARD"))
	if d1.Passed || d1.Departments[0] != (plans.DepartmentResult{Department: "CARD", Passed: false}) || !d1.Departments[1].Passed ||
		d1.Steps[2].Met || !d1.Steps[0].Met || len(flagged) != 0 {
		t.Fatalf("first drill %+v", d1)
	}
	// A major gap in cardiology, a minor one in neurology.
	d2in := drill(p, plans.Live, time.Time{}, []string{"CARD", "NEUR"}, "")
	d2in.Gaps = []plans.NewGap{{Department: "CARD", Severity: plans.Major, Description: "夜班护士不知道纸质病历存放位置"},
		{Department: "NEUR", Severity: plans.Minor, Description: "通知电话占线"}}
	d2 := record(d2in)
	if d2.Passed || d2.Departments[0].Passed || !d2.Departments[1].Passed {
		t.Fatalf("second drill %+v", d2)
	}
	if len(flagged) != 1 || flagged[0].Department != "CARD" || !slices.Equal(flagged[0].Drills, []string{d2.ID, d1.ID}) {
		t.Fatalf("flagged %+v", flagged)
	}
	need, err := f.svc.RetrainingNeeded(ctx)
	if err != nil || len(need) != 1 || need[0].Department != "CARD" {
		t.Fatalf("retraining needed %v %v", need, err)
	}
	// A third failure: flagged already, told once.
	record(drill(p, plans.Tabletop, time.Time{}, []string{"CARD"}, "CARD"))
	if len(flagged) != 1 {
		t.Fatalf("flagged again: %v", flagged)
	}
	// An unattributed failure fails every department of the drill.
	nobody := drill(p, plans.Tabletop, time.Time{}, []string{"NEUR"}, "")
	nobody.Steps[1].TookMinutes = nil
	if d := record(nobody); d.Passed || d.Departments[0].Passed || d.Steps[1].Met || d.Steps[1].TookMinutes != nil {
		t.Fatalf("a step not done: %+v", d)
	}
	// Neurology: passed, passed, failed — not two in a row.
	if len(flagged) != 1 {
		t.Fatalf("neurology flagged after one failure: %v", flagged)
	}
	// A drill held before the latest ones, recorded late, changes nothing.
	early := drill(p, plans.Tabletop, time.Time{}, []string{"NEUR"}, "NEUR")
	early.HeldAt = d1.HeldAt.Add(-time.Hour)
	f.clock.Advance(time.Hour)
	if _, err := f.svc.RecordDrill(ctx, officer, early); err != nil {
		t.Fatal(err)
	}
	if len(flagged) != 1 {
		t.Fatalf("flagged by an older drill: %v", flagged)
	}
	// Cardiology passes: the flag is cleared.
	record(drill(p, plans.Live, time.Time{}, []string{"CARD"}, ""))
	if len(cleared) != 1 || cleared[0].Department != "CARD" {
		t.Fatalf("cleared %v", cleared)
	}
	if need, _ := f.svc.RetrainingNeeded(ctx); len(need) != 0 {
		t.Fatalf("still flagged: %v", need)
	}
	if failed, _ := f.svc.ListDrills(ctx, f.calls["sunli"], plans.DrillQuery{Department: "CARD", Failed: true}); len(failed) != 3 {
		t.Fatalf("cardiology's failed drills: %d", len(failed))
	}
	// The posture reports' figure: drills held in a period, and passed.
	if held, passed, err := f.svc.DrillsHeld(ctx, early.HeldAt, f.clock.Now()); err != nil || held != 6 || passed != 1 {
		t.Errorf("drills held %d, passed %d, %v; want 6 and 1", held, passed, err)
	}
	if held, _, _ := f.svc.DrillsHeld(ctx, d1.HeldAt.Add(time.Minute), f.clock.Now()); held != 4 {
		t.Errorf("drills held after the first %d, want 4", held)
	}
}

// TestDrillRecord checks a drill's record: bad input changes nothing; the
// gaps and improvement items are kept (sealed at rest); an improvement
// item past its due date is announced once and closed once; the backups'
// restore drills are listed with the drills, when the caller may see them.
func TestDrillRecord(t *testing.T) {
	f := setup(t, time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC))
	ctx := context.Background()
	officer := f.calls["zhouqiang"]
	draft, _ := f.svc.CreatePlan(ctx, officer, serverDown())
	p := f.publish(t, serverDown())
	f.clock.Advance(2 * time.Hour)
	held := f.clock.Now().Add(-time.Hour)
	good := func() plans.NewDrill {
		d := drill(p, plans.Live, held, []string{"ITD", "CARD"}, "")
		d.Gaps = []plans.NewGap{{Department: "CARD", Severity: plans.Minor, Description: "心内科未收到短信通知，值班表电话过期"}}
		d.Improvements = []plans.NewImprovement{{Action: "更新各科室应急联络表并每月核对", Owner: "liufang", Department: "CARD",
			DueAt: held.Add(7 * 24 * time.Hour)}}
		d.Notes = "演练总体顺利，切换用时90分钟。"
		return d
	}
	for _, c := range []struct {
		field string
		edit  func(*plans.NewDrill)
	}{
		{"kind", func(d *plans.NewDrill) { d.Kind = "fire" }},
		{"plan_id", func(d *plans.NewDrill) { d.PlanID = medguard.NewID(held) }},
		{"plan_version", func(d *plans.NewDrill) { d.PlanID = draft.ID }},
		{"plan_version", func(d *plans.NewDrill) { d.PlanVersion = 2 }},
		{"held_at", func(d *plans.NewDrill) { d.HeldAt = f.clock.Now().Add(time.Hour) }},
		{"held_at", func(d *plans.NewDrill) { d.HeldAt = held.Add(-30 * 24 * time.Hour) }},
		{"departments[1]", func(d *plans.NewDrill) { d.Departments[1] = "XXXX" }},
		{"steps", func(d *plans.NewDrill) { d.Steps = d.Steps[:2] }},
		{"steps[0].took_minutes", func(d *plans.NewDrill) { m := -1; d.Steps[0].TookMinutes = &m }},
		{"steps[1].step", func(d *plans.NewDrill) { d.Steps[1].Step = 3 }},
		{"steps[2].department", func(d *plans.NewDrill) { d.Steps[2].Department = "NEUR" }},
		{"gaps[0].severity", func(d *plans.NewDrill) { d.Gaps[0].Severity = "huge" }},
		{"gaps[0].description", func(d *plans.NewDrill) { d.Gaps[0].Description = " " }},
		{"improvements[0].owner", func(d *plans.NewDrill) { d.Improvements[0].Owner = "nobody" }},
		{"improvements[0].due_at", func(d *plans.NewDrill) { d.Improvements[0].DueAt = held.Add(-time.Hour) }},
		{"participants", func(d *plans.NewDrill) { d.Participants = nil }},
	} {
		in := good()
		c.edit(&in)
		_, err := f.svc.RecordDrill(ctx, officer, in)
		medguardtest.WantField(t, err, c.field)
	}
	_, err := f.svc.RecordDrill(ctx, f.calls["sunli"], good())
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	if ds, _ := f.svc.ListDrills(ctx, f.calls["sunli"], plans.DrillQuery{}); len(ds) != 0 {
		t.Fatalf("bad input recorded %d drills", len(ds))
	}
	d, err := f.svc.RecordDrill(ctx, officer, good())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Passed || len(d.Gaps) != 1 || len(d.Improvements) != 1 || d.Improvements[0].Owner != "liufang" || d.RecordedBy != "zhouqiang" ||
		d.Title != "电子病历系统宕机应急预案" || d.PlanVersion != 1 {
		t.Fatalf("drill %+v", d)
	}
	got, err := f.svc.GetDrill(ctx, f.calls["zhengguohua"], d.ID)
	if err != nil || got.Gaps[0].Description != "心内科未收到短信通知，值班表电话过期" || got.Notes != "演练总体顺利，切换用时90分钟。" ||
		got.Improvements[0].Action != "更新各科室应急联络表并每月核对" || got.PlanType != plans.TechnicalFailure ||
		len(got.Departments) != 2 || got.Steps[2].LimitMinutes != 120 || *got.Steps[2].TookMinutes != 90 {
		t.Fatalf("read back %+v %v", got, err)
	}
	_, err = f.svc.GetDrill(ctx, f.calls["zhengguohua"], medguard.NewID(held))
	medguardtest.WantKind(t, err, medguard.NotFound)
	for _, q := range []string{`SELECT description FROM drill_gaps`, `SELECT action FROM drill_improvements`, `SELECT notes FROM drills`} {
		var b []byte
		if err := f.db.QueryRowContext(ctx, q).Scan(&b); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"心内科未收到", "联络表", "切换用时"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds %q in clear", q, s)
			}
		}
	}

	// The improvement item falls due.
	var overdue []plans.OverdueImprovement
	var done []string
	f.svc.OnImprovementOverdue(func(_ context.Context, o plans.OverdueImprovement) { overdue = append(overdue, o) })
	f.svc.OnImprovementDone(func(_ context.Context, im plans.Improvement) { done = append(done, im.ID) })
	f.clock.Advance(8 * 24 * time.Hour)
	if err := f.svc.CheckOverdue(ctx); err != nil || len(overdue) != 1 || overdue[0].ImprovementID != d.Improvements[0].ID {
		t.Fatalf("overdue %v %v", overdue, err)
	}
	f.svc.CheckOverdue(ctx)
	st, _ := f.svc.Status(ctx, f.calls["sunli"])
	if len(overdue) != 1 || st.OverdueImprovements != 1 || st.OpenImprovements != 1 || st.Overdue[0].Owner != "liufang" {
		t.Fatalf("overdue twice %v, status %+v", overdue, st)
	}
	_, err = f.svc.CompleteImprovement(ctx, officer, d.ID, d.Improvements[0].ID, plans.ImprovementCompletion{})
	medguardtest.WantField(t, err, "note")
	_, err = f.svc.CompleteImprovement(ctx, officer, medguard.NewID(held), d.Improvements[0].ID, plans.ImprovementCompletion{Note: "已完成"})
	medguardtest.WantKind(t, err, medguard.NotFound)
	im, err := f.svc.CompleteImprovement(ctx, officer, d.ID, d.Improvements[0].ID, plans.ImprovementCompletion{Note: "联络表已更新并发布"})
	if err != nil || im.Status != plans.ImprovementDone || im.DoneBy != "zhouqiang" || len(done) != 1 {
		t.Fatalf("done %+v %v", im, err)
	}
	_, err = f.svc.CompleteImprovement(ctx, officer, d.ID, d.Improvements[0].ID, plans.ImprovementCompletion{Note: "再次"})
	medguardtest.WantKind(t, err, medguard.Conflict)

	// The backups' restore drills, for those who may see them.
	f.svc.SetBackupDrills(restoreDrills{})
	ds, err := f.svc.ListDrills(ctx, f.calls["sunli"], plans.DrillQuery{})
	if err != nil || len(ds) != 2 || ds[0].Kind != plans.Live || ds[1].Kind != plans.Restore || !ds[1].Passed || ds[1].RTOSeconds != 95 {
		t.Fatalf("with restore drills: %+v %v", ds, err)
	}
	if ds, _ := f.svc.ListDrills(ctx, f.calls["sunli"], plans.DrillQuery{Kind: plans.Restore}); len(ds) != 1 {
		t.Fatalf("restore drills only: %+v", ds)
	}
	if ds, _ := f.svc.ListDrills(ctx, f.calls["zhengguohua"], plans.DrillQuery{Kind: plans.Live}); len(ds) != 1 {
		t.Fatalf("live drills only: %+v", ds)
	}
	blind := *f.calls["sunli"]
	blind.Actor.Name = "blind"
	if ds, err := f.svc.ListDrills(ctx, &blind, plans.DrillQuery{}); err != nil || len(ds) != 1 {
		t.Fatalf("without backup.read: %+v %v", ds, err)
	}
	_, err = f.svc.ListDrills(ctx, f.calls["liufang"], plans.DrillQuery{})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
}

// restoreDrills is a backups' service with one restore drill a day before
// the tests' start, refusing a caller named "blind".
type restoreDrills struct{}

func (restoreDrills) RestoreDrills(_ context.Context, call *medguard.Call) ([]plans.BackupDrill, error) {
	if call.Actor.Name == "blind" {
		return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission}
	}
	return []plans.BackupDrill{{ID: "20261205T093000Z-drill", StartedAt: time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC), OK: true,
		RTOMet: true, RTOSeconds: 95}}, nil
}
