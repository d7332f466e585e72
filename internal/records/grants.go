package records

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// AccessGrant is a time-boxed grant, by a department head, to one user, of
// access to one patient's records in the head's department.
type AccessGrant struct {
	ID         string     `json:"id"`
	PatientID  string     `json:"patient_id"`
	Department string     `json:"department"`
	GranteeID  string     `json:"grantee_id"`
	Grantee    string     `json:"grantee"`
	Reason     string     `json:"reason"`
	GrantedBy  string     `json:"granted_by"`
	StartsAt   time.Time  `json:"starts_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Active     bool       `json:"active"`
}

// NewGrant is a request for an access grant: to the records of the
// patient held by Department (the caller's own, when empty), for the
// grantee, between StartsAt (default now) and ExpiresAt.
type NewGrant struct {
	PatientID  string    `json:"patient_id"`
	GranteeID  string    `json:"grantee_id"`
	Department string    `json:"department,omitempty"`
	Reason     string    `json:"reason"`
	StartsAt   time.Time `json:"starts_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// CheckGrantRequest checks a request for an access grant (for the
// approvals capability: a grant is a four-eyes request) and returns it
// normalised, the grantee, and who may approve it: the head of the
// department whose records it opens, alone — restricted records (精神科,
// HIV …) open only to grants their own department's head approves.
// Anyone who reads records may ask, for themselves or a colleague.
func (s *Service) CheckGrantRequest(ctx context.Context, call *medguard.Call, in NewGrant) (NewGrant, *identity.User, policy.Approvers, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	if in.Department == "" {
		in.Department = call.Actor.Department
	}
	if ok, err := s.patientExists(ctx, in.PatientID); err != nil {
		return in, nil, policy.Approvers{}, err
	} else if !ok {
		return in, nil, policy.Approvers{}, medguard.InvalidField("patient_id", "no such patient")
	}
	dept, err := s.department(ctx, "department", in.Department)
	if err != nil {
		return in, nil, policy.Approvers{}, err
	}
	in.Department = dept
	depts, err := s.patientDepartments(ctx, in.PatientID)
	if err != nil {
		return in, nil, policy.Approvers{}, err
	}
	if !slices.Contains(depts, dept) {
		return in, nil, policy.Approvers{}, medguard.InvalidField("department", "this department holds no data of the patient")
	}
	u, err := s.identity.UserByID(ctx, in.GranteeID)
	if err != nil || u.Status != identity.Active {
		return in, nil, policy.Approvers{}, medguard.InvalidField("grantee_id", "no active user has this id")
	}
	in.Reason = strings.TrimSpace(in.Reason)
	if err := required("reason", in.Reason); err != nil {
		return in, nil, policy.Approvers{}, err
	}
	if err := text("reason", in.Reason, MaxReason, false); err != nil {
		return in, nil, policy.Approvers{}, err
	}
	if in.StartsAt.IsZero() {
		in.StartsAt = now
	}
	switch {
	case in.ExpiresAt.IsZero():
		return in, nil, policy.Approvers{}, medguard.InvalidField("expires_at", "expires_at is required")
	case !in.ExpiresAt.After(in.StartsAt) || !in.ExpiresAt.After(now):
		return in, nil, policy.Approvers{}, medguard.InvalidField("expires_at", "expires_at must be after starts_at and in the future")
	case in.ExpiresAt.Sub(in.StartsAt) > s.cfg.MaxGrant:
		return in, nil, policy.Approvers{}, medguard.InvalidField("expires_at", "a grant may last at most %d days", int(s.cfg.MaxGrant.Hours()/24))
	}
	in.StartsAt, in.ExpiresAt = in.StartsAt.UTC().Truncate(time.Millisecond), in.ExpiresAt.UTC().Truncate(time.Millisecond)
	return in, u, policy.Approvers{Department: dept}, nil
}

// GrantAccess returns the grant and the mutation that stores it, once its
// request is approved by decidedBy (the department's head).
func (s *Service) GrantAccess(ctx context.Context, in NewGrant, grantee, decidedBy string) (*AccessGrant, audit.Mutation, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	k, err := s.keys.Current(ctx, patientOwner(in.PatientID))
	if err != nil {
		return nil, nil, medguard.Wrap("records.GrantAccess", err)
	}
	sealed := k.SealString(loc("access_grants", id, "reason"), in.Reason)
	out := &AccessGrant{ID: id, PatientID: in.PatientID, Department: in.Department, GranteeID: in.GranteeID, Grantee: grantee,
		Reason: in.Reason, GrantedBy: decidedBy, StartsAt: in.StartsAt, ExpiresAt: in.ExpiresAt}
	out.Active = !now.Before(out.StartsAt) && now.Before(out.ExpiresAt)
	return out, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO access_grants (id, patient_id, department, grantee_id, grantee, reason,
			granted_by, starts_at, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			id, in.PatientID, in.Department, in.GranteeID, grantee, sealed, decidedBy, medguard.Millis(out.StartsAt),
			medguard.Millis(out.ExpiresAt), medguard.Millis(now))
		return err
	}, nil
}

const grantColumns = `id, patient_id, department, grantee_id, grantee, reason, granted_by, starts_at, expires_at, revoked_at`

func (s *Service) scanGrant(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*AccessGrant, error) {
	var g AccessGrant
	var reason []byte
	var starts, expires int64
	var revoked sql.NullInt64
	if err := sc.Scan(&g.ID, &g.PatientID, &g.Department, &g.GranteeID, &g.Grantee, &reason, &g.GrantedBy, &starts,
		&expires, &revoked); err != nil {
		return nil, err
	}
	var err error
	if g.Reason, err = s.keys.OpenString(ctx, patientOwner(g.PatientID), loc("access_grants", g.ID, "reason"), reason); err != nil {
		return nil, err
	}
	g.StartsAt, g.ExpiresAt = medguard.FromMillis(starts), medguard.FromMillis(expires)
	if revoked.Valid {
		t := medguard.FromMillis(revoked.Int64)
		g.RevokedAt = &t
	}
	g.Active = !revoked.Valid && !now.Before(g.StartsAt) && now.Before(g.ExpiresAt)
	return &g, nil
}

// ListGrants lists the grants given by the caller's department, newest first.
func (s *Service) ListGrants(ctx context.Context, call *medguard.Call) ([]AccessGrant, error) {
	dept := call.Actor.Department
	r := policy.Resource{Type: "access_grant", Departments: []string{dept}}
	now := s.clock.Now()
	out := []AccessGrant{}
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.GrantManage, "grant.list", r),
		func(policy.Decision) (audit.Mutation, error) {
			rows, err := s.db.QueryContext(ctx, `SELECT `+grantColumns+` FROM access_grants WHERE department = $1
				ORDER BY id DESC LIMIT 500`, dept)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				g, err := s.scanGrant(ctx, rows, now)
				if err != nil {
					return nil, err
				}
				out = append(out, *g)
			}
			return nil, rows.Err()
		})
	return out, err
}

// RevokeGrant ends a grant at once.
func (s *Service) RevokeGrant(ctx context.Context, call *medguard.Call, id string) (*AccessGrant, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var g *AccessGrant
	var err error
	if medguard.ValidID(id) {
		g, err = s.scanGrant(ctx, s.db.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM access_grants WHERE id = $1`, id), now)
	}
	if g == nil || errors.Is(err, sql.ErrNoRows) {
		return nil, s.missing(ctx, call, policy.GrantManage, "access_grant", id,
			&medguard.Error{Kind: medguard.NotFound, Message: "no such grant"})
	}
	if err != nil {
		return nil, medguard.Wrap("records.RevokeGrant", err)
	}
	r := policy.Resource{Type: "access_grant", ID: id, PatientID: g.PatientID, Departments: []string{g.Department}}
	_, _, err = s.gate.Enter(ctx, gatePassage(call, policy.GrantManage, "grant.revoke", r),
		func(policy.Decision) (audit.Mutation, error) {
			if g.RevokedAt != nil {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the grant is already revoked"}
			}
			g.RevokedAt, g.Active = &now, false
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `UPDATE access_grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL`,
					medguard.Millis(now), call.Actor.Name, id)
				return err
			}, nil
		})
	return g, err
}
