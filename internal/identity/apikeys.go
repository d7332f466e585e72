package identity

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// APIKey is a system's credential (the HIS pushing records, a lab system),
// scoped to a list of permissions. The secret is shown once, at creation.
type APIKey struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Department string   `json:"department,omitempty"`
	// Status is active, or pending while a key that can read patient data
	// waits for its four-eyes approval; Frozen is set by detection.
	Status     string     `json:"status"`
	Frozen     bool       `json:"frozen"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Key is the bearer token, set only in the answer to its creation.
	Key string `json:"key,omitempty"`
}

// keyScopesAllowed are the permissions an API key may hold: systems push and
// read clinical data and read the directory; they never manage users, keys,
// approvals or the audit log, and never break the glass.
var keyScopesAllowed = []policy.Permission{
	policy.DirectoryRead, policy.PatientCreate, policy.PatientRead, policy.PatientUpdate, policy.PatientSearch,
	policy.RecordRead, policy.RecordWrite, policy.RecordList, policy.AdmissionManage, policy.AllDepartments,
}

// Key statuses.
const (
	KeyActive  = "active"
	KeyPending = "pending"
)

// keyReads are the scopes with which a key shows patient data: such a key
// works only once a second person approved it.
var keyReads = []policy.Permission{policy.PatientRead, policy.PatientSearch, policy.RecordRead, policy.RecordList}

// KeyNeedsApproval reports whether a key with these scopes can show
// patient data, and so needs a four-eyes approval before it works.
func KeyNeedsApproval(scopes []string) bool {
	for _, sc := range scopes {
		base, _, _ := strings.Cut(sc, ":")
		if slices.Contains(keyReads, policy.Permission(base)) {
			return true
		}
	}
	return false
}

// NewAPIKey checks a new key for a system and returns it (with its bearer
// token, shown once) and the mutation that stores it: active, or pending
// (approvalID names the four-eyes request it waits for). It runs inside
// the caller's gated operation.
func (s *Service) NewAPIKey(ctx context.Context, call *medguard.Call, name string, scopes []string, department, approvalID string) (*APIKey, audit.Mutation, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	k := &APIKey{ID: medguard.NewID(now), Name: strings.TrimSpace(name), Scopes: uniq(scopes), CreatedAt: now,
		Status: KeyActive, CreatedBy: call.Actor.Name}
	if approvalID != "" {
		k.Status = KeyPending
	}
	if !codePattern.MatchString(k.Name) {
		return nil, nil, medguard.InvalidField("name", "name must be 1-32 letters, digits, '.', '_' or '-'")
	}
	if len(k.Scopes) == 0 {
		return nil, nil, medguard.InvalidField("scopes", "at least one scope is required")
	}
	for _, sc := range k.Scopes {
		p := policy.Permission(sc)
		base, _, _ := strings.Cut(sc, ":")
		if !policy.KnownPermission(p) || !slices.Contains(keyScopesAllowed, policy.Permission(base)) {
			return nil, nil, medguard.InvalidField("scopes", "scope %q is not allowed for API keys", sc)
		}
	}
	var deptID string
	if department != "" {
		d, err := s.DepartmentByCode(ctx, department)
		if err != nil {
			return nil, nil, medguard.InvalidField("department", "no department has this code")
		}
		deptID, k.Department = d.ID, d.Code
	}
	var secretHash []byte
	k.Key, secretHash = newKeyToken(k.ID)
	return k, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, name, secret_hash, scopes, department_id, created_by, created_at,
			status, approval_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, k.ID, k.Name, secretHash, strings.Join(k.Scopes, " "),
			storage.NullString(deptID), call.Actor.ID, medguard.Millis(now), k.Status, storage.NullString(approvalID))
		if storage.IsConflict(err) {
			return &medguard.Error{Kind: medguard.Conflict, Field: "name", Message: "an API key with this name exists"}
		}
		return err
	}, nil
}

// CreateAPIKey creates an API key for a system that shows no patient data
// (the HIS pushing records). A key that can show patient data is refused
// here with approval_required: it is asked for through a four-eyes request.
func (s *Service) CreateAPIKey(ctx context.Context, call *medguard.Call, name string, scopes []string, department string) (*APIKey, error) {
	var k *APIKey
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.APIKeyManage, AuditAction: "apikey.create",
		Resource: policy.Resource{Type: "api_key"}},
		func(policy.Decision) (audit.Mutation, error) {
			if KeyNeedsApproval(scopes) {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "scopes", Code: "approval_required",
					Message: "a key that can read patient data works only once a security officer approves it"}
			}
			var m audit.Mutation
			var err error
			k, m, err = s.NewAPIKey(ctx, call, name, scopes, department, "")
			return m, err
		})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ActivateAPIKey returns the mutation that makes a pending key work, once
// its four-eyes request is approved.
func (s *Service) ActivateAPIKey(keyID, approvalID string) audit.Mutation {
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET status = $1 WHERE id = $2 AND status = $3 AND approval_id = $4
			AND revoked_at IS NULL`, KeyActive, keyID, KeyPending, approvalID)
		return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the key is no longer waiting for approval"})
	}
}

// newKeyToken makes the bearer token of key id: "mgk_<id>_<secret>", and the
// hash of the secret that is stored.
func newKeyToken(id string) (string, []byte) {
	secretToken, _ := newToken("")
	return "mgk_" + id + "_" + secretToken, hashToken(secretToken)
}

// ListAPIKeys lists API keys (never their secrets).
func (s *Service) ListAPIKeys(ctx context.Context, call *medguard.Call) ([]APIKey, error) {
	var out []APIKey
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.APIKeyManage, AuditAction: "apikey.list",
		Resource: policy.Resource{Type: "api_key"}},
		func(policy.Decision) (audit.Mutation, error) {
			rows, err := s.db.QueryContext(ctx, `SELECT k.id, k.name, k.scopes, COALESCE(d.code, ''), k.created_at, k.revoked_at,
				k.last_used_at, k.status, k.frozen_at, COALESCE(u.username, k.created_by) FROM api_keys k
				LEFT JOIN departments d ON d.id = k.department_id LEFT JOIN users u ON u.id = k.created_by ORDER BY k.id`)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				var k APIKey
				var scopes string
				var created int64
				var revoked, used, frozen sql.NullInt64
				if err := rows.Scan(&k.ID, &k.Name, &scopes, &k.Department, &created, &revoked, &used, &k.Status, &frozen,
					&k.CreatedBy); err != nil {
					return nil, err
				}
				k.Frozen = frozen.Valid
				k.Scopes, k.CreatedAt = strings.Fields(scopes), medguard.FromMillis(created)
				k.RevokedAt, k.LastUsedAt = optionalTime(revoked), optionalTime(used)
				out = append(out, k)
			}
			return nil, rows.Err()
		})
	return out, medguard.Wrap("identity.ListAPIKeys", err)
}

func optionalTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := medguard.FromMillis(v.Int64)
	return &t
}

// RevokeAPIKey revokes a key; requests with it fail from then on.
func (s *Service) RevokeAPIKey(ctx context.Context, call *medguard.Call, id string) error {
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.APIKeyManage, AuditAction: "apikey.revoke",
		Resource: policy.Resource{Type: "api_key", ID: id}},
		func(policy.Decision) (audit.Mutation, error) {
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`,
					medguard.Millis(now), id)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.NotFound, Message: "no active API key with this id"})
			}, nil
		})
	return err
}

// ReleaseAPIKey lifts detection's freeze of a key (permission
// account.release), with a reason.
func (s *Service) ReleaseAPIKey(ctx context.Context, call *medguard.Call, id, reason string) error {
	if err := checkReleaseReason(reason); err != nil {
		return err
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AccountRelease, AuditAction: "apikey.release",
		Resource: policy.Resource{Type: "api_key", ID: id}},
		func(policy.Decision) (audit.Mutation, error) {
			var n int
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE id = $1`, id).Scan(&n); err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no API key with this id"}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE api_keys SET frozen_at = NULL, frozen_reason = NULL WHERE id = $1
					AND frozen_at IS NOT NULL`, id)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the key is not frozen"})
			}, nil
		})
	return err
}
