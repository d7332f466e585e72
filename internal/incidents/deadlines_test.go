package incidents_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/incidents"
	"medguard/internal/medguardtest"
)

// due is a deadline expected: its name and how long after the minute of
// the report it is due.
type due struct {
	name  string
	after time.Duration
}

// TestDeadlineTable checks, on the test clock, which deadlines an incident
// of each grade has — and a data leak's — and when each is due, to the
// minute from the report (09:00:37 counts from 09:00).
func TestDeadlineTable(t *testing.T) {
	confirm := due{incidents.DeadlineGradeConfirmation, 30 * time.Minute}
	meeting := due{incidents.DeadlineEmergencyMeeting, 15 * time.Minute}
	notice := due{incidents.DeadlineAuthorityNotice, time.Hour}
	plan := due{incidents.DeadlineEmergencyPlan, time.Hour}
	report := due{incidents.DeadlineAuthorityReport, 24 * time.Hour}
	isolate := due{incidents.DeadlineRiskIsolation, 2 * time.Hour}
	analysis := due{incidents.DeadlineAnalysisReport, 48 * time.Hour}
	leak := due{incidents.DeadlineLeakCauseAnalysis, 48 * time.Hour}
	progress := due{incidents.DeadlineProgressUpdate, 2 * time.Hour}
	f := setup(t) // the clock stays at the report time
	for _, c := range []struct {
		name string
		in   incidents.NewIncident
		want []due
	}{
		{"grade 1: hospital-wide outage", incidents.NewIncident{Grade: 1, Criterion: "hospital_outage"},
			[]due{confirm, meeting, notice, plan, report, progress}},
		{"grade 1: more than half the departments", incidents.NewIncident{Facts: &incidents.Facts{DepartmentsAffected: 21, DepartmentsTotal: 40}},
			[]due{confirm, meeting, notice, plan, report, progress}},
		{"grade 1: core data leak", incidents.NewIncident{Grade: 1, Criterion: "core_data_leak"},
			[]due{confirm, meeting, notice, plan, report, leak, progress}},
		{"grade 1 from the facts: data leaked", incidents.NewIncident{Facts: &incidents.Facts{CoreDataLeaked: true}},
			[]due{confirm, meeting, notice, plan, report, leak, progress}},
		{"grade 2: one department", incidents.NewIncident{Grade: 2, Criterion: "department_affected"},
			[]due{confirm, meeting, isolate, analysis, progress}},
		{"grade 2: query failure rate", incidents.NewIncident{Facts: &incidents.Facts{QueryFailureRate: 0.2}},
			[]due{confirm, meeting, isolate, analysis, progress}},
		{"grade 2 whose facts say data leaked", incidents.NewIncident{Grade: 2, Criterion: "local_data_abnormal",
			Facts: &incidents.Facts{CoreDataLeaked: true}},
			[]due{confirm, meeting, isolate, analysis, leak, progress}},
		{"grade 3: minor fault", incidents.NewIncident{Grade: 3, Criterion: "minor_fault"},
			[]due{confirm, {incidents.DeadlineFix, 72 * time.Hour}, progress}},
		{"grade 3: one record", incidents.NewIncident{Facts: &incidents.Facts{RecordsAffected: 1}},
			[]due{confirm, {incidents.DeadlineFix, 24 * time.Hour}, progress}},
		{"grade 3 whose facts say data leaked", incidents.NewIncident{Grade: 3, Criterion: "minor_fault",
			Facts: &incidents.Facts{CoreDataLeaked: true}},
			[]due{confirm, {incidents.DeadlineFix, 72 * time.Hour}, leak, progress}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := f.report(t, c.in)
			base := start.Truncate(time.Minute)
			var got []due
			for _, d := range in.Deadlines {
				got = append(got, due{d.Name, d.DueAt.Sub(base)})
				if d.State != incidents.Pending || d.MetAt != nil {
					t.Errorf("%s is %s at the report", d.Name, d.State)
				}
				if !slices.Contains(incidents.DeadlineNames, d.Name) {
					t.Errorf("%s is not in DeadlineNames", d.Name)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("deadlines\n got %v\nwant %v", got, c.want)
			}
			// Read back (the list and one at a time), the same.
			if again := f.get(t, in.ID); !slices.EqualFunc(again.Deadlines, in.Deadlines, func(a, b incidents.Deadline) bool {
				return a.Name == b.Name && a.DueAt.Equal(b.DueAt) && a.State == b.State
			}) {
				t.Fatalf("read back %+v", again.Deadlines)
			}
		})
	}
}

// meetBy returns the step that posts an update of the kind.
func meetBy(kind, text string) func(f *fixture, id string) error {
	return func(f *fixture, id string) error {
		_, err := f.svc.AddUpdate(context.Background(), f.calls["zhouqiang"], id, incidents.NewUpdate{Kind: kind, Text: text})
		return err
	}
}

// meetByAnalysis gives the 5W1H analysis.
func meetByAnalysis(f *fixture, id string) error {
	_, err := f.svc.SetAnalysis(context.Background(), f.calls["zhouqiang"], id, rootCause)
	return err
}

// deadlineCases are, for every deadline, an incident that has it and the
// action that meets it.
var deadlineCases = []struct {
	name     string
	in       incidents.NewIncident
	deadline string
	after    time.Duration
	meet     func(f *fixture, id string) error
}{
	{"grade 1 emergency meeting within 15 min", incidents.NewIncident{Grade: 1, Criterion: "hospital_outage"},
		incidents.DeadlineEmergencyMeeting, 15 * time.Minute, meetBy(incidents.UpdateMeetingHeld, "院领导、信息科、医务处召开应急会议")},
	{"grade 2 emergency meeting within 15 min", incidents.NewIncident{Grade: 2, Criterion: "department_affected"},
		incidents.DeadlineEmergencyMeeting, 15 * time.Minute, meetBy(incidents.UpdateMeetingHeld, "信息科与心内科召开应急会议")},
	{"grade 1 health authority told at once", incidents.NewIncident{Grade: 1, Criterion: "hospital_outage"},
		incidents.DeadlineAuthorityNotice, time.Hour, meetBy(incidents.UpdateAuthorityNotified, "已电话初报市卫健委值班室")},
	{"grade 1 notice met by the written report", incidents.NewIncident{Grade: 1, Criterion: "majority_departments"},
		incidents.DeadlineAuthorityNotice, time.Hour, meetBy(incidents.UpdateAuthorityReport, "已书面上报市卫健委")},
	{"grade 1 emergency plan within 1 h", incidents.NewIncident{Grade: 1, Criterion: "hospital_outage"},
		incidents.DeadlineEmergencyPlan, time.Hour, meetBy(incidents.UpdatePlanStarted, "启动信息系统瘫痪应急预案，切换手工流程")},
	{"grade 1 reported to the health authority within 24 h", incidents.NewIncident{Grade: 1, Criterion: "hospital_outage"},
		incidents.DeadlineAuthorityReport, 24 * time.Hour, meetBy(incidents.UpdateAuthorityReport, "已电话及书面上报市卫健委")},
	{"grade 2 risk isolated within 2 h", incidents.NewIncident{Grade: 2, Criterion: "local_data_abnormal"},
		incidents.DeadlineRiskIsolation, 2 * time.Hour, meetBy(incidents.UpdateRiskIsolated, "已断开异常终端网络并冻结相关账号")},
	{"grade 2 analysis report within 48 h", incidents.NewIncident{Grade: 2, Criterion: "department_affected"},
		incidents.DeadlineAnalysisReport, 48 * time.Hour, meetByAnalysis},
	{"grade 3 fixed within 72 h", incidents.NewIncident{Grade: 3, Criterion: "minor_fault"},
		incidents.DeadlineFix, 72 * time.Hour, meetBy(incidents.UpdateFixed, "已更换故障交换机")},
	{"grade 3 single record fixed within 24 h", incidents.NewIncident{Grade: 3, Criterion: "single_record"},
		incidents.DeadlineFix, 24 * time.Hour, meetBy(incidents.UpdateFixed, "已更正张三的检验报告")},
	{"data leak: cause analysed within 48 h", incidents.NewIncident{Grade: 1, Criterion: "core_data_leak"},
		incidents.DeadlineLeakCauseAnalysis, 48 * time.Hour, meetBy(incidents.UpdateCauseAnalysed, "外包人员账号被盗用，批量导出病案首页")},
	{"data leak: cause met by the 5W1H analysis", incidents.NewIncident{Grade: 2, Criterion: "local_data_abnormal",
		Facts: &incidents.Facts{CoreDataLeaked: true}}, incidents.DeadlineLeakCauseAnalysis, 48 * time.Hour, meetByAnalysis},
	{"grade confirmed within 30 min", incidents.NewIncident{Grade: 3, Criterion: "minor_fault"},
		incidents.DeadlineGradeConfirmation, 30 * time.Minute, func(f *fixture, id string) error {
			_, err := f.svc.ConfirmGrade(context.Background(), f.calls["zhouqiang"], id,
				incidents.GradeConfirmation{Grade: 3, Criterion: "minor_fault"})
			return err
		}},
}

// TestDeadlineMissedOrMet reports two incidents with each deadline at the
// same time. The first lets it pass: exactly at the due minute it is
// pending; a minute later it is overdue, listed without free text, and
// announced once (logged, and told to the OnOverdue hooks, which raise the
// alert); met afterwards it shows met, and late, and is listed no more.
// The second meets it a minute before it is due: met, not late, never
// announced — and the same step taken again later does not move the time
// it was met.
func TestDeadlineMissedOrMet(t *testing.T) {
	for _, c := range deadlineCases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			ctx := context.Background()
			late, inTime := f.report(t, c.in), f.report(t, c.in)
			dueAt := start.Truncate(time.Minute).Add(c.after)
			for _, in := range []*incidents.Incident{late, inTime} {
				if d := deadlineOf(t, in, c.deadline); !d.DueAt.Equal(dueAt) || d.State != incidents.Pending {
					t.Fatalf("%s = %+v, want due %s, pending", c.deadline, d, dueAt)
				}
			}
			told := map[string][]incidents.Deadline{}
			f.svc.OnOverdue(func(got incidents.Incident, d incidents.Deadline) {
				if got.Title != "" || got.Description != "" {
					t.Errorf("the hook was given free text: %+v", got)
				}
				if d.Name == c.deadline {
					told[got.ID] = append(told[got.ID], d)
				}
			})
			metAt := dueAt.Add(-time.Minute)
			f.clock.Set(metAt)
			if err := c.meet(f, inTime.ID); err != nil {
				t.Fatal(err)
			}
			f.clock.Set(dueAt)
			if d := deadlineOf(t, f.get(t, late.ID), c.deadline); d.State != incidents.Pending {
				t.Errorf("at %s: %+v", dueAt, d)
			}
			if _, err := f.svc.CheckOverdue(ctx); err != nil || len(told) != 0 {
				t.Fatalf("announced before it was overdue: %v %v", told, err)
			}
			f.clock.Set(dueAt.Add(time.Minute))
			if d := deadlineOf(t, f.get(t, late.ID), c.deadline); d.State != incidents.Overdue {
				t.Errorf("a minute after: %+v", d)
			}
			listed := func(id string) bool {
				items, err := f.svc.Overdue(ctx, f.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				return slices.ContainsFunc(items, func(it incidents.OverdueItem) bool {
					return it.Incident.ID == id && it.Deadline.Name == c.deadline && it.Incident.Title == ""
				})
			}
			if !listed(late.ID) || listed(inTime.ID) {
				t.Errorf("Overdue lists the missed %s: %v, the met one: %v", c.deadline, listed(late.ID), listed(inTime.ID))
			}
			for range 2 {
				if _, err := f.svc.CheckOverdue(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := told[late.ID]; len(got) != 1 || !got[0].DueAt.Equal(dueAt) || got[0].State != incidents.Overdue || len(told) != 1 {
				t.Fatalf("the hook was told %+v, want the missed %s once", told, c.deadline)
			}
			if !slices.ContainsFunc(f.entries(t), func(s audit.Stored) bool {
				return s.Entry.Action == "incident.deadline_overdue" && s.Entry.TargetID == late.ID &&
					s.Entry.Rule == "allow.system.deadline:"+c.deadline && s.Entry.Actor == "system"
			}) {
				t.Errorf("the overdue %s was not logged", c.deadline)
			}
			// Met late: shown as met, and late; no longer listed.
			if err := c.meet(f, late.ID); err != nil {
				t.Fatal(err)
			}
			d := deadlineOf(t, f.get(t, late.ID), c.deadline)
			if d.State != incidents.Met || !d.Late || d.MetAt == nil || !d.MetAt.Equal(dueAt.Add(time.Minute)) {
				t.Errorf("met late: %+v", d)
			}
			if listed(late.ID) {
				t.Errorf("%s still listed overdue once met", c.deadline)
			}
			// Met in time, and the step again later leaves it so.
			f.clock.Set(dueAt.Add(time.Hour))
			if c.deadline != incidents.DeadlineGradeConfirmation {
				if err := c.meet(f, inTime.ID); err != nil {
					t.Fatal(err)
				}
			}
			d = deadlineOf(t, f.get(t, inTime.ID), c.deadline)
			if d.State != incidents.Met || d.Late || d.MetAt == nil || !d.MetAt.Equal(metAt) {
				t.Errorf("met in time: %+v, want met at %s", d, metAt)
			}
		})
	}
}

// TestDeadlineActionsOnlyTheirOwn checks that each step meets its own
// deadline and no other: after every other kind of update the deadline is
// still unmet.
func TestDeadlineActionsOnlyTheirOwn(t *testing.T) {
	f := setup(t)
	in := f.report(t, incidents.NewIncident{Grade: 1, Criterion: "core_data_leak"})
	f.clock.Advance(time.Minute)
	for _, kind := range []string{incidents.UpdateProgress, incidents.UpdateFixed, incidents.UpdateRiskIsolated} {
		if err := meetBy(kind, "进展")(f, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	got := f.get(t, in.ID)
	for _, name := range []string{incidents.DeadlineEmergencyMeeting, incidents.DeadlineAuthorityNotice, incidents.DeadlineEmergencyPlan,
		incidents.DeadlineAuthorityReport, incidents.DeadlineLeakCauseAnalysis, incidents.DeadlineGradeConfirmation} {
		if d := deadlineOf(t, got, name); d.State != incidents.Pending {
			t.Errorf("%s: %+v", name, d)
		}
	}
	// Every update was progress: the next one is due two hours after the last.
	if d := deadlineOf(t, got, incidents.DeadlineProgressUpdate); !d.DueAt.Equal(start.Truncate(time.Minute).Add(time.Minute + 2*time.Hour)) {
		t.Errorf("%+v", d)
	}
	if n := len(got.Timeline); n != 4 || got.Timeline[3].Kind != incidents.UpdateRiskIsolated {
		t.Errorf("timeline %+v", got.Timeline)
	}
	_, err := f.svc.AddUpdate(context.Background(), f.calls["zhouqiang"], in.ID, incidents.NewUpdate{Kind: "meeting", Text: "x"})
	medguardtest.WantField(t, err, "kind")
}

// TestClosureStopsTheClocks: a grade-2 false alarm closed ten minutes after
// the report has its meeting and isolation met by the closure; a grade-1
// incident closed after two hours without its meeting or its plan keeps
// them overdue — missed — but, closed, is announced no more.
func TestClosureStopsTheClocks(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	base := start.Truncate(time.Minute)
	step := func(at time.Duration, do func() error) {
		t.Helper()
		f.clock.Set(base.Add(at))
		if err := do(); err != nil {
			t.Fatal(err)
		}
	}
	confirm := func(id string, grade int, crit string) func() error {
		return func() error {
			_, err := f.svc.ConfirmGrade(ctx, so, id, incidents.GradeConfirmation{Grade: grade, Criterion: crit,
				Commander: map[int]string{1: "liuhua"}[grade]})
			return err
		}
	}
	closeIt := func(id string) func() error {
		return func() error { _, err := f.svc.Close(ctx, so, id, "误报，已核实"); return err }
	}
	alarm := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "department_affected"})
	step(5*time.Minute, confirm(alarm.ID, 2, "department_affected"))
	step(6*time.Minute, func() error { return meetByAnalysis(f, alarm.ID) })
	step(10*time.Minute, closeIt(alarm.ID))

	f.clock.Set(base)
	outage := f.report(t, incidents.NewIncident{Grade: 1, Criterion: "hospital_outage"})
	step(20*time.Minute, confirm(outage.ID, 1, "hospital_outage"))
	step(30*time.Minute, func() error {
		return meetBy(incidents.UpdateAuthorityReport, "已书面上报市卫健委")(f, outage.ID)
	})
	step(40*time.Minute, func() error { f.confirmSteps(t, f.get(t, outage.ID)); return nil })
	step(90*time.Minute, func() error { return meetByAnalysis(f, outage.ID) })
	step(2*time.Hour, closeIt(outage.ID))

	f.clock.Set(base.Add(5 * 24 * time.Hour))
	got := f.get(t, alarm.ID)
	for _, d := range got.Deadlines {
		if d.State != incidents.Met || d.Late {
			t.Errorf("false alarm: %+v", d)
		}
	}
	for _, name := range []string{incidents.DeadlineEmergencyMeeting, incidents.DeadlineRiskIsolation} {
		if d := deadlineOf(t, got, name); !d.MetAt.Equal(*got.ClosedAt) {
			t.Errorf("%s met at %v, want the closure %v", name, d.MetAt, got.ClosedAt)
		}
	}
	got = f.get(t, outage.ID)
	for _, c := range []struct {
		name, state string
	}{
		{incidents.DeadlineEmergencyMeeting, incidents.Overdue}, {incidents.DeadlineEmergencyPlan, incidents.Overdue},
		{incidents.DeadlineAuthorityNotice, incidents.Met}, {incidents.DeadlineAuthorityReport, incidents.Met},
		{incidents.DeadlineGradeConfirmation, incidents.Met}, {incidents.DeadlineProgressUpdate, incidents.Met},
	} {
		if d := deadlineOf(t, got, c.name); d.State != c.state || d.Late {
			t.Errorf("outage %s: %+v, want %s", c.name, d, c.state)
		}
	}
	items, err := f.svc.CheckOverdue(ctx)
	if err != nil || len(items) != 0 {
		t.Fatalf("closed incidents announced: %+v %v", items, err)
	}
}
