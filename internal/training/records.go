package training

import (
	"context"
	"database/sql"
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

// Record is a member of staff's training record: their standing now, every
// session they were enrolled in with the result, their signatures of the
// commitment letter, their retraining orders and quarterly assessments.
// The register keeps them all.
type Record struct {
	UserID      string       `json:"user_id"`
	Username    string       `json:"username"`
	DisplayName string       `json:"display_name"`
	Department  string       `json:"department,omitempty"`
	Roles       []string     `json:"roles"`
	Active      bool         `json:"active"`
	Standing    Standing     `json:"standing"`
	Attendance  []Attendance `json:"attendance"`
	Signatures  []Signature  `json:"signatures"`
	Orders      []Order      `json:"orders"`
	Assessments []Assessment `json:"assessments"`
}

// The states of a member of staff in the coverage grid.
const (
	// StatusGated: record access closed for training now.
	StatusGated = "gated"
	// StatusWarned: something owed that does not close access yet.
	StatusWarned = "warned"
	// StatusCurrent: nothing owed.
	StatusCurrent = "current"
)

// Statuses lists the states of the coverage grid.
var Statuses = []string{StatusGated, StatusWarned, StatusCurrent}

// CoverageRow is a member of staff in the coverage grid.
type CoverageRow struct {
	UserID      string   `json:"user_id"`
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	Department  string   `json:"department,omitempty"`
	Roles       []string `json:"roles"`
	Status      string   `json:"status"`
	Standing    Standing `json:"standing"`
}

// Summary is the register's figures now, for the dashboard: of the active
// staff, how many owe nothing (coverage), how many are overdue for the
// twice-yearly training, how many are warned and how many gated.
type Summary struct {
	At           time.Time  `json:"at"`
	Enforced     bool       `json:"enforced"`
	EnforcedFrom *time.Time `json:"enforced_from,omitempty"`
	Settings     Settings   `json:"settings"`
	Staff        int        `json:"staff"`
	Current      int        `json:"current"`
	Overdue      int        `json:"overdue"`
	Warned       int        `json:"warned"`
	Gated        int        `json:"gated"`
	// Coverage is Current as a percentage of Staff (100 for no staff).
	Coverage int `json:"coverage"`
	// OpenOrders counts the open retraining orders.
	OpenOrders int `json:"open_orders"`
}

// CoverageQuery filters the coverage grid.
type CoverageQuery struct {
	Department string
	Status     string
}

func status(st Standing) string {
	switch {
	case st.Gated:
		return StatusGated
	case st.Warned:
		return StatusWarned
	}
	return StatusCurrent
}

// coverage is every active member of staff's standing now.
func (s *Service) coverage(ctx context.Context, snap *snapshot, now time.Time) ([]CoverageRow, error) {
	out := []CoverageRow{}
	for _, m := range snap.staff {
		if !m.Active || !staffMember(m.Roles) {
			continue
		}
		st := evaluate(&snap.rules, snap.facts[m.ID], m.Roles, now)
		out = append(out, CoverageRow{UserID: m.ID, Username: m.Username, DisplayName: m.DisplayName, Department: m.Department,
			Roles: m.Roles, Status: status(st), Standing: st})
	}
	return out, nil
}

// Coverage lists every active member of staff with their standing now —
// the coverage grid, overdue marked (training.read).
func (s *Service) Coverage(ctx context.Context, call *medguard.Call, q CoverageQuery) ([]CoverageRow, error) {
	if q.Status != "" && !slices.Contains(Statuses, q.Status) {
		return nil, medguard.InvalidField("status", "status must be one of %s", strings.Join(Statuses, ", "))
	}
	var out []CoverageRow
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.coverage",
		Resource: policy.Resource{Type: "training"}}, func(policy.Decision) (audit.Mutation, error) {
		snap, err := s.current(ctx)
		if err != nil {
			return nil, err
		}
		all, err := s.coverage(ctx, snap, s.clock.Now())
		if err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(all, func(r CoverageRow) bool {
			return q.Department != "" && r.Department != q.Department || q.Status != "" && r.Status != q.Status
		})
		return nil, nil
	})
	return out, err
}

// Summarise returns the register's figures now (training.read).
func (s *Service) Summarise(ctx context.Context, call *medguard.Call) (*Summary, error) {
	now := s.clock.Now()
	sum := &Summary{At: now}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.summary",
		Resource: policy.Resource{Type: "training"}}, func(policy.Decision) (audit.Mutation, error) {
		snap, err := s.current(ctx)
		if err != nil {
			return nil, err
		}
		rows, err := s.coverage(ctx, snap, now)
		if err != nil {
			return nil, err
		}
		sum.Settings = snap.rules.settings
		if from := snap.rules.enforcedFrom(); !from.IsZero() {
			sum.EnforcedFrom, sum.Enforced = ptr(from), !now.Before(from)
		}
		for _, r := range rows {
			sum.Staff++
			switch r.Status {
			case StatusGated:
				sum.Gated++
			case StatusWarned:
				sum.Warned++
			default:
				sum.Current++
			}
			if r.Standing.Overdue {
				sum.Overdue++
			}
		}
		sum.Coverage = 100
		if sum.Staff > 0 {
			sum.Coverage = sum.Current * 100 / sum.Staff
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM training_orders o WHERE o.cancelled_at IS NULL AND NOT EXISTS (
			SELECT 1 FROM training_attendance a JOIN training_sessions s ON s.id = a.session_id WHERE a.user_id = o.user_id
			AND s.course_id = o.course_id AND a.passed = 1 AND s.held_at > o.ordered_at)`).Scan(&n); err != nil {
			return nil, err
		}
		sum.OpenOrders = n
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// record reads a member of staff's training record.
func (s *Service) record(ctx context.Context, m identity.StaffMember) (*Record, error) {
	snap, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	r := &Record{UserID: m.ID, Username: m.Username, DisplayName: m.DisplayName, Department: m.Department, Roles: m.Roles,
		Active: m.Active}
	r.Standing = evaluate(&snap.rules, snap.facts[m.ID], m.Roles, s.clock.Now())
	if r.Attendance, err = s.attendance(ctx, `a.user_id = $1`, m.ID); err != nil {
		return nil, err
	}
	if r.Signatures, err = s.signatures(ctx, `user_id = $1`, m.ID); err != nil {
		return nil, err
	}
	if r.Orders, err = s.orders(ctx, `o.user_id = $1`, m.ID); err != nil {
		return nil, err
	}
	if r.Assessments, err = s.assessments(ctx, `user_id = $1`, m.ID); err != nil {
		return nil, err
	}
	return r, nil
}

// PersonRecord returns a member of staff's training record
// (training.read).
func (s *Service) PersonRecord(ctx context.Context, call *medguard.Call, userID string) (*Record, error) {
	snap, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	m, ok := snap.member(userID)
	if !ok && medguard.ValidID(userID) {
		if err := s.Load(ctx); err != nil {
			return nil, err
		}
		m, ok = s.snap.Load().member(userID)
	}
	if !ok {
		return nil, s.missing(ctx, call, policy.TrainingRead, "training.record_read", "user", userID, errNoStaff)
	}
	var r *Record
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.record_read",
		Resource: policy.Resource{Type: "user", ID: m.ID}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		r, err = s.record(ctx, m)
		return nil, err
	})
	return r, err
}

// MyRecord returns the caller's own training record (training.self:
// every member of staff, for themselves).
func (s *Service) MyRecord(ctx context.Context, call *medguard.Call) (*Record, error) {
	var r *Record
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingSelf, AuditAction: "training.record_read",
		Resource: selfResource(call, "user")}, func(policy.Decision) (audit.Mutation, error) {
		snap, err := s.current(ctx)
		if err != nil {
			return nil, err
		}
		m, ok := snap.member(call.Actor.ID)
		if !ok {
			// Someone created since the snapshot: as the gate judges them.
			m = identity.StaffMember{ID: call.Actor.ID, Username: call.Actor.Name, Department: call.Actor.Department,
				Roles: call.Actor.Roles, Active: true}
		}
		m.Roles = call.Actor.Roles
		r, err = s.record(ctx, m)
		return nil, err
	})
	return r, err
}

// GetSettings returns the hospital's training rules (training.read).
func (s *Service) GetSettings(ctx context.Context, call *medguard.Call) (*Settings, error) {
	var st Settings
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.settings_read",
		Resource: policy.Resource{Type: "training_settings"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		st, err = s.settings(ctx)
		return nil, err
	})
	return &st, err
}

// SetSettings changes the hospital's training rules (training.manage):
// the training period (30 to 366 days; twice a year is 182), the grace
// period (0 to 60 days) and the assessment's pass mark (1 to 100).
func (s *Service) SetSettings(ctx context.Context, call *medguard.Call, in Settings) (*Settings, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	switch {
	case in.PeriodDays < 30 || in.PeriodDays > 366:
		return nil, medguard.InvalidField("period_days", "period_days must be between 30 and 366 (twice a year: 182)")
	case in.GraceDays < 0 || in.GraceDays > 60:
		return nil, medguard.InvalidField("grace_days", "grace_days must be between 0 and 60")
	case in.AssessmentPassMark < 1 || in.AssessmentPassMark > 100:
		return nil, medguard.InvalidField("assessment_pass_mark", "assessment_pass_mark must be between 1 and 100")
	}
	out := Settings{PeriodDays: in.PeriodDays, GraceDays: in.GraceDays, AssessmentPassMark: in.AssessmentPassMark,
		ChangedBy: call.Actor.Name, ChangedAt: &now}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.settings_set",
		Resource: policy.Resource{Type: "training_settings"}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE training_settings SET period_days = $1, grace_days = $2, assessment_pass_mark = $3,
				changed_by = $4, changed_at = $5 WHERE id = 1`, out.PeriodDays, out.GraceDays, out.AssessmentPassMark, out.ChangedBy,
				medguard.Millis(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				return nil
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO training_settings (id, period_days, grace_days, assessment_pass_mark, changed_by,
				changed_at) VALUES (1, $1, $2, $3, $4, $5)`, out.PeriodDays, out.GraceDays, out.AssessmentPassMark, out.ChangedBy,
				medguard.Millis(now))
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return &out, nil
}

// OverdueRule is the detection rule of the alerts raised for training a
// member of staff owes (the alert's key is their user id).
const OverdueRule = "training_overdue"

// OverdueNotice is an obligation announced once: due (the person is
// warned) or closing their record access now (Gating).
type OverdueNotice struct {
	UserID, Username, Department string
	Obligation                   Obligation
}

// OnOverdue adds a hook told once of every obligation that falls due and
// again when it closes record access (the detection engine raises an
// alert).
func (s *Service) OnOverdue(hook func(context.Context, OverdueNotice)) { s.onOverdue.Add(hook) }

// OnCleared adds a hook told of a member of staff (their user id) who owes
// nothing due any more, after having been announced (the detection
// engine resolves the alerts).
func (s *Service) OnCleared(hook func(context.Context, string)) { s.onCleared.Add(hook) }

// noticeKey names an obligation's notice: its kind, what it is about, when
// it fell due, and whether it is the warning or the closing.
func noticeKey(o Obligation) string {
	stage := "due"
	if o.Gating {
		stage = "gated"
	}
	about := o.CourseID
	switch {
	case o.OrderID != "":
		about = o.OrderID
	case o.LetterVersion > 0:
		about = fmt.Sprintf("v%d", o.LetterVersion)
	}
	return fmt.Sprintf("%s:%s:%s:%d", stage, o.Kind, about, medguard.Millis(o.DueAt))
}

// CheckOverdue announces, once, every obligation of an active member of
// staff that fell due (they are warned; their record access closes at
// GatesAt) and every one that closes their access now: each is logged
// (training.overdue, training.access_closed, as medguard) and passed to
// the OnOverdue hooks — once also when several servers check at the same
// time (the notice is claimed in the database). Members of staff who owe
// nothing due any more are cleared (training.notice_cleared, OnCleared).
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueNotice, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	snap, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	announced := map[string]map[string]bool{}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, notice_key FROM training_notices`)
	if err != nil {
		return nil, medguard.Wrap("training.CheckOverdue", err)
	}
	for rows.Next() {
		var uid, key string
		if err := rows.Scan(&uid, &key); err != nil {
			rows.Close()
			return nil, medguard.Wrap("training.CheckOverdue", err)
		}
		if announced[uid] == nil {
			announced[uid] = map[string]bool{}
		}
		announced[uid][key] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("training.CheckOverdue", err)
	}
	type notice struct {
		OverdueNotice
		key string
	}
	var due []notice
	var cleared []string
	for _, m := range snap.staff {
		if !m.Active || !staffMember(m.Roles) {
			continue
		}
		st := evaluate(&snap.rules, snap.facts[m.ID], m.Roles, now)
		owes := false
		for _, o := range st.Obligations {
			if o.DueAt.After(now) {
				continue
			}
			owes = true
			if k := noticeKey(o); !announced[m.ID][k] {
				due = append(due, notice{OverdueNotice{UserID: m.ID, Username: m.Username, Department: m.Department, Obligation: o}, k})
			}
		}
		if !owes && len(announced[m.ID]) > 0 {
			cleared = append(cleared, m.ID)
		}
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(n notice) gate.Event {
		call := system
		action := "training.overdue"
		if n.Obligation.Gating {
			action = "training.access_closed"
		}
		return gate.Event{Call: &call, Action: action, TargetType: "user", TargetID: n.UserID, Allowed: true,
			Rule: "allow.system.deadline:training_" + n.Obligation.Kind}
	}, func(ctx context.Context, tx *sql.Tx, n notice) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO training_notices (user_id, notice_key, notified_at) VALUES ($1, $2, $3)`,
			n.UserID, n.key, medguard.Millis(now))
		if storage.IsConflict(err) {
			return gate.ErrAnnounced
		}
		return err
	})
	out := make([]OverdueNotice, 0, len(fresh))
	for _, n := range fresh {
		out = append(out, n.OverdueNotice)
	}
	s.onOverdue.Tell(ctx, out...)
	if err != nil {
		return out, err
	}
	gone, err := gate.Announce(ctx, s.gate, cleared, func(uid string) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "training.notice_cleared", TargetType: "user", TargetID: uid, Allowed: true,
			Rule: "allow.system.training_done"}
	}, func(ctx context.Context, tx *sql.Tx, uid string) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM training_notices WHERE user_id = $1`, uid)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	s.onCleared.Tell(ctx, gone...)
	return out, err
}

// settle clears, after one of the register's writes, the notices of a
// member of staff who owes nothing due any more (best effort: Run's
// check does it otherwise).
func (s *Service) settle(ctx context.Context, userID string) {
	snap := s.snap.Load()
	if snap == nil {
		return
	}
	m, ok := snap.member(userID)
	if !ok {
		return
	}
	now := s.clock.Now()
	for _, o := range evaluate(&snap.rules, snap.facts[m.ID], m.Roles, now).Obligations {
		if !o.DueAt.After(now) {
			return
		}
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM training_notices WHERE user_id = $1`, userID).Scan(&n); err != nil || n == 0 {
		return
	}
	s.CheckOverdue(context.WithoutCancel(ctx))
}

// Run reloads the snapshot (the writes of other servers) and checks for
// overdue training at once and then every interval until ctx ends,
// passing failures to onError (may be nil). The interval bounds how long
// another server's write takes to reach this server's gate.
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		if err := s.Load(ctx); err != nil {
			return err
		}
		if _, err := s.CheckOverdue(ctx); err != nil {
			return err
		}
		_, err := s.CheckAssessmentDue(ctx)
		return err
	}, onError)
}

// Standings is every active member of staff's standing now — the coverage
// grid — read without a gate passage, for the compliance checks, which
// show it only through their own audited passages.
func (s *Service) Standings(ctx context.Context) ([]CoverageRow, error) {
	snap, err := s.current(ctx)
	if err != nil {
		return nil, medguard.Wrap("training.Standings", err)
	}
	return s.coverage(ctx, snap, s.clock.Now())
}
