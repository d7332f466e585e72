package records

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
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

// Break-glass (紧急访问, SPEC §3) is a time-boxed emergency window. A
// reader without a relation to a patient declares it — the patient, a
// reason, a purpose of use — or asks for it with a reason on a read
// (X-Break-Glass-Reason). The declaration opens a window of
// BreakGlassWindow: while it is open, that reader's reads of that
// patient's data are still decided one by one by the policy (restricted
// records stay closed; core records need the purpose, the declared one
// when the read names none), and those it allows only because the glass
// was broken (allow.break_glass) are attached to the one event. The head
// of every department whose data was shown reviews the event once: the
// patient, the records read, the reader, the reason and the time.

// Review outcomes of an emergency access.
const (
	Justified   = "justified"
	Unjustified = "unjustified"
)

// MaxReason is the longest break-glass reason or review note.
const MaxReason = 500

// BreakGlassWindow is how long a break-glass declaration stays open.
const BreakGlassWindow = 30 * time.Minute

// windowReason stands, in a read that gave no reason, for the reason of
// the open window the read joins: the policy decides on break-glass when
// a call carries a reason.
const windowReason = "\x00break-glass window"

// BreakGlassDeclaration opens a break-glass window on a patient: named
// directly, or as the patient of a record.
type BreakGlassDeclaration struct {
	PatientID string `json:"patient_id"`
	RecordID  string `json:"record_id"`
	Reason    string `json:"reason"`
	Purpose   string `json:"purpose"`
}

func checkReason(field, reason string) error {
	if err := required(field, reason); err != nil {
		return err
	}
	return text(field, reason, MaxReason, false)
}

// window is a reader's open break-glass window on a patient.
type window struct {
	id          string
	due, ends   time.Time
	purpose     string
	departments []string // the departments whose data the window has shown
}

func (w *window) notice() *BreakGlassNotice {
	return &BreakGlassNotice{EventID: w.id, ReviewDueAt: w.due, WindowEndsAt: w.ends}
}

// querier is the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// openWindow returns the user's open, unreviewed window on the patient at
// now, or nil.
func openWindow(ctx context.Context, q querier, userID, patientID string, now time.Time) (*window, error) {
	var w window
	var due, ends int64
	var purpose sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, review_due_at, ends_at, purpose FROM break_glass_events
		WHERE user_id = $1 AND patient_id = $2 AND ends_at > $3 AND reviewed_at IS NULL
		ORDER BY ends_at DESC, id DESC LIMIT 1`, userID, patientID, medguard.Millis(now)).Scan(&w.id, &due, &ends, &purpose)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	w.due, w.ends, w.purpose = medguard.FromMillis(due), medguard.FromMillis(ends), purpose.String
	if w.departments, err = eventDepartments(ctx, q, w.id); err != nil {
		return nil, err
	}
	return &w, nil
}

// eventDepartments returns the departments whose data an event showed.
func eventDepartments(ctx context.Context, q querier, eventID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT department FROM break_glass_events WHERE id = $1
		UNION SELECT department FROM break_glass_reads WHERE event_id = $1`, eventID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		if d != "" {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, rows.Err()
}

// withWindow prepares a read of a patient's data (patient.read,
// record.read, record.list) for the caller's open break-glass window: a
// read that names no reason carries the window's (so that the policy may
// decide on break-glass), and no purpose the window's. It returns the
// window, or nil. A record of the caller's own department needs no window
// (the policy allows it first), so it is not looked up.
func (s *Service) withWindow(ctx context.Context, pass gate.Passage) (gate.Passage, *window, error) {
	c, r := pass.Call, pass.Resource
	if c.Actor.Kind != medguard.UserActor || c.Actor.ID == "" || r.PatientID == "" {
		return pass, nil, nil
	}
	if pass.Action == policy.RecordRead && c.Actor.Department != "" && slices.Contains(r.Departments, c.Actor.Department) {
		return pass, nil, nil
	}
	w, err := openWindow(ctx, s.db, c.Actor.ID, r.PatientID, s.clock.Now())
	if err != nil {
		return pass, nil, medguard.Wrap("records.withWindow", err)
	}
	if w == nil {
		return pass, nil, nil
	}
	joined := *c
	joined.BreakGlassReason = cmp.Or(joined.BreakGlassReason, windowReason)
	joined.Purpose = cmp.Or(joined.Purpose, w.purpose)
	pass.Call = &joined
	return pass, w, nil
}

// touch is what a break-glass read showed: a record, or a patient's data
// held by departments (details, the record list, the declaration).
type touch struct {
	patientID   string
	action      string
	recordID    string
	departments []string // for a record, its department
}

// readRow is a line of break_glass_reads.
type readRow struct{ action, recordID, department string }

// rows are the lines a touch adds to a window that has shown departments
// already: a record read always, other reads only for departments new to it.
func (t touch) rows(shown []string) []readRow {
	var out []readRow
	for _, d := range t.departments {
		if t.recordID != "" {
			return []readRow{{t.action, t.recordID, d}}
		}
		if !slices.Contains(shown, d) {
			out = append(out, readRow{t.action, "", d})
			shown = append(shown, d)
		}
	}
	return out
}

func insertReads(ctx context.Context, tx *sql.Tx, eventID string, index uint64, rows []readRow, now time.Time) error {
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO break_glass_reads (event_id, id, audit_index, action, record_id, department, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, eventID, medguard.NewID(now), int64(index), r.action, nullable(r.recordID),
			r.department, medguard.Millis(now)); err != nil {
			return err
		}
	}
	return nil
}

// breakGlass returns the mutation attaching a read that the policy allowed
// only because the glass was broken to the caller's window — the open one
// (w), or a new one opened with the call's reason — committed with the
// read's audit entry, and fills in the notice.
func (s *Service) breakGlass(ctx context.Context, call *medguard.Call, w *window, t touch, now time.Time, notice **BreakGlassNotice) (audit.Mutation, error) {
	if w == nil || call.BreakGlassReason != windowReason {
		if err := checkReason("X-Break-Glass-Reason", call.BreakGlassReason); err != nil {
			return nil, err
		}
	}
	if w != nil {
		*notice = w.notice()
		rows := t.rows(w.departments)
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			return insertReads(ctx, tx, w.id, index, rows, now)
		}, nil
	}
	return s.openEvent(ctx, call, t, now, notice)
}

// openEvent returns the mutation opening a new window with the call's
// reason and purpose, for the touch that opened it. Should another read of
// the same caller have opened a window on the patient meanwhile, the touch
// joins that one instead.
func (s *Service) openEvent(ctx context.Context, call *medguard.Call, t touch, now time.Time, notice **BreakGlassNotice) (audit.Mutation, error) {
	k, err := s.keys.Current(ctx, patientOwner(t.patientID))
	if err != nil {
		return nil, medguard.Wrap("records.breakGlass", err)
	}
	id := medguard.NewID(now)
	reason := k.SealString(loc("break_glass_events", id, "reason"), strings.TrimSpace(call.BreakGlassReason))
	due, ends := now.Add(s.cfg.BreakGlassReview), now.Add(BreakGlassWindow)
	department := ""
	if len(t.departments) > 0 {
		department = t.departments[0]
	}
	n := &BreakGlassNotice{EventID: id, ReviewDueAt: due, WindowEndsAt: ends}
	*notice = n
	return func(ctx context.Context, tx *sql.Tx, index uint64) error {
		w, err := openWindow(ctx, tx, call.Actor.ID, t.patientID, now)
		if err != nil {
			return err
		}
		if w != nil {
			*n = *w.notice()
			return insertReads(ctx, tx, w.id, index, t.rows(w.departments), now)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO break_glass_events (id, audit_index, user_id, username, patient_id, record_id,
			department, reason, at, review_due_at, purpose, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			id, int64(index), call.Actor.ID, call.Actor.Name, t.patientID, nullable(t.recordID), department, reason,
			medguard.Millis(now), medguard.Millis(due), nullable(call.Purpose), medguard.Millis(ends)); err != nil {
			return err
		}
		return insertReads(ctx, tx, id, index, t.rows(nil), now)
	}, nil
}

// DeclareBreakGlass opens a break-glass window on a patient (or a record's
// patient) for the caller: the reason and the purpose of use are required.
// The declaration is decided by the policy as a break-glass read of the
// patient's details and logged (breakglass.declare); it shows no patient
// data. It returns the window's notice — the open window's, if the caller
// has one on the patient already — or nil when the caller needs no
// break-glass (the policy allows the patient to them on another ground).
func (s *Service) DeclareBreakGlass(ctx context.Context, call *medguard.Call, d BreakGlassDeclaration) (*BreakGlassNotice, error) {
	patientID := d.PatientID
	if d.RecordID != "" {
		r, err := s.loadRecord(ctx, d.RecordID, 0)
		if err != nil {
			return nil, s.missing(ctx, call, policy.PatientRead, "record", d.RecordID, err)
		}
		patientID = r.patientID
	}
	pass, err := s.onPatient(ctx, call, policy.PatientRead, "breakglass.declare", patientID)
	if err != nil {
		return nil, err
	}
	reason, purpose := strings.TrimSpace(d.Reason), d.Purpose
	if !policy.KnownPurpose(purpose) {
		purpose = "" // never free text in the audit entry
	}
	c := *call
	// A declaration asks to break the glass whatever its reason says: the
	// policy decides on that, and the work refuses an empty reason.
	c.BreakGlassReason, c.Purpose = cmp.Or(reason, "-"), purpose
	pass.Call = &c
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *BreakGlassNotice
	_, _, err = s.gate.Enter(ctx, pass, func(dec policy.Decision) (audit.Mutation, error) {
		if err := checkReason("reason", reason); err != nil {
			return nil, err
		}
		if purpose == "" {
			return nil, medguard.InvalidField("purpose", "purpose must be one of %s", strings.Join(policy.Purposes, ", "))
		}
		if !dec.BreakGlass {
			return nil, nil
		}
		c.BreakGlassReason = reason
		w, err := openWindow(ctx, s.db, c.Actor.ID, patientID, now)
		if err != nil {
			return nil, err
		}
		// The heads of the departments the reader may know of review it
		// (break-glass never opens a restricted department's data).
		depts, err := s.visibleDepartments(ctx, call, pass.Resource.Departments)
		if err != nil {
			return nil, err
		}
		return s.breakGlass(ctx, &c, w, touch{patientID: patientID, action: "breakglass.declare", departments: depts}, now, &out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BreakGlassPreview shows who a break-glass would open — the patient named,
// or a record's patient — as a search shows them: masked name, gender, age,
// the tail of the 病案号 and the departments the caller may know of, so
// that the reader knows whom they are about to open. It is logged as a
// search match (patient.search_match) and needs patient.search.
func (s *Service) BreakGlassPreview(ctx context.Context, call *medguard.Call, patientID, recordID string) (*Match, error) {
	if recordID != "" {
		r, err := s.loadRecord(ctx, recordID, 0)
		if err != nil {
			return nil, s.missing(ctx, call, policy.PatientSearch, "record", recordID, err)
		}
		patientID = r.patientID
	}
	sp, err := s.loadPatient(ctx, patientID)
	if err != nil {
		return nil, s.missing(ctx, call, policy.PatientSearch, "patient", patientID, err)
	}
	depts, err := s.patientDepartments(ctx, patientID)
	if err != nil {
		return nil, medguard.Wrap("records.BreakGlassPreview", err)
	}
	var out *Match
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PatientSearch, AuditAction: "patient.search_match",
		Resource: policy.Resource{Type: "patient", ID: patientID, PatientID: patientID, Departments: depts}},
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			out, err = s.match(ctx, call, sp, depts)
			return nil, err
		})
	return out, err
}

// BreakGlassEvent is one emergency access — a break-glass window — awaiting
// or after review.
type BreakGlassEvent struct {
	ID         string `json:"id"`
	AuditIndex uint64 `json:"audit_index"`
	UserID     string `json:"user_id"`
	Username   string `json:"username"`
	PatientID  string `json:"patient_id"`
	// RecordID is the first record read, if the window opened on one.
	RecordID string `json:"record_id,omitempty"`
	// Department is the department whose data the window opened on;
	// Departments every department whose data it showed (their heads
	// review it).
	Department  string   `json:"department"`
	Departments []string `json:"departments"`
	Reason      string   `json:"reason,omitempty"` // shown to the reviewing department head only
	Purpose     string   `json:"purpose,omitempty"`
	// At is when the window opened, WindowEndsAt when it closes (closed
	// at once for the events made before windows); Open is true while it
	// is open.
	At           time.Time `json:"at"`
	WindowEndsAt time.Time `json:"window_ends_at"`
	Open         bool      `json:"open"`
	// Reads are what the window showed, in order.
	Reads       []BreakGlassRead `json:"reads"`
	ReviewDueAt time.Time        `json:"review_due_at"`
	Overdue     bool             `json:"overdue"`
	ReviewedAt  *time.Time       `json:"reviewed_at,omitempty"`
	ReviewedBy  string           `json:"reviewed_by,omitempty"`
	Outcome     string           `json:"outcome,omitempty"`
	Note        string           `json:"note,omitempty"`
	// Patient names the patient, for a queue read with Detail by someone
	// who may see the patient's details.
	Patient *BreakGlassPatient `json:"patient,omitempty"`
}

// BreakGlassRead is one thing a break-glass window showed: a record
// (RecordID and Type set; Title with Detail, for those who may read the
// record), or another view of a department's data of the patient
// (action patient.read, record.list or breakglass.declare).
type BreakGlassRead struct {
	Action     string    `json:"action"`
	RecordID   string    `json:"record_id,omitempty"`
	Type       string    `json:"type,omitempty"`
	Title      string    `json:"title,omitempty"`
	Department string    `json:"department"`
	At         time.Time `json:"at"`
	AuditIndex uint64    `json:"audit_index"`

	record *storedRecord // the record read, for its title
}

// BreakGlassPatient is the patient of a break-glass event as the reviewer
// may see them.
type BreakGlassPatient struct {
	Name   string `json:"name"`
	MRN    string `json:"mrn,omitempty"`
	Gender string `json:"gender"`
	Age    *int   `json:"age,omitempty"`
}

// BreakGlassFilter selects events from the queue.
type BreakGlassFilter struct {
	Status string // "pending" (default), "overdue", "reviewed" or "all"
	After  string
	Limit  int
	// Detail names each event's patient and the titles of the records
	// read, as far as the caller may see them (a department head their
	// department's patients): each patient so shown is logged as a read of
	// their details (patient.read).
	Detail bool
}

type storedEvent struct {
	BreakGlassEvent
	userID             string
	reason, note       []byte
	at, due            int64
	reviewed           sql.NullInt64
	reviewedBy, outcom sql.NullString
	recordID, purpose  sql.NullString
	ends               sql.NullInt64
	auditIndex         int64
}

const eventColumns = `id, audit_index, user_id, username, patient_id, record_id, department, reason, at, review_due_at,
	reviewed_at, reviewed_by, review_outcome, review_note, purpose, ends_at`

func scanEvent(sc interface{ Scan(...any) error }) (*storedEvent, error) {
	var e storedEvent
	err := sc.Scan(&e.ID, &e.auditIndex, &e.userID, &e.Username, &e.PatientID, &e.recordID, &e.Department, &e.reason,
		&e.at, &e.due, &e.reviewed, &e.reviewedBy, &e.outcom, &e.note, &e.purpose, &e.ends)
	if err != nil {
		return nil, err
	}
	e.AuditIndex, e.RecordID, e.UserID, e.Purpose = uint64(e.auditIndex), e.recordID.String, e.userID, e.purpose.String
	e.At, e.ReviewDueAt = medguard.FromMillis(e.at), medguard.FromMillis(e.due)
	e.WindowEndsAt = e.At
	if e.ends.Valid {
		e.WindowEndsAt = medguard.FromMillis(e.ends.Int64)
	}
	if e.reviewed.Valid {
		t := medguard.FromMillis(e.reviewed.Int64)
		e.ReviewedAt = &t
	}
	e.ReviewedBy, e.Outcome = e.reviewedBy.String, e.outcom.String
	return &e, nil
}

// readsOf loads what an event showed, with the records read.
func (s *Service) readsOf(ctx context.Context, e *storedEvent) ([]BreakGlassRead, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT b.action, b.record_id, b.department, b.at, b.audit_index,
		r.type, r.department, v.classification, r.version, v.title,
		(SELECT count(*) FROM restricted_departments x WHERE x.department = r.department),
		r.content_key, r.destroyed_at, r.destruction_id
		FROM break_glass_reads b LEFT JOIN records r ON r.id = b.record_id
		LEFT JOIN record_versions v ON v.record_id = r.id AND v.version = r.version
		WHERE b.event_id = $1 ORDER BY b.audit_index, b.at`, e.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []BreakGlassRead{}
	for rows.Next() {
		var rd BreakGlassRead
		var recordID, typ, dept, class sql.NullString
		var version sql.NullInt64
		var title []byte
		var at, index int64
		var restricted int
		var contentKey, destructionID sql.NullString
		var destroyed sql.NullInt64
		if err := rows.Scan(&rd.Action, &recordID, &rd.Department, &at, &index, &typ, &dept, &class, &version, &title,
			&restricted, &contentKey, &destroyed, &destructionID); err != nil {
			return nil, err
		}
		rd.RecordID, rd.Type, rd.At, rd.AuditIndex = recordID.String, typ.String, medguard.FromMillis(at), uint64(index)
		if typ.Valid {
			rd.record = &storedRecord{id: rd.RecordID, patientID: e.PatientID, typ: typ.String, department: dept.String,
				classification: class.String, version: int(version.Int64), title: title, restricted: restricted > 0,
				contentKey: contentKey, destroyedAt: destroyed, destructionID: destructionID}
		}
		out = append(out, rd)
	}
	return out, rows.Err()
}

// show decrypts what the viewer may see of an event, with what it read.
func (s *Service) show(ctx context.Context, e *storedEvent, withReason bool, now time.Time) (BreakGlassEvent, error) {
	out := e.BreakGlassEvent
	out.Overdue = e.ReviewedAt == nil && now.After(e.ReviewDueAt)
	out.Open = e.ReviewedAt == nil && now.Before(e.WindowEndsAt)
	var err error
	if out.Reads, err = s.readsOf(ctx, e); err != nil {
		return out, err
	}
	out.Departments = []string{}
	if e.Department != "" {
		out.Departments = append(out.Departments, e.Department)
	}
	for _, rd := range out.Reads {
		if !slices.Contains(out.Departments, rd.Department) {
			out.Departments = append(out.Departments, rd.Department)
		}
	}
	slices.Sort(out.Departments)
	if !withReason {
		return out, nil
	}
	owner := patientOwner(e.PatientID)
	if out.Reason, err = s.keys.OpenString(ctx, owner, loc("break_glass_events", e.ID, "reason"), e.reason); err != nil {
		return out, err
	}
	if out.Note, err = s.keys.OpenString(ctx, owner, loc("break_glass_events", e.ID, "review_note"), e.note); err != nil {
		return out, err
	}
	return out, nil
}

// reviewerWhere is the condition that keeps the events a department head
// reviews: those that showed their department's data.
func reviewerWhere(arg int) string {
	n := "$" + itoa(arg)
	return "(department = " + n + " OR id IN (SELECT event_id FROM break_glass_reads WHERE department = " + n + "))"
}

// ListBreakGlass returns the break-glass review queue, one item per
// window. A department head (breakglass.review) sees the events that
// showed their department's data, with the reasons; security officers and
// auditors (breakglass.read) see every department's events without them.
// With f.Detail, each event names its patient and the titles of the
// records read, where the caller may see them (see BreakGlassFilter).
func (s *Service) ListBreakGlass(ctx context.Context, call *medguard.Call, f BreakGlassFilter) ([]BreakGlassEvent, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	now := s.clock.Now()
	pass, reviewer := queuePassage(call, "breakglass.list")
	out := []BreakGlassEvent{}
	var next string
	var detailed []int // the index in out of each item passage's event
	err := s.gate.EnterList(ctx, pass, func(policy.Decision) ([]gate.Passage, error) {
		where := []string{"id > $1"}
		args := []any{f.After}
		switch f.Status {
		case "", "pending":
			where = append(where, "reviewed_at IS NULL")
		case "overdue":
			args = append(args, medguard.Millis(now))
			where = append(where, "reviewed_at IS NULL", "review_due_at < $2")
		case "reviewed":
			where = append(where, "reviewed_at IS NOT NULL")
		case "all":
		default:
			return nil, medguard.InvalidField("status", "status must be pending, overdue, reviewed or all")
		}
		if reviewer {
			args = append(args, call.Actor.Department)
			where = append(where, reviewerWhere(len(args)))
		}
		args = append(args, f.Limit+1)
		rows, err := s.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM break_glass_events WHERE `+
			strings.Join(where, " AND ")+` ORDER BY id LIMIT $`+itoa(len(args)), args...)
		if err != nil {
			return nil, err
		}
		var events []*storedEvent
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			events = append(events, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(events) > f.Limit {
			events, next = events[:f.Limit], events[f.Limit-1].ID
		}
		for _, e := range events {
			shown, err := s.show(ctx, e, reviewer, now)
			if err != nil {
				return nil, err
			}
			out = append(out, shown)
		}
		if !f.Detail {
			return nil, nil
		}
		// Each patient the caller may see is an item of the list, logged
		// as a read of the patient's details; the others are not named.
		var items []gate.Passage
		for i, e := range out {
			r, err := s.patientResource(ctx, e.PatientID)
			if err != nil {
				return nil, err
			}
			p, err := s.passage(ctx, call, policy.PatientRead, r)
			if err != nil {
				return nil, err
			}
			if s.gate.Check(p).Allowed {
				items, detailed = append(items, p), append(detailed, i)
			}
		}
		return items, nil
	}, func(ds []policy.Decision) error {
		for j, d := range ds {
			if !d.Allowed {
				continue
			}
			if err := s.detail(ctx, call, &out[detailed[j]]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// detail names an event's patient and the titles of the records read that
// the caller may read.
func (s *Service) detail(ctx context.Context, call *medguard.Call, e *BreakGlassEvent) error {
	sp, err := s.loadPatient(ctx, e.PatientID)
	if err != nil {
		return err
	}
	owner := patientOwner(sp.id)
	var p BreakGlassPatient
	var birth string
	for _, f := range []struct {
		col string
		ct  []byte
		dst *string
	}{{"name", sp.name, &p.Name}, {"mrn", sp.mrn, &p.MRN}, {"gender", sp.gender, &p.Gender}, {"birth_date", sp.birth, &birth}} {
		if *f.dst, err = s.keys.OpenString(ctx, owner, loc("patients", sp.id, f.col), f.ct); err != nil {
			return err
		}
	}
	if age, ok := Age(birth, s.today()); ok {
		p.Age = &age
	}
	e.Patient = &p
	for i := range e.Reads {
		r := e.Reads[i].record
		if r == nil {
			continue
		}
		pass, err := s.passage(ctx, call, policy.RecordRead, r.resource())
		if err != nil {
			return err
		}
		if !s.gate.Check(pass).Allowed || r.destroyedAt.Valid {
			continue
		}
		if e.Reads[i].Title, err = s.keys.OpenString(ctx, r.owner(), loc("record_versions", versionRow(r.id, r.version), "title"), r.title); err != nil {
			return err
		}
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// MaxUnjustified bounds how many events one UnjustifiedBreakGlass call returns.
const MaxUnjustified = 10_000

// UnjustifiedBreakGlass lists the emergency accesses made in [from, to)
// that the department head reviewed as unjustified, oldest first, without
// their reasons or review notes: an unjustified access is an unauthorised
// query (SPEC §7), which the accountability candidates count. Security
// officers and auditors (breakglass.read) see every department; a
// department head their own, as in the queue. It is a logged operation.
func (s *Service) UnjustifiedBreakGlass(ctx context.Context, call *medguard.Call, from, to time.Time) ([]BreakGlassEvent, error) {
	now := s.clock.Now()
	pass, reviewer := queuePassage(call, "breakglass.unjustified")
	out := []BreakGlassEvent{}
	_, _, err := s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if !to.After(from) {
			return nil, medguard.InvalidField("to", "to must be after from")
		}
		args := []any{Unjustified, medguard.Millis(from), medguard.Millis(to)}
		where := "review_outcome = $1 AND at >= $2 AND at < $3"
		if reviewer {
			args = append(args, call.Actor.Department)
			where += " AND " + reviewerWhere(4)
		}
		args = append(args, MaxUnjustified)
		rows, err := s.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM break_glass_events WHERE `+where+
			` ORDER BY at, id LIMIT $`+itoa(len(args)), args...)
		if err != nil {
			return nil, err
		}
		var events []*storedEvent
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			events = append(events, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, e := range events {
			shown, err := s.show(ctx, e, false, now)
			if err != nil {
				return nil, err
			}
			out = append(out, shown)
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReviewBreakGlass records a department head's review of an emergency
// access: justified or unjustified (which needs a note). The head of any
// department whose data the window showed may review it, once.
func (s *Service) ReviewBreakGlass(ctx context.Context, call *medguard.Call, id, outcome, note string) (*BreakGlassEvent, error) {
	var e *storedEvent
	var err error
	if medguard.ValidID(id) {
		e, err = scanEvent(s.db.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM break_glass_events WHERE id = $1`, id))
	}
	if e == nil || errors.Is(err, sql.ErrNoRows) {
		return nil, s.missing(ctx, call, policy.BreakGlassReview, "break_glass", id,
			&medguard.Error{Kind: medguard.NotFound, Message: "no such break-glass event"})
	}
	if err != nil {
		return nil, medguard.Wrap("records.ReviewBreakGlass", err)
	}
	depts, err := eventDepartments(ctx, s.db, id)
	if err != nil {
		return nil, medguard.Wrap("records.ReviewBreakGlass", err)
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var out BreakGlassEvent
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.BreakGlassReview, AuditAction: "breakglass.review",
		Resource: policy.Resource{Type: "break_glass", ID: id, PatientID: e.PatientID, Departments: depts,
			RequestedBy: e.userID}},
		func(policy.Decision) (audit.Mutation, error) {
			if outcome != Justified && outcome != Unjustified {
				return nil, medguard.InvalidField("outcome", "outcome must be justified or unjustified")
			}
			note = strings.TrimSpace(note)
			if err := text("note", note, MaxReason, true); err != nil {
				return nil, err
			}
			if outcome == Unjustified && note == "" {
				return nil, medguard.InvalidField("note", "say why the access was not justified")
			}
			if e.ReviewedAt != nil {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "this access was already reviewed"}
			}
			k, err := s.keys.Current(ctx, patientOwner(e.PatientID))
			if err != nil {
				return nil, medguard.Wrap("records.ReviewBreakGlass", err)
			}
			var sealedNote []byte
			if note != "" {
				sealedNote = k.Seal(keys.Location{Table: "break_glass_events", Row: id, Column: "review_note"}, []byte(note))
			}
			e.ReviewedAt, e.ReviewedBy, e.Outcome = &now, call.Actor.Name, outcome
			e.note = sealedNote
			if out, err = s.show(ctx, e, true, now); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE break_glass_events SET reviewed_at = $1, reviewed_by = $2,
					review_outcome = $3, review_note = $4 WHERE id = $5 AND reviewed_at IS NULL`,
					medguard.Millis(now), call.Actor.Name, outcome, sealedNote, id)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "this access was already reviewed"})
			}, nil
		})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// queuePassage is the passage of a read of the break-glass queue: a
// department head (breakglass.review) reads their own department's, a
// security officer or auditor (breakglass.read) every department's.
func queuePassage(call *medguard.Call, auditAction string) (pass gate.Passage, reviewer bool) {
	reviewer = policy.PermissionsOf(call.Actor.Roles)[policy.BreakGlassReview] && call.Actor.Department != ""
	pass = gate.Passage{Call: call, Action: policy.BreakGlassRead, AuditAction: auditAction,
		Resource: policy.Resource{Type: "break_glass_queue"}}
	if reviewer {
		pass.Action = policy.BreakGlassReview
		pass.Resource = policy.Resource{Type: "break_glass_queue", ID: call.Actor.Department, Departments: []string{call.Actor.Department}}
	}
	return pass, reviewer
}
