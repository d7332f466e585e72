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

// NewGrant is a request for an access grant.
type NewGrant struct {
	PatientID string    `json:"patient_id"`
	GranteeID string    `json:"grantee_id"`
	Reason    string    `json:"reason"`
	StartsAt  time.Time `json:"starts_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateGrant grants a user access to a patient's records in the caller's
// department, from StartsAt (default now) until ExpiresAt.
func (s *Service) CreateGrant(ctx context.Context, call *medguard.Call, in NewGrant) (*AccessGrant, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	dept := call.Actor.Department
	r := policy.Resource{Type: "access_grant", ID: id, PatientID: in.PatientID, Departments: []string{dept}}
	var out *AccessGrant
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.GrantManage, "grant.create", r),
		func(policy.Decision) (audit.Mutation, error) {
			if ok, err := s.patientExists(ctx, in.PatientID); err != nil {
				return nil, err
			} else if !ok {
				return nil, medguard.InvalidField("patient_id", "no such patient")
			}
			depts, err := s.patientDepartments(ctx, in.PatientID)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(depts, dept) {
				return nil, medguard.InvalidField("patient_id", "your department holds no data of this patient")
			}
			u, err := s.identity.UserByID(ctx, in.GranteeID)
			if err != nil || u.Status != identity.Active {
				return nil, medguard.InvalidField("grantee_id", "no active user has this id")
			}
			if u.ID == call.Actor.ID {
				return nil, medguard.InvalidField("grantee_id", "you cannot grant access to yourself")
			}
			reason := strings.TrimSpace(in.Reason)
			if err := required("reason", reason); err != nil {
				return nil, err
			}
			if err := text("reason", reason, MaxReason, false); err != nil {
				return nil, err
			}
			starts := in.StartsAt
			if starts.IsZero() {
				starts = now
			}
			switch {
			case in.ExpiresAt.IsZero():
				return nil, medguard.InvalidField("expires_at", "expires_at is required")
			case !in.ExpiresAt.After(starts) || !in.ExpiresAt.After(now):
				return nil, medguard.InvalidField("expires_at", "expires_at must be after starts_at and in the future")
			case in.ExpiresAt.Sub(starts) > s.cfg.MaxGrant:
				return nil, medguard.InvalidField("expires_at", "a grant may last at most %d days", int(s.cfg.MaxGrant.Hours()/24))
			}
			k, err := s.keys.Current(ctx, patientOwner(in.PatientID))
			if err != nil {
				return nil, medguard.Wrap("records.CreateGrant", err)
			}
			sealed := k.SealString(loc("access_grants", id, "reason"), reason)
			out = &AccessGrant{ID: id, PatientID: in.PatientID, Department: dept, GranteeID: u.ID, Grantee: u.Username,
				Reason: reason, GrantedBy: call.Actor.Name, StartsAt: starts.UTC().Truncate(time.Millisecond),
				ExpiresAt: in.ExpiresAt.UTC().Truncate(time.Millisecond)}
			out.Active = !now.Before(out.StartsAt) && now.Before(out.ExpiresAt)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO access_grants (id, patient_id, department, grantee_id, grantee, reason,
					granted_by, starts_at, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
					id, in.PatientID, dept, u.ID, u.Username, sealed, call.Actor.Name, medguard.Millis(out.StartsAt),
					medguard.Millis(out.ExpiresAt), medguard.Millis(now))
				return err
			}, nil
		})
	return out, err
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
