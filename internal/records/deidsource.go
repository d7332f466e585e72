package records

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// The source of a de-identification job (internal/deidjobs, SPEC §8): the
// patients and records a job's scope names, read by medguard itself under
// the job's approval. Each patient read is an entry of its own in the
// audit log (deid.read_source, rule allow.deid_job:<job>), together with
// the job's own entry (deid.run); each record is decided on its own
// against the job's scope, and restricted records never open to a job.

// SourceScope names the records a de-identification job reads: those of
// the named patients, or else those of every patient; of the department
// and record types, when named; written in [From, To), when set.
type SourceScope struct {
	PatientIDs  []string
	Department  string
	RecordTypes []string
	From, To    time.Time
}

// where returns the SQL condition on records r selecting the scope.
func (sc SourceScope) where() (string, []any) {
	conds := []string{"r.destroyed_at IS NULL"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	in := func(col string, vs []string) {
		ps := make([]string, len(vs))
		for i, v := range vs {
			ps[i] = arg(v)
		}
		conds = append(conds, col+" IN ("+strings.Join(ps, ", ")+")")
	}
	if len(sc.PatientIDs) > 0 {
		in("r.patient_id", sc.PatientIDs)
	}
	if len(sc.RecordTypes) > 0 {
		in("r.type", sc.RecordTypes)
	}
	if sc.Department != "" {
		conds = append(conds, "r.department = "+arg(sc.Department))
	}
	if !sc.From.IsZero() {
		conds = append(conds, "r.created_at >= "+arg(medguard.Millis(sc.From)))
	}
	if !sc.To.IsZero() {
		conds = append(conds, "r.created_at < "+arg(medguard.Millis(sc.To)))
	}
	return strings.Join(conds, " AND "), args
}

// ScopeSize counts the patients and records a scope names (restricted
// ones included: they are withheld when the job runs). It discloses no
// patient data.
func (s *Service) ScopeSize(ctx context.Context, sc SourceScope) (patients, records int, err error) {
	where, args := sc.where()
	err = s.db.QueryRowContext(ctx, `SELECT count(DISTINCT r.patient_id), count(*) FROM records r WHERE `+where, args...).
		Scan(&patients, &records)
	return patients, records, medguard.Wrap("records.ScopeSize", err)
}

// SourcePatient is one patient a job read, with the records of the scope
// that opened to it, decrypted.
type SourcePatient struct {
	Patient Patient
	Records []Record
}

// SourceRead is what a job read.
type SourceRead struct {
	Patients []SourcePatient
	// Withheld counts the records of the scope the policy did not open to
	// the job (restricted records, records outside its scope).
	Withheld int
	// PatientsWithheld counts the patients not opened at all.
	PatientsWithheld int
}

// ReadSource reads the scope for an approved de-identification job. call
// must be medguard's own (a system actor whose ID is the job's id); job is
// the approval's relation, which the policy weighs. The job's entry
// (deid.run on the job) and one deid.read_source entry per patient are
// committed together before ReadSource returns the data.
func (s *Service) ReadSource(ctx context.Context, call *medguard.Call, job policy.DeidJob, sc SourceScope) (*SourceRead, error) {
	where, args := sc.where()
	type item struct {
		sp      *storedPatient
		depts   []string
		records []string
	}
	var items []*item
	lead := gate.Passage{Call: call, Action: policy.DeidRun, AuditAction: "deid.run", DeidJob: &job,
		Resource: policy.Resource{Type: "deid_job", ID: job.ID}}
	load := func(policy.Decision) ([]gate.Passage, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT r.patient_id, r.id FROM records r WHERE `+where+` ORDER BY r.patient_id, r.id`, args...)
		if err != nil {
			return nil, err
		}
		byPatient := map[string]*item{}
		for rows.Next() {
			var pid, rid string
			if err := rows.Scan(&pid, &rid); err != nil {
				rows.Close()
				return nil, err
			}
			it := byPatient[pid]
			if it == nil {
				it = &item{}
				byPatient[pid] = it
				items = append(items, it)
				it.sp = &storedPatient{id: pid}
			}
			it.records = append(it.records, rid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		ps := make([]gate.Passage, len(items))
		for i, it := range items {
			sp, err := s.loadPatient(ctx, it.sp.id)
			if err != nil {
				return nil, err
			}
			it.sp = sp
			if it.depts, err = s.patientDepartments(ctx, sp.id); err != nil {
				return nil, err
			}
			ps[i] = gate.Passage{Call: call, Action: policy.PatientRead, AuditAction: "deid.read_source", DeidJob: &job,
				Resource: policy.Resource{Type: "patient", ID: sp.id, PatientID: sp.id, Departments: it.depts}}
		}
		return ps, nil
	}
	out := &SourceRead{}
	err := s.gate.EnterList(ctx, lead, load, func(ds []policy.Decision) error {
		for i, it := range items {
			if !ds[i].Allowed {
				out.PatientsWithheld++
				out.Withheld += len(it.records)
				continue
			}
			p, err := s.open(ctx, it.sp, it.depts)
			if err != nil {
				return err
			}
			src := SourcePatient{Patient: *p}
			for _, rid := range it.records {
				r, err := s.loadRecord(ctx, rid, 0)
				if err != nil {
					return err
				}
				d := s.gate.Check(gate.Passage{Call: call, Action: policy.RecordRead, DeidJob: &job, Resource: r.resource()})
				if !d.Allowed || r.gone() != nil {
					out.Withheld++
					continue
				}
				rec, err := s.openRecord(ctx, r)
				if err != nil {
					return err
				}
				src.Records = append(src.Records, *rec)
			}
			out.Patients = append(out.Patients, src)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out.Patients, func(a, b SourcePatient) int { return strings.Compare(a.Patient.ID, b.Patient.ID) })
	return out, nil
}
