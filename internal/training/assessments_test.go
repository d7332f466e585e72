package training_test

import (
	"context"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/medguardtest"
	"medguard/internal/policy"
	"medguard/internal/training"
)

// TestQuarterlyAssessment: a quarter is computed once it has ended, from
// the register and the accountability cases; the second failure in a row
// flags the person for removal from the post; they appeal within 7 days,
// and someone other than they and the one who computed the quarter
// decides.
func TestQuarterlyAssessment(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	zone := f.svc.Location()
	f.svc.SetConduct(upheld{f.call("wangfang").Actor.ID: 2})
	c := f.privacy(t)
	l := f.letter(t)
	// Q1 2026 (start is 2 March): zhangwei passes; wangfang fails the exam
	// and misses the retake; the letter signed by zhangwei alone.
	f.sit(t, c.ID, map[string]int{"zhangwei": 90, "wangfang": 40})
	f.clock.Advance(24 * time.Hour)
	f.sit(t, c.ID, map[string]int{"wangfang": -1})
	f.sign(t, "zhangwei", l)
	_, err := f.svc.ComputeAssessments(ctx, f.call("zhouqiang"), training.NewAssessments{Quarter: "2026Q1"})
	medguardtest.WantField(t, err, "quarter") // not ended
	_, err = f.svc.ComputeAssessments(ctx, f.call("zhouqiang"), training.NewAssessments{Quarter: "2026-Q1"})
	medguardtest.WantField(t, err, "quarter")
	_, err = f.svc.ComputeAssessments(ctx, f.call("wuyan"), training.NewAssessments{Quarter: "2025Q4"})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)

	f.clock.Set(time.Date(2026, 4, 1, 0, 0, 0, 0, zone))
	q1 := must[[]training.Assessment](t)(f.svc.ComputeAssessments(ctx, f.call("zhouqiang"), training.NewAssessments{Quarter: "2026Q1"}))
	by := func(as []training.Assessment, who string) training.Assessment {
		t.Helper()
		for _, a := range as {
			if a.Username == who {
				return a
			}
		}
		t.Fatalf("no assessment of %s in %d", who, len(as))
		return training.Assessment{}
	}
	zw, wf := by(q1, "zhangwei"), by(q1, "wangfang")
	if !zw.Passed || zw.Score != 100 || zw.Status != training.AssessmentPassed {
		t.Fatalf("zhangwei %+v", zw)
	}
	// wangfang: owes the course and the letter (compliance 100-50-10=40),
	// two cases upheld (0), attended one of two (50): 16+0+15 = 31.
	if wf.Passed || wf.Flagged || wf.Compliance != 40 || wf.Incidents != 0 || wf.Attendance != 50 || wf.Score != 31 ||
		wf.Details.CasesUpheld != 2 || wf.Details.ExamsFailed != 1 || wf.Status != training.AssessmentFailed {
		t.Fatalf("wangfang %+v", wf)
	}
	_, err = f.svc.ComputeAssessments(ctx, f.call("sunli"), training.NewAssessments{Quarter: "2026Q1"})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Field != "quarter" {
		t.Fatalf("%v", err)
	}
	// Q2: wangfang fails again — flagged, and the hook told.
	f.clock.Set(time.Date(2026, 7, 1, 9, 0, 0, 0, zone))
	q2 := must[[]training.Assessment](t)(f.svc.ComputeAssessments(ctx, f.call("zhouqiang"), training.NewAssessments{Quarter: "2026Q2"}))
	wf = by(q2, "wangfang")
	if !wf.Flagged || wf.Status != training.AssessmentFlagged || wf.AppealDueAt == nil || len(f.flagged) != 1 {
		t.Fatalf("wangfang in Q2 %+v (%d flagged)", wf, len(f.flagged))
	}
	if zw := by(q2, "zhangwei"); zw.Flagged {
		t.Fatalf("zhangwei flagged: %+v", zw)
	}
	// Appeals: only the person; the decision by someone else than they and
	// the one who computed the quarter.
	_, err = f.svc.AppealAssessment(ctx, f.call("zhangwei"), wf.ID, training.AssessmentAppeal{Text: "代为申诉"})
	medguardtest.WantRule(t, err, policy.RuleNotOwnTraining)
	_, err = f.svc.AppealAssessment(ctx, f.call("zhangwei"), by(q2, "zhangwei").ID, training.AssessmentAppeal{Text: "无需申诉"})
	medguardtest.WantKind(t, err, medguard.Conflict)
	_, err = f.svc.DecideAppeal(ctx, f.call("sunli"), wf.ID, training.AppealDecision{Outcome: training.AppealOverturned, Text: "未申诉"})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "not_appealed" {
		t.Fatalf("%v", err)
	}
	a := must[*training.Assessment](t)(f.svc.AppealAssessment(ctx, f.call("wangfang"), wf.ID, training.AssessmentAppeal{
		Text: "第二季度因援派外院，未能参加补考，已安排下月补训。"}))
	if a.Status != training.AssessmentAppealed {
		t.Fatalf("%+v", a)
	}
	_, err = f.svc.DecideAppeal(ctx, f.call("zhouqiang"), wf.ID, training.AppealDecision{Outcome: training.AppealOverturned, Text: "同意"})
	medguardtest.WantRule(t, err, policy.RuleOwnInvestigation)
	a = must[*training.Assessment](t)(f.svc.DecideAppeal(ctx, f.call("sunli"), wf.ID, training.AppealDecision{Outcome: training.AppealOverturned,
		Text: "外派属实，撤销调岗建议，限期补训。"}))
	if a.Status != training.AppealOverturned || a.DecidedBy != "sunli" {
		t.Fatalf("%+v", a)
	}
	_, err = f.svc.DecideAppeal(ctx, f.call("sunli"), wf.ID, training.AppealDecision{Outcome: training.AppealUpheld, Text: "再议"})
	medguardtest.WantKind(t, err, medguard.Conflict)
	// The record keeps it all, appeal text opened from its seal.
	r := must[*training.Record](t)(f.svc.PersonRecord(ctx, f.call("wuyan"), f.call("wangfang").Actor.ID))
	if len(r.Assessments) != 2 || r.Assessments[0].Appeal == "" || r.Assessments[0].Decision == "" || len(r.Attendance) != 2 {
		t.Fatalf("record %+v", r)
	}
	// Too late to appeal, a week on: a new flag in Q3 is appealed within 7 days only.
	f.clock.Set(time.Date(2026, 10, 1, 9, 0, 0, 0, zone))
	q3 := must[[]training.Assessment](t)(f.svc.ComputeAssessments(ctx, f.call("zhouqiang"), training.NewAssessments{Quarter: "2026Q3"}))
	f.clock.Advance(8 * 24 * time.Hour)
	_, err = f.svc.AppealAssessment(ctx, f.call("wangfang"), by(q3, "wangfang").ID, training.AssessmentAppeal{Text: "迟交的申诉"})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "appeal_window_closed" {
		t.Fatalf("%v", err)
	}
	list := must[[]training.Assessment](t)(f.svc.ListAssessments(ctx, f.call("wuyan"), "2026Q2"))
	if len(list) != len(q2) {
		t.Fatalf("listed %d of %d", len(list), len(q2))
	}
}

// TestQuarterBounds checks quarters in the hospital's zone, year ends
// included.
func TestQuarterBounds(t *testing.T) {
	zone := time.FixedZone("CST", 8*3600)
	for _, c := range []struct {
		q        string
		from, to time.Time
	}{
		{"2026Q1", time.Date(2026, 1, 1, 0, 0, 0, 0, zone), time.Date(2026, 4, 1, 0, 0, 0, 0, zone)},
		{"2024Q4", time.Date(2024, 10, 1, 0, 0, 0, 0, zone), time.Date(2025, 1, 1, 0, 0, 0, 0, zone)},
	} {
		from, to, err := training.QuarterBounds(c.q, zone)
		if err != nil || !from.Equal(c.from) || !to.Equal(c.to) {
			t.Errorf("%s: %v %v %v", c.q, from, to, err)
		}
	}
	for at, want := range map[time.Time]string{
		time.Date(2025, 12, 31, 16, 0, 0, 0, time.UTC): "2026Q1", // 1 January in Beijing
		time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC):  "2028Q1",
		time.Date(2026, 6, 30, 15, 59, 0, 0, time.UTC): "2026Q2",
	} {
		if got := training.QuarterOf(at, zone); got != want {
			t.Errorf("QuarterOf(%v) = %s, want %s", at, got, want)
		}
	}
}

// FuzzQuarterBounds feeds the quarter parser outside input: it accepts
// exactly YYYYQn and never panics.
func FuzzQuarterBounds(f *testing.F) {
	for _, s := range []string{"2026Q1", "2026Q5", "2026q1", "", "20261", "２０２６Q1", "2026Q1\n", "9999Q4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := training.QuarterBounds(s, time.UTC)
		if err != nil {
			return
		}
		if training.QuarterOf(from, time.UTC) != s || !to.After(from) {
			t.Fatalf("%q: %v %v", s, from, to)
		}
	})
}

// TestAssessmentDue: an ended quarter not assessed within 14 days of its
// end is announced once (as medguard, in the audit log), never for a
// quarter that ended before anyone was on the staff; computing it tells
// the hooks so that the alert resolves.
func TestAssessmentDue(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	zone := f.svc.Location()
	var due []training.AssessmentDue
	var assessed []string
	f.svc.OnAssessmentDue(func(_ context.Context, d training.AssessmentDue) { due = append(due, d) })
	f.svc.OnAssessed(func(_ context.Context, q string) { assessed = append(assessed, q) })

	// 2 March 2026: 2025Q4 ended before the staff were registered.
	if d, err := f.svc.CheckAssessmentDue(ctx); err != nil || d != nil {
		t.Fatalf("a quarter before the installation: %v, %v", d, err)
	}
	f.clock.Set(time.Date(2026, 4, 14, 23, 59, 0, 0, zone))
	if d, err := f.svc.CheckAssessmentDue(ctx); err != nil || d != nil {
		t.Fatalf("within the 14 days: %v, %v", d, err)
	}
	f.clock.Set(time.Date(2026, 4, 15, 0, 0, 0, 0, zone))
	d, err := f.svc.CheckAssessmentDue(ctx)
	if err != nil || d == nil || d.Quarter != "2026Q1" || !d.DueAt.Equal(time.Date(2026, 4, 15, 0, 0, 0, 0, zone)) {
		t.Fatalf("2026Q1 not announced: %+v, %v", d, err)
	}
	if d, err := f.svc.CheckAssessmentDue(ctx); err != nil || d != nil || len(due) != 1 {
		t.Fatalf("announced twice: %v, %v, %d", d, err, len(due))
	}
	if es, _, err := f.log.Search(ctx, audit.Query{Action: "training.assessment_due"}); err != nil || len(es) != 1 {
		t.Fatalf("training.assessment_due entries: %v, %v", es, err)
	}
	must[[]training.Assessment](t)(f.svc.ComputeAssessments(ctx, f.call("zhouqiang"), training.NewAssessments{Quarter: "2026Q1"}))
	if len(assessed) != 1 || assessed[0] != "2026Q1" {
		t.Fatalf("assessed hooks: %v", assessed)
	}
}
