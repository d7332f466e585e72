package records

import (
	"context"
	"slices"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// Exports (SPEC §8, internal/exports). The exports capability plans an
// export with facts (ids, types, classifications: no patient data) and
// reads the data for the file here, through the gate: one record.export
// entry per patient, each decided on its own with the reader's relations,
// and each record checked (restricted records open only as the policy
// says). It never reaches into these tables itself.

// ExportRecordFact is a record an export would hold, without its content.
type ExportRecordFact struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	Department     string `json:"department"`
	Classification string `json:"classification"`
}

// ExportPatientFact is a patient an export would hold: their id and the
// ids of their records it covers.
type ExportPatientFact struct {
	PatientID string             `json:"patient_id"`
	Records   []ExportRecordFact `json:"records"`
}

// MaxExportCandidates is the most patients a query for an export finds.
const MaxExportCandidates = 1000

// ExportCandidates returns the ids of the patients with records of the
// department written in [from, to) (at most MaxExportCandidates, in id
// order): the patients a query for an export names.
func (s *Service) ExportCandidates(ctx context.Context, department string, from, to time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT patient_id FROM records WHERE department = $1 AND created_at >= $2
		AND created_at < $3 AND destroyed_at IS NULL ORDER BY patient_id LIMIT $4`, department, medguard.Millis(from),
		medguard.Millis(to), MaxExportCandidates+1)
	if err != nil {
		return nil, medguard.Wrap("records.ExportCandidates", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, medguard.Wrap("records.ExportCandidates", err)
		}
		out = append(out, id)
	}
	return out, medguard.Wrap("records.ExportCandidates", rows.Err())
}

// ExportFacts returns, for each patient (in the order given), the records
// of the given types (all, when types is empty) that are not destroyed; an
// unknown patient is a NotFound error.
func (s *Service) ExportFacts(ctx context.Context, patientIDs, types []string) ([]ExportPatientFact, error) {
	out := make([]ExportPatientFact, 0, len(patientIDs))
	for _, id := range patientIDs {
		ok, err := s.PatientExists(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errNoPatient
		}
		rows, err := s.db.QueryContext(ctx, `SELECT r.id, r.type, r.department, v.classification FROM records r
			JOIN record_versions v ON v.record_id = r.id AND v.version = r.version
			WHERE r.patient_id = $1 AND r.destroyed_at IS NULL ORDER BY r.id`, id)
		if err != nil {
			return nil, medguard.Wrap("records.ExportFacts", err)
		}
		f := ExportPatientFact{PatientID: id, Records: []ExportRecordFact{}}
		for rows.Next() {
			var r ExportRecordFact
			if err := rows.Scan(&r.ID, &r.Type, &r.Department, &r.Classification); err != nil {
				rows.Close()
				return nil, medguard.Wrap("records.ExportFacts", err)
			}
			if len(types) == 0 || slices.Contains(types, r.Type) {
				f.Records = append(f.Records, r)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, medguard.Wrap("records.ExportFacts", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// ExportedPatient is one patient's data in an export, decrypted: the
// patient and the records the reader may export of those planned.
// Withheld counts the planned records left out (restricted, destroyed
// since, or not the reader's to export).
type ExportedPatient struct {
	Patient  *Patient
	Records  []Record
	Withheld int
}

// ReadForExport reads the planned patients' data for an export's file.
// lead is the export itself (decided first: its requester, its approval);
// then each patient is a passage of record.export of their own (logged as
// action: record.export, or record.export_approved for an export under an
// approved four-eyes request), decided
// with the reader's relations and logged as its own entry, so that every
// patient in the file counts in detection and in their access report.
// Each planned record is checked too (record.export on the record). If any
// patient is refused, nothing is read and the refusal is returned; build
// gets the data and its error fails the whole operation (every entry then
// logs that outcome).
func (s *Service) ReadForExport(ctx context.Context, lead gate.Passage, action string, plan []ExportPatientFact,
	build func([]ExportedPatient) error) error {
	call := lead.Call
	var items []gate.Passage
	return s.gate.EnterList(ctx, lead, func(policy.Decision) ([]gate.Passage, error) {
		items = make([]gate.Passage, len(plan))
		for i, p := range plan {
			r, err := s.patientResource(ctx, p.PatientID)
			if err != nil {
				return nil, err
			}
			pass, err := s.passage(ctx, call, policy.RecordExport, r)
			if err != nil {
				return nil, err
			}
			pass.AuditAction = action
			items[i] = pass
		}
		return items, nil
	}, func(ds []policy.Decision) error {
		for _, d := range ds {
			if !d.Allowed {
				return &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule,
					Message: "a patient in the export is not yours to export; nothing was exported"}
			}
		}
		out := make([]ExportedPatient, len(plan))
		for i, p := range plan {
			sp, err := s.loadPatient(ctx, p.PatientID)
			if err != nil {
				return err
			}
			if out[i].Patient, err = s.open(ctx, sp, items[i].Resource.Departments); err != nil {
				return err
			}
			if out[i].Patient.Departments, err = s.visibleDepartments(ctx, call, items[i].Resource.Departments); err != nil {
				return err
			}
			out[i].Records = []Record{}
			for _, rf := range p.Records {
				r, err := s.loadRecord(ctx, rf.ID, 0)
				if err != nil || r.patientID != p.PatientID || r.gone() != nil {
					out[i].Withheld++
					continue
				}
				item := items[i]
				item.Resource = r.resource()
				if !s.gate.Check(item).Allowed {
					out[i].Withheld++
					continue
				}
				rec, err := s.openRecord(ctx, r)
				if err != nil {
					return err
				}
				out[i].Records = append(out[i].Records, *rec)
			}
		}
		return build(out)
	})
}

// ExportCheck tells, before an export of the patients is asked for,
// whether the caller would be let export each (the decision the file's
// build will take, entry by entry): nil, or the first refusal as a
// Forbidden error with its rule. It logs nothing; the caller is inside a
// gated, logged operation (the request).
func (s *Service) ExportCheck(ctx context.Context, call *medguard.Call, patientIDs []string) error {
	for _, id := range patientIDs {
		r, err := s.patientResource(ctx, id)
		if err != nil {
			return err
		}
		pass, err := s.passage(ctx, call, policy.RecordExport, r)
		if err != nil {
			return err
		}
		if d := s.gate.Check(pass); !d.Allowed {
			return &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule, Field: "patient_ids",
				Message: "a patient named is not yours to export"}
		}
	}
	return nil
}
