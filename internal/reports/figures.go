// Package reports owns the leadership group's periodic security posture
// reports (安全态势报告, seed 003 §2.1, SPEC §10, issue 14): a weekly
// summary, a monthly and a quarterly report, each with the trends of the
// last periods — alerts by rule family, incidents by grade, open
// vulnerabilities by severity and age, training coverage, the compliance
// score, risks by level — and the headline figures of backups, drills and
// rectification. Every figure is computed from live data through the
// consumer-side interfaces of Sources, which the App implements over the
// registers' services; none is typed in.
//
// A report is rendered as HTML (charts as SVG) and as PDF (charts drawn
// with fpdf, Chinese text in a CJK TrueType font), stored with both, and
// signed: the PDF's SHA-256 is the target of its report.generate audit
// entry, written in the same transaction that stores it. Reports are made
// on schedule (weekly on Monday, monthly on the 1st, quarterly on a
// quarter's first day, in the hospital's zone; once across servers; a
// missed one is caught up) and on demand; reading and downloading them is
// audited.
//
// Reports name counts and staff, never patients: no source hands this
// package anything about a patient, and it reads no other package's
// tables.
package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The kinds of report.
const (
	Weekly    = "weekly"    // 周报
	Monthly   = "monthly"   // 月报
	Quarterly = "quarterly" // 季报
)

// Kinds lists the kinds of report.
var Kinds = []string{Weekly, Monthly, Quarterly}

// TrendLength is how many periods a report's trends show, by kind: twelve
// weeks, twelve months, eight quarters.
var TrendLength = map[string]int{Weekly: 12, Monthly: 12, Quarterly: 8}

// Period is a report's period: [Start, End) in the hospital's zone.
type Period struct {
	Kind  string    `json:"kind"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Label names the period: 2026-W49, 2026-12, 2026-Q4.
	Label string `json:"label"`
}

// PeriodOf returns the period of kind that holds t, in loc.
func PeriodOf(kind string, t time.Time, loc *time.Location) Period {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	y, m, d := t.Date()
	var start, end time.Time
	switch kind {
	case Weekly:
		wd := (int(t.Weekday()) + 6) % 7 // Monday 0
		start = time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
		end = time.Date(y, m, d-wd+7, 0, 0, 0, 0, loc)
	case Quarterly:
		q := (int(m) - 1) / 3
		start = time.Date(y, time.Month(q*3+1), 1, 0, 0, 0, 0, loc)
		end = time.Date(y, time.Month(q*3+4), 1, 0, 0, 0, 0, loc)
	default:
		kind = Monthly
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		end = time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return Period{Kind: kind, Start: start, End: end, Label: label(kind, start)}
}

func label(kind string, start time.Time) string {
	switch kind {
	case Weekly:
		y, w := start.ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	case Quarterly:
		return fmt.Sprintf("%d-Q%d", start.Year(), (int(start.Month())-1)/3+1)
	}
	return fmt.Sprintf("%d-%02d", start.Year(), int(start.Month()))
}

// Prev returns the period before p.
func (p Period) Prev() Period {
	return PeriodOf(p.Kind, p.Start.Add(-time.Hour), p.Start.Location())
}

// Next returns the period after p.
func (p Period) Next() Period {
	return PeriodOf(p.Kind, p.End.Add(time.Hour), p.Start.Location())
}

// LastComplete returns the newest period of kind that ended by now: the
// one a scheduled report covers (last week on Monday, last month on the
// 1st, last quarter on a quarter's first day).
func LastComplete(kind string, now time.Time, loc *time.Location) Period {
	return PeriodOf(kind, now, loc).Prev()
}

// The families alerts are counted by: access to records (bulk reading,
// off-hours, cross-department, exports), sign-in, deadlines missed
// (overdue reviews, drills, vulnerabilities, inspections), and the rest.
const (
	FamilyAccess   = "access"
	FamilySignIn   = "signin"
	FamilyDeadline = "deadline"
	FamilyOther    = "other"
)

// Families lists the rule families, in the order charts show them.
var Families = []string{FamilyAccess, FamilySignIn, FamilyDeadline, FamilyOther}

// FamilyOf returns the family of a detection rule by its name.
func FamilyOf(rule string) string {
	switch {
	case strings.Contains(rule, "signin") || strings.Contains(rule, "login") || strings.Contains(rule, "password") ||
		strings.Contains(rule, "totp") || strings.Contains(rule, "session"):
		return FamilySignIn
	case strings.HasSuffix(rule, "_overdue") || strings.HasSuffix(rule, "_missed") || strings.HasSuffix(rule, "_due") ||
		strings.Contains(rule, "cadence") || strings.Contains(rule, "retraining") || strings.Contains(rule, "out_of_range") ||
		strings.Contains(rule, "sync"):
		return FamilyDeadline
	case strings.Contains(rule, "read") || strings.Contains(rule, "export") || strings.Contains(rule, "patient") ||
		strings.Contains(rule, "relation") || strings.Contains(rule, "baseline") || strings.Contains(rule, "denied") ||
		strings.Contains(rule, "break_glass") || strings.Contains(rule, "bulk"):
		return FamilyAccess
	}
	return FamilyOther
}

// Severities of vulnerabilities, most severe first, and the age buckets of
// the open ones (days since first seen).
var (
	Severities = []string{"critical", "high", "medium", "low"}
	AgeBuckets = []string{"0-7", "8-30", "31-90", "90+"}
)

// ageBucket returns the bucket of an age.
func ageBucket(age time.Duration) string {
	d := age.Hours() / 24
	switch {
	case d <= 7:
		return AgeBuckets[0]
	case d <= 30:
		return AgeBuckets[1]
	case d <= 90:
		return AgeBuckets[2]
	}
	return AgeBuckets[3]
}

// RiskLevels lists the levels of risks, lowest first (as the register).
var RiskLevels = []string{"low", "medium", "high", "critical"}

// OpenVuln is an open vulnerability as the report counts it.
type OpenVuln struct {
	Severity  string
	FirstSeen time.Time
	DueAt     time.Time
}

// Continuity is the backups' and drills' headline: the backups now, and
// the emergency drills held in a period.
type Continuity struct {
	// BackupsConfigured is false when this server runs no backup schedule.
	BackupsConfigured bool `json:"backups_configured"`
	BackupTargets     int  `json:"backup_targets"`
	BackupsLate       int  `json:"backups_late"`
	BackupsFailing    int  `json:"backups_failing"`
	// RPOMinutes is the achieved recovery point (minutes), RPOLate whether
	// it is beyond its goal.
	RPOMinutes   int  `json:"rpo_minutes"`
	RPOLate      bool `json:"rpo_late"`
	DrillsHeld   int  `json:"drills_held"`
	DrillsPassed int  `json:"drills_passed"`
}

// ComplianceScore is one compliance run's result: the share of applicable
// checks that passed, in percent.
type ComplianceScore struct {
	At     time.Time `json:"at"`
	Score  int       `json:"score"`
	Passed int       `json:"passed"`
	Failed int       `json:"failed"`
	Total  int       `json:"total"`
}

// RectificationFigures are the rectification items (整改) at a period's
// end, and those opened and closed in it.
type RectificationFigures struct {
	Open    int `json:"open"`
	Overdue int `json:"overdue"`
	Opened  int `json:"opened"`
	Closed  int `json:"closed"`
}

// The consumer-side interfaces the App implements over the registers. Each
// returns counts only: never a patient, never a record.
type (
	// AlertSource counts the alerts raised in [from, to), by rule.
	AlertSource interface {
		AlertsByRule(ctx context.Context, from, to time.Time) (map[string]int, error)
	}
	// IncidentSource counts the incidents reported in [from, to), by grade
	// (1 to 3).
	IncidentSource interface {
		IncidentsByGrade(ctx context.Context, from, to time.Time) (map[int]int, error)
	}
	// VulnSource lists the vulnerabilities open at an instant.
	VulnSource interface {
		OpenVulnsAt(ctx context.Context, at time.Time) ([]OpenVuln, error)
	}
	// TrainingSource tells how many active staff owe training at an
	// instant, and how many of them are current.
	TrainingSource interface {
		CoverageAt(ctx context.Context, at time.Time) (staff, current int, err error)
	}
	// RiskSource counts the open risks at an instant, by level.
	RiskSource interface {
		RiskLevelsAt(ctx context.Context, at time.Time) (map[string]int, error)
	}
	// ContinuitySource tells the backups' state now and the drills held in
	// [from, to).
	ContinuitySource interface {
		Continuity(ctx context.Context, from, to time.Time) (Continuity, error)
	}
	// ComplianceHistory lists the compliance runs of [from, to), oldest
	// first (the compliance register).
	ComplianceHistory interface {
		ComplianceScores(ctx context.Context, from, to time.Time) ([]ComplianceScore, error)
	}
	// RectificationSource counts the rectification items (the
	// rectification register).
	RectificationSource interface {
		RectificationAt(ctx context.Context, from, to time.Time) (RectificationFigures, error)
	}
)

// Sources are where a report's figures come from. A nil source is a
// register this server does not have: its section says so.
type Sources struct {
	Alerts        AlertSource
	Incidents     IncidentSource
	Vulns         VulnSource
	Training      TrainingSource
	Risks         RiskSource
	Continuity    ContinuitySource
	Compliance    ComplianceHistory
	Rectification RectificationSource
}

// Count is a named count; Title, if set, is the name in the report's
// language (a detection rule's).
type Count struct {
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	Count int    `json:"count"`
}

// PeriodFigures are one period's figures in a trend.
type PeriodFigures struct {
	Label string    `json:"label"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Alerts by family (Families), and their total.
	Alerts      []Count `json:"alerts"`
	AlertsTotal int     `json:"alerts_total"`
	// Incidents by grade: one, two, three.
	Incidents      [3]int `json:"incidents"`
	IncidentsTotal int    `json:"incidents_total"`
	// VulnsOpen by severity (Severities) at the period's end.
	VulnsOpen      []Count `json:"vulns_open"`
	VulnsOpenTotal int     `json:"vulns_open_total"`
	// TrainingCoverage is the share of staff current at the end, in
	// percent (-1: no training register).
	TrainingCoverage int `json:"training_coverage"`
	// Compliance is the last compliance run's score by the end, if any.
	Compliance *int `json:"compliance,omitempty"`
	// Risks by level (RiskLevels) open at the end.
	Risks      []Count `json:"risks"`
	RisksTotal int     `json:"risks_total"`
}

// AgeRow is the open vulnerabilities of one age bucket, by severity.
type AgeRow struct {
	Bucket string `json:"bucket"`
	// Counts follows Severities.
	Counts []int `json:"counts"`
}

// Figures are a report's content: everything its HTML and PDF show.
type Figures struct {
	Hospital string `json:"hospital"`
	Kind     string `json:"kind"`
	Lang     string `json:"lang"`
	Period   Period `json:"period"`
	// Partial is true when the period had not ended when the report was
	// generated (a report on demand for the current period).
	Partial     bool      `json:"partial"`
	GeneratedAt time.Time `json:"generated_at"`
	// GeneratedBy is the member of staff who asked for it, by display
	// name ("" when made on schedule).
	GeneratedBy string `json:"generated_by,omitempty"`
	// Current is the period's own figures; Trend the last periods, oldest
	// first, ending with the current one.
	Current PeriodFigures   `json:"current"`
	Trend   []PeriodFigures `json:"trend"`
	// AlertRules are the period's alerts by rule, most first.
	AlertRules []Count `json:"alert_rules"`
	// VulnAges are the open vulnerabilities at the end by age and
	// severity; VulnsOverdue those past their due date.
	VulnAges        []AgeRow `json:"vuln_ages"`
	VulnsOverdue    int      `json:"vulns_overdue"`
	TrainingStaff   int      `json:"training_staff"`
	TrainingCurrent int      `json:"training_current"`
	// Continuity is nil without backups and drills.
	Continuity *Continuity `json:"continuity,omitempty"`
	// Compliance is the last compliance run by the end (nil: no runs yet).
	Compliance *ComplianceScore `json:"compliance,omitempty"`
	// ComplianceWired is false when this server has no compliance register.
	ComplianceWired bool `json:"compliance_wired"`
	// Rectification is nil without a rectification register.
	Rectification *RectificationFigures `json:"rectification,omitempty"`
}

// Compute gathers the figures of period p at now (the end is now for a
// period not yet ended) from src.
func Compute(ctx context.Context, src Sources, hospital, lang string, p Period, now time.Time) (*Figures, error) {
	f := &Figures{Hospital: hospital, Kind: p.Kind, Lang: lang, Period: p, GeneratedAt: now.UTC().Truncate(time.Millisecond),
		ComplianceWired: src.Compliance != nil}
	f.Partial = now.Before(p.End)
	n := TrendLength[p.Kind]
	periods := []Period{p}
	for len(periods) < n {
		periods = append([]Period{periods[0].Prev()}, periods...)
	}
	var scores []ComplianceScore
	if src.Compliance != nil {
		var err error
		if scores, err = src.Compliance.ComplianceScores(ctx, time.Time{}, end(p, now)); err != nil {
			return nil, fmt.Errorf("compliance history: %w", err)
		}
		sort.SliceStable(scores, func(i, j int) bool { return scores[i].At.Before(scores[j].At) })
	}
	for _, q := range periods {
		pf, err := periodFigures(ctx, src, q, now, scores)
		if err != nil {
			return nil, err
		}
		f.Trend = append(f.Trend, *pf)
	}
	f.Current = f.Trend[len(f.Trend)-1]
	e := end(p, now)
	if src.Alerts != nil {
		byRule, err := src.Alerts.AlertsByRule(ctx, p.Start, e)
		if err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
		for r, c := range byRule {
			f.AlertRules = append(f.AlertRules, Count{Name: r, Count: c})
		}
		slices.SortFunc(f.AlertRules, func(a, b Count) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.Name, b.Name)
		})
	}
	if src.Vulns != nil {
		open, err := src.Vulns.OpenVulnsAt(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("vulnerabilities: %w", err)
		}
		for _, b := range AgeBuckets {
			f.VulnAges = append(f.VulnAges, AgeRow{Bucket: b, Counts: make([]int, len(Severities))})
		}
		for _, v := range open {
			b := slices.Index(AgeBuckets, ageBucket(e.Sub(v.FirstSeen)))
			if s := slices.Index(Severities, v.Severity); s >= 0 {
				f.VulnAges[b].Counts[s]++
			}
			if !v.DueAt.IsZero() && v.DueAt.Before(e) {
				f.VulnsOverdue++
			}
		}
	}
	if src.Training != nil {
		var err error
		if f.TrainingStaff, f.TrainingCurrent, err = src.Training.CoverageAt(ctx, e); err != nil {
			return nil, fmt.Errorf("training: %w", err)
		}
	}
	if src.Continuity != nil {
		c, err := src.Continuity.Continuity(ctx, p.Start, e)
		if err != nil {
			return nil, fmt.Errorf("continuity: %w", err)
		}
		f.Continuity = &c
	}
	if last := lastScore(scores, e); last != nil {
		f.Compliance = last
	}
	if src.Rectification != nil {
		r, err := src.Rectification.RectificationAt(ctx, p.Start, e)
		if err != nil {
			return nil, fmt.Errorf("rectification: %w", err)
		}
		f.Rectification = &r
	}
	return f, nil
}

// end is the instant a period's figures are taken at: its end, or now for
// a period not yet ended.
func end(p Period, now time.Time) time.Time {
	if now.Before(p.End) {
		return now
	}
	return p.End
}

func lastScore(scores []ComplianceScore, by time.Time) *ComplianceScore {
	var last *ComplianceScore
	for i := range scores {
		if scores[i].At.Before(by) {
			last = &scores[i]
		}
	}
	return last
}

func periodFigures(ctx context.Context, src Sources, p Period, now time.Time, scores []ComplianceScore) (*PeriodFigures, error) {
	e := end(p, now)
	pf := &PeriodFigures{Label: p.Label, Start: p.Start.UTC(), End: e.UTC(), TrainingCoverage: -1}
	if src.Alerts != nil {
		byRule, err := src.Alerts.AlertsByRule(ctx, p.Start, e)
		if err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
		byFamily := map[string]int{}
		for r, c := range byRule {
			byFamily[FamilyOf(r)] += c
			pf.AlertsTotal += c
		}
		for _, fam := range Families {
			pf.Alerts = append(pf.Alerts, Count{Name: fam, Count: byFamily[fam]})
		}
	}
	if src.Incidents != nil {
		byGrade, err := src.Incidents.IncidentsByGrade(ctx, p.Start, e)
		if err != nil {
			return nil, fmt.Errorf("incidents: %w", err)
		}
		for g, c := range byGrade {
			if g >= 1 && g <= 3 {
				pf.Incidents[g-1] += c
				pf.IncidentsTotal += c
			}
		}
	}
	if src.Vulns != nil {
		open, err := src.Vulns.OpenVulnsAt(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("vulnerabilities: %w", err)
		}
		bySeverity := map[string]int{}
		for _, v := range open {
			if slices.Contains(Severities, v.Severity) {
				bySeverity[v.Severity]++
				pf.VulnsOpenTotal++
			}
		}
		for _, s := range Severities {
			pf.VulnsOpen = append(pf.VulnsOpen, Count{Name: s, Count: bySeverity[s]})
		}
	}
	if src.Training != nil {
		staff, current, err := src.Training.CoverageAt(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("training: %w", err)
		}
		pf.TrainingCoverage = 100
		if staff > 0 {
			pf.TrainingCoverage = current * 100 / staff
		}
	}
	if last := lastScore(scores, e); last != nil {
		s := last.Score
		pf.Compliance = &s
	}
	if src.Risks != nil {
		byLevel, err := src.Risks.RiskLevelsAt(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("risks: %w", err)
		}
		for _, l := range RiskLevels {
			pf.Risks = append(pf.Risks, Count{Name: l, Count: byLevel[l]})
			pf.RisksTotal += byLevel[l]
		}
	}
	return pf, nil
}

// ContentDigest is the hex SHA-256 of the report's content — its figures
// as JSON — which the HTML and the PDF show (a document cannot hold its
// own hash; the PDF's is in the audit log).
func (f *Figures) ContentDigest() (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
