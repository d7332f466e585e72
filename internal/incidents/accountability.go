package incidents

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Users looks up the person concerned by a case, by id, or by the
// username the audit log names them with: the identity service.
type Users interface {
	UserByID(ctx context.Context, id string) (*identity.User, error)
	UserByUsername(ctx context.Context, username string) (*identity.User, error)
}

// CaseCriteria are the grades of violation of §7 (违规).
var CaseCriteria = []Criterion{
	{"deliberate_leak", 1, "故意泄露数据", "Deliberate leak"},
	{"tampering", 1, "篡改数据", "Tampering"},
	{"negligent_damage", 2, "过失造成损害", "Negligent damage"},
	{"unauthorized_queries", 2, "越权查询超过3次", "Unauthorised queries more than 3 times"},
	{"procedure_not_followed", 3, "未按流程操作（未造成损失）", "Procedure not followed, no loss"},
	{"late_archiving", 3, "病案归档延迟超过24小时", "Archiving more than 24 h late"},
}

// CaseCriterionCodes lists the codes of CaseCriteria.
func CaseCriterionCodes() []string {
	out := make([]string, len(CaseCriteria))
	for i, c := range CaseCriteria {
		out[i] = c.Code
	}
	return out
}

// Statuses of an accountability case.
const (
	Investigating = "investigating"
	Decided       = "decided"
	Appealed      = "appealed"
	Reviewed      = "reviewed"
)

// Outcomes of a decision and of an appeal's review.
const (
	Upheld     = "upheld"     // the violation is established / the decision stands
	Dismissed  = "dismissed"  // no violation
	Overturned = "overturned" // the appeal succeeds
)

// The periods of a case (SPEC §7).
const (
	FactFindingPeriod = 72 * time.Hour
	AppealPeriod      = 7 * 24 * time.Hour
)

// DeadlineFactFinding is the case's 72-hour fact-finding deadline, met by
// the decision.
const DeadlineFactFinding = "fact_finding"

// Case is an accountability case (违规责任追究) as shown.
type Case struct {
	ID              string     `json:"id"`
	SubjectUserID   string     `json:"subject_user_id"`
	SubjectUsername string     `json:"subject_username"`
	Grade           int        `json:"grade"`
	Criterion       string     `json:"criterion"`
	EvidenceIndexes []uint64   `json:"evidence_indexes"`
	Status          string     `json:"status"`
	Summary         string     `json:"summary,omitempty"`
	OpenedBy        string     `json:"opened_by"`
	OpenedAt        time.Time  `json:"opened_at"`
	Deadlines       []Deadline `json:"deadlines"`
	Findings        []CaseNote `json:"findings,omitempty"`
	Statement       *CaseNote  `json:"statement,omitempty"`
	Decision        *CaseNote  `json:"decision,omitempty"`
	FinalGrade      int        `json:"final_grade,omitempty"`
	// Opinion is the handling opinion (处理意见): its Outcome is the
	// sanction. Sanction repeats it.
	Opinion  *CaseNote `json:"opinion,omitempty"`
	Sanction string    `json:"sanction,omitempty"`
	// OpinionDueAt is the end of the 5th working day after the opening;
	// CalendarCovered says whether the holiday calendar covered the days
	// counted (if not, Monday to Friday were counted).
	OpinionDueAt    time.Time `json:"opinion_due_at"`
	CalendarCovered bool      `json:"calendar_covered"`
	// Proposal is the grade and sanction medguard proposes now (or, once
	// the opinion is given, proposed then).
	Proposal *Proposal `json:"proposal,omitempty"`
	// RetrainingOrderedAt is when the training register took the
	// retraining a warning orders.
	RetrainingOrderedAt *time.Time `json:"retraining_ordered_at,omitempty"`
	// AppealDueAt is the end of the 7 days after the handling opinion in
	// which the person may appeal.
	AppealDueAt *time.Time `json:"appeal_due_at,omitempty"`
	Appeal      *CaseNote  `json:"appeal,omitempty"`
	Review      *CaseNote  `json:"review,omitempty"`
	// Investigators are the usernames of those who opened the case, wrote
	// findings or decided it; none of them may review the appeal.
	Investigators []string `json:"investigators,omitempty"`

	openedByID  string
	decidedAt   *time.Time
	opinionAt   *time.Time
	outcome     string // of the decision
	investigIDs []string
	proposed    *Proposal // as stored with the opinion
}

// CaseNote is one step of a case: a finding, the statement, the decision,
// the appeal or the review.
type CaseNote struct {
	Text       string    `json:"text"`
	Outcome    string    `json:"outcome,omitempty"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	AuditIndex uint64    `json:"audit_index"`
}

// NewCase opens a case. Grade may be left out (0): the criterion's grade.
type NewCase struct {
	SubjectUserID   string   `json:"subject_user_id"`
	Grade           int      `json:"grade"`
	Criterion       string   `json:"criterion"`
	Summary         string   `json:"summary"`
	EvidenceIndexes []uint64 `json:"evidence_indexes"`
}

// CaseDecision concludes the fact-finding.
type CaseDecision struct {
	Outcome string `json:"outcome"`
	Grade   int    `json:"grade"`
	Text    string `json:"text"`
}

// CaseReview is the review of an appeal.
type CaseReview struct {
	Outcome string `json:"outcome"`
	Text    string `json:"text"`
}

var errNoCase = &medguard.Error{Kind: medguard.NotFound, Message: "no such accountability case"}

func caseConflict(code, msg string) error {
	return &medguard.Error{Kind: medguard.Conflict, Code: code, Message: msg}
}

// OpenCase opens an accountability case about a member of staff. Nobody
// opens a case about themselves.
func (s *Service) OpenCase(ctx context.Context, call *medguard.Call, nc NewCase) (*Case, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AccountabilityManage, AuditAction: "accountability.open",
		Resource: policy.Resource{Type: "accountability_case", ID: id, SubjectUserID: nc.SubjectUserID}},
		func(policy.Decision) (audit.Mutation, error) {
			return s.newCase(ctx, call, id, nc, now)
		})
	if err != nil {
		return nil, err
	}
	return s.freshCase(ctx, id)
}

// newCase checks a new case and returns the mutation that stores it as
// case id, opened by call at now.
func (s *Service) newCase(ctx context.Context, call *medguard.Call, id string, nc NewCase, now time.Time) (audit.Mutation, error) {
	if !medguard.ValidID(nc.SubjectUserID) {
		return nil, medguard.InvalidField("subject_user_id", "subject_user_id must name a user")
	}
	u, err := s.users.UserByID(ctx, nc.SubjectUserID)
	if err != nil {
		if medguard.IsKind(err, medguard.NotFound) {
			return nil, medguard.InvalidField("subject_user_id", "no user has this id")
		}
		return nil, err
	}
	c := slices.IndexFunc(CaseCriteria, func(c Criterion) bool { return c.Code == nc.Criterion })
	if c < 0 {
		return nil, medguard.InvalidField("criterion", "criterion must be one of the §7 grades of violation")
	}
	if nc.Grade == 0 {
		nc.Grade = CaseCriteria[c].Grade
	}
	if nc.Grade != CaseCriteria[c].Grade {
		return nil, medguard.InvalidField("grade", "criterion %s is a grade %d violation", nc.Criterion, CaseCriteria[c].Grade)
	}
	summary, err := medguard.Text("summary", nc.Summary, MaxText, true)
	if err != nil {
		return nil, err
	}
	if len(nc.EvidenceIndexes) > MaxEvidence {
		return nil, medguard.InvalidField("evidence_indexes", "at most %d audit entries", MaxEvidence)
	}
	if nc.EvidenceIndexes == nil {
		nc.EvidenceIndexes = []uint64{}
	}
	size, _, err := s.log.Head(ctx)
	if err != nil {
		return nil, err
	}
	for _, i := range nc.EvidenceIndexes {
		if i >= size {
			return nil, medguard.InvalidField("evidence_indexes", "the log has no entry %d", i)
		}
	}
	idx, _ := json.Marshal(nc.EvidenceIndexes)
	k, err := s.keys.NewDataKey(caseOwner(id))
	if err != nil {
		return nil, medguard.Wrap("incidents.OpenCase", err)
	}
	return func(ctx context.Context, tx *sql.Tx, index uint64) error {
		if err := s.keys.Save(ctx, tx, k); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO accountability_cases (id, subject_user_id, subject_username, grade,
			criterion, evidence_indexes, status, opened_by, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id, u.ID, u.Username, nc.Grade, nc.Criterion, string(idx), Investigating, call.Actor.Name, medguard.Millis(now)); err != nil {
			return err
		}
		return addCaseEntry(ctx, tx, k, id, index, "opened", "", summary, call, now)
	}, nil
}

func addCaseEntry(ctx context.Context, tx *sql.Tx, k *keys.DataKey, caseID string, index uint64, kind, outcome, body string,
	call *medguard.Call, at time.Time) error {
	var sealed []byte
	if body != "" {
		sealed = k.SealString(loc("accountability_entries", caseID+"/"+strconv.FormatUint(index, 10), "text"), body)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO accountability_entries (case_id, audit_index, kind, outcome, text, by_id,
		by_name, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, caseID, int64(index), kind, storage.NullString(outcome), sealed,
		call.Actor.ID, call.Actor.Name, medguard.Millis(at))
	return err
}

const caseColumns = `id, subject_user_id, subject_username, grade, criterion, evidence_indexes, status, opened_by, opened_at,
	decided_at, outcome, final_grade, appeal_due_at, sanction, opinion_at, proposed_grade, proposed_sanction, retraining_ordered_at`

func scanCase(sc interface{ Scan(...any) error }) (*Case, error) {
	var c Case
	var idx string
	var opened int64
	var decided, finalGrade, appealDue, opinionAt, proposedGrade, retrained sql.NullInt64
	var outcome, sanction, proposedSanction sql.NullString
	if err := sc.Scan(&c.ID, &c.SubjectUserID, &c.SubjectUsername, &c.Grade, &c.Criterion, &idx, &c.Status, &c.OpenedBy,
		&opened, &decided, &outcome, &finalGrade, &appealDue, &sanction, &opinionAt, &proposedGrade, &proposedSanction,
		&retrained); err != nil {
		return nil, err
	}
	c.Sanction, c.outcome = sanction.String, outcome.String
	if opinionAt.Valid {
		c.opinionAt = optTime(&opinionAt.Int64)
	}
	if retrained.Valid {
		c.RetrainingOrderedAt = optTime(&retrained.Int64)
	}
	if proposedSanction.Valid {
		c.proposed = &Proposal{Grade: int(proposedGrade.Int64), Sanction: proposedSanction.String}
	}
	if err := json.Unmarshal([]byte(idx), &c.EvidenceIndexes); err != nil {
		return nil, err
	}
	c.OpenedAt, c.FinalGrade = medguard.FromMillis(opened), int(finalGrade.Int64)
	if decided.Valid {
		c.decidedAt = optTime(&decided.Int64)
	}
	if appealDue.Valid {
		c.AppealDueAt = optTime(&appealDue.Int64)
	}
	return &c, nil
}

// loadCase reads a case with its entries, decrypted.
func (s *Service) loadCase(ctx context.Context, id string) (*Case, error) {
	if !medguard.ValidID(id) {
		return nil, errNoCase
	}
	c, err := scanCase(s.db.QueryRowContext(ctx, `SELECT `+caseColumns+` FROM accountability_cases WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoCase
	}
	if err != nil {
		return nil, medguard.Wrap("incidents.loadCase", err)
	}
	return c, medguard.Wrap("incidents.loadCase", s.caseEntries(ctx, c))
}

func (s *Service) caseEntries(ctx context.Context, c *Case) error {
	rows, err := s.db.QueryContext(ctx, `SELECT audit_index, kind, outcome, text, by_id, by_name, at FROM accountability_entries
		WHERE case_id = $1 ORDER BY audit_index`, c.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n CaseNote
		var index, at int64
		var kind, byID string
		var outcome sql.NullString
		var sealed []byte
		if err := rows.Scan(&index, &kind, &outcome, &sealed, &byID, &n.By, &at); err != nil {
			return err
		}
		n.AuditIndex, n.Outcome, n.At = uint64(index), outcome.String, medguard.FromMillis(at)
		if sealed != nil {
			if n.Text, err = s.keys.OpenString(ctx, caseOwner(c.ID),
				loc("accountability_entries", c.ID+"/"+strconv.FormatUint(n.AuditIndex, 10), "text"), sealed); err != nil {
				return err
			}
		}
		switch kind {
		case "opened":
			c.Summary, c.openedByID = n.Text, byID
		case "finding":
			c.Findings = append(c.Findings, n)
		case "statement":
			c.Statement = &n
		case "decision":
			c.Decision = &n
		case "appeal":
			c.Appeal = &n
		case "review":
			c.Review = &n
		case "opinion":
			c.Opinion = &n
		}
		if kind == "opened" || kind == "finding" || kind == "decision" || kind == "opinion" {
			if !slices.Contains(c.investigIDs, byID) {
				c.investigIDs = append(c.investigIDs, byID)
				c.Investigators = append(c.Investigators, n.By)
			}
		}
	}
	return rows.Err()
}

// finish computes a case's deadlines at now: the fact-finding (72 h, met
// by the decision) and the handling opinion (5 working days, met by the
// opinion, or by a dismissal; a case appealed or reviewed without an
// opinion predates the opinion and counts it met by its decision).
func (s *Service) finish(c *Case, now time.Time) {
	c.OpinionDueAt, c.CalendarCovered = s.calendar.AddWorkingDays(c.OpenedAt, HandlingOpinionWorkingDays, s.zone)
	c.OpinionDueAt = c.OpinionDueAt.UTC()
	opinion := c.opinionAt
	dismissed := c.outcome == Dismissed
	if opinion == nil && (dismissed || c.Status == Appealed || c.Status == Reviewed) {
		opinion = c.decidedAt
	}
	c.Deadlines = []Deadline{deadline(DeadlineFactFinding, c.OpenedAt.Truncate(time.Minute).Add(FactFindingPeriod), c.decidedAt, now),
		deadline(DeadlineHandlingOpinion, c.OpinionDueAt, opinion, now)}
}

// propose fills in the case's proposal: as stored with the opinion, or
// computed now for a violation not yet given its opinion.
func (s *Service) propose(ctx context.Context, c *Case, now time.Time) error {
	if c.opinionAt != nil {
		now = *c.opinionAt // as it stood when the opinion was given
	}
	prior, err := s.priorOffences(ctx, c, now)
	if err != nil {
		return err
	}
	grade := c.Grade
	if c.FinalGrade != 0 {
		grade = c.FinalGrade
	}
	p := Propose(grade, prior)
	if c.proposed != nil {
		p.Grade, p.Sanction = c.proposed.Grade, c.proposed.Sanction
	}
	c.Proposal = &p
	return nil
}

func (s *Service) freshCase(ctx context.Context, id string) (*Case, error) {
	c, err := s.loadCase(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	s.finish(c, now)
	return c, medguard.Wrap("incidents.freshCase", s.propose(ctx, c, now))
}

// caseStep passes the gate for one step on a case. The person concerned
// acts under accountability.respond (their own case only); everyone else
// under accountability.manage, never on their own case, and — when review
// is set — not if they investigated it.
func (s *Service) caseStep(ctx context.Context, call *medguard.Call, id, auditAction string, subjectStep, review bool,
	work func(c *Case, k *keys.DataKey, now time.Time) (audit.Mutation, error)) (*Case, error) {
	c, lerr := s.loadCase(ctx, id)
	if lerr != nil && !medguard.IsKind(lerr, medguard.NotFound) {
		return nil, lerr
	}
	r := policy.Resource{Type: "accountability_case", ID: id, Missing: lerr != nil}
	action := policy.AccountabilityManage
	if c != nil {
		r.SubjectUserID = c.SubjectUserID
		if subjectStep || c.SubjectUserID == call.Actor.ID && work == nil {
			action = policy.AccountabilityRespond
		}
		if review {
			r.Investigators = c.investigIDs
		}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction, Resource: r},
		func(policy.Decision) (audit.Mutation, error) {
			if lerr != nil {
				return nil, lerr
			}
			if work == nil {
				s.finish(c, now)
				return nil, s.propose(ctx, c, now)
			}
			k, err := s.keys.Current(ctx, caseOwner(id))
			if err != nil {
				return nil, medguard.Wrap("incidents.caseStep", err)
			}
			return work(c, k, now)
		})
	if err != nil {
		return nil, err
	}
	if work == nil {
		return c, nil
	}
	return s.freshCase(ctx, id)
}

// GetCase returns a case, to those who manage cases and to the person
// concerned.
func (s *Service) GetCase(ctx context.Context, call *medguard.Call, id string) (*Case, error) {
	return s.caseStep(ctx, call, id, "accountability.read", false, false, nil)
}

// ListCases lists cases with the given status (default all), newest first.
// Items carry no free text; read a case for it.
func (s *Service) ListCases(ctx context.Context, call *medguard.Call, status, before string, limit int) ([]Case, string, error) {
	out := []Case{}
	var next string
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AccountabilityManage, AuditAction: "accountability.list",
		Resource: policy.Resource{Type: "accountability_case"}},
		func(policy.Decision) (audit.Mutation, error) {
			switch status {
			case "", "all":
				status = ""
			case Investigating, Decided, Appealed, Reviewed:
			default:
				return nil, medguard.InvalidField("status", "status must be investigating, decided, appealed, reviewed or all")
			}
			rows, err := s.db.QueryContext(ctx, `SELECT `+caseColumns+` FROM accountability_cases
				WHERE ($1 = '' OR id < $1) AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3`, before, status, limit+1)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				c, err := scanCase(rows)
				if err != nil {
					return nil, err
				}
				if len(out) == limit {
					next = out[len(out)-1].ID
					break
				}
				s.finish(c, now)
				out = append(out, *c)
			}
			return nil, rows.Err()
		})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func (s *Service) setStatus(ctx context.Context, tx *sql.Tx, id, from, set string, args ...any) error {
	res, err := tx.ExecContext(ctx, `UPDATE accountability_cases SET `+set+` WHERE id = $1 AND status = '`+from+`'`,
		append([]any{id}, args...)...)
	return storage.Affected(res, err, caseConflict("case_changed", "the case was changed meanwhile; reload it"))
}

// AddFinding records a finding of fact while the case is under investigation.
func (s *Service) AddFinding(ctx context.Context, call *medguard.Call, id, finding string) (*Case, error) {
	return s.caseStep(ctx, call, id, "accountability.finding", false, false, func(c *Case, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("text", finding, MaxText, true)
		if err != nil {
			return nil, err
		}
		if c.Status != Investigating {
			return nil, caseConflict("case_decided", "the case is "+c.Status+"; findings are closed")
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := s.setStatus(ctx, tx, id, Investigating, `status = status`); err != nil {
				return err
			}
			return addCaseEntry(ctx, tx, k, id, index, "finding", "", body, call, now)
		}, nil
	})
}

// Statement records the person's own statement (陈述), once, before the
// appeal is reviewed.
func (s *Service) Statement(ctx context.Context, call *medguard.Call, id, statement string) (*Case, error) {
	return s.caseStep(ctx, call, id, "accountability.statement", true, false, func(c *Case, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("text", statement, MaxText, true)
		if err != nil {
			return nil, err
		}
		switch {
		case c.Statement != nil:
			return nil, caseConflict("statement_given", "the statement was given already")
		case c.Status == Reviewed:
			return nil, caseConflict("case_reviewed", "the case is reviewed and final")
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			return addCaseEntry(ctx, tx, k, id, index, "statement", "", body, call, now)
		}, nil
	})
}

// Decide concludes the fact-finding (due within 72 hours of opening): the
// violation is upheld, with its final grade, or dismissed. An upheld
// violation is then given its handling opinion and sanction (Opinion),
// which the person may appeal.
func (s *Service) Decide(ctx context.Context, call *medguard.Call, id string, d CaseDecision) (*Case, error) {
	c, err := s.caseStep(ctx, call, id, "accountability.decide", false, false, func(c *Case, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("text", d.Text, MaxText, true)
		if err != nil {
			return nil, err
		}
		if d.Outcome != Upheld && d.Outcome != Dismissed {
			return nil, medguard.InvalidField("outcome", "outcome must be upheld or dismissed")
		}
		grade := sql.NullInt64{}
		if d.Outcome == Upheld {
			if d.Grade == 0 {
				d.Grade = c.Grade
			}
			if d.Grade < 1 || d.Grade > 3 {
				return nil, medguard.InvalidField("grade", "grade must be 1, 2 or 3")
			}
			grade = sql.NullInt64{Int64: int64(d.Grade), Valid: true}
		}
		if c.Status != Investigating {
			return nil, caseConflict("case_decided", "the case is "+c.Status+", not under investigation")
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := s.setStatus(ctx, tx, id, Investigating, `status = $2, decided_at = $3, outcome = $4, final_grade = $5`,
				Decided, medguard.Millis(now), d.Outcome, grade); err != nil {
				return err
			}
			return addCaseEntry(ctx, tx, k, id, index, "decision", d.Outcome, body, call, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.caseSettled(ctx, c)
	return c, nil
}

// Appeal is the person's appeal (申诉) against an upheld decision and its
// handling opinion, within 7 days of the opinion.
func (s *Service) Appeal(ctx context.Context, call *medguard.Call, id, appeal string) (*Case, error) {
	return s.caseStep(ctx, call, id, "accountability.appeal", true, false, func(c *Case, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("text", appeal, MaxText, true)
		if err != nil {
			return nil, err
		}
		switch {
		case c.Status == Investigating:
			return nil, caseConflict("not_decided", "the case is not decided yet")
		case c.Status != Decided:
			return nil, caseConflict("appealed", "the decision was appealed already")
		case c.Decision != nil && c.Decision.Outcome == Dismissed:
			return nil, caseConflict("dismissed", "the case was dismissed; there is nothing to appeal")
		case c.Opinion == nil || c.AppealDueAt == nil:
			return nil, caseConflict("no_opinion", "the handling opinion is not given yet; the appeal is against it")
		case now.After(*c.AppealDueAt):
			return nil, caseConflict("appeal_window_closed", "an appeal must be made within 7 days of the decision")
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := s.setStatus(ctx, tx, id, Decided, `status = $2, appealed_at = $3`, Appealed, medguard.Millis(now)); err != nil {
				return err
			}
			return addCaseEntry(ctx, tx, k, id, index, "appeal", "", body, call, now)
		}, nil
	})
}

// ReviewAppeal reviews an appeal. The reviewer must manage cases and must
// not have investigated this one (policy rule deny.own_investigation). The
// review is final and kept permanently.
func (s *Service) ReviewAppeal(ctx context.Context, call *medguard.Call, id string, r CaseReview) (*Case, error) {
	return s.caseStep(ctx, call, id, "accountability.review", false, true, func(c *Case, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("text", r.Text, MaxText, true)
		if err != nil {
			return nil, err
		}
		if r.Outcome != Upheld && r.Outcome != Overturned {
			return nil, medguard.InvalidField("outcome", "outcome must be upheld or overturned")
		}
		if c.Status != Appealed {
			return nil, caseConflict("not_appealed", "the case is "+c.Status+"; only an appeal is reviewed")
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := s.setStatus(ctx, tx, id, Appealed, `status = $2, reviewed_at = $3, review_outcome = $4`,
				Reviewed, medguard.Millis(now), r.Outcome); err != nil {
				return err
			}
			return addCaseEntry(ctx, tx, k, id, index, "review", r.Outcome, body, call, now)
		}, nil
	})
}
