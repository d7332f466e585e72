package incidents

import (
	"fmt"
	"time"

	"medguard"
)

// Grades of an incident (SPEC §7).
const (
	Major    = 1 // 重大
	Serious  = 2 // 较大
	Ordinary = 3 // 一般
)

// Criterion is one of the quantitative criteria of §7 that puts an incident
// in its grade.
type Criterion struct {
	Code   string
	Grade  int
	NameZH string
	NameEN string
}

// Criteria lists the criteria of §7, by grade.
var Criteria = []Criterion{
	{"hospital_outage", Major, "全院系统瘫痪", "Hospital-wide outage"},
	{"core_data_leak", Major, "核心数据泄露", "Core data leaked"},
	{"majority_departments", Major, "超过50%科室受影响", "More than 50% of departments affected"},
	{"department_affected", Serious, "单个科室受影响", "One department affected"},
	{"local_data_abnormal", Serious, "局部数据异常", "Local data abnormal"},
	{"query_failure_rate", Serious, "日查询失败率超过10%", "Daily query failure rate above 10%"},
	{"single_record", Ordinary, "单条记录误操作", "One record mis-operated"},
	{"minor_fault", Ordinary, "轻微故障", "Minor fault"},
}

// CriterionCodes lists the criteria's codes.
func CriterionCodes() []string {
	out := make([]string, len(Criteria))
	for i, c := range Criteria {
		out[i] = c.Code
	}
	return out
}

// LookupCriterion returns the criterion with the given code.
func LookupCriterion(code string) (Criterion, bool) {
	for _, c := range Criteria {
		if c.Code == code {
			return c, true
		}
	}
	return Criterion{}, false
}

// gradeNames are the grades in words (SPEC §7): 一级 and its name, 重大.
var gradeNames = map[int][2]string{Major: {"一级", "重大"}, Serious: {"二级", "较大"}, Ordinary: {"三级", "一般"}}

// GradeWords says a grade and its criterion in Chinese, as the timeline
// records them: "二级（局部数据异常）", or "二级（较大）" without a known
// criterion.
func GradeWords(grade int, criterion string) string {
	g, ok := gradeNames[grade]
	if !ok {
		return fmt.Sprintf("%d 级", grade)
	}
	if c, ok := LookupCriterion(criterion); ok {
		return g[0] + "（" + c.NameZH + "）"
	}
	return g[0] + "（" + g[1] + "）"
}

// Facts are what is known of an incident's reach, from which a grade is
// suggested. They hold counts and flags only, never free text.
type Facts struct {
	HospitalWideOutage  bool    `json:"hospital_wide_outage,omitempty"`
	CoreDataLeaked      bool    `json:"core_data_leaked,omitempty"`
	DepartmentsAffected int     `json:"departments_affected,omitempty"`
	DepartmentsTotal    int     `json:"departments_total,omitempty"`
	LocalDataAbnormal   bool    `json:"local_data_abnormal,omitempty"`
	QueryFailureRate    float64 `json:"query_failure_rate,omitempty"` // of the day's queries, 0–1
	RecordsAffected     int     `json:"records_affected,omitempty"`
}

func (f Facts) check() error {
	switch {
	case f.DepartmentsAffected < 0:
		return medguard.InvalidField("facts.departments_affected", "departments_affected must not be negative")
	case f.DepartmentsTotal < 0 || f.DepartmentsTotal > 0 && f.DepartmentsAffected > f.DepartmentsTotal:
		return medguard.InvalidField("facts.departments_total", "departments_total must be at least departments_affected")
	case f.QueryFailureRate < 0 || f.QueryFailureRate > 1:
		return medguard.InvalidField("facts.query_failure_rate", "query_failure_rate is a fraction from 0 to 1")
	case f.RecordsAffected < 0:
		return medguard.InvalidField("facts.records_affected", "records_affected must not be negative")
	}
	return nil
}

// Suggest returns the grade the facts meet and the criterion that decides
// it: the most severe criterion met, in the order of §7.
func Suggest(f Facts) (grade int, criterion string) {
	switch {
	case f.HospitalWideOutage:
		return Major, "hospital_outage"
	case f.CoreDataLeaked:
		return Major, "core_data_leak"
	case f.DepartmentsTotal > 0 && 2*f.DepartmentsAffected > f.DepartmentsTotal:
		return Major, "majority_departments"
	case f.DepartmentsAffected >= 1:
		return Serious, "department_affected"
	case f.LocalDataAbnormal:
		return Serious, "local_data_abnormal"
	case f.QueryFailureRate > 0.10:
		return Serious, "query_failure_rate"
	case f.RecordsAffected == 1:
		return Ordinary, "single_record"
	}
	return Ordinary, "minor_fault"
}

// The deadlines of an incident (SPEC §7). Each runs from the report, to
// the minute, and is met by a concrete, logged action:
//
//	deadline             applies to          due        met by
//	grade_confirmation   every incident      30 min     ConfirmGrade
//	emergency_meeting    grades 1 and 2      15 min     update meeting_held
//	authority_notice     grade 1             1 h        update authority_notified (or authority_report)
//	emergency_plan       grade 1             1 h        update plan_started
//	authority_report     grade 1             24 h       update authority_report
//	risk_isolation       grade 2             2 h        update risk_isolated (a freeze isolates at once)
//	analysis_report      grade 2             48 h       SetAnalysis (the 5W1H analysis)
//	fix                  grade 3             72 h/24 h  update fixed, or closure
//	leak_cause_analysis  a data leak         48 h       update cause_analysed, or SetAnalysis
//	progress_update      every open incident 2 h        any update after the last; closure
//
// Closing an incident meets the deadlines not yet due; those already
// missed stay overdue (but an incident closed is no longer announced).
const (
	DeadlineGradeConfirmation = "grade_confirmation"  // grade confirmed within 30 min of the report
	DeadlineEmergencyMeeting  = "emergency_meeting"   // grades 1 and 2: an emergency meeting within 15 min
	DeadlineAuthorityNotice   = "authority_notice"    // grade 1: the health authority told at once (within 1 h)
	DeadlineEmergencyPlan     = "emergency_plan"      // grade 1: the emergency plan started within 1 h
	DeadlineAuthorityReport   = "authority_report"    // grade 1: reported to the health authority (卫健委) within 24 h
	DeadlineRiskIsolation     = "risk_isolation"      // grade 2: the risk isolated within 2 h
	DeadlineAnalysisReport    = "analysis_report"     // grade 2: analysis report within 48 h
	DeadlineFix               = "fix"                 // grade 3: fixed within 72 h (one record: 24 h)
	DeadlineLeakCauseAnalysis = "leak_cause_analysis" // a data leak: its cause analysed within 48 h
	DeadlineProgressUpdate    = "progress_update"     // every 2 h while open
)

// DeadlineNames lists the names of the deadlines of incidents and cases,
// in the order an incident shows them (the case's fact-finding and
// handling opinion last).
var DeadlineNames = []string{DeadlineGradeConfirmation, DeadlineEmergencyMeeting, DeadlineAuthorityNotice,
	DeadlineEmergencyPlan, DeadlineAuthorityReport, DeadlineRiskIsolation, DeadlineAnalysisReport, DeadlineFix,
	DeadlineLeakCauseAnalysis, DeadlineProgressUpdate, DeadlineFactFinding, DeadlineHandlingOpinion}

// The periods of the deadlines.
const (
	GradeConfirmationPeriod = 30 * time.Minute
	EmergencyMeetingPeriod  = 15 * time.Minute
	// AuthorityNoticePeriod is how soon "at once" is. The rule (a grade-1
	// incident is reported at once, 立即报告) names no number, and a
	// deadline that cannot be missed is no deadline. One hour: the same
	// first hour in which the emergency plan must start, so the officer on
	// duty has a single first-hour list (meeting, plan, a first notice by
	// telephone), and short enough that the written report, due in 24 h,
	// cannot stand in for it. A grace of a few minutes would end before the
	// 15-minute meeting and the 30-minute grade confirmation, that is before
	// the facts to report are known.
	AuthorityNoticePeriod   = time.Hour
	EmergencyPlanPeriod     = time.Hour
	AuthorityReportPeriod   = 24 * time.Hour
	RiskIsolationPeriod     = 2 * time.Hour
	AnalysisReportPeriod    = 48 * time.Hour
	FixPeriod               = 72 * time.Hour
	SingleRecordFixPeriod   = 24 * time.Hour
	LeakCauseAnalysisPeriod = 48 * time.Hour
	ProgressUpdatePeriod    = 2 * time.Hour
)

// States of a deadline.
const (
	Pending = "pending" // not met, not yet due
	Met     = "met"     // met (Late says whether after its due time)
	Overdue = "overdue" // not met and past due
)

// Deadline is one deadline of an incident and its state at the time asked.
type Deadline struct {
	Name  string     `json:"name"`
	DueAt time.Time  `json:"due_at"`
	State string     `json:"state"`
	MetAt *time.Time `json:"met_at,omitempty"`
	// Late is set for a deadline met after it was due.
	Late bool `json:"late,omitempty"`
}

func deadline(name string, due time.Time, met *time.Time, now time.Time) Deadline {
	d := Deadline{Name: name, DueAt: due, MetAt: met}
	switch {
	case met != nil:
		d.State, d.Late = Met, met.After(due)
	case now.After(due):
		d.State = Overdue
	default:
		d.State = Pending
	}
	return d
}

// earliest returns the earlier of two times that may be missing.
func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.Before(*b):
		return a
	}
	return b
}

// DataLeak reports whether the incident is a data leak: its type is
// data_leak, its criterion is the core data leak, or the facts reported
// say data leaked (even if the grade was later confirmed under another
// criterion).
func (in *Incident) DataLeak() bool {
	return in.Type == TypeDataLeak || in.Criterion == "core_data_leak" || in.Facts != nil && in.Facts.CoreDataLeaked
}

// deadlines computes the incident's deadlines at now. They run from the
// report time to the minute (seconds dropped, so a deadline is never later
// than the regulation allows), by the grade in force.
func (in *Incident) deadlines(now time.Time) []Deadline {
	base := in.ReportedAt.Truncate(time.Minute)
	out := []Deadline{deadline(DeadlineGradeConfirmation, base.Add(GradeConfirmationPeriod), in.GradeConfirmedAt, now)}
	if in.Grade == Major || in.Grade == Serious {
		out = append(out, deadline(DeadlineEmergencyMeeting, base.Add(EmergencyMeetingPeriod), in.MeetingHeldAt, now))
	}
	var analysed *time.Time
	if in.Analysis != nil {
		analysed = &in.Analysis.At
	}
	switch in.Grade {
	case Major:
		// The written report, when it comes first, is also the notice.
		out = append(out,
			deadline(DeadlineAuthorityNotice, base.Add(AuthorityNoticePeriod), earliest(in.AuthorityNotifiedAt, in.AuthorityReportedAt), now),
			deadline(DeadlineEmergencyPlan, base.Add(EmergencyPlanPeriod), in.PlanStartedAt, now),
			deadline(DeadlineAuthorityReport, base.Add(AuthorityReportPeriod), in.AuthorityReportedAt, now))
	case Serious:
		out = append(out,
			deadline(DeadlineRiskIsolation, base.Add(RiskIsolationPeriod), in.RiskIsolatedAt, now),
			deadline(DeadlineAnalysisReport, base.Add(AnalysisReportPeriod), analysed, now))
	case Ordinary:
		period := FixPeriod
		if in.SingleRecord {
			period = SingleRecordFixPeriod
		}
		met := in.FixedAt
		if met == nil {
			met = in.ClosedAt
		}
		out = append(out, deadline(DeadlineFix, base.Add(period), met, now))
	}
	if in.DataLeak() {
		// The cause is analysed by a cause_analysed update or by the 5W1H
		// analysis, whichever comes first.
		out = append(out, deadline(DeadlineLeakCauseAnalysis, base.Add(LeakCauseAnalysisPeriod), earliest(in.CauseAnalysedAt, analysed), now))
	}
	// The next progress update is due two hours after the last one (or the
	// report); once closed, the closure was the last word.
	next := in.LastUpdateAt.Truncate(time.Minute).Add(ProgressUpdatePeriod)
	out = append(out, deadline(DeadlineProgressUpdate, next, in.ClosedAt, now))
	// Closure stops the clocks: a deadline still running when the incident
	// closed (a false alarm closed in ten minutes needs no meeting) is met
	// by the closure; one that had passed unmet stays overdue — it was
	// missed, and the record says so.
	if in.ClosedAt != nil {
		for i, d := range out {
			if d.MetAt == nil && !in.ClosedAt.After(d.DueAt) {
				out[i] = deadline(d.Name, d.DueAt, in.ClosedAt, now)
			}
		}
	}
	return out
}
