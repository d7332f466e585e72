package incidents_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/medguardtest"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// TestCandidates makes a log in which 张伟 (cardiology) is refused a
// neurology patient's record four times and 李娜 three times, and an
// admission archived two days late; the first and the last are candidates.
func TestCandidates(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lina, zhang, clerk := f.calls["lina"], f.calls["zhangwei"], f.calls["chenjing"]
	p, err := f.rec.CreatePatient(ctx, lina, records.NewPatient{Name: "王芳", Gender: "female", BirthDate: "1968-04-12"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.rec.CreateRecord(ctx, lina, p.ID, records.NewRecord{Type: "progress_note", Department: "NEUR",
		Title: "病程记录", Text: "患者头痛三天，伴恶心"})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		_, err := f.rec.GetRecord(ctx, zhang, r.ID)
		medguardtest.WantKind(t, err, medguard.Forbidden)
	}
	// Another cardiologist, refused three times: not more than 3.
	other := *zhang
	other.Actor.Name, other.Actor.ID = "liuyang", medguard.NewID(f.clock.Now())
	for range 3 {
		f.rec.GetRecord(ctx, &other, r.ID)
	}
	// An admission discharged nine days ago, due two days ago, archived now.
	a, err := f.rec.Admit(ctx, lina, p.ID, "NEUR", f.clock.Now().Add(-12*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.Discharge(ctx, lina, a.ID, f.clock.Now().Add(-9*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.Archive(ctx, clerk, a.ID); err != nil {
		t.Fatal(err)
	}
	// Another, discharged ten days ago by the neurologist, not archived.
	b, err := f.rec.Admit(ctx, lina, p.ID, "NEUR", f.clock.Now().Add(-14*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.Discharge(ctx, lina, b.ID, f.clock.Now().Add(-10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	from, to := f.clock.Now().Add(-24*time.Hour), f.clock.Now().Add(time.Minute)
	got, err := f.svc.Candidates(ctx, f.calls["wuyan"], from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("candidates %+v", got)
	}
	c := got[0]
	if c.Kind != "unauthorized_queries" || c.Grade != 2 || c.Username != "zhangwei" || c.Count != 4 || len(c.AuditIndexes) != 4 ||
		c.Department != "CARD" || c.UserID != zhang.Actor.ID || c.BreakGlass != 0 {
		t.Fatalf("%+v", c)
	}
	st, err := f.log.Entries(ctx, c.AuditIndexes[0], c.AuditIndexes[0]+1)
	if err != nil || st[0].Entry.Decision != audit.Deny || st[0].Entry.Actor != "zhangwei" {
		t.Fatalf("%+v %v", st, err)
	}
	// Late archiving names who archived late, or else who discharged the
	// patient, with the entries of the discharge and the archiving.
	for _, l := range got[1:] {
		want := map[string]struct {
			who, userID, role string
			entries           []string
		}{a.ID: {"chenjing", clerk.Actor.ID, "archived", []string{"admission.discharge", "admission.archive"}},
			b.ID: {"lina", lina.Actor.ID, "discharged", []string{"admission.discharge"}}}[l.AdmissionID]
		if l.Kind != "late_archiving" || l.Grade != 3 || l.Username != want.who || l.HoursLate < 48 || l.UserID != want.userID ||
			l.Role != want.role || len(l.AuditIndexes) != len(want.entries) || l.PatientID != p.ID {
			t.Fatalf("%+v", l)
		}
		for i, idx := range l.AuditIndexes {
			st, err := f.log.Entries(ctx, idx, idx+1)
			if err != nil || st[0].Entry.Action != want.entries[i] || st[0].Entry.TargetID != l.AdmissionID {
				t.Errorf("%s: entry %d: %+v %v", l.AdmissionID, idx, st, err)
			}
		}
	}
	// Outside the period nothing is found in the log.
	got, err = f.svc.Candidates(ctx, f.calls["wuyan"], to, to.Add(time.Hour))
	if err != nil || slices.ContainsFunc(got, func(c incidents.Candidate) bool { return c.Kind == "unauthorized_queries" }) {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = f.svc.Candidates(ctx, f.calls["zhouqiang"], from, to)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, err = f.svc.Candidates(ctx, f.calls["wuyan"], to, from)
	medguardtest.WantField(t, err, "to")
}

// TestCandidatesCountUnjustifiedBreakGlass: a break-glass access that the
// department head judged unjustified is an unauthorised query. 张伟 is
// refused three times and breaks the glass once, judged unjustified: four,
// a candidate. 刘洋 is refused three times and breaks the glass once,
// judged justified: three, not a candidate.
func TestCandidatesCountUnjustifiedBreakGlass(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lina, zhang := f.calls["lina"], f.calls["zhangwei"]
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(f.clock.Now()), Name: "admin",
		Roles: []string{policy.Admin}}}
	u, _, err := f.id.CreateUser(ctx, admin, identity.NewUser{Username: "liuyang", DisplayName: "刘洋", Department: "CARD",
		Roles: []string{policy.Doctor}, Password: "Yiyuan#Ceshi2026"})
	if err != nil {
		t.Fatal(err)
	}
	liu := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: u.ID, Name: "liuyang", Department: "CARD",
		Roles: []string{policy.Doctor}}, IP: "10.1.1.2"}
	head := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(f.clock.Now()), Name: "wangjun",
		Department: "NEUR", Roles: []string{policy.DeptHead}}, IP: "10.1.2.1"}
	p, err := f.rec.CreatePatient(ctx, lina, records.NewPatient{Name: "王芳", Gender: "female", BirthDate: "1968-04-12"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.rec.CreateRecord(ctx, lina, p.ID, records.NewRecord{Type: "progress_note", Department: "NEUR",
		Title: "病程记录", Text: "患者头痛三天，伴恶心"})
	if err != nil {
		t.Fatal(err)
	}
	from := f.clock.Now()
	glassIndex := map[string]uint64{}
	for _, who := range []*medguard.Call{zhang, liu} {
		for range 3 {
			_, err := f.rec.GetRecord(ctx, who, r.ID)
			medguardtest.WantKind(t, err, medguard.Forbidden)
			f.clock.Advance(time.Minute)
		}
		glass := *who
		glass.BreakGlassReason, glass.Purpose = "急会诊，需查看既往病史", "emergency" // core data: a purpose
		if _, err := f.rec.GetRecord(ctx, &glass, r.ID); err != nil {
			t.Fatal(err)
		}
		es := f.entries(t)
		glassIndex[who.Actor.Name] = es[len(es)-1].Index
	}
	queue, _, err := f.rec.ListBreakGlass(ctx, head, records.BreakGlassFilter{})
	if err != nil || len(queue) != 2 {
		t.Fatalf("%+v %v", queue, err)
	}
	for _, e := range queue {
		outcome, note := records.Justified, "急会诊属实"
		if e.Username == "zhangwei" {
			outcome, note = records.Unjustified, "无会诊申请，与诊疗无关"
		}
		if _, err := f.rec.ReviewBreakGlass(ctx, head, e.ID, outcome, note); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Hour)
	got, err := f.svc.Candidates(ctx, f.calls["wuyan"], from, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("candidates %+v", got)
	}
	c := got[0]
	if c.Kind != "unauthorized_queries" || c.Grade != 2 || c.Username != "zhangwei" || c.UserID != zhang.Actor.ID ||
		c.Department != "CARD" || c.Count != 4 || c.BreakGlass != 1 || len(c.AuditIndexes) != 4 ||
		!slices.IsSorted(c.AuditIndexes) || c.AuditIndexes[3] != glassIndex["zhangwei"] {
		t.Fatalf("%+v (break-glass read at %d)", c, glassIndex["zhangwei"])
	}
	if c.FirstAt == nil || c.LastAt == nil || !c.FirstAt.Equal(from) || !c.LastAt.Equal(from.Add(3*time.Minute)) {
		t.Errorf("period %v – %v", c.FirstAt, c.LastAt)
	}
	// The break-glass reviews were read through the records service's own
	// logged operation, by the auditor.
	if !slices.ContainsFunc(f.entries(t), func(s audit.Stored) bool {
		return s.Entry.Action == "breakglass.unjustified" && s.Entry.Actor == "wuyan" && s.Entry.Decision == audit.Allow
	}) {
		t.Error("the break-glass reviews were not read through the records service")
	}
	// Before the accesses, nothing.
	got, err = f.svc.Candidates(ctx, f.calls["wuyan"], from.Add(-time.Hour), from)
	if err != nil || slices.ContainsFunc(got, func(c incidents.Candidate) bool { return c.Kind == "unauthorized_queries" }) {
		t.Fatalf("%+v %v", got, err)
	}
}

func (f *fixture) openCase(t *testing.T, by string) *incidents.Case {
	t.Helper()
	c, err := f.svc.OpenCase(context.Background(), f.calls[by], incidents.NewCase{SubjectUserID: f.calls["zhangwei"].Actor.ID,
		Criterion: "unauthorized_queries", Summary: "张伟医生多次尝试查阅神经内科患者王芳的病历", EvidenceIndexes: []uint64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAccountabilityCase(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	wuyan, zhaomin, zhang, lina := f.calls["wuyan"], f.calls["zhaomin"], f.calls["zhangwei"], f.calls["lina"]

	// Validation and who may open.
	_, err := f.svc.OpenCase(ctx, wuyan, incidents.NewCase{SubjectUserID: zhang.Actor.ID, Criterion: "gossip", Summary: "x"})
	medguardtest.WantField(t, err, "criterion")
	_, err = f.svc.OpenCase(ctx, wuyan, incidents.NewCase{SubjectUserID: zhang.Actor.ID, Grade: 1, Criterion: "late_archiving", Summary: "x"})
	medguardtest.WantField(t, err, "grade")
	_, err = f.svc.OpenCase(ctx, wuyan, incidents.NewCase{SubjectUserID: "01jd0000000000000000000000", Criterion: "late_archiving", Summary: "x"})
	medguardtest.WantField(t, err, "subject_user_id")
	_, err = f.svc.OpenCase(ctx, f.calls["zhouqiang"], incidents.NewCase{SubjectUserID: zhang.Actor.ID, Criterion: "late_archiving", Summary: "x"})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, err = f.svc.OpenCase(ctx, wuyan, incidents.NewCase{SubjectUserID: wuyan.Actor.ID, Criterion: "late_archiving", Summary: "x"})
	if e := medguardtest.WantKind(t, err, medguard.Forbidden); e.Rule != "deny.own_case" {
		t.Fatalf("rule %s", e.Rule)
	}

	c := f.openCase(t, "wuyan")
	if c.Grade != 2 || c.Status != incidents.Investigating || c.SubjectUsername != "zhangwei" || c.Summary == "" {
		t.Fatalf("%+v", c)
	}
	// The 72-hour fact-finding clock, to the minute.
	due := start.Truncate(time.Minute).Add(72 * time.Hour)
	if d := c.Deadlines[0]; d.Name != incidents.DeadlineFactFinding || !d.DueAt.Equal(due) || d.State != incidents.Pending {
		t.Fatalf("%+v", c.Deadlines)
	}
	f.clock.Set(due.Add(time.Minute))
	got, err := f.svc.GetCase(ctx, wuyan, c.ID)
	if err != nil || got.Deadlines[0].State != incidents.Overdue {
		t.Fatalf("%+v %v", got, err)
	}
	f.clock.Set(start.Add(24 * time.Hour))

	// Findings by the investigator; the person reads their own case and answers.
	if _, err := f.svc.AddFinding(ctx, wuyan, c.ID, "审计日志显示11月22日14:02至14:09间4次被拒绝的查阅"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetCase(ctx, zhang, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetCase(ctx, lina, c.ID)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, err = f.svc.Statement(ctx, lina, c.ID, "代为陈述")
	if e := medguardtest.WantKind(t, err, medguard.Forbidden); e.Rule != "deny.not_own_case" {
		t.Fatalf("rule %s", e.Rule)
	}
	_, err = f.svc.AddFinding(ctx, zhang, c.ID, "自己写的调查结论")
	medguardtest.WantKind(t, err, medguard.Forbidden)
	c, err = f.svc.Statement(ctx, zhang, c.ID, "会诊时误点了患者列表，并非有意查阅")
	if err != nil || c.Statement == nil || c.Statement.By != "zhangwei" {
		t.Fatalf("%+v %v", c, err)
	}
	_, err = f.svc.Statement(ctx, zhang, c.ID, "补充")
	medguardtest.WantKind(t, err, medguard.Conflict)

	// The decision within 72 h meets the deadline.
	_, err = f.svc.Appeal(ctx, zhang, c.ID, "不服")
	medguardtest.WantKind(t, err, medguard.Conflict)
	c, err = f.svc.Decide(ctx, wuyan, c.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Text: "越权查询4次"})
	if err != nil || c.Status != incidents.Decided || c.FinalGrade != 2 || c.Deadlines[0].State != incidents.Met || c.AppealDueAt != nil {
		t.Fatalf("%+v %v", c, err)
	}
	_, err = f.svc.AddFinding(ctx, wuyan, c.ID, "补充")
	medguardtest.WantKind(t, err, medguard.Conflict)
	// The appeal is against the handling opinion, given next.
	_, err = f.svc.Appeal(ctx, zhang, c.ID, "不服")
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "no_opinion" {
		t.Fatalf("code %s", e.Code)
	}
	c, err = f.svc.Opinion(ctx, wuyan, c.ID, incidents.CaseOpinion{Sanction: incidents.SanctionPayMonth, Text: "越权查询4次，扣发绩效一个月"})
	if err != nil || c.Sanction != incidents.SanctionPayMonth || c.AppealDueAt == nil || c.Deadlines[1].State != incidents.Met {
		t.Fatalf("%+v %v", c, err)
	}

	// Appeal within 7 days; the investigator may not review it, another auditor may.
	f.clock.Advance(6 * 24 * time.Hour)
	if c, err = f.svc.Appeal(ctx, zhang, c.ID, "当日为急会诊，已获科主任口头同意"); err != nil || c.Status != incidents.Appealed {
		t.Fatalf("%+v %v", c, err)
	}
	_, err = f.svc.ReviewAppeal(ctx, wuyan, c.ID, incidents.CaseReview{Outcome: incidents.Overturned, Text: "同意申诉"})
	if e := medguardtest.WantKind(t, err, medguard.Forbidden); e.Rule != "deny.own_investigation" {
		t.Fatalf("rule %s", e.Rule)
	}
	_, err = f.svc.ReviewAppeal(ctx, zhang, c.ID, incidents.CaseReview{Outcome: incidents.Overturned, Text: "自己复核"})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	c, err = f.svc.ReviewAppeal(ctx, zhaomin, c.ID, incidents.CaseReview{Outcome: incidents.Upheld, Text: "维持原决定"})
	if err != nil || c.Status != incidents.Reviewed || c.Review == nil || c.Review.By != "zhaomin" || !slices.Equal(c.Investigators, []string{"wuyan"}) {
		t.Fatalf("%+v %v", c, err)
	}
	_, err = f.svc.ReviewAppeal(ctx, zhaomin, c.ID, incidents.CaseReview{Outcome: incidents.Overturned, Text: "改判"})
	medguardtest.WantKind(t, err, medguard.Conflict)

	// Kept permanently: the database refuses deleting or rewriting.
	for _, q := range []string{
		`DELETE FROM accountability_cases`,
		`DELETE FROM accountability_entries`,
		`UPDATE accountability_entries SET by_name = 'mallory'`,
		`UPDATE accountability_cases SET review_outcome = 'overturned'`,
		`UPDATE accountability_cases SET status = 'investigating'`,
	} {
		if _, err := f.db.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: the database allowed it", q)
		}
	}

	// Every step is in the audit log.
	seen := map[string]bool{}
	for _, s := range f.entries(t) {
		if s.Entry.TargetType == "accountability_case" && s.Entry.Outcome == audit.Success {
			seen[s.Entry.Action] = true
		}
	}
	for _, a := range []string{"accountability.open", "accountability.read", "accountability.finding", "accountability.statement",
		"accountability.decide", "accountability.opinion", "accountability.appeal", "accountability.review"} {
		if !seen[a] {
			t.Errorf("no audit entry for %s", a)
		}
	}
	list, _, err := f.svc.ListCases(ctx, zhaomin, "", "", 10)
	if err != nil || len(list) != 1 || list[0].Summary != "" {
		t.Fatalf("%+v %v", list, err)
	}
}

func TestAppealWindow(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := f.openCase(t, "wuyan")
	// Decided late: the fact-finding deadline is met, but late.
	f.clock.Advance(80 * time.Hour)
	c, err := f.svc.Decide(ctx, f.calls["zhaomin"], c.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Grade: 3, Text: "情节轻微"})
	if err != nil || !c.Deadlines[0].Late || c.FinalGrade != 3 || !slices.Equal(c.Investigators, []string{"wuyan", "zhaomin"}) {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = f.svc.Opinion(ctx, f.calls["zhaomin"], c.ID, incidents.CaseOpinion{Sanction: incidents.SanctionWarning, Text: "警告并重新培训"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(7*24*time.Hour + time.Minute)
	_, err = f.svc.Appeal(ctx, f.calls["zhangwei"], c.ID, "申诉")
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "appeal_window_closed" {
		t.Fatalf("code %s", e.Code)
	}
	// The deadline is exactly 7 days after the opinion.
	if !c.AppealDueAt.Equal(f.clock.Now().Add(-time.Minute).Truncate(time.Millisecond)) {
		t.Errorf("appeal due %s", c.AppealDueAt)
	}
}
