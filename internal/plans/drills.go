package plans

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// The kinds of drill: a tabletop exercise (桌面推演), due every quarter; a
// live drill (实战演练), due every six months; and the backups' restore
// drills (恢复演练), which medguard runs itself and lists here.
const (
	Tabletop = "tabletop"
	Live     = "live"
	Restore  = "restore"
)

// DrillKinds lists the kinds of drill people record.
var DrillKinds = []string{Tabletop, Live}

// The severities of a gap: a minor one is to improve; a major one fails
// the drill for the department it is found in.
const (
	Minor = "minor"
	Major = "major"
)

// Severities lists the severities of a gap.
var Severities = []string{Minor, Major}

// The states of an improvement item.
const (
	ImprovementOpen = "open"
	ImprovementDone = "done"
)

// ImprovementStatuses lists the states of an improvement item.
var ImprovementStatuses = []string{ImprovementOpen, ImprovementDone}

// Participant is one who took part in a drill.
type Participant struct {
	Name       string `json:"name"`
	Department string `json:"department,omitempty"`
	Role       string `json:"role,omitempty"`
}

// StepResult is how one step of the plan went: the time the step took
// from the drill's start, in minutes (null: not done), against the plan's
// limit; the department that carried it, if one did.
type StepResult struct {
	Step         int    `json:"step"`
	Title        string `json:"title"`
	LimitMinutes int    `json:"limit_minutes"`
	TookMinutes  *int   `json:"took_minutes"`
	Department   string `json:"department,omitempty"`
	// Met says the step was done within its limit.
	Met bool `json:"met"`
}

// DepartmentResult is whether a department passed a drill: it fails when
// a step it carried was late or not done, or a major gap was found in it —
// and every department of the drill fails when a step no department
// carried was late or not done, or a major gap was found in none.
type DepartmentResult struct {
	Department string `json:"department"`
	Passed     bool   `json:"passed"`
}

// Gap is a shortcoming a drill found (sealed at rest).
type Gap struct {
	Seq         int    `json:"seq"`
	Department  string `json:"department,omitempty"`
	Severity    string `json:"severity"`
	Description string `json:"description"`
}

// Improvement is an improvement item (整改项) a drill raised: what is to
// be done, by whom, by when.
type Improvement struct {
	ID         string     `json:"id"`
	DrillID    string     `json:"drill_id"`
	Action     string     `json:"action"`
	Owner      string     `json:"owner"`
	Department string     `json:"department,omitempty"`
	DueAt      time.Time  `json:"due_at"`
	Status     string     `json:"status"`
	Overdue    bool       `json:"overdue"`
	DoneBy     string     `json:"done_by,omitempty"`
	DoneAt     *time.Time `json:"done_at,omitempty"`
	Note       string     `json:"note,omitempty"`
}

// Drill is a drill as recorded, or — kind restore — a restore drill of the
// backups.
type Drill struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Title string `json:"title"`
	// The scenario: the plan and its version (not for a restore drill).
	PlanID       string             `json:"plan_id,omitempty"`
	PlanVersion  int                `json:"plan_version,omitempty"`
	PlanType     string             `json:"plan_type,omitempty"`
	HeldAt       time.Time          `json:"held_at"`
	Passed       bool               `json:"passed"`
	Departments  []DepartmentResult `json:"departments"`
	Participants []Participant      `json:"participants"`
	Steps        []StepResult       `json:"steps"`
	Gaps         []Gap              `json:"gaps"`
	Improvements []Improvement      `json:"improvements"`
	RecordedBy   string             `json:"recorded_by,omitempty"`
	RecordedAt   *time.Time         `json:"recorded_at,omitempty"`
	// Notes are the drill's summary (sealed at rest).
	Notes string `json:"notes,omitempty"`
	// RTOSeconds is, for a restore drill, how long the restore took.
	RTOSeconds float64 `json:"rto_seconds,omitempty"`
}

// NewDrill records a drill (the body of POST /api/v1/drills).
type NewDrill struct {
	Kind  string `json:"kind"`
	Title string `json:"title,omitempty"`
	// PlanID and PlanVersion are the scenario: a published (or
	// superseded) version; PlanVersion 0 is the version in force.
	PlanID       string        `json:"plan_id"`
	PlanVersion  int           `json:"plan_version,omitempty"`
	HeldAt       time.Time     `json:"held_at"`
	Departments  []string      `json:"departments"`
	Participants []Participant `json:"participants"`
	// Steps are the response times of every step of the plan's version.
	Steps        []StepTime       `json:"steps"`
	Gaps         []NewGap         `json:"gaps,omitempty"`
	Improvements []NewImprovement `json:"improvements,omitempty"`
	Notes        string           `json:"notes,omitempty"`
}

// StepTime is a step's response time in a drill being recorded.
type StepTime struct {
	Step        int    `json:"step"`
	TookMinutes *int   `json:"took_minutes"`
	Department  string `json:"department,omitempty"`
}

// NewGap is a gap found in a drill being recorded.
type NewGap struct {
	Department  string `json:"department,omitempty"`
	Severity    string `json:"severity"`
	Description string `json:"description"`
}

// NewImprovement is an improvement item of a drill being recorded.
type NewImprovement struct {
	Action     string    `json:"action"`
	Owner      string    `json:"owner"`
	Department string    `json:"department,omitempty"`
	DueAt      time.Time `json:"due_at"`
}

// ImprovementCompletion closes an improvement item (the body of POST
// /api/v1/drills/{id}/improvements/{improvement_id}/done).
type ImprovementCompletion struct {
	Note string `json:"note"`
}

// Limits of a drill's record.
const (
	MaxDepartments  = 30
	MaxParticipants = 300
	MaxGaps         = 50
	MaxImprovements = 50
	// MaxTookMinutes is the longest response time recorded: two weeks.
	MaxTookMinutes = 2 * MaxStepMinutes
)

var errNoDrill = &medguard.Error{Kind: medguard.NotFound, Message: "no such drill"}

// department checks a department's code against the directory.
func (s *Service) department(ctx context.Context, field, code string) (string, error) {
	code = strings.TrimSpace(code)
	if code == "" || len(code) > 32 {
		return "", medguard.InvalidField(field, "no department has this code")
	}
	d, err := s.identity.DepartmentByCode(ctx, code)
	if identity.IsNotFound(err) {
		return "", medguard.InvalidField(field, "no department has this code")
	}
	if err != nil {
		return "", err
	}
	return d.Code, nil
}

// owner checks that username names an active member of staff.
func (s *Service) owner(ctx context.Context, field, username string) (string, error) {
	username = strings.TrimSpace(username)
	if username == "" || len(username) > 64 {
		return "", medguard.InvalidField(field, "an improvement item needs an owner: an active member of staff's username")
	}
	u, err := s.identity.UserByUsername(ctx, username)
	if identity.IsNotFound(err) || err == nil && u.Status != identity.Active {
		return "", medguard.InvalidField(field, "no active member of staff has this username")
	}
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// checked is a drill ready to store.
type checked struct {
	d            Drill
	improvements []Improvement
}

// checkDrill validates a drill against its plan's version at now.
func (s *Service) checkDrill(ctx context.Context, in NewDrill, now time.Time) (*checked, error) {
	if !slices.Contains(DrillKinds, in.Kind) {
		return nil, medguard.InvalidField("kind", "kind must be one of %s", strings.Join(DrillKinds, ", "))
	}
	p, err := s.load(ctx, in.PlanID)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, medguard.InvalidField("plan_id", "no such plan")
	}
	if in.PlanVersion == 0 {
		in.PlanVersion = p.PublishedVersion
	}
	v := p.version(in.PlanVersion)
	if v == nil || v.Status != Published && v.Status != Superseded || v.ApprovedAt == nil {
		return nil, medguard.InvalidField("plan_version", "a drill follows a published version of the plan")
	}
	var c checked
	d := &c.d
	d.ID, d.Kind, d.PlanID, d.PlanVersion, d.PlanType = medguard.NewID(now), in.Kind, p.ID, in.PlanVersion, p.Type
	if d.Title, err = medguard.Line("title", in.Title, 200, false); err != nil {
		return nil, err
	}
	if d.Title == "" {
		d.Title = v.Title
	}
	if in.HeldAt.IsZero() {
		return nil, medguard.InvalidField("held_at", "held_at is required")
	}
	d.HeldAt = in.HeldAt.UTC().Truncate(time.Millisecond)
	switch {
	case d.HeldAt.After(now.Add(time.Minute)):
		return nil, medguard.InvalidField("held_at", "a drill is recorded once held: held_at may not be in the future")
	case d.HeldAt.Before(*v.ApprovedAt):
		return nil, medguard.InvalidField("held_at", "held_at is before the plan's version was published")
	}
	if len(in.Departments) == 0 || len(in.Departments) > MaxDepartments {
		return nil, medguard.InvalidField("departments", "a drill names 1 to %d departments", MaxDepartments)
	}
	var depts []string
	for i, code := range in.Departments {
		code, err := s.department(ctx, fmt.Sprintf("departments[%d]", i), code)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(depts, code) {
			depts = append(depts, code)
		}
	}
	in.Departments = depts
	inDrill := func(field, code string) (string, error) {
		if code = strings.TrimSpace(code); code == "" {
			return "", nil
		}
		for _, d := range depts {
			if strings.EqualFold(d, code) {
				return d, nil
			}
		}
		return "", medguard.InvalidField(field, "the department must be one of the drill's departments")
	}
	if len(in.Participants) == 0 || len(in.Participants) > MaxParticipants {
		return nil, medguard.InvalidField("participants", "a drill names 1 to %d participants", MaxParticipants)
	}
	for i, pt := range in.Participants {
		f := fmt.Sprintf("participants[%d]", i)
		if pt.Name, err = medguard.Line(f+".name", pt.Name, 64, true); err != nil {
			return nil, err
		}
		if pt.Role, err = medguard.Line(f+".role", pt.Role, 50, false); err != nil {
			return nil, err
		}
		if pt.Department, err = inDrill(f+".department", pt.Department); err != nil {
			return nil, err
		}
		d.Participants = append(d.Participants, pt)
	}
	if len(in.Steps) != len(v.Steps) {
		return nil, medguard.InvalidField("steps", "a drill records every step of the plan's version: %d steps", len(v.Steps))
	}
	failed := map[string]bool{}
	d.Passed = true
	for i, st := range in.Steps {
		f := fmt.Sprintf("steps[%d]", i)
		if st.Step != i+1 {
			return nil, medguard.InvalidField(f+".step", "the steps are given in the plan's order, numbered from 1")
		}
		if st.TookMinutes != nil && (*st.TookMinutes < 0 || *st.TookMinutes > MaxTookMinutes) {
			return nil, medguard.InvalidField(f+".took_minutes", "took_minutes is 0 to %d minutes, or null for a step not done", MaxTookMinutes)
		}
		dept, err := inDrill(f+".department", st.Department)
		if err != nil {
			return nil, err
		}
		plan := v.Steps[i]
		r := StepResult{Step: st.Step, Title: plan.Title, LimitMinutes: plan.LimitMinutes, Department: dept}
		if st.TookMinutes != nil {
			took := *st.TookMinutes
			r.TookMinutes = &took
			r.Met = took <= plan.LimitMinutes
		}
		if !r.Met {
			d.Passed = false
			failed[dept] = true // "": no department carried it, every one fails
		}
		d.Steps = append(d.Steps, r)
	}
	if len(in.Gaps) > MaxGaps {
		return nil, medguard.InvalidField("gaps", "a drill records at most %d gaps", MaxGaps)
	}
	for i, g := range in.Gaps {
		f := fmt.Sprintf("gaps[%d]", i)
		if !slices.Contains(Severities, g.Severity) {
			return nil, medguard.InvalidField(f+".severity", "severity must be one of %s", strings.Join(Severities, ", "))
		}
		if g.Description, err = medguard.Text(f+".description", g.Description, 1000, true); err != nil {
			return nil, err
		}
		if g.Department, err = inDrill(f+".department", g.Department); err != nil {
			return nil, err
		}
		if g.Severity == Major {
			d.Passed = false
			failed[g.Department] = true
		}
		d.Gaps = append(d.Gaps, Gap{Seq: i + 1, Department: g.Department, Severity: g.Severity, Description: g.Description})
	}
	if len(in.Improvements) > MaxImprovements {
		return nil, medguard.InvalidField("improvements", "a drill records at most %d improvement items", MaxImprovements)
	}
	for i, im := range in.Improvements {
		f := fmt.Sprintf("improvements[%d]", i)
		if im.Action, err = medguard.Text(f+".action", im.Action, 1000, true); err != nil {
			return nil, err
		}
		if im.Owner, err = s.owner(ctx, f+".owner", im.Owner); err != nil {
			return nil, err
		}
		if im.Department, err = inDrill(f+".department", im.Department); err != nil {
			return nil, err
		}
		if im.DueAt.IsZero() {
			return nil, medguard.InvalidField(f+".due_at", "an improvement item needs a due date")
		}
		due := im.DueAt.UTC().Truncate(time.Millisecond)
		if !due.After(d.HeldAt) || due.After(now.AddDate(1, 0, 0)) {
			return nil, medguard.InvalidField(f+".due_at", "an improvement item is due after the drill and within a year")
		}
		c.improvements = append(c.improvements, Improvement{ID: medguard.NewID(now), DrillID: d.ID, Action: im.Action, Owner: im.Owner,
			Department: im.Department, DueAt: due, Status: ImprovementOpen, Overdue: !now.Before(due)})
	}
	if d.Notes, err = medguard.Text("notes", in.Notes, MaxText, false); err != nil {
		return nil, err
	}
	for _, code := range depts {
		d.Departments = append(d.Departments, DepartmentResult{Department: code, Passed: !failed[code] && !failed[""]})
	}
	return &c, nil
}

// RecordDrill records a drill (drill.manage): its scenario (a published
// version of a plan), departments, participants, each step's response time
// against the plan's limit, the gaps found and the improvement items. A
// department fails the drill when a step it carried was late or not done
// or a major gap was found in it; failing two drills in a row flags it for
// retraining (OnRetrainingNeeded), and passing one clears the flag. The
// drill keeps its kind's cadence: the missed periods of the kind announced
// before are resolved (OnCadenceKept).
func (s *Service) RecordDrill(ctx context.Context, call *medguard.Call, in NewDrill) (*Drill, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	c, err := s.checkDrill(ctx, in, now)
	if err != nil {
		return nil, err
	}
	d := &c.d
	d.RecordedBy, d.RecordedAt = call.Actor.Name, &now
	participants, _ := json.Marshal(d.Participants)
	steps, _ := json.Marshal(d.Steps)
	notes, err := s.seal(ctx, "drills", d.ID, "notes", d.Notes)
	if err != nil {
		return nil, err
	}
	gaps := make([][]byte, len(d.Gaps))
	for i, g := range d.Gaps {
		if gaps[i], err = s.seal(ctx, "drill_gaps", fmt.Sprintf("%s/%d", d.ID, g.Seq), "description", g.Description); err != nil {
			return nil, err
		}
	}
	actions := make([][]byte, len(c.improvements))
	for i, im := range c.improvements {
		if actions[i], err = s.seal(ctx, "drill_improvements", im.ID, "action", im.Action); err != nil {
			return nil, err
		}
	}
	var flagged, cleared []RetrainingFlag
	var kept []string
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DrillManage, AuditAction: "drill.record",
		Resource: policy.Resource{Type: "drill", ID: d.ID}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			flagged, cleared, kept = nil, nil, nil
			if _, err := tx.ExecContext(ctx, `INSERT INTO drills (id, kind, title, plan_id, plan_version, held_at, participants, steps,
				passed, recorded_by, recorded_at, notes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, d.ID, d.Kind, d.Title,
				d.PlanID, d.PlanVersion, medguard.Millis(d.HeldAt), string(participants), string(steps), boolInt(d.Passed),
				call.Actor.Name, medguard.Millis(now), notes); err != nil {
				return err
			}
			for _, r := range d.Departments {
				if _, err := tx.ExecContext(ctx, `INSERT INTO drill_departments (drill_id, department, held_at, passed) VALUES ($1, $2, $3, $4)`,
					d.ID, r.Department, medguard.Millis(d.HeldAt), boolInt(r.Passed)); err != nil {
					return err
				}
			}
			for i, g := range d.Gaps {
				if _, err := tx.ExecContext(ctx, `INSERT INTO drill_gaps (drill_id, seq, department, severity, description)
					VALUES ($1, $2, $3, $4, $5)`, d.ID, g.Seq, g.Department, g.Severity, gaps[i]); err != nil {
					return err
				}
			}
			for i, im := range c.improvements {
				if _, err := tx.ExecContext(ctx, `INSERT INTO drill_improvements (id, drill_id, seq, action, owner, department, due_at,
					status, done_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '')`, im.ID, d.ID, i+1, actions[i], im.Owner, im.Department,
					medguard.Millis(im.DueAt), ImprovementOpen); err != nil {
					return err
				}
			}
			for _, r := range d.Departments {
				f, cl, err := s.retrain(ctx, tx, r.Department, d.ID, now)
				if err != nil {
					return err
				}
				if f != nil {
					flagged = append(flagged, *f)
				}
				if cl != nil {
					cleared = append(cleared, *cl)
				}
			}
			var err error
			kept, err = s.keepCadence(ctx, tx, d.Kind, d.HeldAt, now)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	d.Improvements = c.improvements
	if d.Gaps == nil {
		d.Gaps = []Gap{}
	}
	if d.Improvements == nil {
		d.Improvements = []Improvement{}
	}
	s.announceRecorded(ctx, d.Kind, kept, flagged, cleared)
	return d, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// RetrainingFlag is a department flagged for retraining: it failed its
// two latest drills (Drills, the newer first).
type RetrainingFlag struct {
	Department string    `json:"department"`
	Drills     []string  `json:"drills"`
	FlaggedAt  time.Time `json:"flagged_at"`
}

// retrain updates a department's retraining flag within tx after one of
// its drills was recorded: its two latest drills (by when they were held)
// failed → flagged (returned once, when the flag is raised); its latest
// passed → a flag is cleared (returned).
func (s *Service) retrain(ctx context.Context, tx *sql.Tx, dept, drillID string, now time.Time) (flagged, cleared *RetrainingFlag, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT drill_id, passed FROM drill_departments WHERE department = $1
		ORDER BY held_at DESC, drill_id DESC LIMIT 2`, dept)
	if err != nil {
		return nil, nil, err
	}
	var drills []string
	var passed []bool
	for rows.Next() {
		var id string
		var p int
		if err := rows.Scan(&id, &p); err != nil {
			rows.Close()
			return nil, nil, err
		}
		drills, passed = append(drills, id), append(passed, p == 1)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	var open bool
	var raw string
	err = tx.QueryRowContext(ctx, `SELECT drills FROM drill_retraining WHERE department = $1 AND cleared_at IS NULL`, dept).Scan(&raw)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, nil, err
	default:
		open = true
	}
	switch {
	case len(drills) == 2 && !passed[0] && !passed[1] && !open:
		b, _ := json.Marshal(drills)
		res, err := tx.ExecContext(ctx, `UPDATE drill_retraining SET drills = $1, flagged_at = $2, cleared_at = NULL, cleared_by = ''
			WHERE department = $3`, string(b), medguard.Millis(now), dept)
		if err != nil {
			return nil, nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// A drill of the department recorded at the same moment on
			// another server may have flagged it first.
			if _, err := tx.ExecContext(ctx, `INSERT INTO drill_retraining (department, drills, flagged_at, cleared_by) VALUES ($1, $2, $3, '')
				ON CONFLICT (department) DO NOTHING`, dept, string(b), medguard.Millis(now)); err != nil {
				return nil, nil, err
			}
		}
		return &RetrainingFlag{Department: dept, Drills: drills, FlaggedAt: now}, nil, nil
	case len(drills) > 0 && passed[0] && open:
		if _, err := tx.ExecContext(ctx, `UPDATE drill_retraining SET cleared_at = $1, cleared_by = $2 WHERE department = $3`,
			medguard.Millis(now), drills[0], dept); err != nil {
			return nil, nil, err
		}
		var was []string
		json.Unmarshal([]byte(raw), &was)
		return nil, &RetrainingFlag{Department: dept, Drills: was}, nil
	}
	return nil, nil, nil
}

// RetrainingNeeded lists the departments flagged for retraining now (two
// failed drills in a row, no passed one since), for the training register
// and the drills' page. It decides nothing and shows no patient data, so
// it is read without a gate passage; people read it through Status.
func (s *Service) RetrainingNeeded(ctx context.Context) ([]RetrainingFlag, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT department, drills, flagged_at FROM drill_retraining WHERE cleared_at IS NULL
		ORDER BY department`)
	if err != nil {
		return nil, medguard.Wrap("plans.RetrainingNeeded", err)
	}
	defer rows.Close()
	out := []RetrainingFlag{}
	for rows.Next() {
		var f RetrainingFlag
		var raw string
		var at int64
		if err := rows.Scan(&f.Department, &raw, &at); err != nil {
			return nil, medguard.Wrap("plans.RetrainingNeeded", err)
		}
		json.Unmarshal([]byte(raw), &f.Drills)
		f.FlaggedAt = medguard.FromMillis(at)
		out = append(out, f)
	}
	return out, medguard.Wrap("plans.RetrainingNeeded", rows.Err())
}

const drillColumns = `id, kind, title, plan_id, plan_version, held_at, participants, steps, passed, recorded_by, recorded_at, notes`

// readDrills reads the drills matching where (with args), newest first,
// with their departments, gaps and improvements.
func (s *Service) readDrills(ctx context.Context, where string, args ...any) ([]Drill, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+drillColumns+` FROM drills WHERE `+where+` ORDER BY held_at DESC, id DESC LIMIT 1000`, args...)
	if err != nil {
		return nil, medguard.Wrap("plans.readDrills", err)
	}
	now := s.clock.Now()
	var out []Drill
	for rows.Next() {
		var d Drill
		var held, recorded int64
		var participants, steps string
		var passed int
		var notes []byte
		if err := rows.Scan(&d.ID, &d.Kind, &d.Title, &d.PlanID, &d.PlanVersion, &held, &participants, &steps, &passed, &d.RecordedBy,
			&recorded, &notes); err != nil {
			rows.Close()
			return nil, medguard.Wrap("plans.readDrills", err)
		}
		d.HeldAt, d.Passed = medguard.FromMillis(held), passed == 1
		at := medguard.FromMillis(recorded)
		d.RecordedAt = &at
		json.Unmarshal([]byte(participants), &d.Participants)
		json.Unmarshal([]byte(steps), &d.Steps)
		if d.Notes, err = s.open(ctx, "drills", d.ID, "notes", notes); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("plans.readDrills", err)
	}
	types := map[string]string{}
	for i := range out {
		d := &out[i]
		if _, ok := types[d.PlanID]; !ok {
			var typ string
			if err := s.db.QueryRowContext(ctx, `SELECT type FROM plans WHERE id = $1`, d.PlanID).Scan(&typ); err != nil {
				return nil, medguard.Wrap("plans.readDrills", err)
			}
			types[d.PlanID] = typ
		}
		d.PlanType = types[d.PlanID]
		if err := s.complete(ctx, d, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// complete adds a drill's departments, gaps and improvement items.
func (s *Service) complete(ctx context.Context, d *Drill, now time.Time) error {
	d.Departments, d.Gaps, d.Improvements = []DepartmentResult{}, []Gap{}, []Improvement{}
	if d.Participants == nil {
		d.Participants = []Participant{}
	}
	if d.Steps == nil {
		d.Steps = []StepResult{}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT department, passed FROM drill_departments WHERE drill_id = $1 ORDER BY department`, d.ID)
	if err != nil {
		return medguard.Wrap("plans.complete", err)
	}
	for rows.Next() {
		var r DepartmentResult
		var p int
		if err := rows.Scan(&r.Department, &p); err != nil {
			rows.Close()
			return medguard.Wrap("plans.complete", err)
		}
		r.Passed = p == 1
		d.Departments = append(d.Departments, r)
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT seq, department, severity, description FROM drill_gaps WHERE drill_id = $1 ORDER BY seq`, d.ID)
	if err != nil {
		return medguard.Wrap("plans.complete", err)
	}
	for rows.Next() {
		var g Gap
		var desc []byte
		if err := rows.Scan(&g.Seq, &g.Department, &g.Severity, &desc); err != nil {
			rows.Close()
			return medguard.Wrap("plans.complete", err)
		}
		if g.Description, err = s.open(ctx, "drill_gaps", fmt.Sprintf("%s/%d", d.ID, g.Seq), "description", desc); err != nil {
			rows.Close()
			return err
		}
		d.Gaps = append(d.Gaps, g)
	}
	rows.Close()
	ims, err := s.improvements(ctx, `drill_id = $1`, d.ID)
	if err != nil {
		return err
	}
	for _, im := range ims {
		im.Overdue = im.Status == ImprovementOpen && !now.Before(im.DueAt)
		d.Improvements = append(d.Improvements, im)
	}
	return nil
}

// improvements reads improvement items matching where, by due date.
func (s *Service) improvements(ctx context.Context, where string, args ...any) ([]Improvement, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, drill_id, action, owner, department, due_at, status, done_by, done_at, note
		FROM drill_improvements WHERE `+where+` ORDER BY due_at, seq, id`, args...)
	if err != nil {
		return nil, medguard.Wrap("plans.improvements", err)
	}
	defer rows.Close()
	now := s.clock.Now()
	var out []Improvement
	for rows.Next() {
		var im Improvement
		var action, note []byte
		var due int64
		var done sql.NullInt64
		if err := rows.Scan(&im.ID, &im.DrillID, &action, &im.Owner, &im.Department, &due, &im.Status, &im.DoneBy, &done, &note); err != nil {
			return nil, medguard.Wrap("plans.improvements", err)
		}
		im.DueAt, im.DoneAt = medguard.FromMillis(due), ms(done)
		im.Overdue = im.Status == ImprovementOpen && !now.Before(im.DueAt)
		if im.Action, err = s.open(ctx, "drill_improvements", im.ID, "action", action); err != nil {
			return nil, err
		}
		if im.Note, err = s.open(ctx, "drill_improvements", im.ID, "note", note); err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, medguard.Wrap("plans.improvements", rows.Err())
}

// GetDrill returns a recorded drill with its steps, gaps and improvement
// items (plan.read).
func (s *Service) GetDrill(ctx context.Context, call *medguard.Call, id string) (*Drill, error) {
	var d *Drill
	if medguard.ValidID(id) {
		ds, err := s.readDrills(ctx, `id = $1`, id)
		if err != nil {
			return nil, err
		}
		if len(ds) == 1 {
			d = &ds[0]
		}
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanRead, AuditAction: "drill.read",
		Resource: policy.Resource{Type: "drill", ID: id, Missing: d == nil}}, func(policy.Decision) (audit.Mutation, error) {
		if d == nil {
			return nil, errNoDrill
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DrillQuery filters the drills.
type DrillQuery struct {
	// Kind keeps one kind (tabletop, live, restore).
	Kind string
	// PlanID keeps the drills of one plan; Department those a department
	// took part in (both leave the restore drills out).
	PlanID     string
	Department string
	// Failed keeps the drills that failed.
	Failed bool
}

// BackupDrill is a restore drill of the backups (恢复演练) as the drills
// list shows it.
type BackupDrill struct {
	ID         string
	StartedAt  time.Time
	OK         bool
	RTOMet     bool
	RTOSeconds float64
}

// BackupDrills reads the backups' restore drills for a caller, through the
// backups' own gated service (the App adapts backuphealth); nil lists
// none.
type BackupDrills interface {
	RestoreDrills(ctx context.Context, call *medguard.Call) ([]BackupDrill, error)
}

// SetBackupDrills makes the drills list show the backups' restore drills.
func (s *Service) SetBackupDrills(b BackupDrills) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backups = b
}

// ListDrills lists the drills, newest first (plan.read), with the backups'
// restore drills the caller may see (backup.read; read through the
// backups' service, which logs it): a restore drill passes when its
// restore succeeded within the RTO goal. The list answers at most 1000
// recorded drills.
func (s *Service) ListDrills(ctx context.Context, call *medguard.Call, q DrillQuery) ([]Drill, error) {
	switch {
	case q.Kind != "" && q.Kind != Restore && !slices.Contains(DrillKinds, q.Kind):
		return nil, medguard.InvalidField("kind", "kind must be one of tabletop, live, restore")
	case q.PlanID != "" && !medguard.ValidID(q.PlanID):
		return nil, medguard.InvalidField("plan_id", "plan_id is not an id")
	case len(q.Department) > 32:
		return nil, medguard.InvalidField("department", "no department has this code")
	}
	out := []Drill{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanRead, AuditAction: "drill.list",
		Resource: policy.Resource{Type: "drill"}}, func(policy.Decision) (audit.Mutation, error) {
		if q.Kind == Restore {
			return nil, nil
		}
		where, args := []string{"1 = 1"}, []any{}
		add := func(cond string, v any) {
			args = append(args, v)
			where = append(where, fmt.Sprintf(cond, len(args)))
		}
		if q.Kind != "" {
			add("kind = $%d", q.Kind)
		}
		if q.PlanID != "" {
			add("plan_id = $%d", q.PlanID)
		}
		if q.Department != "" {
			add("id IN (SELECT drill_id FROM drill_departments WHERE department = $%d)", q.Department)
		}
		if q.Failed {
			add("passed = $%d", 0)
		}
		ds, err := s.readDrills(ctx, strings.Join(where, " AND "), args...)
		out = append(out, ds...)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	b := s.backups
	s.mu.Unlock()
	if b != nil && (q.Kind == "" || q.Kind == Restore) && q.PlanID == "" && q.Department == "" {
		// The backups' service decides and logs the caller's read; a
		// caller without backup.read, or targets that cannot be read,
		// leave the restore drills out of the list, not the list out.
		if rs, err := b.RestoreDrills(ctx, call); err == nil {
			for _, r := range rs {
				ok := r.OK && r.RTOMet
				if q.Failed && ok {
					continue
				}
				out = append(out, Drill{ID: r.ID, Kind: Restore, HeldAt: r.StartedAt.UTC(), Passed: ok, RTOSeconds: r.RTOSeconds,
					Departments: []DepartmentResult{}, Participants: []Participant{}, Steps: []StepResult{}, Gaps: []Gap{},
					Improvements: []Improvement{}})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Drill) int { return b.HeldAt.Compare(a.HeldAt) })
	return out, nil
}

// CompleteImprovement closes an improvement item of a drill with a note
// (drill.manage); an overdue alert about it is resolved.
func (s *Service) CompleteImprovement(ctx context.Context, call *medguard.Call, drillID, id string, in ImprovementCompletion) (*Improvement, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, 1000, true); err != nil {
		return nil, err
	}
	var im *Improvement
	if medguard.ValidID(drillID) && medguard.ValidID(id) {
		ims, err := s.improvements(ctx, `id = $1 AND drill_id = $2`, id, drillID)
		if err != nil {
			return nil, err
		}
		if len(ims) == 1 {
			im = &ims[0]
		}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	note, err := s.seal(ctx, "drill_improvements", id, "note", in.Note)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DrillManage, AuditAction: "drill.improvement_done",
		Resource: policy.Resource{Type: "drill", ID: drillID, Missing: im == nil}}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case im == nil:
			return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such improvement item of this drill"}
		case im.Status != ImprovementOpen:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the improvement item is done already"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE drill_improvements SET status = $1, done_by = $2, done_at = $3, note = $4
				WHERE id = $5 AND status = $6`, ImprovementDone, call.Actor.Name, medguard.Millis(now), note, id, ImprovementOpen)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the improvement item is done already"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	im.Status, im.DoneBy, im.DoneAt, im.Note, im.Overdue = ImprovementDone, call.Actor.Name, &now, in.Note, false
	s.improvementDone(ctx, *im)
	return im, nil
}
