package incidents

import (
	"context"
	"time"

	"medguard"
)

// IncidentsByGrade counts the incidents reported in [from, to), by grade:
// a figure for the posture reports (internal/reports), which are
// themselves gated and audited; no incident's text leaves here.
func (s *Service) IncidentsByGrade(ctx context.Context, from, to time.Time) (map[int]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT grade, count(*) FROM incidents WHERE reported_at >= $1 AND reported_at < $2 GROUP BY grade`,
		medguard.Millis(from), medguard.Millis(to))
	if err != nil {
		return nil, medguard.Wrap("incidents.IncidentsByGrade", err)
	}
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var grade, n int
		if err := rows.Scan(&grade, &n); err != nil {
			return nil, medguard.Wrap("incidents.IncidentsByGrade", err)
		}
		out[grade] = n
	}
	return out, medguard.Wrap("incidents.IncidentsByGrade", rows.Err())
}
