// Package approvals is medguard's four-eyes mechanism (双人复核): a
// sensitive operation is requested by one user and runs only when a second,
// different user holding the approver permission approves it. Nobody
// decides their own request, nor approves their own elevation; the request,
// the decision and the run are each in the audit log, and the run commits
// in the same transaction as the decision.
//
// Kinds of operation register here with what they need; today that is the
// granting of privileged roles. The package decides nothing itself: every
// step passes through the gate.
package approvals

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the approvals package's tables.
func Schema() storage.Schema { return storage.NewSchema("approvals", migrations, "migrations") }

// Statuses of an approval.
const (
	Pending   = "pending"
	Approved  = "approved"
	Refused   = "refused"
	Cancelled = "cancelled"
	Expired   = "expired" // shown, never stored: a pending request past its expiry
)

// Approval is one four-eyes request.
type Approval struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	Payload       json.RawMessage `json:"payload"`
	SubjectUserID string          `json:"subject_user_id,omitempty"`
	Reason        string          `json:"reason"`
	RequestedBy   string          `json:"requested_by"`
	RequestedAt   time.Time       `json:"requested_at"`
	ExpiresAt     time.Time       `json:"expires_at"`
	Status        string          `json:"status"`
	DecidedBy     string          `json:"decided_by,omitempty"`
	DecidedAt     *time.Time      `json:"decided_at,omitempty"`
	DecisionNote  string          `json:"decision_note,omitempty"`
	requestedByID string
}

// Kind is a kind of operation that needs four eyes.
type Kind struct {
	Name string
	// RequestPermission is what the requester must hold.
	RequestPermission policy.Permission
	// Check validates a payload and returns the user whose rights the
	// operation would change (if any), with the payload normalised.
	Check func(ctx context.Context, payload json.RawMessage) (subjectUserID string, normalized json.RawMessage, err error)
	// Run returns the mutation that carries the operation out, committed
	// with the approval's audit entry.
	Run func(ctx context.Context, a *Approval) (audit.Mutation, error)
	// RunAction names the operation in the audit log once it has run.
	RunAction string
}

// Service is the approvals capability.
type Service struct {
	db    *storage.DB
	gate  *gate.Gate
	clock medguard.Clock
	kinds map[string]Kind
	// TTL is how long a request waits for a decision (default 7 days).
	TTL time.Duration
}

// New returns the approvals service with the built-in kinds.
func New(db *storage.DB, g *gate.Gate, id *identity.Service) *Service {
	s := &Service{db: db, gate: g, clock: g.Clock(), kinds: map[string]Kind{}, TTL: 7 * 24 * time.Hour}
	s.Register(roleGrant(id))
	return s
}

// Register adds a kind of operation.
func (s *Service) Register(k Kind) { s.kinds[k.Name] = k }

// Kinds lists the registered kinds' names.
func (s *Service) Kinds() []string {
	var out []string
	for n := range s.kinds {
		out = append(out, n)
	}
	return out
}

// RoleGrant is the kind that grants a privileged role.
const RoleGrant = "role.grant"

// RoleGrantPayload is the payload of a role.grant request.
type RoleGrantPayload struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

func roleGrant(id *identity.Service) Kind {
	return Kind{
		Name: RoleGrant, RequestPermission: policy.UserManage, RunAction: "user.role_grant",
		Check: func(ctx context.Context, raw json.RawMessage) (string, json.RawMessage, error) {
			var p RoleGrantPayload
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				return "", nil, medguard.InvalidField("payload", "payload must be {\"user_id\", \"role\"}")
			}
			if !policy.Privileged(p.Role) {
				return "", nil, medguard.InvalidField("payload.role", "only privileged roles (admin, security_officer, auditor, it_engineer) need approval; grant others directly")
			}
			u, err := id.UserByID(ctx, p.UserID)
			if err != nil || u.Status != identity.Active {
				return "", nil, medguard.InvalidField("payload.user_id", "no active user has this id")
			}
			for _, r := range u.Roles {
				if r == p.Role {
					return "", nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.role", Message: "the user already holds this role"}
				}
			}
			norm, _ := json.Marshal(p)
			return u.ID, norm, nil
		},
		Run: func(ctx context.Context, a *Approval) (audit.Mutation, error) {
			var p RoleGrantPayload
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, err
			}
			return id.GrantApprovedRole(p.UserID, p.Role, a.requestedByID, a.ID), nil
		},
	}
}

// NewRequest asks for an operation.
type NewRequest struct {
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
	Reason  string          `json:"reason"`
}

// Request files a four-eyes request. The requester must hold the kind's
// request permission.
func (s *Service) Request(ctx context.Context, call *medguard.Call, in NewRequest) (*Approval, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	a := &Approval{ID: medguard.NewID(now), Kind: in.Kind, Reason: strings.TrimSpace(in.Reason), RequestedBy: call.Actor.Name,
		requestedByID: call.Actor.ID, RequestedAt: now, ExpiresAt: now.Add(s.TTL), Status: Pending}
	k, known := s.kinds[in.Kind]
	perm := k.RequestPermission
	if !known {
		perm = policy.ApprovalDecide // any approver may learn that a kind is unknown
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: perm, AuditAction: "approval.request",
		Resource: policy.Resource{Type: "approval", ID: a.ID}},
		func(policy.Decision) (audit.Mutation, error) {
			if !known {
				return nil, medguard.InvalidField("kind", "unknown kind of approval")
			}
			if a.Reason == "" || utf8.RuneCountInString(a.Reason) > 500 {
				return nil, medguard.InvalidField("reason", "reason is required (at most 500 characters)")
			}
			subject, norm, err := k.Check(ctx, in.Payload)
			if err != nil {
				return nil, err
			}
			a.SubjectUserID, a.Payload = subject, norm
			if err := s.noDuplicate(ctx, a); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO approvals (id, kind, payload, subject_user_id, reason, requested_by,
					requested_by_name, requested_at, expires_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
					a.ID, a.Kind, string(a.Payload), storage.NullString(a.SubjectUserID), a.Reason, call.Actor.ID, call.Actor.Name,
					medguard.Millis(now), medguard.Millis(a.ExpiresAt), Pending)
				return err
			}, nil
		})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// noDuplicate refuses a second pending request for the same operation.
func (s *Service) noDuplicate(ctx context.Context, a *Approval) error {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM approvals WHERE kind = $1 AND payload = $2 AND status = $3 AND expires_at > $4`,
		a.Kind, string(a.Payload), Pending, medguard.Millis(a.RequestedAt)).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return &medguard.Error{Kind: medguard.Conflict, Message: "the same request is already waiting for a decision"}
	}
	return nil
}

const columns = `id, kind, payload, subject_user_id, reason, requested_by, requested_by_name, requested_at, expires_at,
	status, decided_by_name, decided_at, decision_note`

func scan(sc interface{ Scan(...any) error }, now time.Time) (*Approval, error) {
	var a Approval
	var payload string
	var subject, decidedBy, note sql.NullString
	var requested, expires int64
	var decided sql.NullInt64
	if err := sc.Scan(&a.ID, &a.Kind, &payload, &subject, &a.Reason, &a.requestedByID, &a.RequestedBy, &requested,
		&expires, &a.Status, &decidedBy, &decided, &note); err != nil {
		return nil, err
	}
	a.Payload, a.SubjectUserID = json.RawMessage(payload), subject.String
	a.RequestedAt, a.ExpiresAt = medguard.FromMillis(requested), medguard.FromMillis(expires)
	a.DecidedBy, a.DecisionNote = decidedBy.String, note.String
	if decided.Valid {
		t := medguard.FromMillis(decided.Int64)
		a.DecidedAt = &t
	}
	if a.Status == Pending && !now.Before(a.ExpiresAt) {
		a.Status = Expired
	}
	return &a, nil
}

var errNoApproval = &medguard.Error{Kind: medguard.NotFound, Message: "no such approval"}

func (s *Service) load(ctx context.Context, id string) (*Approval, error) {
	if !medguard.ValidID(id) {
		return nil, errNoApproval
	}
	a, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM approvals WHERE id = $1`, id), s.clock.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoApproval
	}
	return a, medguard.Wrap("approvals.load", err)
}

// Get returns one approval, to an approver or to its requester.
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Approval, error) {
	a, err := s.load(ctx, id)
	if err != nil && !medguard.IsKind(err, medguard.NotFound) {
		return nil, err
	}
	action := policy.ApprovalDecide
	if a != nil && a.requestedByID == call.Actor.ID {
		action = s.kinds[a.Kind].RequestPermission
	}
	_, _, err2 := s.gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: "approval.read",
		Resource: policy.Resource{Type: "approval", ID: id}},
		func(policy.Decision) (audit.Mutation, error) { return nil, err })
	if err2 != nil {
		return nil, err2
	}
	return a, nil
}

// List returns approvals with the given status (default pending), newest
// first: the approvers' inbox.
func (s *Service) List(ctx context.Context, call *medguard.Call, status, before string, limit int) ([]Approval, string, error) {
	now := s.clock.Now()
	out := []Approval{}
	var next string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ApprovalDecide, AuditAction: "approval.list",
		Resource: policy.Resource{Type: "approval"}},
		func(policy.Decision) (audit.Mutation, error) {
			if status == "" {
				status = Pending
			}
			q := `SELECT ` + columns + ` FROM approvals WHERE ($1 = '' OR id < $1)`
			args := []any{before}
			switch status {
			case Pending:
				q += ` AND status = 'pending' AND expires_at > $2`
				args = append(args, medguard.Millis(now))
			case Expired:
				q += ` AND status = 'pending' AND expires_at <= $2`
				args = append(args, medguard.Millis(now))
			case Approved, Refused, Cancelled:
				q += ` AND status = $2`
				args = append(args, status)
			case "all":
			default:
				return nil, medguard.InvalidField("status", "status must be pending, approved, refused, cancelled, expired or all")
			}
			args = append(args, limit+1)
			rows, err := s.db.QueryContext(ctx, q+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				a, err := scan(rows, now)
				if err != nil {
					return nil, err
				}
				if len(out) == limit {
					next = out[len(out)-1].ID
					break
				}
				out = append(out, *a)
			}
			return nil, rows.Err()
		})
	return out, next, err
}

// Approve approves a pending request and runs it, in one transaction. The
// approver must hold approval.decide and be neither the requester nor the
// user whose rights change.
func (s *Service) Approve(ctx context.Context, call *medguard.Call, id, note string) (*Approval, error) {
	return s.decide(ctx, call, id, note, Approved)
}

// Refuse refuses a pending request.
func (s *Service) Refuse(ctx context.Context, call *medguard.Call, id, note string) (*Approval, error) {
	return s.decide(ctx, call, id, note, Refused)
}

func (s *Service) decide(ctx context.Context, call *medguard.Call, id, note, outcome string) (*Approval, error) {
	a, err := s.load(ctx, id)
	if err != nil {
		_, _, gerr := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ApprovalDecide, AuditAction: "approval.decide",
			Resource: policy.Resource{Type: "approval", ID: id}}, func(policy.Decision) (audit.Mutation, error) { return nil, err })
		return nil, gerr
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	note = strings.TrimSpace(note)
	k := s.kinds[a.Kind]
	action := "approval.approve"
	if outcome == Refused {
		action = "approval.refuse"
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ApprovalDecide, AuditAction: action,
		Resource: policy.Resource{Type: "approval", ID: id, RequestedBy: a.requestedByID, SubjectUserID: a.SubjectUserID}},
		func(policy.Decision) (audit.Mutation, error) {
			if utf8.RuneCountInString(note) > 500 {
				return nil, medguard.InvalidField("note", "note must be at most 500 characters")
			}
			if outcome == Refused && note == "" {
				return nil, medguard.InvalidField("note", "say why the request is refused")
			}
			if a.Status != Pending {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the request is " + a.Status + ", not pending"}
			}
			var run audit.Mutation
			if outcome == Approved {
				if k.Run == nil {
					return nil, &medguard.Error{Kind: medguard.Conflict, Message: "this kind of request can no longer run"}
				}
				var err error
				if run, err = k.Run(ctx, a); err != nil {
					return nil, err
				}
			}
			a.Status, a.DecidedBy, a.DecidedAt, a.DecisionNote = outcome, call.Actor.Name, &now, note
			return func(ctx context.Context, tx *sql.Tx, index uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE approvals SET status = $1, decided_by = $2, decided_by_name = $3,
					decided_at = $4, decision_note = $5 WHERE id = $6 AND status = 'pending' AND expires_at > $4`,
					outcome, call.Actor.ID, call.Actor.Name, medguard.Millis(now), storage.NullString(note), id)
				if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict,
					Message: "the request is no longer pending"}); err != nil {
					return err
				}
				if run != nil {
					return run(ctx, tx, index)
				}
				return nil
			}, nil
		})
	if err != nil {
		return nil, err
	}
	if outcome == Approved {
		// The run itself, as its own entry, so that a search by the operation
		// (e.g. user.role_grant on a user) finds it.
		if _, err := s.gate.Record(ctx, gate.Event{Call: call, Action: k.RunAction, TargetType: "user",
			TargetID: a.SubjectUserID, Allowed: true, Rule: "allow.four_eyes:" + a.ID}, nil); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Cancel withdraws one's own pending request.
func (s *Service) Cancel(ctx context.Context, call *medguard.Call, id string) (*Approval, error) {
	a, err := s.load(ctx, id)
	perm := policy.ApprovalDecide
	if err == nil {
		perm = s.kinds[a.Kind].RequestPermission
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, gerr := s.gate.Enter(ctx, gate.Passage{Call: call, Action: perm, AuditAction: "approval.cancel",
		Resource: policy.Resource{Type: "approval", ID: id}},
		func(policy.Decision) (audit.Mutation, error) {
			if err != nil {
				return nil, err
			}
			if a.requestedByID != call.Actor.ID {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "only the requester may cancel a request"}
			}
			if a.Status != Pending {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the request is " + a.Status + ", not pending"}
			}
			a.Status, a.DecidedAt = Cancelled, &now
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `UPDATE approvals SET status = 'cancelled', decided_at = $1 WHERE id = $2 AND status = 'pending'`,
					medguard.Millis(now), id)
				return err
			}, nil
		})
	if gerr != nil {
		return nil, gerr
	}
	return a, nil
}
