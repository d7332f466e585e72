package datause

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// The states of a record-use request. Expired is never stored: a pending
// or approved request whose period has ended is expired.
const (
	Pending   = "pending"
	Approved  = "approved"
	Refused   = "refused"
	Withdrawn = "withdrawn"
	Expired   = "expired"
)

// UseStatuses lists the states a request may be in.
var UseStatuses = []string{Pending, Approved, Refused, Withdrawn, Expired}

// MaxReason is the longest reason or note, in characters.
const MaxReason = 500

// UseRequest is a record-use request (借阅/调阅): a member of staff asks to
// read a patient's records — the named ones, every one of the named
// types, or all — for a purpose and a period.
type UseRequest struct {
	ID                  string     `json:"id"`
	PatientID           string     `json:"patient_id"`
	RecordIDs           []string   `json:"record_ids"`
	RecordTypes         []string   `json:"record_types"`
	Purpose             string     `json:"purpose"`
	Reason              string     `json:"reason"`
	From                time.Time  `json:"from"`
	Until               time.Time  `json:"until"`
	Requester           string     `json:"requester"`
	RequesterID         string     `json:"requester_id"`
	RequesterDepartment string     `json:"requester_department"`
	Departments         []string   `json:"departments"`
	Restricted          bool       `json:"restricted"`
	ApproverDepartment  string     `json:"approver_department,omitempty"`
	Status              string     `json:"status"`
	DecidedBy           string     `json:"decided_by,omitempty"`
	DecidedAt           *time.Time `json:"decided_at,omitempty"`
	Note                string     `json:"note,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	// MayDecide says whether the caller may approve or refuse it now.
	MayDecide bool `json:"may_decide"`
	// Active says whether it opens records now.
	Active bool `json:"active"`
}

// NewUseRequest asks for a record-use request. With neither RecordIDs nor
// RecordTypes it asks for all the patient's records (restricted ones
// excepted: those must be named).
type NewUseRequest struct {
	PatientID   string    `json:"patient_id"`
	RecordIDs   []string  `json:"record_ids,omitempty"`
	RecordTypes []string  `json:"record_types,omitempty"`
	Purpose     string    `json:"purpose"`
	Reason      string    `json:"reason"`
	From        time.Time `json:"from,omitzero"`
	Until       time.Time `json:"until"`
}

// UsePurposes are the purposes a record-use request may declare (a subset
// of policy.Purposes: codes, never free text).
var UsePurposes = []string{"treatment", "care_coordination", "quality_control", "research", "legal", "billing",
	"patient_request", "audit"}

// checkUse validates a request and works out whose approval it needs: the
// records office, or — when it names restricted records — the head of the
// one department that owns them.
func (s *Service) checkUse(ctx context.Context, in NewUseRequest, now time.Time) (NewUseRequest, []string, string, error) {
	if ok, err := s.records.PatientExists(ctx, in.PatientID); err != nil {
		return in, nil, "", err
	} else if !ok {
		return in, nil, "", medguard.InvalidField("patient_id", "no such patient")
	}
	if len(in.RecordIDs) > 100 || len(in.RecordTypes) > len(policy.RecordTypes) {
		return in, nil, "", medguard.InvalidField("record_ids", "too many records named")
	}
	for _, t := range in.RecordTypes {
		if !policy.KnownRecordType(t) {
			return in, nil, "", medguard.InvalidField("record_types", "unknown record type")
		}
	}
	slices.Sort(in.RecordIDs)
	in.RecordIDs = slices.Compact(in.RecordIDs)
	slices.Sort(in.RecordTypes)
	in.RecordTypes = slices.Compact(in.RecordTypes)
	facts, err := s.records.RecordFacts(ctx, in.RecordIDs)
	if medguard.IsKind(err, medguard.NotFound) {
		return in, nil, "", medguard.InvalidField("record_ids", "no such record")
	} else if err != nil {
		return in, nil, "", err
	}
	var restrictedDepts, depts []string
	for _, f := range facts {
		if f.PatientID != in.PatientID {
			return in, nil, "", medguard.InvalidField("record_ids", "a record named is not the patient's")
		}
		if !slices.Contains(depts, f.Department) {
			depts = append(depts, f.Department)
		}
		if f.Restricted && !slices.Contains(restrictedDepts, f.Department) {
			restrictedDepts = append(restrictedDepts, f.Department)
		}
	}
	if len(in.RecordIDs) == 0 {
		if depts, err = s.records.PatientDepartments(ctx, in.PatientID); err != nil {
			return in, nil, "", err
		}
	}
	for _, t := range in.RecordTypes {
		if policy.Restricted(t) {
			return in, nil, "", medguard.InvalidField("record_types", "restricted records must be named one by one")
		}
	}
	approver := ""
	switch len(restrictedDepts) {
	case 0:
	case 1:
		approver = restrictedDepts[0]
		if len(depts) > 1 {
			return in, nil, "", medguard.InvalidField("record_ids", "ask for restricted records apart from the others")
		}
	default:
		return in, nil, "", medguard.InvalidField("record_ids", "restricted records of different departments need separate requests")
	}
	if !slices.Contains(UsePurposes, in.Purpose) {
		return in, nil, "", medguard.InvalidField("purpose", "purpose must be one of %s", strings.Join(UsePurposes, ", "))
	}
	if in.Reason, err = medguard.Text("reason", in.Reason, MaxReason, true); err != nil {
		return in, nil, "", err
	}
	if in.From.IsZero() {
		in.From = now
	}
	switch {
	case in.Until.IsZero():
		return in, nil, "", medguard.InvalidField("until", "until is required")
	case !in.Until.After(in.From) || !in.Until.After(now):
		return in, nil, "", medguard.InvalidField("until", "until must be after from and in the future")
	case in.Until.Sub(in.From) > s.cfg.MaxUse:
		return in, nil, "", medguard.InvalidField("until", "a request may last at most %d days", int(s.cfg.MaxUse.Hours()/24))
	case in.From.Before(now.Add(-time.Minute)):
		return in, nil, "", medguard.InvalidField("from", "from may not be in the past")
	}
	in.From, in.Until = in.From.UTC().Truncate(time.Millisecond), in.Until.UTC().Truncate(time.Millisecond)
	slices.Sort(depts)
	return in, depts, approver, nil
}

// AskUse files a record-use request (permission use.request).
func (s *Service) AskUse(ctx context.Context, call *medguard.Call, in NewUseRequest) (*UseRequest, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	in, depts, approver, err := s.checkUse(ctx, in, now)
	if err != nil {
		return nil, err
	}
	id := medguard.NewID(now)
	reason, err := s.seal(ctx, "use_requests", id, "reason", in.Reason)
	if err != nil {
		return nil, err
	}
	a := call.Actor
	out := &UseRequest{ID: id, PatientID: in.PatientID, RecordIDs: nonNil(in.RecordIDs), RecordTypes: nonNil(in.RecordTypes),
		Purpose: in.Purpose, Reason: in.Reason, From: in.From, Until: in.Until, Requester: a.Name, RequesterID: a.ID,
		RequesterDepartment: a.Department, Departments: nonNil(depts), Restricted: approver != "", ApproverDepartment: approver,
		Status: Pending, CreatedAt: now}
	p := gate.Passage{Call: call, Action: policy.UseRequest, AuditAction: "use.request",
		Resource: policy.Resource{Type: "use_request", ID: id, PatientID: in.PatientID, Departments: depts}}
	_, _, err = s.gate.Enter(ctx, p, func(policy.Decision) (audit.Mutation, error) {
		if a.Kind != medguard.UserActor {
			return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission, Message: "only members of staff ask"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			restricted := 0
			if out.Restricted {
				restricted = 1
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO use_requests (id, requester_id, requester, requester_department, patient_id,
				record_ids, record_types, departments, purpose, reason, starts_at, ends_at, restricted, approver_department, status,
				created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
				id, a.ID, a.Name, a.Department, in.PatientID, jsonList(out.RecordIDs), jsonList(out.RecordTypes), jsonList(depts),
				in.Purpose, reason, medguard.Millis(in.From), medguard.Millis(in.Until), restricted, approver, Pending, medguard.Millis(now))
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

const useColumns = `id, requester_id, requester, requester_department, patient_id, record_ids, record_types, departments, purpose,
	reason, note, starts_at, ends_at, restricted, approver_department, status, decided_by, decided_at, created_at`

func (s *Service) scanUse(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*UseRequest, error) {
	var u UseRequest
	var ids, types, depts string
	var reason, note []byte
	var from, until, created int64
	var restricted int
	var decidedBy sql.NullString
	var decidedAt sql.NullInt64
	if err := sc.Scan(&u.ID, &u.RequesterID, &u.Requester, &u.RequesterDepartment, &u.PatientID, &ids, &types, &depts, &u.Purpose,
		&reason, &note, &from, &until, &restricted, &u.ApproverDepartment, &u.Status, &decidedBy, &decidedAt, &created); err != nil {
		return nil, err
	}
	var err error
	if u.Reason, err = s.open(ctx, "use_requests", u.ID, "reason", reason); err != nil {
		return nil, err
	}
	if u.Note, err = s.open(ctx, "use_requests", u.ID, "note", note); err != nil {
		return nil, err
	}
	u.RecordIDs, u.RecordTypes, u.Departments = parseList(ids), parseList(types), parseList(depts)
	u.From, u.Until, u.CreatedAt = medguard.FromMillis(from), medguard.FromMillis(until), medguard.FromMillis(created)
	u.Restricted, u.DecidedBy = restricted != 0, decidedBy.String
	if decidedAt.Valid {
		t := medguard.FromMillis(decidedAt.Int64)
		u.DecidedAt = &t
	}
	if (u.Status == Pending || u.Status == Approved) && !now.Before(u.Until) {
		u.Status = Expired
	}
	u.Active = u.Status == Approved && !now.Before(u.From)
	return &u, nil
}

func (u *UseRequest) resource() policy.Resource {
	return policy.Resource{Type: "use_request", ID: u.ID, PatientID: u.PatientID, Departments: u.Departments,
		RequestedBy: u.RequesterID, Restricted: u.Restricted, Approvers: policy.Approvers{Department: u.ApproverDepartment}}
}

var errNoUse = &medguard.Error{Kind: medguard.NotFound, Message: "no such record-use request"}

// loadUse reads one request; an attempt on a missing one is logged as
// action on a missing target and answered 404.
func (s *Service) loadUse(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*UseRequest, error) {
	var u *UseRequest
	err := errNoUse
	if medguard.ValidID(id) {
		var lerr error
		u, lerr = s.scanUse(ctx, s.db.QueryRowContext(ctx, `SELECT `+useColumns+` FROM use_requests WHERE id = $1`, id), s.clock.Now())
		switch {
		case errors.Is(lerr, sql.ErrNoRows):
		case lerr != nil:
			return nil, medguard.Wrap("datause.loadUse", lerr)
		default:
			err = nil
		}
	}
	if err != nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "use_request", ID: id}}, err)
	}
	return u, nil
}

// DecideUse approves or refuses a pending request (use.approve; for
// restricted records, the owning department's head). Nobody decides their
// own request.
func (s *Service) DecideUse(ctx context.Context, call *medguard.Call, id string, approve bool, note string) (*UseRequest, error) {
	action := "use.refuse"
	if approve {
		action = "use.approve"
	}
	note, err := medguard.Text("note", note, MaxReason, !approve)
	if err != nil {
		return nil, err
	}
	u, err := s.loadUse(ctx, call, policy.UseApprove, action, id)
	if err != nil {
		return nil, err
	}
	changedBy, err := s.identity.ChangedBy(ctx, call.Actor.ID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var sealed []byte
	if note != "" {
		if sealed, err = s.seal(ctx, "use_requests", id, "note", note); err != nil {
			return nil, err
		}
	}
	status := Refused
	if approve {
		status = Approved
	}
	p := gate.Passage{Call: call, Action: policy.UseApprove, AuditAction: action, Resource: u.resource(), ChangedBy: changedBy}
	_, _, err = s.gate.Enter(ctx, p, func(policy.Decision) (audit.Mutation, error) {
		if u.Status != Pending {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the request is " + u.Status + ", not pending"}
		}
		u.Status, u.DecidedBy, u.DecidedAt, u.Note = status, call.Actor.Name, &now, note
		u.Active = approve && !now.Before(u.From)
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE use_requests SET status = $1, decided_by = $2, decided_at = $3, note = $4
				WHERE id = $5 AND status = $6`, status, call.Actor.Name, medguard.Millis(now), sealed, id, Pending)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the request was decided meanwhile"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// WithdrawUse withdraws the caller's own request, pending or approved: an
// approved one closes at once.
func (s *Service) WithdrawUse(ctx context.Context, call *medguard.Call, id string) (*UseRequest, error) {
	u, err := s.loadUse(ctx, call, policy.UseRequest, "use.withdraw", id)
	if err != nil {
		return nil, err
	}
	p := gate.Passage{Call: call, Action: policy.UseRequest, AuditAction: "use.withdraw", Resource: u.resource()}
	_, _, err = s.gate.Enter(ctx, p, func(policy.Decision) (audit.Mutation, error) {
		if u.Status != Pending && u.Status != Approved {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the request is " + u.Status}
		}
		prev := u.Status
		u.Status, u.Active = Withdrawn, false
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE use_requests SET status = $1 WHERE id = $2 AND status = $3`, Withdrawn, id, prev)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the request changed meanwhile"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UseQuery filters the list of requests.
type UseQuery struct {
	// Mine keeps the caller's own requests (the default for those who may
	// see no others).
	Mine bool
	// Status keeps one state (UseStatuses), or all when empty.
	Status string
}

// ListUse lists requests, newest first: the records office (use.read)
// sees them all; a department head, their own and those their department
// decides; everyone else, their own.
func (s *Service) ListUse(ctx context.Context, call *medguard.Call, q UseQuery) ([]UseRequest, error) {
	if q.Status != "" && !slices.Contains(UseStatuses, q.Status) {
		return nil, medguard.InvalidField("status", "status must be one of %s", strings.Join(UseStatuses, ", "))
	}
	perms := policy.PermissionsOf(call.Actor.Roles)
	if call.Actor.Kind != medguard.UserActor {
		perms = policy.SetOf(call.Actor.Scopes)
	}
	action, where, args := policy.UseRequest, `requester_id = $1`, []any{call.Actor.ID}
	switch {
	case q.Mine:
	case perms[policy.UseRead]:
		action, where, args = policy.UseRead, `1 = 1`, nil
	case perms[policy.ApprovalDecideDepartment] && call.Actor.Department != "":
		where, args = `(requester_id = $1 OR approver_department = $2 OR departments LIKE $3)`,
			[]any{call.Actor.ID, call.Actor.Department, `%"` + call.Actor.Department + `"%`}
	}
	changedBy, err := s.identity.ChangedBy(ctx, call.Actor.ID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := []UseRequest{}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: "use.list",
		Resource: policy.Resource{Type: "use_request"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+useColumns+` FROM use_requests WHERE `+where+` ORDER BY id DESC LIMIT 500`, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			u, err := s.scanUse(ctx, rows, now)
			if err != nil {
				return nil, err
			}
			if q.Status != "" && u.Status != q.Status {
				continue
			}
			u.MayDecide = u.Status == Pending && s.gate.Check(gate.Passage{Call: call, Action: policy.UseApprove,
				Resource: u.resource(), ChangedBy: changedBy}).Allowed
			out = append(out, *u)
		}
		return nil, rows.Err()
	})
	return out, err
}

// GrantsOf returns the user's approved record-use requests for a patient,
// for the policy to weigh (records.SetUseGrants). The policy checks their
// periods against the time of each read.
func (s *Service) GrantsOf(ctx context.Context, userID, patientID string) ([]policy.UseGrant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, record_ids, record_types, starts_at, ends_at, restricted FROM use_requests
		WHERE requester_id = $1 AND patient_id = $2 AND status = $3`, userID, patientID, Approved)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []policy.UseGrant
	for rows.Next() {
		var g policy.UseGrant
		var ids, types string
		var from, until int64
		var restricted int
		if err := rows.Scan(&g.RequestID, &ids, &types, &from, &until, &restricted); err != nil {
			return nil, err
		}
		g.PatientID, g.RecordIDs, g.RecordTypes = patientID, parseList(ids), parseList(types)
		g.From, g.Until, g.HeadApproved = medguard.FromMillis(from), medguard.FromMillis(until), restricted != 0
		out = append(out, g)
	}
	return out, rows.Err()
}
