package training

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Assessment is a member of staff's quarterly assessment (季度考核): three
// scores out of 100 computed from the register and the accountability
// cases — compliance (what they owed at the quarter's end, exams failed in
// it), incidents (accountability cases upheld against them in it) and
// attendance (the sessions they were enrolled in and attended) — weighed
// 40/30/30 into the score, passed at the pass mark. The second failure in
// a row flags the person for removal from the post (建议调离岗位); they
// may appeal within 7 days, and someone other than the one who computed
// the quarter decides.
type Assessment struct {
	ID         string            `json:"id"`
	Quarter    string            `json:"quarter"`
	UserID     string            `json:"user_id"`
	Username   string            `json:"username"`
	Department string            `json:"department,omitempty"`
	Compliance int               `json:"compliance"`
	Incidents  int               `json:"incidents"`
	Attendance int               `json:"attendance"`
	Score      int               `json:"score"`
	PassMark   int               `json:"pass_mark"`
	Passed     bool              `json:"passed"`
	Flagged    bool              `json:"flagged"`
	Details    AssessmentDetails `json:"details"`
	ComputedBy string            `json:"computed_by"`
	ComputedAt time.Time         `json:"computed_at"`
	// AppealDueAt is the end of the 7 days in which a flagged person may
	// appeal.
	AppealDueAt   *time.Time `json:"appeal_due_at,omitempty"`
	Appeal        string     `json:"appeal,omitempty"`
	AppealedAt    *time.Time `json:"appealed_at,omitempty"`
	AppealOutcome string     `json:"appeal_outcome,omitempty"`
	Decision      string     `json:"decision,omitempty"`
	DecidedBy     string     `json:"decided_by,omitempty"`
	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	// Status is passed, failed, flagged, appealed, upheld (the removal
	// stands) or overturned.
	Status string `json:"status"`

	computedByID string
}

// AssessmentDetails are the counts the scores came from.
type AssessmentDetails struct {
	Enrolled       int `json:"enrolled"`
	Attended       int `json:"attended"`
	ExamsFailed    int `json:"exams_failed"`
	Obligations    int `json:"obligations"`
	CasesUpheld    int `json:"cases_upheld"`
	PreviousFailed int `json:"previous_failed"`
}

// NewAssessments computes a quarter, e.g. "2026Q1".
type NewAssessments struct {
	Quarter string `json:"quarter"`
}

// AppealDecision decides an appeal: upheld (the removal stands) or
// overturned (the flag is lifted).
type AppealDecision struct {
	Outcome string `json:"outcome"`
	Text    string `json:"text"`
}

// AssessmentAppeal is the person's appeal.
type AssessmentAppeal struct {
	Text string `json:"text"`
}

// The states of an assessment and the outcomes of an appeal.
const (
	AssessmentPassed     = "passed"
	AssessmentFailed     = "failed"
	AssessmentFlagged    = "flagged"
	AssessmentAppealed   = "appealed"
	AppealUpheld         = "upheld"
	AppealOverturned     = "overturned"
	AssessmentAppealTime = 7 * 24 * time.Hour
)

// AssessmentStatuses lists the states of an assessment.
var AssessmentStatuses = []string{AssessmentPassed, AssessmentFailed, AssessmentFlagged, AssessmentAppealed, AppealUpheld, AppealOverturned}

// FlaggedRule is the detection rule of the alert raised when an assessment
// flags a member of staff for removal from the post (key: their user id).
const FlaggedRule = "staff_assessment_flagged"

// MaxAppeal is the longest appeal or decision, in characters.
const MaxAppeal = 2000

var quarterPattern = regexp.MustCompile(`^(20[0-9]{2})Q([1-4])$`)

var errNoAssessment = &medguard.Error{Kind: medguard.NotFound, Message: "no such assessment"}

// QuarterBounds returns the start and end of a quarter ("2026Q1") in loc.
func QuarterBounds(q string, loc *time.Location) (from, to time.Time, err error) {
	m := quarterPattern.FindStringSubmatch(q)
	if m == nil {
		return from, to, medguard.InvalidField("quarter", "quarter must be a year and a quarter, e.g. 2026Q1")
	}
	y, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	from = time.Date(y, time.Month(3*(n-1)+1), 1, 0, 0, 0, 0, loc)
	return from, from.AddDate(0, 3, 0), nil
}

// QuarterOf names the quarter t falls in, in loc.
func QuarterOf(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	return fmt.Sprintf("%dQ%d", t.Year(), (int(t.Month())-1)/3+1)
}

// previousQuarter names the quarter before q.
func previousQuarter(q string) string {
	m := quarterPattern.FindStringSubmatch(q)
	y, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	if n == 1 {
		return fmt.Sprintf("%dQ4", y-1)
	}
	return fmt.Sprintf("%dQ%d", y, n-1)
}

// OnFlagged adds a hook told of every assessment that flags its person for
// removal from the post (the detection engine raises an alert).
func (s *Service) OnFlagged(hook func(context.Context, Assessment)) { s.onFlagged.Add(hook) }

// score is the weighed score.
func score(compliance, incidents, attendance int) int {
	return (40*compliance + 30*incidents + 30*attendance + 50) / 100
}

// ComputeAssessments computes a quarter's assessments of every active
// member of staff, once the quarter has ended (training.manage): a
// quarter is computed once, and kept as computed.
func (s *Service) ComputeAssessments(ctx context.Context, call *medguard.Call, in NewAssessments) ([]Assessment, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	from, to, err := QuarterBounds(in.Quarter, s.loc())
	if err != nil {
		return nil, err
	}
	if now.Before(to) {
		return nil, medguard.InvalidField("quarter", "the quarter has not ended yet")
	}
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	snap := s.snap.Load()
	upheld := map[string]int{}
	if s.conduct != nil {
		if upheld, err = s.conduct.UpheldCases(ctx, from, to); err != nil {
			return nil, err
		}
	}
	prev, err := s.assessments(ctx, `quarter = $1`, previousQuarter(in.Quarter))
	if err != nil {
		return nil, err
	}
	failedBefore := map[string]bool{}
	for _, a := range prev {
		failedBefore[a.UserID] = !a.Passed
	}
	type tally struct{ enrolled, attended int }
	att := map[string]*tally{}
	rows, err := s.db.QueryContext(ctx, `SELECT a.user_id, a.attended FROM training_attendance a JOIN training_sessions s
		ON s.id = a.session_id WHERE s.held_at >= $1 AND s.held_at < $2`, medguard.Millis(from), medguard.Millis(to))
	if err != nil {
		return nil, medguard.Wrap("training.ComputeAssessments", err)
	}
	for rows.Next() {
		var uid string
		var attended sql.NullInt64
		if err := rows.Scan(&uid, &attended); err != nil {
			rows.Close()
			return nil, medguard.Wrap("training.ComputeAssessments", err)
		}
		t := att[uid]
		if t == nil {
			t = &tally{}
			att[uid] = t
		}
		t.enrolled++
		if attended.Valid && attended.Int64 != 0 {
			t.attended++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("training.ComputeAssessments", err)
	}
	pass := snap.rules.settings.AssessmentPassMark
	var out []Assessment
	end := to.Add(-time.Millisecond)
	for _, m := range snap.staff {
		if !m.Active || !staffMember(m.Roles) || m.CreatedAt.After(end) {
			continue
		}
		f := snap.facts[m.ID]
		d := AssessmentDetails{CasesUpheld: upheld[m.ID]}
		if t := att[m.ID]; t != nil {
			d.Enrolled, d.Attended = t.enrolled, t.attended
		}
		if f != nil {
			for _, a := range f.attempts {
				if !a.passed && !a.at.Before(from) && a.at.Before(to) {
					d.ExamsFailed++
				}
			}
		}
		st := evaluate(&snap.rules, f, m.Roles, end)
		d.Obligations = len(st.Obligations)
		a := Assessment{ID: medguard.NewID(now), Quarter: in.Quarter, UserID: m.ID, Username: m.Username, Department: m.Department,
			Compliance: max(0, 100-25*d.Obligations-10*d.ExamsFailed), Incidents: max(0, 100-50*d.CasesUpheld), Attendance: 100,
			PassMark: pass, ComputedBy: call.Actor.Name, ComputedAt: now, computedByID: call.Actor.ID}
		if d.Enrolled > 0 {
			a.Attendance = d.Attended * 100 / d.Enrolled
		}
		a.Score = score(a.Compliance, a.Incidents, a.Attendance)
		a.Passed = a.Score >= pass
		if failed, ok := failedBefore[m.ID]; ok && failed {
			d.PreviousFailed = 1
			a.Flagged = !a.Passed
		}
		a.Details = d
		a.finish()
		out = append(out, a)
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.assessment_compute",
		Resource: policy.Resource{Type: "training_assessment"}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			for _, a := range out {
				details, _ := json.Marshal(a.Details)
				_, err := tx.ExecContext(ctx, `INSERT INTO training_assessments (id, quarter, user_id, username, department, compliance,
					incidents, attendance, score, passed, flagged, details, computed_by, computed_by_id, computed_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, a.ID, a.Quarter, a.UserID, a.Username,
					a.Department, a.Compliance, a.Incidents, a.Attendance, a.Score, boolInt(a.Passed), boolInt(a.Flagged), string(details),
					a.ComputedBy, a.computedByID, medguard.Millis(now))
				if storage.IsConflict(err) {
					return &medguard.Error{Kind: medguard.Conflict, Field: "quarter", Message: "the quarter was computed already"}
				}
				if err != nil {
					return err
				}
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.onAssessed.Tell(ctx, in.Quarter)
	for _, a := range out {
		if a.Flagged {
			s.onFlagged.Tell(ctx, a)
		}
	}
	if out == nil {
		out = []Assessment{}
	}
	return out, nil
}

// finish sets the derived fields.
func (a *Assessment) finish() {
	switch {
	case a.AppealOutcome != "":
		a.Status = a.AppealOutcome
	case a.AppealedAt != nil:
		a.Status = AssessmentAppealed
	case a.Flagged:
		a.Status = AssessmentFlagged
	case a.Passed:
		a.Status = AssessmentPassed
	default:
		a.Status = AssessmentFailed
	}
	if a.Flagged {
		a.AppealDueAt = ptr(a.ComputedAt.Add(AssessmentAppealTime))
	}
}

const assessmentColumns = `id, quarter, user_id, username, department, compliance, incidents, attendance, score, passed, flagged,
	details, computed_by, computed_by_id, computed_at, appeal, appealed_at, COALESCE(appeal_outcome, ''), decision,
	COALESCE(decided_by, ''), decided_at`

func (s *Service) assessments(ctx context.Context, where string, arg any) ([]Assessment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+assessmentColumns+` FROM training_assessments WHERE `+where+
		` ORDER BY quarter DESC, username`, arg)
	if err != nil {
		return nil, medguard.Wrap("training.assessments", err)
	}
	type row struct {
		a                Assessment
		appeal, decision []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		var passed, flagged int
		var details string
		var computed int64
		var appealed, decided sql.NullInt64
		if err := rows.Scan(&r.a.ID, &r.a.Quarter, &r.a.UserID, &r.a.Username, &r.a.Department, &r.a.Compliance, &r.a.Incidents,
			&r.a.Attendance, &r.a.Score, &passed, &flagged, &details, &r.a.ComputedBy, &r.a.computedByID, &computed, &r.appeal,
			&appealed, &r.a.AppealOutcome, &r.decision, &r.a.DecidedBy, &decided); err != nil {
			rows.Close()
			return nil, medguard.Wrap("training.assessments", err)
		}
		r.a.Passed, r.a.Flagged, r.a.ComputedAt = passed != 0, flagged != 0, medguard.FromMillis(computed)
		json.Unmarshal([]byte(details), &r.a.Details)
		if appealed.Valid {
			r.a.AppealedAt = ptr(medguard.FromMillis(appealed.Int64))
		}
		if decided.Valid {
			r.a.DecidedAt = ptr(medguard.FromMillis(decided.Int64))
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("training.assessments", err)
	}
	pass := DefaultSettings.AssessmentPassMark
	if snap := s.snap.Load(); snap != nil {
		pass = snap.rules.settings.AssessmentPassMark
	}
	out := make([]Assessment, 0, len(rs))
	for _, r := range rs {
		if r.a.Appeal, err = s.open(ctx, "training_assessments", r.a.ID, "appeal", r.appeal); err != nil {
			return nil, err
		}
		if r.a.Decision, err = s.open(ctx, "training_assessments", r.a.ID, "decision", r.decision); err != nil {
			return nil, err
		}
		r.a.PassMark = pass
		r.a.finish()
		out = append(out, r.a)
	}
	return out, nil
}

func (s *Service) assessment(ctx context.Context, id string) (*Assessment, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	as, err := s.assessments(ctx, `id = $1`, id)
	if err != nil || len(as) == 0 {
		return nil, err
	}
	return &as[0], nil
}

// ListAssessments lists a quarter's assessments (all quarters: ""),
// newest quarter first (training.read).
func (s *Service) ListAssessments(ctx context.Context, call *medguard.Call, quarter string) ([]Assessment, error) {
	if quarter != "" && !quarterPattern.MatchString(quarter) {
		return nil, medguard.InvalidField("quarter", "quarter must be a year and a quarter, e.g. 2026Q1")
	}
	var out []Assessment
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.assessment_list",
		Resource: policy.Resource{Type: "training_assessment"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		if quarter == "" {
			out, err = s.assessments(ctx, `quarter <> $1`, "")
		} else {
			out, err = s.assessments(ctx, `quarter = $1`, quarter)
		}
		return nil, err
	})
	return out, err
}

// AppealAssessment is the person's appeal against the flag of an
// assessment (training.self: the person alone), within 7 days of it.
func (s *Service) AppealAssessment(ctx context.Context, call *medguard.Call, id string, in AssessmentAppeal) (*Assessment, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	body, err := medguard.Text("text", in.Text, MaxAppeal, true)
	if err != nil {
		return nil, err
	}
	a, err := s.assessment(ctx, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, s.missing(ctx, call, policy.TrainingSelf, "training.assessment_appeal", "training_assessment", id, errNoAssessment)
	}
	sealed, err := s.seal(ctx, "training_assessments", a.ID, "appeal", body)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingSelf, AuditAction: "training.assessment_appeal",
		Resource: policy.Resource{Type: "training_assessment", ID: a.ID, SubjectUserID: a.UserID}}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case !a.Flagged:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "not_flagged", Message: "only an assessment that proposes removal from the post is appealed"}
		case a.AppealedAt != nil:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "appealed", Message: "the assessment was appealed already"}
		case now.After(*a.AppealDueAt):
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "appeal_window_closed", Message: "an appeal is made within 7 days of the assessment"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE training_assessments SET appeal = $1, appealed_at = $2 WHERE id = $3
				AND appealed_at IS NULL`, sealed, medguard.Millis(now), a.ID)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Code: "appealed", Message: "the assessment was appealed already"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	a.Appeal, a.AppealedAt = body, &now
	a.finish()
	return a, nil
}

// DecideAppeal decides an appeal (training.manage): by someone other than
// the person (deny.own_training) and the one who computed the quarter
// (deny.own_investigation). The decision is final and kept.
func (s *Service) DecideAppeal(ctx context.Context, call *medguard.Call, id string, in AppealDecision) (*Assessment, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	if in.Outcome != AppealUpheld && in.Outcome != AppealOverturned {
		return nil, medguard.InvalidField("outcome", "outcome must be upheld or overturned")
	}
	body, err := medguard.Text("text", in.Text, MaxAppeal, true)
	if err != nil {
		return nil, err
	}
	a, err := s.assessment(ctx, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, s.missing(ctx, call, policy.TrainingManage, "training.assessment_review", "training_assessment", id, errNoAssessment)
	}
	sealed, err := s.seal(ctx, "training_assessments", a.ID, "decision", body)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.assessment_review",
		Resource: policy.Resource{Type: "training_assessment", ID: a.ID, SubjectUserID: a.UserID,
			Investigators: []string{a.computedByID}}}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case a.AppealedAt == nil:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "not_appealed", Message: "the assessment was not appealed"}
		case a.AppealOutcome != "":
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "decided", Message: "the appeal was decided already"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE training_assessments SET appeal_outcome = $1, decision = $2, decided_by = $3,
				decided_at = $4 WHERE id = $5 AND appeal_outcome IS NULL`, in.Outcome, sealed, call.Actor.Name, medguard.Millis(now), a.ID)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Code: "decided", Message: "the appeal was decided already"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	a.AppealOutcome, a.Decision, a.DecidedBy, a.DecidedAt = in.Outcome, body, call.Actor.Name, &now
	a.finish()
	return a, nil
}

// AssessmentDueRule is the detection rule of the alert raised when an
// ended quarter is still not assessed AssessmentGrace after its end (key:
// the quarter, e.g. "2026Q3").
const AssessmentDueRule = "staff_assessment_due"

// AssessmentGrace is how long after a quarter's end its staff assessment
// may wait before it is announced as due.
const AssessmentGrace = 14 * 24 * time.Hour

// AssessmentDue is an ended quarter whose assessment is overdue.
type AssessmentDue struct {
	Quarter string    `json:"quarter"`
	DueAt   time.Time `json:"due_at"`
}

// OnAssessmentDue adds a hook told once of a quarter whose assessment is
// overdue; OnAssessed one told when a quarter's assessments are computed.
func (s *Service) OnAssessmentDue(hook func(context.Context, AssessmentDue)) {
	s.onAssessmentDue.Add(hook)
}

// OnAssessed adds a hook told of every quarter whose assessments were
// computed.
func (s *Service) OnAssessed(hook func(ctx context.Context, quarter string)) { s.onAssessed.Add(hook) }

// assessmentNotice is the training_notices row that claims a quarter's
// announcement (no member of staff: an empty user id).
func assessmentNotice(quarter string) string { return "assessment:" + quarter }

// CheckAssessmentDue announces the last ended quarter when its assessment
// was not computed within AssessmentGrace of its end and somebody was on
// the staff before it ended (a new installation owes nothing for the
// quarters before it): logged (training.assessment_due, as medguard) and
// passed to the OnAssessmentDue hooks, once across servers.
func (s *Service) CheckAssessmentDue(ctx context.Context) (*AssessmentDue, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	q := previousQuarter(QuarterOf(now, s.loc()))
	_, end, err := QuarterBounds(q, s.loc())
	if err != nil || now.Before(end.Add(AssessmentGrace)) {
		return nil, err
	}
	snap, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(snap.staff, func(m identity.StaffMember) bool { return m.Active && staffMember(m.Roles) && m.CreatedAt.Before(end) }) {
		return nil, nil
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM training_assessments WHERE quarter = $1)
		+ (SELECT count(*) FROM training_notices WHERE user_id = '' AND notice_key = $2)`, q, assessmentNotice(q)).Scan(&n); err != nil {
		return nil, medguard.Wrap("training.CheckAssessmentDue", err)
	}
	if n > 0 {
		return nil, nil
	}
	due := AssessmentDue{Quarter: q, DueAt: end.Add(AssessmentGrace)}
	fresh, err := gate.Announce(ctx, s.gate, []AssessmentDue{due}, func(d AssessmentDue) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "training.assessment_due", TargetType: "training_assessment", TargetID: d.Quarter,
			Allowed: true, Rule: "allow.system.deadline:staff_assessment"}
	}, func(ctx context.Context, tx *sql.Tx, d AssessmentDue) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO training_notices (user_id, notice_key, notified_at) VALUES ('', $1, $2)`,
			assessmentNotice(d.Quarter), medguard.Millis(now))
		if storage.IsConflict(err) {
			return gate.ErrAnnounced
		}
		return err
	})
	if len(fresh) == 0 {
		return nil, err
	}
	s.onAssessmentDue.Tell(ctx, due)
	return &due, err
}
