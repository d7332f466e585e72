package identity

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// User is a member of staff as the API shows them. It never includes the
// password hash or the TOTP secret.
type User struct {
	ID            string     `json:"id"`
	Username      string     `json:"username"`
	DisplayName   string     `json:"display_name"`
	Department    string     `json:"department"` // code, or ""
	DepartmentID  string     `json:"-"`
	Roles         []string   `json:"roles"`
	Status        string     `json:"status"` // active | deactivated
	Frozen        bool       `json:"frozen"`
	TOTPEnrolled  bool       `json:"totp_enrolled"`
	MFARequired   bool       `json:"mfa_required"`
	HasCert       bool       `json:"client_certificate"`
	CreatedAt     time.Time  `json:"created_at"`
	DeactivatedAt *time.Time `json:"deactivated_at,omitempty"`
}

// User statuses.
const (
	Active      = "active"
	Deactivated = "deactivated"
)

// NewUser is a request to create a user.
type NewUser struct {
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	Department  string   `json:"department"`
	Roles       []string `json:"roles"`
	Password    string   `json:"password"`
}

var usernamePattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{2,31}$`)

// CheckUsername validates a username: 3-32 characters, lower-case ASCII
// letters, digits, '.', '_' or '-', starting with a letter.
func CheckUsername(u string) error {
	if !usernamePattern.MatchString(u) {
		return medguard.InvalidField("username", "username must be 3-32 lower-case letters, digits, '.', '_' or '-', starting with a letter")
	}
	return nil
}

func checkRoles(roles []string) error {
	if len(roles) == 0 {
		return medguard.InvalidField("roles", "at least one role is required")
	}
	for _, r := range roles {
		if _, ok := policy.LookupRole(r); !ok {
			return medguard.InvalidField("roles", "unknown role %q", r)
		}
	}
	return nil
}

// CreateUser creates a user with the roles that need no approval, and
// returns the privileged roles it did not grant: each must be granted
// through a four-eyes approval (see package approvals).
func (s *Service) CreateUser(ctx context.Context, call *medguard.Call, nu NewUser) (*User, []string, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	u := &User{ID: medguard.NewID(now), Username: strings.TrimSpace(nu.Username), DisplayName: strings.TrimSpace(nu.DisplayName),
		Status: Active, CreatedAt: now}
	var pending []string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.create",
		Resource: policy.Resource{Type: "user", ID: u.ID}},
		func(policy.Decision) (audit.Mutation, error) {
			if err := CheckUsername(u.Username); err != nil {
				return nil, err
			}
			if err := checkName("display_name", u.DisplayName, 64); err != nil {
				return nil, err
			}
			if err := checkRoles(nu.Roles); err != nil {
				return nil, err
			}
			if nu.Department != "" {
				d, err := s.DepartmentByCode(ctx, nu.Department)
				if err != nil {
					return nil, medguard.InvalidField("department", "no department has this code")
				}
				u.DepartmentID, u.Department = d.ID, d.Code
			}
			if err := CheckPassword(nu.Password, u.Username); err != nil {
				return nil, err
			}
			for _, r := range uniq(nu.Roles) {
				if policy.Privileged(r) {
					pending = append(pending, r)
				} else {
					u.Roles = append(u.Roles, r)
				}
			}
			hash := HashPassword(nu.Password, s.cfg.Argon2)
			u.MFARequired = s.mfaRequired(u.Roles)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, display_name, department_id, password_hash,
					status, password_changed_at, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`,
					u.ID, u.Username, u.DisplayName, storage.NullString(u.DepartmentID), hash, Active, medguard.Millis(now), call.Actor.ID)
				if storage.IsConflict(err) {
					return &medguard.Error{Kind: medguard.Conflict, Field: "username", Message: "a user with this username exists"}
				}
				if err != nil {
					return err
				}
				for _, r := range u.Roles {
					if err := insertRole(ctx, tx, u.ID, r, call.Actor.ID, "", now); err != nil {
						return err
					}
				}
				return nil
			}, nil
		})
	if err != nil {
		return nil, nil, err
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	return u, pending, nil
}

func uniq(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

func insertRole(ctx context.Context, tx *sql.Tx, userID, role, by, approvalID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO user_roles (user_id, role, granted_at, granted_by, approval_id)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, role) DO NOTHING`,
		userID, role, medguard.Millis(now), by, storage.NullString(approvalID))
	return err
}

// mfaRequired reports whether any of roles must use a second factor.
func (s *Service) mfaRequired(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(s.cfg.MFARoles, r) {
			return true
		}
	}
	return false
}

const userColumns = `u.id, u.username, u.display_name, COALESCE(d.code, ''), COALESCE(u.department_id, ''), u.status,
	u.frozen_at, u.totp_enrolled_at, u.cert_fingerprint, u.created_at, u.deactivated_at`

const userFrom = ` FROM users u LEFT JOIN departments d ON d.id = u.department_id`

func scanUser(sc interface{ Scan(...any) error }) (*User, error) {
	var u User
	var frozen, enrolled, deactivated sql.NullInt64
	var cert sql.NullString
	var created int64
	if err := sc.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Department, &u.DepartmentID, &u.Status,
		&frozen, &enrolled, &cert, &created, &deactivated); err != nil {
		return nil, err
	}
	u.Frozen, u.TOTPEnrolled, u.HasCert = frozen.Valid, enrolled.Valid, cert.Valid
	u.CreatedAt = medguard.FromMillis(created)
	if deactivated.Valid {
		t := medguard.FromMillis(deactivated.Int64)
		u.DeactivatedAt = &t
	}
	return &u, nil
}

// rolesOf reads a user's roles, sorted.
func (s *Service) rolesOf(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	roles := []string{}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return roles, rows.Err()
}

// lookupUser reads one user by id, with roles.
func (s *Service) lookupUser(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+userFrom+` WHERE u.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, medguard.Wrap("identity.lookupUser", err)
	}
	if u.Roles, err = s.rolesOf(ctx, u.ID); err != nil {
		return nil, medguard.Wrap("identity.lookupUser", err)
	}
	u.MFARequired = s.mfaRequired(u.Roles)
	return u, nil
}

// UserByID returns a user without logging it, for other capabilities that
// need a user's department or roles for a decision they log themselves
// (e.g. approvals).
func (s *Service) UserByID(ctx context.Context, id string) (*User, error) {
	return s.lookupUser(ctx, id)
}

// UserByUsername returns a user by username without logging it, for other
// capabilities that find people in the audit log (which names them by
// username) and need their id for an operation they log themselves (e.g.
// the accountability candidates). It answers NotFound for an unknown name.
func (s *Service) UserByUsername(ctx context.Context, username string) (*User, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM users WHERE username = $1`, username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, medguard.Wrap("identity.UserByUsername", err)
	}
	return s.lookupUser(ctx, id)
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, call *medguard.Call, id string) (*User, error) {
	var u *User
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserRead, Resource: policy.Resource{Type: "user", ID: id}},
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			u, err = s.lookupUser(ctx, id)
			return nil, err
		})
	return u, err
}

// ListUsers returns up to limit users with ids after the cursor, in id
// (creation) order, and the cursor of the next page ("" at the end).
func (s *Service) ListUsers(ctx context.Context, call *medguard.Call, after string, limit int) ([]*User, string, error) {
	var out []*User
	var next string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserRead, AuditAction: "user.list",
		Resource: policy.Resource{Type: "user"}},
		func(policy.Decision) (audit.Mutation, error) {
			rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+userFrom+` WHERE u.id > $1 ORDER BY u.id LIMIT $2`, after, limit+1)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				u, err := scanUser(rows)
				if err != nil {
					return nil, err
				}
				out = append(out, u)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			if len(out) > limit {
				out = out[:limit]
				next = out[limit-1].ID
			}
			for _, u := range out {
				if u.Roles, err = s.rolesOf(ctx, u.ID); err != nil {
					return nil, err
				}
				u.MFARequired = s.mfaRequired(u.Roles)
			}
			return nil, nil
		})
	return out, next, medguard.Wrap("identity.ListUsers", err)
}

// Deactivate marks a user as departed (离职): their sessions end and every
// access stops at once, because each request re-reads the user's status.
func (s *Service) Deactivate(ctx context.Context, call *medguard.Call, id string) (*User, error) {
	var u *User
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.deactivate",
		Resource: policy.Resource{Type: "user", ID: id}},
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			if u, err = s.lookupUser(ctx, id); err != nil {
				return nil, err
			}
			if id == call.Actor.ID {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "you cannot deactivate yourself"}
			}
			if u.Status == Deactivated {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the user is already deactivated"}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				if _, err := tx.ExecContext(ctx, `UPDATE users SET status = $1, deactivated_at = $2, deactivated_by = $3 WHERE id = $4`,
					Deactivated, medguard.Millis(now), call.Actor.ID, id); err != nil {
					return err
				}
				return endSessions(ctx, tx, id, now, "deactivated")
			}, nil
		})
	if err != nil {
		return nil, err
	}
	u.Status = Deactivated
	u.DeactivatedAt = &now
	return u, nil
}

// endSessions ends every open session of a user.
func endSessions(ctx context.Context, tx *sql.Tx, userID string, now time.Time, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE user_id = $3 AND ended_at IS NULL`,
		medguard.Millis(now), reason, userID)
	return err
}

// GrantRole grants a role that needs no approval. Privileged roles are
// refused here with a Conflict naming the approval route.
func (s *Service) GrantRole(ctx context.Context, call *medguard.Call, userID, role string) error {
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.role_grant",
		Resource: policy.Resource{Type: "user", ID: userID}},
		func(policy.Decision) (audit.Mutation, error) {
			if err := checkRoles([]string{role}); err != nil {
				return nil, medguard.InvalidField("role", "unknown role")
			}
			if policy.Privileged(role) {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "role", Code: "approval_required",
					Message: "privileged roles are granted through a four-eyes approval (POST /api/v1/approvals)"}
			}
			u, err := s.lookupUser(ctx, userID)
			if err != nil {
				return nil, err
			}
			if u.Status != Active {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the user is deactivated"}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				return insertRole(ctx, tx, userID, role, call.Actor.ID, "", now)
			}, nil
		})
	return err
}

// GrantApprovedRole returns the mutation that grants a privileged role once
// its four-eyes approval is given; the approvals capability commits it with
// the approval decision's audit entry.
func (s *Service) GrantApprovedRole(userID, role, requestedBy, approvalID string) audit.Mutation {
	now := s.clock.Now()
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM users WHERE id = $1`, userID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		if status != Active {
			return &medguard.Error{Kind: medguard.Conflict, Message: "the user is deactivated"}
		}
		return insertRole(ctx, tx, userID, role, requestedBy, approvalID, now)
	}
}

// RevokeRole removes a role from a user. Roles are read afresh on every
// request, so the change takes effect at once.
func (s *Service) RevokeRole(ctx context.Context, call *medguard.Call, userID, role string) error {
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.role_revoke",
		Resource: policy.Resource{Type: "user", ID: userID}},
		func(policy.Decision) (audit.Mutation, error) {
			if _, err := s.lookupUser(ctx, userID); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `DELETE FROM user_roles WHERE user_id = $1 AND role = $2`, userID, role)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.NotFound, Message: "the user does not hold this role"})
			}, nil
		})
	return err
}

// SetCertificate registers a client certificate (PEM) for mTLS sign-in; an
// empty PEM removes it.
func (s *Service) SetCertificate(ctx context.Context, call *medguard.Call, userID, certPEM string) error {
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.certificate_set",
		Resource: policy.Resource{Type: "user", ID: userID}},
		func(policy.Decision) (audit.Mutation, error) {
			var fp sql.NullString
			if strings.TrimSpace(certPEM) != "" {
				block, _ := pem.Decode([]byte(certPEM))
				if block == nil || block.Type != "CERTIFICATE" {
					return nil, medguard.InvalidField("certificate", "certificate must be one PEM CERTIFICATE block")
				}
				if _, err := x509.ParseCertificate(block.Bytes); err != nil {
					return nil, medguard.InvalidField("certificate", "certificate does not parse")
				}
				fp = sql.NullString{String: Fingerprint(block.Bytes), Valid: true}
			}
			if _, err := s.lookupUser(ctx, userID); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `UPDATE users SET cert_fingerprint = $1 WHERE id = $2`, fp, userID)
				if storage.IsConflict(err) {
					return &medguard.Error{Kind: medguard.Conflict, Field: "certificate", Message: "this certificate belongs to another user"}
				}
				return err
			}, nil
		})
	return err
}

// Fingerprint is the SHA-256 of a certificate's DER bytes, in hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ResetTOTP clears a user's second factor, so that they enrol again at the
// next sign-in, and ends their sessions.
func (s *Service) ResetTOTP(ctx context.Context, call *medguard.Call, userID string) error {
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.totp_reset",
		Resource: policy.Resource{Type: "user", ID: userID}},
		func(policy.Decision) (audit.Mutation, error) {
			if _, err := s.lookupUser(ctx, userID); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_enrolled_at = NULL,
					totp_last_step = NULL WHERE id = $1`, userID); err != nil {
					return err
				}
				return endSessions(ctx, tx, userID, now, "totp_reset")
			}, nil
		})
	return err
}

// ResetPassword sets a new password for a user (by an administrator) and
// ends their sessions.
func (s *Service) ResetPassword(ctx context.Context, call *medguard.Call, userID, password string) error {
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.password_reset",
		Resource: policy.Resource{Type: "user", ID: userID}},
		func(policy.Decision) (audit.Mutation, error) {
			u, err := s.lookupUser(ctx, userID)
			if err != nil {
				return nil, err
			}
			if err := CheckPassword(password, u.Username); err != nil {
				return nil, err
			}
			hash := HashPassword(password, s.cfg.Argon2)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3`,
					hash, medguard.Millis(now), userID); err != nil {
					return err
				}
				return endSessions(ctx, tx, userID, now, "password_reset")
			}, nil
		})
	return err
}

// HasUsers reports whether any user exists (an empty database gets the
// bootstrap administrator).
func (s *Service) HasUsers(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1) x`).Scan(&n)
	return n > 0, medguard.Wrap("identity.HasUsers", err)
}

// Bootstrap creates the first administrator in an empty database, as
// medguard itself (actor "system"), and returns its id. It refuses with a
// Conflict once any user exists.
func (s *Service) Bootstrap(ctx context.Context, username, password string) (string, error) {
	if err := CheckUsername(username); err != nil {
		return "", err
	}
	if err := CheckPassword(password, username); err != nil {
		return "", err
	}
	now := s.clock.Now()
	id := medguard.NewID(now)
	hash := HashPassword(password, s.cfg.Argon2)
	call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}
	_, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "user.bootstrap", TargetType: "user", TargetID: id,
		Allowed: true, Rule: "allow.empty_database"}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &medguard.Error{Kind: medguard.Conflict, Message: "users exist already"}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, display_name, password_hash, status,
			password_changed_at, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $6, 'system')`,
			id, username, "系统管理员 Administrator", hash, Active, medguard.Millis(now)); err != nil {
			return err
		}
		return insertRole(ctx, tx, id, policy.Admin, "system", "", now)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}
