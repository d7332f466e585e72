package records

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// Work lists: a department's patients as its staff work through them, and
// the admissions of the whole hospital as the records office works through
// them (who is in, who was discharged and waits to be archived, whose
// archiving is overdue). Both are sorted, filtered and paged in the
// database, so that only the page shown is decrypted and disclosed: each
// patient on a page of DepartmentPatients is an entry of its own, as in
// ListPatients, and counts towards the bulk-read rules; QueryAdmissions
// shows no patient data at all.

// MaxWorklistPage is the longest page of a work list.
const MaxWorklistPage = 200

// Patient states of a department's work list (DepartmentQuery.State).
const (
	StateAdmitted = "admitted" // in hospital: admitted and not discharged
	StatePending  = "pending"  // discharged, the record not archived yet (due or overdue)
	StateOverdue  = "overdue"  // discharged, archiving overdue
)

// Admission states of QueryAdmissions (AdmissionQuery.Status): StateAdmitted,
// StatePending, StateOverdue, and these.
const (
	StatusDue          = "due"           // discharged, archiving not yet due
	StatusArchived     = "archived"      // archived on time
	StatusArchivedLate = "archived_late" // archived after the deadline
)

// DepartmentQuery selects a page of a department's patients.
type DepartmentQuery struct {
	// Department is the department's code; "" for the caller's own.
	Department string
	// State is "" (every patient the department holds), StateAdmitted,
	// StatePending or StateOverdue, judged on the patient's latest
	// admission to the department.
	State string
	// Sort is "last_record" (the default: the department's latest record
	// of the patient), "admitted" (the latest admission) or "registered".
	Sort string
	Desc bool
	// Offset and Limit cut the page (Limit 1 to MaxWorklistPage).
	Offset, Limit int
}

// DepartmentPatient is a line of a department's work list: the patient,
// their latest admission to the department and the department's latest
// record of them.
type DepartmentPatient struct {
	PatientSummary
	Admission  *Admission   `json:"admission,omitempty"`
	LastRecord *RecordStamp `json:"last_record,omitempty"`
}

// RecordStamp names a record by type and time, without its content.
type RecordStamp struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
}

// DepartmentPage is a page of a department's work list.
type DepartmentPage struct {
	Department string              `json:"department"`
	Items      []DepartmentPatient `json:"items"`
	// Total is the number of patients the query selects; Counts the number
	// in each state ("all", admitted, pending, overdue), whatever the
	// query's state.
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

// DepartmentPatients returns a page of the patients whose data the
// department holds (the caller's own department; hospital-wide scope may
// name another, except a restricted one), with their admission state and
// the department's latest record. Like ListPatients it is one operation of
// the gate on the department, and each patient on the page is an entry of
// its own (patient.list); the counts and the order reveal no patient data.
// A record of a restricted type is never named to a caller outside the
// department.
func (s *Service) DepartmentPatients(ctx context.Context, call *medguard.Call, q DepartmentQuery) (*DepartmentPage, error) {
	if q.Department == "" {
		q.Department = call.Actor.Department
	}
	out := &DepartmentPage{Items: []DepartmentPatient{}, Counts: map[string]int{}}
	lead := gate.Passage{Call: call, Action: policy.PatientList, Resource: policy.Resource{Type: "department"}}
	if q.Department != "" {
		code, err := s.department(ctx, "department", q.Department)
		if err != nil {
			_, _, gerr := s.gate.Enter(ctx, lead, func(policy.Decision) (audit.Mutation, error) { return nil, err })
			return nil, gerr
		}
		restricted, err := s.RestrictedDepartments(ctx)
		if err != nil {
			return nil, err
		}
		lead.Resource = policy.Resource{Type: "department", ID: code, Departments: []string{code}, Restricted: restricted[code]}
		out.Department = code
	}
	now := s.clock.Now()
	type row struct {
		sp   storedPatient
		adm  *Admission
		last *RecordStamp
	}
	var rows []row
	err := s.gate.EnterList(ctx, lead, func(policy.Decision) ([]gate.Passage, error) {
		if q.Department == "" {
			return nil, medguard.InvalidField("department", "department is required for users without one")
		}
		if err := q.check(); err != nil {
			return nil, err
		}
		dept := lead.Resource.ID
		// The latest admission to the department, and the department's
		// latest record (of a type the caller may know of). Each query
		// binds only the parameters it names.
		from := func(a *sqlArgs) string {
			recordFilter := ""
			if call.Actor.Department != dept {
				var ph []string
				for _, t := range policy.RecordTypes {
					if t.Restricted {
						ph = append(ph, a.add(t.Name))
					}
				}
				if len(ph) > 0 {
					recordFilter = ` AND r2.type NOT IN (` + strings.Join(ph, ", ") + `)`
				}
			}
			return ` FROM patient_departments pd JOIN patients p ON p.id = pd.patient_id
			LEFT JOIN admissions a ON a.id = (SELECT a2.id FROM admissions a2 WHERE a2.patient_id = pd.patient_id
				AND a2.department = pd.department ORDER BY a2.admitted_at DESC, a2.id DESC LIMIT 1)
			LEFT JOIN records lr ON lr.id = (SELECT r2.id FROM records r2 WHERE r2.patient_id = pd.patient_id
				AND r2.department = pd.department` + recordFilter + ` ORDER BY r2.created_at DESC, r2.id DESC LIMIT 1)
			WHERE pd.department = ` + a.add(dept)
		}
		nowMs := medguard.Millis(now)
		var ca sqlArgs
		var total, admitted, pending, overdue sql.NullInt64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*),
			SUM(CASE WHEN a.id IS NOT NULL AND a.discharged_at IS NULL THEN 1 ELSE 0 END),
			SUM(CASE WHEN a.discharged_at IS NOT NULL AND a.archived_at IS NULL THEN 1 ELSE 0 END),
			SUM(CASE WHEN a.archived_at IS NULL AND a.archive_due_at < `+ca.add(nowMs)+` THEN 1 ELSE 0 END)`+from(&ca), ca...).Scan(
			&total, &admitted, &pending, &overdue); err != nil {
			return nil, err
		}
		out.Counts["all"], out.Counts[StateAdmitted] = int(total.Int64), int(admitted.Int64)
		out.Counts[StatePending], out.Counts[StateOverdue] = int(pending.Int64), int(overdue.Int64)
		var args sqlArgs
		query := `SELECT p.id, p.name, p.gender, p.birth_date, p.mrn,
			a.id, a.patient_id, a.department, a.admitted_at, a.discharged_at, a.archive_due_at, a.archived_at, a.archived_by,
			lr.id, lr.type, lr.created_at` + from(&args)
		switch q.State {
		case StateAdmitted:
			query, out.Total = query+` AND a.id IS NOT NULL AND a.discharged_at IS NULL`, out.Counts[StateAdmitted]
		case StatePending:
			query, out.Total = query+` AND a.discharged_at IS NOT NULL AND a.archived_at IS NULL`, out.Counts[StatePending]
		case StateOverdue:
			query, out.Total = query+` AND a.archived_at IS NULL AND a.archive_due_at < `+args.add(nowMs), out.Counts[StateOverdue]
		default:
			out.Total = out.Counts["all"]
		}
		dir := " ASC"
		if q.Desc {
			dir = " DESC"
		}
		order := `COALESCE(lr.created_at, 0)` + dir
		switch q.Sort {
		case "admitted":
			order = `COALESCE(a.admitted_at, 0)` + dir
		case "registered":
			order = `p.created_at` + dir
		}
		query += ` ORDER BY ` + order + `, p.id` + dir + ` LIMIT ` + args.add(q.Limit) + ` OFFSET ` + args.add(q.Offset)
		rs, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		for rs.Next() {
			var r row
			var aID, aPatient, aDept, aBy, lrID, lrType sql.NullString
			var aAdmitted, aDischarged, aDue, aArchived, lrAt sql.NullInt64
			if err := rs.Scan(&r.sp.id, &r.sp.name, &r.sp.gender, &r.sp.birth, &r.sp.mrn,
				&aID, &aPatient, &aDept, &aAdmitted, &aDischarged, &aDue, &aArchived, &aBy,
				&lrID, &lrType, &lrAt); err != nil {
				return nil, err
			}
			if aID.Valid {
				r.adm = &Admission{ID: aID.String, PatientID: aPatient.String, Department: aDept.String,
					AdmittedAt: medguard.FromMillis(aAdmitted.Int64), ArchivedBy: aBy.String,
					DischargedAt: optTime(aDischarged), ArchiveDueAt: optTime(aDue), ArchivedAt: optTime(aArchived)}
				r.adm.status(now)
			}
			if lrID.Valid {
				r.last = &RecordStamp{ID: lrID.String, Type: lrType.String, CreatedAt: medguard.FromMillis(lrAt.Int64)}
			}
			rows = append(rows, r)
		}
		if err := rs.Err(); err != nil {
			return nil, err
		}
		items := make([]gate.Passage, len(rows))
		for i, r := range rows {
			items[i] = gate.Passage{Call: call, Action: policy.PatientList, Resource: policy.Resource{Type: "patient", ID: r.sp.id,
				PatientID: r.sp.id, Departments: lead.Resource.Departments, Restricted: lead.Resource.Restricted}}
		}
		return items, nil
	}, func(ds []policy.Decision) error {
		for i := range rows {
			if !ds[i].Allowed {
				continue
			}
			p, err := s.open(ctx, &rows[i].sp, nil)
			if err != nil {
				return err
			}
			out.Items = append(out.Items, DepartmentPatient{
				PatientSummary: PatientSummary{ID: p.ID, Name: p.Name, Gender: p.Gender, BirthDate: p.BirthDate, MRN: p.MRN},
				Admission:      rows[i].adm, LastRecord: rows[i].last})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (q *DepartmentQuery) check() error {
	switch q.State {
	case "", StateAdmitted, StatePending, StateOverdue:
	default:
		return medguard.InvalidField("state", "state must be admitted, pending or overdue")
	}
	switch q.Sort {
	case "":
		q.Sort = "last_record"
	case "last_record", "admitted", "registered":
	default:
		return medguard.InvalidField("sort", "sort must be last_record, admitted or registered")
	}
	return checkPage(&q.Offset, &q.Limit)
}

func checkPage(offset, limit *int) error {
	if *limit == 0 {
		*limit = 25
	}
	if *limit < 1 || *limit > MaxWorklistPage {
		return medguard.InvalidField("limit", "limit must be 1 to %d", MaxWorklistPage)
	}
	if *offset < 0 {
		return medguard.InvalidField("offset", "offset must not be negative")
	}
	return nil
}

// sqlArgs are a query's parameters, numbered as they are added.
type sqlArgs []any

// add binds v and returns its placeholder ($1, $2 …).
func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := medguard.FromMillis(v.Int64)
	return &t
}

// AdmissionQuery selects admissions for the records office's work lists.
type AdmissionQuery struct {
	// Department is a department's code, or "" for the whole hospital
	// (hospital-wide scope).
	Department string
	// Status is "" (every admission), StateAdmitted, StatePending (due
	// and overdue), StatusDue, StateOverdue, StatusArchived or
	// StatusArchivedLate.
	Status string
	// From and To bound the admission time (From included, To excluded);
	// zero for no bound.
	From, To time.Time
	// Sort is "admitted", "discharged", "due" or "archived"; the default
	// is "due" for the statuses awaiting archiving, "archived" for the
	// archived ones and "admitted" otherwise.
	Sort string
	Desc bool
	// Offset and Limit cut the page (Limit 1 to MaxWorklistPage).
	Offset, Limit int
}

// AdmissionPage is a page of admissions.
type AdmissionPage struct {
	Items []Admission `json:"items"`
	// Total is the number of admissions the query selects; Counts the
	// number in each status (admitted, due, overdue, archived,
	// archived_late) in the query's department, whatever its status and
	// dates.
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

// QueryAdmissions lists admissions of one department (its own staff) or the
// whole hospital (records clerks, auditors), a page at a time, with their
// archiving deadlines. It shows no patient data: the admissions carry the
// patient's opaque id, and not even that for a restricted department's
// admission unless the caller belongs to it (that a patient is treated
// there is itself protected).
func (s *Service) QueryAdmissions(ctx context.Context, call *medguard.Call, q AdmissionQuery) (*AdmissionPage, error) {
	now := s.clock.Now()
	r := policy.Resource{Type: "archiving"}
	if q.Department != "" {
		r.ID, r.Departments = q.Department, []string{q.Department}
	}
	out := &AdmissionPage{Items: []Admission{}, Counts: map[string]int{}}
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.ArchivingRead, "archiving.queue", r),
		func(policy.Decision) (audit.Mutation, error) {
			if err := q.check(); err != nil {
				return nil, err
			}
			if q.Department != "" {
				if _, err := s.department(ctx, "department", q.Department); err != nil {
					return nil, err
				}
			}
			nowMs := medguard.Millis(now)
			// scope is the department filter; each query binds only the
			// parameters it names.
			scope := func(a *sqlArgs) string {
				if q.Department == "" {
					return ` FROM admissions WHERE 1 = 1`
				}
				return ` FROM admissions WHERE department = ` + a.add(q.Department)
			}
			var ca sqlArgs
			var admitted, due, overdue, archived, late sql.NullInt64
			n1, n2 := ca.add(nowMs), ca.add(nowMs)
			if err := s.db.QueryRowContext(ctx, `SELECT
				SUM(CASE WHEN discharged_at IS NULL THEN 1 ELSE 0 END),
				SUM(CASE WHEN discharged_at IS NOT NULL AND archived_at IS NULL AND archive_due_at >= `+n1+` THEN 1 ELSE 0 END),
				SUM(CASE WHEN archived_at IS NULL AND archive_due_at < `+n2+` THEN 1 ELSE 0 END),
				SUM(CASE WHEN archived_at IS NOT NULL AND archived_at <= archive_due_at THEN 1 ELSE 0 END),
				SUM(CASE WHEN archived_at > archive_due_at THEN 1 ELSE 0 END)`+scope(&ca), ca...).Scan(
				&admitted, &due, &overdue, &archived, &late); err != nil {
				return nil, err
			}
			out.Counts[StateAdmitted], out.Counts[StatusDue], out.Counts[StateOverdue] = int(admitted.Int64), int(due.Int64), int(overdue.Int64)
			out.Counts[StatusArchived], out.Counts[StatusArchivedLate] = int(archived.Int64), int(late.Int64)
			where := func(a *sqlArgs) string {
				w := scope(a)
				switch q.Status {
				case StateAdmitted:
					w += ` AND discharged_at IS NULL`
				case StatePending:
					w += ` AND discharged_at IS NOT NULL AND archived_at IS NULL`
				case StatusDue:
					w += ` AND discharged_at IS NOT NULL AND archived_at IS NULL AND archive_due_at >= ` + a.add(nowMs)
				case StateOverdue:
					w += ` AND archived_at IS NULL AND archive_due_at < ` + a.add(nowMs)
				case StatusArchived:
					w += ` AND archived_at IS NOT NULL AND archived_at <= archive_due_at`
				case StatusArchivedLate:
					w += ` AND archived_at > archive_due_at`
				}
				if !q.From.IsZero() {
					w += ` AND admitted_at >= ` + a.add(medguard.Millis(q.From))
				}
				if !q.To.IsZero() {
					w += ` AND admitted_at < ` + a.add(medguard.Millis(q.To))
				}
				return w
			}
			var ta sqlArgs
			var total int64
			if err := s.db.QueryRowContext(ctx, `SELECT count(*)`+where(&ta), ta...).Scan(&total); err != nil {
				return nil, err
			}
			out.Total = int(total)
			dir := " ASC"
			if q.Desc {
				dir = " DESC"
			}
			col := map[string]string{"admitted": "admitted_at", "discharged": "discharged_at", "due": "archive_due_at",
				"archived": "archived_at"}[q.Sort]
			var args sqlArgs
			query := `SELECT ` + admissionColumns + where(&args) + ` ORDER BY CASE WHEN ` + col + ` IS NULL THEN 1 ELSE 0 END, ` +
				col + dir + `, id` + dir
			query += ` LIMIT ` + args.add(q.Limit) + ` OFFSET ` + args.add(q.Offset)
			rows, err := s.db.QueryContext(ctx, query, args...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				a, err := scanAdmission(rows, now)
				if err != nil {
					return nil, err
				}
				out.Items = append(out.Items, *a)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			restricted, err := s.RestrictedDepartments(ctx)
			if err != nil {
				return nil, err
			}
			for i := range out.Items {
				if a := &out.Items[i]; restricted[a.Department] && a.Department != call.Actor.Department {
					a.PatientID = ""
				}
			}
			return nil, nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (q *AdmissionQuery) check() error {
	switch q.Status {
	case "", StateAdmitted, StatePending, StatusDue, StateOverdue, StatusArchived, StatusArchivedLate:
	default:
		return medguard.InvalidField("status", "status must be admitted, pending, due, overdue, archived or archived_late")
	}
	switch q.Sort {
	case "":
		switch q.Status {
		case StatePending, StatusDue, StateOverdue:
			q.Sort = "due"
		case StatusArchived, StatusArchivedLate:
			q.Sort, q.Desc = "archived", true
		default:
			q.Sort, q.Desc = "admitted", true
		}
	case "admitted", "discharged", "due", "archived":
	default:
		return medguard.InvalidField("sort", "sort must be admitted, discharged, due or archived")
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return medguard.InvalidField("to", "the end of the period must be after its start")
	}
	return checkPage(&q.Offset, &q.Limit)
}
