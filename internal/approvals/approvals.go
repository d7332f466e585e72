// Package approvals is medguard's four-eyes mechanism (双人审批): an
// operation that opens patient data or privilege is requested by one
// person and runs only when a second, eligible person approves it — a
// security officer, or the head of the department it concerns — never the
// requester, never the user whose rights change, never someone whose
// account the requester created, changed or reset. The request, the
// decision and the run are each in the audit log, and the run commits in
// the same transaction as the decision. Free text (reasons, notes) is
// sealed: it may name a patient.
//
// The kinds of operation are in kinds.go; the routes that may need four
// eyes (a role, a reset, a key, a care team, a grant) ask through ask.go,
// which files a request when a second person is needed and acts directly
// otherwise. The package decides nothing itself: every step passes through
// the gate, whose policy says who may decide.
package approvals

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/records"
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
	// Approvers says who may decide: security officers, and the head of
	// Department.
	Approvers Approvers `json:"approvers"`
	// TargetType and TargetID name what the run changes (a user, an API
	// key, a patient).
	TargetType string `json:"target_type,omitempty"`
	TargetID   string `json:"target_id,omitempty"`
	// Secret is shown once: to the requester in the answer to the request
	// (their half of a split password, a new key's token), to the approver
	// in the answer to the approval (their half). It is never listed.
	Secret string `json:"secret,omitempty"`
	// MayDecide, in a list, says that the caller may decide the request
	// now (it is pending, and the policy would let them approve it), so
	// that a page offers the decision only to those it would not refuse.
	MayDecide bool `json:"-"`

	requestedByID string
	sealedSecret  []byte
	// excluded are the users the plan barred from deciding, with the
	// rule that refuses them (Plan.Approvers.Excluded).
	excluded     []string
	excludedRule string
}

// Approvers are who may decide an approval, as the API shows them.
type Approvers struct {
	SecurityOfficer bool   `json:"security_officer"`
	DepartmentHead  string `json:"department_head,omitempty"`
	// Permission, if set, is the permission whose holders decide (e.g.
	// deid.approve: medical affairs); it comes with the kind.
	Permission string `json:"permission,omitempty"`
}

func (a Approvers) policy() policy.Approvers {
	return policy.Approvers{Security: a.SecurityOfficer, Department: a.DepartmentHead, Permission: policy.Permission(a.Permission)}
}

// Plan is what a kind's Check makes of a request.
type Plan struct {
	// Subject is the user whose rights the operation changes ("" for none).
	Subject string
	// Payload is the request's payload, normalised.
	Payload any
	// Approvers are who may decide it.
	Approvers policy.Approvers
	// TargetType and TargetID name what the run changes.
	TargetType, TargetID string
	// Secret, if set, is shown once to the requester; KeepSecret keeps it
	// (sealed) for the run.
	Secret     string
	KeepSecret bool
	// OnRequest, if set, commits with the request (e.g. a pending key).
	OnRequest audit.Mutation
}

// Kind is a kind of operation that needs four eyes.
type Kind struct {
	Name string
	// RequestPermission is what the requester must hold.
	RequestPermission policy.Permission
	// Subject reads, before anything is checked, the user whose rights
	// the request would change, so that the policy can refuse a request
	// about one's own account (deny.own_account) for the kinds that
	// request on user.manage or careteam.manage.
	Subject func(payload json.RawMessage) string
	// Resource, if set, is what the request is decided on instead of the
	// approval itself (a patient, for a care-team request: the requester
	// must relate to the patient).
	Resource func(ctx context.Context, payload json.RawMessage) (policy.Resource, error)
	// Check validates the payload for the requester and plans the
	// operation; reason is the request's (sealed: never in the payload),
	// id the new approval's id.
	Check func(ctx context.Context, call *medguard.Call, payload json.RawMessage, reason, id string) (*Plan, error)
	// Run returns the mutation that carries the approved operation out,
	// committed with the approval's audit entry, and a secret to show the
	// approver once (or ""). secret is the one the request kept.
	Run func(ctx context.Context, a *Approval, approver *medguard.Call, secret string) (audit.Mutation, string, error)
	// RunAction names the operation in the audit log once it has run.
	RunAction string
	// Approver, if set, is the permission whose holders decide requests of
	// this kind (e.g. deid.approve for de-identification jobs), besides
	// the approvers the plan names.
	Approver policy.Permission
	// After, if set, is told of an approved request once it has run and
	// committed (a register reloads what it keeps in memory, say).
	After func(ctx context.Context, a *Approval)
}

// Service is the approvals capability.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	identity *identity.Service
	records  *records.Service
	clock    medguard.Clock
	kinds    map[string]Kind
	// TTL is how long a request waits for a decision (default 7 days).
	TTL time.Duration
}

// New returns the approvals service with the built-in kinds.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, id *identity.Service, rec *records.Service) *Service {
	s := &Service{db: db, gate: g, keys: kr, identity: id, records: rec, clock: g.Clock(), kinds: map[string]Kind{},
		TTL: 7 * 24 * time.Hour}
	for _, k := range s.builtinKinds() {
		s.Register(k)
	}
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

// NewRequest asks for an operation.
type NewRequest struct {
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
	Reason  string          `json:"reason"`
}

// sealer is the key approvals' free text is sealed with.
func (s *Service) sealer(ctx context.Context) (*keys.DataKey, error) {
	k, err := s.keys.SystemKey(ctx, "approvals")
	return k, medguard.Wrap("approvals.sealer", err)
}

func loc(id, column string) keys.Location {
	return keys.Location{Table: "approvals", Row: id, Column: column}
}

// Request files a four-eyes request. The requester must hold the kind's
// request permission, and — for kinds on user.manage and careteam.manage —
// may not ask about their own account.
func (s *Service) Request(ctx context.Context, call *medguard.Call, in NewRequest) (*Approval, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	a := &Approval{ID: medguard.NewID(now), Kind: in.Kind, Reason: strings.TrimSpace(in.Reason), RequestedBy: call.Actor.Name,
		requestedByID: call.Actor.ID, RequestedAt: now, ExpiresAt: now.Add(s.TTL), Status: Pending}
	k, known := s.kinds[in.Kind]
	res := policy.Resource{Type: "approval", ID: a.ID}
	perm := k.RequestPermission
	if !known {
		perm = policy.DirectoryRead // anyone may learn that a kind is unknown
	} else {
		if k.Resource != nil {
			var err error
			if res, err = k.Resource(ctx, in.Payload); err != nil {
				return nil, err
			}
		}
		if k.Subject != nil {
			res.SubjectUserID = k.Subject(in.Payload)
		}
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: perm, AuditAction: "approval.request", Resource: res},
		func(policy.Decision) (audit.Mutation, error) {
			if !known {
				return nil, medguard.InvalidField("kind", "unknown kind of approval")
			}
			if _, err := medguard.Text("reason", a.Reason, 500, true); err != nil {
				return nil, err
			}
			plan, err := k.Check(ctx, call, in.Payload, a.Reason, a.ID)
			if err != nil {
				return nil, err
			}
			norm, err := json.Marshal(plan.Payload)
			if err != nil {
				return nil, err
			}
			a.SubjectUserID, a.Payload, a.TargetType, a.TargetID = plan.Subject, norm, plan.TargetType, plan.TargetID
			a.Approvers = Approvers{SecurityOfficer: plan.Approvers.Security, DepartmentHead: plan.Approvers.Department,
				Permission: string(k.Approver)}
			a.excluded, a.excludedRule = plan.Approvers.Excluded, plan.Approvers.ExcludedRule
			a.Secret = plan.Secret
			if err := s.noDuplicate(ctx, a); err != nil {
				return nil, err
			}
			sk, err := s.sealer(ctx)
			if err != nil {
				return nil, err
			}
			reason := sk.SealString(loc(a.ID, "reason"), a.Reason)
			var secret []byte
			if plan.KeepSecret {
				secret = sk.SealString(loc(a.ID, "secret"), plan.Secret)
			}
			security := 0
			if a.Approvers.SecurityOfficer {
				security = 1
			}
			return func(ctx context.Context, tx *sql.Tx, index uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO approvals (id, kind, payload, subject_user_id, reason, requested_by,
					requested_by_name, requested_at, expires_at, status, approve_security, approve_department, target_type,
					target_id, reason_sealed, secret, excluded_users, excluded_rule)
					VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
					a.ID, a.Kind, string(a.Payload), storage.NullString(a.SubjectUserID), call.Actor.ID, call.Actor.Name,
					medguard.Millis(now), medguard.Millis(a.ExpiresAt), Pending, security, storage.NullString(a.Approvers.DepartmentHead),
					storage.NullString(a.TargetType), storage.NullString(a.TargetID), reason, secret,
					strings.Join(a.excluded, ","), a.excludedRule)
				if err != nil || plan.OnRequest == nil {
					return err
				}
				return plan.OnRequest(ctx, tx, index)
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
	status, decided_by_name, decided_at, decision_note, approve_security, COALESCE(approve_department, ''),
	COALESCE(target_type, ''), COALESCE(target_id, ''), reason_sealed, note_sealed, secret, excluded_users, excluded_rule`

// scan reads an approval, opening its sealed text.
func (s *Service) scan(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*Approval, error) {
	var a Approval
	var payload string
	var subject, decidedBy, note sql.NullString
	var requested, expires int64
	var decided sql.NullInt64
	var security int
	var reason, sealedNote []byte
	var excluded string
	if err := sc.Scan(&a.ID, &a.Kind, &payload, &subject, &a.Reason, &a.requestedByID, &a.RequestedBy, &requested,
		&expires, &a.Status, &decidedBy, &decided, &note, &security, &a.Approvers.DepartmentHead, &a.TargetType, &a.TargetID,
		&reason, &sealedNote, &a.sealedSecret, &excluded, &a.excludedRule); err != nil {
		return nil, err
	}
	if excluded != "" {
		a.excluded = strings.Split(excluded, ",")
	}
	a.Approvers.SecurityOfficer = security != 0
	if k, ok := s.kinds[a.Kind]; ok {
		a.Approvers.Permission = string(k.Approver)
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
	var err error
	if reason != nil {
		if a.Reason, err = s.keys.OpenString(ctx, "system:approvals", loc(a.ID, "reason"), reason); err != nil {
			return nil, err
		}
	}
	if sealedNote != nil {
		if a.DecisionNote, err = s.keys.OpenString(ctx, "system:approvals", loc(a.ID, "decision_note"), sealedNote); err != nil {
			return nil, err
		}
	}
	return &a, nil
}

var errNoApproval = &medguard.Error{Kind: medguard.NotFound, Message: "no such approval"}

func (s *Service) load(ctx context.Context, id string) (*Approval, error) {
	if !medguard.ValidID(id) {
		return nil, errNoApproval
	}
	a, err := s.scan(ctx, s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM approvals WHERE id = $1`, id), s.clock.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoApproval
	}
	return a, medguard.Wrap("approvals.load", err)
}

// resource is what the policy needs to know of an approval to decide it.
func (a *Approval) resource() policy.Resource {
	ap := a.Approvers.policy()
	ap.Excluded, ap.ExcludedRule = a.excluded, a.excludedRule
	return policy.Resource{Type: "approval", ID: a.ID, RequestedBy: a.requestedByID, SubjectUserID: a.SubjectUserID,
		Approvers: ap}
}

// decider is the passage of someone deciding (or reading) an approval: the
// policy needs who created, changed or reset their account.
func (s *Service) decider(ctx context.Context, call *medguard.Call, action string, r policy.Resource) (gate.Passage, error) {
	p := gate.Passage{Call: call, Action: policy.ApprovalDecide, AuditAction: action, Resource: r}
	var err error
	p.ChangedBy, err = s.identity.ChangedBy(ctx, call.Actor.ID)
	return p, err
}

// Get returns one approval, to its requester or to someone who may decide it.
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Approval, error) {
	a, err := s.load(ctx, id)
	if err != nil && !medguard.IsKind(err, medguard.NotFound) {
		return nil, err
	}
	var pass gate.Passage
	switch {
	case a == nil:
		pass, err = s.decider(ctx, call, "approval.read", policy.Resource{Type: "approval", ID: id, Missing: true})
	case a.requestedByID == call.Actor.ID:
		pass = gate.Passage{Call: call, Action: s.kinds[a.Kind].RequestPermission, AuditAction: "approval.read",
			Resource: policy.Resource{Type: "approval", ID: id}}
	default:
		pass, err = s.decider(ctx, call, "approval.read", a.resource())
	}
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if a == nil {
			return nil, errNoApproval
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// List returns approvals with the given status (default pending), newest
// first: the inbox of requests the caller may decide, and the caller's own
// requests.
func (s *Service) List(ctx context.Context, call *medguard.Call, status, before string, limit int) ([]Approval, string, error) {
	now := s.clock.Now()
	out := []Approval{}
	var next string
	perms := policy.PermissionsOf(call.Actor.Roles)
	security, head := perms[policy.ApprovalDecide], perms[policy.ApprovalDecideDepartment] && call.Actor.Department != ""
	// The kinds the caller decides by a permission of their own (deid.job
	// for medical affairs).
	var named []string
	for _, k := range s.kinds {
		if k.Approver != "" && perms[k.Approver] {
			named = append(named, k.Name)
		}
	}
	slices.Sort(named)
	namedSQL := ""
	for i := range named {
		if i > 0 {
			namedSQL += ", "
		}
		namedSQL += "'" + named[i] + "'" // kind names are constants of the code, never input
	}
	if namedSQL != "" {
		namedSQL = ` OR kind IN (` + namedSQL + `)`
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DirectoryRead, AuditAction: "approval.list",
		Resource: policy.Resource{Type: "approval"}},
		func(policy.Decision) (audit.Mutation, error) {
			if status == "" {
				status = Pending
			}
			q := `SELECT ` + columns + ` FROM approvals WHERE ($1 = '' OR id < $1)
				AND (requested_by = $2 OR ($3 = 1 AND approve_security = 1) OR ($4 = 1 AND approve_department = $5)` + namedSQL + `)`
			args := []any{before, call.Actor.ID, boolInt(security), boolInt(head), call.Actor.Department}
			switch status {
			case Pending:
				q += ` AND status = 'pending' AND expires_at > $6`
				args = append(args, medguard.Millis(now))
			case Expired:
				q += ` AND status = 'pending' AND expires_at <= $6`
				args = append(args, medguard.Millis(now))
			case Approved, Refused, Cancelled:
				q += ` AND status = $6`
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
				a, err := s.scan(ctx, rows, now)
				if err != nil {
					return nil, err
				}
				if len(out) == limit {
					next = out[len(out)-1].ID
					break
				}
				out = append(out, *a)
			}
			if err := rows.Err(); err != nil || !security && !head && len(named) == 0 {
				return nil, err
			}
			// Who may decide each item, as the policy would decide it.
			changedBy, err := s.identity.ChangedBy(ctx, call.Actor.ID)
			if err != nil {
				return nil, err
			}
			for i := range out {
				a := &out[i]
				a.MayDecide = a.Status == Pending && s.gate.Check(gate.Passage{Call: call, Action: policy.ApprovalDecide,
					Resource: a.resource(), ChangedBy: changedBy}).Allowed
			}
			return nil, nil
		})
	return out, next, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Approve approves a pending request and runs it, in one transaction. The
// approver must be eligible (a security officer, or the head of the
// department it concerns) and be neither the requester, nor the user whose
// rights change, nor someone whose account the requester shaped.
func (s *Service) Approve(ctx context.Context, call *medguard.Call, id, note string) (*Approval, error) {
	return s.decide(ctx, call, id, note, Approved)
}

// Refuse refuses a pending request.
func (s *Service) Refuse(ctx context.Context, call *medguard.Call, id, note string) (*Approval, error) {
	return s.decide(ctx, call, id, note, Refused)
}

func (s *Service) decide(ctx context.Context, call *medguard.Call, id, note, outcome string) (*Approval, error) {
	action := "approval.approve"
	if outcome == Refused {
		action = "approval.refuse"
	}
	a, err := s.load(ctx, id)
	if err != nil {
		if !medguard.IsKind(err, medguard.NotFound) {
			return nil, err
		}
		pass, perr := s.decider(ctx, call, action, policy.Resource{Type: "approval", ID: id, Missing: true})
		if perr != nil {
			return nil, perr
		}
		return nil, s.gate.Missing(ctx, pass, err)
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	note = strings.TrimSpace(note)
	k := s.kinds[a.Kind]
	pass, err := s.decider(ctx, call, action, a.resource())
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if _, err := medguard.Text("note", note, 500, false); err != nil {
			return nil, err
		}
		if outcome == Refused && note == "" {
			return nil, medguard.InvalidField("note", "say why the request is refused")
		}
		if a.Status != Pending {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the request is " + a.Status + ", not pending"}
		}
		sk, err := s.sealer(ctx)
		if err != nil {
			return nil, err
		}
		var run audit.Mutation
		if outcome == Approved {
			if k.Run == nil {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "this kind of request can no longer run"}
			}
			var kept string
			if a.sealedSecret != nil {
				if kept, err = s.keys.OpenString(ctx, "system:approvals", loc(a.ID, "secret"), a.sealedSecret); err != nil {
					return nil, err
				}
			}
			if run, a.Secret, err = k.Run(ctx, a, call, kept); err != nil {
				return nil, err
			}
		}
		var sealedNote []byte
		if note != "" {
			sealedNote = sk.SealString(loc(a.ID, "decision_note"), note)
		}
		a.Status, a.DecidedBy, a.DecidedAt, a.DecisionNote = outcome, call.Actor.Name, &now, note
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			// The kept secret is erased with the decision: it is needed once.
			res, err := tx.ExecContext(ctx, `UPDATE approvals SET status = $1, decided_by = $2, decided_by_name = $3,
				decided_at = $4, note_sealed = $5, secret = NULL WHERE id = $6 AND status = 'pending' AND expires_at > $4`,
				outcome, call.Actor.ID, call.Actor.Name, medguard.Millis(now), sealedNote, id)
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
		targetType, targetID := a.TargetType, a.TargetID
		if targetType == "" {
			targetType, targetID = "user", a.SubjectUserID
		}
		if _, err := s.gate.Record(ctx, gate.Event{Call: call, Action: k.RunAction, TargetType: targetType,
			TargetID: targetID, Allowed: true, Rule: "allow.four_eyes:" + a.ID}, nil); err != nil {
			return nil, err
		}
		if k.After != nil {
			k.After(context.WithoutCancel(ctx), a)
		}
	}
	return a, nil
}

// Cancel withdraws one's own pending request.
func (s *Service) Cancel(ctx context.Context, call *medguard.Call, id string) (*Approval, error) {
	a, err := s.load(ctx, id)
	perm := policy.DirectoryRead
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
				_, err := tx.ExecContext(ctx, `UPDATE approvals SET status = 'cancelled', decided_at = $1, secret = NULL
					WHERE id = $2 AND status = 'pending'`, medguard.Millis(now), id)
				return err
			}, nil
		})
	if gerr != nil {
		return nil, gerr
	}
	return a, nil
}

// SealClearText seals the reasons and notes that requests filed before
// they were sealed still hold in clear, once, at start (as medguard
// itself, in the audit log).
func (s *Service) SealClearText(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, reason, COALESCE(decision_note, '') FROM approvals
		WHERE reason <> '' OR decision_note IS NOT NULL`)
	if err != nil {
		return medguard.Wrap("approvals.SealClearText", err)
	}
	type clear struct{ id, reason, note string }
	var todo []clear
	for rows.Next() {
		var c clear
		if err := rows.Scan(&c.id, &c.reason, &c.note); err != nil {
			rows.Close()
			return medguard.Wrap("approvals.SealClearText", err)
		}
		todo = append(todo, c)
	}
	rows.Close()
	if len(todo) == 0 {
		return medguard.Wrap("approvals.SealClearText", rows.Err())
	}
	sk, err := s.sealer(ctx)
	if err != nil {
		return err
	}
	system := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}
	_, err = s.gate.Record(ctx, gate.Event{Call: system, Action: "approval.seal_text", TargetType: "approval",
		Allowed: true, Rule: "allow.system"}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		for _, c := range todo {
			var note []byte
			if c.note != "" {
				note = sk.SealString(loc(c.id, "decision_note"), c.note)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE approvals SET reason = '', decision_note = NULL, reason_sealed = $1,
				note_sealed = COALESCE($2, note_sealed) WHERE id = $3`, sk.SealString(loc(c.id, "reason"), c.reason), note, c.id); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// KindsOf returns the kind of each approval named (unknown ids are left
// out): what a capability needs to read an "approval.request" audit entry,
// whose target is the approval (the partners' inspection). Kinds are names
// of the code; no payload or reason is disclosed.
func (s *Service) KindsOf(ctx context.Context, ids ...string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		var kind string
		err := s.db.QueryRowContext(ctx, `SELECT kind FROM approvals WHERE id = $1`, id).Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, medguard.Wrap("approvals.KindsOf", err)
		}
		out[id] = kind
	}
	return out, nil
}

// StatusOf returns the status of each approval named (pending ones past
// their expiry as expired), for a capability that files its requests here
// and shows them as their approvals stand (de-identification jobs). It
// discloses no payload or reason.
func (s *Service) StatusOf(ctx context.Context, ids ...string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	now := medguard.Millis(s.clock.Now())
	for _, id := range ids {
		var status string
		var expires int64
		err := s.db.QueryRowContext(ctx, `SELECT status, expires_at FROM approvals WHERE id = $1`, id).Scan(&status, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, medguard.Wrap("approvals.StatusOf", err)
		}
		if status == Pending && now >= expires {
			status = Expired
		}
		out[id] = status
	}
	return out, nil
}
