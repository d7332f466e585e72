package console

import (
	"html"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"medguard/internal/policy"
	"medguard/internal/records"
)

// The homes of clinical staff at / (issue 10): doctors, nurses and
// department heads land on their department's patients; records clerks on
// registration, the admissions and the archiving queue. Security officers,
// auditors and administrators — anyone holding a privileged role — keep
// the dashboard (dashboard.go sends the others here).

// clinicalHome reports whether the user's home is a clinical one: a
// clinical role (doctor, nurse, department head, records clerk) and no
// privileged one.
func clinicalHome(rq *Request) bool {
	clinical := false
	for _, r := range rq.Call.Actor.Roles {
		if policy.Privileged(r) {
			return false
		}
		clinical = clinical || policy.Clinical(r)
	}
	return clinical
}

// home is the clinical home of the user.
func home(rq *Request) error {
	if rq.Can(policy.RecordArchive) {
		return clerkHome(rq)
	}
	return wardHome(rq)
}

// homeFigure is a number on a home, linking to its list.
type homeFigure struct {
	Label, Href, ID string
	Value           int
	More, Bad       bool
}

// wardHomeView is a department's patients.
type wardHomeView struct {
	Department  string // name
	Grid        *Grid
	Tabs        []statusTab
	State       string
	Figures     []homeFigure
	CanRegister bool
	CanSearch   bool
	NoDept      bool
	// Quarterly are the published quarterly compliance checks the
	// department head has not read (rectify.go).
	Quarterly []quarterlyNotice
}

// wardStates are the filters of a department's patients.
var wardStates = []string{"", records.StateAdmitted, records.StatePending, records.StateOverdue}

func wardHome(rq *Request) error {
	v := &wardHomeView{Department: rq.Dept(rq.Call.Actor.Department), CanRegister: rq.Can(policy.PatientCreate),
		CanSearch: rq.Can(policy.PatientSearch), State: rq.URL.Query().Get("state")}
	if err := rq.headFigures(v); err != nil {
		return err
	}
	v.Quarterly = rq.quarterlyNotices()
	if rq.Call.Actor.Department == "" {
		v.NoDept = true
		return rq.Render(http.StatusOK, "home_ward", "clinical.home.title", v)
	}
	valid := false
	for _, s := range wardStates {
		valid = valid || s == v.State
	}
	if !valid {
		v.State = ""
	}
	cols := []Column{
		{Key: "name", Title: "clinical.col.name"},
		{Key: "mrn", Title: "clinical.col.mrn"},
		{Key: "age", Title: "clinical.col.age"},
		{Key: "gender", Title: "clinical.col.gender"},
		{Key: "admitted", Title: "clinical.col.state", Sort: true},
		{Key: "last_record", Title: "clinical.col.last_record", Sort: true},
		{Key: "actions", Title: "clinical.col.actions"},
	}
	var counts map[string]int
	canWrite := len(rq.writableTypes()) > 0
	rq.Call.Purpose = clinicalPurpose(rq)
	g, _, err := rq.pagedGrid("ward", cols, pagedOptions{DefaultSort: "last_record", DefaultDesc: true, Sizes: []int{10, 25},
		Empty: "clinical.home.none"},
		func(sort string, desc bool, offset, limit int) ([]Row, int, error) {
			page, err := rq.Deps.Records.DepartmentPatients(rq.Context(), rq.Call, records.DepartmentQuery{State: v.State,
				Sort: sort, Desc: desc, Offset: offset, Limit: limit})
			if err != nil {
				return nil, 0, err
			}
			counts = page.Counts
			rows := make([]Row, 0, len(page.Items))
			for i := range page.Items {
				rows = append(rows, rq.wardRow(&page.Items[i], canWrite))
			}
			return rows, page.Total, nil
		})
	if err != nil {
		return err
	}
	v.Grid = g
	for _, s := range wardStates {
		t := statusTab{Code: s, Current: s == v.State, Href: "/"}
		if s != "" {
			t.Href = "/?" + url.Values{"state": {s}}.Encode()
		}
		switch s {
		case "":
			t.Label, t.Count = rq.T("clinical.home.tab.all"), counts["all"]
		case records.StatePending:
			t.Label, t.Count = rq.T("clinical.admissions.tab.pending"), counts[s]
		default:
			t.Label, t.Count = rq.T("clinical.status."+s), counts[s]
		}
		t.Bad = s == records.StateOverdue && t.Count > 0
		v.Tabs = append(v.Tabs, t)
	}
	return rq.Render(http.StatusOK, "home_ward", "clinical.home.title", v)
}

// wardRow is a line of a department's patients.
func (rq *Request) wardRow(p *records.DepartmentPatient, canWrite bool) Row {
	state, stateClass := rq.admissionState(p.Admission)
	stateHTML := `<span class="` + stateClass + `">` + html.EscapeString(state) + `</span>`
	stateCell := Cell{Text: state, Sort: "0"}
	if a := p.Admission; a != nil {
		// Since when: admitted, or discharged.
		since, key := a.AdmittedAt, "clinical.home.admitted_on"
		if a.DischargedAt != nil {
			since, key = *a.DischargedAt, "clinical.home.discharged_on"
		}
		when := rq.T(key, since.In(rq.c.zone).Format("2006-01-02"))
		stateCell.Text += " · " + when
		stateHTML += `<br><span class="muted nowrap">` + html.EscapeString(when) + `</span>`
	}
	stateCell.HTML = template.HTML(stateHTML)
	last := Cell{Text: rq.T("clinical.none"), Class: "muted"}
	if r := p.LastRecord; r != nil {
		when := r.CreatedAt.In(rq.c.zone).Format("2006-01-02 15:04")
		last = Cell{Text: rq.recordType(r.Type) + " · " + when}
		label := html.EscapeString(rq.recordType(r.Type))
		if rq.Can(policy.RecordRead) {
			label = `<a href="/records/` + r.ID + `">` + label + `</a>`
		}
		last.HTML = template.HTML(label + `<br><span class="muted nowrap">` + html.EscapeString(when) + `</span>`)
	}
	actions := ""
	if canWrite {
		actions += `<a href="/patients/` + p.ID + `/records/new" class="button small" id="write-` + p.ID + `">` +
			html.EscapeString(rq.T("clinical.home.write")) + `</a> `
	}
	actions += `<a href="/patients/` + p.ID + `/admissions" class="button small secondary">` +
		html.EscapeString(rq.T("clinical.home.admissions")) + `</a>`
	r := Row{Cells: []Cell{
		{Text: p.Name, Href: "/patients/" + p.ID},
		{Text: mrnTail(p.MRN), Class: "mono nowrap", Title: rq.T("clinical.col.mrn_tail")},
		{Text: rq.age(p.BirthDate), Class: "nowrap"},
		{Text: rq.T("gender." + p.Gender)},
		stateCell,
		last,
		{HTML: template.HTML(actions)},
	}}
	if p.Admission != nil && p.Admission.Status == "overdue" {
		r.Class = "bad"
	}
	return r
}

// headFigures adds a department head's figures: emergency accesses to
// review, and the department's overdue archiving.
func (rq *Request) headFigures(v *wardHomeView) error {
	if rq.Can(policy.BreakGlassReview) {
		for _, f := range []struct{ status, key string }{{"pending", "clinical.home.glass_pending"}, {"overdue", "clinical.home.glass_overdue"}} {
			items, next, err := rq.Deps.Records.ListBreakGlass(rq.Context(), rq.Call, records.BreakGlassFilter{Status: f.status, Limit: 200})
			if err != nil {
				if hidden(err) {
					continue
				}
				return err
			}
			v.Figures = append(v.Figures, homeFigure{Label: rq.T(f.key), Href: "/break-glass", Value: len(items), More: next != "",
				Bad: f.status == "overdue" && len(items) > 0, ID: "glass-" + f.status})
		}
	}
	if rq.Can(policy.ArchivingRead) && rq.Call.Actor.Department != "" {
		page, err := rq.Deps.Records.QueryAdmissions(rq.Context(), rq.Call, records.AdmissionQuery{
			Department: rq.Call.Actor.Department, Status: records.StateOverdue, Limit: 1})
		if err != nil && !hidden(err) {
			return err
		}
		if err == nil {
			v.Figures = append(v.Figures, homeFigure{Label: rq.T("clinical.home.dept_overdue"),
				Href: "/admissions?status=" + records.StateOverdue, Value: page.Counts[records.StateOverdue],
				Bad: page.Counts[records.StateOverdue] > 0, ID: "dept-overdue"})
		}
	}
	return nil
}

// clerkHomeView is the records office's home.
type clerkHomeView struct {
	Figures     []homeFigure
	Queue       *admissionsView
	CanRegister bool
	CanSearch   bool
}

func clerkHome(rq *Request) error {
	q, handled, err := rq.admissions("queue", records.StatePending)
	if err != nil || handled {
		if handled {
			return errHandled
		}
		return err
	}
	v := &clerkHomeView{Queue: q, CanRegister: rq.Can(policy.PatientCreate), CanSearch: rq.Can(policy.PatientSearch)}
	for _, f := range []struct {
		status, key string
		bad         bool
	}{
		{records.StateAdmitted, "clinical.home.in_hospital", false},
		{records.StatusDue, "clinical.home.due", false},
		{records.StateOverdue, "clinical.home.overdue", true},
		{records.StatusArchivedLate, "clinical.home.archived_late", false},
	} {
		n := q.Counts[f.status]
		v.Figures = append(v.Figures, homeFigure{Label: rq.T(f.key), Href: "/admissions?status=" + f.status, Value: n,
			Bad: f.bad && n > 0, ID: "figure-" + f.status})
	}
	return rq.Render(http.StatusOK, "home_clerk", "clinical.home.clerk_title", v)
}

// Text is the figure as shown: "5", or "200+" when there are more.
func (f homeFigure) Text() string {
	s := strconv.Itoa(f.Value)
	if f.More {
		s += "+"
	}
	return s
}
