package risks_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/medguardtest"
	"medguard/internal/policy"
	"medguard/internal/risks"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

type fixture struct {
	clock *testkit.Clock
	db    *storage.DB
	log   *audit.Log
	svc   *risks.Service
	calls map[string]*medguard.Call
}

// start is 31 December 2026, 23:30 in Beijing (still the 31st in UTC):
// the end of a year, a quarter and a month at once.
var start = time.Date(2026, 12, 31, 15, 30, 0, 0, time.UTC)

// setup builds the register on SQLite, or PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set, with a security officer (周强), an IT
// engineer (吴燕), a leader (郑国华), an auditor and a doctor.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(start), calls: map[string]*medguard.Call{}}
	f.db = storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), risks.Schema())
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	kr := keys.NewKeyring(f.db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	id := identity.New(f.db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.svc = risks.New(f.db, g, kr, id, risks.Config{})
	adminID, err := id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	if _, err := id.CreateDepartment(ctx, admin, "CARD", "心内科"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhouqiang", "周强", "", policy.SecurityOfficer}, {"wuyan", "吴燕", "", policy.ITEngineer},
		{"zhengguohua", "郑国华", "", policy.Leadership}, {"sunli", "孙丽", "", policy.Auditor}, {"zhangwei", "张伟", "CARD", policy.Doctor},
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

// TestLevels checks every cell of the 5 × 5 matrix against the bands:
// 1–4 low, 5–9 medium, 10–16 high, 20–25 critical.
func TestLevels(t *testing.T) {
	want := [5][5]string{
		// impact 1 … 5, for likelihood 1 … 5
		{"low", "low", "low", "low", "medium"},
		{"low", "low", "medium", "medium", "high"},
		{"low", "medium", "medium", "high", "high"},
		{"low", "medium", "high", "high", "critical"},
		{"medium", "high", "high", "critical", "critical"},
	}
	for l := 1; l <= 5; l++ {
		for i := 1; i <= 5; i++ {
			if got := risks.LevelOf(risks.Score(l, i)); got != want[l-1][i-1] {
				t.Errorf("likelihood %d × impact %d = %d: %s, want %s", l, i, risks.Score(l, i), got, want[l-1][i-1])
			}
		}
	}
	for _, c := range []struct {
		score int
		level string
	}{{1, "low"}, {4, "low"}, {5, "medium"}, {9, "medium"}, {10, "high"}, {16, "high"}, {20, "critical"}, {25, "critical"}} {
		if got := risks.LevelOf(c.score); got != c.level {
			t.Errorf("score %d: %s, want %s", c.score, got, c.level)
		}
	}
}

func newRisk(l, i int, treatment string) risks.NewRisk {
	return risks.NewRisk{Title: "核心数据库单点故障", AssetID: "ITD-SRV-0012", AssetName: "电子病历数据库服务器", Threat: "硬件故障",
		Vulnerability: "无热备节点", Likelihood: l, Impact: i, Treatment: treatment,
		TreatmentPlan: "2027年第一季度完成双机热备，由周强负责验收", Owner: "wuyan"}
}

// TestRiskRegister records, lists, changes and reviews risks: bad input
// changes nothing; the review date is bounded by the level; a review
// that falls due is announced once, and a review resolves it; the heat
// map counts the open risks; the treatment plan is sealed at rest.
func TestRiskRegister(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	officer, auditor, doctor := f.calls["zhouqiang"], f.calls["sunli"], f.calls["zhangwei"]
	var overdue []risks.OverdueReview
	var reviewed []string
	f.svc.OnReviewOverdue(func(_ context.Context, o risks.OverdueReview) { overdue = append(overdue, o) })
	f.svc.OnReviewed(func(_ context.Context, r risks.Risk) { reviewed = append(reviewed, r.ID) })

	for _, c := range []struct {
		field string
		edit  func(*risks.NewRisk)
	}{
		{"title", func(n *risks.NewRisk) { n.Title = " " }},
		{"likelihood", func(n *risks.NewRisk) { n.Likelihood = 0 }},
		{"impact", func(n *risks.NewRisk) { n.Impact = 6 }},
		{"treatment", func(n *risks.NewRisk) { n.Treatment = "ignore" }},
		{"treatment_plan", func(n *risks.NewRisk) { n.TreatmentPlan = "" }},
		{"owner", func(n *risks.NewRisk) { n.Owner = "nobody" }},
		{"asset_id", func(n *risks.NewRisk) { n.AssetID = "资产/1" }},
		{"review_at", func(n *risks.NewRisk) { n.ReviewAt = start.Add(-time.Hour) }},
		// A critical risk is reviewed within 90 days.
		{"review_at", func(n *risks.NewRisk) { n.Likelihood, n.Impact, n.ReviewAt = 5, 5, start.Add(91*24*time.Hour) }},
		{"assessment_id", func(n *risks.NewRisk) { n.AssessmentID = medguard.NewID(start) }},
	} {
		in := newRisk(3, 4, risks.Reduce)
		c.edit(&in)
		_, err := f.svc.CreateRisk(ctx, officer, in)
		medguardtest.WantField(t, err, c.field)
	}
	medguardtest.WantRule(t, func() error { _, err := f.svc.CreateRisk(ctx, auditor, newRisk(3, 4, risks.Reduce)); return err }(), policy.RuleNoPermission)
	medguardtest.WantRule(t, func() error { _, err := f.svc.CreateRisk(ctx, doctor, newRisk(3, 4, risks.Reduce)); return err }(), policy.RuleNoPermission)

	high, err := f.svc.CreateRisk(ctx, officer, newRisk(3, 4, risks.Reduce))
	if err != nil {
		t.Fatal(err)
	}
	if high.Score != 12 || high.Level != risks.High || high.Acceptance != risks.AcceptanceNone || high.Status != risks.Open ||
		!high.ReviewDueAt.Equal(start.Add(180*24*time.Hour)) || high.CreatedBy != "zhouqiang" || high.Owner != "wuyan" {
		t.Fatalf("high risk %+v", high)
	}
	f.clock.Advance(time.Minute)
	in := newRisk(1, 2, risks.Accept)
	in.Title, in.ReviewAt = "机房门禁记录保存不足", start.Add(30*24*time.Hour)
	low, err := f.svc.CreateRisk(ctx, f.calls["wuyan"], in)
	if err != nil {
		t.Fatal(err)
	}
	if low.Level != risks.Low || low.Acceptance != risks.AcceptanceRecorded || low.AcceptanceBy != "wuyan" ||
		!low.ReviewDueAt.Equal(start.Add(30*24*time.Hour)) {
		t.Fatalf("low risk %+v", low)
	}

	// The list, with its filters and pages.
	all, next, err := f.svc.ListRisks(ctx, auditor, risks.RiskQuery{})
	if err != nil || len(all) != 2 || next != "" || all[0].ID != low.ID {
		t.Fatalf("list: %d %q %v", len(all), next, err)
	}
	page, next, err := f.svc.ListRisks(ctx, auditor, risks.RiskQuery{Limit: 1})
	if err != nil || len(page) != 1 || next != low.ID {
		t.Fatalf("first page: %v %q %v", page, next, err)
	}
	if page, next, _ = f.svc.ListRisks(ctx, auditor, risks.RiskQuery{Limit: 1, After: next}); len(page) != 1 || page[0].ID != high.ID || next != "" {
		t.Fatalf("second page: %v %q", page, next)
	}
	if hs, _, _ := f.svc.ListRisks(ctx, auditor, risks.RiskQuery{Level: risks.High}); len(hs) != 1 || hs[0].ID != high.ID {
		t.Fatalf("high risks: %v", hs)
	}
	if cell, _, _ := f.svc.ListRisks(ctx, auditor, risks.RiskQuery{Likelihood: 1, Impact: 2}); len(cell) != 1 || cell[0].ID != low.ID {
		t.Fatalf("cell 1×2: %v", cell)
	}
	_, _, err = f.svc.ListRisks(ctx, auditor, risks.RiskQuery{Level: "severe"})
	medguardtest.WantField(t, err, "level")
	_, _, err = f.svc.ListRisks(ctx, doctor, risks.RiskQuery{})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)

	// A change of description and owner; the scores stay.
	title, owner := "核心数据库单点故障（主院区）", "zhouqiang"
	changed, err := f.svc.UpdateRisk(ctx, officer, high.ID, risks.RiskChanges{Title: &title, Owner: &owner})
	if err != nil || changed.Title != title || changed.Owner != "zhouqiang" || changed.Score != 12 {
		t.Fatalf("changed %+v %v", changed, err)
	}
	bad := "nobody"
	_, err = f.svc.UpdateRisk(ctx, officer, high.ID, risks.RiskChanges{Owner: &bad})
	medguardtest.WantField(t, err, "owner")
	_, err = f.svc.UpdateRisk(ctx, officer, medguard.NewID(start), risks.RiskChanges{Title: &title})
	medguardtest.WantKind(t, err, medguard.NotFound)

	// The heat map.
	h, err := f.svc.HeatMap(ctx, f.calls["zhengguohua"])
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Cells) != 25 || h.Open != 2 || h.Overdue != 0 || h.Cells[(3-1)*5+4-1].Count != 1 || h.Cells[0*5+2-1].Count != 1 ||
		h.Cells[24].Level != risks.Critical || h.NextReviewAt == nil || !h.NextReviewAt.Equal(low.ReviewDueAt) {
		t.Fatalf("heat map %+v", h)
	}

	// Nothing is due yet; 30 days on, the low risk's review is.
	if o, err := f.svc.CheckOverdue(ctx); err != nil || len(o) != 0 {
		t.Fatalf("overdue at once: %v %v", o, err)
	}
	f.clock.Advance(30 * 24 * time.Hour)
	if o, err := f.svc.CheckOverdue(ctx); err != nil || len(o) != 1 || o[0].RiskID != low.ID || len(overdue) != 1 || o[0].Level != risks.Low {
		t.Fatalf("overdue: %v %v", o, err)
	}
	if o, _ := f.svc.CheckOverdue(ctx); len(o) != 0 || len(overdue) != 1 {
		t.Fatalf("announced twice: %v", o)
	}
	if od, _, _ := f.svc.ListRisks(ctx, auditor, risks.RiskQuery{Overdue: true}); len(od) != 1 || !od[0].ReviewOverdue {
		t.Fatalf("overdue list: %v", od)
	}

	// A review: bad input first, then re-scored, the next date set; the
	// alert is resolved (the hook) and a later overdue announced again.
	_, err = f.svc.ReviewRisk(ctx, officer, low.ID, risks.Review{Likelihood: 2, Impact: 2, Treatment: risks.Accept,
		NextReviewAt: f.clock.Now().Add(400 * 24 * time.Hour)})
	medguardtest.WantField(t, err, "next_review_at")
	got, err := f.svc.ReviewRisk(ctx, officer, low.ID, risks.Review{Likelihood: 2, Impact: 2, Treatment: risks.Accept,
		Note: "门禁日志已延长至180天，复核后仍为低风险"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Score != 4 || got.ReviewOverdue || !got.ReviewDueAt.Equal(f.clock.Now().Add(365*24*time.Hour)) || got.LastReviewedAt == nil ||
		len(reviewed) != 1 || reviewed[0] != low.ID || got.Acceptance != risks.AcceptanceRecorded || got.AcceptanceBy != "zhouqiang" {
		t.Fatalf("reviewed %+v, hooks %v", got, reviewed)
	}
	full, err := f.svc.GetRisk(ctx, auditor, low.ID)
	if err != nil || len(full.History) != 2 || full.History[1].Kind != risks.EventReviewed || full.History[1].Note != "门禁日志已延长至180天，复核后仍为低风险" ||
		full.History[0].Kind != risks.EventCreated || full.History[0].Actor != "wuyan" {
		t.Fatalf("history %+v %v", full, err)
	}
	f.clock.Advance(366 * 24 * time.Hour)
	if o, _ := f.svc.CheckOverdue(ctx); len(o) != 2 {
		t.Fatalf("after a year: %v", o)
	}

	// Closing: no longer reviewed or alerted; not twice.
	if c, err := f.svc.CloseRisk(ctx, officer, low.ID, risks.Closing{Note: "门禁系统已更换"}); err != nil || c.Status != risks.Closed {
		t.Fatalf("closed %+v %v", c, err)
	}
	_, err = f.svc.CloseRisk(ctx, officer, low.ID, risks.Closing{Note: "再次关闭"})
	medguardtest.WantKind(t, err, medguard.Conflict)
	_, err = f.svc.ReviewRisk(ctx, officer, low.ID, risks.Review{Likelihood: 1, Impact: 1, Treatment: risks.Accept})
	medguardtest.WantKind(t, err, medguard.Conflict)
	if h, _ := f.svc.HeatMap(ctx, auditor); h.Open != 1 {
		t.Fatalf("heat map after closing: %+v", h)
	}

	// The treatment plan and notes are sealed at rest.
	for _, q := range []string{`SELECT treatment_plan FROM risks`, `SELECT note FROM risk_events WHERE note IS NOT NULL`} {
		rows, err := f.db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var b []byte
			rows.Scan(&b)
			for _, s := range []string{"周强负责验收", "门禁日志", "门禁系统已更换"} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds %q in clear", q, s)
				}
			}
		}
		rows.Close()
	}
}

// TestBadTextRefused: a title or a note that is not valid UTF-8, or holds
// a control character, is refused as Invalid naming the field — never
// passed on to the database (PostgreSQL refused such bytes with a 500) and
// never silently altered (the treatment plan's and notes' bad bytes were
// dropped) — and nothing is stored; line breaks and tabs are kept in a
// treatment plan as written.
func TestBadTextRefused(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	officer, auditor := f.calls["zhouqiang"], f.calls["sunli"]
	count := func(table string) int { return storagetest.Rows(t, f.db, table) }

	for _, c := range []struct {
		field string
		edit  func(*risks.NewRisk)
	}{
		{"title", func(n *risks.NewRisk) { n.Title = "核心数据库\xff单点故障" }},
		{"title", func(n *risks.NewRisk) { n.Title = "核心数据库\n单点故障" }},
		{"threat", func(n *risks.NewRisk) { n.Threat = "硬件\x1b[31m故障" }},
		{"vulnerability", func(n *risks.NewRisk) { n.Vulnerability = "无热备\u0085节点" }},
		{"asset_name", func(n *risks.NewRisk) { n.AssetName = "电子病历\xe6\x95数据库服务器" }},
		{"treatment_plan", func(n *risks.NewRisk) { n.TreatmentPlan = "2027年第一季度\xff完成双机热备" }},
		{"treatment_plan", func(n *risks.NewRisk) { n.TreatmentPlan = "完成双机热备\x00" }},
	} {
		in := newRisk(3, 4, risks.Reduce)
		c.edit(&in)
		_, err := f.svc.CreateRisk(ctx, officer, in)
		medguardtest.WantField(t, err, c.field)
	}
	if n, m := count("risks"), count("risk_events"); n != 0 || m != 0 {
		t.Fatalf("refused risks stored: %d risks, %d events", n, m)
	}

	in := newRisk(3, 4, risks.Reduce)
	in.TreatmentPlan = "第一步：采购备用服务器\r\n第二步：\t配置双机热备\n（周强负责验收）"
	r, err := f.svc.CreateRisk(ctx, officer, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.TreatmentPlan != in.TreatmentPlan {
		t.Fatalf("treatment plan %q, want %q as written", r.TreatmentPlan, in.TreatmentPlan)
	}

	// Changes, reviews and closing refuse bad text too, and change nothing.
	title := "核心数据库单点故障\xff"
	_, err = f.svc.UpdateRisk(ctx, officer, r.ID, risks.RiskChanges{Title: &title})
	medguardtest.WantField(t, err, "title")
	plan := "改为\xff异地容灾"
	_, err = f.svc.UpdateRisk(ctx, officer, r.ID, risks.RiskChanges{TreatmentPlan: &plan})
	medguardtest.WantField(t, err, "treatment_plan")
	_, err = f.svc.ReviewRisk(ctx, officer, r.ID, risks.Review{Likelihood: 2, Impact: 2, Treatment: risks.Accept,
		Note: "复核后\xff仍为低风险"})
	medguardtest.WantField(t, err, "note")
	_, err = f.svc.CloseRisk(ctx, officer, r.ID, risks.Closing{Note: "已完成\x7f整改"})
	medguardtest.WantField(t, err, "note")
	got, err := f.svc.GetRisk(ctx, auditor, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "核心数据库单点故障" || got.TreatmentPlan != in.TreatmentPlan || got.Score != 12 || got.Status != risks.Open ||
		len(got.History) != 1 || count("risk_events") != 1 {
		t.Fatalf("after refused changes: %+v", got)
	}
}

// TestAcceptanceNeedsTheLeadership: accepting a high or critical risk
// waits for the leadership group, never decided by whoever proposed it;
// the acceptance holds while the score does not rise; a refusal needs
// another treatment.
func TestAcceptanceNeedsTheLeadership(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	officer, leader := f.calls["zhouqiang"], f.calls["zhengguohua"]
	r, err := f.svc.CreateRisk(ctx, officer, newRisk(4, 5, risks.Accept))
	if err != nil {
		t.Fatal(err)
	}
	if r.Level != risks.Critical || r.Acceptance != risks.AcceptancePending || r.AcceptanceBy != "" {
		t.Fatalf("critical acceptance %+v", r)
	}
	// The proposer may hold the leadership's role too: still refused.
	both := *officer
	both.Actor.Roles = []string{policy.SecurityOfficer, policy.Leadership}
	_, err = f.svc.DecideAcceptance(ctx, &both, r.ID, risks.AcceptanceDecision{Accept: true, Note: "自行接受"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	_, err = f.svc.DecideAcceptance(ctx, f.calls["wuyan"], r.ID, risks.AcceptanceDecision{Accept: true, Note: "接受"})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	_, err = f.svc.DecideAcceptance(ctx, leader, r.ID, risks.AcceptanceDecision{Accept: true})
	medguardtest.WantField(t, err, "note")
	ok, err := f.svc.DecideAcceptance(ctx, leader, r.ID, risks.AcceptanceDecision{Accept: true, Note: "预算已列入明年计划，暂时接受"})
	if err != nil || ok.Acceptance != risks.AcceptanceAccepted || ok.AcceptanceBy != "zhengguohua" {
		t.Fatalf("accepted %+v %v", ok, err)
	}
	_, err = f.svc.DecideAcceptance(ctx, leader, r.ID, risks.AcceptanceDecision{Accept: true, Note: "再次"})
	medguardtest.WantKind(t, err, medguard.Conflict)

	// A review at a lower score keeps the acceptance; a higher one asks
	// again, proposed by the reviewer.
	f.clock.Advance(24 * time.Hour)
	kept, err := f.svc.ReviewRisk(ctx, officer, r.ID, risks.Review{Likelihood: 4, Impact: 4, Treatment: risks.Accept})
	if err != nil || kept.Acceptance != risks.AcceptanceAccepted || kept.Level != risks.High {
		t.Fatalf("kept %+v %v", kept, err)
	}
	raised, err := f.svc.ReviewRisk(ctx, f.calls["wuyan"], r.ID, risks.Review{Likelihood: 5, Impact: 5, Treatment: risks.Accept})
	if err != nil || raised.Acceptance != risks.AcceptancePending {
		t.Fatalf("raised %+v %v", raised, err)
	}
	wuyanLeader := *f.calls["wuyan"]
	wuyanLeader.Actor.Roles = []string{policy.Leadership}
	_, err = f.svc.DecideAcceptance(ctx, &wuyanLeader, r.ID, risks.AcceptanceDecision{Accept: true, Note: "接受"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	refused, err := f.svc.DecideAcceptance(ctx, leader, r.ID, risks.AcceptanceDecision{Accept: false, Note: "极高风险不予接受，须降低"})
	if err != nil || refused.Acceptance != risks.AcceptanceRefused {
		t.Fatalf("refused %+v %v", refused, err)
	}
	if p, _, _ := f.svc.ListRisks(ctx, leader, risks.RiskQuery{Acceptance: risks.AcceptanceRefused}); len(p) != 1 {
		t.Fatalf("refused list: %v", p)
	}
	reduced, err := f.svc.ReviewRisk(ctx, officer, r.ID, risks.Review{Likelihood: 5, Impact: 5, Treatment: risks.Reduce,
		TreatmentPlan: "立即采购热备服务器"})
	if err != nil || reduced.Acceptance != risks.AcceptanceNone || reduced.TreatmentPlan != "立即采购热备服务器" {
		t.Fatalf("reduced %+v %v", reduced, err)
	}
	full, _ := f.svc.GetRisk(ctx, leader, r.ID)
	var kinds []string
	for _, e := range full.History {
		kinds = append(kinds, e.Kind)
	}
	if strings.Join(kinds, ",") != "created,accepted,reviewed,reviewed,refused,reviewed" {
		t.Fatalf("history %v", kinds)
	}
}

// TestNewSystemNeedsARiskAssessment: a new system's checklist holds a
// risk-assessment item satisfied only by a completed assessment; the
// assessment completes only with risks and no pending acceptance; the
// go-live is approved by the leadership, never by the requester, and only
// once every item is done.
func TestNewSystemNeedsARiskAssessment(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	officer, engineer, leader := f.calls["zhouqiang"], f.calls["wuyan"], f.calls["zhengguohua"]
	it, err := f.svc.CreateIntroduction(ctx, engineer, risks.NewIntroduction{System: "移动护理系统", PlannedAt: start.Add(60 * 24 * time.Hour)})
	if err != nil || len(it.Items) != len(risks.ChecklistItems) || it.Ready {
		t.Fatalf("introduction %+v %v", it, err)
	}
	_, err = f.svc.CheckItem(ctx, engineer, it.ID, risks.ItemRiskAssessment, risks.ItemCheck{Note: "已评估"})
	medguardtest.WantField(t, err, "assessment_id")
	_, err = f.svc.CheckItem(ctx, engineer, it.ID, "coffee", risks.ItemCheck{Note: "x"})
	medguardtest.WantField(t, err, "item")
	a, err := f.svc.CreateAssessment(ctx, officer, risks.NewAssessment{Title: "移动护理系统上线前风险评估", System: "移动护理系统"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CheckItem(ctx, engineer, it.ID, risks.ItemRiskAssessment, risks.ItemCheck{AssessmentID: a.ID})
	medguardtest.WantKind(t, err, medguard.Conflict) // not completed
	_, err = f.svc.CompleteAssessment(ctx, officer, a.ID, risks.AssessmentCompletion{Summary: "无风险"})
	medguardtest.WantKind(t, err, medguard.Conflict) // no risk yet
	in := newRisk(4, 3, risks.Accept)
	in.Title, in.AssessmentID = "移动终端丢失导致数据泄露", a.ID
	r, err := f.svc.CreateRisk(ctx, officer, in)
	if err != nil || r.AssessmentID != a.ID {
		t.Fatalf("assessed risk %+v %v", r, err)
	}
	_, err = f.svc.CompleteAssessment(ctx, officer, a.ID, risks.AssessmentCompletion{Summary: "高风险已接受"})
	medguardtest.WantKind(t, err, medguard.Conflict) // the acceptance waits
	if _, err := f.svc.DecideAcceptance(ctx, leader, r.ID, risks.AcceptanceDecision{Accept: true, Note: "终端已加密，接受残余风险"}); err != nil {
		t.Fatal(err)
	}
	done, err := f.svc.CompleteAssessment(ctx, officer, a.ID, risks.AssessmentCompletion{Summary: "识别风险1项（高），已由领导小组接受"})
	if err != nil || done.Status != risks.AssessmentCompleted || done.RiskCount != 1 || done.HighRisks != 1 {
		t.Fatalf("completed %+v %v", done, err)
	}
	in.Title = "完成后补充的风险"
	_, err = f.svc.CreateRisk(ctx, officer, in)
	medguardtest.WantKind(t, err, medguard.Conflict)
	if got, err := f.svc.GetAssessment(ctx, f.calls["sunli"], a.ID); err != nil || len(got.Risks) != 1 || got.Summary == "" {
		t.Fatalf("assessment %+v %v", got, err)
	}

	// The go-live waits for every item.
	_, err = f.svc.ApproveGoLive(ctx, leader, it.ID, risks.GoLive{Note: "同意上线"})
	if me := medguardtest.WantKind(t, err, medguard.Conflict); me.Code != "checklist_incomplete" {
		t.Fatalf("approved with an incomplete checklist: %v", err)
	}
	it, err = f.svc.CheckItem(ctx, engineer, it.ID, risks.ItemRiskAssessment, risks.ItemCheck{AssessmentID: a.ID})
	if err != nil || !it.Items[0].Done || it.Items[0].AssessmentID != a.ID {
		t.Fatalf("risk item %+v %v", it, err)
	}
	_, err = f.svc.CheckItem(ctx, engineer, it.ID, risks.ItemRiskAssessment, risks.ItemCheck{AssessmentID: a.ID})
	medguardtest.WantKind(t, err, medguard.Conflict)
	for _, item := range risks.ChecklistItems[1:] {
		if it, err = f.svc.CheckItem(ctx, officer, it.ID, item, risks.ItemCheck{Note: "已核查，记录存档"}); err != nil {
			t.Fatal(err)
		}
	}
	if !it.Ready {
		t.Fatalf("not ready: %+v", it)
	}
	// The engineer asked for it and linked the assessment: even as a
	// leader, not theirs to approve.
	engineerLeader := *engineer
	engineerLeader.Actor.Roles = []string{policy.Leadership}
	_, err = f.svc.ApproveGoLive(ctx, &engineerLeader, it.ID, risks.GoLive{Note: "同意"})
	medguardtest.WantRule(t, err, policy.RuleSeparationOfDuties)
	_, err = f.svc.ApproveGoLive(ctx, officer, it.ID, risks.GoLive{Note: "同意"})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	ok, err := f.svc.ApproveGoLive(ctx, leader, it.ID, risks.GoLive{Note: "检查表齐全，同意上线"})
	if err != nil || ok.Status != risks.IntroductionApproved || ok.ApprovedBy != "zhengguohua" {
		t.Fatalf("approved %+v %v", ok, err)
	}
	if list, err := f.svc.ListIntroductions(ctx, f.calls["sunli"]); err != nil || len(list) != 1 || list[0].Status != risks.IntroductionApproved {
		t.Fatalf("introductions %+v %v", list, err)
	}
}

// assetBook is an assets register of two assets.
type assetBook map[string]string

func (b assetBook) AssetName(_ context.Context, id string) (string, bool, error) {
	n, ok := b[id]
	return n, ok, nil
}

// TestAssetLookup: without the assets register, ids are stored as given;
// with it, they must exist and their names are filled in.
func TestAssetLookup(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	officer := f.calls["zhouqiang"]
	in := newRisk(2, 3, risks.Reduce)
	in.AssetID, in.AssetName = "ITD-SRV-9999", ""
	if r, err := f.svc.CreateRisk(ctx, officer, in); err != nil || r.AssetID != "ITD-SRV-9999" {
		t.Fatalf("without the register: %+v %v", r, err)
	}
	f.svc.SetAssets(assetBook{"ITD-SRV-0012": "电子病历数据库服务器"})
	_, err := f.svc.CreateRisk(ctx, officer, in)
	medguardtest.WantField(t, err, "asset_id")
	in.AssetID = "ITD-SRV-0012"
	if r, err := f.svc.CreateRisk(ctx, officer, in); err != nil || r.AssetName != "电子病历数据库服务器" {
		t.Fatalf("with the register: %+v %v", r, err)
	}
	if rs, _, _ := f.svc.ListRisks(ctx, officer, risks.RiskQuery{AssetID: "ITD-SRV-0012"}); len(rs) != 1 {
		t.Fatalf("by asset: %v", rs)
	}
	f.svc.SetAssets(nil)
}
