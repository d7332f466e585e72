package incidents

import (
	"context"
	"time"

	"medguard"
)

// UpheldCases counts, by user id, the accountability cases upheld against
// each member of staff that were decided in [from, to) and not overturned
// on appeal: the incidents factor of the training register's quarterly
// staff assessment.
func (s *Service) UpheldCases(ctx context.Context, from, to time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT subject_user_id, count(*) FROM accountability_cases WHERE outcome = $1
		AND decided_at >= $2 AND decided_at < $3 AND (review_outcome IS NULL OR review_outcome <> $4) GROUP BY subject_user_id`,
		Upheld, medguard.Millis(from), medguard.Millis(to), Overturned)
	if err != nil {
		return nil, medguard.Wrap("incidents.UpheldCases", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, medguard.Wrap("incidents.UpheldCases", err)
		}
		out[id] = n
	}
	return out, medguard.Wrap("incidents.UpheldCases", rows.Err())
}
