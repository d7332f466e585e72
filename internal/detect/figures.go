package detect

import (
	"context"
	"time"

	"medguard"
)

// AlertsByRule counts the alerts raised in [from, to), by rule: a figure
// for the posture reports (internal/reports), which are themselves gated
// and audited; no alert's content leaves here.
func (s *Service) AlertsByRule(ctx context.Context, from, to time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT rule, count(*) FROM detect_alerts WHERE created_at >= $1 AND created_at < $2 GROUP BY rule`,
		medguard.Millis(from), medguard.Millis(to))
	if err != nil {
		return nil, medguard.Wrap("detect.AlertsByRule", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var rule string
		var n int
		if err := rows.Scan(&rule, &n); err != nil {
			return nil, medguard.Wrap("detect.AlertsByRule", err)
		}
		out[rule] = n
	}
	return out, medguard.Wrap("detect.AlertsByRule", rows.Err())
}
