package incidents

import (
	"context"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// Candidate is a possible violation found in the records: a user with
// more than MaxDeniedReads unauthorised queries in the period (grade 2) —
// record reads the policy refused, and break-glass accesses their
// department head reviewed as unjustified —, or an admission archived, or
// still not archived, more than 24 hours late (grade 3). It names people
// and opaque ids only.
type Candidate struct {
	Kind string `json:"kind"` // unauthorized_queries | late_archiving
	// Grade is the grade of violation the candidate would be (§7).
	Grade int `json:"grade"`
	// UserID is the id of the person concerned, for opening a case; empty
	// when the name is not a member of staff (an API key, a removed name).
	UserID     string `json:"user_id,omitempty"`
	Username   string `json:"username,omitempty"`
	Department string `json:"department,omitempty"`
	// Count is the number of unauthorised queries: refused reads plus
	// unjustified break-glass accesses.
	Count int `json:"count,omitempty"`
	// BreakGlass is how many of Count were break-glass accesses reviewed
	// as unjustified.
	BreakGlass int        `json:"break_glass,omitempty"`
	FirstAt    *time.Time `json:"first_at,omitempty"`
	LastAt     *time.Time `json:"last_at,omitempty"`
	// AuditIndexes are the audit entries of the queries: the refused reads
	// and the break-glass reads; for late archiving, the discharge and
	// (once archived) the archiving.
	AuditIndexes []uint64 `json:"audit_indexes,omitempty"`
	// Role says, for late archiving, what the person did: "archived" (the
	// records were archived late by them) or "discharged" (not archived
	// yet: the person is who discharged the patient).
	Role        string `json:"role,omitempty"`
	AdmissionID string `json:"admission_id,omitempty"`
	PatientID   string `json:"patient_id,omitempty"`
	HoursLate   int    `json:"hours_late,omitempty"`
}

// MaxDeniedReads is how many unauthorised queries in a period are
// tolerated; more is a candidate for a grade-2 case (§7: unauthorised
// queries more than 3 times).
const MaxDeniedReads = 3

// LateArchivingHours is how late archiving may be before it is a candidate
// for a grade-3 case.
const LateArchivingHours = 24

// readActions are the audit actions that read patient data.
var readActions = []string{"record.read", "record.read_history", "record.list", "patient.read"}

// maxScan bounds the entries one candidate search reads per action.
const maxScan = 100_000

// Candidates proposes cases from the period [from, to). Unauthorised
// queries are the record reads the audit log shows refused, and the
// break-glass accesses made in the period that their department head
// reviewed as unjustified (from the records service); a user with more
// than MaxDeniedReads of them together is a candidate. The records service
// also lists archiving more than 24 hours late. The caller must manage
// cases and read the audit log; the two lists from the records service are
// its own logged operations (break-glass needs breakglass.read, late
// archiving archiving.read).
func (s *Service) Candidates(ctx context.Context, call *medguard.Call, from, to time.Time) ([]Candidate, error) {
	var by map[string]*Candidate
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
			by, err = s.deniedReads(ctx, from, to)
			return nil, err
		})
	if err != nil {
		return nil, err
	}
	if s.records == nil {
		return s.unauthorisedQueries(ctx, by)
	}
	glass, err := s.records.UnjustifiedBreakGlass(ctx, call, from, to)
	if err != nil {
		return nil, err
	}
	// A listing across departments is one access with one audit entry but
	// one event per department: it counts once, however many heads found
	// it unjustified.
	counted := map[uint64]bool{}
	for _, e := range glass {
		if counted[e.AuditIndex] {
			continue
		}
		counted[e.AuditIndex] = true
		c := candidateOf(by, e.Username, "")
		if c.UserID == "" {
			c.UserID = e.UserID
		}
		c.BreakGlass++
		c.count(e.AuditIndex, e.At)
	}
	out, err := s.unauthorisedQueries(ctx, by)
	if err != nil {
		return nil, err
	}
	late, err := s.records.LateArchiving(ctx, call, "", from)
	if err != nil {
		return nil, err
	}
	var lateOnes []Candidate
	for _, a := range late {
		if a.HoursLate <= LateArchivingHours {
			continue
		}
		lateOnes = append(lateOnes, Candidate{Kind: "late_archiving", Grade: 3, Username: a.ArchivedBy, Department: a.Department,
			AdmissionID: a.ID, PatientID: a.PatientID, HoursLate: a.HoursLate, Role: "archived"})
	}
	if err := s.archivingEntries(ctx, lateOnes); err != nil {
		return nil, err
	}
	for _, c := range lateOnes {
		if c.Username != "" {
			u, err := s.staff(ctx, c.Username)
			if err != nil {
				return nil, err
			}
			if u != nil {
				c.UserID = u.ID
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// archivingEntries finds the audit entries of the late-archiving
// candidates' admissions — each one's discharge and archiving — and, for
// one not archived yet, names who discharged the patient. The log is read
// once per action, newest first, until every admission is found (at most
// maxScan entries each).
func (s *Service) archivingEntries(ctx context.Context, cs []Candidate) error {
	byAdmission := map[string]*Candidate{}
	for i := range cs {
		byAdmission[cs[i].AdmissionID] = &cs[i]
	}
	for _, action := range []string{"admission.discharge", "admission.archive"} {
		left := 0 // admissions whose entry of this action is still to find
		for i := range cs {
			if action == "admission.discharge" || cs[i].Role == "archived" {
				left++
			}
		}
		var before uint64
		for scanned := 0; left > 0 && scanned < maxScan; {
			page, more, err := s.log.Search(ctx, audit.Query{Action: action, Before: before, Limit: audit.MaxEntries})
			if err != nil {
				return err
			}
			for _, st := range page {
				e := st.Entry
				c := byAdmission[e.TargetID]
				if c == nil || e.Outcome != audit.Success {
					continue
				}
				c.AuditIndexes = append(c.AuditIndexes, st.Index)
				left--
				if action == "admission.discharge" && c.Username == "" && e.Actor != "" && e.Actor != "system" {
					c.Username, c.Role = e.Actor, "discharged"
				}
			}
			scanned += len(page)
			if !more || len(page) == 0 {
				break
			}
			before = page[len(page)-1].Index
		}
	}
	for i := range cs {
		slices.Sort(cs[i].AuditIndexes)
	}
	return nil
}

// candidateOf returns the unauthorised-queries candidate of a user,
// adding it to by when new.
func candidateOf(by map[string]*Candidate, username, department string) *Candidate {
	c := by[username]
	if c == nil {
		c = &Candidate{Kind: "unauthorized_queries", Grade: 2, Username: username, Department: department}
		by[username] = c
	}
	return c
}

// count adds one unauthorised query, its audit entry and its time.
func (c *Candidate) count(index uint64, at time.Time) {
	c.Count++
	c.AuditIndexes = append(c.AuditIndexes, index)
	if c.FirstAt == nil || at.Before(*c.FirstAt) {
		c.FirstAt = &at
	}
	if c.LastAt == nil || at.After(*c.LastAt) {
		c.LastAt = &at
	}
}

// staff finds a member of staff by username; nil if there is none (an API
// key, the system).
func (s *Service) staff(ctx context.Context, username string) (*identity.User, error) {
	u, err := s.users.UserByUsername(ctx, username)
	if medguard.IsKind(err, medguard.NotFound) {
		return nil, nil
	}
	return u, err
}

// unauthorisedQueries keeps the users with more than MaxDeniedReads
// unauthorised queries, most first, with their ids and departments.
func (s *Service) unauthorisedQueries(ctx context.Context, by map[string]*Candidate) ([]Candidate, error) {
	out := []Candidate{}
	for _, c := range by {
		if c.Count <= MaxDeniedReads {
			continue
		}
		slices.Sort(c.AuditIndexes)
		if c.UserID == "" || c.Department == "" {
			u, err := s.staff(ctx, c.Username)
			if err != nil {
				return nil, err
			}
			if u != nil && c.UserID == "" {
				c.UserID = u.ID
			}
			if u != nil && c.Department == "" {
				c.Department = u.Department
			}
		}
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Candidate) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Username, b.Username)
	})
	return out, nil
}

// deniedReads counts, per user, the reads refused in [from, to).
func (s *Service) deniedReads(ctx context.Context, from, to time.Time) (map[string]*Candidate, error) {
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
				candidateOf(by, e.Actor, e.ActorDepartment).count(st.Index, e.Time)
			}
			scanned += len(page)
			if !more || len(page) == 0 {
				break
			}
			before = page[len(page)-1].Index
		}
	}
	return by, nil
}
