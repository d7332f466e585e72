package risks

import (
	"context"
	"database/sql"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/storage"
)

// ReviewOverdueRule is the detection rule of the alerts raised for a risk
// whose review fell due unheld: the alert's key is the risk's id.
const ReviewOverdueRule = "risk_review_overdue"

// OverdueReview is an open risk whose review is overdue, announced once
// for each due date.
type OverdueReview struct {
	RiskID string
	Title  string
	Level  string
	Owner  string
	DueAt  time.Time
}

// OnReviewOverdue adds a hook told once of every risk review that becomes
// overdue (the App raises an alert).
func (s *Service) OnReviewOverdue(hook func(context.Context, OverdueReview)) { s.onOverdue.Add(hook) }

// OnReviewed adds a hook told of every risk reviewed or closed (the App
// resolves its overdue alert).
func (s *Service) OnReviewed(hook func(context.Context, Risk)) { s.onReviewed.Add(hook) }

func (s *Service) reviewed(ctx context.Context, r Risk) {
	s.onReviewed.Tell(ctx, r)
}

// system is medguard itself, announcing overdue reviews.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// CheckOverdue announces the open risks whose review is overdue now and
// was not announced for this due date: each is logged
// (risk.review_overdue, as the system) and passed to the OnReviewOverdue
// hooks, once — also when several servers check at the same time (the
// notice is claimed in the database). A review sets a new due date and
// clears the claim.
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueReview, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	rows, err := s.db.QueryContext(ctx, `SELECT id, title, score, owner, review_due_at FROM risks
		WHERE status = $1 AND review_due_at <= $2 AND review_notified_at IS NULL ORDER BY review_due_at, id`,
		Open, medguard.Millis(now))
	if err != nil {
		return nil, medguard.Wrap("risks.CheckOverdue", err)
	}
	var due []OverdueReview
	for rows.Next() {
		var o OverdueReview
		var score int
		var at int64
		if err := rows.Scan(&o.RiskID, &o.Title, &score, &o.Owner, &at); err != nil {
			rows.Close()
			return nil, medguard.Wrap("risks.CheckOverdue", err)
		}
		o.Level, o.DueAt = LevelOf(score), medguard.FromMillis(at)
		due = append(due, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("risks.CheckOverdue", err)
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(o OverdueReview) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "risk.review_overdue", TargetType: "risk", TargetID: o.RiskID, Allowed: true,
			Rule: "allow.system.deadline:risk_review_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverdueReview) error {
		res, err := tx.ExecContext(ctx, `UPDATE risks SET review_notified_at = $1 WHERE id = $2 AND review_notified_at IS NULL
			AND review_due_at = $3 AND status = $4`, medguard.Millis(now), o.RiskID, medguard.Millis(o.DueAt), Open)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	s.onOverdue.Tell(ctx, fresh...)
	return fresh, err
}

// Run checks for overdue reviews at once and then every interval until
// ctx ends, passing failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CheckOverdue(ctx)
		return err
	}, onError)
}

// PastReview lists the open risks whose review date has passed at now,
// announced or not — read without a gate passage, for the compliance
// checks, which show them only through their own audited passages.
func (s *Service) PastReview(ctx context.Context, now time.Time) ([]OverdueReview, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, title, score, owner, review_due_at FROM risks
		WHERE status = $1 AND review_due_at <= $2 ORDER BY review_due_at, id LIMIT 1000`, Open, medguard.Millis(now))
	if err != nil {
		return nil, medguard.Wrap("risks.PastReview", err)
	}
	defer rows.Close()
	var out []OverdueReview
	for rows.Next() {
		var o OverdueReview
		var score int
		var at int64
		if err := rows.Scan(&o.RiskID, &o.Title, &score, &o.Owner, &at); err != nil {
			return nil, medguard.Wrap("risks.PastReview", err)
		}
		o.Level, o.DueAt = LevelOf(score), medguard.FromMillis(at)
		out = append(out, o)
	}
	return out, medguard.Wrap("risks.PastReview", rows.Err())
}
