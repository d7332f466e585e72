package approvals

import (
	"context"
	"database/sql"
	"errors"

	"medguard"
)

// StatusOf returns the status of a request (pending, approved, refused,
// cancelled, expired) for a capability whose own object waits on it (an
// export waits on its exports.bulk request). It reveals no text of the
// request, and the caller is itself inside a gated operation.
func (s *Service) StatusOf(ctx context.Context, id string) (string, error) {
	if !medguard.ValidID(id) {
		return "", errNoApproval
	}
	var status string
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT status, expires_at FROM approvals WHERE id = $1`, id).Scan(&status, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNoApproval
	}
	if err != nil {
		return "", medguard.Wrap("approvals.StatusOf", err)
	}
	if status == Pending && !s.clock.Now().Before(medguard.FromMillis(expires)) {
		status = Expired
	}
	return status, nil
}
