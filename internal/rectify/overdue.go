package rectify

import (
	"context"
	"database/sql"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/storage"
)

// OverdueRule is the detection rule of the alerts raised for an item past
// its deadline with work to do: the alert's key is the item's id.
const OverdueRule = "rectification_overdue"

// OverdueItem is an item past its deadline, announced once for each
// deadline.
type OverdueItem struct {
	ItemID     string
	Title      string
	Department string
	Owner      string
	Severity   string
	DueAt      time.Time
}

// OnOverdue adds a hook told once of every item that becomes overdue (the
// App raises an alert).
func (s *Service) OnOverdue(hook func(context.Context, OverdueItem)) { s.onOverdue.Add(hook) }

// OnDone adds a hook told of every item reported done, or given a
// deadline still to come (the App resolves its overdue alert).
func (s *Service) OnDone(hook func(context.Context, Item)) { s.onDone.Add(hook) }

func (s *Service) done(ctx context.Context, it Item) {
	s.onDone.Tell(ctx, it)
}

// CheckOverdue announces the items past their deadline with work to do
// that were not announced for this deadline: each is logged
// (rectification.overdue, as the system) with an event in its history,
// and passed to the OnOverdue hooks, once — also when several servers
// check at the same time (the notice is claimed in the database).
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueItem, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	rows, err := s.db.QueryContext(ctx, `SELECT id, title, department, owner, severity, due_at FROM rectification_items
		WHERE status IN ('open', 'in_progress', 'reopened') AND due_at <= $1 AND overdue_notified_at IS NULL ORDER BY due_at, id`,
		medguard.Millis(now))
	if err != nil {
		return nil, medguard.Wrap("rectify.CheckOverdue", err)
	}
	var due []OverdueItem
	for rows.Next() {
		var o OverdueItem
		var at int64
		if err := rows.Scan(&o.ItemID, &o.Title, &o.Department, &o.Owner, &o.Severity, &at); err != nil {
			rows.Close()
			return nil, medguard.Wrap("rectify.CheckOverdue", err)
		}
		o.DueAt = medguard.FromMillis(at)
		due = append(due, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("rectify.CheckOverdue", err)
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(o OverdueItem) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "rectification.overdue", TargetType: "rectification", TargetID: o.ItemID, Allowed: true,
			Rule: "allow.system.deadline:rectification_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverdueItem) error {
		res, err := tx.ExecContext(ctx, `UPDATE rectification_items SET overdue_notified_at = $1 WHERE id = $2
			AND overdue_notified_at IS NULL AND due_at = $3 AND status IN ('open', 'in_progress', 'reopened')`,
			medguard.Millis(now), o.ItemID, medguard.Millis(o.DueAt))
		if err := storage.Affected(res, err, gate.ErrAnnounced); err != nil {
			return err
		}
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM rectification_items WHERE id = $1`, o.ItemID).Scan(&status); err != nil {
			return err
		}
		return s.addEvent(ctx, tx, o.ItemID, EventOverdue, system.Actor.Name, now, status, o.Owner, o.DueAt, nil, sealedEvidence{})
	})
	s.onOverdue.Tell(ctx, fresh...)
	return fresh, err
}

// Run checks for overdue items at once and then every interval until ctx
// ends, passing failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CheckOverdue(ctx)
		return err
	}, onError)
}

// announceNow announces at once the items opened or reopened already past
// their deadline (an audit report's deadlines may have passed on
// arrival), rather than at the next periodic check, which retries
// whatever fails here.
func (s *Service) announceNow(ctx context.Context, due time.Time) {
	if s.clock.Now().Before(due) {
		return
	}
	_, _ = s.CheckOverdue(context.WithoutCancel(ctx))
}
