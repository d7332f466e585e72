package console

import (
	"html"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Admissions and archiving (入出院与归档, SPEC §4): the register of
// admissions with the archiving queue (discharged patients whose record
// must be archived within the deadline; overdue ones in red, the deadline
// in words), and a patient's admissions page where staff admit, discharge
// and — the records office — archive. The register shows no patient data
// (every patient listed would count towards the bulk-read rules): a row
// opens the patient's admissions page, an audited read.

func init() {
	register(
		Page{Method: "GET", Path: "/admissions", Any: []policy.Permission{policy.ArchivingRead},
			Nav: &Nav{Key: "nav.admissions", Order: 24}, Handle: admissionsPage},
		Page{Method: "POST", Path: "/admissions/{id}/archive", Any: []policy.Permission{policy.RecordArchive}, Handle: archiveAdmission},
		Page{Method: "POST", Path: "/admissions/{id}/discharge", Any: []policy.Permission{policy.AdmissionManage}, Handle: dischargeAdmission},
		Page{Method: "GET", Path: "/patients/{id}/admissions", Any: []policy.Permission{policy.PatientRead}, Handle: patientAdmissionsPage},
		Page{Method: "POST", Path: "/patients/{id}/admissions", Any: []policy.Permission{policy.AdmissionManage}, Handle: admitPatient},
	)
}

// admissionStatuses are the register's filters, in the order of work.
var admissionStatuses = []string{records.StatePending, records.StateOverdue, records.StatusDue, records.StateAdmitted,
	records.StatusArchived, records.StatusArchivedLate, ""}

// statusTab is a filter link with its count.
type statusTab struct {
	Code, Label, Href string
	Count             int
	Current, Bad      bool
}

// admissionsView is the register of admissions.
type admissionsView struct {
	Grid        *Grid
	Tabs        []statusTab
	Status      string
	Departments []deptOption // offered in the filter (hospital-wide scope)
	Department  string
	OwnOnly     string // the department's name, for those who see only theirs
	From, To    string
	CanArchive  bool
	Back        string
	Counts      map[string]int
}

func admissionsPage(rq *Request) error {
	v, handled, err := rq.admissions("admissions", records.StatePending)
	if err != nil || handled {
		if handled {
			return errHandled
		}
		return err
	}
	return rq.Render(http.StatusOK, "admissions", "clinical.admissions.title", v)
}

// admissions reads the register as the URL's filters say, defaulting to
// status def; handled reports a CSV answer.
func (rq *Request) admissions(id, def string) (*admissionsView, bool, error) {
	q := rq.URL.Query()
	// Back is where an archiving returns: this list as it is, without
	// the message of an earlier one.
	back := url.URL{Path: rq.URL.Path}
	bq := rq.URL.Query()
	bq.Del("m")
	back.RawQuery = bq.Encode()
	v := &admissionsView{Status: def, CanArchive: rq.Can(policy.RecordArchive) && !rq.print, Back: back.String()}
	if q.Has("status") {
		v.Status = q.Get("status")
	}
	if rq.Can(policy.AllDepartments) {
		for _, d := range rq.c.dir.departments() {
			v.Departments = append(v.Departments, deptOption{Code: d.Code, Name: d.Name})
		}
		v.Department = q.Get("department")
	} else {
		v.Department, v.OwnOnly = rq.Call.Actor.Department, rq.Dept(rq.Call.Actor.Department)
	}
	aq := records.AdmissionQuery{Department: v.Department, Status: v.Status}
	v.From, v.To = q.Get("from"), q.Get("to")
	var err error
	if aq.From, err = rq.localTime("from", v.From, false); err != nil {
		v.From, aq.From = "", time.Time{}
	}
	if aq.To, err = rq.localTime("to", v.To, true); err != nil {
		v.To, aq.To = "", time.Time{}
	}
	now := rq.Deps.Clock.Now()
	cols := []Column{
		{Key: "department", Title: "clinical.col.department"},
		{Key: "admitted", Title: "clinical.col.admitted", Sort: true},
		{Key: "discharged", Title: "clinical.col.discharged", Sort: true},
		{Key: "status", Title: "clinical.col.status"},
		{Key: "due", Title: "clinical.col.due", Sort: true},
		{Key: "archived", Title: "clinical.col.archived", Sort: true},
		{Key: "archived_by", Title: "clinical.col.archived_by"},
		{Key: "actions", Title: "clinical.col.actions"},
	}
	defSort, defDesc := "admitted", true
	switch v.Status {
	case records.StatePending, records.StatusDue, records.StateOverdue:
		defSort, defDesc = "due", false
	case records.StatusArchived, records.StatusArchivedLate:
		defSort = "archived"
	}
	g, handled, err := rq.pagedGrid(id, cols, pagedOptions{DefaultSort: defSort, DefaultDesc: defDesc, Export: "admissions",
		Empty: "clinical.admissions.none"},
		func(sort string, desc bool, offset, limit int) ([]Row, int, error) {
			aq.Sort, aq.Desc, aq.Offset, aq.Limit = sort, desc, offset, limit
			page, err := rq.Deps.Records.QueryAdmissions(rq.Context(), rq.Call, aq)
			if err != nil {
				return nil, 0, err
			}
			v.Counts = page.Counts
			rows := make([]Row, 0, len(page.Items))
			for i := range page.Items {
				rows = append(rows, rq.admissionRow(&page.Items[i], now, v.CanArchive))
			}
			return rows, page.Total, nil
		})
	if err != nil || handled {
		return nil, handled, err
	}
	v.Grid = g
	base := url.Values{}
	for _, k := range []string{"department", "from", "to"} {
		if q.Get(k) != "" {
			base.Set(k, q.Get(k))
		}
	}
	counts := v.Counts
	for _, s := range admissionStatuses {
		t := statusTab{Code: s, Current: s == v.Status}
		link := url.Values{}
		for k, vs := range base {
			link[k] = vs
		}
		link.Set("status", s)
		t.Href = "/admissions?" + link.Encode()
		switch s {
		case "":
			t.Label = rq.T("clinical.admissions.tab.all")
			t.Count = -1
		case records.StatePending:
			t.Label, t.Count = rq.T("clinical.admissions.tab.pending"), counts[records.StatusDue]+counts[records.StateOverdue]
		default:
			t.Label, t.Count = rq.T("clinical.status."+s), counts[s]
		}
		t.Bad = (s == records.StateOverdue || s == records.StatusArchivedLate) && t.Count > 0
		v.Tabs = append(v.Tabs, t)
	}
	return v, false, nil
}

// admissionRow is a line of the register.
func (rq *Request) admissionRow(a *records.Admission, now time.Time, canArchive bool) Row {
	state, stateClass := rq.admissionState(a)
	due, dueClass := rq.deadline(a, now)
	dueCell := Cell{}
	if a.ArchiveDueAt != nil {
		dueCell = rq.TimeCell(*a.ArchiveDueAt)
		dueCell.Text += " · " + due
		dueCell.Class = "nowrap " + dueClass
		dueCell.HTML = template.HTML(html.EscapeString(a.ArchiveDueAt.In(rq.c.zone).Format("2006-01-02 15:04")) +
			`<br><span class="` + dueClass + `">` + html.EscapeString(due) + `</span>`)
	}
	opt := func(t *time.Time) Cell {
		if t == nil {
			return Cell{}
		}
		return rq.TimeCell(*t)
	}
	actions := ""
	if a.PatientID != "" && rq.Can(policy.PatientRead) {
		actions += `<a href="/patients/` + a.PatientID + `/admissions" class="button small secondary">` +
			html.EscapeString(rq.T("clinical.admissions.open")) + `</a> `
	} else if a.PatientID == "" {
		actions += `<span class="muted">` + html.EscapeString(rq.T("clinical.admissions.protected")) + `</span> `
	}
	if canArchive && a.DischargedAt != nil && a.ArchivedAt == nil {
		actions += `<button type="submit" form="archive-form" formaction="/admissions/` + a.ID + `/archive" class="small"` +
			` id="archive-` + a.ID + `">` + html.EscapeString(rq.T("clinical.admissions.archive")) + `</button>`
	}
	r := Row{Cells: []Cell{
		{Text: rq.Dept(a.Department), Sort: a.Department},
		rq.TimeCell(a.AdmittedAt),
		opt(a.DischargedAt),
		{Text: state, HTML: template.HTML(`<span class="` + stateClass + `">` + html.EscapeString(state) + `</span>`)},
		dueCell,
		opt(a.ArchivedAt),
		{Text: rq.Person(a.ArchivedBy)},
		{HTML: template.HTML(actions)},
	}}
	if a.Status == "overdue" {
		r.Class = "bad"
	}
	return r
}

func archiveAdmission(rq *Request) error {
	back := rq.form("back")
	if back == "" {
		back = "/admissions"
	}
	a, err := rq.Deps.Records.Archive(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		if medguard.IsKind(err, medguard.Conflict) {
			return rq.Redirect(back, "archive_refused")
		}
		return err
	}
	if a.HoursLate > 0 {
		return rq.Redirect(back, "archived_late")
	}
	return rq.Redirect(back, "archived")
}

// patientAdmissionsView is a patient's admissions page.
type patientAdmissionsView struct {
	Banner      *patientBanner
	Grid        *Grid
	Open        []records.Admission // admitted, to discharge
	Pending     []admissionTask     // discharged, to archive
	CanAdmit    bool
	CanArchive  bool
	Departments []deptOption
	Department  string
	// ChooseDept: the user may admit to any department, and chooses.
	ChooseDept bool
	AdmittedAt string
	Now        string
	Error      *fieldError
	// ErrorAdmission is the admission a refused discharge was of.
	ErrorAdmission string
}

// admissionTask is an admission awaiting archiving, with its deadline in
// words.
type admissionTask struct {
	records.Admission
	Deadline, Class string
}

// Bad reports whether the form's refusal names field.
func (v *patientAdmissionsView) Bad(field string) bool {
	return v.Error != nil && v.Error.Field == field
}

func patientAdmissionsPage(rq *Request) error {
	v, err := rq.patientAdmissions(rq.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "patient_admissions", "clinical.patient_admissions.title", v)
}

func (rq *Request) patientAdmissions(id string) (*patientAdmissionsView, error) {
	rq.Call.Purpose = clinicalPurpose(rq)
	b, p, err := rq.banner(id)
	if err != nil {
		return nil, err
	}
	as, err := rq.Deps.Records.ListAdmissions(rq.Context(), rq.Call, id)
	if err != nil {
		return nil, err
	}
	now := rq.Deps.Clock.Now()
	v := &patientAdmissionsView{Banner: b, CanAdmit: rq.Can(policy.AdmissionManage), CanArchive: rq.Can(policy.RecordArchive),
		Departments: rq.admissionDepartments(), Department: rq.Call.Actor.Department, AdmittedAt: rq.localInput(now),
		Now: rq.localInput(now), ChooseDept: rq.Can(policy.AllDepartments)}
	if v.ChooseDept {
		// The records office admits to the patient's department (their
		// latest admission's, or one holding their data), not its own.
		v.Department = ""
		for _, d := range p.Departments {
			if d != rq.Call.Actor.Department {
				v.Department = d
			}
		}
		if len(as) > 0 {
			v.Department = as[len(as)-1].Department
		}
	}
	rows := make([]Row, 0, len(as))
	for i := range as {
		a := &as[i]
		rows = append(rows, rq.admissionRow(a, now, false))
		switch {
		case a.DischargedAt == nil:
			v.Open = append(v.Open, *a)
		case a.ArchivedAt == nil:
			text, class := rq.deadline(a, now)
			v.Pending = append(v.Pending, admissionTask{Admission: *a, Deadline: text, Class: class})
		}
	}
	// The grid's last column opens this very page: leave it out.
	cols := []Column{
		{Key: "department", Title: "clinical.col.department", Sort: true},
		{Key: "admitted", Title: "clinical.col.admitted", Sort: true},
		{Key: "discharged", Title: "clinical.col.discharged", Sort: true},
		{Key: "status", Title: "clinical.col.status"},
		{Key: "due", Title: "clinical.col.due", Sort: true},
		{Key: "archived", Title: "clinical.col.archived", Sort: true},
		{Key: "archived_by", Title: "clinical.col.archived_by"},
	}
	for i := range rows {
		rows[i].Cells = rows[i].Cells[:len(cols)]
	}
	g, _, err := rq.Grid("patient-admissions", cols, rows, GridOptions{DefaultSort: "admitted", DefaultDesc: true,
		Empty: "clinical.patient_admissions.none"})
	if err != nil {
		return nil, err
	}
	v.Grid = g
	return v, nil
}

// refusePatientAdmissions shows the patient's admissions page with a
// refused input.
func (rq *Request) refusePatientAdmissions(id string, err error, prefix, admission string) error {
	fe, ok := rq.fieldErrorOf(err, prefix)
	if !ok {
		return err
	}
	v, verr := rq.patientAdmissions(id)
	if verr != nil {
		return verr
	}
	v.Error, v.ErrorAdmission = fe, admission
	if d := rq.form("department"); d != "" {
		v.Department, v.AdmittedAt = d, rq.form("admitted_at")
	}
	status := http.StatusUnprocessableEntity
	if medguard.IsKind(err, medguard.Conflict) {
		status = http.StatusConflict
	}
	return rq.Render(status, "patient_admissions", "clinical.patient_admissions.title", v)
}

func admitPatient(rq *Request) error {
	id := rq.PathValue("id")
	at, err := rq.localTime("admitted_at", rq.form("admitted_at"), false)
	if err == nil {
		_, err = rq.Deps.Records.Admit(rq.Context(), rq.Call, id, rq.form("department"), at)
	}
	if err != nil {
		return rq.refusePatientAdmissions(id, err, "clinical.admit.error", "")
	}
	return rq.Redirect("/patients/"+id+"/admissions", "admitted")
}

func dischargeAdmission(rq *Request) error {
	aid, pid := rq.PathValue("id"), idPath(rq.form("patient"))
	at, err := rq.localTime("discharged_at", rq.form("discharged_at"), false)
	var a *records.Admission
	if err == nil {
		a, err = rq.Deps.Records.Discharge(rq.Context(), rq.Call, aid, at)
	}
	if err != nil {
		if pid == "" {
			return err
		}
		return rq.refusePatientAdmissions(pid, err, "clinical.discharge.error", aid)
	}
	return rq.Redirect("/patients/"+a.PatientID+"/admissions", "discharged")
}
