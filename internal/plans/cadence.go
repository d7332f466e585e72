package plans

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// The drill cadence: a tabletop drill in every calendar quarter, a live
// drill in every half-year (Config), in the hospital's time zone — a
// drill at 23:30 on 31 December in Beijing belongs to the fourth quarter,
// though it is 15:30 in UTC, and one at 00:10 on 1 January to the first.
// The cadence starts with the period in which the first plan was
// published (nothing to drill before). A period that ends without a drill
// of its kind is announced once (drill_cadence_missed); a later drill of
// the kind resolves the announcements.

// months is the length of a kind's period.
func (s *Service) months(kind string) int {
	if kind == Live {
		return s.cfg.LiveMonths
	}
	return s.cfg.TabletopMonths
}

// Period returns the period of a kind of drill that holds t: its name
// (2026-Q4 for a quarter, 2026-H2 for a half-year, 2026-M10 otherwise)
// and its start and end (exclusive), in UTC.
func (s *Service) Period(kind string, t time.Time) (name string, start, end time.Time) {
	n := s.months(kind)
	local := t.In(s.cfg.Location)
	first := (int(local.Month())-1)/n*n + 1
	st := time.Date(local.Year(), time.Month(first), 1, 0, 0, 0, 0, s.cfg.Location)
	switch n {
	case 3:
		name = fmt.Sprintf("%d-Q%d", st.Year(), (first-1)/3+1)
	case 6:
		name = fmt.Sprintf("%d-H%d", st.Year(), (first-1)/6+1)
	default:
		name = fmt.Sprintf("%d-M%02d", st.Year(), first)
	}
	return name, st.UTC(), st.AddDate(0, n, 0).UTC()
}

// Cadence is the state of one kind of drill's cadence now.
type Cadence struct {
	Kind string `json:"kind"`
	// Months is the period's length (3: quarterly, 6: half-yearly).
	Months int `json:"months"`
	// Started is false until a plan is published: no drill is due before.
	Started bool `json:"started"`
	// Period is the current period, from PeriodStart to PeriodEnd.
	Period      string    `json:"period"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	// Done says a drill of the kind was held in the current period.
	Done bool `json:"done"`
	// NextDueAt is when the next drill is due: the current period's end,
	// or — done — the next period's.
	NextDueAt   time.Time  `json:"next_due_at"`
	LastDrillID string     `json:"last_drill_id,omitempty"`
	LastDrillAt *time.Time `json:"last_drill_at,omitempty"`
	// Missed are the periods since the cadence started that ended without
	// a drill of the kind, the most recent first (at most eight).
	Missed []string `json:"missed"`
}

// Status is the drills at a glance: the cadences, the departments flagged
// for retraining, the open and overdue improvement items.
type Status struct {
	Cadence             []Cadence        `json:"cadence"`
	Retraining          []RetrainingFlag `json:"retraining"`
	OpenImprovements    int              `json:"open_improvements"`
	OverdueImprovements int              `json:"overdue_improvements"`
	// Overdue are the overdue improvement items, the most overdue first.
	Overdue []Improvement `json:"overdue"`
}

// maxPeriods bounds how far back the cadence is reckoned.
const maxPeriods = 40

// cadence reckons a kind's cadence at now.
func (s *Service) cadence(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, kind string, now time.Time) (*Cadence, error) {
	c := &Cadence{Kind: kind, Months: s.months(kind), Missed: []string{}}
	c.Period, c.PeriodStart, c.PeriodEnd = s.Period(kind, now)
	c.NextDueAt = c.PeriodEnd
	var first sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MIN(approved_at) FROM plan_versions WHERE approved_at IS NOT NULL`).Scan(&first); err != nil {
		return nil, err
	}
	var last sql.NullInt64
	var lastID string
	err := q.QueryRowContext(ctx, `SELECT id, held_at FROM drills WHERE kind = $1 ORDER BY held_at DESC, id DESC LIMIT 1`, kind).Scan(&lastID, &last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if last.Valid {
		c.LastDrillID, c.LastDrillAt = lastID, ms(last)
	}
	if !first.Valid {
		return c, nil
	}
	c.Started = true
	_, start, _ := s.Period(kind, medguard.FromMillis(first.Int64))
	if back := c.PeriodStart.In(s.cfg.Location).AddDate(0, -maxPeriods*c.Months, 0).UTC(); start.Before(back) {
		start = back
	}
	rows, err := q.QueryContext(ctx, `SELECT held_at FROM drills WHERE kind = $1 AND held_at >= $2 ORDER BY held_at`, kind, medguard.Millis(start))
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			rows.Close()
			return nil, err
		}
		name, _, _ := s.Period(kind, medguard.FromMillis(at))
		held[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.Done = held[c.Period]
	if c.Done {
		_, _, c.NextDueAt = s.Period(kind, c.PeriodEnd)
	}
	for t := start; t.Before(c.PeriodStart); {
		name, _, end := s.Period(kind, t)
		if !held[name] {
			c.Missed = append(c.Missed, name)
		}
		t = end
	}
	slices.Reverse(c.Missed)
	if len(c.Missed) > 8 {
		c.Missed = c.Missed[:8]
	}
	return c, nil
}

// Status reads the drills at a glance (plan.read).
func (s *Service) Status(ctx context.Context, call *medguard.Call) (*Status, error) {
	now := s.clock.Now()
	st := &Status{Cadence: []Cadence{}, Overdue: []Improvement{}}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanRead, AuditAction: "drill.status",
		Resource: policy.Resource{Type: "drill"}}, func(policy.Decision) (audit.Mutation, error) {
		for _, kind := range DrillKinds {
			c, err := s.cadence(ctx, s.db, kind, now)
			if err != nil {
				return nil, err
			}
			st.Cadence = append(st.Cadence, *c)
		}
		var err error
		if st.Retraining, err = s.RetrainingNeeded(ctx); err != nil {
			return nil, err
		}
		ims, err := s.improvements(ctx, `status = $1`, ImprovementOpen)
		if err != nil {
			return nil, err
		}
		st.OpenImprovements = len(ims)
		for _, im := range ims {
			if im.Overdue {
				st.OverdueImprovements++
				st.Overdue = append(st.Overdue, im)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// keepCadence, within the transaction recording a drill of kind, resolves
// the announced missed periods of the kind and returns their alerts' keys.
func (s *Service) keepCadence(ctx context.Context, tx *sql.Tx, kind string, held, now time.Time) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT period FROM drill_cadence WHERE kind = $1 AND resolved_at IS NULL ORDER BY period`, kind)
	if err != nil {
		return nil, err
	}
	var keys []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, CadenceKey(kind, p))
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(keys) == 0 {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE drill_cadence SET resolved_at = $1 WHERE kind = $2 AND resolved_at IS NULL`, medguard.Millis(now), kind)
	return keys, err
}

// CadenceKey is the key of a missed period's alert: the kind and the
// period, e.g. tabletop-2026-Q3.
func CadenceKey(kind, period string) string { return kind + "-" + period }

// The detection rules of the alerts this package's announcements raise
// (the App raises them with Detect.RaiseNotice).
const (
	// PlanReviewOverdueRule: a published plan's yearly review is overdue
	// (key: the plan's id).
	PlanReviewOverdueRule = "plan_review_overdue"
	// ImprovementOverdueRule: a drill's improvement item is overdue (key:
	// the item's id).
	ImprovementOverdueRule = "drill_improvement_overdue"
	// CadenceMissedRule: a period ended without a drill of its kind (key:
	// CadenceKey).
	CadenceMissedRule = "drill_cadence_missed"
	// RetrainingRule: a department failed two drills in a row (key: the
	// department's code).
	RetrainingRule = "drill_retraining_needed"
)

// OverduePlanReview is a published plan whose yearly review is overdue,
// announced once for each due date.
type OverduePlanReview struct {
	PlanID string
	Title  string
	DueAt  time.Time
}

// OverdueImprovement is an improvement item past its due date, announced
// once.
type OverdueImprovement struct {
	ImprovementID, DrillID, Owner string
	DueAt                         time.Time
}

// MissedCadence is a period that ended without a drill of its kind,
// announced once.
type MissedCadence struct {
	Kind, Period string
	Start, End   time.Time
}

// Key is its alert's key.
func (m MissedCadence) Key() string { return CadenceKey(m.Kind, m.Period) }

type hooks struct {
	planOverdue        []func(context.Context, OverduePlanReview)
	planReviewed       []func(context.Context, Plan)
	improvementOverdue []func(context.Context, OverdueImprovement)
	improvementDone    []func(context.Context, Improvement)
	cadenceMissed      []func(context.Context, MissedCadence)
	cadenceKept        []func(ctx context.Context, kind string, keys []string)
	retraining         []func(context.Context, RetrainingFlag)
	retrained          []func(context.Context, RetrainingFlag)
}

// OnPlanReviewOverdue adds a hook told once of every plan whose yearly
// review becomes overdue (the App raises an alert).
func (s *Service) OnPlanReviewOverdue(h func(context.Context, OverduePlanReview)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.planOverdue = append(s.hooks.planOverdue, h)
}

// OnPlanReviewed adds a hook told of every plan reviewed yearly or
// published anew (the App resolves its overdue alert).
func (s *Service) OnPlanReviewed(h func(context.Context, Plan)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.planReviewed = append(s.hooks.planReviewed, h)
}

// OnImprovementOverdue adds a hook told once of every improvement item
// that becomes overdue.
func (s *Service) OnImprovementOverdue(h func(context.Context, OverdueImprovement)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.improvementOverdue = append(s.hooks.improvementOverdue, h)
}

// OnImprovementDone adds a hook told of every improvement item closed.
func (s *Service) OnImprovementDone(h func(context.Context, Improvement)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.improvementDone = append(s.hooks.improvementDone, h)
}

// OnCadenceMissed adds a hook told once of every period that ended
// without a drill of its kind.
func (s *Service) OnCadenceMissed(h func(context.Context, MissedCadence)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.cadenceMissed = append(s.hooks.cadenceMissed, h)
}

// OnCadenceKept adds a hook told, when a drill is recorded, of the keys
// of its kind's missed periods it resolves.
func (s *Service) OnCadenceKept(h func(ctx context.Context, kind string, keys []string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.cadenceKept = append(s.hooks.cadenceKept, h)
}

// OnRetrainingNeeded adds a hook told once of every department flagged
// for retraining: it failed two drills in a row (the App raises an alert;
// the training register may order the retraining).
func (s *Service) OnRetrainingNeeded(h func(context.Context, RetrainingFlag)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.retraining = append(s.hooks.retraining, h)
}

// OnRetrained adds a hook told of every department whose flag a passed
// drill cleared.
func (s *Service) OnRetrained(h func(context.Context, RetrainingFlag)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.retrained = append(s.hooks.retrained, h)
}

func (s *Service) copyHooks() hooks {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks
	h.planOverdue, h.planReviewed = slices.Clone(h.planOverdue), slices.Clone(h.planReviewed)
	h.improvementOverdue, h.improvementDone = slices.Clone(h.improvementOverdue), slices.Clone(h.improvementDone)
	h.cadenceMissed, h.cadenceKept = slices.Clone(h.cadenceMissed), slices.Clone(h.cadenceKept)
	h.retraining, h.retrained = slices.Clone(h.retraining), slices.Clone(h.retrained)
	return h
}

func (s *Service) planReviewed(ctx context.Context, p Plan) {
	for _, h := range s.copyHooks().planReviewed {
		h(ctx, p)
	}
}

func (s *Service) improvementDone(ctx context.Context, im Improvement) {
	for _, h := range s.copyHooks().improvementDone {
		h(ctx, im)
	}
}

func (s *Service) announceRecorded(ctx context.Context, kind string, kept []string, flagged, cleared []RetrainingFlag) {
	h := s.copyHooks()
	if len(kept) > 0 {
		for _, f := range h.cadenceKept {
			f(ctx, kind, kept)
		}
	}
	for _, fl := range flagged {
		for _, f := range h.retraining {
			f(ctx, fl)
		}
	}
	for _, cl := range cleared {
		for _, f := range h.retrained {
			f(ctx, cl)
		}
	}
}

// system is medguard itself, announcing what fell due.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// CheckOverdue announces, once each, the published plans whose yearly
// review is overdue (plan.review_overdue), the improvement items past
// their due date (drill.improvement_overdue) and the periods of the
// cadence that ended without a drill of their kind in the last year
// (drill.cadence_missed), as the system, and passes them to their hooks —
// also when several servers check at the same time (each notice is claimed
// in the database).
func (s *Service) CheckOverdue(ctx context.Context) error {
	now := s.clock.Now().Truncate(time.Millisecond)
	h := s.copyHooks()
	var errs []error

	// Plans' yearly reviews.
	var plans []OverduePlanReview
	err := scan(ctx, s.db, `SELECT id, title, review_due_at FROM plans WHERE published_version > 0 AND review_due_at <= $1
		AND review_notified_at IS NULL ORDER BY review_due_at, id`, []any{medguard.Millis(now)}, func(rows *sql.Rows) error {
		var o OverduePlanReview
		var at int64
		if err := rows.Scan(&o.PlanID, &o.Title, &at); err != nil {
			return err
		}
		o.DueAt = medguard.FromMillis(at)
		plans = append(plans, o)
		return nil
	})
	errs = append(errs, err)
	fresh, err := gate.Announce(ctx, s.gate, plans, func(o OverduePlanReview) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "plan.review_overdue", TargetType: "plan", TargetID: o.PlanID, Allowed: true,
			Rule: "allow.system.deadline:plan_review_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverduePlanReview) error {
		res, err := tx.ExecContext(ctx, `UPDATE plans SET review_notified_at = $1 WHERE id = $2 AND review_notified_at IS NULL
			AND review_due_at = $3`, medguard.Millis(now), o.PlanID, medguard.Millis(o.DueAt))
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	errs = append(errs, err)
	for _, o := range fresh {
		for _, f := range h.planOverdue {
			f(ctx, o)
		}
	}

	// Improvement items.
	var items []OverdueImprovement
	err = scan(ctx, s.db, `SELECT id, drill_id, owner, due_at FROM drill_improvements WHERE status = $1 AND due_at <= $2
		AND notified_at IS NULL ORDER BY due_at, id`, []any{ImprovementOpen, medguard.Millis(now)}, func(rows *sql.Rows) error {
		var o OverdueImprovement
		var at int64
		if err := rows.Scan(&o.ImprovementID, &o.DrillID, &o.Owner, &at); err != nil {
			return err
		}
		o.DueAt = medguard.FromMillis(at)
		items = append(items, o)
		return nil
	})
	errs = append(errs, err)
	freshItems, err := gate.Announce(ctx, s.gate, items, func(o OverdueImprovement) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "drill.improvement_overdue", TargetType: "drill", TargetID: o.DrillID, Allowed: true,
			Rule: "allow.system.deadline:drill_improvement_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverdueImprovement) error {
		res, err := tx.ExecContext(ctx, `UPDATE drill_improvements SET notified_at = $1 WHERE id = $2 AND notified_at IS NULL
			AND status = $3`, medguard.Millis(now), o.ImprovementID, ImprovementOpen)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	errs = append(errs, err)
	for _, o := range freshItems {
		for _, f := range h.improvementOverdue {
			f(ctx, o)
		}
	}

	// The cadence: periods that ended in the last year without a drill.
	var missed []MissedCadence
	for _, kind := range DrillKinds {
		c, err := s.cadence(ctx, s.db, kind, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range c.Missed {
			m := MissedCadence{Kind: kind, Period: p}
			_, m.Start, m.End = s.periodNamed(kind, p, c)
			if m.End.After(now.AddDate(-1, 0, 0)) {
				missed = append(missed, m)
			}
		}
	}
	freshMissed, err := gate.Announce(ctx, s.gate, missed, func(m MissedCadence) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "drill.cadence_missed", TargetType: "drill_cadence", TargetID: m.Key(), Allowed: true,
			Rule: "allow.system.deadline:drill_cadence"}
	}, func(ctx context.Context, tx *sql.Tx, m MissedCadence) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO drill_cadence (kind, period, notified_at) VALUES ($1, $2, $3)`, m.Kind, m.Period,
			medguard.Millis(now))
		if storage.IsConflict(err) {
			return gate.ErrAnnounced
		}
		return err
	})
	errs = append(errs, err)
	for _, m := range freshMissed {
		for _, f := range h.cadenceMissed {
			f(ctx, m)
		}
	}
	for _, err := range errs {
		if err != nil {
			return medguard.Wrap("plans.CheckOverdue", err)
		}
	}
	return nil
}

// periodNamed finds the start and end of a missed period of c by name.
func (s *Service) periodNamed(kind, name string, c *Cadence) (string, time.Time, time.Time) {
	t := c.PeriodStart
	for range maxPeriods + 1 {
		t = t.Add(-time.Hour) // into the period before
		n, start, end := s.Period(kind, t)
		if n == name {
			return n, start, end
		}
		t = start
	}
	return name, time.Time{}, time.Time{}
}

// scan runs query and calls each for every row.
func scan(ctx context.Context, db *storage.DB, query string, args []any, each func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Run checks what fell due at once and then every interval until ctx
// ends, passing failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, s.CheckOverdue, onError)
}

// PastReview lists the published plans whose yearly review is past due at
// now, and Cadences each kind of drill's cadence now — read without a gate
// passage, for the compliance checks, which show them only through their
// own audited passages.
func (s *Service) PastReview(ctx context.Context, now time.Time) ([]OverduePlanReview, error) {
	var out []OverduePlanReview
	err := scan(ctx, s.db, `SELECT id, title, review_due_at FROM plans WHERE published_version > 0 AND review_due_at <= $1
		ORDER BY review_due_at, id`, []any{medguard.Millis(now)}, func(rows *sql.Rows) error {
		var o OverduePlanReview
		var at int64
		if err := rows.Scan(&o.PlanID, &o.Title, &at); err != nil {
			return err
		}
		o.DueAt = medguard.FromMillis(at)
		out = append(out, o)
		return nil
	})
	return out, medguard.Wrap("plans.PastReview", err)
}

// Cadences is each kind of drill's cadence now (see PastReview).
func (s *Service) Cadences(ctx context.Context) ([]Cadence, error) {
	now := s.clock.Now()
	var out []Cadence
	for _, kind := range DrillKinds {
		c, err := s.cadence(ctx, s.db, kind, now)
		if err != nil {
			return nil, medguard.Wrap("plans.Cadences", err)
		}
		out = append(out, *c)
	}
	return out, nil
}
