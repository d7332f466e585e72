package incidents

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
)

// The handling opinion (处理意见) of an accountability case and its sanction.
//
// Once the fact-finding upholds a violation (Decide, within 72 hours), the
// case managers give the handling opinion with the sanction, due within 5
// working days of the case's opening (HandlingOpinionWorkingDays, see
// workdays.go); the person may appeal within 7 days of the opinion. A
// dismissed case needs no opinion: the dismissal meets that deadline too.
//
// Sanctions are a closed list, most of them on a ladder of severity:
// warning and retraining, a month's performance pay withheld, three
// months', demotion, termination. Referral to the authorities stands
// apart: it goes with grade 1 (a deliberate leak or tampering may be a
// crime), and counts as the top of the ladder when a later offence is
// weighed.
//
// Repeat offences escalate. medguard proposes a grade and a sanction:
// without an earlier offence, the case's grade and that grade's sanction
// (grade 3: warning and retraining; grade 2: a month's pay; grade 1:
// demotion). When the same person had a violation upheld (and not
// overturned on appeal) in the RepeatWindow (12 months) before the case
// was opened, or since, the proposal is one grade more serious (down to
// grade 1) and at least one rung above the most severe earlier sanction.
// The proposal is only that: the managers choose the sanction; what was
// proposed when they chose is kept beside it, so that a lighter choice
// shows. A warning orders retraining through the Retrainer (the training
// register), which gates record access until it is passed.

// Sanctions.
const (
	SanctionWarning     = "warning_retraining" // 警告并重新培训
	SanctionPayMonth    = "pay_1_month"        // 扣发绩效 1 个月
	SanctionPay3Months  = "pay_3_months"       // 扣发绩效 3 个月
	SanctionDemotion    = "demotion"           // 降级/降职
	SanctionTermination = "termination"        // 解除聘用
	SanctionReferral    = "referral"           // 移送司法机关/主管部门
)

// Sanction is a sanction in words.
type Sanction struct {
	Code, NameZH, NameEN string
}

// Sanctions lists the sanctions, the ladder first, in order of severity.
var Sanctions = []Sanction{
	{SanctionWarning, "警告并重新培训", "Warning and retraining"},
	{SanctionPayMonth, "扣发绩效 1 个月", "Performance pay withheld for 1 month"},
	{SanctionPay3Months, "扣发绩效 3 个月", "Performance pay withheld for 3 months"},
	{SanctionDemotion, "降级/降职", "Demotion"},
	{SanctionTermination, "解除聘用", "Termination"},
	{SanctionReferral, "移送司法机关或主管部门", "Referral to the authorities"},
}

// SanctionCodes lists the sanctions' codes.
func SanctionCodes() []string {
	out := make([]string, len(Sanctions))
	for i, s := range Sanctions {
		out[i] = s.Code
	}
	return out
}

// ladder is the escalation order; referral counts as termination.
var ladder = []string{SanctionWarning, SanctionPayMonth, SanctionPay3Months, SanctionDemotion, SanctionTermination}

func rung(sanction string) int {
	if sanction == SanctionReferral {
		return len(ladder) - 1
	}
	return slices.Index(ladder, sanction)
}

// DefaultSanction is the sanction proposed for a first violation of a
// grade.
func DefaultSanction(grade int) string {
	switch grade {
	case 1:
		return SanctionDemotion
	case 2:
		return SanctionPayMonth
	}
	return SanctionWarning
}

// RepeatWindow is how long an upheld violation makes the next one a
// repeat offence: 12 months.
const RepeatWindow = 365 * 24 * time.Hour

// HandlingOpinionWorkingDays is the handling opinion's deadline, in
// working days from the case's opening.
const HandlingOpinionWorkingDays = 5

// DeadlineHandlingOpinion is the case's handling-opinion deadline.
const DeadlineHandlingOpinion = "handling_opinion"

// Proposal is the grade and sanction medguard proposes for a case.
type Proposal struct {
	Grade    int    `json:"grade"`
	Sanction string `json:"sanction"`
	// Repeat is set for a repeat offence; Prior lists the earlier upheld
	// cases that make it one.
	Repeat bool           `json:"repeat"`
	Prior  []PriorOffence `json:"prior,omitempty"`
}

// PriorOffence is an earlier upheld violation of the same person.
type PriorOffence struct {
	CaseID    string    `json:"case_id"`
	Grade     int       `json:"grade"`
	Sanction  string    `json:"sanction,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// Propose is the proposal for a violation of grade by someone with the
// given earlier upheld offences (see the package's rules above).
func Propose(grade int, prior []PriorOffence) Proposal {
	if grade < 1 || grade > 3 {
		grade = 3
	}
	p := Proposal{Grade: grade, Sanction: DefaultSanction(grade), Prior: prior}
	if len(prior) == 0 {
		return p
	}
	p.Repeat = true
	p.Grade = max(1, grade-1)
	top := rung(DefaultSanction(p.Grade))
	for _, o := range prior {
		s := o.Sanction
		if s == "" {
			s = DefaultSanction(o.Grade)
		}
		top = max(top, min(rung(s)+1, len(ladder)-1))
	}
	p.Sanction = ladder[top]
	return p
}

// priorOffences lists the person's upheld, not overturned violations
// decided from RepeatWindow before the case's opening until now, other
// than the case itself.
func (s *Service) priorOffences(ctx context.Context, c *Case, now time.Time) ([]PriorOffence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, COALESCE(final_grade, grade), COALESCE(sanction, ''), decided_at
		FROM accountability_cases WHERE subject_user_id = $1 AND id <> $2 AND outcome = 'upheld'
		AND (review_outcome IS NULL OR review_outcome <> 'overturned') AND decided_at >= $3 AND decided_at <= $4
		ORDER BY decided_at`, c.SubjectUserID, c.ID, medguard.Millis(c.OpenedAt.Add(-RepeatWindow)), medguard.Millis(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PriorOffence
	for rows.Next() {
		var o PriorOffence
		var at int64
		if err := rows.Scan(&o.CaseID, &o.Grade, &o.Sanction, &at); err != nil {
			return nil, err
		}
		o.DecidedAt = medguard.FromMillis(at)
		out = append(out, o)
	}
	return out, rows.Err()
}

// CaseOpinion is the handling opinion: the sanction and its reasons.
type CaseOpinion struct {
	Sanction string `json:"sanction"`
	Text     string `json:"text"`
}

// Opinion gives the handling opinion of a case whose violation was upheld:
// the sanction (one of Sanctions) and its reasons, due within 5 working
// days of the opening. What medguard proposed is kept beside it. The
// person may appeal within 7 days. A warning orders retraining (the
// Retrainer), at once, and again by Run until the training register takes
// it.
func (s *Service) Opinion(ctx context.Context, call *medguard.Call, id string, o CaseOpinion) (*Case, error) {
	var proposal Proposal
	c, err := s.caseStep(ctx, call, id, "accountability.opinion", false, false, func(c *Case, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("text", o.Text, MaxText, true)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(SanctionCodes(), o.Sanction) {
			return nil, medguard.InvalidField("sanction", "sanction must be one of %s", strings.Join(SanctionCodes(), ", "))
		}
		switch {
		case c.Status == Investigating:
			return nil, caseConflict("not_decided", "the fact-finding is not concluded yet: decide the case first")
		case c.Decision == nil || c.Decision.Outcome != Upheld:
			return nil, caseConflict("dismissed", "the case was dismissed; there is no sanction to give")
		case c.Opinion != nil:
			return nil, caseConflict("opinion_given", "the handling opinion was given already")
		case c.Status != Decided:
			return nil, caseConflict("case_changed", "the case is "+c.Status)
		}
		prior, err := s.priorOffences(ctx, c, now)
		if err != nil {
			return nil, err
		}
		proposal = Propose(c.FinalGrade, prior)
		due := now.Add(AppealPeriod)
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := s.setStatus(ctx, tx, id, Decided, `sanction = $2, opinion_at = $3, opinion_by = $4, proposed_grade = $5,
				proposed_sanction = $6, appeal_due_at = $7`, o.Sanction, medguard.Millis(now), call.Actor.Name, proposal.Grade,
				proposal.Sanction, medguard.Millis(due)); err != nil {
				return err
			}
			return addCaseEntry(ctx, tx, k, id, index, "opinion", o.Sanction, body, call, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if c.Sanction == SanctionWarning {
		s.orderRetraining(ctx, call, c)
		if c, err = s.freshCase(ctx, id); err != nil {
			return nil, err
		}
	}
	s.caseSettled(ctx, c)
	return c, nil
}

// Retrainer orders a member of staff's retraining: the training register
// (built elsewhere) implements it, and gates the person's record access
// until they pass. medguard calls it when an accountability case's
// sanction is a warning with retraining; call is the caller who gave the
// opinion, or medguard itself when it tries again.
type Retrainer interface {
	OrderRetraining(ctx context.Context, call *medguard.Call, userID, caseID, reason string) error
}

// SetRetrainer sets the training register that orders retraining (nil:
// none yet; the cases wait, listed as retraining pending). Call it while
// wiring.
func (s *Service) SetRetrainer(r Retrainer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retrainer = r
}

// orderRetraining hands a warned person's retraining to the Retrainer and
// records that it did (accountability.retraining_ordered, logged). A
// failure is left for Run to try again; the reason names the case only.
func (s *Service) orderRetraining(ctx context.Context, call *medguard.Call, c *Case) error {
	s.mu.Lock()
	r := s.retrainer
	s.mu.Unlock()
	if r == nil || c.RetrainingOrderedAt != nil {
		return nil
	}
	if err := r.OrderRetraining(ctx, call, c.SubjectUserID, c.ID, "accountability case "+c.ID+": "+SanctionWarning); err != nil {
		return err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	sys := System
	_, err := s.gate.Record(ctx, gate.Event{Call: &sys, Action: "accountability.retraining_ordered", TargetType: "accountability_case",
		TargetID: c.ID, Allowed: true, Rule: "allow.system.sanction"}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		_, err := tx.ExecContext(ctx, `UPDATE accountability_cases SET retraining_ordered_at = $1
			WHERE id = $2 AND retraining_ordered_at IS NULL`, medguard.Millis(now), c.ID)
		return err
	})
	return err
}

// RetrainingPending lists the cases whose warning's retraining the
// training register has not taken yet (an overturned appeal cancels it).
func (s *Service) retrainingPending(ctx context.Context) ([]*Case, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM accountability_cases WHERE sanction = $1 AND retraining_ordered_at IS NULL
		AND (review_outcome IS NULL OR review_outcome <> 'overturned') ORDER BY id`, SanctionWarning)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []*Case
	for _, id := range ids {
		c, err := s.loadCase(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// RetryRetraining hands the pending retraining orders to the training
// register again, as medguard itself; it returns how many it took.
func (s *Service) RetryRetraining(ctx context.Context) (int, error) {
	s.mu.Lock()
	r := s.retrainer
	s.mu.Unlock()
	if r == nil {
		return 0, nil
	}
	cs, err := s.retrainingPending(ctx)
	if err != nil {
		return 0, medguard.Wrap("incidents.RetryRetraining", err)
	}
	n := 0
	sys := System
	for _, c := range cs {
		if err := s.orderRetraining(ctx, &sys, c); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
