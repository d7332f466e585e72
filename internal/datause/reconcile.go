package datause

import (
	"context"
	"math"
	"slices"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// FolderGap is a paper folder without an electronic copy: its 病案号 names
// no patient of the archive (no_patient), or its patient has no electronic
// record (no_records).
type FolderGap struct {
	FolderID  string `json:"folder_id"`
	Barcode   string `json:"barcode"`
	PatientID string `json:"patient_id,omitempty"`
	MRNTail   string `json:"mrn_tail,omitempty"`
	Location  string `json:"location"`
	Reason    string `json:"reason"`
}

// Reconciliation is the paper–electronic reconciliation (seed 003 §4.2.1:
// the sync rate must be 100 %).
type Reconciliation struct {
	// Folders counts the folders not destroyed; Inpatients the patients
	// with inpatient records (an admission), each of whom needs a folder.
	Folders    int `json:"folders"`
	Inpatients int `json:"inpatients"`
	// Matched counts the patients with both a folder and electronic records.
	Matched                  int         `json:"matched"`
	FoldersWithoutElectronic []FolderGap `json:"folders_without_electronic"`
	PatientsWithoutFolder    []string    `json:"patients_without_folder"`
	// Rate is Matched over Matched plus both lists, in percent (100 when
	// there is nothing to reconcile).
	Rate       float64   `json:"rate"`
	ComputedAt time.Time `json:"computed_at"`
}

// Reconcile computes the paper–electronic reconciliation now
// (folder.read). It lists ids, barcodes and shelves: no demographics.
func (s *Service) Reconcile(ctx context.Context, call *medguard.Call) (*Reconciliation, error) {
	out := &Reconciliation{FoldersWithoutElectronic: []FolderGap{}, PatientsWithoutFolder: []string{},
		ComputedAt: s.clock.Now().Truncate(time.Millisecond)}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.FolderRead, AuditAction: "folder.reconcile",
		Resource: policy.Resource{Type: "paper_folder"}}, func(policy.Decision) (audit.Mutation, error) {
		return nil, s.reconcile(ctx, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) reconcile(ctx context.Context, out *Reconciliation) error {
	withRecords, err := s.records.PatientsWithRecords(ctx)
	if err != nil {
		return err
	}
	inpatients, err := s.records.Inpatients(ctx)
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, barcode, patient_id, mrn, mrn_tail, location FROM paper_folders
		WHERE status <> $1 ORDER BY barcode`, Destroyed)
	if err != nil {
		return err
	}
	type row struct {
		gap FolderGap
		mrn []byte
	}
	var folders []row
	for rows.Next() {
		var r row
		var patient *string
		if err := rows.Scan(&r.gap.FolderID, &r.gap.Barcode, &patient, &r.mrn, &r.gap.MRNTail, &r.gap.Location); err != nil {
			rows.Close()
			return err
		}
		if patient != nil {
			r.gap.PatientID = *patient
		}
		folders = append(folders, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	foldered := map[string]bool{}
	for _, r := range folders {
		g := r.gap
		if g.PatientID == "" && r.mrn != nil {
			// The patient may have been registered since: look again.
			mrn, err := s.open(ctx, "paper_folders", g.FolderID, "mrn", r.mrn)
			if err != nil {
				return err
			}
			if g.PatientID, err = s.records.PatientByMRN(ctx, mrn); err != nil {
				return err
			}
		}
		switch {
		case g.PatientID == "":
			g.Reason = "no_patient"
		case !withRecords[g.PatientID]:
			g.Reason = "no_records"
		}
		if g.PatientID != "" {
			foldered[g.PatientID] = true
		}
		if g.Reason != "" {
			out.FoldersWithoutElectronic = append(out.FoldersWithoutElectronic, g)
		}
	}
	out.Folders, out.Inpatients = len(folders), len(inpatients)
	for p := range foldered {
		if withRecords[p] {
			out.Matched++
		}
	}
	for p := range inpatients {
		if !foldered[p] {
			out.PatientsWithoutFolder = append(out.PatientsWithoutFolder, p)
		}
	}
	slices.Sort(out.PatientsWithoutFolder)
	total := out.Matched + len(out.FoldersWithoutElectronic) + len(out.PatientsWithoutFolder)
	out.Rate = 100
	if total > 0 {
		out.Rate = math.Round(float64(out.Matched)/float64(total)*1000) / 10
	}
	return nil
}
