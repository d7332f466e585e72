package console

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard/internal/audit"
	"medguard/internal/detect"
	"medguard/internal/incidents"
	"medguard/internal/policy"
)

// Security incidents (安全事件, SPEC §7): the list with each incident's
// deadlines and the time left or overdue (worked out here from the clock,
// so the page needs no script), the report form, and an incident's page:
// timeline, deadlines, grade confirmation, progress updates, evidence from
// the audit log with each proof verified here, the 5W1H root-cause
// analysis, corrective actions and closure.

func init() {
	read := []policy.Permission{policy.IncidentRead}
	manage := []policy.Permission{policy.IncidentManage}
	register(
		Page{Method: "GET", Path: "/incidents", Any: read, Nav: &Nav{Key: "nav.incidents", Order: 45}, Handle: incidentsPage},
		Page{Method: "GET", Path: "/incidents/new", Any: manage, Handle: newIncidentPage},
		Page{Method: "POST", Path: "/incidents", Any: manage, Handle: reportIncident},
		// The commander reads it without incident.read: the service decides.
		Page{Method: "GET", Path: "/incidents/{id}", Handle: incidentPage},
		Page{Method: "POST", Path: "/incidents/{id}/grade", Any: manage, Handle: confirmGrade},
		Page{Method: "POST", Path: "/incidents/{id}/updates", Any: manage, Handle: addIncidentUpdate},
		Page{Method: "POST", Path: "/incidents/{id}/evidence", Any: manage, Handle: attachEvidence},
		Page{Method: "POST", Path: "/incidents/{id}/analysis", Any: manage, Handle: setAnalysis},
		Page{Method: "POST", Path: "/incidents/{id}/actions", Any: manage, Handle: addAction},
		Page{Method: "POST", Path: "/incidents/{id}/actions/{action}/state", Any: manage, Handle: setActionState},
		Page{Method: "POST", Path: "/incidents/{id}/close", Any: manage, Handle: closeIncident},
	)
}

// deadlineRow is a deadline in words, with the time left or overdue.
type deadlineRow struct {
	incidents.Deadline
	Name      string
	Countdown string // "" once met
}

func (rq *Request) deadlineRows(ds []incidents.Deadline) []deadlineRow {
	now := rq.Deps.Clock.Now()
	out := make([]deadlineRow, 0, len(ds))
	for _, d := range ds {
		r := deadlineRow{Deadline: d, Name: rq.textOr("deadline."+d.Name, d.Name)}
		if d.MetAt == nil {
			r.Countdown = rq.countdown(d.DueAt, now)
		}
		out = append(out, r)
	}
	return out
}

// incidentDeadlines is deadlineRows for an incident: once it is closed
// nothing counts down any more (a deadline it missed stays shown overdue).
func (rq *Request) incidentDeadlines(in *incidents.Incident) []deadlineRow {
	rows := rq.deadlineRows(in.Deadlines)
	if in.Status == incidents.Closed {
		for i := range rows {
			rows[i].Countdown = ""
		}
	}
	return rows
}

// criterionName names a §7 criterion (of an incident or a case) in the
// page's language.
func (rq *Request) criterionName(code string) string {
	for _, cs := range [][]incidents.Criterion{incidents.Criteria, incidents.CaseCriteria} {
		for _, c := range cs {
			if c.Code == code {
				if rq.Lang == "en" {
					return c.NameEN
				}
				return c.NameZH
			}
		}
	}
	return code
}

// criterionOption is a criterion for a select.
type criterionOption struct {
	Code, Name string
	Grade      int
}

func (rq *Request) criterionOptions(cs []incidents.Criterion) []criterionOption {
	out := make([]criterionOption, len(cs))
	for i, c := range cs {
		out[i] = criterionOption{Code: c.Code, Name: rq.criterionName(c.Code), Grade: c.Grade}
	}
	return out
}

// incidentTitle is an incident's title: for one opened by a freeze, in
// the page's language with the person by name.
func (rq *Request) incidentTitle(in *incidents.Incident) string {
	if in.Source == incidents.SourceFreeze && in.FrozenUser != "" {
		return rq.T("incidents.freeze_title", rq.Person(in.FrozenUser))
	}
	return in.Title
}

// nearestDeadline is the deadline of an open incident to look at first:
// the most overdue, else the next due; nil when none is pending.
func nearestDeadline(ds []deadlineRow) *deadlineRow {
	var out *deadlineRow
	for i := range ds {
		d := &ds[i]
		if d.MetAt != nil || d.Countdown == "" {
			continue
		}
		if out == nil || d.DueAt.Before(out.DueAt) {
			out = d
		}
	}
	return out
}

type incidentsView struct {
	Status    string
	Grade     string
	Statuses  []option
	Grid      *Grid
	CanManage bool
}

func incidentsPage(rq *Request) error {
	q := rq.URL.Query()
	st := statusFilter(q.Get("status"), incidents.Open, incidents.Closed, "all")
	grade := q.Get("grade")
	if grade != "1" && grade != "2" && grade != "3" {
		grade = ""
	}
	items, next, err := rq.Deps.Incidents.List(rq.Context(), rq.Call, st, "", MaxRows)
	if err != nil {
		return err
	}
	v := incidentsView{Status: st, Grade: grade, CanManage: rq.Can(policy.IncidentManage)}
	for _, s := range []string{incidents.Open, incidents.Closed, "all"} {
		v.Statuses = append(v.Statuses, option{Value: s, Text: rq.T("incident.status." + s)})
	}
	cols := []Column{{Key: "title", Title: "incidents.field.title", Sort: true}, {Key: "grade", Title: "incidents.field.grade", Sort: true},
		{Key: "type", Title: "incidents.field.type", Sort: true},
		{Key: "criterion", Title: "incidents.criterion", Sort: true}, {Key: "status", Title: "incidents.col.status", Sort: true},
		{Key: "deadline", Title: "incidents.col.deadline", Sort: true}, {Key: "due", Title: "deadline.col.due", Sort: true},
		{Key: "left", Title: "incidents.col.left"}, {Key: "commander", Title: "incidents.field.commander", Sort: true},
		{Key: "reported_by", Title: "incidents.col.reported_by", Sort: true},
		{Key: "reported_at", Title: "incidents.col.reported_at", Sort: true}}
	rows := make([]Row, 0, len(items))
	for i := range items {
		in := &items[i]
		if grade != "" && fmt.Sprint(in.Grade) != grade {
			continue
		}
		rows = append(rows, rq.incidentRow(in))
	}
	g, handled, err := rq.Grid("incidents", cols, rows, GridOptions{DefaultSort: "reported_at", DefaultDesc: true, Capped: next != "",
		Export: "incidents", Empty: "incidents.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "incidents", "incidents.title", v)
}

// incidentRow is an incident as a row of the list: its nearest deadline,
// overdue in red.
func (rq *Request) incidentRow(in *incidents.Incident) Row {
	status := rq.T("incident.status." + in.Status)
	if in.Status == incidents.Open && !in.GradeConfirmed {
		status += rq.T("incidents.unconfirmed_suffix")
	}
	grade := tagCell(rq.T("incidents.grade", in.Grade), "")
	if in.Grade == incidents.Major {
		grade = tagCell(rq.T("incidents.grade", in.Grade), "core")
	}
	grade.Sort = fmt.Sprint(in.Grade)
	commander := Cell{}
	if in.Commander != "" {
		commander.Text = rq.Person(in.Commander)
	}
	cells := []Cell{{Text: rq.incidentTitle(in), Href: "/incidents/" + in.ID}, grade, {Text: rq.typeName(in.Type)},
		{Text: rq.criterionName(in.Criterion)}, {Text: status}, {}, {}, {}, commander, {Text: rq.Person(in.ReportedBy)},
		rq.TimeCell(in.ReportedAt)}
	r := Row{Cells: cells}
	if in.Status == incidents.Open {
		if d := nearestDeadline(rq.incidentDeadlines(in)); d != nil {
			cells[5] = Cell{Text: d.Name}
			cells[6] = rq.TimeCell(d.DueAt)
			cells[7] = Cell{Text: d.Countdown, Class: "nowrap"}
			if d.State == incidents.Overdue {
				cells[7] = tagCell(d.Countdown, "bad overdue")
				cells[5].Class, r.Class = "bad", "flag"
			}
		}
	}
	return r
}

// newIncidentView is the report form, as given.
type newIncidentView struct {
	Form     map[string]string
	Criteria []criterionOption
	Types    []option
	Error    *formError
}

func newIncidentPage(rq *Request) error {
	return rq.Render(http.StatusOK, "incident_new", "incidents.new.title",
		newIncidentView{Form: map[string]string{}, Criteria: rq.criterionOptions(incidents.Criteria), Types: rq.typeOptions()})
}

// factsOf reads the facts part of the report form; nil if none is given.
func factsOf(rq *Request) (*incidents.Facts, error) {
	f := &incidents.Facts{HospitalWideOutage: rq.form("hospital_wide_outage") != "", CoreDataLeaked: rq.form("core_data_leaked") != "",
		LocalDataAbnormal: rq.form("local_data_abnormal") != ""}
	given := f.HospitalWideOutage || f.CoreDataLeaked || f.LocalDataAbnormal
	for _, n := range []struct {
		field string
		to    *int
	}{{"departments_affected", &f.DepartmentsAffected}, {"departments_total", &f.DepartmentsTotal}, {"records_affected", &f.RecordsAffected}} {
		if v := rq.form(n.field); v != "" {
			x, err := uintValue("facts."+n.field, v)
			if err != nil {
				return nil, err
			}
			*n.to, given = int(x), true
		}
	}
	if v := rq.form("query_failure_percent"); v != "" {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 100 {
			return nil, &formErrorValue{field: "facts.query_failure_rate"}
		}
		f.QueryFailureRate, given = p/100, true
	}
	if !given {
		return nil, nil
	}
	return f, nil
}

// formErrorValue is a form field this page could not read.
type formErrorValue struct{ field string }

func (e *formErrorValue) Error() string { return "bad value for " + e.field }

func reportIncident(rq *Request) error {
	form := map[string]string{}
	for _, k := range []string{"title", "description", "type", "grade", "criterion", "hospital_wide_outage", "core_data_leaked",
		"local_data_abnormal", "departments_affected", "departments_total", "records_affected", "query_failure_percent"} {
		form[k] = rq.form(k)
	}
	fail := func(field string) error {
		key := "incidents.error.report"
		if rq.c.catalog.has(key + "." + field) {
			key += "." + field
		}
		return rq.Render(http.StatusUnprocessableEntity, "incident_new", "incidents.new.title", newIncidentView{Form: form,
			Criteria: rq.criterionOptions(incidents.Criteria), Types: rq.typeOptions(), Error: &formError{Key: key, Field: field}})
	}
	grade, err := gradeValue(form["grade"])
	if err != nil {
		return fail("grade")
	}
	facts, err := factsOf(rq)
	if err != nil {
		if fe, ok := err.(*formErrorValue); ok {
			return fail(fe.field)
		}
		if fe, ok := rq.asFormError(err, ""); ok {
			return fail(fe.Field)
		}
		return err
	}
	in, err := rq.Deps.Incidents.Report(rq.Context(), rq.Call, incidents.NewIncident{Type: form["type"], Title: form["title"],
		Description: form["description"], Grade: grade, Criterion: form["criterion"], Facts: facts})
	if err != nil {
		if fe, ok := rq.asFormError(err, ""); ok {
			return fail(fe.Field)
		}
		return err
	}
	return rq.Redirect("/incidents/"+in.ID, "incident_reported")
}

// evidenceRow is a piece of evidence with its checks: the inclusion proof
// against the root it names, and the checkpoint's signature and root.
type evidenceRow struct {
	incidents.Evidence
	Action            string
	At                time.Time
	ProofOK           bool
	CheckpointChecked bool
	CheckpointOK      bool
}

type updateRow struct {
	incidents.Update
	Kind string
	By   string
	// ConfirmedBy names the second person; CanConfirm offers the caller
	// the confirmation (they manage incidents and did not record it).
	ConfirmedBy string
	CanConfirm  bool
}

type actionRow struct {
	incidents.Action
	State  string
	Owner  string
	DoneBy string
}

type incidentView struct {
	Incident      *incidents.Incident
	Title         string
	Description   string
	ReportedBy    string
	ConfirmedBy   string
	ClosedBy      string
	FrozenUser    string
	AlertID       string
	CriterionName string
	Suggested     string
	Deadlines     []deadlineRow
	Timeline      []updateRow
	Evidence      []evidenceRow
	Actions       []actionRow
	ActionStates  []string
	UpdateKinds   []string
	Criteria      []criterionOption
	CanManage     bool
	Open          bool
	DefaultDue    string
	Error         *formError
	// Issue 13: the type, the commander, the files.
	TypeName  string
	Types     []option
	Commander string
	Staff     []option
	Files     []fileRow
	FileKinds []option
	MaxFileMB int
}

func incidentPage(rq *Request) error { return renderIncident(rq, http.StatusOK, nil) }

func renderIncident(rq *Request, status int, fe *formError) error {
	in, err := rq.Deps.Incidents.Get(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := incidentView{Incident: in, CriterionName: rq.criterionName(in.Criterion), Deadlines: rq.incidentDeadlines(in),
		ActionStates: incidents.ActionStates, UpdateKinds: incidents.UpdateKinds, Criteria: rq.criterionOptions(incidents.Criteria),
		CanManage: rq.Can(policy.IncidentManage), Open: in.Status == incidents.Open, Error: fe,
		DefaultDue: rq.localInput(rq.Deps.Clock.Now().Add(7 * 24 * time.Hour))}
	v.Title, v.Description = rq.incidentTitle(in), in.Description
	v.ReportedBy, v.ConfirmedBy, v.ClosedBy = rq.Person(in.ReportedBy), rq.Person(in.GradeConfirmedBy), rq.Person(in.ClosedBy)
	if in.Source == incidents.SourceFreeze {
		// Opened by medguard when detection froze an account: said in
		// the page's language, the alert holding the detail.
		v.FrozenUser, v.AlertID = rq.Person(in.FrozenUser), idPath(in.AlertID)
		v.Description = rq.T("incidents.freeze_description", v.FrozenUser)
	}
	if in.SuggestedCriterion != "" {
		v.Suggested = rq.criterionName(in.SuggestedCriterion)
	}
	for _, u := range in.Timeline {
		row := updateRow{Update: u, Kind: rq.textOr("update."+u.Kind, rq.T("update.other")), By: rq.Person(u.By)}
		if u.ConfirmedBy != "" {
			row.ConfirmedBy = rq.Person(u.ConfirmedBy)
		}
		row.CanConfirm = u.Step && u.ConfirmedAt == nil && v.CanManage && v.Open && u.By != rq.Call.Actor.Name
		v.Timeline = append(v.Timeline, row)
	}
	for _, a := range in.Actions {
		row := actionRow{Action: a, State: rq.textOr("action.state."+a.State, a.State), Owner: rq.ownerName(a.Owner)}
		if a.DoneBy != "" {
			row.DoneBy = rq.Person(a.DoneBy)
		}
		v.Actions = append(v.Actions, row)
	}
	rq.handlingView(in, &v)
	if len(in.Evidence) > 0 {
		key := ""
		if rq.Can(policy.AuditRead) {
			k, err := rq.Deps.Trail.VerifierKey(rq.Context(), rq.Call)
			if err != nil && !hidden(err) {
				return err
			}
			key = k
		}
		for _, e := range in.Evidence {
			r := evidenceRow{Evidence: e, Action: rq.actionWords(e.Entry.Action)}
			r.At, _ = time.Parse(time.RFC3339Nano, e.Entry.Time)
			r.ProofOK = proof.VerifyInclusion(rfc6962.DefaultHasher, e.Index, e.TreeSize, rfc6962.DefaultHasher.HashLeaf(e.Leaf),
				e.Proof, e.Root) == nil
			if key != "" {
				r.CheckpointChecked = true
				_, size, root, err := audit.OpenCheckpoint([]byte(e.Checkpoint), key)
				r.CheckpointOK = err == nil && size == e.TreeSize && bytes.Equal(root, e.Root)
			}
			v.Evidence = append(v.Evidence, r)
		}
	}
	return rq.Render(status, "incident", "incidents.detail.title", v)
}

// incidentStep runs one change of an incident from its page: on success
// back to the page with a flash, on a refused input the page with the
// message.
func incidentStep(rq *Request, errKey, flash string, step func(id string) error) error {
	id := rq.PathValue("id")
	if err := step(id); err != nil {
		if fe, ok := rq.asFormError(err, errKey); ok {
			return renderIncident(rq, http.StatusUnprocessableEntity, fe)
		}
		return err
	}
	return rq.Redirect("/incidents/"+id, flash)
}

func confirmGrade(rq *Request) error {
	return incidentStep(rq, "incidents.error.grade", "grade_confirmed", func(id string) error {
		g, err := gradeValue(rq.form("grade"))
		if err != nil {
			return err
		}
		_, err = rq.Deps.Incidents.ConfirmGrade(rq.Context(), rq.Call, id, incidents.GradeConfirmation{Grade: g,
			Criterion: rq.form("criterion"), Commander: rq.form("commander"), Type: rq.form("type")})
		return err
	})
}

func addIncidentUpdate(rq *Request) error {
	return incidentStep(rq, "incidents.error.update", "update_added", func(id string) error {
		kind := rq.form("kind")
		if !slices.Contains(incidents.UpdateKinds, kind) {
			kind = incidents.UpdateProgress
		}
		_, err := rq.Deps.Incidents.AddUpdate(rq.Context(), rq.Call, id, incidents.NewUpdate{Kind: kind, Text: rq.form("text")})
		return err
	})
}

func attachEvidence(rq *Request) error {
	return incidentStep(rq, "incidents.error.evidence", "evidence_attached", func(id string) error {
		idx, err := indexList("indexes", rq.form("indexes"))
		if err != nil {
			return err
		}
		_, err = rq.Deps.Incidents.AttachEvidence(rq.Context(), rq.Call, id, idx)
		return err
	})
}

func setAnalysis(rq *Request) error {
	return incidentStep(rq, "incidents.error.analysis", "analysis_saved", func(id string) error {
		_, err := rq.Deps.Incidents.SetAnalysis(rq.Context(), rq.Call, id, incidents.RootCause{What: rq.form("what"),
			When: rq.form("when"), Where: rq.form("where"), Who: rq.form("who"), Why: rq.form("why"), How: rq.form("how")})
		return err
	})
}

func addAction(rq *Request) error {
	return incidentStep(rq, "incidents.error.action", "action_added", func(id string) error {
		due, err := rq.localTime("due_at", rq.form("due_at"), true)
		if err != nil {
			return err
		}
		_, err = rq.Deps.Incidents.AddAction(rq.Context(), rq.Call, id, incidents.NewAction{Description: rq.form("description"),
			Owner: rq.form("owner"), DueAt: due})
		return err
	})
}

func setActionState(rq *Request) error {
	return incidentStep(rq, "incidents.error.action", "action_updated", func(id string) error {
		_, err := rq.Deps.Incidents.SetActionState(rq.Context(), rq.Call, id, rq.PathValue("action"), rq.form("state"))
		return err
	})
}

// closeView is the confirmation asked before an incident is closed.
type closeView struct {
	Incident *incidents.Incident
	Title    string
	Summary  string
	Overdue  int // deadline alerts still open, cleared by the closure
}

// closeIncident closes an incident once confirmed: the first POST shows
// what closing means (nothing changes after it; its overdue-deadline
// alerts are cleared) and asks again; the second, with confirm=1, closes.
func closeIncident(rq *Request) error {
	if rq.form("confirm") != "1" {
		in, err := rq.Deps.Incidents.Get(rq.Context(), rq.Call, rq.PathValue("id"))
		if err != nil {
			return err
		}
		if in.Status != incidents.Open {
			return renderIncident(rq, http.StatusUnprocessableEntity, &formError{Key: "security.error.conflict"})
		}
		v := closeView{Incident: in, Title: rq.incidentTitle(in), Summary: rq.form("summary")}
		if rq.Can(policy.AlertRead) {
			as, _, err := rq.Deps.Detect.Alerts(rq.Context(), rq.Call, detect.AlertQuery{Rule: detect.DeadlineOverdueRule,
				Status: detect.StatusNew, Limit: detect.MaxAlertPage})
			if err != nil && !hidden(err) {
				return err
			}
			for _, a := range as {
				if a.Key == in.ID {
					v.Overdue++
				}
			}
		}
		return rq.Render(http.StatusOK, "incident_close", "incidents.close.title", v)
	}
	return incidentStep(rq, "incidents.error.close", "incident_closed", func(id string) error {
		_, err := rq.Deps.Incidents.Close(rq.Context(), rq.Call, id, rq.form("summary"))
		return err
	})
}

// ownerName names the owner of a corrective action: a member of staff or
// a department.
func (rq *Request) ownerName(owner string) string {
	if _, ok := rq.c.dir.staff(owner); ok {
		return rq.Person(owner)
	}
	return rq.Dept(owner)
}
