package records

import (
	"context"
	"database/sql"
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

// Review outcomes of an emergency access.
const (
	Justified   = "justified"
	Unjustified = "unjustified"
)

// MaxReason is the longest break-glass reason or review note.
const MaxReason = 500

func (s *Service) checkReason(reason string) error {
	if err := required("X-Break-Glass-Reason", reason); err != nil {
		return err
	}
	return text("X-Break-Glass-Reason", reason, MaxReason, false)
}

// breakGlass returns the mutation recording an emergency read of record r,
// committed with the read's audit entry, and fills in the notice.
func (s *Service) breakGlass(ctx context.Context, call *medguard.Call, r *storedRecord, now time.Time, notice **BreakGlassNotice) (audit.Mutation, error) {
	if err := s.checkReason(call.BreakGlassReason); err != nil {
		return nil, err
	}
	ev, err := s.newEvent(ctx, call, r.patientID, r.id, r.department, now)
	if err != nil {
		return nil, err
	}
	*notice = &BreakGlassNotice{EventID: ev.id, ReviewDueAt: ev.due}
	return ev.insert, nil
}

// breakGlassList returns the mutation recording an emergency listing of a
// patient's records, one event per department whose records were shown.
func (s *Service) breakGlassList(ctx context.Context, call *medguard.Call, patientID string, depts []string, now time.Time) (audit.Mutation, error) {
	if len(depts) == 0 {
		return nil, nil
	}
	if err := s.checkReason(call.BreakGlassReason); err != nil {
		return nil, err
	}
	var events []*glassEvent
	for _, d := range depts {
		ev, err := s.newEvent(ctx, call, patientID, "", d, now)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return func(ctx context.Context, tx *sql.Tx, index uint64) error {
		for _, ev := range events {
			if err := ev.insert(ctx, tx, index); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

type glassEvent struct {
	id  string
	due time.Time
	// insert stores the event, linked to the audit entry at index.
	insert audit.Mutation
}

func (s *Service) newEvent(ctx context.Context, call *medguard.Call, patientID, recordID, department string, now time.Time) (*glassEvent, error) {
	k, err := s.keys.Current(ctx, patientOwner(patientID))
	if err != nil {
		return nil, medguard.Wrap("records.breakGlass", err)
	}
	id := medguard.NewID(now)
	reason := k.SealString(loc("break_glass_events", id, "reason"), strings.TrimSpace(call.BreakGlassReason))
	due := now.Add(s.cfg.BreakGlassReview)
	return &glassEvent{id: id, due: due, insert: func(ctx context.Context, tx *sql.Tx, index uint64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO break_glass_events (id, audit_index, user_id, username, patient_id, record_id,
			department, reason, at, review_due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			id, int64(index), call.Actor.ID, call.Actor.Name, patientID, nullable(recordID), department, reason,
			medguard.Millis(now), medguard.Millis(due))
		return err
	}}, nil
}

// BreakGlassEvent is one emergency access awaiting or after review.
type BreakGlassEvent struct {
	ID          string     `json:"id"`
	AuditIndex  uint64     `json:"audit_index"`
	UserID      string     `json:"user_id"`
	Username    string     `json:"username"`
	PatientID   string     `json:"patient_id"`
	RecordID    string     `json:"record_id,omitempty"`
	Department  string     `json:"department"`
	Reason      string     `json:"reason,omitempty"` // shown to the reviewing department head only
	At          time.Time  `json:"at"`
	ReviewDueAt time.Time  `json:"review_due_at"`
	Overdue     bool       `json:"overdue"`
	ReviewedAt  *time.Time `json:"reviewed_at,omitempty"`
	ReviewedBy  string     `json:"reviewed_by,omitempty"`
	Outcome     string     `json:"outcome,omitempty"`
	Note        string     `json:"note,omitempty"`
}

// BreakGlassFilter selects events from the queue.
type BreakGlassFilter struct {
	Status string // "pending" (default), "overdue", "reviewed" or "all"
	After  string
	Limit  int
}

type storedEvent struct {
	BreakGlassEvent
	userID             string
	reason, note       []byte
	at, due            int64
	reviewed           sql.NullInt64
	reviewedBy, outcom sql.NullString
	recordID           sql.NullString
	auditIndex         int64
}

const eventColumns = `id, audit_index, user_id, username, patient_id, record_id, department, reason, at, review_due_at,
	reviewed_at, reviewed_by, review_outcome, review_note`

func scanEvent(sc interface{ Scan(...any) error }) (*storedEvent, error) {
	var e storedEvent
	err := sc.Scan(&e.ID, &e.auditIndex, &e.userID, &e.Username, &e.PatientID, &e.recordID, &e.Department, &e.reason,
		&e.at, &e.due, &e.reviewed, &e.reviewedBy, &e.outcom, &e.note)
	if err != nil {
		return nil, err
	}
	e.AuditIndex, e.RecordID, e.UserID = uint64(e.auditIndex), e.recordID.String, e.userID
	e.At, e.ReviewDueAt = medguard.FromMillis(e.at), medguard.FromMillis(e.due)
	if e.reviewed.Valid {
		t := medguard.FromMillis(e.reviewed.Int64)
		e.ReviewedAt = &t
	}
	e.ReviewedBy, e.Outcome = e.reviewedBy.String, e.outcom.String
	return &e, nil
}

// show decrypts what the viewer may see of an event.
func (s *Service) show(ctx context.Context, e *storedEvent, withReason bool, now time.Time) (BreakGlassEvent, error) {
	out := e.BreakGlassEvent
	out.Overdue = e.ReviewedAt == nil && now.After(e.ReviewDueAt)
	if !withReason {
		return out, nil
	}
	var err error
	owner := patientOwner(e.PatientID)
	if out.Reason, err = s.keys.OpenString(ctx, owner, loc("break_glass_events", e.ID, "reason"), e.reason); err != nil {
		return out, err
	}
	if out.Note, err = s.keys.OpenString(ctx, owner, loc("break_glass_events", e.ID, "review_note"), e.note); err != nil {
		return out, err
	}
	return out, nil
}

// ListBreakGlass returns the break-glass review queue. A department head
// (breakglass.review) sees their own department's events with the reasons;
// security officers and auditors (breakglass.read) see every department's
// events without them.
func (s *Service) ListBreakGlass(ctx context.Context, call *medguard.Call, f BreakGlassFilter) ([]BreakGlassEvent, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	now := s.clock.Now()
	pass, reviewer := queuePassage(call, "breakglass.list")
	out := []BreakGlassEvent{}
	var next string
	_, _, err := s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
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
			where = append(where, "department = $"+itoa(len(args)))
		}
		args = append(args, f.Limit+1)
		rows, err := s.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM break_glass_events WHERE `+
			strings.Join(where, " AND ")+` ORDER BY id LIMIT $`+itoa(len(args)), args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				return nil, err
			}
			if len(out) == f.Limit {
				next = out[len(out)-1].ID
				break
			}
			shown, err := s.show(ctx, e, reviewer, now)
			if err != nil {
				return nil, err
			}
			out = append(out, shown)
		}
		return nil, rows.Err()
	})
	return out, next, err
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
			where += " AND department = $4"
		}
		args = append(args, MaxUnjustified)
		rows, err := s.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM break_glass_events WHERE `+where+
			` ORDER BY at, id LIMIT $`+itoa(len(args)), args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				return nil, err
			}
			shown, err := s.show(ctx, e, false, now)
			if err != nil {
				return nil, err
			}
			out = append(out, shown)
		}
		return nil, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReviewBreakGlass records the department head's review of an emergency
// access: justified or unjustified, with a note.
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
	now := s.clock.Now().Truncate(time.Millisecond)
	var out BreakGlassEvent
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.BreakGlassReview, AuditAction: "breakglass.review",
		Resource: policy.Resource{Type: "break_glass", ID: id, PatientID: e.PatientID, Departments: []string{e.Department},
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
