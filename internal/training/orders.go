package training

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// The sources of a retraining order.
const (
	// SourceAccountability: the sanction of an accountability case; it
	// closes record access at once, until the course is passed.
	SourceAccountability = "accountability"
	// SourceOffice: ordered by the training office (training.manage),
	// with the day access closes (default at once).
	SourceOffice = "office"
	// SourceDepartment: a department's retraining asked by another
	// register (the drills: a department failing two drills in a row);
	// it closes access after the grace period.
	SourceDepartment = "department"
)

// OrderSources lists the sources of a retraining order.
var OrderSources = []string{SourceAccountability, SourceOffice, SourceDepartment}

// Order is a retraining order: a member of staff must pass the course
// again, after the order; until then — from GatesFrom — they get no
// patient data (a clinical role).
type Order struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	Username   string    `json:"username"`
	CourseID   string    `json:"course_id"`
	CourseCode string    `json:"course_code"`
	Source     string    `json:"source"`
	Reference  string    `json:"reference,omitempty"`
	Department string    `json:"department,omitempty"`
	Reason     string    `json:"reason"`
	OrderedBy  string    `json:"ordered_by"`
	OrderedAt  time.Time `json:"ordered_at"`
	GatesFrom  time.Time `json:"gates_from"`
	// SatisfiedAt is when the course was passed after the order.
	SatisfiedAt *time.Time `json:"satisfied_at,omitempty"`
	CancelledBy string     `json:"cancelled_by,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	// Open says the order is neither satisfied nor cancelled.
	Open bool `json:"open"`
}

// NewOrder is the training office's retraining order.
type NewOrder struct {
	UserID string `json:"user_id"`
	// CourseID is the course to pass again (default: the course required
	// for record access, or the first general course).
	CourseID string `json:"course_id,omitempty"`
	Reason   string `json:"reason"`
	// GatesFrom is when record access closes (default now).
	GatesFrom time.Time `json:"gates_from,omitzero"`
}

// MaxReason is the longest reason of an order, in characters.
const MaxReason = 1000

var errNoOrder = &medguard.Error{Kind: medguard.NotFound, Message: "no such retraining order"}

// pendingOrder is an order about to be written.
type pendingOrder struct {
	Order
	sealed []byte
}

func (s *Service) prepareOrder(ctx context.Context, snap *snapshot, m identity.StaffMember, courseID, source, ref, dept, reason string,
	now, gates time.Time) (*pendingOrder, error) {
	if courseID == "" {
		courseID = snap.defaultCourse(m.Roles)
	}
	if courseID == "" {
		return nil, &medguard.Error{Kind: medguard.Conflict, Code: "no_course", Message: "the register has no course to retrain on: create one first"}
	}
	c, err := s.course(ctx, courseID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, medguard.InvalidField("course_id", "no such course")
	}
	id := medguard.NewID(now)
	sealed, err := s.seal(ctx, "training_orders", id, "reason", reason)
	if err != nil {
		return nil, err
	}
	return &pendingOrder{Order: Order{ID: id, UserID: m.ID, Username: m.Username, CourseID: c.ID, CourseCode: c.Code, Source: source,
		Reference: ref, Department: dept, Reason: reason, OrderedAt: now, GatesFrom: gates, Open: true}, sealed: sealed}, nil
}

func insertOrder(ctx context.Context, tx *sql.Tx, o *pendingOrder, by string) error {
	o.OrderedBy = by
	_, err := tx.ExecContext(ctx, `INSERT INTO training_orders (id, user_id, username, course_id, source, reference, department, reason,
		ordered_by, ordered_at, gates_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, o.ID, o.UserID, o.Username,
		o.CourseID, o.Source, o.Reference, o.Department, o.sealed, by, medguard.Millis(o.OrderedAt), medguard.Millis(o.GatesFrom))
	return err
}

// staffMemberFor finds an active member of staff for an order.
func (s *Service) staffMemberFor(ctx context.Context, field, userID string) (*snapshot, identity.StaffMember, error) {
	snap, err := s.current(ctx)
	if err != nil {
		return nil, identity.StaffMember{}, err
	}
	if !medguard.ValidID(userID) {
		return nil, identity.StaffMember{}, medguard.InvalidField(field, "%s is not an id", field)
	}
	m, ok := snap.member(userID)
	if !ok {
		// Someone created since the snapshot: read again.
		if err := s.Load(ctx); err != nil {
			return nil, identity.StaffMember{}, err
		}
		snap = s.snap.Load()
		m, ok = snap.member(userID)
	}
	if !ok || !m.Active || !staffMember(m.Roles) {
		return nil, identity.StaffMember{}, medguard.InvalidField(field, "%s names no active member of staff", field)
	}
	return snap, m, nil
}

// OrderRetraining orders a member of staff's retraining as the sanction of
// an accountability case (warning + retraining): the decider of the case
// (accountability.manage) orders it, never about themselves
// (deny.own_case). Record access closes at once, until the course
// required for record access (or the first general course) is passed
// again. The incidents capability calls it when a case's decision orders
// retraining.
func (s *Service) OrderRetraining(ctx context.Context, call *medguard.Call, userID, caseID, reason string) (*Order, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if reason, err = medguard.Text("reason", reason, MaxReason, true); err != nil {
		return nil, err
	}
	if !medguard.ValidID(caseID) {
		return nil, medguard.InvalidField("case_id", "case_id is not an id")
	}
	snap, m, err := s.staffMemberFor(ctx, "subject_user_id", userID)
	if err != nil {
		return nil, err
	}
	o, err := s.prepareOrder(ctx, snap, m, "", SourceAccountability, caseID, "", reason, now, now)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AccountabilityManage, AuditAction: "training.retraining_order",
		Resource: policy.Resource{Type: "training_order", ID: o.ID, SubjectUserID: m.ID}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error { return insertOrder(ctx, tx, o, call.Actor.Name) }, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return &o.Order, nil
}

// Retrain is the training office's retraining order (training.manage):
// a member of staff must pass a course again; record access closes from
// GatesFrom (default now). Nobody orders or lifts their own.
func (s *Service) Retrain(ctx context.Context, call *medguard.Call, in NewOrder) (*Order, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if in.Reason, err = medguard.Text("reason", in.Reason, MaxReason, true); err != nil {
		return nil, err
	}
	if in.CourseID != "" && !medguard.ValidID(in.CourseID) {
		return nil, medguard.InvalidField("course_id", "course_id is not an id")
	}
	gates := now
	if !in.GatesFrom.IsZero() {
		gates = in.GatesFrom.UTC().Truncate(time.Millisecond)
		if gates.Before(now.Add(-time.Minute)) || gates.After(now.AddDate(0, 6, 0)) {
			return nil, medguard.InvalidField("gates_from", "gates_from must be between now and six months from now")
		}
	}
	snap, m, err := s.staffMemberFor(ctx, "user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	o, err := s.prepareOrder(ctx, snap, m, in.CourseID, SourceOffice, "", "", in.Reason, now, gates)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.retraining_order",
		Resource: policy.Resource{Type: "training_order", ID: o.ID, SubjectUserID: m.ID}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error { return insertOrder(ctx, tx, o, call.Actor.Name) }, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return &o.Order, nil
}

// OrderDepartmentRetraining orders the retraining of every active member
// of staff of a department with a clinical role — for another register
// that found the department wanting (the drills: a department failing
// two drills in a row). source names that register (e.g. "drills") and
// reference what it found (a drill's id). It is logged as the caller of
// that register, as an event of it (training.retraining_department),
// since it follows from a decision already taken and logged there. Access
// closes only after the grace period, the staff warned meanwhile. It
// returns the orders made.
func (s *Service) OrderDepartmentRetraining(ctx context.Context, call *medguard.Call, department, source, reference, reason string) ([]Order, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if reason, err = medguard.Text("reason", reason, MaxReason, true); err != nil {
		return nil, err
	}
	if source, err = medguard.Line("source", source, 32, true); err != nil {
		return nil, err
	}
	if reference, err = medguard.Line("reference", reference, 64, false); err != nil {
		return nil, err
	}
	snap, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	gates := now.Add(snap.rules.settings.Grace())
	var pending []*pendingOrder
	for _, m := range snap.staff {
		if m.Department != department || department == "" || !m.Active || !clinical(m.Roles) {
			continue
		}
		o, err := s.prepareOrder(ctx, snap, m, "", SourceDepartment, source+":"+reference, department, reason, now, gates)
		if err != nil {
			return nil, err
		}
		pending = append(pending, o)
	}
	if len(pending) == 0 {
		return nil, medguard.InvalidField("department", "the department has no active clinical staff")
	}
	_, err = s.gate.Record(ctx, gate.Event{Call: call, Action: "training.retraining_department", TargetType: "department",
		TargetID: department, Allowed: true, Rule: "allow.register." + source}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		for _, o := range pending {
			if err := insertOrder(ctx, tx, o, call.Actor.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, medguard.Wrap("training.OrderDepartmentRetraining", err)
	}
	s.reload(ctx)
	out := make([]Order, len(pending))
	for i, o := range pending {
		out[i] = o.Order
	}
	return out, nil
}

// CancelOrder lifts a retraining order (training.manage): an appeal
// overturned the case, say. Nobody lifts their own (deny.own_training).
func (s *Service) CancelOrder(ctx context.Context, call *medguard.Call, id string) (*Order, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	o, err := s.order(ctx, id)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, s.missing(ctx, call, policy.TrainingManage, "training.retraining_cancel", "training_order", id, errNoOrder)
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.retraining_cancel",
		Resource: policy.Resource{Type: "training_order", ID: o.ID, SubjectUserID: o.UserID}}, func(policy.Decision) (audit.Mutation, error) {
		if !o.Open {
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "closed", Message: "the order is satisfied or lifted already"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `UPDATE training_orders SET cancelled_by = $1, cancelled_at = $2 WHERE id = $3
				AND cancelled_at IS NULL`, call.Actor.Name, medguard.Millis(now), o.ID)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	o.CancelledBy, o.CancelledAt, o.Open = call.Actor.Name, &now, false
	s.reload(ctx)
	s.settle(ctx, o.UserID)
	return o, nil
}

const orderColumns = `o.id, o.user_id, o.username, o.course_id, c.code, o.source, o.reference, o.department, o.reason,
	o.ordered_by, o.ordered_at, o.gates_from, COALESCE(o.cancelled_by, ''), o.cancelled_at,
	(SELECT min(s.held_at) FROM training_attendance a JOIN training_sessions s ON s.id = a.session_id
		WHERE a.user_id = o.user_id AND s.course_id = o.course_id AND a.passed = 1 AND s.held_at > o.ordered_at)`

const orderFrom = ` FROM training_orders o JOIN training_courses c ON c.id = o.course_id`

func (s *Service) scanOrders(ctx context.Context, rows *sql.Rows) ([]Order, error) {
	type row struct {
		o      Order
		sealed []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		var at, gates int64
		var cancelled, satisfied sql.NullInt64
		if err := rows.Scan(&r.o.ID, &r.o.UserID, &r.o.Username, &r.o.CourseID, &r.o.CourseCode, &r.o.Source, &r.o.Reference,
			&r.o.Department, &r.sealed, &r.o.OrderedBy, &at, &gates, &r.o.CancelledBy, &cancelled, &satisfied); err != nil {
			rows.Close()
			return nil, err
		}
		r.o.OrderedAt, r.o.GatesFrom = medguard.FromMillis(at), medguard.FromMillis(gates)
		if cancelled.Valid {
			r.o.CancelledAt = ptr(medguard.FromMillis(cancelled.Int64))
		}
		if satisfied.Valid {
			r.o.SatisfiedAt = ptr(medguard.FromMillis(satisfied.Int64))
		}
		r.o.Open = r.o.CancelledAt == nil && r.o.SatisfiedAt == nil
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Order, 0, len(rs))
	for _, r := range rs {
		var err error
		if r.o.Reason, err = s.open(ctx, "training_orders", r.o.ID, "reason", r.sealed); err != nil {
			return nil, err
		}
		out = append(out, r.o)
	}
	return out, nil
}

func (s *Service) order(ctx context.Context, id string) (*Order, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+orderColumns+orderFrom+` WHERE o.id = $1`, id)
	if err != nil {
		return nil, medguard.Wrap("training.order", err)
	}
	os, err := s.scanOrders(ctx, rows)
	if err != nil || len(os) == 0 {
		return nil, medguard.Wrap("training.order", err)
	}
	return &os[0], nil
}

func (s *Service) orders(ctx context.Context, where string, args ...any) ([]Order, error) {
	q := `SELECT ` + orderColumns + orderFrom
	if where != "" {
		q += ` WHERE ` + where
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY o.ordered_at DESC, o.id DESC LIMIT 2000`, args...)
	if err != nil {
		return nil, medguard.Wrap("training.orders", err)
	}
	out, err := s.scanOrders(ctx, rows)
	return out, medguard.Wrap("training.orders", err)
}

// ListOrders lists the retraining orders, newest first; open keeps the
// open ones (training.read).
func (s *Service) ListOrders(ctx context.Context, call *medguard.Call, open bool) ([]Order, error) {
	var out []Order
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.retraining_list",
		Resource: policy.Resource{Type: "training_order"}}, func(policy.Decision) (audit.Mutation, error) {
		all, err := s.orders(ctx, "")
		if err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(all, func(o Order) bool { return open && !o.Open })
		return nil, nil
	})
	return out, err
}

// errNoStaff says an id names no member of staff.
var errNoStaff = &medguard.Error{Kind: medguard.NotFound, Message: "no such member of staff"}
