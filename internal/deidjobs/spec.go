package deidjobs

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// NewJob asks for a de-identification job (POST /api/v1/deid/jobs).
type NewJob struct {
	// Purpose is a code: research, quality_control or operations (test
	// environments).
	Purpose string `json:"purpose"`
	// Reason, free text, says what the data is for (sealed with the
	// approval; default: the purpose).
	Reason string `json:"reason,omitempty"`
	// Scope selects records by department, record types and dates;
	// PatientIDs instead (or as well) names the patients.
	Scope      *Scope   `json:"scope,omitempty"`
	PatientIDs []string `json:"patient_ids,omitempty"`
	// Fields gives each output field its rule (FieldRules); a field not
	// named is left out.
	Fields map[string]string `json:"fields"`
	// K, if set (at least 2), makes the patients k-anonymous over
	// QuasiIdentifiers (default: every one of age, gender, address,
	// birth_date the fields keep), suppressing at most Suppress of them
	// (a fraction in [0, 0.5], default 0).
	K                int       `json:"k,omitempty"`
	QuasiIdentifiers []string  `json:"quasi_identifiers,omitempty"`
	Suppress         float64   `json:"suppress,omitempty"`
	LDiverse         *LDiverse `json:"l_diverse,omitempty"`
	// Recipient is the user id of the researcher who receives the output
	// (default: the requester); they must hold deid.read.
	Recipient string `json:"recipient,omitempty"`
	// MaxDownloads (default 3) and ExpiresAt (default 30 days after the
	// request) bound the recipient's downloads.
	MaxDownloads int       `json:"max_downloads,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
}

// Scope selects the records of a job.
type Scope struct {
	Department  string    `json:"department,omitempty"`
	RecordTypes []string  `json:"record_types,omitempty"`
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
}

// LDiverse asks for distinct l-diversity of a sensitive attribute
// (diagnosis or department: the patient's first record's) in every class.
type LDiverse struct {
	Attribute string `json:"attribute"`
	L         int    `json:"l"`
}

// Spec is a job as approved: the request, checked and normalised. It
// holds ids, codes, dates and rules only.
type Spec struct {
	Scope            Scope             `json:"scope"`
	PatientIDs       []string          `json:"patient_ids,omitempty"`
	Fields           map[string]string `json:"fields"`
	K                int               `json:"k,omitempty"`
	QuasiIdentifiers []string          `json:"quasi_identifiers,omitempty"`
	Suppress         float64           `json:"suppress,omitempty"`
	LDiverse         *LDiverse         `json:"l_diverse,omitempty"`
	// Patients and Records are the scope's size when asked.
	Patients int `json:"patients"`
	Records  int `json:"records"`
}

// FieldRules are the output fields and the rules each may be given. A
// direct identifier (name, ID number, phone, address) is never kept as
// it is.
var FieldRules = map[string][]string{
	"name":        {"mask", "drop"},
	"id_number":   {"mask", "drop"},
	"phone":       {"mask", "drop"},
	"address":     {"district", "city", "province", "drop"},
	"birth_date":  {"shift", "year", "drop"},
	"age":         {"group", "drop"},
	"gender":      {"keep", "drop"},
	"department":  {"keep", "drop"},
	"record_date": {"shift", "month", "drop"},
	"title":       {"scrub", "drop"},
	"diagnosis":   {"scrub", "drop"},
	"text":        {"scrub", "drop"},
}

// Fields lists the output fields in output order.
var Fields = []string{"name", "gender", "birth_date", "age", "id_number", "phone", "address", "department", "record_date",
	"title", "diagnosis", "text"}

// QuasiIdentifiers are the fields k-anonymity may generalise.
var QuasiIdentifiers = []string{"age", "gender", "address", "birth_date"}

// Purposes are the purposes a job may declare (codes of policy.Purposes).
var Purposes = []string{"research", "quality_control", "operations"}

// SensitiveAttributes are the attributes l-diversity may be asked of.
var SensitiveAttributes = []string{"diagnosis", "department"}

// quasiAlias maps other names of the quasi-identifiers to theirs.
var quasiAlias = map[string]string{"address_district": "address", "birth_year": "birth_date"}

// check validates a request for the requester and returns its spec, the
// recipient, the output's bounds and the partner agreement covering it.
func (s *Service) check(ctx context.Context, call *medguard.Call, in NewJob, now time.Time) (*Spec, *identity.User, string, error) {
	if !slices.Contains(Purposes, in.Purpose) {
		return nil, nil, "", medguard.InvalidField("payload.purpose", "purpose must be one of %s", strings.Join(Purposes, ", "))
	}
	sp := &Spec{Fields: map[string]string{}, K: in.K, Suppress: in.Suppress, LDiverse: in.LDiverse}
	if in.Scope != nil {
		sp.Scope = *in.Scope
	}
	if in.Scope == nil && len(in.PatientIDs) == 0 {
		return nil, nil, "", medguard.InvalidField("payload.scope", "name a scope or patient_ids")
	}
	if len(in.PatientIDs) > 1000 {
		return nil, nil, "", medguard.InvalidField("payload.patient_ids", "at most 1000 patients may be named; use a scope")
	}
	for _, id := range in.PatientIDs {
		if ok, err := s.records.PatientExists(ctx, id); err != nil {
			return nil, nil, "", err
		} else if !ok {
			return nil, nil, "", medguard.InvalidField("payload.patient_ids", "no such patient")
		}
	}
	sp.PatientIDs = slices.Compact(slices.Sorted(slices.Values(in.PatientIDs)))
	if d := sp.Scope.Department; d != "" {
		if _, err := s.identity.DepartmentByCode(ctx, d); err != nil {
			return nil, nil, "", medguard.InvalidField("payload.scope.department", "no department has this code")
		}
	}
	for _, t := range sp.Scope.RecordTypes {
		if !policy.KnownRecordType(t) {
			return nil, nil, "", medguard.InvalidField("payload.scope.record_types", "unknown record type")
		}
		if policy.Restricted(t) {
			return nil, nil, "", medguard.InvalidField("payload.scope.record_types", "restricted records are never de-identified by a job")
		}
	}
	sp.Scope.RecordTypes = slices.Compact(slices.Sorted(slices.Values(sp.Scope.RecordTypes)))
	if !sp.Scope.From.IsZero() && !sp.Scope.To.IsZero() && !sp.Scope.To.After(sp.Scope.From) {
		return nil, nil, "", medguard.InvalidField("payload.scope.to", "to must be after from")
	}
	if len(in.Fields) == 0 {
		return nil, nil, "", medguard.InvalidField("payload.fields", "name at least one field and its rule")
	}
	for f, r := range in.Fields {
		rules, ok := FieldRules[f]
		if !ok {
			return nil, nil, "", medguard.InvalidField("payload.fields", "unknown field; fields are %s", strings.Join(Fields, ", "))
		}
		if !slices.Contains(rules, r) {
			return nil, nil, "", medguard.InvalidField("payload.fields."+f, "the rule of %s must be one of %s", f, strings.Join(rules, ", "))
		}
		if r != "drop" {
			sp.Fields[f] = r
		}
	}
	if err := s.checkAnonymity(sp, in); err != nil {
		return nil, nil, "", err
	}
	p, r, err := s.records.ScopeSize(ctx, records.SourceScope{PatientIDs: sp.PatientIDs, Department: sp.Scope.Department,
		RecordTypes: sp.Scope.RecordTypes, From: sp.Scope.From, To: sp.Scope.To})
	if err != nil {
		return nil, nil, "", err
	}
	switch {
	case r == 0:
		return nil, nil, "", medguard.InvalidField("payload.scope", "the scope names no records")
	case r > s.cfg.MaxRecords || p > s.cfg.MaxPatients:
		return nil, nil, "", medguard.InvalidField("payload.scope", "a job may read at most %d records of %d patients; narrow the scope",
			s.cfg.MaxRecords, s.cfg.MaxPatients)
	}
	sp.Patients, sp.Records = p, r
	recipientID := in.Recipient
	if recipientID == "" {
		recipientID = call.Actor.ID
	}
	u, err := s.identity.UserByID(ctx, recipientID)
	if err != nil || u.Status != identity.Active {
		return nil, nil, "", medguard.InvalidField("payload.recipient", "no active user has this id")
	}
	if !policy.PermissionsOf(u.Roles)[policy.DeidRead] {
		return nil, nil, "", medguard.InvalidField("payload.recipient", "the recipient must be allowed to receive de-identified data (deid.read)")
	}
	agreement, err := s.checkPartners(ctx, in.Purpose, sp, now, call.Actor.ID, u.ID)
	if err != nil {
		return nil, nil, "", err
	}
	return sp, u, agreement, nil
}

// checkPartners asks the partners capability, if wired, whether each user
// is a partner account within a live agreement covering the purpose, the
// department and the k-anonymity of the job's spec.
func (s *Service) checkPartners(ctx context.Context, purpose string, sp *Spec, at time.Time, userIDs ...string) (string, error) {
	a := s.agreementsOf()
	if a == nil {
		return "", nil
	}
	found := ""
	for _, id := range userIDs {
		ag, err := a.CheckJobScope(ctx, id, purpose, sp.Scope.Department, sp.K, at)
		if err != nil {
			return "", err
		}
		if ag != "" {
			found = ag
		}
	}
	return found, nil
}

// checkAnonymity validates k, the quasi-identifiers, the suppression limit
// and l-diversity.
func (s *Service) checkAnonymity(sp *Spec, in NewJob) error {
	if in.K == 0 {
		if len(in.QuasiIdentifiers) > 0 || in.LDiverse != nil || in.Suppress != 0 {
			return medguard.InvalidField("payload.k", "k is required with quasi_identifiers, suppress or l_diverse")
		}
		return nil
	}
	if in.K < 2 || in.K > 1000 {
		return medguard.InvalidField("payload.k", "k must be 2-1000")
	}
	if in.Suppress < 0 || in.Suppress > 0.5 {
		return medguard.InvalidField("payload.suppress", "suppress must be a fraction from 0 to 0.5")
	}
	qis := in.QuasiIdentifiers
	if len(qis) == 0 {
		for _, q := range QuasiIdentifiers {
			if sp.Fields[q] != "" {
				qis = append(qis, q)
			}
		}
	}
	var out []string
	for _, q := range qis {
		if a, ok := quasiAlias[q]; ok {
			q = a
		}
		if !slices.Contains(QuasiIdentifiers, q) {
			return medguard.InvalidField("payload.quasi_identifiers", "quasi-identifiers are %s", strings.Join(QuasiIdentifiers, ", "))
		}
		if sp.Fields[q] == "" {
			return medguard.InvalidField("payload.quasi_identifiers", "a quasi-identifier must be a field of the output")
		}
		if !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		return medguard.InvalidField("payload.quasi_identifiers", "k-anonymity needs a quasi-identifier the output keeps")
	}
	sp.QuasiIdentifiers = out
	if l := in.LDiverse; l != nil {
		if !slices.Contains(SensitiveAttributes, l.Attribute) {
			return medguard.InvalidField("payload.l_diverse.attribute", "attribute must be one of %s", strings.Join(SensitiveAttributes, ", "))
		}
		if sp.Fields[l.Attribute] == "" {
			return medguard.InvalidField("payload.l_diverse.attribute", "the sensitive attribute must be a field of the output")
		}
		if l.L < 2 || l.L > 100 {
			return medguard.InvalidField("payload.l_diverse.l", "l must be 2-100")
		}
	}
	return nil
}

// bounds checks the download limit and expiry.
func (s *Service) bounds(in NewJob, now time.Time) (int, time.Time, error) {
	n := in.MaxDownloads
	if n == 0 {
		n = 3
	}
	if n < 1 || n > s.cfg.MaxDownloads {
		return 0, time.Time{}, medguard.InvalidField("payload.max_downloads", "max_downloads must be 1-%d", s.cfg.MaxDownloads)
	}
	exp := in.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(30 * 24 * time.Hour)
	}
	switch {
	case !exp.After(now):
		return 0, time.Time{}, medguard.InvalidField("payload.expires_at", "expires_at must be in the future")
	case exp.Sub(now) > s.cfg.MaxLifetime:
		return 0, time.Time{}, medguard.InvalidField("payload.expires_at", "an output may stay at most %d days", int(s.cfg.MaxLifetime.Hours()/24))
	}
	return n, exp.UTC().Truncate(time.Millisecond), nil
}

// fieldsCopy returns a copy of a spec's field rules.
func (sp *Spec) fieldsCopy() map[string]string { return maps.Clone(sp.Fields) }
