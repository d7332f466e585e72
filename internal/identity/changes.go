package identity

import (
	"context"
	"database/sql"
	"time"

	"medguard"
)

// Kinds of change one person makes to another's account.
const (
	ChangeCreated        = "created"
	ChangeRoleGranted    = "role_granted"
	ChangeRoleRevoked    = "role_revoked"
	ChangePasswordReset  = "password_reset"
	ChangeTOTPReset      = "totp_reset"
	ChangeCertificateSet = "certificate_set"
	// ChangeDepartmentMoved is a move to another department.
	ChangeDepartmentMoved = "department_changed"
)

// recordChange notes that by changed user's account (in tx, with the
// change's audit entry). Nobody whose account someone created, changed or
// reset is ever a second person to them: the approvals capability asks
// ChangedBy before an approver decides.
func recordChange(ctx context.Context, tx *sql.Tx, userID, by, change string, now time.Time) error {
	if by == "" || by == userID {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO account_changes (user_id, by_user_id, change, at) VALUES ($1, $2, $3, $4)`,
		userID, by, change, medguard.Millis(now))
	return err
}

// ChangedBy returns the ids of the users who created, changed or reset the
// account of userID ("system" for the accounts medguard made itself is left
// out). It reveals nothing to a caller: the approvals capability uses it
// inside an operation it logs.
func (s *Service) ChangedBy(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT by_user_id FROM account_changes WHERE user_id = $1`, userID)
	if err != nil {
		return nil, medguard.Wrap("identity.ChangedBy", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, medguard.Wrap("identity.ChangedBy", err)
		}
		out = append(out, id)
	}
	return out, medguard.Wrap("identity.ChangedBy", rows.Err())
}
