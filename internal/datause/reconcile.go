package datause

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
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

// ReconcileRule is the rule of the alert raised when the day's
// reconciliation finds the sync rate below 100 % (resolved when a later
// day's is back at 100 %).
const ReconcileRule = "paper_electronic_sync"

// ReconcileKey is the key of that alert (one concern: the archive's sync).
const ReconcileKey = "paper_electronic"

// DailyReconciliation is one day's reconciliation as kept: the figures,
// without the lists behind them.
type DailyReconciliation struct {
	Day                      string    `json:"day"` // YYYY-MM-DD in the hospital's zone
	ComputedAt               time.Time `json:"computed_at"`
	Rate                     float64   `json:"rate"`
	Folders                  int       `json:"folders"`
	Inpatients               int       `json:"inpatients"`
	Matched                  int       `json:"matched"`
	FoldersWithoutElectronic int       `json:"folders_without_electronic"`
	PatientsWithoutFolder    int       `json:"patients_without_folder"`
}

// OnReconciled adds a hook told of each day's reconciliation once, by the
// server that ran it (the alert below 100 %).
func (s *Service) OnReconciled(hook func(context.Context, DailyReconciliation)) {
	s.onReconciled.Add(hook)
}

// ReconcileDaily runs the day's reconciliation if no server has run it
// yet (a day of the hospital's calendar): computed as Reconcile does,
// logged as medguard's own scheduled act (folder.reconcile), kept, and
// passed to the OnReconciled hooks. It returns the day's figures, or nil
// when the day's reconciliation had run already.
func (s *Service) ReconcileDaily(ctx context.Context) (*DailyReconciliation, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	day := now.In(s.cfg.Location).Format(time.DateOnly)
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM folder_reconciliations WHERE day = $1`, day).Scan(&n); err != nil {
		return nil, medguard.Wrap("datause.ReconcileDaily", err)
	}
	if n > 0 {
		return nil, nil
	}
	var r Reconciliation
	if err := s.reconcile(ctx, &r); err != nil {
		return nil, medguard.Wrap("datause.ReconcileDaily", err)
	}
	d := DailyReconciliation{Day: day, ComputedAt: now, Rate: r.Rate, Folders: r.Folders, Inpatients: r.Inpatients,
		Matched: r.Matched, FoldersWithoutElectronic: len(r.FoldersWithoutElectronic), PatientsWithoutFolder: len(r.PatientsWithoutFolder)}
	fresh, err := gate.Announce(ctx, s.gate, []DailyReconciliation{d}, func(DailyReconciliation) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "folder.reconcile", TargetType: "paper_folder", TargetID: day,
			Allowed: true, Rule: "allow.system.schedule:daily_reconciliation"}
	}, func(ctx context.Context, tx *sql.Tx, d DailyReconciliation) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO folder_reconciliations (day, computed_at, rate_permille, folders, inpatients,
			matched, folders_without_electronic, patients_without_folder) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (day) DO NOTHING`,
			d.Day, medguard.Millis(d.ComputedAt), int64(math.Round(d.Rate*10)), d.Folders, d.Inpatients, d.Matched,
			d.FoldersWithoutElectronic, d.PatientsWithoutFolder)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	if len(fresh) == 0 {
		return nil, err
	}
	s.onReconciled.Tell(ctx, d)
	return &d, err
}

// Reconciliations lists the kept daily reconciliations from the newest,
// at most limit (folder.read).
func (s *Service) Reconciliations(ctx context.Context, call *medguard.Call, limit int) ([]DailyReconciliation, error) {
	if limit <= 0 || limit > 366 {
		limit = 31
	}
	out := []DailyReconciliation{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.FolderRead, AuditAction: "folder.reconciliations",
		Resource: policy.Resource{Type: "paper_folder"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT day, computed_at, rate_permille, folders, inpatients, matched,
			folders_without_electronic, patients_without_folder FROM folder_reconciliations ORDER BY day DESC LIMIT $1`, limit)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var d DailyReconciliation
			var at, permille int64
			if err := rows.Scan(&d.Day, &at, &permille, &d.Folders, &d.Inpatients, &d.Matched, &d.FoldersWithoutElectronic,
				&d.PatientsWithoutFolder); err != nil {
				return nil, err
			}
			d.ComputedAt, d.Rate = medguard.FromMillis(at), float64(permille)/10
			out = append(out, d)
		}
		return nil, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LatestReconciliation is the newest kept daily reconciliation (nil:
// none yet) — read without a gate passage, for the compliance checks,
// which show it only through their own audited passages.
func (s *Service) LatestReconciliation(ctx context.Context) (*DailyReconciliation, error) {
	var d DailyReconciliation
	var at, permille int64
	err := s.db.QueryRowContext(ctx, `SELECT day, computed_at, rate_permille, folders, inpatients, matched,
		folders_without_electronic, patients_without_folder FROM folder_reconciliations ORDER BY day DESC LIMIT 1`).
		Scan(&d.Day, &at, &permille, &d.Folders, &d.Inpatients, &d.Matched, &d.FoldersWithoutElectronic, &d.PatientsWithoutFolder)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("datause.LatestReconciliation", err)
	}
	d.ComputedAt, d.Rate = medguard.FromMillis(at), float64(permille)/10
	return &d, nil
}
