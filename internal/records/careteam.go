package records

import (
	"context"
	"database/sql"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// CareTeamMember is a member of a patient's care team.
type CareTeamMember struct {
	UserID   string     `json:"user_id"`
	Username string     `json:"username"`
	AddedBy  string     `json:"added_by"`
	AddedAt  time.Time  `json:"added_at"`
	Until    *time.Time `json:"until,omitempty"`
}

// AddCareTeamMember puts a user on a patient's care team, open-ended or until
// a time. The department head of a department holding the patient's data
// decides it; members see all of the patient's records, restricted types
// included.
func (s *Service) AddCareTeamMember(ctx context.Context, call *medguard.Call, patientID, userID string, until *time.Time) (*CareTeamMember, error) {
	pass, err := s.onPatient(ctx, call, policy.CareTeamManage, "careteam.add", patientID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *CareTeamMember
	_, _, err = s.gate.Enter(ctx, pass,
		func(policy.Decision) (audit.Mutation, error) {
			u, err := s.identity.UserByID(ctx, userID)
			if err != nil || u.Status != identity.Active {
				return nil, medguard.InvalidField("user_id", "no active user has this id")
			}
			if until != nil && !until.After(now) {
				return nil, medguard.InvalidField("until", "until must be in the future")
			}
			out = &CareTeamMember{UserID: u.ID, Username: u.Username, AddedBy: call.Actor.Name, AddedAt: now, Until: until}
			var untilMs sql.NullInt64
			if until != nil {
				untilMs = sql.NullInt64{Int64: medguard.Millis(*until), Valid: true}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO care_team (patient_id, user_id, username, added_by, added_at, until_at)
					VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (patient_id, user_id) DO UPDATE SET added_by = excluded.added_by,
					added_at = excluded.added_at, until_at = excluded.until_at, removed_at = NULL, removed_by = NULL`,
					patientID, u.ID, u.Username, call.Actor.Name, medguard.Millis(now), untilMs)
				return err
			}, nil
		})
	return out, err
}

// RemoveCareTeamMember takes a user off a patient's care team (the history
// stays in the audit log).
func (s *Service) RemoveCareTeamMember(ctx context.Context, call *medguard.Call, patientID, userID string) error {
	pass, err := s.onPatient(ctx, call, policy.CareTeamManage, "careteam.remove", patientID)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	_, _, err = s.gate.Enter(ctx, pass,
		func(policy.Decision) (audit.Mutation, error) {
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE care_team SET removed_at = $1, removed_by = $2
					WHERE patient_id = $3 AND user_id = $4 AND removed_at IS NULL`, medguard.Millis(now), call.Actor.Name, patientID, userID)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.NotFound, Message: "the user is not on this care team"})
			}, nil
		})
	return err
}

// ListCareTeam lists a patient's current care team, for those who may read
// the patient.
func (s *Service) ListCareTeam(ctx context.Context, call *medguard.Call, patientID string) ([]CareTeamMember, error) {
	pass, err := s.onPatient(ctx, call, policy.PatientRead, "careteam.list", patientID)
	if err != nil {
		return nil, err
	}
	out := []CareTeamMember{}
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT user_id, username, added_by, added_at, until_at FROM care_team
			WHERE patient_id = $1 AND removed_at IS NULL ORDER BY added_at`, patientID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var m CareTeamMember
			var added int64
			var until sql.NullInt64
			if err := rows.Scan(&m.UserID, &m.Username, &m.AddedBy, &added, &until); err != nil {
				return nil, err
			}
			m.AddedAt = medguard.FromMillis(added)
			if until.Valid {
				t := medguard.FromMillis(until.Int64)
				m.Until = &t
			}
			out = append(out, m)
		}
		return nil, rows.Err()
	})
	return out, err
}
