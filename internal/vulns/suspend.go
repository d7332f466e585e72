package vulns

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Suspensions (病案室暂停相关操作, seed 003 §3.4.1): while a critical
// vulnerability of an asset of the records system is open, a security
// officer may suspend named operations for everyone; the gate refuses
// them with deny.operation_suspended. Setting one restricts and needs one
// security officer; it ends by itself when the vulnerability is fixed or
// closed, and ending it earlier — which opens — is a four-eyes request
// another security officer decides (kind vulns.suspension_lift).

// Suspendable are the operations a suspension may name: those that let
// records leave the archive or change them.
var Suspendable = []policy.Permission{policy.RecordExport, policy.RecordWrite, policy.RecordArchive, policy.RecordDestroy,
	policy.PatientUpdate, policy.CopyManage, policy.DeidRun, policy.DeidRead}

// Suspension is operations suspended while a vulnerability is open.
type Suspension struct {
	ID      string              `json:"id"`
	VulnID  string              `json:"vuln_id"`
	AssetID string              `json:"asset_id"`
	Actions []policy.Permission `json:"actions"`
	// Reason says why (sealed at rest).
	Reason string    `json:"reason"`
	SetBy  string    `json:"set_by"`
	SetAt  time.Time `json:"set_at"`
	// Active is true while it is in force: not lifted, and its
	// vulnerability open.
	Active   bool       `json:"active"`
	LiftedAt *time.Time `json:"lifted_at,omitempty"`
	LiftedBy string     `json:"lifted_by,omitempty"`
	// LiftReason is why it ended: the state its vulnerability reached
	// (fixed, accepted, false_positive), or approval:<id> for an early
	// lift.
	LiftReason string `json:"lift_reason,omitempty"`
}

// NewSuspension suspends operations.
type NewSuspension struct {
	Actions []policy.Permission `json:"actions"`
	Reason  string              `json:"reason"`
}

// Suspend suspends operations while a critical vulnerability of an asset
// of the records system is open (vuln.suspend: a security officer alone —
// it restricts). The vulnerability may hold one suspension at a time. It
// is in force at once on this server and within seconds on the others.
func (s *Service) Suspend(ctx context.Context, call *medguard.Call, vulnID string, in NewSuspension) (*Suspension, error) {
	if len(in.Actions) == 0 {
		return nil, medguard.InvalidField("actions", "name the operations to suspend")
	}
	var actions []policy.Permission
	for _, a := range in.Actions {
		if !slices.Contains(Suspendable, a) {
			return nil, medguard.InvalidField("actions", "an operation suspended must be one of %s", joinPerms(Suspendable))
		}
		if !slices.Contains(actions, a) {
			actions = append(actions, a)
		}
	}
	reason, err := medguard.Text("reason", in.Reason, MaxNote, true)
	if err != nil {
		return nil, err
	}
	v, err := s.load(ctx, call, policy.VulnSuspend, "vuln.suspend", vulnID)
	if err != nil {
		return nil, err
	}
	refs, err := s.assets.Lookup(ctx, v.AssetID)
	if err != nil {
		return nil, err
	}
	k, err := s.sealer(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	sp := &Suspension{ID: medguard.NewID(now), VulnID: v.ID, AssetID: v.AssetID, Actions: actions, Reason: reason, SetBy: call.Actor.Name,
		SetAt: now, Active: true}
	sealed := k.SealString(keys.Location{Table: "vuln_suspensions", Row: sp.ID, Column: "reason"}, reason)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnSuspend, AuditAction: "vuln.suspend",
		Resource: vulnResource(v.ID)}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case !Open(v.Status):
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the vulnerability is " + v.Status + ": nothing to suspend for"}
		case v.Severity != Critical:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "only a critical vulnerability suspends operations"}
		case !refs[v.AssetID].RecordsSystem:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "only a vulnerability of the records system suspends operations"}
		}
		list, _ := json.Marshal(actions)
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO vuln_suspensions (id, vuln_id, asset_id, actions, reason, set_by, set_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, sp.ID, v.ID, v.AssetID, string(list), sealed, call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Message: "the vulnerability suspends operations already"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.Reload(ctx)
	return sp, nil
}

func joinPerms(ps []policy.Permission) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return strings.Join(out, ", ")
}

// endSuspensions ends, in a transaction that resolves the vulnerability,
// the suspensions it holds; it returns their ids.
func endSuspensions(ctx context.Context, tx *sql.Tx, vulnID string, now time.Time, by, reason string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM vuln_suspensions WHERE vuln_id = $1 AND lifted_at IS NULL`, vulnID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE vuln_suspensions SET lifted_at = $1, lifted_by = $2, lift_reason = $3
		WHERE vuln_id = $4 AND lifted_at IS NULL`, medguard.Millis(now), by, reason, vulnID)
	return ids, err
}

const suspensionColumns = `p.id, p.vuln_id, p.asset_id, p.actions, p.reason, p.set_by, p.set_at, p.lifted_at, p.lifted_by, p.lift_reason, v.status`

func (s *Service) scanSuspension(ctx context.Context, sc interface{ Scan(...any) error }) (*Suspension, error) {
	var p Suspension
	var actions, status string
	var reason []byte
	var set int64
	var lifted sql.NullInt64
	var liftedBy, liftReason sql.NullString
	if err := sc.Scan(&p.ID, &p.VulnID, &p.AssetID, &actions, &reason, &p.SetBy, &set, &lifted, &liftedBy, &liftReason, &status); err != nil {
		return nil, err
	}
	p.Actions = []policy.Permission{}
	json.Unmarshal([]byte(actions), &p.Actions)
	p.SetAt, p.LiftedBy, p.LiftReason = medguard.FromMillis(set), liftedBy.String, liftReason.String
	if lifted.Valid {
		t := medguard.FromMillis(lifted.Int64)
		p.LiftedAt = &t
	}
	p.Active = !lifted.Valid && Open(status)
	var err error
	p.Reason, err = s.open(ctx, "vuln_suspensions", p.ID, "reason", reason)
	return &p, err
}

func (s *Service) suspensionsOf(ctx context.Context, vulnID string) ([]Suspension, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+suspensionColumns+` FROM vuln_suspensions p JOIN vulns v ON v.id = p.vuln_id
		WHERE p.vuln_id = $1 ORDER BY p.set_at, p.id`, vulnID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Suspension{}
	for rows.Next() {
		p, err := s.scanSuspension(ctx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// ListSuspensions lists the suspensions, newest first: those in force, or
// all of them (vuln.read).
func (s *Service) ListSuspensions(ctx context.Context, call *medguard.Call, activeOnly bool) ([]Suspension, error) {
	out := []Suspension{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnRead, AuditAction: "vuln.suspension_list",
		Resource: policy.Resource{Type: "suspension"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+suspensionColumns+` FROM vuln_suspensions p JOIN vulns v ON v.id = p.vuln_id
			ORDER BY p.set_at DESC, p.id DESC LIMIT 500`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := s.scanSuspension(ctx, rows)
			if err != nil {
				return nil, err
			}
			if !activeOnly || p.Active {
				out = append(out, *p)
			}
		}
		return nil, rows.Err()
	})
	return out, err
}

// Reload reads the operations suspended now into memory. Until it
// succeeds (and after it fails) every suspendable operation is refused:
// a register that cannot tell restricts rather than opens.
func (s *Service) Reload(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT p.actions FROM vuln_suspensions p JOIN vulns v ON v.id = p.vuln_id
		WHERE p.lifted_at IS NULL AND v.status IN ($1, $2, $3)`, StatusNew, StatusConfirmed, StatusFixing)
	var set []policy.Permission
	if err == nil {
		for rows.Next() {
			var list string
			if err = rows.Scan(&list); err != nil {
				break
			}
			var ps []policy.Permission
			json.Unmarshal([]byte(list), &ps)
			for _, p := range ps {
				if !slices.Contains(set, p) && slices.Contains(Suspendable, p) {
					set = append(set, p)
				}
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	s.susMu.Lock()
	defer s.susMu.Unlock()
	if err != nil {
		s.unknown = true
		return medguard.Wrap("vulns.Reload", err)
	}
	slices.SortFunc(set, func(a, b policy.Permission) int { return slices.Index(Suspendable, a) - slices.Index(Suspendable, b) })
	s.suspended, s.unknown = set, false
	return nil
}

// Watch reloads the suspensions in force every interval until ctx ends
// (other servers' changes reach this one within it), passing failures to
// onError (may be nil).
func (s *Service) Watch(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, s.Reload, onError)
}

// Suspended returns the operations suspended now, from memory (every
// suspendable one while the register cannot tell): what the console's
// banner shows to those who hold them.
func (s *Service) Suspended() []policy.Permission {
	s.susMu.RLock()
	defer s.susMu.RUnlock()
	if s.unknown {
		return slices.Clone(Suspendable)
	}
	return slices.Clone(s.suspended)
}

// Restrictions is the gate's source of the suspensions (gate.Restrict): it
// closes the suspended operations to everyone with
// deny.operation_suspended, break-glass included. It answers from memory.
func (s *Service) Restrictions(_ *medguard.Actor, _ time.Time) (own, all []policy.Restriction) {
	ops := s.Suspended()
	if len(ops) == 0 {
		return nil, nil
	}
	return nil, []policy.Restriction{{Rule: policy.RuleOperationSuspended, Actions: ops}}
}

// LiftKind is the kind of four-eyes request that lifts a suspension
// before its vulnerability is fixed.
const LiftKind = "vulns.suspension_lift"

// LiftPayload is a request to lift a suspension early.
type LiftPayload struct {
	SuspensionID string `json:"suspension_id"`
}

// LiftRequest is the four-eyes request that lifts a suspension early
// (kind vulns.suspension_lift); reason says why the operations may resume
// before the fix.
func LiftRequest(suspensionID, reason string) (approvals.NewRequest, error) {
	raw, err := json.Marshal(LiftPayload{SuspensionID: suspensionID})
	return approvals.NewRequest{Kind: LiftKind, Payload: raw, Reason: reason}, err
}

func (s *Service) activeSuspension(ctx context.Context, raw json.RawMessage) (*Suspension, error) {
	var p LiftPayload
	if err := json.Unmarshal(raw, &p); err != nil || !medguard.ValidID(p.SuspensionID) {
		return nil, medguard.InvalidField("payload.suspension_id", "suspension_id must be a suspension's id")
	}
	sp, err := s.scanSuspension(ctx, s.db.QueryRowContext(ctx, `SELECT `+suspensionColumns+` FROM vuln_suspensions p
		JOIN vulns v ON v.id = p.vuln_id WHERE p.id = $1`, p.SuspensionID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &medguard.Error{Kind: medguard.NotFound, Field: "payload.suspension_id", Message: "no such suspension"}
	}
	if err != nil {
		return nil, medguard.Wrap("vulns.activeSuspension", err)
	}
	if !sp.Active {
		return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the suspension is no longer in force"}
	}
	return sp, nil
}

// SuspensionLiftKind is the four-eyes request that lifts a suspension
// early: asked by a holder of vuln.suspend, decided by a security officer
// who did not ask. The lift runs in the approval's transaction; the
// operations resume at once on this server.
func (s *Service) SuspensionLiftKind() approvals.Kind {
	return approvals.Kind{
		Name: LiftKind, RequestPermission: policy.VulnSuspend, RunAction: "vuln.suspension_lift",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, reason, _ string) (*approvals.Plan, error) {
			sp, err := s.activeSuspension(ctx, raw)
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(reason) == "" {
				return nil, medguard.InvalidField("reason", "say why the operations may resume before the fix")
			}
			return &approvals.Plan{Payload: LiftPayload{SuspensionID: sp.ID}, Approvers: policy.Approvers{Security: true},
				TargetType: "suspension", TargetID: sp.ID}, nil
		},
		Run: func(ctx context.Context, a *approvals.Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			sp, err := s.activeSuspension(ctx, a.Payload)
			if err != nil {
				return nil, "", err
			}
			now := s.clock.Now().Truncate(time.Millisecond)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE vuln_suspensions SET lifted_at = $1, lifted_by = $2, lift_reason = $3
					WHERE id = $4 AND lifted_at IS NULL`, medguard.Millis(now), approver.Actor.Name, "approval:"+a.ID, sp.ID)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the suspension ended meanwhile"})
			}, "", nil
		},
		After: func(ctx context.Context, _ *approvals.Approval) { s.Reload(ctx) },
	}
}
