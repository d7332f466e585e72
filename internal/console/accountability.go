package console

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"medguard"
	"medguard/internal/incidents"
	"medguard/internal/policy"
)

// Accountability cases (违规责任追究, SPEC §7): the list, the candidates the
// records suggest (repeated denied reads, late archiving), opening a case,
// and a case's page with its findings, the person's statement, the
// decision, the appeal and the appeal's review. The person concerned may
// read their own case and answer it; the policy decides (the pages that
// they use take any signed-in user, and the service refuses the others).

func init() {
	manage := []policy.Permission{policy.AccountabilityManage}
	register(
		Page{Method: "GET", Path: "/accountability", Any: manage, Nav: &Nav{Key: "nav.accountability", Order: 55}, Handle: casesPage},
		Page{Method: "GET", Path: "/accountability/candidates", Any: manage, Handle: candidatesPage},
		Page{Method: "POST", Path: "/accountability", Any: manage, Handle: openCase},
		Page{Method: "GET", Path: "/accountability/{id}", Handle: casePage},
		Page{Method: "POST", Path: "/accountability/{id}/findings", Any: manage, Handle: caseStep("finding_added", addFinding)},
		Page{Method: "POST", Path: "/accountability/{id}/statement", Handle: caseStep("statement_saved", caseStatement)},
		Page{Method: "POST", Path: "/accountability/{id}/decision", Any: manage, Handle: caseStep("case_decided", decideCase)},
		Page{Method: "POST", Path: "/accountability/{id}/appeal", Handle: caseStep("appeal_filed", caseAppeal)},
		Page{Method: "POST", Path: "/accountability/{id}/review", Any: manage, Handle: caseStep("appeal_reviewed", reviewAppeal)},
	)
}

// CaseStatuses are the states of a case, in the filter's order.
var CaseStatuses = []string{incidents.Investigating, incidents.Decided, incidents.Appealed, incidents.Reviewed}

type casesView struct {
	Status   string
	Statuses []option
	Grid     *Grid
}

func casesPage(rq *Request) error {
	st := statusFilter(rq.URL.Query().Get("status"), append([]string{"all"}, CaseStatuses...)...)
	items, next, err := rq.Deps.Incidents.ListCases(rq.Context(), rq.Call, st, "", MaxRows)
	if err != nil {
		return err
	}
	v := casesView{Status: st}
	for _, s := range append([]string{"all"}, CaseStatuses...) {
		v.Statuses = append(v.Statuses, option{Value: s, Text: rq.T("case.status." + s)})
	}
	cols := []Column{{Key: "subject", Title: "cases.subject_col", Sort: true}, {Key: "grade", Title: "cases.col.grade", Sort: true},
		{Key: "criterion", Title: "incidents.criterion", Sort: true}, {Key: "status", Title: "cases.col.status", Sort: true},
		{Key: "sanction", Title: "cases.col.sanction", Sort: true},
		{Key: "deadline", Title: "incidents.col.deadline", Sort: true}, {Key: "left", Title: "incidents.col.left"},
		{Key: "opened_by", Title: "cases.col.opened_by", Sort: true}, {Key: "opened_at", Title: "cases.col.opened_at", Sort: true}}
	rows := make([]Row, 0, len(items))
	for i := range items {
		c := &items[i]
		grade := tagCell(rq.T("cases.grade", c.Grade), "")
		grade.Sort = fmt.Sprint(c.Grade)
		sanction := Cell{}
		if c.Sanction != "" {
			sanction.Text = rq.sanctionName(c.Sanction)
		}
		r := Row{Cells: []Cell{{Text: rq.Person(c.SubjectUsername), Href: "/accountability/" + c.ID}, grade,
			{Text: rq.criterionName(c.Criterion)}, {Text: rq.T("case.status." + c.Status)}, sanction, {}, {},
			{Text: rq.Person(c.OpenedBy)}, rq.TimeCell(c.OpenedAt)}}
		if d := nearestDeadline(rq.deadlineRows(c.Deadlines)); d != nil {
			r.Cells[5], r.Cells[6] = Cell{Text: d.Name}, Cell{Text: d.Countdown, Class: "nowrap"}
			if d.State == incidents.Overdue {
				r.Cells[6] = tagCell(d.Countdown, "bad overdue")
				r.Class = "flag"
			}
		}
		rows = append(rows, r)
	}
	g, handled, err := rq.Grid("cases", cols, rows, GridOptions{DefaultSort: "opened_at", DefaultDesc: true, Capped: next != "",
		Export: "cases", Empty: "cases.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "cases", "cases.title", v)
}

type candidatesView struct {
	Grid     *Grid
	Staff    []option
	Criteria []criterionOption
	Form     map[string]string
	Error    *formError
}

// candidateDays is how far back the candidates look.
const candidateDays = 30

func candidatesPage(rq *Request) error {
	// A candidate's "立案" link fills the form in: the person, the
	// criterion and the entries (no patient data).
	q := rq.URL.Query()
	form := map[string]string{}
	for _, k := range []string{"subject", "criterion", "evidence"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" && len(v) <= 4000 {
			form[k] = v
		}
	}
	return renderCandidates(rq, http.StatusOK, form, nil)
}

func renderCandidates(rq *Request, status int, form map[string]string, fe *formError) error {
	to := rq.Deps.Clock.Now().Add(time.Millisecond)
	cs, err := rq.Deps.Incidents.Candidates(rq.Context(), rq.Call, to.AddDate(0, 0, -candidateDays), to)
	if err != nil {
		return err
	}
	v := candidatesView{Criteria: rq.criterionOptions(incidents.CaseCriteria), Form: form, Error: fe, Staff: rq.staffOptions()}
	cols := []Column{{Key: "kind", Title: "cases.candidate.kind", Sort: true}, {Key: "grade", Title: "cases.col.grade", Sort: true},
		{Key: "who", Title: "cases.candidate.who", Sort: true},
		{Key: "detail", Title: "cases.candidate.detail", Sort: true}, {Key: "when", Title: "cases.candidate.when", Sort: true},
		{Key: "entries", Title: "cases.candidate.evidence"}, {Key: "open", Title: "cases.open"}}
	rows := make([]Row, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, rq.candidateRow(c))
	}
	if rq.Method == http.MethodPost {
		u := *rq.URL
		u.Path, u.RawQuery = "/accountability/candidates", ""
		rq.URL = &u
	}
	g, handled, err := rq.Grid("candidates", cols, rows, GridOptions{DefaultSort: "grade", Export: "candidates",
		Empty: "cases.candidates.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(status, "candidates", "cases.candidates.title", v)
}

// maxEntryLinks is how many of a candidate's entries its row links.
const maxEntryLinks = 8

// candidateRow is a possible violation as a row: the person by name, the
// audit entries as links, and a link that opens a case from it.
func (rq *Request) candidateRow(c incidents.Candidate) Row {
	who := Cell{}
	switch {
	case c.Username != "" && c.Role == "discharged":
		who.Text = rq.T("cases.candidate.discharged_by", rq.Person(c.Username))
	case c.Username != "":
		who.Text = rq.Person(c.Username)
	case c.Department != "":
		who.Text = rq.T("cases.candidate.department_only", rq.Dept(c.Department))
	default:
		who.Text = rq.T("cases.candidate.nobody")
	}
	grade := tagCell(rq.T("cases.grade", c.Grade), "")
	grade.Sort = fmt.Sprint(c.Grade)
	var detail string
	var sortDetail string
	switch c.Kind {
	case "late_archiving":
		detail = rq.T("cases.candidate.hours_late", c.HoursLate)
		sortDetail = fmt.Sprintf("%010d", c.HoursLate)
	default:
		detail = rq.T("cases.candidate.count", c.Count)
		if c.BreakGlass > 0 {
			detail += rq.T("cases.candidate.break_glass", c.BreakGlass)
		}
		sortDetail = fmt.Sprintf("%010d", c.Count)
	}
	when := Cell{}
	if c.FirstAt != nil && c.LastAt != nil {
		// Within the last 30 days: month, day and time say it.
		short := func(t time.Time) string { return t.In(rq.c.zone).Format("01-02 15:04") }
		when = rq.TimeCell(*c.LastAt)
		when.Text = short(*c.LastAt)
		if first := short(*c.FirstAt); first != when.Text {
			when.Text = rq.T("cases.candidate.period", first, when.Text)
		}
	}
	idx := make([]string, len(c.AuditIndexes))
	var links []string
	for i, n := range c.AuditIndexes {
		idx[i] = fmt.Sprint(n)
		if i < maxEntryLinks {
			links = append(links, `<a href="/audit/entries/`+idx[i]+`">#`+idx[i]+`</a>`)
		}
	}
	entries := Cell{Text: strings.Join(idx, " ")}
	if len(links) > 0 {
		h := strings.Join(links, " ")
		if more := len(idx) - len(links); more > 0 {
			h += " " + template.HTMLEscapeString(rq.T("cases.candidate.more", more))
		}
		entries.HTML = template.HTML(h)
	}
	if c.Kind == "late_archiving" && idPath(c.PatientID) != "" {
		trailLink := `<a href="/patients/` + c.PatientID + `/audit">` + template.HTMLEscapeString(rq.T("audit.patient_trail")) + `</a>`
		if entries.HTML != "" {
			entries.HTML += " · "
		}
		entries.HTML += template.HTML(trailLink)
	}
	q := url.Values{"criterion": {c.Kind}}
	if c.Username != "" {
		q.Set("subject", c.Username)
	}
	if len(idx) > 0 {
		q.Set("evidence", strings.Join(idx, ","))
	}
	open := Cell{Text: rq.T("cases.open"), Href: "/accountability/candidates?" + q.Encode() + "#case-form", Class: "nowrap"}
	return Row{Cells: []Cell{{Text: rq.criterionName(c.Kind)}, grade, who,
		{Text: detail, Sort: sortDetail}, when, entries, open}}
}

// userIDOf resolves the person a case is about: an id, a username, or a
// name that only one member of staff has, looked up in the user list
// (which the case managers may read).
func userIDOf(rq *Request, who string) (string, error) {
	if medguard.ValidID(who) || who == "" {
		return who, nil
	}
	after := ""
	var byName []string // the ids of those whose name it is
	for range 50 {
		us, next, err := rq.Deps.Identity.ListUsers(rq.Context(), rq.Call, after, 200)
		if err != nil {
			return "", err
		}
		for _, u := range us {
			if u.Username == who {
				return u.ID, nil
			}
			if u.DisplayName == who {
				byName = append(byName, u.ID)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(byName) == 1 {
		return byName[0], nil
	}
	return "", medguard.InvalidField("subject_user_id", "no user has this name")
}

func openCase(rq *Request) error {
	form := map[string]string{}
	for _, k := range []string{"subject", "grade", "criterion", "summary", "evidence"} {
		form[k] = rq.form(k)
	}
	fail := func(err error) error {
		if fe, ok := rq.asFormError(err, "cases.error.open"); ok {
			return renderCandidates(rq, http.StatusUnprocessableEntity, form, fe)
		}
		return err
	}
	grade, err := gradeValue(form["grade"])
	if err != nil {
		return fail(err)
	}
	var idx []uint64
	if form["evidence"] != "" {
		if idx, err = indexList("evidence_indexes", form["evidence"]); err != nil {
			return fail(err)
		}
	}
	subject, err := userIDOf(rq, form["subject"])
	if err != nil {
		return fail(err)
	}
	c, err := rq.Deps.Incidents.OpenCase(rq.Context(), rq.Call, incidents.NewCase{SubjectUserID: subject, Grade: grade,
		Criterion: form["criterion"], Summary: form["summary"], EvidenceIndexes: idx})
	if err != nil {
		return fail(err)
	}
	return rq.Redirect("/accountability/"+c.ID, "case_opened")
}

type caseView struct {
	Case          *incidents.Case
	Subject       string
	OpenedBy      string
	CriterionName string
	Deadlines     []deadlineRow
	Manage        bool // the caller manages cases
	IsSubject     bool // the caller is the person concerned
	AppealOpen    bool
	Error         *formError
	// The handling opinion (issue 13): whether it may be given now, the
	// sanctions, the one given and the one proposed, the earlier
	// offences that make it a repeat, the retraining a warning orders.
	OpinionOpen       bool
	Sanctions         []option
	SanctionName      string
	ProposalSanction  string
	ProposalName      string
	ProposalGrade     int
	Repeat            bool
	Prior             []priorRow
	RetrainingPending bool
}

// priorRow is an earlier offence the proposal weighs.
type priorRow struct {
	incidents.PriorOffence
	Sanction string
}

func casePage(rq *Request) error { return renderCase(rq, http.StatusOK, nil) }

func renderCase(rq *Request, status int, fe *formError) error {
	c, err := rq.Deps.Incidents.GetCase(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	v := caseView{Case: c, Subject: rq.Person(c.SubjectUsername), OpenedBy: rq.Person(c.OpenedBy),
		CriterionName: rq.criterionName(c.Criterion), Deadlines: rq.deadlineRows(c.Deadlines),
		Manage: rq.Can(policy.AccountabilityManage), IsSubject: c.SubjectUserID == rq.Call.Actor.ID, Error: fe,
		AppealOpen: c.Status == incidents.Decided && c.AppealDueAt != nil && now.Before(*c.AppealDueAt)}
	v.OpinionOpen = c.Status == incidents.Decided && c.Decision != nil && c.Decision.Outcome == incidents.Upheld && c.Opinion == nil
	v.Sanctions, v.SanctionName = rq.sanctionOptions(), rq.sanctionName(c.Sanction)
	if p := c.Proposal; p != nil {
		v.ProposalSanction, v.ProposalName, v.ProposalGrade, v.Repeat = p.Sanction, rq.sanctionName(p.Sanction), p.Grade, p.Repeat
		for _, o := range p.Prior {
			s := o.Sanction
			if s == "" {
				s = incidents.DefaultSanction(o.Grade)
			}
			v.Prior = append(v.Prior, priorRow{PriorOffence: o, Sanction: rq.sanctionName(s)})
		}
	}
	v.RetrainingPending = c.Sanction == incidents.SanctionWarning && c.RetrainingOrderedAt == nil
	return rq.Render(status, "case", "cases.detail.title", v)
}

// caseStep runs one step of a case from its page.
func caseStep(flash string, step func(rq *Request, id string) error) func(*Request) error {
	return func(rq *Request) error {
		id := rq.PathValue("id")
		if err := step(rq, id); err != nil {
			if fe, ok := rq.asFormError(err, "cases.error.step"); ok {
				return renderCase(rq, http.StatusUnprocessableEntity, fe)
			}
			return err
		}
		return rq.Redirect("/accountability/"+id, flash)
	}
}

func addFinding(rq *Request, id string) error {
	_, err := rq.Deps.Incidents.AddFinding(rq.Context(), rq.Call, id, rq.form("text"))
	return err
}

func caseStatement(rq *Request, id string) error {
	_, err := rq.Deps.Incidents.Statement(rq.Context(), rq.Call, id, rq.form("text"))
	return err
}

func caseAppeal(rq *Request, id string) error {
	_, err := rq.Deps.Incidents.Appeal(rq.Context(), rq.Call, id, rq.form("text"))
	return err
}

func decideCase(rq *Request, id string) error {
	g, err := gradeValue(rq.form("grade"))
	if err != nil {
		return err
	}
	_, err = rq.Deps.Incidents.Decide(rq.Context(), rq.Call, id, incidents.CaseDecision{Outcome: rq.form("outcome"), Grade: g,
		Text: rq.form("text")})
	return err
}

func reviewAppeal(rq *Request, id string) error {
	_, err := rq.Deps.Incidents.ReviewAppeal(rq.Context(), rq.Call, id, incidents.CaseReview{Outcome: rq.form("outcome"),
		Text: rq.form("text")})
	return err
}
