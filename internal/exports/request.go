package exports

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// NewExport asks for an export: the patients by id, or by a query (the
// patients with records of a department written in [from, to)); the
// record types (all when empty) and fields (all when empty) to put in it;
// its format and cipher (default AES-256-GCM); its purpose and reason.
// One patient's export is built at once; more than one patient files a
// four-eyes request, and Run (to have it at once) is refused and freezes
// the account.
type NewExport struct {
	PatientIDs  []string  `json:"patient_ids,omitempty"`
	Department  string    `json:"department,omitempty"`
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
	RecordTypes []string  `json:"record_types,omitempty"`
	Fields      []string  `json:"fields,omitempty"`
	Format      string    `json:"format"`
	Cipher      string    `json:"cipher,omitempty"`
	Purpose     string    `json:"purpose"`
	Reason      string    `json:"reason"`
	Run         bool      `json:"run,omitempty"`
}

// BulkPayload is the payload of an exports.bulk request: what was asked,
// normalised, and what the check found — the patients, fixed when the
// request is filed, the number of records, and whether core data is among
// them (then only medical affairs decides).
type BulkPayload struct {
	ExportID     string    `json:"export_id,omitempty"`
	PatientIDs   []string  `json:"patient_ids"`
	Department   string    `json:"department,omitempty"`
	From         time.Time `json:"from,omitzero"`
	To           time.Time `json:"to,omitzero"`
	RecordTypes  []string  `json:"record_types"`
	Fields       []string  `json:"fields"`
	Format       string    `json:"format"`
	Cipher       string    `json:"cipher"`
	Purpose      string    `json:"purpose"`
	Records      int       `json:"records"`
	ContainsCore bool      `json:"contains_core"`
}

// Purposes are the purposes an export may declare (codes, never text).
var Purposes = []string{"treatment", "care_coordination", "quality_control", "research", "legal", "billing",
	"patient_request", "audit"}

// MaxReason is the longest reason, in characters.
const MaxReason = 500

// plan is an export worked out: what it holds.
type plan struct {
	BulkPayload
	facts []records.ExportPatientFact
}

func sortedSet(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

// plan validates a request and fixes its patients and records.
func (s *Service) plan(ctx context.Context, in BulkPayload) (*plan, error) {
	p := &plan{BulkPayload: in}
	byQuery := in.Department != "" || !in.From.IsZero() || !in.To.IsZero()
	switch {
	case len(in.PatientIDs) > 0 && byQuery:
		return nil, medguard.InvalidField("patient_ids", "name the patients or give a query (department, from, to), not both")
	case len(in.PatientIDs) > s.cfg.MaxPatients:
		return nil, medguard.InvalidField("patient_ids", "an export holds at most %d patients", s.cfg.MaxPatients)
	case len(in.PatientIDs) > 0:
		for _, id := range in.PatientIDs {
			if !medguard.ValidID(id) {
				return nil, medguard.InvalidField("patient_ids", "no such patient")
			}
		}
		p.PatientIDs = sortedSet(in.PatientIDs)
	case !byQuery:
		return nil, medguard.InvalidField("patient_ids", "name the patients (patient_ids) or give a query (department, from, to)")
	case in.Department == "":
		return nil, medguard.InvalidField("department", "department is required for a query")
	case in.From.IsZero() || in.To.IsZero() || !in.To.After(in.From):
		return nil, medguard.InvalidField("to", "a query needs from and to, to after from")
	default:
		ids, err := s.records.ExportCandidates(ctx, in.Department, in.From, in.To)
		if err != nil {
			return nil, err
		}
		if len(ids) > s.cfg.MaxPatients {
			return nil, medguard.InvalidField("to", "the query finds more than %d patients; narrow it", s.cfg.MaxPatients)
		}
		if len(ids) == 0 {
			return nil, medguard.InvalidField("department", "no patient has records of the department in that period")
		}
		p.PatientIDs = ids
		p.From, p.To = in.From.UTC().Truncate(time.Millisecond), in.To.UTC().Truncate(time.Millisecond)
	}
	for _, t := range in.RecordTypes {
		if !policy.KnownRecordType(t) {
			return nil, medguard.InvalidField("record_types", "unknown record type")
		}
	}
	p.RecordTypes = sortedSet(in.RecordTypes)
	if p.RecordTypes == nil {
		p.RecordTypes = []string{}
	}
	for _, f := range in.Fields {
		if !slices.Contains(AllFields, f) {
			return nil, medguard.InvalidField("fields", "fields must be among %s", strings.Join(AllFields, ", "))
		}
	}
	if len(in.Fields) == 0 {
		p.Fields = slices.Clone(AllFields)
	} else {
		p.Fields = sortedSet(in.Fields)
	}
	if !slices.Contains(Formats, in.Format) {
		return nil, medguard.InvalidField("format", "format must be jsonl, csv or fhir")
	}
	if p.Cipher == "" {
		p.Cipher = AES256GCM
	}
	if !slices.Contains(Ciphers, p.Cipher) {
		return nil, medguard.InvalidField("cipher", "cipher must be aes-256-gcm or sm4-gcm")
	}
	if !slices.Contains(Purposes, in.Purpose) {
		return nil, medguard.InvalidField("purpose", "purpose must be one of %s", strings.Join(Purposes, ", "))
	}
	facts, err := s.records.ExportFacts(ctx, p.PatientIDs, p.RecordTypes)
	if medguard.IsKind(err, medguard.NotFound) {
		return nil, medguard.InvalidField("patient_ids", "no such patient")
	}
	if err != nil {
		return nil, err
	}
	p.facts, p.Records, p.ContainsCore = facts, 0, false
	for _, f := range facts {
		p.Records += len(f.Records)
		for _, r := range f.Records {
			p.ContainsCore = p.ContainsCore || r.Classification == policy.Core
		}
	}
	return p, nil
}

// Create asks for an export. One patient: the file is built at once and
// the answer holds its key (shown once). More than one: a four-eyes
// request is filed (returned, with the export waiting on it); asked with
// Run, it is refused (deny.export_not_approved), which freezes the
// account.
func (s *Service) Create(ctx context.Context, call *medguard.Call, in NewExport) (*Export, *approvals.Approval, error) {
	reason, err := medguard.Text("reason", in.Reason, MaxReason, true)
	if err != nil {
		return nil, nil, err
	}
	if call.Actor.Kind != medguard.UserActor {
		return nil, nil, &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission, Message: "only members of staff export"}
	}
	want := BulkPayload{PatientIDs: in.PatientIDs, Department: in.Department, From: in.From, To: in.To,
		RecordTypes: in.RecordTypes, Fields: in.Fields, Format: in.Format, Cipher: in.Cipher, Purpose: in.Purpose}
	p, err := s.plan(ctx, want)
	if err != nil {
		return nil, nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	if n := len(p.PatientIDs); n > 1 {
		if in.Run {
			_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RecordExport, AuditAction: "export.run",
				Resource: policy.Resource{Type: "export", ID: id, ExportPatients: n}},
				func(policy.Decision) (audit.Mutation, error) {
					return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleExportNotApproved,
						Message: "an export of more than one patient needs an approved request"}
				})
			return nil, nil, err
		}
		raw, err := json.Marshal(want)
		if err != nil {
			return nil, nil, err
		}
		a, err := s.approvals.Request(ctx, call, approvals.NewRequest{Kind: approvals.ExportsBulk, Payload: raw, Reason: reason})
		if err != nil {
			return nil, nil, err
		}
		var bp BulkPayload
		json.Unmarshal(a.Payload, &bp)
		e, err := s.load(ctx, bp.ExportID)
		if err != nil {
			return nil, nil, err
		}
		s.show(ctx, e, true)
		return e, a, nil
	}
	sealed, err := s.seal(ctx, id, "reason", reason)
	if err != nil {
		return nil, nil, err
	}
	e := &Export{ID: id, RequesterID: call.Actor.ID, Requester: call.Actor.Name, Department: call.Actor.Department,
		Status: Approved, Patients: 1, PatientIDs: p.PatientIDs, RecordTypes: p.RecordTypes, Fields: p.Fields,
		Format: p.Format, Cipher: p.Cipher, Purpose: p.Purpose, Reason: reason, Records: p.Records,
		ContainsCore: p.ContainsCore, CreatedAt: now, MaxDownloads: s.cfg.MaxDownloads, plan: p.facts, sealedReason: sealed}
	if err := s.build(ctx, call, e, true); err != nil {
		return nil, nil, err
	}
	return e, nil, nil
}

// bulkKind is the exports.bulk kind of four-eyes request: asked by whoever
// may export (and may export each patient named), decided by medical
// affairs — or a security officer when no core data is in it.
func (s *Service) bulkKind() approvals.Kind {
	return approvals.Kind{
		Name: approvals.ExportsBulk, RequestPermission: policy.RecordExport, RunAction: "export.approve",
		Approver: policy.ExportApprove,
		Check: func(ctx context.Context, call *medguard.Call, raw json.RawMessage, reason, approvalID string) (*approvals.Plan, error) {
			var in BulkPayload
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				return nil, medguard.InvalidField("payload", `payload must be {"patient_ids" or "department", "from", "to", "record_types", "fields", "format", "cipher", "purpose"}`)
			}
			in.ExportID = ""
			p, err := s.plan(ctx, in)
			if err != nil {
				return nil, err
			}
			if len(p.PatientIDs) < 2 {
				return nil, medguard.InvalidField("patient_ids", "one patient's export needs no approval: ask for it directly")
			}
			if call.Actor.Kind != medguard.UserActor {
				return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission, Message: "only members of staff export"}
			}
			if err := s.records.ExportCheck(ctx, call, p.PatientIDs); err != nil {
				return nil, err
			}
			now := s.clock.Now().Truncate(time.Millisecond)
			p.ExportID = medguard.NewID(now)
			sealed, err := s.seal(ctx, p.ExportID, "reason", reason)
			if err != nil {
				return nil, err
			}
			e := &Export{ID: p.ExportID, RequesterID: call.Actor.ID, Requester: call.Actor.Name, Department: call.Actor.Department,
				ApprovalID: approvalID, Status: Pending, Patients: len(p.PatientIDs), PatientIDs: p.PatientIDs,
				RecordTypes: p.RecordTypes, Fields: p.Fields, Format: p.Format, Cipher: p.Cipher, Purpose: p.Purpose,
				Records: p.Records, ContainsCore: p.ContainsCore, CreatedAt: now, MaxDownloads: s.cfg.MaxDownloads,
				plan: p.facts, sealedReason: sealed}
			approvers := policy.Approvers{Security: !p.ContainsCore}
			return &approvals.Plan{Payload: p.BulkPayload, Approvers: approvers, TargetType: "export", TargetID: p.ExportID,
				OnRequest: func(ctx context.Context, tx *sql.Tx, _ uint64) error { return s.insert(ctx, tx, e) }}, nil
		},
		Run: func(ctx context.Context, a *approvals.Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p BulkPayload
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			now := s.clock.Now().Truncate(time.Millisecond)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE exports SET status = $1, approved_by = $2, approved_at = $3
					WHERE id = $4 AND status = $5`, Approved, approver.Actor.Name, medguard.Millis(now), p.ExportID, Pending)
				return storageAffected(res, err)
			}, "", nil
		},
	}
}
