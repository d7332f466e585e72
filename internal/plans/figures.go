package plans

import (
	"context"
	"time"

	"medguard"
)

// DrillsHeld counts the drills held in [from, to) and those passed: a
// figure for the posture reports (internal/reports), which are themselves
// gated and audited.
func (s *Service) DrillsHeld(ctx context.Context, from, to time.Time) (held, passed int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(passed), 0) FROM drills WHERE held_at >= $1 AND held_at < $2`,
		medguard.Millis(from), medguard.Millis(to)).Scan(&held, &passed)
	return held, passed, medguard.Wrap("plans.DrillsHeld", err)
}
