package records

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// Finding a patient for an audit (SPEC §5, 患者访问记录): security officers
// and quality auditors hold audit.read and no patient permission, yet must
// open a patient's access report and trail from what the patient brings to
// the desk — a name, a resident ID number or a 病案号 — rather than the
// internal id. LookupForAudit finds them through the same blind indexes as
// SearchPatients and shows only what tells patients apart.

// AuditMatch is a patient found for an audit: enough to tell patients
// apart, never their data.
type AuditMatch struct {
	ID         string `json:"id"`
	MaskedName string `json:"masked_name"`
	Gender     string `json:"gender"`
	BirthYear  int    `json:"birth_year,omitempty"`
	// MRNTail is the last four characters of the 病案号 ("" without one).
	MRNTail string `json:"mrn_tail,omitempty"`
	// Departments are the departments holding the patient's data that
	// the caller may know of (restricted ones only to their own).
	Departments []string `json:"departments"`
}

// mrnTailLength is how much of the 病案号 a match shows.
const mrnTailLength = 4

// LookupForAudit finds patients by one text — a resident ID number, a
// 病案号 or an exact name — for the holders of audit.read, who open the
// patient's access report and audit trail from it. A text that is a valid
// resident ID number is looked up as one; any other is looked up as a
// 病案号 and as a name. Like SearchPatients, the lookup is one operation of
// the gate, and each match is an entry of its own (patient.search_match,
// decided with audit.read): every patient shown counts, in detection and in
// that patient's access report.
func (s *Service) LookupForAudit(ctx context.Context, call *medguard.Call, text string) ([]AuditMatch, error) {
	text = strings.TrimSpace(text)
	lead := gate.Passage{Call: call, Action: policy.AuditRead, AuditAction: "patient.search",
		Resource: policy.Resource{Type: "patient_search"}}
	var found []*storedPatient
	var depts [][]string
	out := []AuditMatch{}
	err := s.gate.EnterList(ctx, lead, func(policy.Decision) ([]gate.Passage, error) {
		where, args, err := s.lookupCondition(ctx, text)
		if err != nil {
			return nil, err
		}
		var items []gate.Passage
		found, depts, items, err = s.searchMatches(ctx, call, policy.AuditRead, where, args...)
		return items, err
	}, func(ds []policy.Decision) error {
		for i, p := range found {
			if !ds[i].Allowed {
				continue
			}
			m, err := s.auditMatch(ctx, call, p, depts[i])
			if err != nil {
				return err
			}
			out = append(out, *m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lookupCondition is the WHERE clause of a lookup by text: a resident ID
// number, or else a 病案号 or a name.
func (s *Service) lookupCondition(ctx context.Context, text string) (string, []any, error) {
	if text == "" {
		return "", nil, medguard.InvalidField("query", "give a name, a resident ID number or a 病案号")
	}
	if err := textField("query", text, 64); err != nil {
		return "", nil, err
	}
	// Each value's index under every live index key version (a rotation's
	// re-index may not have reached the patient yet).
	lookup := func(column, field, value string, first int) (string, []any, error) {
		terms, err := s.keys.IndexLookup(ctx, s.db, field, value)
		if err != nil {
			return "", nil, err
		}
		cond, args := indexMatch(column, terms, first)
		return cond, args, nil
	}
	if n, _, err := checkIDNumber(text, s.today()); err == nil {
		return lookup("id_number_index", "id_number", n, 1)
	}
	if looksLikeIDNumber(text) {
		// Eighteen characters of digits (and X) that fail the check: a
		// mistyped ID number, said as such rather than searched as a name.
		_, _, err := checkIDNumber(text, s.today())
		return "", nil, err
	}
	if mrn, err := checkMRN(text); err == nil {
		byMRN, args, err := lookup("mrn_index", "mrn", mrn, 1)
		if err != nil {
			return "", nil, err
		}
		byName, more, err := lookup("name_index", "name", text, len(args)+1)
		if err != nil {
			return "", nil, err
		}
		return "(" + byMRN + " OR " + byName + ")", append(args, more...), nil
	}
	return lookup("name_index", "name", text, 1)
}

// textField checks a single-line text of at most max characters.
func textField(field, v string, max int) error { return text(field, v, max, false) }

// looksLikeIDNumber reports whether v has the shape of a resident ID
// number: 17 digits and a digit or X.
func looksLikeIDNumber(v string) bool {
	if utf8.RuneCountInString(v) != 18 {
		return false
	}
	for i, r := range v {
		if !unicode.IsDigit(r) && !(i == 17 && (r == 'X' || r == 'x')) {
			return false
		}
	}
	return true
}

// auditMatch shows one patient found for an audit.
func (s *Service) auditMatch(ctx context.Context, call *medguard.Call, sp *storedPatient, depts []string) (*AuditMatch, error) {
	m, err := s.match(ctx, call, sp, depts)
	if err != nil {
		return nil, err
	}
	out := &AuditMatch{ID: m.ID, MaskedName: m.MaskedName, Gender: m.Gender, BirthYear: m.BirthYear, Departments: m.Departments}
	if sp.mrn != nil {
		mrn, err := s.keys.OpenString(ctx, patientOwner(sp.id), loc("patients", sp.id, "mrn"), sp.mrn)
		if err != nil {
			return nil, err
		}
		out.MRNTail = tail(mrn, mrnTailLength)
	}
	return out, nil
}

// tail is the last n characters of v.
func tail(v string, n int) string {
	r := []rune(v)
	if len(r) <= n {
		return v
	}
	return string(r[len(r)-n:])
}

// ReportSubject is whom a patient access report is about, as the report
// names them for handing it to the patient.
type ReportSubject struct {
	Name string `json:"name"`
	MRN  string `json:"mrn,omitempty"`
}

// ReportSubject returns the name and 病案号 of a patient for the access
// report. It passes no gate of its own: it is for the trail service, which
// calls it inside the report's own gate passage (audit.access_report, a
// logged and counted disclosure), and must not be called elsewhere.
func (s *Service) ReportSubject(ctx context.Context, patientID string) (ReportSubject, error) {
	sp, err := s.loadPatient(ctx, patientID)
	if err != nil {
		return ReportSubject{}, err
	}
	owner := patientOwner(sp.id)
	var out ReportSubject
	if out.Name, err = s.keys.OpenString(ctx, owner, loc("patients", sp.id, "name"), sp.name); err != nil {
		return ReportSubject{}, medguard.Wrap("records.ReportSubject", err)
	}
	if sp.mrn != nil {
		if out.MRN, err = s.keys.OpenString(ctx, owner, loc("patients", sp.id, "mrn"), sp.mrn); err != nil {
			return ReportSubject{}, medguard.Wrap("records.ReportSubject", err)
		}
	}
	return out, nil
}
