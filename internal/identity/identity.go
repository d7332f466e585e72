// Package identity owns who may sign in and as whom: departments, staff
// users and their roles, passwords (argon2id) and the password policy,
// lockout after repeated failures, TOTP second factors, client-certificate
// sign-in, sessions with idle and absolute limits, sign-in windows for remote
// access, API keys for systems, and deactivation (离职).
//
// Every operation passes through the gate: management operations are decided
// by the access policy and audited; sign-in events are audited as events.
// This package never touches patient data.
package identity

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the identity package's tables.
func Schema() storage.Schema { return storage.NewSchema("identity", migrations, "migrations") }

// Config holds the sign-in rules.
type Config struct {
	IdleTimeout      time.Duration // default 15 min
	SessionLifetime  time.Duration // default 8 h
	LockoutThreshold int           // failures within LockoutWindow; default 5
	LockoutWindow    time.Duration // default 15 min
	LockoutDuration  time.Duration // default 15 min
	// PrivilegedFactors says what privileged roles (admin, security officer,
	// auditor, IT engineer) present besides the password: "totp" (default)
	// or "cert+totp", the registered client certificate and the code (seed:
	// 证书+令牌). Every other member of staff presents a TOTP code or a
	// registered client certificate.
	PrivilegedFactors string
	Argon2            Argon2Params
	// TOTPIssuer names medguard in authenticator apps.
	TOTPIssuer string
	// Intranet lists the networks whose sign-ins are local; others are
	// remote and subject to RemoteHours.
	Intranet []netip.Prefix
	// RemoteHours restricts remote sign-in per role to hours of the day in
	// Location. A role without an entry may sign in remotely at any time.
	RemoteHours map[string]HoursWindow
	Location    *time.Location
}

// HoursWindow is a daily window [From, To) of local time, in minutes after
// midnight. To < From means the window spans midnight.
type HoursWindow struct {
	From, To int
}

// Contains reports whether the local time t falls in the window.
func (w HoursWindow) Contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.From <= w.To {
		return w.From <= m && m < w.To
	}
	return m >= w.From || m < w.To
}

// The second factors privileged roles may be asked for.
const (
	FactorsTOTP     = "totp"
	FactorsCertTOTP = "cert+totp"
)

// DefaultIntranet is loopback and the private address ranges.
func DefaultIntranet() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func (c *Config) setDefaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 15 * time.Minute
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = 8 * time.Hour
	}
	if c.LockoutThreshold == 0 {
		c.LockoutThreshold = 5
	}
	if c.LockoutWindow == 0 {
		c.LockoutWindow = 15 * time.Minute
	}
	if c.LockoutDuration == 0 {
		c.LockoutDuration = 15 * time.Minute
	}
	if c.PrivilegedFactors == "" {
		c.PrivilegedFactors = FactorsTOTP
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2
	}
	if c.TOTPIssuer == "" {
		c.TOTPIssuer = "medguard"
	}
	if c.Intranet == nil {
		c.Intranet = DefaultIntranet()
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
}

// Service is the identity capability.
type Service struct {
	db    *storage.DB
	gate  *gate.Gate
	keys  *keys.Keyring
	clock medguard.Clock
	cfg   Config
	// dummyHash is verified against when a username is unknown, so that
	// unknown and known usernames take the same time.
	dummyHash string
	// attempts are the sign-ins under way, per username (see Login).
	attempts attempts
	// sessions keeps who sessions belong to while the identity epoch
	// allows (sessioncache.go).
	sessions sessionCache
}

// New returns the identity service.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, clock: g.Clock(), cfg: cfg,
		dummyHash: HashPassword("medguard-dummy-password", cfg.Argon2)}
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Department is a hospital department (科室).
type Department struct {
	ID        string    `json:"id"`
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

var codePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// CreateDepartment adds a department.
func (s *Service) CreateDepartment(ctx context.Context, call *medguard.Call, code, name string) (*Department, error) {
	d := &Department{ID: medguard.NewID(s.clock.Now()), Code: strings.TrimSpace(code), Name: strings.TrimSpace(name),
		CreatedAt: s.clock.Now().Truncate(time.Millisecond)}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DepartmentManage,
		AuditAction: "department.create", Resource: policy.Resource{Type: "department", ID: d.ID}},
		func(policy.Decision) (audit.Mutation, error) {
			if !codePattern.MatchString(d.Code) {
				return nil, medguard.InvalidField("code", "code must be 1-32 letters, digits, '.', '_' or '-'")
			}
			var err error
			if d.Name, err = medguard.Line("name", d.Name, 64, true); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO departments (id, code, name, created_at) VALUES ($1, $2, $3, $4)`,
					d.ID, d.Code, d.Name, medguard.Millis(d.CreatedAt))
				if storage.IsConflict(err) {
					return &medguard.Error{Kind: medguard.Conflict, Field: "code", Message: "a department with this code exists"}
				}
				return err
			}, nil
		})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ListDepartments lists all departments by code.
func (s *Service) ListDepartments(ctx context.Context, call *medguard.Call) ([]Department, error) {
	var out []Department
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DirectoryRead,
		AuditAction: "department.list", Resource: policy.Resource{Type: "department"}},
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			out, err = s.departments(ctx, "")
			return nil, err
		})
	return out, err
}

// departments reads departments, all or the one with the given code.
func (s *Service) departments(ctx context.Context, code string) ([]Department, error) {
	q := `SELECT id, code, name, created_at FROM departments`
	var args []any
	if code != "" {
		q += ` WHERE code = $1`
		args = append(args, code)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY code`, args...)
	if err != nil {
		return nil, medguard.Wrap("identity.departments", err)
	}
	defer rows.Close()
	var out []Department
	for rows.Next() {
		var d Department
		var created int64
		if err := rows.Scan(&d.ID, &d.Code, &d.Name, &created); err != nil {
			return nil, medguard.Wrap("identity.departments", err)
		}
		d.CreatedAt = medguard.FromMillis(created)
		out = append(out, d)
	}
	return out, medguard.Wrap("identity.departments", rows.Err())
}

// DepartmentByCode returns the department with the given code, for other
// capabilities resolving a department named in a request.
func (s *Service) DepartmentByCode(ctx context.Context, code string) (*Department, error) {
	ds, err := s.departments(ctx, code)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such department"}
	}
	return &ds[0], nil
}

// errNotFound is the error for a user, session or key that does not exist.
var errNotFound = &medguard.Error{Kind: medguard.NotFound, Message: "not found"}

// IsNotFound reports whether err says something does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, errNotFound) || medguard.IsKind(err, medguard.NotFound)
}

// StaffName is how a member of staff is shown to colleagues: their name
// and department, never their credentials or roles.
type StaffName struct {
	ID, Username, DisplayName, Department string
}

// Directory returns every account's name and department and every
// department, for showing people and departments by name in the console
// (which would otherwise print usernames and codes). It holds no patient
// data and decides nothing, so it is read without a gate passage.
func (s *Service) Directory(ctx context.Context) ([]StaffName, []Department, error) {
	deps, err := s.departments(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.username, u.display_name, COALESCE(d.code, '')
		FROM users u LEFT JOIN departments d ON d.id = u.department_id ORDER BY u.username`)
	if err != nil {
		return nil, nil, medguard.Wrap("identity.Directory", err)
	}
	defer rows.Close()
	var out []StaffName
	for rows.Next() {
		var n StaffName
		if err := rows.Scan(&n.ID, &n.Username, &n.DisplayName, &n.Department); err != nil {
			return nil, nil, medguard.Wrap("identity.Directory", err)
		}
		out = append(out, n)
	}
	return out, deps, medguard.Wrap("identity.Directory", rows.Err())
}
