package incidents

import (
	"context"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// Candidate is a possible violation found in the records: a user denied
// record reads more than MaxDeniedReads times in the period (grade 2,
// unauthorised queries), or an admission archived, or still not archived,
// more than 24 hours late (grade 3). It names people and opaque ids only.
type Candidate struct {
	Kind         string     `json:"kind"` // unauthorized_queries | late_archiving
	Grade        int        `json:"grade"`
	Username     string     `json:"username,omitempty"`
	Department   string     `json:"department,omitempty"`
	Count        int        `json:"count,omitempty"`
	FirstAt      *time.Time `json:"first_at,omitempty"`
	LastAt       *time.Time `json:"last_at,omitempty"`
	AuditIndexes []uint64   `json:"audit_indexes,omitempty"`
	AdmissionID  string     `json:"admission_id,omitempty"`
	PatientID    string     `json:"patient_id,omitempty"`
	HoursLate    int        `json:"hours_late,omitempty"`
}

// MaxDeniedReads is how many denied reads in a period are tolerated; more
// is a candidate for a grade-2 case (§7: unauthorised queries more than 3
// times).
const MaxDeniedReads = 3

// LateArchivingHours is how late archiving may be before it is a candidate
// for a grade-3 case.
const LateArchivingHours = 24

// readActions are the audit actions that read patient data.
var readActions = []string{"record.read", "record.read_history", "record.list", "patient.read"}

// maxScan bounds the entries one candidate search reads per action.
const maxScan = 100_000

// Candidates proposes cases from the period [from, to): it scans the audit
// log for users denied record reads more than MaxDeniedReads times, and
// asks the records service for archiving more than 24 hours late. The
// caller must manage cases and read the audit log; the late-archiving list
// is its own logged operation.
func (s *Service) Candidates(ctx context.Context, call *medguard.Call, from, to time.Time) ([]Candidate, error) {
	out := []Candidate{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AccountabilityManage, AuditAction: "accountability.candidates",
		Resource: policy.Resource{Type: "accountability_case"}},
		func(policy.Decision) (audit.Mutation, error) {
			if d := s.gate.Check(gate.Passage{Call: call, Action: policy.AuditRead, Resource: policy.Resource{Type: "audit_log"}}); !d.Allowed {
				return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule, Message: "finding candidates needs audit.read as well"}
			}
			if !to.After(from) {
				return nil, medguard.InvalidField("to", "to must be after from")
			}
			var err error
			out, err = s.deniedReads(ctx, from, to)
			return nil, err
		})
	if err != nil {
		return nil, err
	}
	if s.archiving == nil {
		return out, nil
	}
	late, err := s.archiving.LateArchiving(ctx, call, "", from)
	if err != nil {
		return nil, err
	}
	for _, a := range late {
		if a.HoursLate <= LateArchivingHours {
			continue
		}
		out = append(out, Candidate{Kind: "late_archiving", Grade: 3, Username: a.ArchivedBy, Department: a.Department,
			AdmissionID: a.ID, PatientID: a.PatientID, HoursLate: a.HoursLate})
	}
	return out, nil
}

// deniedReads finds the users denied reads more than MaxDeniedReads times
// in [from, to), most denials first.
func (s *Service) deniedReads(ctx context.Context, from, to time.Time) ([]Candidate, error) {
	by := map[string]*Candidate{}
	for _, action := range readActions {
		var before uint64
		for scanned := 0; scanned < maxScan; {
			page, more, err := s.log.Search(ctx, audit.Query{Action: action, From: from, To: to, Before: before, Limit: audit.MaxEntries})
			if err != nil {
				return nil, err
			}
			for _, st := range page {
				e := st.Entry
				if e.Decision != audit.Deny || e.Actor == "" {
					continue
				}
				c := by[e.Actor]
				if c == nil {
					c = &Candidate{Kind: "unauthorized_queries", Grade: 2, Username: e.Actor, Department: e.ActorDepartment}
					by[e.Actor] = c
				}
				c.Count++
				c.AuditIndexes = append(c.AuditIndexes, st.Index)
				t := e.Time
				if c.FirstAt == nil || t.Before(*c.FirstAt) {
					c.FirstAt = &t
				}
				if c.LastAt == nil || t.After(*c.LastAt) {
					c.LastAt = &t
				}
			}
			scanned += len(page)
			if !more || len(page) == 0 {
				break
			}
			before = page[len(page)-1].Index
		}
	}
	var out []Candidate
	for _, c := range by {
		if c.Count > MaxDeniedReads {
			slices.Sort(c.AuditIndexes)
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Candidate) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Username, b.Username)
	})
	if out == nil {
		out = []Candidate{}
	}
	return out, nil
}
