package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"medguard"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
)

const (
	drillsDir   = "drills/"
	drillHeader = "medguard backup drill v1"
)

// DrillOptions are what a restore drill needs.
type DrillOptions struct {
	// Targets: the drill restores the newest backup of the first, and
	// records the drill on every one.
	Targets     []Target
	Identity    Identity
	VerifierKey string
	// KeyFile is the key file the restored data keys must open.
	KeyFile string
	// Scratch is where the backup is restored (a temporary directory in
	// it, removed afterwards); default the system's.
	Scratch string
	Signer  *Signer
	Now     func() time.Time
	// Step, if set, is told each restore step.
	Step func(Step)
}

// Drill is the record of one restore drill (恢复演练).
type Drill struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	Backup    string    `json:"backup"`
	Target    string    `json:"target"`
	// RTO is how long the restore took, verification included; RPO is how
	// old the newest data in the restored copy was when the drill began.
	RTO     time.Duration `json:"rto_ns"`
	RPO     time.Duration `json:"rpo_ns"`
	Steps   []Step        `json:"steps"`
	Patient int           `json:"patients"`
	Records int           `json:"records"`
	// AuditSize is the restored audit tree's size (its root matched the
	// manifest's). SamplePatients and SampleRecords are how many patients
	// and records of a random sample were decrypted with the key file
	// (every identifying field; title, text and structured fields),
	// SampleFields how many fields in all.
	AuditSize      uint64 `json:"audit_size"`
	SamplePatients int    `json:"sample_patients"`
	SampleRecords  int    `json:"sample_records"`
	SampleFields   int    `json:"sample_fields"`
	OK             bool   `json:"ok"`
	Problem        string `json:"problem,omitempty"`
}

// RunDrill restores the newest backup into a scratch directory, checks it
// (record counts against the manifest, the audit root against the
// manifest's, a sample of patients' and records' fields decrypted with the
// key file), measures
// RTO and RPO, and records the drill, signed, on every target — a failed
// drill too.
func RunDrill(ctx context.Context, opt DrillOptions) (*Drill, error) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	d := &Drill{StartedAt: now().UTC()}
	d.ID = d.StartedAt.Format("20060102T150405Z") + "-drill"
	d.Target = opt.Targets[0].URL()
	err := drill(ctx, opt, d)
	if err != nil {
		d.Problem = err.Error()
	}
	d.OK = err == nil
	signed, serr := opt.Signer.sign(drillHeader, d)
	if serr != nil {
		return d, errors.Join(err, serr)
	}
	for _, t := range opt.Targets {
		if perr := putBytes(ctx, t, drillsDir+d.ID, signed); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	return d, err
}

func drill(ctx context.Context, opt DrillOptions, d *Drill) error {
	t := opt.Targets[0]
	entries, err := List(ctx, t, opt.VerifierKey)
	if err != nil {
		return err
	}
	latest := Latest(entries)
	if latest == nil {
		return fmt.Errorf("no verified backup on %s", t.URL())
	}
	d.Backup = latest.URL
	d.RPO = d.StartedAt.Sub(latest.Manifest.DataAsOf)
	scratch, err := os.MkdirTemp(opt.Scratch, "medguard-drill-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	t0 := time.Now()
	rep, err := Restore(ctx, t, latest.ID, RestoreOptions{DataDir: scratch, Identity: opt.Identity, VerifierKey: opt.VerifierKey,
		KeyFile: opt.KeyFile, Step: opt.Step})
	if err != nil {
		return err
	}
	d.RTO = time.Since(t0)
	d.Steps, d.AuditSize = rep.Steps, rep.Audit.Size
	db, err := storage.Open(ctx, "sqlite:"+filepath.Join(scratch, "medguard.db"), "")
	if err != nil {
		return err
	}
	defer db.Close()
	counts, err := records.Count(ctx, db)
	if err != nil {
		return err
	}
	d.Patient, d.Records = counts.Patients, counts.Records
	m := latest.Manifest
	if m.Kind == Full && (d.Patient != m.Patients || d.Records != m.Records) {
		return fmt.Errorf("the restored copy holds %d patients and %d records, the manifest %d and %d", d.Patient, d.Records, m.Patients, m.Records)
	}
	if opt.KeyFile != "" {
		kf, err := keys.LoadKeyFile(opt.KeyFile)
		if err != nil {
			return err
		}
		// Patient fields, not only data keys: names, ID numbers, record
		// titles and texts of a random sample are decrypted (and dropped)
		// through the records package, with the key file.
		kr := keys.NewKeyring(db, kf, medguard.SystemClock{})
		rep, err := records.SampleRead(ctx, db, kr, drillSample)
		if err != nil {
			return fmt.Errorf("the key file does not read the restored copy's patient data: %w", err)
		}
		d.SamplePatients, d.SampleRecords, d.SampleFields = rep.Patients, rep.Records, rep.Fields
		if d.Patient > 0 && rep.Patients == 0 || rep.Fields == 0 && d.Records > 0 {
			return errors.New("the drill decrypted no patient field of the restored copy")
		}
	}
	return nil
}

// drillSample is how many patients and how many records a drill decrypts.
const drillSample = 20

// ListDrills lists the drills recorded on a target, oldest first
// (signatures checked with the chain of the audit log's keys followed from
// verifierKey, or from the target's pinned key if it is empty; ones that do
// not verify are left out).
func ListDrills(ctx context.Context, t Target, verifierKey string) ([]Drill, error) {
	if verifierKey == "" {
		if _, err := getBytes(ctx, t, verifierName, 4096); err != nil {
			return nil, nil
		}
	}
	kc, err := targetKeys(ctx, t, verifierKey)
	if err != nil {
		return nil, err
	}
	objs, err := t.List(ctx, drillsDir)
	if err != nil {
		return nil, err
	}
	var out []Drill
	for _, o := range objs {
		msg, err := getBytes(ctx, t, o.Name, 1<<20)
		if err != nil {
			continue
		}
		var d Drill
		if _, err := kc.open(msg, drillHeader, &d, func() uint64 { return d.AuditSize }); err != nil {
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}
