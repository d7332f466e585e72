// Package trail is the audit trail as auditors and patients see it: entries
// by index, searches, proofs and checkpoints, and the patient access report
// (患者访问记录) in words a patient understands. Reading the trail is itself
// an operation: it passes the gate (permission audit.read) and is logged.
//
// It only reads the audit log (and, for reports, department names from
// identity and the name and 病案号 of the report's patient, inside the
// report's logged passage); it never writes entries except through the
// gate, never changes them, and never reads the patient data the entries
// point to.
package trail

import (
	"context"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Service reads the audit trail.
type Service struct {
	gate     *gate.Gate
	log      *audit.Log
	cps      *audit.Checkpoints
	id       *identity.Service
	patients Patients       // department names for access reports
	zone     *time.Location // the hospital's time zone, for access reports
}

// New returns the trail service. Access reports name departments through id
// and show local times in zone (nil for DefaultZone, China Standard Time).
func New(g *gate.Gate, cps *audit.Checkpoints, id *identity.Service, patients Patients, zone *time.Location) *Service {
	if zone == nil {
		zone = DefaultZone
	}
	return &Service{gate: g, log: g.Log(), cps: cps, id: id, patients: patients, zone: zone}
}

// Patients says whether a patient is registered and, for the access
// report that is handed to them, who they are: the records service.
type Patients interface {
	PatientExists(ctx context.Context, patientID string) (bool, error)
	// ReportSubject is called only inside the report's own gate passage.
	ReportSubject(ctx context.Context, patientID string) (records.ReportSubject, error)
}

// Zone returns the time zone of the access reports' local times, in which
// a date without a time (a report's from or to) is read.
func (s *Service) Zone() *time.Location { return s.zone }

// read passes the gate for an audit.read operation and runs fn.
func (s *Service) read(ctx context.Context, call *medguard.Call, action string, fn func() error) error {
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AuditRead, AuditAction: action,
		Resource: policy.Resource{Type: "audit_log"}},
		func(policy.Decision) (audit.Mutation, error) { return nil, fn() })
	return err
}

// Checkpoint returns a signed checkpoint of the tree as it is now (signed on
// demand if the tree grew), so that every answered entry can be proven.
func (s *Service) Checkpoint(ctx context.Context, call *medguard.Call) (audit.Checkpoint, error) {
	var cp audit.Checkpoint
	err := s.read(ctx, call, "audit.checkpoint", func() (err error) {
		cp, err = s.cps.Latest(ctx)
		return err
	})
	return cp, err
}

// VerifierKey returns the note verifier key of the log's checkpoints.
func (s *Service) VerifierKey(ctx context.Context, call *medguard.Call) (string, error) {
	var key string
	err := s.read(ctx, call, "audit.verifier_key", func() error {
		key = s.cps.Signer().VerifierKey()
		return nil
	})
	return key, err
}

// InclusionProof returns the proof that entry index is in the tree of size.
func (s *Service) InclusionProof(ctx context.Context, call *medguard.Call, index, size uint64) ([][]byte, error) {
	var p [][]byte
	err := s.read(ctx, call, "audit.proof_inclusion", func() (err error) {
		p, err = s.log.InclusionProof(ctx, index, size)
		return err
	})
	return p, err
}

// ConsistencyProof returns the proof that the tree of size old is a prefix
// of the tree of size new.
func (s *Service) ConsistencyProof(ctx context.Context, call *medguard.Call, old, new uint64) ([][]byte, error) {
	var p [][]byte
	err := s.read(ctx, call, "audit.proof_consistency", func() (err error) {
		p, err = s.log.ConsistencyProof(ctx, old, new)
		return err
	})
	return p, err
}

// Entry is a stored entry as served: its index, leaf bytes and decoded fields.
type Entry struct {
	Index uint64       `json:"index"`
	Leaf  []byte       `json:"leaf"`
	Entry audit.Fields `json:"entry"`
}

func served(st []audit.Stored) []Entry {
	out := make([]Entry, len(st))
	for i, s := range st {
		out[i] = Entry{Index: s.Index, Leaf: s.Leaf, Entry: s.Entry.Fields()}
	}
	return out
}

// Entries returns the entries with index in [start, end), at most
// audit.MaxEntries of them.
func (s *Service) Entries(ctx context.Context, call *medguard.Call, start, end uint64) ([]Entry, error) {
	var out []Entry
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AuditRead, AuditAction: "audit.entries",
		Resource: policy.Resource{Type: "audit_log"}},
		func(policy.Decision) (audit.Mutation, error) {
			if end <= start {
				return nil, medguard.InvalidField("end", "end must be greater than start")
			}
			st, err := s.log.Entries(ctx, start, end)
			out = served(st)
			return nil, err
		})
	return out, err
}

// Query is an audit search.
type Query struct {
	Actor, PatientID, Action string
	From, To                 time.Time
	// Status, if set, keeps the entries of one status: StatusCompleted
	// (allowed, and it happened), StatusDenied (refused by the policy) or
	// StatusIncomplete (allowed, but it failed).
	Status string
	Before uint64
	Limit  int
}

// maxStatusScan bounds the entries one search by status reads: a search
// that found fewer than its limit in them says where to continue.
const maxStatusScan = 20 * audit.MaxEntries

// Search returns matching entries, newest first, and the index to continue
// before (0 when there are no more).
func (s *Service) Search(ctx context.Context, call *medguard.Call, q Query) ([]Entry, uint64, error) {
	var out []Entry
	var next uint64
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AuditRead, AuditAction: "audit.search",
		Resource: policy.Resource{Type: "audit_log"}},
		func(policy.Decision) (audit.Mutation, error) {
			if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
				return nil, medguard.InvalidField("to", "to must be after from")
			}
			switch q.Status {
			case "", StatusCompleted, StatusDenied, StatusIncomplete:
			default:
				return nil, medguard.InvalidField("status", "status must be completed, denied or incomplete")
			}
			if q.Limit <= 0 || q.Limit > audit.MaxEntries {
				q.Limit = 100
			}
			aq := audit.Query{Actor: q.Actor, PatientID: q.PatientID, Action: q.Action, From: q.From, To: q.To,
				Before: q.Before, Limit: q.Limit}
			if q.Status == "" {
				st, more, err := s.log.Search(ctx, aq)
				if err != nil {
					return nil, err
				}
				out = served(st)
				if more && len(st) > 0 {
					next = st[len(st)-1].Index
				}
				return nil, nil
			}
			// By status: read pages and keep the entries of the status,
			// until the limit is reached or maxStatusScan entries are read.
			aq.Limit = audit.MaxEntries
			var kept []audit.Stored
			for scanned := 0; ; {
				st, more, err := s.log.Search(ctx, aq)
				if err != nil {
					return nil, err
				}
				for i, e := range st {
					if status(e.Entry) != q.Status {
						continue
					}
					kept = append(kept, e)
					if len(kept) == q.Limit {
						if more || i < len(st)-1 {
							next = e.Index
						}
						out = served(kept)
						return nil, nil
					}
				}
				scanned += len(st)
				if !more || len(st) == 0 {
					break
				}
				aq.Before = st[len(st)-1].Index
				if scanned >= maxStatusScan {
					next = aq.Before
					break
				}
			}
			out = served(kept)
			return nil, nil
		})
	return out, next, err
}
