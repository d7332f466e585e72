package identity

import (
	"context"
	"time"

	"medguard"
)

// StaffMember is a member of staff as the hospital's registers see them
// (the training register's coverage, say): who, in which department, with
// which roles, active or departed, and since when.
type StaffMember struct {
	ID, Username, DisplayName, Department string
	Roles                                 []string
	Active                                bool
	CreatedAt                             time.Time
}

// Roster returns every account with its roles, in username order. It holds
// no patient data and no credential, and decides nothing: it is read
// without a gate passage, for registers that show it only through their
// own (audited) passages and that decide from it (the training gate).
func (s *Service) Roster(ctx context.Context) ([]StaffMember, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.username, u.display_name, COALESCE(d.code, ''), u.status, u.created_at
		FROM users u LEFT JOIN departments d ON d.id = u.department_id ORDER BY u.username`)
	if err != nil {
		return nil, medguard.Wrap("identity.Roster", err)
	}
	var out []StaffMember
	byID := map[string]int{}
	for rows.Next() {
		var m StaffMember
		var status string
		var created int64
		if err := rows.Scan(&m.ID, &m.Username, &m.DisplayName, &m.Department, &status, &created); err != nil {
			rows.Close()
			return nil, medguard.Wrap("identity.Roster", err)
		}
		m.Active, m.CreatedAt, m.Roles = status == Active, medguard.FromMillis(created), []string{}
		byID[m.ID] = len(out)
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("identity.Roster", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT user_id, role FROM user_roles ORDER BY user_id, role`)
	if err != nil {
		return nil, medguard.Wrap("identity.Roster", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, role string
		if err := rows.Scan(&id, &role); err != nil {
			return nil, medguard.Wrap("identity.Roster", err)
		}
		if i, ok := byID[id]; ok {
			out[i].Roles = append(out[i].Roles, role)
		}
	}
	return out, medguard.Wrap("identity.Roster", rows.Err())
}
