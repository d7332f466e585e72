package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"medguard"
	"medguard/internal/incidents"
	"medguard/internal/policy"
)

// The anonymous reporting channel (举报) in the console.
//
// The reporter's pages live under /anonymous/ (Page.Anonymous): they read
// no session — a member of staff signed in elsewhere in the console is
// nobody here — and the front door keeps nothing of who asked. They are
// linked from the sign-in page and from the navigation of every signed-in
// member of staff. Filing shows the receipt code once (never in a URL);
// following up takes the code in a form (POST), shows the report and the
// office's answers, and takes more information.
//
// The security office's pages (/anonymous-reports, report.triage) list the
// reports (days only, no identity), show one with its messages, answer the
// reporter, open an incident or an accountability case from it, or close it.

func init() {
	triage := []policy.Permission{policy.ReportTriage}
	register(
		Page{Method: "GET", Path: "/anonymous/report", Anonymous: true, Public: true, Nav: &Nav{Key: "nav.anonymous_report", Order: 95},
			Handle: anonymousForm},
		Page{Method: "POST", Path: "/anonymous/report", Anonymous: true, Public: true, Handle: fileAnonymous},
		Page{Method: "GET", Path: "/anonymous/follow-up", Anonymous: true, Public: true, Handle: followUpForm},
		Page{Method: "POST", Path: "/anonymous/follow-up", Anonymous: true, Public: true, Handle: followUp},
		Page{Method: "POST", Path: "/anonymous/follow-up/add", Anonymous: true, Public: true, Handle: followUpAdd},
		// The language switch of the channel's pages, which reads no session.
		Page{Method: "GET", Path: "/anonymous/lang/{lang}", Anonymous: true, Public: true, Handle: switchLanguage},

		Page{Method: "GET", Path: "/anonymous-reports", Any: triage, Nav: &Nav{Key: "nav.anonymous_reports", Order: 56}, Handle: reportsPage},
		Page{Method: "GET", Path: "/anonymous-reports/{id}", Any: triage, Handle: reportPage},
		Page{Method: "POST", Path: "/anonymous-reports/{id}/reply", Any: triage, Handle: reportStep("report_answered", replyReport)},
		Page{Method: "POST", Path: "/anonymous-reports/{id}/incident", Any: triage, Handle: reportToIncident},
		Page{Method: "POST", Path: "/anonymous-reports/{id}/case", Any: triage, Handle: reportToCase},
		Page{Method: "POST", Path: "/anonymous-reports/{id}/close", Any: triage, Handle: reportStep("report_closed", closeReport)},
	)
}

// categoryName names a report's category in the page's language.
func (rq *Request) categoryName(code string) string {
	for _, c := range incidents.ReportCategories {
		if c.Code == code {
			if rq.Lang == "en" {
				return c.NameEN
			}
			return c.NameZH
		}
	}
	return code
}

func (rq *Request) categoryOptions() []option {
	out := make([]option, len(incidents.ReportCategories))
	for i, c := range incidents.ReportCategories {
		out[i] = option{Value: c.Code, Text: rq.categoryName(c.Code)}
	}
	return out
}

// anonymousView is the reporter's pages' data.
type anonymousView struct {
	Categories []option
	Form       map[string]string
	Receipt    *incidents.ReportReceipt
	// Report is a report followed up; Code the receipt code it was
	// followed with (kept in the page's forms, never in a URL).
	Report   *incidents.ReceiptView
	Code     string
	Category string
	Status   string
	Added    bool
	Error    *formError
}

func (rq *Request) renderAnonymous(status int, name string, v anonymousView) error {
	v.Categories = rq.categoryOptions()
	if v.Form == nil {
		v.Form = map[string]string{}
	}
	if v.Report != nil {
		v.Category, v.Status = rq.categoryName(v.Report.Category), rq.T("report.status."+v.Report.Status)
	}
	title := map[string]string{"anonymous_report": "anonymous.title", "anonymous_receipt": "anonymous.receipt.title",
		"anonymous_follow": "anonymous.follow.title"}[name]
	return rq.Render(status, name, title, v)
}

func anonymousForm(rq *Request) error {
	return rq.renderAnonymous(http.StatusOK, "anonymous_report", anonymousView{})
}

func fileAnonymous(rq *Request) error {
	form := map[string]string{"category": rq.form("category"), "text": rq.PostFormValue("text")}
	rc, err := rq.Deps.Incidents.FileAnonymous(rq.Context(), incidents.NewAnonymousReport{Category: form["category"], Text: form["text"]})
	if err != nil {
		if fe, ok := rq.asFormError(err, "anonymous.error"); ok {
			return rq.renderAnonymous(http.StatusUnprocessableEntity, "anonymous_report", anonymousView{Form: form, Error: fe})
		}
		return err
	}
	return rq.renderAnonymous(http.StatusOK, "anonymous_receipt", anonymousView{Receipt: rc})
}

func followUpForm(rq *Request) error {
	return rq.renderAnonymous(http.StatusOK, "anonymous_follow", anonymousView{})
}

func followUp(rq *Request) error {
	code := rq.form("receipt")
	v, err := rq.Deps.Incidents.ReceiptStatus(rq.Context(), code)
	if err != nil {
		if fe, ok := rq.receiptError(err); ok {
			return rq.renderAnonymous(http.StatusUnprocessableEntity, "anonymous_follow", anonymousView{Error: fe})
		}
		return err
	}
	return rq.renderAnonymous(http.StatusOK, "anonymous_follow", anonymousView{Report: v, Code: code})
}

func followUpAdd(rq *Request) error {
	code := rq.form("receipt")
	v, err := rq.Deps.Incidents.AddToReport(rq.Context(), code, rq.PostFormValue("text"))
	if err != nil {
		fe, ok := rq.receiptError(err)
		if !ok {
			return err
		}
		if cur, err := rq.Deps.Incidents.ReceiptStatus(rq.Context(), code); err == nil {
			return rq.renderAnonymous(http.StatusUnprocessableEntity, "anonymous_follow", anonymousView{Report: cur, Code: code, Error: fe})
		}
		return rq.renderAnonymous(http.StatusUnprocessableEntity, "anonymous_follow", anonymousView{Error: fe})
	}
	return rq.renderAnonymous(http.StatusOK, "anonymous_follow", anonymousView{Report: v, Code: code, Added: true})
}

// receiptError is a form error for what the reporter typed: a code that is
// none or names no report, a text refused, a closed report.
func (rq *Request) receiptError(err error) (*formError, bool) {
	if fe, ok := rq.asFormError(err, "anonymous.error"); ok {
		return fe, true
	}
	if medguard.IsKind(err, medguard.NotFound) {
		return &formError{Key: "anonymous.error.unknown"}, true
	}
	return nil, false
}

type reportsView struct {
	Status   string
	Statuses []option
	Grid     *Grid
}

func reportsPage(rq *Request) error {
	statuses := append([]string{"all"}, incidents.ReportStatuses...)
	st := statusFilter(rq.URL.Query().Get("status"), statuses...)
	items, next, err := rq.Deps.Incidents.ListReports(rq.Context(), rq.Call, st, "", MaxRows)
	if err != nil {
		return err
	}
	v := reportsView{Status: st}
	for _, s := range statuses {
		v.Statuses = append(v.Statuses, option{Value: s, Text: rq.T("report.status." + s)})
	}
	cols := []Column{{Key: "filed_on", Title: "reports.col.filed_on", Sort: true}, {Key: "category", Title: "reports.col.category", Sort: true},
		{Key: "status", Title: "reports.col.status", Sort: true}, {Key: "messages", Title: "reports.col.messages", Sort: true},
		{Key: "updated_on", Title: "reports.col.updated_on", Sort: true}, {Key: "outcome", Title: "reports.col.outcome"}}
	rows := make([]Row, 0, len(items))
	for _, r := range items {
		outcome := Cell{}
		switch {
		case r.IncidentID != "":
			outcome = Cell{Text: rq.T("reports.to_incident"), Href: "/incidents/" + r.IncidentID}
		case r.CaseID != "":
			outcome = Cell{Text: rq.T("reports.to_case"), Href: "/accountability/" + r.CaseID}
		}
		status := Cell{Text: rq.T("report.status." + r.Status)}
		row := Row{Cells: []Cell{{Text: r.FiledOn, Href: "/anonymous-reports/" + r.ID}, {Text: rq.categoryName(r.Category)}, status,
			{Text: strconv.Itoa(r.MessageCount), Sort: fmt.Sprintf("%06d", r.MessageCount)}, {Text: r.UpdatedOn}, outcome}}
		if r.Status == incidents.ReportNew {
			row.Class = "flag"
		}
		rows = append(rows, row)
	}
	g, handled, err := rq.Grid("anonymous-reports", cols, rows, GridOptions{DefaultSort: "filed_on", DefaultDesc: true,
		Capped: next != "", Export: "anonymous-reports", Empty: "reports.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "anonymous_reports", "reports.title", v)
}

type anonReportView struct {
	Report               *incidents.AnonymousReport
	Category             string
	Status               string
	Messages             []reportMessageRow
	Open                 bool
	CanIncident, CanCase bool
	Types                []option
	Criteria             []criterionOption
	Cases                []criterionOption
	Staff                []option
	Form                 map[string]string
	Error                *formError
}

type reportMessageRow struct {
	incidents.ReportMessage
	Who string
}

func reportPage(rq *Request) error { return renderReport(rq, http.StatusOK, nil, nil) }

func renderReport(rq *Request, status int, form map[string]string, fe *formError) error {
	r, err := rq.Deps.Incidents.GetReport(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	if form == nil {
		form = map[string]string{}
	}
	v := anonReportView{Report: r, Category: rq.categoryName(r.Category), Status: rq.T("report.status." + r.Status), Form: form, Error: fe,
		Open: r.Status == incidents.ReportNew || r.Status == incidents.ReportInReview, Types: rq.typeOptions(),
		Criteria: rq.criterionOptions(incidents.Criteria), Cases: rq.criterionOptions(incidents.CaseCriteria),
		CanIncident: rq.Can(policy.IncidentManage), CanCase: rq.Can(policy.AccountabilityManage)}
	if v.CanCase && v.Open {
		v.Staff = rq.staffOptions()
	}
	for _, m := range r.Messages {
		row := reportMessageRow{ReportMessage: m, Who: rq.T("reports.author.reporter")}
		if m.Author == incidents.AuthorOffice {
			row.Who = rq.Person(m.By)
		}
		v.Messages = append(v.Messages, row)
	}
	return rq.Render(status, "anonymous_report_triage", "reports.detail.title", v)
}

// reportStep runs one step of the office on a report from its page.
func reportStep(flash string, step func(rq *Request, id string) error) func(*Request) error {
	return func(rq *Request) error {
		id := rq.PathValue("id")
		if err := step(rq, id); err != nil {
			if fe, ok := rq.asFormError(err, "reports.error"); ok {
				return renderReport(rq, http.StatusUnprocessableEntity, nil, fe)
			}
			return err
		}
		return rq.Redirect("/anonymous-reports/"+id, flash)
	}
}

func replyReport(rq *Request, id string) error {
	_, err := rq.Deps.Incidents.ReplyReport(rq.Context(), rq.Call, id, rq.PostFormValue("text"))
	return err
}

func closeReport(rq *Request, id string) error {
	_, err := rq.Deps.Incidents.CloseReport(rq.Context(), rq.Call, id, rq.PostFormValue("reason"))
	return err
}

func reportToIncident(rq *Request) error {
	id := rq.PathValue("id")
	form := map[string]string{}
	for _, k := range []string{"title", "type", "grade", "criterion"} {
		form[k] = rq.form(k)
	}
	fail := func(err error) error {
		if fe, ok := rq.asFormError(err, "reports.error"); ok {
			return renderReport(rq, http.StatusUnprocessableEntity, form, fe)
		}
		return err
	}
	grade, err := gradeValue(form["grade"])
	if err != nil {
		return fail(err)
	}
	in, err := rq.Deps.Incidents.ReportToIncident(rq.Context(), rq.Call, id, incidents.NewIncident{Title: form["title"], Type: form["type"],
		Grade: grade, Criterion: form["criterion"]})
	if err != nil {
		return fail(err)
	}
	return rq.Redirect("/incidents/"+in.ID, "incident_reported")
}

func reportToCase(rq *Request) error {
	id := rq.PathValue("id")
	form := map[string]string{"subject": rq.form("subject"), "case_criterion": rq.form("criterion")}
	fail := func(err error) error {
		if fe, ok := rq.asFormError(err, "reports.error"); ok {
			return renderReport(rq, http.StatusUnprocessableEntity, form, fe)
		}
		return err
	}
	subject, err := userIDOf(rq, form["subject"])
	if err != nil {
		return fail(err)
	}
	if !slices.Contains(incidents.CaseCriterionCodes(), form["case_criterion"]) {
		form["case_criterion"] = ""
	}
	c, err := rq.Deps.Incidents.ReportToCase(rq.Context(), rq.Call, id, incidents.NewCase{SubjectUserID: subject,
		Criterion: rq.form("criterion")})
	if err != nil {
		return fail(err)
	}
	return rq.Redirect("/accountability/"+c.ID, "case_opened")
}
