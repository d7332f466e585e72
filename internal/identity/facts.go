package identity

import (
	"context"
	"database/sql"
	"time"

	"medguard"
)

// AccountFacts are what the compliance checks measure of an account: its
// live sessions (of any scope: one good only for enrolling a second
// factor or changing the password is a way in too), last sign-in, second factor, and the roles granted after
// it was deactivated. No credential is read.
type AccountFacts struct {
	StaffMember
	DeactivatedAt       *time.Time
	LiveSessions        int
	LastSignIn          *time.Time
	TOTP                bool
	RolesAfterDeparture []string
}

// KeyFacts are what the compliance checks measure of an API key: who made
// it, whether they are still here, whether it is revoked. No secret is
// read.
type KeyFacts struct {
	ID, Name, Status                        string
	OwnerID, OwnerUsername, OwnerDepartment string
	OwnerActive, Revoked                    bool
}

// AccountFacts returns every account's facts at now. Like Roster it is
// read without a gate passage, for the compliance checks, which show it
// only through their own audited passages.
func (s *Service) AccountFacts(ctx context.Context, now time.Time) ([]AccountFacts, error) {
	staff, err := s.Roster(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]int{}
	out := make([]AccountFacts, len(staff))
	for i, m := range staff {
		out[i].StaffMember = m
		byID[m.ID] = i
	}
	each := func(q string, args []any, scan func(rows *sql.Rows) error) error {
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	err = each(`SELECT id, deactivated_at, totp_enrolled_at FROM users`, nil, func(rows *sql.Rows) error {
		var id string
		var gone, totp sql.NullInt64
		if err := rows.Scan(&id, &gone, &totp); err != nil {
			return err
		}
		if i, ok := byID[id]; ok {
			out[i].DeactivatedAt, out[i].TOTP = optionalTime(gone), totp.Valid
		}
		return nil
	})
	if err == nil {
		err = each(`SELECT user_id, SUM(CASE WHEN ended_at IS NULL AND expires_at > $1 THEN 1 ELSE 0 END), MAX(created_at) FROM sessions
			GROUP BY user_id`, []any{medguard.Millis(now)}, func(rows *sql.Rows) error {
			var id string
			var live int
			var last sql.NullInt64
			if err := rows.Scan(&id, &live, &last); err != nil {
				return err
			}
			if i, ok := byID[id]; ok {
				out[i].LiveSessions, out[i].LastSignIn = live, optionalTime(last)
			}
			return nil
		})
	}
	if err == nil {
		err = each(`SELECT r.user_id, r.role FROM user_roles r JOIN users u ON u.id = r.user_id
			WHERE u.deactivated_at IS NOT NULL AND r.granted_at >= u.deactivated_at ORDER BY r.user_id, r.role`, nil, func(rows *sql.Rows) error {
			var id, role string
			if err := rows.Scan(&id, &role); err != nil {
				return err
			}
			if i, ok := byID[id]; ok {
				out[i].RolesAfterDeparture = append(out[i].RolesAfterDeparture, role)
			}
			return nil
		})
	}
	return out, medguard.Wrap("identity.AccountFacts", err)
}

// KeyFacts returns every API key's facts, read without a gate passage
// like AccountFacts.
func (s *Service) KeyFacts(ctx context.Context) ([]KeyFacts, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT k.id, k.name, k.status, k.created_by, COALESCE(u.username, ''), COALESCE(d.code, ''),
		COALESCE(u.status, ''), k.revoked_at FROM api_keys k LEFT JOIN users u ON u.id = k.created_by
		LEFT JOIN departments d ON d.id = u.department_id ORDER BY k.id`)
	if err != nil {
		return nil, medguard.Wrap("identity.KeyFacts", err)
	}
	defer rows.Close()
	var out []KeyFacts
	for rows.Next() {
		var k KeyFacts
		var status string
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Name, &k.Status, &k.OwnerID, &k.OwnerUsername, &k.OwnerDepartment, &status, &revoked); err != nil {
			return nil, medguard.Wrap("identity.KeyFacts", err)
		}
		k.OwnerActive, k.Revoked = status == Active, revoked.Valid
		out = append(out, k)
	}
	return out, medguard.Wrap("identity.KeyFacts", rows.Err())
}
