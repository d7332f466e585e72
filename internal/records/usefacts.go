package records

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"medguard"
	"medguard/internal/policy"
)

// The facts the data-use capability (internal/datause: record-use
// requests, paper folders, copies) needs about patients and records. None
// of them discloses patient data: they answer with ids, types,
// departments and yes or no, for a caller that is itself inside a gated,
// logged operation.

// UseGrantsFunc loads a user's approved record-use requests for a patient.
type UseGrantsFunc func(ctx context.Context, userID, patientID string) ([]policy.UseGrant, error)

// SetUseGrants makes approved record-use requests a relation the policy
// weighs for reads (set once, at start).
func (s *Service) SetUseGrants(f UseGrantsFunc) { s.useGrants = f }

// RecordFact is what the policy needs to know of a record, without its
// content.
type RecordFact struct {
	ID         string
	PatientID  string
	Type       string
	Department string
	// Restricted: a restricted type, or a record of a restricted department.
	Restricted bool
}

// RecordFacts returns the facts of the records with the given ids, in the
// same order; an unknown id is a NotFound error.
func (s *Service) RecordFacts(ctx context.Context, ids []string) ([]RecordFact, error) {
	out := make([]RecordFact, 0, len(ids))
	for _, id := range ids {
		var f RecordFact
		var restricted int
		var err error = errNoRecord
		if medguard.ValidID(id) {
			err = s.db.QueryRowContext(ctx, `SELECT r.id, r.patient_id, r.type, r.department,
				(SELECT count(*) FROM restricted_departments x WHERE x.department = r.department)
				FROM records r WHERE r.id = $1`, id).Scan(&f.ID, &f.PatientID, &f.Type, &f.Department, &restricted)
		}
		if errors.Is(err, sql.ErrNoRows) {
			err = errNoRecord
		}
		if err != nil {
			return nil, medguard.Wrap("records.RecordFacts", err)
		}
		f.Restricted = restricted > 0 || policy.Restricted(f.Type)
		out = append(out, f)
	}
	return out, nil
}

// PatientDepartments returns the departments holding data of a patient.
func (s *Service) PatientDepartments(ctx context.Context, patientID string) ([]string, error) {
	return s.patientDepartments(ctx, patientID)
}

// PatientMatches reports whether the patient's field (id_number or name)
// equals value, through the field's blind index: nothing is decrypted and
// value is never stored. value must be normalised as the patient's was
// (an ID number's check digit upper-cased).
func (s *Service) PatientMatches(ctx context.Context, patientID, field, value string) (bool, error) {
	column := map[string]string{"id_number": "id_number_index", "name": "name_index"}[field]
	if column == "" || value == "" || !medguard.ValidID(patientID) {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE id = $1 AND `+column+` = $2`, patientID,
		s.keys.Index().Of(field, value)).Scan(&n)
	return n > 0, err
}

// NormalizeMRN checks a 病案号 as a patient's is checked.
func NormalizeMRN(v string) (string, error) { return checkMRN(v) }

// PatientByMRN returns the id of the patient with this 病案号 (through its
// blind index), or "".
func (s *Service) PatientByMRN(ctx context.Context, mrn string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM patients WHERE mrn_index = $1`, s.keys.Index().Of("mrn", strings.TrimSpace(mrn))).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// PatientsWithRecords returns the patients with at least one electronic
// record.
func (s *Service) PatientsWithRecords(ctx context.Context) (map[string]bool, error) {
	return s.idSet(ctx, `SELECT DISTINCT patient_id FROM records`)
}

// Inpatients returns the patients with at least one admission (inpatient
// records), who must each have a paper folder.
func (s *Service) Inpatients(ctx context.Context) (map[string]bool, error) {
	return s.idSet(ctx, `SELECT DISTINCT patient_id FROM admissions`)
}

func (s *Service) idSet(ctx context.Context, q string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, medguard.Wrap("records.idSet", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, medguard.Wrap("records.idSet", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}
