package vulns

import (
	"context"
	"time"

	"medguard"
)

// OpenFigure is a vulnerability open at an instant, as the posture reports
// count it: its severity, when it was first seen and when it is due.
type OpenFigure struct {
	Severity  string
	FirstSeen time.Time
	DueAt     time.Time
}

// OpenAt lists the vulnerabilities open at an instant — seen by then and
// not closed by then (a fix, an accepted exception, a false positive) —
// for the posture reports (internal/reports), which are themselves gated
// and audited. A vulnerability reopened counts as open since it was first
// seen.
func (s *Service) OpenAt(ctx context.Context, at time.Time) ([]OpenFigure, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT severity, first_seen, due_at FROM vulns WHERE first_seen <= $1
		AND (status IN ($2, $3, $4) OR closed_at > $1)`, medguard.Millis(at), StatusNew, StatusConfirmed, StatusFixing)
	if err != nil {
		return nil, medguard.Wrap("vulns.OpenAt", err)
	}
	defer rows.Close()
	var out []OpenFigure
	for rows.Next() {
		var f OpenFigure
		var first, due int64
		if err := rows.Scan(&f.Severity, &first, &due); err != nil {
			return nil, medguard.Wrap("vulns.OpenAt", err)
		}
		f.FirstSeen, f.DueAt = medguard.FromMillis(first), medguard.FromMillis(due)
		out = append(out, f)
	}
	return out, medguard.Wrap("vulns.OpenAt", rows.Err())
}
