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

// CareTeamRequest asks for a user to be put on a patient's care team,
// open-ended or until a time.
type CareTeamRequest struct {
	PatientID string     `json:"patient_id"`
	UserID    string     `json:"user_id"`
	Until     *time.Time `json:"until,omitempty"`
}

// ErrCareTeamApproval says that a care-team membership needs a second
// person: the member is not of the requester's department.
var ErrCareTeamApproval = &medguard.Error{Kind: medguard.Conflict, Code: "approval_required",
	Message: "a member of another department joins a care team through a four-eyes request"}

// AddCareTeamMember puts a user of the caller's own department on the care
// team of a patient the department holds (the department head decides:
// careteam.manage); members see the patient's records in every department
// except restricted ones. Nobody puts themselves on a care team (policy
// rule deny.own_relation), and a member from another department needs a
// second person: that is refused here with ErrCareTeamApproval, and asked
// for through a four-eyes request (package approvals), whose run is
// CareTeamAdd.
func (s *Service) AddCareTeamMember(ctx context.Context, call *medguard.Call, patientID, userID string, until *time.Time) (*CareTeamMember, error) {
	pass, err := s.onPatient(ctx, call, policy.CareTeamManage, "careteam.add", patientID)
	if err != nil {
		return nil, err
	}
	pass.Resource.SubjectUserID = userID
	var out *CareTeamMember
	_, _, err = s.gate.Enter(ctx, pass,
		func(policy.Decision) (audit.Mutation, error) {
			u, err := s.checkCareTeam(ctx, CareTeamRequest{PatientID: patientID, UserID: userID, Until: until})
			if err != nil {
				return nil, err
			}
			if u.Department == "" || u.Department != call.Actor.Department {
				return nil, ErrCareTeamApproval
			}
			var m audit.Mutation
			out, m = s.CareTeamAdd(CareTeamRequest{PatientID: patientID, UserID: userID, Until: until}, u.Username, call.Actor.Name)
			return m, nil
		})
	return out, err
}

// checkCareTeam checks a care-team request and returns the member.
func (s *Service) checkCareTeam(ctx context.Context, in CareTeamRequest) (*identity.User, error) {
	if ok, err := s.patientExists(ctx, in.PatientID); err != nil {
		return nil, medguard.Wrap("records.checkCareTeam", err)
	} else if !ok {
		return nil, medguard.InvalidField("patient_id", "no such patient")
	}
	u, err := s.identity.UserByID(ctx, in.UserID)
	if err != nil || u.Status != identity.Active {
		return nil, medguard.InvalidField("user_id", "no active user has this id")
	}
	if in.Until != nil && !in.Until.After(s.clock.Now()) {
		return nil, medguard.InvalidField("until", "until must be in the future")
	}
	return u, nil
}

// CheckCareTeamRequest checks a four-eyes request for a care-team
// membership across departments (for the approvals capability) and returns
// the member, the patient (whose departments the request concerns) and who
// may approve it: a security officer.
func (s *Service) CheckCareTeamRequest(ctx context.Context, in CareTeamRequest) (*identity.User, policy.Approvers, error) {
	u, err := s.checkCareTeam(ctx, in)
	return u, policy.Approvers{Security: true}, err
}

// CareTeamAdd returns the member and the mutation that puts them on the
// patient's care team, decided by decidedBy.
func (s *Service) CareTeamAdd(in CareTeamRequest, username, decidedBy string) (*CareTeamMember, audit.Mutation) {
	now := s.clock.Now().Truncate(time.Millisecond)
	out := &CareTeamMember{UserID: in.UserID, Username: username, AddedBy: decidedBy, AddedAt: now, Until: in.Until}
	var untilMs sql.NullInt64
	if in.Until != nil {
		untilMs = sql.NullInt64{Int64: medguard.Millis(*in.Until), Valid: true}
	}
	return out, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO care_team (patient_id, user_id, username, added_by, added_at, until_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (patient_id, user_id) DO UPDATE SET added_by = excluded.added_by,
			added_at = excluded.added_at, until_at = excluded.until_at, removed_at = NULL, removed_by = NULL`,
			in.PatientID, in.UserID, username, decidedBy, medguard.Millis(now), untilMs)
		return err
	}
}

// RemoveCareTeamMember takes a user off a patient's care team (the history
// stays in the audit log).
func (s *Service) RemoveCareTeamMember(ctx context.Context, call *medguard.Call, patientID, userID string) error {
	pass, err := s.onPatient(ctx, call, policy.CareTeamManage, "careteam.remove", patientID)
	if err != nil {
		return err
	}
	pass.Resource.SubjectUserID = userID
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

// PatientResource is what the access policy needs to know of a patient
// (the departments holding its data), for an operation another capability
// decides on the patient (a care-team request); an unknown or malformed
// id gives a resource marked missing. It reveals nothing to a caller.
func (s *Service) PatientResource(ctx context.Context, patientID string) (policy.Resource, error) {
	if ok, err := s.patientExists(ctx, patientID); err != nil {
		return policy.Resource{}, medguard.Wrap("records.PatientResource", err)
	} else if !ok {
		return policy.Resource{Type: "patient", Missing: true}, nil
	}
	return s.patientResource(ctx, patientID)
}
