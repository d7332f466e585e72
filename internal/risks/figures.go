package risks

import (
	"context"
	"time"

	"medguard"
)

// LevelsAt counts the risks open at an instant, by level, as their history
// stood then (the last event by then: a closing removes the risk): a
// figure for the posture reports (internal/reports), which are themselves
// gated and audited.
func (s *Service) LevelsAt(ctx context.Context, at time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.kind, e.likelihood, e.impact FROM risk_events e WHERE e.at <= $1
		AND e.seq = (SELECT MAX(x.seq) FROM risk_events x WHERE x.risk_id = e.risk_id AND x.at <= $1)`, medguard.Millis(at))
	if err != nil {
		return nil, medguard.Wrap("risks.LevelsAt", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var kind string
		var l, i int
		if err := rows.Scan(&kind, &l, &i); err != nil {
			return nil, medguard.Wrap("risks.LevelsAt", err)
		}
		if kind != EventClosed {
			out[LevelOf(Score(l, i))]++
		}
	}
	return out, medguard.Wrap("risks.LevelsAt", rows.Err())
}
