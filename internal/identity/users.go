package identity

import (
	"context"
	"database/sql"
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
	ID           string   `json:"id"`
	Username     string   `json:"username"`
	DisplayName  string   `json:"display_name"`
	Department   string   `json:"department"` // code, or ""
	DepartmentID string   `json:"-"`
	Roles        []string `json:"roles"`
	Status       string   `json:"status"` // active | deactivated
	Frozen       bool     `json:"frozen"`
	TOTPEnrolled bool     `json:"totp_enrolled"`
	MFARequired  bool     `json:"mfa_required"`
	HasCert      bool     `json:"client_certificate"`
	// PasswordChangeRequired is set after a reset: the user must choose a
	// new password at the next sign-in.
	PasswordChangeRequired bool       `json:"password_change_required"`
	CreatedAt              time.Time  `json:"created_at"`
	DeactivatedAt          *time.Time `json:"deactivated_at,omitempty"`
	// LockedUntil, while failed sign-ins keep the username locked out,
	// is when the lockout ends (an administrator may lift it sooner:
	// POST /api/v1/users/{id}/unlock).
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// PasswordSetBy is who set the current password: the user's own id
	// once they changed it, or the creator's or resetter's.
	PasswordSetBy string `json:"-"`
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
// returns the roles it did not grant — every role that grants privilege or
// opens patient data: each must be granted through a four-eyes approval
// (see package approvals).
func (s *Service) CreateUser(ctx context.Context, call *medguard.Call, nu NewUser) (*User, []string, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	u := &User{ID: medguard.NewID(now), Username: strings.TrimSpace(nu.Username), DisplayName: strings.TrimSpace(nu.DisplayName),
		Status: Active, CreatedAt: now}
	var pending []string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.create",
		Resource: policy.Resource{Type: "user", ID: u.ID, SubjectUserID: u.ID}},
		func(policy.Decision) (audit.Mutation, error) {
			if err := CheckUsername(u.Username); err != nil {
				return nil, err
			}
			var err error
			if u.DisplayName, err = medguard.Line("display_name", u.DisplayName, 64, true); err != nil {
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
				if policy.NeedsApproval(r) {
					pending = append(pending, r)
				} else {
					u.Roles = append(u.Roles, r)
				}
			}
			hash := HashPassword(nu.Password, s.cfg.Argon2)
			u.MFARequired = true
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, display_name, department_id, password_hash,
					status, password_changed_at, created_at, created_by, password_set_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8)`,
					u.ID, u.Username, u.DisplayName, storage.NullString(u.DepartmentID), hash, Active, medguard.Millis(now), call.Actor.ID)
				if storage.IsConflict(err) {
					return &medguard.Error{Kind: medguard.Conflict, Field: "username", Message: "a user with this username exists"}
				}
				if err != nil {
					return err
				}
				if err := recordChange(ctx, tx, u.ID, call.Actor.ID, ChangeCreated, now); err != nil {
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

// NeedsFourEyes reports whether changing the credentials of a user with
// these roles needs a second person: every account that can reach patient
// data or privilege.
func NeedsFourEyes(roles []string) bool {
	return slices.ContainsFunc(roles, policy.NeedsApproval)
}

// Approvers returns who may approve a change to the account of u (a reset
// of its credentials): a security officer, and — when every role of u is a
// clinical role confined to one department — that department's head.
func Approvers(u *User) policy.Approvers {
	a := policy.Approvers{Security: true}
	if u.Department == "" {
		return a
	}
	for _, r := range u.Roles {
		if policy.NeedsApproval(r) && !policy.DepartmentApprovable(r) {
			return a
		}
	}
	a.Department = u.Department
	return a
}

const userColumns = `u.id, u.username, u.display_name, COALESCE(d.code, ''), COALESCE(u.department_id, ''), u.status,
	u.frozen_at, u.totp_enrolled_at, u.cert_fingerprint, u.created_at, u.deactivated_at, COALESCE(u.password_set_by, ''),
	u.must_change_password, l.locked_until`

const userFrom = ` FROM users u LEFT JOIN departments d ON d.id = u.department_id
	LEFT JOIN signin_lockouts l ON l.username = u.username`

// scanUser reads a user; a lockout that ended before now is not shown.
func scanUser(sc interface{ Scan(...any) error }, now time.Time) (*User, error) {
	var u User
	var frozen, enrolled, deactivated, locked sql.NullInt64
	var cert sql.NullString
	var created int64
	var mustChange int
	if err := sc.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Department, &u.DepartmentID, &u.Status,
		&frozen, &enrolled, &cert, &created, &deactivated, &u.PasswordSetBy, &mustChange, &locked); err != nil {
		return nil, err
	}
	if locked.Valid {
		if t := medguard.FromMillis(locked.Int64); now.Before(t) {
			u.LockedUntil = &t
		}
	}
	u.PasswordChangeRequired = mustChange != 0
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
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+userFrom+` WHERE u.id = $1`, id), s.clock.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, medguard.Wrap("identity.lookupUser", err)
	}
	if u.Roles, err = s.rolesOf(ctx, u.ID); err != nil {
		return nil, medguard.Wrap("identity.lookupUser", err)
	}
	u.MFARequired = true
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
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserRead, AuditAction: "user.list",
		Resource: policy.Resource{Type: "user"}},
		func(policy.Decision) (audit.Mutation, error) {
			rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+userFrom+` WHERE u.id > $1 ORDER BY u.id LIMIT $2`, after, limit+1)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				u, err := scanUser(rows, now)
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
				u.MFARequired = true
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
		Resource: userResource(id)},
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			if u, err = s.lookupUser(ctx, id); err != nil {
				return nil, err
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

// userResource is the resource of an operation on a user's account: nobody
// may change their own (policy rule deny.own_account).
func userResource(id string) policy.Resource {
	return policy.Resource{Type: "user", ID: id, SubjectUserID: id}
}

// GrantRole grants a role that needs no approval (one that opens neither
// patient data nor privilege). Other roles are refused here with a
// Conflict naming the approval route.
func (s *Service) GrantRole(ctx context.Context, call *medguard.Call, userID, role string) error {
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.role_grant",
		Resource: userResource(userID)},
		func(policy.Decision) (audit.Mutation, error) {
			if err := checkRoles([]string{role}); err != nil {
				return nil, medguard.InvalidField("role", "unknown role")
			}
			if policy.NeedsApproval(role) {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "role", Code: "approval_required",
					Message: "roles that open patient data or privilege are granted through a four-eyes approval (POST /api/v1/approvals)"}
			}
			u, err := s.lookupUser(ctx, userID)
			if err != nil {
				return nil, err
			}
			if u.Status != Active {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the user is deactivated"}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				if err := insertRole(ctx, tx, userID, role, call.Actor.ID, "", now); err != nil {
					return err
				}
				return recordChange(ctx, tx, userID, call.Actor.ID, ChangeRoleGranted, now)
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
		if err := insertRole(ctx, tx, userID, role, requestedBy, approvalID, now); err != nil {
			return err
		}
		return recordChange(ctx, tx, userID, requestedBy, ChangeRoleGranted, now)
	}
}

// RevokeRole removes a role from a user. Roles are read afresh on every
// request, so the change takes effect at once.
func (s *Service) RevokeRole(ctx context.Context, call *medguard.Call, userID, role string) error {
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.role_revoke",
		Resource: userResource(userID)},
		func(policy.Decision) (audit.Mutation, error) {
			if _, err := s.lookupUser(ctx, userID); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `DELETE FROM user_roles WHERE user_id = $1 AND role = $2`, userID, role)
				if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.NotFound, Message: "the user does not hold this role"}); err != nil {
					return err
				}
				return recordChange(ctx, tx, userID, call.Actor.ID, ChangeRoleRevoked, now)
			}, nil
		})
	return err
}

// HasUsers reports whether any user exists (an empty database gets the
// bootstrap accounts).
func (s *Service) HasUsers(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1) x`).Scan(&n)
	return n > 0, medguard.Wrap("identity.HasUsers", err)
}

// BootstrapAccount is one of the two people a new installation starts with.
type BootstrapAccount struct {
	Username    string
	DisplayName string
	Role        string
	Password    string
}

// The bootstrap accounts' usernames (SPEC §1, Appendix A).
const (
	BootstrapAdmin    = "admin"
	BootstrapSecurity = "security"
)

// BootstrapAccounts are the two people a new installation starts with, so
// that four-eyes works from the first minute (三权分立): the system
// administrator (系统管理员), who asks, and the security administrator
// (安全管理员), who approves.
func BootstrapAccounts(adminPassword, securityPassword string) []BootstrapAccount {
	return []BootstrapAccount{
		{Username: BootstrapAdmin, DisplayName: "系统管理员", Role: policy.Admin, Password: adminPassword},
		{Username: BootstrapSecurity, DisplayName: "安全管理员", Role: policy.SecurityOfficer, Password: securityPassword},
	}
}

// MissingBootstrap returns which of the bootstrap accounts an installation
// still needs: both for an empty database; the security administrator for
// one that has no active security officer and no user named "security"
// (an installation made before there were two), so that someone other than
// the administrator can approve.
func (s *Service) MissingBootstrap(ctx context.Context) (admin, security bool, err error) {
	var users, officers, named int
	err = s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users),
		(SELECT count(*) FROM user_roles r JOIN users u ON u.id = r.user_id WHERE r.role = $1 AND u.status = $2),
		(SELECT count(*) FROM users WHERE username = $3)`, policy.SecurityOfficer, Active, BootstrapSecurity).
		Scan(&users, &officers, &named)
	if err != nil {
		return false, false, medguard.Wrap("identity.MissingBootstrap", err)
	}
	return users == 0, officers == 0 && named == 0, nil
}

// Bootstrap creates a bootstrap account, as medguard itself (actor
// "system"), and returns its id. The administrator is made only in an
// empty database, the security administrator only while no active security
// officer exists; otherwise it refuses with a Conflict.
func (s *Service) Bootstrap(ctx context.Context, a BootstrapAccount) (string, error) {
	if err := CheckUsername(a.Username); err != nil {
		return "", err
	}
	if err := CheckPassword(a.Password, a.Username); err != nil {
		return "", err
	}
	if a.Role != policy.Admin && a.Role != policy.SecurityOfficer {
		return "", medguard.InvalidField("role", "a bootstrap account is an administrator or a security officer")
	}
	now := s.clock.Now()
	id := medguard.NewID(now)
	hash := HashPassword(a.Password, s.cfg.Argon2)
	call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}
	_, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "user.bootstrap", TargetType: "user", TargetID: id,
		Allowed: true, Rule: "allow.bootstrap"}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		var n int
		q := `SELECT count(*) FROM users`
		var args []any
		if a.Role == policy.SecurityOfficer {
			q = `SELECT count(*) FROM user_roles r JOIN users u ON u.id = r.user_id WHERE r.role = $1 AND u.status = $2`
			args = []any{policy.SecurityOfficer, Active}
		}
		if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &medguard.Error{Kind: medguard.Conflict, Message: "the installation has its " + a.Role + " already"}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, display_name, password_hash, status,
			password_changed_at, created_at, created_by, password_set_by) VALUES ($1, $2, $3, $4, $5, $6, $6, 'system', 'system')`,
			id, a.Username, a.DisplayName, hash, Active, medguard.Millis(now)); err != nil {
			return err
		}
		return insertRole(ctx, tx, id, a.Role, "system", "", now)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}
