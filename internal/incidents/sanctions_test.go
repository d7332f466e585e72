package incidents_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"medguard"
	"medguard/internal/incidents"
	"medguard/internal/medguardtest"
)

func TestPropose(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	prior := func(grade int, sanction string) []incidents.PriorOffence {
		return []incidents.PriorOffence{{CaseID: "c", Grade: grade, Sanction: sanction, DecidedAt: day}}
	}
	for _, c := range []struct {
		name     string
		grade    int
		prior    []incidents.PriorOffence
		want     int
		sanction string
	}{
		{"first grade 3", 3, nil, 3, incidents.SanctionWarning},
		{"first grade 2", 2, nil, 2, incidents.SanctionPayMonth},
		{"first grade 1", 1, nil, 1, incidents.SanctionDemotion},
		{"second grade 3 after a warning", 3, prior(3, incidents.SanctionWarning), 2, incidents.SanctionPayMonth},
		{"second grade 3 after a month's pay", 3, prior(2, incidents.SanctionPayMonth), 2, incidents.SanctionPay3Months},
		{"grade 2 after three months' pay", 2, prior(2, incidents.SanctionPay3Months), 1, incidents.SanctionDemotion},
		{"grade 1 after a demotion", 1, prior(1, incidents.SanctionDemotion), 1, incidents.SanctionTermination},
		{"after a referral: the top", 3, prior(1, incidents.SanctionReferral), 2, incidents.SanctionTermination},
		{"after a termination: no higher", 2, prior(1, incidents.SanctionTermination), 1, incidents.SanctionTermination},
		{"an earlier case without a sanction counts by its grade", 3, prior(2, ""), 2, incidents.SanctionPay3Months},
		{"two earlier: the more severe counts", 3, append(prior(3, incidents.SanctionWarning), prior(2, incidents.SanctionPay3Months)...),
			2, incidents.SanctionDemotion},
	} {
		p := incidents.Propose(c.grade, c.prior)
		if p.Grade != c.want || p.Sanction != c.sanction || p.Repeat != (len(c.prior) > 0) {
			t.Errorf("%s: %+v, want grade %d, %s", c.name, p, c.want, c.sanction)
		}
	}
}

// retrainer is the training register as the tests see it.
type retrainer struct {
	calls []string
	fail  error
}

func (r *retrainer) OrderRetraining(_ context.Context, call *medguard.Call, userID, _, reason string) error {
	if r.fail != nil {
		return r.fail
	}
	r.calls = append(r.calls, call.Actor.Name+" "+userID+" "+reason)
	return nil
}

// TestSanctionsAndRepeatOffences: a first violation is proposed its
// grade's sanction; the opinion records the sanction chosen with what was
// proposed, and a warning orders retraining (tried again until the
// training register takes it); a second violation within 12 months is
// proposed the next grade and the next sanction, an overturned one does
// not count, one more than 12 months before does not either.
func TestSanctionsAndRepeatOffences(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	wuyan, zhaomin, zhang := f.calls["wuyan"], f.calls["zhaomin"], f.calls["zhangwei"]
	r := &retrainer{fail: errors.New("the training register is down")}
	f.svc.SetRetrainer(r)
	open := func(crit string) *incidents.Case {
		t.Helper()
		c, err := f.svc.OpenCase(ctx, wuyan, incidents.NewCase{SubjectUserID: zhang.Actor.ID, Criterion: crit, Summary: "张伟未按流程借阅病历"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	uphold := func(c *incidents.Case) *incidents.Case {
		t.Helper()
		c, err := f.svc.Decide(ctx, wuyan, c.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Text: "违规事实清楚"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	first := open("procedure_not_followed")
	if p := first.Proposal; p == nil || p.Repeat || p.Grade != 3 || p.Sanction != incidents.SanctionWarning {
		t.Fatalf("proposal %+v", first.Proposal)
	}
	_, err := f.svc.Opinion(ctx, wuyan, first.ID, incidents.CaseOpinion{Sanction: incidents.SanctionWarning, Text: "警告"})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "not_decided" {
		t.Fatalf("code %s", e.Code)
	}
	first = uphold(first)
	for _, c := range []struct {
		call  *medguard.Call
		o     incidents.CaseOpinion
		field string
	}{
		{wuyan, incidents.CaseOpinion{Sanction: "fine", Text: "罚款"}, "sanction"},
		{wuyan, incidents.CaseOpinion{Sanction: incidents.SanctionWarning}, "text"},
	} {
		_, err := f.svc.Opinion(ctx, c.call, first.ID, c.o)
		medguardtest.WantField(t, err, c.field)
	}
	_, err = f.svc.Opinion(ctx, zhang, first.ID, incidents.CaseOpinion{Sanction: incidents.SanctionWarning, Text: "自己处理自己"})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	first, err = f.svc.Opinion(ctx, wuyan, first.ID, incidents.CaseOpinion{Sanction: incidents.SanctionWarning, Text: "给予警告，重新参加隐私保护培训"})
	if err != nil || first.Sanction != incidents.SanctionWarning || first.Opinion == nil || first.Opinion.Outcome != incidents.SanctionWarning ||
		first.RetrainingOrderedAt != nil || first.AppealDueAt == nil {
		t.Fatalf("%+v %v", first, err)
	}
	_, err = f.svc.Opinion(ctx, wuyan, first.ID, incidents.CaseOpinion{Sanction: incidents.SanctionPayMonth, Text: "改"})
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "opinion_given" {
		t.Fatalf("code %s", e.Code)
	}
	// The training register was down: medguard tries again.
	r.fail = nil
	if n, err := f.svc.RetryRetraining(ctx); err != nil || n != 1 || len(r.calls) != 1 ||
		r.calls[0] != "system "+zhang.Actor.ID+" accountability case "+first.ID+": warning_retraining" {
		t.Fatalf("%d %v %v", n, err, r.calls)
	}
	if n, _ := f.svc.RetryRetraining(ctx); n != 0 {
		t.Fatalf("ordered again: %d", n)
	}
	first, _ = f.svc.GetCase(ctx, zhaomin, first.ID)
	if first.RetrainingOrderedAt == nil {
		t.Fatal("the order is not recorded")
	}
	if _, err := f.db.ExecContext(ctx, `UPDATE accountability_cases SET sanction = 'termination'`); err == nil {
		t.Error("the database let a sanction be rewritten")
	}

	// Two months later, again: a repeat offence, one grade and one rung up.
	f.clock.Advance(60 * 24 * time.Hour)
	second := open("late_archiving")
	if p := second.Proposal; !p.Repeat || p.Grade != 2 || p.Sanction != incidents.SanctionPayMonth || len(p.Prior) != 1 || p.Prior[0].CaseID != first.ID {
		t.Fatalf("proposal %+v", second.Proposal)
	}
	second = uphold(second)
	// The office chose lighter than proposed: both are kept.
	second, err = f.svc.Opinion(ctx, zhaomin, second.ID, incidents.CaseOpinion{Sanction: incidents.SanctionWarning, Text: "情节轻微，再次警告"})
	if err != nil || second.Sanction != incidents.SanctionWarning || second.Proposal.Sanction != incidents.SanctionPayMonth || second.Proposal.Grade != 2 {
		t.Fatalf("%+v %v", second, err)
	}
	if len(r.calls) != 2 || second.RetrainingOrderedAt == nil {
		t.Fatalf("retraining %v %v", r.calls, second.RetrainingOrderedAt)
	}
	// The second is appealed and overturned: it no longer counts.
	if _, err := f.svc.Appeal(ctx, zhang, second.ID, "当日已补办手续"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ReviewAppeal(ctx, f.calls["sunli"], second.ID, incidents.CaseReview{Outcome: incidents.Overturned, Text: "x"}); err == nil {
		t.Fatal("a security officer reviewed an appeal")
	}
	other := *f.calls["zhaomin"]
	other.Actor.ID, other.Actor.Name = medguard.NewID(f.clock.Now()), "qianfang"
	if _, err := f.svc.ReviewAppeal(ctx, &other, second.ID, incidents.CaseReview{Outcome: incidents.Overturned, Text: "申诉成立"}); err != nil {
		t.Fatal(err)
	}
	// A year and a day after the first decision: nothing counts any more.
	f.clock.Set(first.Decision.At.Add(incidents.RepeatWindow + 24*time.Hour))
	third := open("procedure_not_followed")
	if p := third.Proposal; p.Repeat || p.Grade != 3 {
		t.Fatalf("proposal %+v", third.Proposal)
	}
	// …but a case opened within 12 months of the first still does.
	f.clock.Set(first.Decision.At.Add(300 * 24 * time.Hour))
	fourth := open("procedure_not_followed")
	if p := fourth.Proposal; !p.Repeat || len(p.Prior) != 1 || p.Prior[0].CaseID != first.ID {
		t.Fatalf("proposal %+v", fourth.Proposal)
	}
	// A dismissed case needs no opinion, and takes none.
	dismissed, err := f.svc.Decide(ctx, wuyan, fourth.ID, incidents.CaseDecision{Outcome: incidents.Dismissed, Text: "证据不足"})
	if err != nil || deadlineOf2(t, dismissed.Deadlines, incidents.DeadlineHandlingOpinion).State != incidents.Met {
		t.Fatalf("%+v %v", dismissed, err)
	}
	_, err = f.svc.Opinion(ctx, wuyan, fourth.ID, incidents.CaseOpinion{Sanction: incidents.SanctionWarning, Text: "x"})
	medguardtest.WantKind(t, err, medguard.Conflict)
}

func deadlineOf2(t *testing.T, ds []incidents.Deadline, name string) incidents.Deadline {
	t.Helper()
	for _, d := range ds {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no %s deadline in %+v", name, ds)
	return incidents.Deadline{}
}

// TestHandlingOpinionDeadline: a case opened on a Friday afternoon before
// a weekend has its opinion due at the end of the following Friday; it is
// pending until then, overdue after, announced once (with the 72-hour
// fact-finding), and met late by the opinion, which clears the alerts.
func TestHandlingOpinionDeadline(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	wuyan := f.calls["wuyan"]
	f.clock.Set(time.Date(2026, 11, 27, 7, 30, 0, 0, time.UTC)) // Friday 15:30 in Beijing
	var overdue []string
	var settled []string
	f.svc.OnCaseOverdue(func(c incidents.Case, d incidents.Deadline) {
		if c.Summary != "" {
			t.Errorf("the hook got free text")
		}
		overdue = append(overdue, d.Name)
	})
	f.svc.OnCaseSettled(func(_ context.Context, c incidents.Case) { settled = append(settled, c.ID) })
	c, err := f.svc.OpenCase(ctx, wuyan, incidents.NewCase{SubjectUserID: f.calls["zhangwei"].Actor.ID, Criterion: "late_archiving",
		Summary: "出院病历归档超过24小时"})
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC) // Saturday 5 December 00:00 in Beijing
	if !c.OpinionDueAt.Equal(due) || !c.CalendarCovered {
		t.Fatalf("opinion due %s", c.OpinionDueAt)
	}
	opinion := deadlineOf2(t, c.Deadlines, incidents.DeadlineHandlingOpinion)
	if !opinion.DueAt.Equal(due) || opinion.State != incidents.Pending {
		t.Fatalf("%+v", opinion)
	}
	// Monday: the 72 hours are over.
	f.clock.Set(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC))
	got, err := f.svc.CheckCaseOverdue(ctx)
	if err != nil || len(got) != 1 || got[0].Deadline.Name != incidents.DeadlineFactFinding {
		t.Fatalf("%+v %v", got, err)
	}
	c, _ = f.svc.Decide(ctx, wuyan, c.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Text: "属实"})
	if len(settled) != 1 {
		t.Fatalf("settled %v", settled)
	}
	// At the due instant still pending; a minute later overdue, once.
	f.clock.Set(due)
	if got, _ := f.svc.CheckCaseOverdue(ctx); len(got) != 0 {
		t.Fatalf("%+v", got)
	}
	f.clock.Set(due.Add(time.Minute))
	got, err = f.svc.CheckCaseOverdue(ctx)
	if err != nil || len(got) != 1 || got[0].Deadline.Name != incidents.DeadlineHandlingOpinion || got[0].Case.ID != c.ID {
		t.Fatalf("%+v %v", got, err)
	}
	if got, _ := f.svc.CheckCaseOverdue(ctx); len(got) != 0 {
		t.Fatalf("announced twice: %+v", got)
	}
	if len(overdue) != 2 {
		t.Fatalf("overdue hooks %v", overdue)
	}
	announced := 0
	for _, s := range f.entries(t) {
		if s.Entry.Action == "accountability.deadline_overdue" && s.Entry.TargetID == c.ID && s.Entry.Actor == "system" {
			announced++
		}
	}
	if announced != 2 {
		t.Errorf("%d announcements in the log", announced)
	}
	c, err = f.svc.Opinion(ctx, wuyan, c.ID, incidents.CaseOpinion{Sanction: incidents.SanctionWarning, Text: "警告"})
	if err != nil {
		t.Fatal(err)
	}
	if d := deadlineOf2(t, c.Deadlines, incidents.DeadlineHandlingOpinion); d.State != incidents.Met || !d.Late {
		t.Errorf("%+v", d)
	}
	if len(settled) != 2 {
		t.Errorf("settled %v", settled)
	}
	if items, _ := f.svc.CaseOverdue(ctx, f.clock.Now()); len(items) != 0 {
		t.Errorf("still overdue: %+v", items)
	}
}
