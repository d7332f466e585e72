package console

import (
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/datause"
	"medguard/internal/detect"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/partners"
	"medguard/internal/policy"
	"medguard/internal/training"
	"medguard/internal/vulns"
)

// Alerts (告警, SPEC §6) as a security officer scans them all day: a dense
// table (severity in words and colour, the rule and its explanation in
// words, the person by name, the account's current state) filtered by
// status, rule, severity, person and date, sorted by any column, exported
// and printed; several alerts acknowledged (or marked false positives, or
// escalated) with one POST; one alert's page, where it is escalated to an
// open incident picked from a list. Above the table, the frozen accounts
// (冻结账号) with the form that releases one, which asks the reason.

func init() {
	manage := []policy.Permission{policy.AlertManage}
	register(
		Page{Method: "GET", Path: "/alerts", Any: []policy.Permission{policy.AlertRead},
			Nav: &Nav{Key: "nav.alerts", Order: 40}, Handle: alertsPage},
		Page{Method: "GET", Path: "/alerts/{id}", Any: []policy.Permission{policy.AlertRead}, Handle: alertPage},
		Page{Method: "POST", Path: "/alerts/bulk", Any: manage, Handle: bulkAlerts},
		Page{Method: "POST", Path: "/alerts/{id}/acknowledge", Any: manage, Handle: alertStatus(detect.StatusAcknowledged, "alert_acknowledged")},
		Page{Method: "POST", Path: "/alerts/{id}/false-positive", Any: manage, Handle: alertStatus(detect.StatusFalsePositive, "alert_false_positive")},
		Page{Method: "POST", Path: "/alerts/{id}/escalate", Any: manage, Handle: alertStatus(detect.StatusEscalated, "alert_escalated")},
		Page{Method: "POST", Path: "/accounts/{id}/release", Any: []policy.Permission{policy.AccountRelease}, Handle: releaseAccount},
	)
}

// AlertStatuses are the alert states, in the order the filter shows them.
var AlertStatuses = []string{detect.StatusNew, detect.StatusAcknowledged, detect.StatusFalsePositive, detect.StatusEscalated}

// alertMoves are the states an alert in each state may move to.
var alertMoves = map[string][]string{
	detect.StatusNew:          {detect.StatusAcknowledged, detect.StatusFalsePositive, detect.StatusEscalated},
	detect.StatusAcknowledged: {detect.StatusFalsePositive, detect.StatusEscalated},
}

// freezeRow is a frozen account with the person and rule in words.
type freezeRow struct {
	identity.Freeze
	Person   string
	RuleName string
}

// alertFilter is the alerts list's filters as given.
type alertFilter struct {
	Status, Rule, Severity, Person, From, To string
}

// query is the filter as a URL query.
func (f alertFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "rule": f.Rule, "severity": f.Severity, "person": f.Person,
		"from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// incidentOption is an open incident to escalate to.
type incidentOption struct {
	ID, Text string
}

type alertsView struct {
	Filter     alertFilter
	Back       string // the list's query, for the forms to come back to
	Statuses   []option
	Rules      []option
	Severities []option
	Staff      []option
	Grid       *Grid
	Freezes    []freezeRow
	Incidents  []incidentOption
	CanManage  bool
	CanFree    bool
	Error      *formError
}

func alertsPage(rq *Request) error { return renderAlerts(rq, http.StatusOK, nil) }

// alertFilter reads and checks the list's filters; unknown values are
// dropped. The default status is new.
func (rq *Request) alertFilter(q url.Values) alertFilter {
	f := alertFilter{Status: q.Get("status"), Rule: q.Get("rule"), Severity: q.Get("severity"),
		Person: strings.TrimSpace(q.Get("person")), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	if !slices.Contains(AlertStatuses, f.Status) && f.Status != "all" {
		f.Status = detect.StatusNew
	}
	if !validName(f.Rule) {
		f.Rule = ""
	}
	if !slices.Contains(detect.Severities, f.Severity) {
		f.Severity = ""
	}
	if len(f.Person) > 64 {
		f.Person = ""
	}
	return f
}

func renderAlerts(rq *Request, status int, fe *formError) error {
	q := rq.URL.Query()
	if rq.Method == http.MethodPost {
		q, _ = url.ParseQuery(rq.PostFormValue("back"))
	}
	f := rq.alertFilter(q)
	v := alertsView{Filter: f, Back: f.query().Encode(), CanManage: rq.Can(policy.AlertManage), CanFree: rq.Can(policy.AccountRelease),
		Error: fe, Staff: rq.staffOptions()}
	for _, s := range append(slices.Clone(AlertStatuses), "all") {
		v.Statuses = append(v.Statuses, option{Value: s, Text: rq.T("alert.status." + s)})
	}
	for _, name := range rq.ruleNames() {
		v.Rules = append(v.Rules, option{Value: name, Text: rq.detectRule(name)})
	}
	for _, s := range detect.Severities {
		v.Severities = append(v.Severities, option{Value: s, Text: rq.T("severity." + s)})
	}
	from, err := rq.localTime("from", f.From, false)
	if err != nil && fe == nil {
		fe, status = &formError{Key: "alerts.error.period"}, http.StatusUnprocessableEntity
	}
	to, err := rq.localTime("to", f.To, true)
	if err != nil && fe == nil {
		fe, status = &formError{Key: "alerts.error.period"}, http.StatusUnprocessableEntity
	}
	v.Error = fe
	query := detect.AlertQuery{Status: f.Status, Rule: f.Rule, Severity: f.Severity, Username: f.Person, From: from, To: to,
		Limit: MaxRows}
	if f.Status == "all" {
		query.Status = ""
	}
	as, next, err := rq.Deps.Detect.Alerts(rq.Context(), rq.Call, query)
	if err != nil {
		return err
	}
	all, err := rq.Deps.Identity.Freezes(rq.Context(), rq.Call, false)
	if err != nil {
		return err
	}
	freezes := map[string]identity.Freeze{}
	for _, fz := range all {
		freezes[fz.ID] = fz
		if fz.ReleasedAt == nil {
			v.Freezes = append(v.Freezes, freezeRow{Freeze: fz, Person: rq.Person(fz.Username), RuleName: rq.ruleWords(fz.Rule)})
		}
	}
	manage := v.CanManage && !rq.print
	rows := make([]Row, 0, len(as))
	for _, a := range as {
		rows = append(rows, rq.alertRow(a, freezes, manage))
	}
	cols := []Column{{Key: "severity", Title: "alerts.col.severity", Sort: true}, {Key: "time", Title: "alerts.col.when", Sort: true},
		{Key: "rule", Title: "alerts.col.rule", Sort: true}, {Key: "user", Title: "alerts.col.user", Sort: true},
		{Key: "explanation", Title: "alerts.col.explanation"}, {Key: "status", Title: "alerts.col.status", Sort: true},
		{Key: "account", Title: "alerts.col.account", Sort: true}, {Key: "handled", Title: "alerts.updated_by", Sort: true}}
	if manage {
		cols = append(cols, Column{Key: "act", Title: "alerts.col.act"})
	}
	opts := GridOptions{DefaultSort: "time", DefaultDesc: true, Capped: next != "", Export: "alerts", Empty: "alerts.none"}
	if manage {
		opts.SelectName = "alert"
		if v.Incidents, err = rq.openIncidents(); err != nil {
			return err
		}
	}
	if rq.Method == http.MethodPost {
		// A refused form shows the list it came from: the grid's links
		// lead there, not to the form's address.
		u := *rq.URL
		u.Path, u.RawQuery = "/alerts", v.Back
		rq.URL = &u
	}
	g, handled, err := rq.Grid("alerts", cols, rows, opts)
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(status, "alerts", "alerts.title", v)
}

// ruleNames are the detection rules to filter by: the built-in ones and
// medguard's own notices.
func (rq *Request) ruleNames() []string {
	var out []string
	for _, r := range detect.DefaultRules() {
		out = append(out, r.Name)
	}
	out = append(out, detect.DeadlineOverdueRule, datause.OverdueRule, datause.ReconcileRule, partners.DeletionOverdueRule,
		vulns.OverdueRule)
	out = append(out, slices.Sorted(maps.Keys(noticeWords))...)
	out = append(out, noticeRules...)
	return append(out, registerAlertRules...)
}

// noticeWord says, for a notice a register raises, who or what the alert
// is about and why, in the page's language.
type noticeWord struct {
	Subject, Explain func(rq *Request, a detect.Alert) string
}

// noticeWords are the registers' notices by rule, added by their pages'
// files in init (inspections.go, media.go).
var noticeWords = map[string]noticeWord{}

// detectRule names a detection rule in words.
func (rq *Request) detectRule(name string) string {
	return rq.textOr("detect.rule."+name, rq.T("audit.rule.detect_other"))
}

// severityRank sorts severities, most severe first when descending.
func severityRank(s string) string {
	if i := slices.Index(detect.Severities, s); i >= 0 {
		return fmt.Sprint(i)
	}
	return "1"
}

// alertRow is an alert as a row of the table.
func (rq *Request) alertRow(a detect.Alert, freezes map[string]identity.Freeze, manage bool) Row {
	sev := tagCell(rq.wordsOr("severity.", a.Severity), "sev sev-"+a.Severity)
	sev.Sort = severityRank(a.Severity)
	rule := Cell{Text: rq.detectRule(a.Rule), Href: "/alerts/" + a.ID}
	user := Cell{Text: rq.alertSubject(a)}
	if a.Rule == detect.DeadlineOverdueRule && idPath(a.Key) != "" {
		user.Href = "/incidents/" + a.Key
	} else if h := noticeHref(a); h != "" {
		user.Href = h
	}
	if href := rq.registerAlertHref(a); href != "" {
		user.Href = href
	}
	status := Cell{Text: rq.wordsOr("alert.status.", a.Status)}
	switch {
	case a.Status == detect.StatusNew:
		status.Class = "bad"
	case a.IncidentID != "" && idPath(a.IncidentID) != "":
		status.Href = "/incidents/" + a.IncidentID
	}
	account := rq.accountState(a, freezes)
	handled := Cell{}
	if a.Status != detect.StatusNew && a.UpdatedBy != "" {
		handled.Text = rq.Person(a.UpdatedBy)
	}
	cells := []Cell{sev, rq.TimeCell(a.TriggerAt), rule, user, {Text: rq.alertExplanation(a)}, status, account, handled}
	r := Row{Cells: cells}
	if manage {
		if moves := alertMoves[a.Status]; len(moves) > 0 {
			r.Select = a.ID
			if slices.Contains(moves, detect.StatusAcknowledged) {
				r.Cells = append(r.Cells, Cell{HTML: template.HTML(`<button type="submit" class="small" formaction="/alerts/` +
					template.HTMLEscapeString(a.ID) + `/acknowledge">` + template.HTMLEscapeString(rq.T("alerts.acknowledge")) + `</button>`)})
			} else {
				r.Cells = append(r.Cells, Cell{HTML: template.HTML(`<a href="/alerts/` + template.HTMLEscapeString(a.ID) + `">` +
					template.HTMLEscapeString(rq.T("alerts.handle")) + `</a>`)})
			}
		} else {
			r.Cells = append(r.Cells, Cell{})
		}
	}
	if a.Severity == detect.SeverityHigh || a.Severity == detect.SeverityCritical {
		r.Class = "flag"
	}
	return r
}

// tagCell is a cell shown as a tag (and exported as its text).
func tagCell(text, class string) Cell {
	if text == "" {
		return Cell{}
	}
	return Cell{Text: text, HTML: template.HTML(`<span class="tag ` + template.HTMLEscapeString(class) + `">` +
		template.HTMLEscapeString(text) + `</span>`)}
}

// ruleKeys are the built-in rules' keys (user, IP, user and patient).
var ruleKeys = func() map[string]string {
	m := map[string]string{}
	for _, r := range detect.DefaultRules() {
		m[r.Name] = r.Key
	}
	return m
}()

// alertSubject names who or what an alert is about: a member of staff by
// name, an address, or — for an incident's overdue deadline — the
// incident.
func (rq *Request) alertSubject(a detect.Alert) string {
	if w, ok := noticeWords[a.Rule]; ok {
		return w.Subject(rq, a)
	}
	if who, ok := rq.registerAlertSubject(a); ok {
		return who
	}
	switch {
	case a.Rule == detect.DeadlineOverdueRule:
		return rq.T("alerts.subject.incident")
	case noticeSubject(a) != "":
		return rq.T(noticeSubject(a))
	case ruleKeys[a.Rule] == detect.ByIP:
		return rq.T("alerts.subject.address", a.Key)
	case a.Username != "" && a.Username != "system":
		return rq.Person(a.Username)
	case a.Key != "":
		return a.Key
	}
	return ""
}

// accountState says whether the alert froze the account and, if so,
// whether the account is frozen still: a released account is shown
// released, whatever the alert recorded at the time.
func (rq *Request) accountState(a detect.Alert, freezes map[string]identity.Freeze) Cell {
	if a.FreezeID == "" {
		return Cell{}
	}
	if f, ok := freezes[a.FreezeID]; ok && f.ReleasedAt != nil {
		c := tagCell(rq.T("alerts.released"), "ok")
		c.Title = rq.T("alerts.released_by", rq.Person(f.ReleasedBy), rq.localText(*f.ReleasedAt))
		return c
	}
	return tagCell(rq.T("alerts.froze"), "bad")
}

// overduePattern reads the deadline out of an overdue notice's
// explanation ("… deadline <name> was due …").
var overduePattern = regexp.MustCompile(`deadline ([a-z_]+) was due`)

// folderPattern reads the barcode out of an overdue folder's explanation
// ("paper folder <barcode> (loan …").
var folderPattern = regexp.MustCompile(`paper folder ([A-Za-z0-9-]+) `)

// vulnSeverityPattern reads the severity out of an overdue
// vulnerability's explanation ("vulnerability <id> (critical) of …").
var vulnSeverityPattern = regexp.MustCompile(`\((critical|high|medium|low)\) of asset`)

// alertExplanation says why an alert was raised, in words, from what it
// counted: the person, how many in which window, the threshold.
func (rq *Request) alertExplanation(a detect.Alert) string {
	window := sayDuration(rq.c.catalog, rq.Lang, time.Duration(a.Window))
	who := rq.alertSubject(a)
	if w, ok := noticeWords[a.Rule]; ok {
		return w.Explain(rq, a)
	}
	if s, ok := rq.noticeExplanation(a); ok {
		return s
	}
	if why, ok := rq.registerAlertExplanation(a); ok {
		return why
	}
	switch a.Rule {
	case detect.DeadlineOverdueRule:
		name := rq.T("alerts.explain.some_deadline")
		if m := overduePattern.FindStringSubmatch(a.Explanation); m != nil {
			name = rq.textOr("deadline."+m[1], name)
		}
		return rq.T("alerts.explain.incident_deadline_overdue", name)
	case datause.OverdueRule:
		barcode := ""
		if m := folderPattern.FindStringSubmatch(a.Explanation); m != nil {
			barcode = m[1]
		}
		return rq.T("alerts.explain.folder_overdue", barcode)
	case partners.DeletionOverdueRule:
		return rq.T("alerts.explain.partner_deletion_overdue", a.Key)
	case datause.ReconcileRule:
		return rq.T("alerts.explain.paper_electronic_sync")
	case training.OverdueRule, training.FlaggedRule:
		return rq.T("alerts.explain."+a.Rule, rq.Person(a.Key))
	case training.AssessmentDueRule:
		return rq.T("alerts.explain."+a.Rule, a.Key)
	case vulns.OverdueRule:
		sev := rq.T("severity.other")
		if m := vulnSeverityPattern.FindStringSubmatch(a.Explanation); m != nil {
			sev = rq.T("severity." + m[1])
		}
		return rq.T("alerts.explain.vuln_overdue", sev)
	case "bulk_read_user", "bulk_read_ip", "repeat_patient", "off_hours_read", "cross_department_read", "new_relation",
		"repeated_denied", "failed_signin_ip", "bulk_export", "deactivated_signin", "baseline_deviation":
		return rq.T("alerts.explain."+a.Rule, who, window, a.Count, a.Threshold)
	}
	return rq.T("alerts.explain.other", who, window, a.Count, a.Threshold)
}

// openIncidents are the open incidents an alert may be escalated to,
// newest first.
func (rq *Request) openIncidents() ([]incidentOption, error) {
	items, _, err := rq.Deps.Incidents.List(rq.Context(), rq.Call, incidents.Open, "", 200)
	if hidden(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]incidentOption, 0, len(items))
	for i := range items {
		in := &items[i]
		out = append(out, incidentOption{ID: in.ID, Text: rq.T("alerts.incident_option", rq.incidentTitle(in), in.Grade,
			rq.localText(in.ReportedAt))})
	}
	return out, nil
}

// localText is a time in the hospital's zone, to the minute.
func (rq *Request) localText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(rq.c.zone).Format("2006-01-02 15:04")
}

// ---- One alert ----

type alertView struct {
	Alert       detect.Alert
	Severity    string
	Rule        string
	Subject     string
	Explanation string
	Status      string
	Window      string
	Account     Cell
	UpdatedBy   string
	Incident    string // the title of its incident
	Moves       []string
	FormAction  string // the form's default: the first move
	Incidents   []incidentOption
	CanManage   bool
	Error       *formError
}

func alertPage(rq *Request) error { return renderAlert(rq, http.StatusOK, nil) }

func renderAlert(rq *Request, status int, fe *formError) error {
	a, err := rq.Deps.Detect.Alert(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	freezes := map[string]identity.Freeze{}
	if a.FreezeID != "" {
		all, err := rq.Deps.Identity.Freezes(rq.Context(), rq.Call, false)
		if err != nil {
			return err
		}
		for _, f := range all {
			freezes[f.ID] = f
		}
	}
	v := alertView{Alert: a, Severity: rq.wordsOr("severity.", a.Severity), Rule: rq.detectRule(a.Rule), Subject: rq.alertSubject(a),
		Explanation: rq.alertExplanation(a), Status: rq.wordsOr("alert.status.", a.Status),
		Window: sayDuration(rq.c.catalog, rq.Lang, time.Duration(a.Window)), Account: rq.accountState(a, freezes),
		CanManage: rq.Can(policy.AlertManage), Error: fe}
	if a.UpdatedBy != "" && a.Status != detect.StatusNew {
		v.UpdatedBy = rq.Person(a.UpdatedBy)
	}
	if v.CanManage {
		v.Moves = alertMoves[a.Status]
		if len(v.Moves) > 0 {
			v.FormAction = "/alerts/" + a.ID + "/" + map[string]string{detect.StatusAcknowledged: "acknowledge",
				detect.StatusFalsePositive: "false-positive", detect.StatusEscalated: "escalate"}[v.Moves[0]]
		}
		if slices.Contains(v.Moves, detect.StatusEscalated) {
			if v.Incidents, err = rq.openIncidents(); err != nil {
				return err
			}
		}
	}
	if a.IncidentID != "" {
		v.Incident = a.IncidentID
		if in, err := rq.Deps.Incidents.Get(rq.Context(), rq.Call, a.IncidentID); err == nil {
			v.Incident = rq.incidentTitle(in)
		} else if !hidden(err) && !medguard.IsKind(err, medguard.NotFound) {
			return err
		}
	}
	return rq.Render(status, "alert", "alerts.detail.title", v)
}

// alertStatus moves an alert to status; an escalation may name the
// incident it went to, picked from the open ones.
func alertStatus(status, flash string) func(*Request) error {
	return func(rq *Request) error {
		incident := ""
		back := func(fe *formError) error {
			if rq.PostFormValue("from_alert") != "" {
				return renderAlert(rq, http.StatusUnprocessableEntity, fe)
			}
			return renderAlerts(rq, http.StatusUnprocessableEntity, fe)
		}
		if status == detect.StatusEscalated {
			incident = rq.form("incident_id")
			if incident != "" && idPath(incident) == "" {
				return back(&formError{Key: "alerts.error.incident"})
			}
		}
		if _, err := rq.Deps.Detect.SetStatus(rq.Context(), rq.Call, rq.PathValue("id"), status, incident); err != nil {
			if fe, ok := rq.asFormError(err, "alerts.error.status"); ok {
				return back(fe)
			}
			return err
		}
		if rq.PostFormValue("from_alert") != "" {
			return rq.Redirect("/alerts/"+rq.PathValue("id"), flash)
		}
		return rq.Redirect(alertsBack(rq), flash)
	}
}

// alertsBack is the alerts page with the filters the form came from.
func alertsBack(rq *Request) string {
	q, _ := url.ParseQuery(rq.PostFormValue("back"))
	// The legacy fields of the list's forms.
	if s := rq.PostFormValue("back_status"); s != "" {
		q.Set("status", s)
	}
	if r := rq.PostFormValue("back_rule"); r != "" {
		q.Set("rule", r)
	}
	f := rq.alertFilter(q)
	if e := f.query().Encode(); e != "" {
		return "/alerts?" + e
	}
	return "/alerts"
}

// bulkMoves are the moves the list's bulk form offers.
var bulkMoves = map[string]string{"acknowledge": detect.StatusAcknowledged, "false_positive": detect.StatusFalsePositive,
	"escalate": detect.StatusEscalated}

// bulkAlerts moves the alerts ticked in the list: each is its own state
// change, decided and logged; an alert that moved meanwhile is left as it
// is and the page says so.
func bulkAlerts(rq *Request) error {
	status, ok := bulkMoves[rq.form("do")]
	if !ok {
		return renderAlerts(rq, http.StatusUnprocessableEntity, &formError{Key: "alerts.error.bulk"})
	}
	ids := rq.PostForm["alert"]
	if len(ids) == 0 {
		return rq.Redirect(alertsBack(rq), "alerts_none_selected")
	}
	if len(ids) > MaxRows {
		return renderAlerts(rq, http.StatusUnprocessableEntity, &formError{Key: "alerts.error.bulk"})
	}
	incident := ""
	if status == detect.StatusEscalated {
		incident = rq.form("incident_id")
		if incident != "" && idPath(incident) == "" {
			return renderAlerts(rq, http.StatusUnprocessableEntity, &formError{Key: "alerts.error.incident"})
		}
	}
	skipped := 0
	for _, id := range ids {
		if idPath(id) == "" {
			skipped++
			continue
		}
		if _, err := rq.Deps.Detect.SetStatus(rq.Context(), rq.Call, id, status, incident); err != nil {
			if medguard.IsKind(err, medguard.Conflict) || medguard.IsKind(err, medguard.NotFound) {
				skipped++
				continue
			}
			if fe, ok := rq.asFormError(err, "alerts.error.status"); ok {
				return renderAlerts(rq, http.StatusUnprocessableEntity, fe)
			}
			return err
		}
	}
	flash := "alerts_bulk_" + rq.form("do")
	if skipped > 0 {
		flash = "alerts_bulk_partial"
	}
	return rq.Redirect(alertsBack(rq), flash)
}

// validName accepts a detection rule's name (lower-case letters, digits, _).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func releaseAccount(rq *Request) error {
	if err := rq.Deps.Identity.ReleaseAccount(rq.Context(), rq.Call, rq.PathValue("id"), rq.form("reason")); err != nil {
		if fe, ok := rq.asFormError(err, "alerts.error.release"); ok {
			return renderAlerts(rq, http.StatusUnprocessableEntity, fe)
		}
		return err
	}
	return rq.Redirect("/alerts", "account_released")
}
