package incidents

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Statuses of an incident.
const (
	Open   = "open"
	Closed = "closed"
)

// Sources of an incident.
const (
	SourceReport = "report" // reported by a member of staff
	SourceFreeze = "freeze" // opened by the detection engine when it froze an account
	// SourceAnonymous is an incident the security office opened from an
	// anonymous report (举报); ReportedBy is who converted it.
	SourceAnonymous = "anonymous_report"
)

// Incident is a security incident (安全事件) as shown: its grade and the
// criterion chosen, its deadlines in their state at the time asked, and —
// when read one at a time — its timeline, evidence and corrective actions.
type Incident struct {
	ID                 string     `json:"id"`
	Type               string     `json:"type"`
	Grade              int        `json:"grade"`
	Criterion          string     `json:"criterion"`
	GradeConfirmed     bool       `json:"grade_confirmed"`
	SingleRecord       bool       `json:"single_record"`
	SuggestedGrade     int        `json:"suggested_grade,omitempty"`
	SuggestedCriterion string     `json:"suggested_criterion,omitempty"`
	Facts              *Facts     `json:"facts,omitempty"`
	Status             string     `json:"status"`
	Source             string     `json:"source"`
	AlertID            string     `json:"alert_id,omitempty"`
	FrozenUser         string     `json:"frozen_user,omitempty"`
	Title              string     `json:"title"`
	Description        string     `json:"description,omitempty"`
	ReportedBy         string     `json:"reported_by"`
	ReportedAt         time.Time  `json:"reported_at"`
	GradeConfirmedBy   string     `json:"grade_confirmed_by,omitempty"`
	GradeConfirmedAt   *time.Time `json:"grade_confirmed_at,omitempty"`
	// Commander is the username of who commands the handling (SPEC §7 by
	// grade, see CommanderRoles), assigned when the grade is confirmed;
	// CommanderAt is when they were (last) assigned.
	Commander   string     `json:"commander,omitempty"`
	CommanderAt *time.Time `json:"commander_at,omitempty"`
	// ReportID is, for an incident opened from an anonymous report, the
	// report.
	ReportID string `json:"report_id,omitempty"`
	// AuthorityReportedAt is when the report to the health authority
	// (卫健委) was made, for grade 1.
	AuthorityReportedAt *time.Time `json:"authority_reported_at,omitempty"`
	// AuthorityNotifiedAt is when the health authority was first told (at
	// once, for grade 1), before the written report.
	AuthorityNotifiedAt *time.Time `json:"authority_notified_at,omitempty"`
	// MeetingHeldAt is when the emergency meeting (grades 1 and 2) was held.
	MeetingHeldAt *time.Time `json:"meeting_held_at,omitempty"`
	// PlanStartedAt is when the emergency plan (应急预案) was started, for grade 1.
	PlanStartedAt *time.Time `json:"plan_started_at,omitempty"`
	// RiskIsolatedAt is when the risk was isolated, for grade 2; an
	// incident opened by a freeze is isolated when it is opened.
	RiskIsolatedAt *time.Time `json:"risk_isolated_at,omitempty"`
	// CauseAnalysedAt is when the cause of a data leak was reported
	// analysed (the 5W1H analysis meets that deadline as well).
	CauseAnalysedAt *time.Time `json:"cause_analysed_at,omitempty"`
	FixedAt         *time.Time `json:"fixed_at,omitempty"`
	LastUpdateAt    time.Time  `json:"last_update_at"`
	ClosedBy        string     `json:"closed_by,omitempty"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
	Deadlines       []Deadline `json:"deadlines"`
	Analysis        *Analysis  `json:"analysis,omitempty"`
	Timeline        []Update   `json:"timeline,omitempty"`
	Evidence        []Evidence `json:"evidence,omitempty"`
	Actions         []Action   `json:"actions,omitempty"`
	// Files are the external evidence files (a log excerpt, a screenshot,
	// a vendor's report), each with its SHA-256.
	Files []EvidenceFile `json:"files,omitempty"`
	// UnconfirmedSteps counts the handling steps still waiting for a
	// second person's confirmation (read one at a time only).
	UnconfirmedSteps int `json:"unconfirmed_steps"`

	title, description, analysis []byte
	commanderID                  string
}

// RootCause is a root-cause analysis in 5W1H form.
type RootCause struct {
	What  string `json:"what"`
	When  string `json:"when"`
	Where string `json:"where"`
	Who   string `json:"who"`
	Why   string `json:"why"`
	How   string `json:"how"`
}

// Analysis is an incident's root-cause analysis, who wrote it, and when it
// was first given (which meets the grade-2 analysis deadline).
type Analysis struct {
	RootCause
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Update is one line of an incident's timeline. A handling step (Step:
// the meeting held, the plan started, the authority told, the risk
// isolated, the cause analysed, the fault fixed) is confirmed by a second
// person, who is named with the time.
type Update struct {
	Kind        string     `json:"kind"`
	Text        string     `json:"text,omitempty"`
	By          string     `json:"by"`
	At          time.Time  `json:"at"`
	AuditIndex  uint64     `json:"audit_index"`
	Step        bool       `json:"step,omitempty"`
	ConfirmedBy string     `json:"confirmed_by,omitempty"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`

	byID string
}

// Kinds of timeline update that people post (POST …/updates). Each one
// counts as a progress update; all but progress also meet a deadline (the
// first one of its kind does). The other kinds (reported, grade_confirmed,
// evidence, analysis, action, action_state, closed) are written by the
// operations themselves.
const (
	UpdateProgress          = "progress"           // a progress update (every 2 h while open)
	UpdateMeetingHeld       = "meeting_held"       // the emergency meeting was held (grades 1–2, 15 min)
	UpdatePlanStarted       = "plan_started"       // the emergency plan was started (grade 1, 1 h)
	UpdateAuthorityNotified = "authority_notified" // the health authority was told at once (grade 1, 1 h)
	UpdateAuthorityReport   = "authority_report"   // reported to the health authority (卫健委) (grade 1, 24 h)
	UpdateRiskIsolated      = "risk_isolated"      // the risk was isolated (grade 2, 2 h)
	UpdateCauseAnalysed     = "cause_analysed"     // the cause of a data leak was analysed (48 h)
	UpdateFixed             = "fixed"              // the fault is fixed (grade 3)
)

// UpdateKinds lists the kinds of update people post.
var UpdateKinds = []string{UpdateProgress, UpdateMeetingHeld, UpdatePlanStarted, UpdateAuthorityNotified,
	UpdateAuthorityReport, UpdateRiskIsolated, UpdateCauseAnalysed, UpdateFixed}

// updateColumns are the columns of incidents that the first update of a
// kind sets: the time its deadline was met.
var updateColumns = map[string]string{
	UpdateMeetingHeld:       "meeting_held_at",
	UpdatePlanStarted:       "plan_started_at",
	UpdateAuthorityNotified: "authority_notified_at",
	UpdateAuthorityReport:   "authority_reported_at",
	UpdateRiskIsolated:      "risk_isolated_at",
	UpdateCauseAnalysed:     "cause_analysed_at",
	UpdateFixed:             "fixed_at",
}

// NewIncident is a report of an incident. Grade may be left out (0) when
// Facts are given: the suggested grade is then used. Criterion names the §7
// criterion chosen; it must belong to the grade.
type NewIncident struct {
	// Type is one of Types; left out, it is inferred from the criterion
	// (a core data leak is a data_leak, a hospital-wide outage an outage,
	// one record mis-operated a misoperation) or else recorded as other.
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Grade       int    `json:"grade"`
	Criterion   string `json:"criterion"`
	Facts       *Facts `json:"facts"`
}

// GradeConfirmation confirms (or corrects) an incident's grade and names
// its commander (a username or user id; see CommanderRoles). Left out, the
// commander is who confirms, if their roles may command that grade. Type,
// if given, corrects the incident's type.
type GradeConfirmation struct {
	Grade     int    `json:"grade"`
	Criterion string `json:"criterion"`
	Commander string `json:"commander"`
	Type      string `json:"type"`
}

// NewUpdate is a timeline update.
type NewUpdate struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
}

var errNoIncident = &medguard.Error{Kind: medguard.NotFound, Message: "no such incident"}
var errClosed = &medguard.Error{Kind: medguard.Conflict, Code: "incident_closed", Message: "the incident is closed"}

// gradeOf checks a grade and criterion against each other and the facts,
// filling in what the facts suggest.
func gradeOf(grade int, criterion string, facts *Facts) (int, string, error) {
	if facts != nil {
		if err := facts.check(); err != nil {
			return 0, "", err
		}
	}
	if grade == 0 && facts != nil {
		g, c := Suggest(*facts)
		if criterion == "" {
			return g, c, nil
		}
		grade = g
	}
	if grade < Major || grade > Ordinary {
		return 0, "", medguard.InvalidField("grade", "grade must be 1 (重大), 2 (较大) or 3 (一般), or give facts to suggest one")
	}
	if criterion == "" && facts != nil {
		if g, c := Suggest(*facts); g == grade {
			criterion = c
		}
	}
	c, ok := LookupCriterion(criterion)
	if !ok {
		return 0, "", medguard.InvalidField("criterion", "criterion must be one of the §7 criteria of grade %d", grade)
	}
	if c.Grade != grade {
		return 0, "", medguard.InvalidField("criterion", "criterion %s is a grade %d criterion, not grade %d", c.Code, c.Grade, grade)
	}
	return grade, criterion, nil
}

// Report files an incident. The grade must then be confirmed within 30
// minutes (ConfirmGrade).
func (s *Service) Report(ctx context.Context, call *medguard.Call, in NewIncident) (*Incident, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	inc := &Incident{ID: medguard.NewID(now), Status: Open, Source: SourceReport, ReportedBy: call.Actor.Name,
		ReportedAt: now, LastUpdateAt: now, Facts: in.Facts}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.IncidentManage, AuditAction: "incident.report",
		Resource: policy.Resource{Type: "incident", ID: inc.ID}},
		func(policy.Decision) (audit.Mutation, error) {
			return s.newIncident(call, in, inc)
		})
	if err != nil {
		return nil, err
	}
	out, err := s.fresh(ctx, inc.ID)
	if err != nil {
		return nil, err
	}
	s.reported(ctx, *out)
	return out, nil
}

// newIncident checks a report and returns the mutation that stores it as
// inc (whose id, source and times are set).
func (s *Service) newIncident(call *medguard.Call, in NewIncident, inc *Incident) (audit.Mutation, error) {
	var err error
	if inc.Title, err = medguard.Line("title", in.Title, MaxTitle, true); err != nil {
		return nil, err
	}
	if inc.Description, err = medguard.Text("description", in.Description, MaxText, true); err != nil {
		return nil, err
	}
	if inc.Grade, inc.Criterion, err = gradeOf(in.Grade, in.Criterion, in.Facts); err != nil {
		return nil, err
	}
	if in.Facts != nil {
		inc.SuggestedGrade, inc.SuggestedCriterion = Suggest(*in.Facts)
	}
	if inc.Type, err = typeOf(in.Type, inc.Criterion, in.Facts); err != nil {
		return nil, err
	}
	return s.insertIncident(inc, call.Actor.Name, call.Actor.ID)
}

// OpenForFreeze opens a grade-2 incident for an account the detection
// engine froze, as medguard itself (the system actor). reason, which may
// name patients, is sealed as the description. It is idempotent per alert:
// a second call for the same alert returns the incident already open.
func (s *Service) OpenForFreeze(ctx context.Context, username, alertID, reason string) (Incident, error) {
	if alertID != "" {
		var id string
		err := s.db.QueryRowContext(ctx, `SELECT id FROM incidents WHERE alert_id = $1`, alertID).Scan(&id)
		if err == nil {
			inc, err := s.fresh(ctx, id)
			if err != nil {
				return Incident{}, err
			}
			return *inc, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Incident{}, medguard.Wrap("incidents.OpenForFreeze", err)
		}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	// The freeze, done before this incident is opened, isolated the risk:
	// the account can do nothing more until it is released.
	inc := &Incident{ID: medguard.NewID(now), Type: TypeUnauthorizedAccess, Grade: Serious, Criterion: "local_data_abnormal", Status: Open,
		Source: SourceFreeze, AlertID: alertID, FrozenUser: username, ReportedBy: System.Actor.Name, ReportedAt: now,
		LastUpdateAt: now, RiskIsolatedAt: &now, Title: "账号已冻结：" + username}
	var err error
	if inc.Description, err = medguard.Text("reason", reason, MaxText, false); err != nil {
		return Incident{}, err
	}
	if inc.Description == "" {
		inc.Description = "检测规则冻结了该账号。"
	}
	m, err := s.insertIncident(inc, System.Actor.Name, "")
	if err != nil {
		return Incident{}, err
	}
	call := System
	if _, err := s.gate.Record(ctx, gate.Event{Call: &call, Action: "incident.report", TargetType: "incident",
		TargetID: inc.ID, Allowed: true, Rule: "allow.system.freeze"}, m); err != nil {
		return Incident{}, err
	}
	out, err := s.fresh(ctx, inc.ID)
	if err != nil {
		return Incident{}, err
	}
	return *out, nil
}

// insertIncident seals a new incident's text under a new data key and
// returns the mutation that stores both.
func (s *Service) insertIncident(inc *Incident, by, byID string) (audit.Mutation, error) {
	k, err := s.keys.NewDataKey(incidentOwner(inc.ID))
	if err != nil {
		return nil, medguard.Wrap("incidents.Report", err)
	}
	title := k.SealString(loc("incidents", inc.ID, "title"), inc.Title)
	desc := k.SealString(loc("incidents", inc.ID, "description"), inc.Description)
	var facts sql.NullString
	if inc.Facts != nil {
		b, _ := json.Marshal(inc.Facts)
		facts = sql.NullString{String: string(b), Valid: true}
	}
	return func(ctx context.Context, tx *sql.Tx, index uint64) error {
		if err := s.keys.Save(ctx, tx, k); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, grade, criterion, suggested_grade, suggested_criterion,
			facts, status, source, alert_id, frozen_user, title, description, reported_by, reported_at, last_update_at,
			risk_isolated_at, type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16)`,
			inc.ID, inc.Grade, inc.Criterion, sql.NullInt64{Int64: int64(inc.SuggestedGrade), Valid: inc.SuggestedGrade != 0},
			storage.NullString(inc.SuggestedCriterion), facts, Open, inc.Source, storage.NullString(inc.AlertID),
			storage.NullString(inc.FrozenUser), title, desc, by, medguard.Millis(inc.ReportedAt), millisOf(inc.RiskIsolatedAt),
			inc.Type)
		if err != nil {
			return storage.MapError(err)
		}
		detail := TypeWords(inc.Type) + " · " + GradeWords(inc.Grade, inc.Criterion)
		if inc.RiskIsolatedAt != nil {
			detail += "；账号已冻结，风险已隔离"
		}
		if inc.ReportID != "" {
			detail += "；据匿名举报立案 anonymous report " + inc.ReportID
		}
		return addUpdate(ctx, tx, k, inc.ID, index, "reported", detail, by, byID, inc.ReportedAt)
	}, nil
}

// addUpdate appends a timeline line, its text sealed with the incident's
// key; byID is the user id of who wrote it ("" for medguard itself).
func addUpdate(ctx context.Context, tx *sql.Tx, k *keys.DataKey, incidentID string, index uint64, kind, body, by, byID string, at time.Time) error {
	var sealed []byte
	if body != "" {
		sealed = k.SealString(loc("incident_updates", incidentID+"/"+strconv.FormatUint(index, 10), "text"), body)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO incident_updates (incident_id, audit_index, kind, text, by_name, at, by_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, incidentID, int64(index), kind, sealed, by, medguard.Millis(at), storage.NullString(byID))
	return err
}

const incidentColumns = `id, grade, criterion, suggested_grade, suggested_criterion, facts, status, source, alert_id,
	frozen_user, title, description, analysis, reported_by, reported_at, grade_confirmed_at, grade_confirmed_by,
	authority_reported_at, fixed_at, analysis_at, analysis_by, last_update_at, closed_at, closed_by,
	authority_notified_at, meeting_held_at, plan_started_at, risk_isolated_at, cause_analysed_at, type, commander_id,
	commander, commander_at`

func scanIncident(sc interface{ Scan(...any) error }) (*Incident, error) {
	var in Incident
	var sgrade sql.NullInt64
	var scrit, facts, alert, frozen, confirmedBy, analysisBy, closedBy sql.NullString
	var reported, last int64
	var confirmed, authority, fixed, analysisAt, closed sql.NullInt64
	var notified, meeting, plan, isolated, cause, commanderAt sql.NullInt64
	var commanderID, commander sql.NullString
	if err := sc.Scan(&in.ID, &in.Grade, &in.Criterion, &sgrade, &scrit, &facts, &in.Status, &in.Source, &alert,
		&frozen, &in.title, &in.description, &in.analysis, &in.ReportedBy, &reported, &confirmed, &confirmedBy,
		&authority, &fixed, &analysisAt, &analysisBy, &last, &closed, &closedBy,
		&notified, &meeting, &plan, &isolated, &cause, &in.Type, &commanderID, &commander, &commanderAt); err != nil {
		return nil, err
	}
	in.commanderID, in.Commander = commanderID.String, commander.String
	opt := func(v sql.NullInt64) *time.Time {
		if !v.Valid {
			return nil
		}
		return optTime(&v.Int64)
	}
	in.SuggestedGrade, in.SuggestedCriterion = int(sgrade.Int64), scrit.String
	if facts.Valid {
		in.Facts = &Facts{}
		if err := json.Unmarshal([]byte(facts.String), in.Facts); err != nil {
			return nil, err
		}
	}
	in.AlertID, in.FrozenUser, in.GradeConfirmedBy, in.ClosedBy = alert.String, frozen.String, confirmedBy.String, closedBy.String
	in.ReportedAt, in.LastUpdateAt = medguard.FromMillis(reported), medguard.FromMillis(last)
	in.GradeConfirmedAt, in.AuthorityReportedAt, in.FixedAt, in.ClosedAt = opt(confirmed), opt(authority), opt(fixed), opt(closed)
	in.AuthorityNotifiedAt, in.MeetingHeldAt, in.PlanStartedAt = opt(notified), opt(meeting), opt(plan)
	in.RiskIsolatedAt, in.CauseAnalysedAt, in.CommanderAt = opt(isolated), opt(cause), opt(commanderAt)
	in.GradeConfirmed = in.GradeConfirmedAt != nil
	in.SingleRecord = in.Criterion == "single_record"
	if analysisAt.Valid {
		in.Analysis = &Analysis{By: analysisBy.String, At: medguard.FromMillis(analysisAt.Int64)}
	}
	return &in, nil
}

// load reads an incident, its text still sealed.
func (s *Service) load(ctx context.Context, id string) (*Incident, error) {
	if !medguard.ValidID(id) {
		return nil, errNoIncident
	}
	in, err := scanIncident(s.db.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoIncident
	}
	return in, medguard.Wrap("incidents.load", err)
}

// open decrypts the incident's title, and with full its description,
// analysis, timeline, evidence and actions; and computes its deadlines.
func (s *Service) open(ctx context.Context, in *Incident, full bool, now time.Time) error {
	owner := incidentOwner(in.ID)
	var err error
	if in.Title, err = s.keys.OpenString(ctx, owner, loc("incidents", in.ID, "title"), in.title); err != nil {
		return err
	}
	in.Deadlines = in.deadlines(now)
	if !full {
		return nil
	}
	if in.Description, err = s.keys.OpenString(ctx, owner, loc("incidents", in.ID, "description"), in.description); err != nil {
		return err
	}
	if in.Analysis != nil && in.analysis != nil {
		b, err := s.keys.Open(ctx, owner, loc("incidents", in.ID, "analysis"), in.analysis)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &in.Analysis.RootCause); err != nil {
			return err
		}
	}
	if in.Timeline, err = s.timeline(ctx, in.ID); err != nil {
		return err
	}
	if in.Evidence, err = s.evidenceOf(ctx, in.ID); err != nil {
		return err
	}
	if in.Files, err = s.filesOf(ctx, in.ID); err != nil {
		return err
	}
	if in.ReportID, err = s.reportOf(ctx, in.ID); err != nil {
		return err
	}
	if in.Actions, err = s.actionsOf(ctx, in.ID, now); err != nil {
		return err
	}
	in.UnconfirmedSteps = unconfirmed(in.Timeline)
	return nil
}

func (s *Service) timeline(ctx context.Context, id string) ([]Update, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.audit_index, u.kind, u.text, u.by_name, u.at, u.by_id, c.confirmed_by,
		c.confirmed_at FROM incident_updates u LEFT JOIN incident_step_confirmations c
		ON c.incident_id = u.incident_id AND c.step_index = u.audit_index WHERE u.incident_id = $1 ORDER BY u.audit_index`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Update{}
	for rows.Next() {
		var u Update
		var index, at int64
		var sealed []byte
		var byID, confirmedBy sql.NullString
		var confirmedAt sql.NullInt64
		if err := rows.Scan(&index, &u.Kind, &sealed, &u.By, &at, &byID, &confirmedBy, &confirmedAt); err != nil {
			return nil, err
		}
		u.AuditIndex, u.At, u.byID = uint64(index), medguard.FromMillis(at), byID.String
		u.Step = isStep(u.Kind, u.By)
		if confirmedAt.Valid {
			u.ConfirmedBy, u.ConfirmedAt = confirmedBy.String, optTime(&confirmedAt.Int64)
		}
		if sealed != nil {
			if u.Text, err = s.keys.OpenString(ctx, incidentOwner(id),
				loc("incident_updates", id+"/"+strconv.FormatUint(u.AuditIndex, 10), "text"), sealed); err != nil {
				return nil, err
			}
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// fresh reads an incident in full after a change the caller made (already
// logged), without logging a read.
func (s *Service) fresh(ctx context.Context, id string) (*Incident, error) {
	in, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return in, medguard.Wrap("incidents.fresh", s.open(ctx, in, true, s.clock.Now()))
}

// Get returns one incident in full.
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Incident, error) {
	in, lerr := s.load(ctx, id)
	r := policy.Resource{Type: "incident", ID: id, Missing: lerr != nil}
	if lerr == nil {
		r.Commander = in.commanderID // the commander reads it (allow.incident_commander)
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.IncidentRead, AuditAction: "incident.read", Resource: r},
		func(policy.Decision) (audit.Mutation, error) {
			if lerr != nil {
				return nil, lerr
			}
			return nil, s.open(ctx, in, true, s.clock.Now())
		})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// List returns incidents with the given status (open, closed or all;
// default all), newest first, a page at a time, each with its deadlines.
func (s *Service) List(ctx context.Context, call *medguard.Call, status, before string, limit int) ([]Incident, string, error) {
	out := []Incident{}
	var next string
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.IncidentRead, AuditAction: "incident.list",
		Resource: policy.Resource{Type: "incident"}},
		func(policy.Decision) (audit.Mutation, error) {
			switch status {
			case "", "all":
				status = ""
			case Open, Closed:
			default:
				return nil, medguard.InvalidField("status", "status must be open, closed or all")
			}
			rows, err := s.db.QueryContext(ctx, `SELECT `+incidentColumns+` FROM incidents
				WHERE ($1 = '' OR id < $1) AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3`, before, status, limit+1)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				in, err := scanIncident(rows)
				if err != nil {
					return nil, err
				}
				if len(out) == limit {
					next = out[len(out)-1].ID
					break
				}
				out = append(out, *in)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			rows.Close()
			for i := range out {
				if err := s.open(ctx, &out[i], false, now); err != nil {
					return nil, err
				}
			}
			return nil, nil
		})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// change passes the gate for a change to an open incident: it loads the
// incident (a missing one is logged and answered 404), refuses a closed one
// with 409, and lets work return the mutation, given the incident's key.
func (s *Service) change(ctx context.Context, call *medguard.Call, id, auditAction string,
	work func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error)) (*Incident, error) {
	return s.changeOf(ctx, call, id, auditAction, "", work)
}

// changeOf is change for the confirmation of what someone else did:
// recordedBy is their user id, and the policy refuses them (deny.own_step).
func (s *Service) changeOf(ctx context.Context, call *medguard.Call, id, auditAction, recordedBy string,
	work func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error)) (*Incident, error) {
	in, lerr := s.load(ctx, id)
	if lerr != nil && !medguard.IsKind(lerr, medguard.NotFound) {
		return nil, lerr
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.IncidentManage, AuditAction: auditAction,
		Resource: policy.Resource{Type: "incident", ID: id, Missing: lerr != nil, RequestedBy: recordedBy}},
		func(policy.Decision) (audit.Mutation, error) {
			if lerr != nil {
				return nil, lerr
			}
			if in.Status == Closed {
				return nil, errClosed
			}
			k, err := s.keys.Current(ctx, incidentOwner(id))
			if err != nil {
				return nil, medguard.Wrap("incidents.change", err)
			}
			return work(in, k, now)
		})
	if err != nil {
		return nil, err
	}
	return s.fresh(ctx, id)
}

// stillOpen runs an UPDATE of an incident that must still be open.
func stillOpen(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	return storage.Affected(res, err, errClosed)
}

// ConfirmGrade confirms the incident's grade (or corrects it), once; SPEC
// §7 wants it within 30 minutes of the report. It assigns the commander
// the grade calls for (CommanderRoles) — named, or else who confirms, if
// they may command it — and may correct the type. The OnCommander hooks
// are told once it is in the audit log.
func (s *Service) ConfirmGrade(ctx context.Context, call *medguard.Call, id string, gc GradeConfirmation) (*Incident, error) {
	in, err := s.change(ctx, call, id, "incident.grade_confirm", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		if in.GradeConfirmedAt != nil {
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "grade_confirmed", Message: "the grade was confirmed already"}
		}
		grade, criterion, err := gradeOf(gc.Grade, gc.Criterion, nil)
		if err != nil {
			return nil, err
		}
		typ := in.Type
		if gc.Type != "" {
			if !ValidType(gc.Type) {
				return nil, medguard.InvalidField("type", "type must be one of %s", strings.Join(TypeCodes(), ", "))
			}
			typ = gc.Type
		}
		cmd, err := s.commanderFor(ctx, call, grade, gc.Commander)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET grade = $1, criterion = $2, grade_confirmed_at = $3,
				grade_confirmed_by = $4, type = $5, commander_id = $6, commander = $7, commander_at = $3
				WHERE id = $8 AND status = 'open' AND grade_confirmed_at IS NULL`,
				grade, criterion, medguard.Millis(now), call.Actor.Name, typ, cmd.id, cmd.name, id); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "grade_confirmed", TypeWords(typ)+" · "+GradeWords(grade, criterion)+
				"；指挥 commander "+cmd.name, call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.commanded(ctx, *in)
	return in, nil
}

// AddUpdate posts a timeline update: progress (due every 2 hours while
// open), or one of the steps that meet a deadline — the emergency meeting
// held, the emergency plan started, the health authority told at once or
// given the report, the risk isolated, a leak's cause analysed, the fault
// fixed. The first update of a kind meets its deadline; a later one of the
// same kind is a progress update that leaves the time met unchanged.
func (s *Service) AddUpdate(ctx context.Context, call *medguard.Call, id string, u NewUpdate) (*Incident, error) {
	return s.change(ctx, call, id, "incident.update", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("text", u.Text, MaxText, true)
		if err != nil {
			return nil, err
		}
		set := ""
		if col, ok := updateColumns[u.Kind]; ok {
			set = ", " + col + " = COALESCE(" + col + ", $1)"
		} else if u.Kind != UpdateProgress {
			return nil, medguard.InvalidField("kind", "kind must be one of %s", strings.Join(UpdateKinds, ", "))
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET last_update_at = $1`+set+` WHERE id = $2 AND status = 'open'`,
				medguard.Millis(now), id); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, u.Kind, body, call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
}

// SetAnalysis records (or revises) the root-cause analysis in 5W1H form.
// The first one meets the grade-2 analysis deadline.
func (s *Service) SetAnalysis(ctx context.Context, call *medguard.Call, id string, rc RootCause) (*Incident, error) {
	return s.change(ctx, call, id, "incident.analysis", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		var err error
		for _, f := range []struct {
			name string
			v    *string
		}{{"what", &rc.What}, {"when", &rc.When}, {"where", &rc.Where}, {"who", &rc.Who}, {"why", &rc.Why}, {"how", &rc.How}} {
			if *f.v, err = medguard.Text(f.name, *f.v, MaxText, true); err != nil {
				return nil, err
			}
		}
		b, _ := json.Marshal(rc)
		sealed := k.Seal(loc("incidents", id, "analysis"), b)
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET analysis = $1, analysis_by = $2,
				analysis_at = COALESCE(analysis_at, $3) WHERE id = $4 AND status = 'open'`,
				sealed, call.Actor.Name, medguard.Millis(now), id); err != nil {
				return err
			}
			kind := "analysis"
			if in.Analysis != nil {
				kind = "analysis_revised"
			}
			return addUpdate(ctx, tx, k, id, index, kind, "", call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
}

// Close closes an incident. The grade must have been confirmed; grades 1
// and 2 need the root-cause analysis, and grade 1 the report to the health
// authority. A closed incident changes no more.
//
// Once it is closed, the OnClose hooks are told (the alerts of its overdue
// deadlines are cleared).
func (s *Service) Close(ctx context.Context, call *medguard.Call, id, summary string) (*Incident, error) {
	in, err := s.change(ctx, call, id, "incident.close", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		body, err := medguard.Text("summary", summary, MaxText, false)
		if err != nil {
			return nil, err
		}
		if err := s.closable(ctx, in, now); err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET status = 'closed', closed_at = $1, closed_by = $2
				WHERE id = $3 AND status = 'open'`, medguard.Millis(now), call.Actor.Name, id); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "closed", body, call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.onClose.Tell(ctx, *in)
	return in, nil
}

// closable says why an incident may not close yet: the grade is not
// confirmed; a grade 1–2 incident lacks its 5W1H analysis; a grade 1 one
// was not reported to the health authority; a handling step waits for a
// second person's confirmation; a corrective action is not verified.
func (s *Service) closable(ctx context.Context, in *Incident, now time.Time) error {
	switch {
	case in.GradeConfirmedAt == nil:
		return medguard.InvalidField("grade", "confirm the grade before closing the incident")
	case in.Grade <= Serious && in.Analysis == nil:
		return medguard.InvalidField("analysis", "a grade %d incident needs its root-cause analysis (5W1H) before closing", in.Grade)
	case in.Grade == Major && in.AuthorityReportedAt == nil:
		return medguard.InvalidField("authority_report", "a grade 1 incident must be reported to the health authority before closing")
	}
	tl, err := s.timeline(ctx, in.ID)
	if err != nil {
		return err
	}
	if n := unconfirmed(tl); n > 0 {
		return medguard.InvalidField("steps", "%d handling step(s) wait for a second person's confirmation; every step is confirmed before closing", n)
	}
	acts, err := s.actionsOf(ctx, in.ID, now)
	if err != nil {
		return err
	}
	for _, a := range acts {
		if a.State != ActionVerified {
			return medguard.InvalidField("actions", "every corrective action is verified (by someone other than who marked it done) before closing")
		}
	}
	return nil
}

// OnClose adds a hook told of every incident closed, after the closure is
// in the audit log (the detection engine clears the alerts of its overdue
// deadlines).
func (s *Service) OnClose(hook func(context.Context, Incident)) { s.onClose.Add(hook) }
