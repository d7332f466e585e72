package partners

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// AgreementKind is the four-eyes request that brings an agreement into
// force or extends it: asked with partner.manage (medical affairs, a
// security officer), decided by a security officer who did not ask.
const AgreementKind = "partners.agreement"

// The states of an agreement at a moment.
const (
	NotStarted = "not_started"
	Live       = "live"
	Expired    = "expired"
	Terminated = "terminated"
)

// The states of an agreement's deletion confirmation (删除确认): not due
// while the agreement runs; due once it ended; overdue DeletionGrace after
// that; confirmed once recorded.
const (
	DeletionNotDue    = "not_due"
	DeletionDue       = "due"
	DeletionOverdue   = "overdue"
	DeletionConfirmed = "confirmed"
)

// The kinds of data set an agreement may open to a partner.
const (
	// DeidOutput is the output of an approved de-identification job
	// (脱敏数据): masked, generalised to k-anonymity, with its manifest.
	DeidOutput = "deid_output"
	// Synthetic is a synthetic data set (合成数据) with no real patient.
	Synthetic = "synthetic"
	// Aggregate is aggregate statistics (汇总统计) with no row per patient.
	Aggregate = "aggregate"
)

// DatasetKinds lists the kinds of data set an agreement may open.
var DatasetKinds = []string{DeidOutput, Synthetic, Aggregate}

// AgreementPurposes are the purposes an agreement may allow (codes of
// policy.Purposes).
var AgreementPurposes = []string{"research", "quality_control", "operations"}

// Agreement is an agreement with a partner, in force once approved.
type Agreement struct {
	ID        string `json:"id"`
	PartnerID string `json:"partner_id"`
	// Title names the project (e.g. 冠心病队列随访研究): never patient data.
	Title string `json:"title"`
	// The scope: the purposes of use, the kinds of data set, the
	// k-anonymity every output must reach, and the departments whose data
	// may be used (empty: any).
	Purposes     []string  `json:"purposes"`
	DatasetKinds []string  `json:"dataset_kinds"`
	MinK         int       `json:"min_k"`
	Departments  []string  `json:"departments"`
	StartsAt     time.Time `json:"starts_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	// EndsAt is when it ends: its expiry, or its early termination.
	EndsAt time.Time `json:"ends_at"`
	// Confidentiality is the reference of its confidentiality clause
	// (e.g. 保密协议第5条).
	Confidentiality string `json:"confidentiality"`
	// DocumentSHA256 is the SHA-256 of the signed agreement's file, if it
	// was given.
	DocumentSHA256 string     `json:"document_sha256,omitempty"`
	ApprovalID     string     `json:"approval_id"`
	RequestedBy    string     `json:"requested_by"`
	ApprovedBy     string     `json:"approved_by"`
	CreatedAt      time.Time  `json:"created_at"`
	ExtendedBy     string     `json:"extended_by,omitempty"`
	TerminatedAt   *time.Time `json:"terminated_at,omitempty"`
	TerminatedBy   string     `json:"terminated_by,omitempty"`
	// Status is its state now: not_started, live, expired or terminated.
	Status string `json:"status"`
	// Expiring says it is live and ends within Config.ExpiringWindow.
	Expiring bool `json:"expiring"`
	// Deletion is the state of its deletion confirmation, due by
	// DeletionDueAt.
	Deletion      string                `json:"deletion"`
	DeletionDueAt time.Time             `json:"deletion_due_at"`
	Confirmation  *DeletionConfirmation `json:"confirmation,omitempty"`
}

// NewAgreement asks for an agreement with a partner (the body of POST
// /api/v1/partners/{id}/agreements); the reason goes with the four-eyes
// request.
type NewAgreement struct {
	Title           string    `json:"title"`
	Purposes        []string  `json:"purposes"`
	DatasetKinds    []string  `json:"dataset_kinds"`
	MinK            int       `json:"min_k,omitempty"`
	Departments     []string  `json:"departments,omitempty"`
	StartsAt        time.Time `json:"starts_at,omitzero"`
	ExpiresAt       time.Time `json:"expires_at"`
	Confidentiality string    `json:"confidentiality"`
	DocumentSHA256  string    `json:"document_sha256,omitempty"`
	Reason          string    `json:"reason"`
}

// Extension asks for an agreement to run longer (the body of POST
// /api/v1/agreements/{id}/extend).
type Extension struct {
	ExpiresAt time.Time `json:"expires_at"`
	Reason    string    `json:"reason"`
}

// AgreementPayload is the payload of a partners.agreement request: a new
// agreement with the partner, or — with AgreementID — the extension of an
// agreement to a later expiry.
type AgreementPayload struct {
	PartnerID       string    `json:"partner_id"`
	AgreementID     string    `json:"agreement_id,omitempty"`
	Title           string    `json:"title,omitempty"`
	Purposes        []string  `json:"purposes,omitempty"`
	DatasetKinds    []string  `json:"dataset_kinds,omitempty"`
	MinK            int       `json:"min_k,omitempty"`
	Departments     []string  `json:"departments,omitempty"`
	StartsAt        time.Time `json:"starts_at,omitzero"`
	ExpiresAt       time.Time `json:"expires_at"`
	Confidentiality string    `json:"confidentiality,omitempty"`
	DocumentSHA256  string    `json:"document_sha256,omitempty"`
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// codes checks a list of codes against the allowed ones, sorted and
// without repeats.
func codes(field string, xs, allowed []string, required bool) ([]string, error) {
	if len(xs) == 0 && required {
		return nil, medguard.InvalidField(field, "%s must name at least one of %s", field, strings.Join(allowed, ", "))
	}
	for _, x := range xs {
		if allowed != nil && !slices.Contains(allowed, x) {
			return nil, medguard.InvalidField(field, "%s must be among %s", field, strings.Join(allowed, ", "))
		}
	}
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkNew validates a new agreement's payload at now.
func (s *Service) checkNew(ctx context.Context, p AgreementPayload, now time.Time) (AgreementPayload, error) {
	var err error
	if p.Title, err = medguard.Line("payload.title", p.Title, 200, true); err != nil {
		return p, err
	}
	if p.Purposes, err = codes("payload.purposes", p.Purposes, AgreementPurposes, true); err != nil {
		return p, err
	}
	if p.DatasetKinds, err = codes("payload.dataset_kinds", p.DatasetKinds, DatasetKinds, true); err != nil {
		return p, err
	}
	if p.MinK == 0 {
		p.MinK = 5
	}
	if p.MinK < 2 || p.MinK > 1000 {
		return p, medguard.InvalidField("payload.min_k", "min_k must be between 2 and 1000")
	}
	if len(p.Departments) > 100 {
		return p, medguard.InvalidField("payload.departments", "too many departments")
	}
	for i, d := range p.Departments {
		dep, err := s.identity.DepartmentByCode(ctx, d)
		if err != nil {
			return p, medguard.InvalidField("payload.departments", "no department has this code")
		}
		p.Departments[i] = dep.Code
	}
	if p.Departments, err = codes("payload.departments", p.Departments, nil, false); err != nil {
		return p, err
	}
	if p.Confidentiality, err = medguard.Line("payload.confidentiality", p.Confidentiality, 200, true); err != nil {
		return p, err
	}
	p.DocumentSHA256 = strings.ToLower(strings.TrimSpace(p.DocumentSHA256))
	if p.DocumentSHA256 != "" && !sha256Pattern.MatchString(p.DocumentSHA256) {
		return p, medguard.InvalidField("payload.document_sha256", "document_sha256 must be 64 hexadecimal digits")
	}
	if p.StartsAt.IsZero() {
		p.StartsAt = now
	}
	switch {
	case p.ExpiresAt.IsZero():
		return p, medguard.InvalidField("payload.expires_at", "expires_at is required")
	case !p.ExpiresAt.After(p.StartsAt) || !p.ExpiresAt.After(now):
		return p, medguard.InvalidField("payload.expires_at", "expires_at must be after starts_at and in the future")
	case p.ExpiresAt.Sub(p.StartsAt) > s.cfg.MaxTerm:
		return p, medguard.InvalidField("payload.expires_at", "an agreement may last at most %d days", int(s.cfg.MaxTerm.Hours()/24))
	case p.StartsAt.Before(now.Add(-time.Minute)):
		return p, medguard.InvalidField("payload.starts_at", "starts_at may not be in the past")
	}
	p.StartsAt, p.ExpiresAt = p.StartsAt.UTC().Truncate(time.Millisecond), p.ExpiresAt.UTC().Truncate(time.Millisecond)
	return p, nil
}

// checkExtension validates an extension's payload at now against the
// agreement it extends.
func (s *Service) checkExtension(ctx context.Context, p AgreementPayload, now time.Time) (AgreementPayload, *Agreement, error) {
	if p.Title != "" || p.Purposes != nil || p.DatasetKinds != nil || p.MinK != 0 || p.Departments != nil || !p.StartsAt.IsZero() ||
		p.Confidentiality != "" || p.DocumentSHA256 != "" {
		return p, nil, medguard.InvalidField("payload.agreement_id", "an extension changes expires_at only: ask for a new agreement to change the scope")
	}
	a, err := s.agreement(ctx, p.AgreementID, now)
	if err != nil {
		return p, nil, err
	}
	if a == nil {
		return p, nil, medguard.InvalidField("payload.agreement_id", "no such agreement")
	}
	p.PartnerID = a.PartnerID
	switch {
	case a.TerminatedAt != nil:
		return p, nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.agreement_id", Message: "the agreement was terminated"}
	case a.Confirmation != nil:
		return p, nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.agreement_id", Message: "the partner confirmed the deletion: ask for a new agreement"}
	case p.ExpiresAt.IsZero():
		return p, nil, medguard.InvalidField("payload.expires_at", "expires_at is required")
	case !p.ExpiresAt.After(a.ExpiresAt) || !p.ExpiresAt.After(now):
		return p, nil, medguard.InvalidField("payload.expires_at", "expires_at must be later than the agreement's expiry and in the future")
	case p.ExpiresAt.Sub(a.StartsAt) > s.cfg.MaxTerm:
		return p, nil, medguard.InvalidField("payload.expires_at", "an agreement may last at most %d days", int(s.cfg.MaxTerm.Hours()/24))
	}
	p.ExpiresAt = p.ExpiresAt.UTC().Truncate(time.Millisecond)
	return p, a, nil
}

// decodePayload reads a partners.agreement payload, refusing unknown
// fields.
func decodePayload(raw json.RawMessage) (AgreementPayload, error) {
	var p AgreementPayload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, medguard.InvalidField("payload", `payload must be {"partner_id", "title", "purposes", "dataset_kinds", "min_k", `+
			`"departments", "starts_at", "expires_at", "confidentiality", "document_sha256"} or {"agreement_id", "expires_at"}`)
	}
	return p, nil
}

// check validates a request's payload at now; for a new agreement the
// partner must exist.
func (s *Service) check(ctx context.Context, raw json.RawMessage, now time.Time) (AgreementPayload, error) {
	p, err := decodePayload(raw)
	if err != nil {
		return p, err
	}
	if p.AgreementID != "" {
		given := p.PartnerID
		if p, _, err = s.checkExtension(ctx, p, now); err != nil {
			return p, err
		}
		if given != "" && given != p.PartnerID {
			return p, medguard.InvalidField("payload.partner_id", "the agreement is another partner's")
		}
		return p, nil
	}
	var exists int
	if medguard.ValidID(p.PartnerID) {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM partners WHERE id = $1`, p.PartnerID).Scan(&exists)
		if err != nil {
			return p, medguard.Wrap("partners.check", err)
		}
	}
	if exists == 0 {
		return p, medguard.InvalidField("payload.partner_id", "no such partner")
	}
	return s.checkNew(ctx, p, now)
}

// AgreementKind returns the four-eyes kind partners.agreement, for the
// approvals service to register: asked with partner.manage, approved by a
// security officer (never the requester — the approvals' policy). Both
// the request and the approval check the payload as of their own moment;
// the run puts the agreement in force (its id is the approval's) or moves
// the expiry of the one it extends.
func (s *Service) AgreementKind() approvals.Kind {
	return approvals.Kind{
		Name: AgreementKind, RequestPermission: policy.PartnerManage, RunAction: "partner.agreement",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*approvals.Plan, error) {
			p, err := s.check(ctx, raw, s.clock.Now())
			if err != nil {
				return nil, err
			}
			plan := &approvals.Plan{Payload: p, Approvers: policy.Approvers{Security: true}, TargetType: "partner", TargetID: p.PartnerID}
			if p.AgreementID != "" {
				plan.TargetType, plan.TargetID = "agreement", p.AgreementID
			}
			return plan, nil
		},
		Run: func(ctx context.Context, a *approvals.Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			now := s.clock.Now().Truncate(time.Millisecond)
			raw := a.Payload
			// An agreement asked to start at once (or on a day that passed
			// while the request waited) starts when it is approved.
			if p0, err := decodePayload(raw); err == nil && p0.AgreementID == "" && !p0.StartsAt.IsZero() && p0.StartsAt.Before(now) {
				p0.StartsAt = now
				if b, err := json.Marshal(p0); err == nil {
					raw = b
				}
			}
			p, err := s.check(ctx, raw, now)
			if err != nil {
				if me := (*medguard.Error)(nil); errors.As(err, &me) && me.Kind == medguard.Invalid {
					return nil, "", &medguard.Error{Kind: medguard.Conflict, Field: me.Field, Message: "no longer valid: " + me.Message}
				}
				return nil, "", err
			}
			if p.AgreementID != "" {
				return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
					res, err := tx.ExecContext(ctx, `UPDATE partner_agreements SET expires_at = $1, ends_at = $1, extended_by = $2,
						deletion_notified_at = NULL WHERE id = $3 AND terminated_at IS NULL`, medguard.Millis(p.ExpiresAt), a.ID, p.AgreementID)
					return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the agreement was terminated meanwhile"})
				}, "", nil
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO partner_agreements (id, partner_id, title, purposes, dataset_kinds, min_k,
					departments, starts_at, expires_at, ends_at, confidentiality, document_sha256, approval_id, requested_by, approved_by,
					created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
					a.ID, p.PartnerID, p.Title, jsonList(p.Purposes), jsonList(p.DatasetKinds), p.MinK, jsonList(p.Departments),
					medguard.Millis(p.StartsAt), medguard.Millis(p.ExpiresAt), medguard.Millis(p.ExpiresAt), p.Confidentiality,
					p.DocumentSHA256, a.ID, a.RequestedBy, approver.Actor.Name, medguard.Millis(now))
				return err
			}, "", nil
		},
	}
}

// NewAgreementRequest is the four-eyes request a NewAgreement for the
// partner files (kind partners.agreement).
func NewAgreementRequest(partnerID string, in NewAgreement) (approvals.NewRequest, error) {
	raw, err := json.Marshal(AgreementPayload{PartnerID: partnerID, Title: in.Title, Purposes: in.Purposes, DatasetKinds: in.DatasetKinds,
		MinK: in.MinK, Departments: in.Departments, StartsAt: in.StartsAt, ExpiresAt: in.ExpiresAt, Confidentiality: in.Confidentiality,
		DocumentSHA256: in.DocumentSHA256})
	return approvals.NewRequest{Kind: AgreementKind, Payload: raw, Reason: in.Reason}, err
}

// ExtensionRequest is the four-eyes request an Extension of the agreement
// files (kind partners.agreement).
func ExtensionRequest(agreementID string, in Extension) (approvals.NewRequest, error) {
	raw, err := json.Marshal(AgreementPayload{AgreementID: agreementID, ExpiresAt: in.ExpiresAt})
	return approvals.NewRequest{Kind: AgreementKind, Payload: raw, Reason: in.Reason}, err
}

const agreementColumns = `a.id, a.partner_id, a.title, a.purposes, a.dataset_kinds, a.min_k, a.departments, a.starts_at, a.expires_at,
	a.ends_at, a.confidentiality, a.document_sha256, a.approval_id, a.requested_by, a.approved_by, a.created_at, a.extended_by,
	a.terminated_at, a.terminated_by, d.representative, d.statement, d.document_sha256, d.deleted_at, d.received_by, d.recorded_at`

const agreementFrom = ` FROM partner_agreements a LEFT JOIN partner_deletions d ON d.agreement_id = a.id`

func (s *Service) scanAgreement(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*Agreement, error) {
	var a Agreement
	var purposes, kinds, depts string
	var starts, expires, ends, created int64
	var extendedBy, terminatedBy, dHash, dReceiver sql.NullString
	var terminated, dDeleted, dRecorded sql.NullInt64
	var dRep, dStatement []byte
	if err := sc.Scan(&a.ID, &a.PartnerID, &a.Title, &purposes, &kinds, &a.MinK, &depts, &starts, &expires, &ends, &a.Confidentiality,
		&a.DocumentSHA256, &a.ApprovalID, &a.RequestedBy, &a.ApprovedBy, &created, &extendedBy, &terminated, &terminatedBy,
		&dRep, &dStatement, &dHash, &dDeleted, &dReceiver, &dRecorded); err != nil {
		return nil, err
	}
	a.Purposes, a.DatasetKinds, a.Departments = parseList(purposes), parseList(kinds), parseList(depts)
	a.StartsAt, a.ExpiresAt, a.EndsAt, a.CreatedAt = medguard.FromMillis(starts), medguard.FromMillis(expires), medguard.FromMillis(ends),
		medguard.FromMillis(created)
	a.ExtendedBy, a.TerminatedBy = extendedBy.String, terminatedBy.String
	if terminated.Valid {
		t := medguard.FromMillis(terminated.Int64)
		a.TerminatedAt = &t
	}
	if dRecorded.Valid {
		c := &DeletionConfirmation{AgreementID: a.ID, DocumentSHA256: dHash.String, DeletedAt: medguard.FromMillis(dDeleted.Int64),
			ReceivedBy: dReceiver.String, RecordedAt: medguard.FromMillis(dRecorded.Int64)}
		var err error
		if c.Representative, err = s.open(ctx, "partner_deletions", a.ID, "representative", dRep); err != nil {
			return nil, err
		}
		if c.Statement, err = s.open(ctx, "partner_deletions", a.ID, "statement", dStatement); err != nil {
			return nil, err
		}
		a.Confirmation = c
	}
	s.state(&a, now)
	return &a, nil
}

// state works out an agreement's states at now.
func (s *Service) state(a *Agreement, now time.Time) {
	switch {
	case a.TerminatedAt != nil:
		a.Status = Terminated
	case now.Before(a.StartsAt):
		a.Status = NotStarted
	case now.Before(a.ExpiresAt):
		a.Status = Live
		a.Expiring = a.ExpiresAt.Sub(now) <= s.cfg.ExpiringWindow
	default:
		a.Status = Expired
	}
	a.DeletionDueAt = a.EndsAt.Add(s.cfg.DeletionGrace)
	switch {
	case a.Confirmation != nil:
		a.Deletion = DeletionConfirmed
	case now.Before(a.EndsAt):
		a.Deletion = DeletionNotDue
	case now.Before(a.DeletionDueAt):
		a.Deletion = DeletionDue
	default:
		a.Deletion = DeletionOverdue
	}
}

// covers reports whether the agreement was in force at t.
func (a *Agreement) covers(t time.Time) bool { return !t.Before(a.StartsAt) && t.Before(a.EndsAt) }

func (s *Service) agreement(ctx context.Context, id string, now time.Time) (*Agreement, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	a, err := s.scanAgreement(ctx, s.db.QueryRowContext(ctx, `SELECT `+agreementColumns+agreementFrom+` WHERE a.id = $1`, id), now)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return a, medguard.Wrap("partners.agreement", err)
}

func (s *Service) agreementsOf(ctx context.Context, partnerID string, now time.Time) ([]Agreement, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+agreementColumns+agreementFrom+` WHERE a.partner_id = $1 ORDER BY a.starts_at DESC, a.id`,
		partnerID)
	if err != nil {
		return nil, medguard.Wrap("partners.agreementsOf", err)
	}
	defer rows.Close()
	out := []Agreement{}
	for rows.Next() {
		a, err := s.scanAgreement(ctx, rows, now)
		if err != nil {
			return nil, medguard.Wrap("partners.agreementsOf", err)
		}
		out = append(out, *a)
	}
	return out, medguard.Wrap("partners.agreementsOf", rows.Err())
}

var errNoAgreementRow = &medguard.Error{Kind: medguard.NotFound, Message: "no such agreement"}

// loadAgreement reads an agreement for an operation; an attempt on a
// missing one is logged and answered 404.
func (s *Service) loadAgreement(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Agreement, error) {
	a, err := s.agreement(ctx, id, s.clock.Now())
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "agreement", ID: id}}, errNoAgreementRow)
	}
	return a, nil
}

// Terminate ends an agreement at once (partner.manage): a protective act
// one person may do — a breach, a partner leaving the project. The
// partner's accounts receive nothing more under it, and its deletion
// confirmation becomes due.
func (s *Service) Terminate(ctx context.Context, call *medguard.Call, id string) (*Agreement, error) {
	a, err := s.loadAgreement(ctx, call, policy.PartnerManage, "partner.agreement_terminate", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PartnerManage, AuditAction: "partner.agreement_terminate",
		Resource: policy.Resource{Type: "agreement", ID: a.ID}}, func(policy.Decision) (audit.Mutation, error) {
		if a.Status == Terminated || a.Status == Expired {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the agreement has ended already"}
		}
		a.TerminatedAt, a.TerminatedBy, a.EndsAt = &now, call.Actor.Name, now
		s.state(a, now)
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE partner_agreements SET terminated_at = $1, terminated_by = $2, ends_at = $1
				WHERE id = $3 AND terminated_at IS NULL AND ends_at > $1`, medguard.Millis(now), call.Actor.Name, a.ID)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the agreement ended meanwhile"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// The rules of CheckJob's refusals, as the de-identification jobs log
// them.
const (
	RuleNoAgreement   = "deny.no_partner_agreement"
	RuleOutsideScope  = "deny.outside_partner_agreement"
	RuleAgreementLive = "allow.partner_agreement"
)

// ErrNoAgreement is CheckJob's answer for a partner's researcher when no
// agreement of the partner is in force: it expired, was terminated, has
// not started, or was never approved.
var ErrNoAgreement = &medguard.Error{Kind: medguard.Forbidden, Rule: RuleNoAgreement,
	Message: "the partner has no agreement in force: a partner's account receives nothing outside a live agreement"}

// ErrOutsideScope is CheckJob's answer when the partner's live agreements
// do not cover the output (its purpose, kind of data set, k or
// departments).
var ErrOutsideScope = &medguard.Error{Kind: medguard.Forbidden, Rule: RuleOutsideScope,
	Message: "the output is outside the scope of the partner's agreement"}

// Output describes a de-identified output to be given to a researcher,
// for CheckOutput. Zero fields are not checked.
type Output struct {
	Purpose string
	// DatasetKind is one of DatasetKinds ("" for deid_output).
	DatasetKind string
	// K is the k-anonymity the output reached (0: not known).
	K int
	// Departments are the departments whose records it was made from.
	Departments []string
	// anyDepartment: the output is not limited to named departments (only
	// an agreement open to every department covers it); noK: it promises
	// no k-anonymity (only an agreement asking for none covers it). Set by
	// CheckJobScope.
	anyDepartment, noK bool
}

// CheckJob says whether the user may receive a de-identification job's
// output for purpose at the time at: a researcher linked to a partner only
// while one of the partner's agreements is in force and allows the
// purpose — it returns that agreement's id; a user linked to no partner
// is the hospital's staff (returns "", nil). Otherwise ErrNoAgreement or
// ErrOutsideScope (Forbidden, with a rule).
func (s *Service) CheckJob(ctx context.Context, userID string, purpose string, at time.Time) (string, error) {
	return s.CheckOutput(ctx, userID, Output{Purpose: purpose}, at)
}

// CheckJobScope is CheckJob for a job described by its scope, as the
// de-identification jobs ask it: the department the job reads ("" when it
// is not limited to one: only an agreement open to every department
// covers it) and the k-anonymity it asks for (0 when none: only an
// agreement with no minimum k covers it) must be within one live
// agreement, as its purpose.
func (s *Service) CheckJobScope(ctx context.Context, userID, purpose, department string, k int, at time.Time) (string, error) {
	out := Output{Purpose: purpose, K: k, anyDepartment: department == "", noK: k == 0}
	if department != "" {
		out.Departments = []string{department}
	}
	return s.CheckOutput(ctx, userID, out, at)
}

// CheckOutput is CheckJob for an output described in full: its purpose,
// kind of data set, the k it reached and its departments must each be
// within one live agreement.
func (s *Service) CheckOutput(ctx context.Context, userID string, out Output, at time.Time) (string, error) {
	partnerID, err := s.PartnerOf(ctx, userID)
	if err != nil || partnerID == "" {
		return "", err
	}
	as, err := s.agreementsOf(ctx, partnerID, at)
	if err != nil {
		return "", err
	}
	kind := out.DatasetKind
	if kind == "" {
		kind = DeidOutput
	}
	live := false
	for _, a := range as {
		if a.Status != Live {
			continue
		}
		live = true
		if out.Purpose != "" && !slices.Contains(a.Purposes, out.Purpose) || !slices.Contains(a.DatasetKinds, kind) ||
			out.K != 0 && out.K < a.MinK {
			continue
		}
		if out.noK && a.MinK > 0 || out.anyDepartment && len(a.Departments) > 0 {
			continue
		}
		if len(a.Departments) > 0 && slices.ContainsFunc(out.Departments, func(d string) bool { return !slices.Contains(a.Departments, d) }) {
			continue
		}
		return a.ID, nil
	}
	if live {
		return "", ErrOutsideScope
	}
	return "", ErrNoAgreement
}

// AgreementPartner returns the id of the partner an agreement is with, or
// "" when there is no such agreement (for a page to go back to).
func (s *Service) AgreementPartner(ctx context.Context, agreementID string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT partner_id FROM partner_agreements WHERE id = $1`, agreementID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, medguard.Wrap("partners.AgreementPartner", err)
}
