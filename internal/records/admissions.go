package records

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/policy"
)

// Admission is an inpatient stay (住院), whose records must be archived
// within the archiving deadline after discharge.
type Admission struct {
	ID           string     `json:"id"`
	PatientID    string     `json:"patient_id"`
	Department   string     `json:"department"`
	AdmittedAt   time.Time  `json:"admitted_at"`
	DischargedAt *time.Time `json:"discharged_at,omitempty"`
	ArchiveDueAt *time.Time `json:"archive_due_at,omitempty"`
	ArchivedAt   *time.Time `json:"archived_at,omitempty"`
	ArchivedBy   string     `json:"archived_by,omitempty"`
	// HoursLate is how late archiving is (or was), in whole hours; 0 when on time.
	HoursLate int `json:"hours_late"`
	// Status is admitted, discharged (awaiting archiving), overdue,
	// archived or archived_late.
	Status string `json:"status"`
}

const admissionColumns = `id, patient_id, department, admitted_at, discharged_at, archive_due_at, archived_at, archived_by`

func scanAdmission(sc interface{ Scan(...any) error }, now time.Time) (*Admission, error) {
	var a Admission
	var admitted int64
	var discharged, due, archived sql.NullInt64
	var by sql.NullString
	if err := sc.Scan(&a.ID, &a.PatientID, &a.Department, &admitted, &discharged, &due, &archived, &by); err != nil {
		return nil, err
	}
	a.AdmittedAt, a.ArchivedBy = medguard.FromMillis(admitted), by.String
	opt := func(v sql.NullInt64) *time.Time {
		if !v.Valid {
			return nil
		}
		t := medguard.FromMillis(v.Int64)
		return &t
	}
	a.DischargedAt, a.ArchiveDueAt, a.ArchivedAt = opt(discharged), opt(due), opt(archived)
	a.status(now)
	return &a, nil
}

// status computes Status and HoursLate at now.
func (a *Admission) status(now time.Time) {
	a.Status, a.HoursLate = "admitted", 0
	switch {
	case a.DischargedAt == nil:
	case a.ArchivedAt != nil && a.ArchivedAt.After(*a.ArchiveDueAt):
		a.Status, a.HoursLate = "archived_late", int(math.Ceil(a.ArchivedAt.Sub(*a.ArchiveDueAt).Hours()))
	case a.ArchivedAt != nil:
		a.Status = "archived"
	case now.After(*a.ArchiveDueAt):
		a.Status, a.HoursLate = "overdue", int(math.Ceil(now.Sub(*a.ArchiveDueAt).Hours()))
	default:
		a.Status = "discharged"
	}
}

func (s *Service) loadAdmission(ctx context.Context, id string) (*Admission, error) {
	if !medguard.ValidID(id) {
		return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such admission"}
	}
	a, err := scanAdmission(s.db.QueryRowContext(ctx, `SELECT `+admissionColumns+` FROM admissions WHERE id = $1`, id), s.clock.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such admission"}
	}
	return a, medguard.Wrap("records.loadAdmission", err)
}

// checkAdmission checks that an admission named by a new record belongs to
// the record's patient.
func (s *Service) checkAdmission(ctx context.Context, admissionID, patientID string) error {
	a, err := s.loadAdmission(ctx, admissionID)
	if err != nil || a.PatientID != patientID {
		return medguard.InvalidField("admission_id", "no admission of this patient has this id")
	}
	return nil
}

func (a *Admission) resource() policy.Resource {
	return policy.Resource{Type: "admission", ID: a.ID, PatientID: a.PatientID, Departments: []string{a.Department}}
}

// Admit records a patient's admission to a department; the department then
// holds the patient's data.
func (s *Service) Admit(ctx context.Context, call *medguard.Call, patientID, department string, admittedAt time.Time) (*Admission, error) {
	if err := s.mustExist(ctx, call, policy.AdmissionManage, patientID); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	if admittedAt.IsZero() {
		admittedAt = now
	}
	a := &Admission{ID: medguard.NewID(now), PatientID: patientID, Department: department,
		AdmittedAt: admittedAt.UTC().Truncate(time.Millisecond), Status: "admitted"}
	res := a.resource()
	held, err := s.patientDepartments(ctx, patientID)
	if err != nil {
		return nil, medguard.Wrap("records.Admit", err)
	}
	res.HeldBy = held
	pass, err := s.passage(ctx, call, policy.AdmissionManage, res)
	if err != nil {
		return nil, err
	}
	pass.AuditAction = "admission.create"
	_, _, err = s.gate.Enter(ctx, pass,
		func(policy.Decision) (audit.Mutation, error) {
			if _, err := s.department(ctx, "department", department); err != nil {
				return nil, err
			}
			if a.AdmittedAt.After(now.Add(time.Hour)) {
				return nil, medguard.InvalidField("admitted_at", "admitted_at must not be in the future")
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO admissions (id, patient_id, department, admitted_at, created_by, created_at)
					VALUES ($1, $2, $3, $4, $5, $6)`, a.ID, patientID, department, medguard.Millis(a.AdmittedAt), call.Actor.Name,
					medguard.Millis(now)); err != nil {
					return err
				}
				return addPatientDepartment(ctx, tx, patientID, department, now)
			}, nil
		})
	return a, err
}

// Discharge records a patient's discharge; the archiving deadline starts.
func (s *Service) Discharge(ctx context.Context, call *medguard.Call, id string, dischargedAt time.Time) (*Admission, error) {
	a, err := s.loadAdmission(ctx, id)
	if err != nil {
		return nil, s.missing(ctx, call, policy.AdmissionManage, "admission", id, err)
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	if dischargedAt.IsZero() {
		dischargedAt = now
	}
	dischargedAt = dischargedAt.UTC().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gatePassage(call, policy.AdmissionManage, "admission.discharge", a.resource()),
		func(policy.Decision) (audit.Mutation, error) {
			if a.DischargedAt != nil {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the patient was already discharged"}
			}
			if dischargedAt.Before(a.AdmittedAt) || dischargedAt.After(now.Add(time.Hour)) {
				return nil, medguard.InvalidField("discharged_at", "discharged_at must be after admission and not in the future")
			}
			due := dischargedAt.Add(s.cfg.ArchiveDeadline)
			a.DischargedAt, a.ArchiveDueAt = &dischargedAt, &due
			a.status(now)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `UPDATE admissions SET discharged_at = $1, archive_due_at = $2
					WHERE id = $3 AND discharged_at IS NULL`, medguard.Millis(dischargedAt), medguard.Millis(due), id)
				return err
			}, nil
		})
	return a, err
}

// Archive records that a discharged patient's record (病案) was archived.
// Lateness is kept: more than 24 hours late is an accountability matter.
func (s *Service) Archive(ctx context.Context, call *medguard.Call, id string) (*Admission, error) {
	a, err := s.loadAdmission(ctx, id)
	if err != nil {
		return nil, s.missing(ctx, call, policy.RecordArchive, "admission", id, err)
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gatePassage(call, policy.RecordArchive, "admission.archive", a.resource()),
		func(policy.Decision) (audit.Mutation, error) {
			switch {
			case a.DischargedAt == nil:
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the patient has not been discharged"}
			case a.ArchivedAt != nil:
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "already archived"}
			}
			a.ArchivedAt, a.ArchivedBy = &now, call.Actor.Name
			a.status(now)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `UPDATE admissions SET archived_at = $1, archived_by = $2 WHERE id = $3 AND archived_at IS NULL`,
					medguard.Millis(now), call.Actor.Name, id)
				return err
			}, nil
		})
	return a, err
}

// ListAdmissions lists a patient's admissions.
func (s *Service) ListAdmissions(ctx context.Context, call *medguard.Call, patientID string) ([]Admission, error) {
	pass, err := s.onPatient(ctx, call, policy.PatientRead, "admission.list", patientID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := []Admission{}
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+admissionColumns+` FROM admissions WHERE patient_id = $1 ORDER BY admitted_at`, patientID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAdmission(rows, now)
			if err != nil {
				return nil, err
			}
			out = append(out, *a)
		}
		return nil, rows.Err()
	})
	return out, err
}

// LateArchiving lists admissions whose archiving is overdue, and those
// archived late since the given time, for one department (its own staff)
// or the whole hospital (records clerks).
func (s *Service) LateArchiving(ctx context.Context, call *medguard.Call, department string, since time.Time) ([]Admission, error) {
	now := s.clock.Now()
	r := policy.Resource{Type: "archiving"}
	if department != "" {
		r.ID, r.Departments = department, []string{department}
	}
	out := []Admission{}
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.ArchivingRead, "archiving.late", r),
		func(policy.Decision) (audit.Mutation, error) {
			q := `SELECT ` + admissionColumns + ` FROM admissions WHERE archive_due_at IS NOT NULL AND
				((archived_at IS NULL AND archive_due_at < $1) OR (archived_at > archive_due_at AND archived_at >= $2))`
			args := []any{medguard.Millis(now), medguard.Millis(since)}
			if department != "" {
				q += ` AND department = $3`
				args = append(args, department)
			}
			rows, err := s.db.QueryContext(ctx, q+` ORDER BY archive_due_at LIMIT 1000`, args...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				a, err := scanAdmission(rows, now)
				if err != nil {
					return nil, err
				}
				out = append(out, *a)
			}
			return nil, rows.Err()
		})
	return out, err
}
