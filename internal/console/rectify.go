package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/detect"
	"medguard/internal/policy"
	"medguard/internal/rectify"
)

// The rectification register (整改) and the quarterly compliance check
// (季度合规检查, issue 14): the register as a grid with its filters and
// CSV; an item's page with its history, its evidence and the actions the
// reader may take (the owner's start and done, the verification or
// reopening, the assignment); the import of a third-party audit report;
// the monthly review; the quarterly runs and a run's page, with the
// auditor's forms and, for a department head, their department's results.
// The service decides and logs; these pages only show and post.

func init() {
	read := []policy.Permission{policy.RectificationRead, policy.RectificationReadDepartment}
	manage := []policy.Permission{policy.RectificationManage}
	verify := []policy.Permission{policy.RectificationVerify}
	quarterly := []policy.Permission{policy.ComplianceRead, policy.ComplianceQuarterly, policy.ComplianceQuarterlyResults}
	register(
		Page{Method: "GET", Path: "/rectifications", Any: read, Nav: &Nav{Key: "nav.rectifications", Order: 63}, Handle: rectificationsPage},
		// An owner without the register's permissions reaches their own
		// items here (the dashboard and their home link to it).
		Page{Method: "GET", Path: "/rectifications/mine", Handle: rectificationsPage},
		Page{Method: "POST", Path: "/rectifications", Any: manage, Handle: createRectification},
		Page{Method: "GET", Path: "/rectifications/import", Any: manage, Handle: rectificationImportPage},
		Page{Method: "POST", Path: "/rectifications/import", Any: manage, MaxForm: 4<<20 + 64<<10, Handle: importRectifications},
		Page{Method: "GET", Path: "/rectifications/monthly", Any: []policy.Permission{policy.RectificationRead}, Handle: rectificationMonthlyPage},
		Page{Method: "POST", Path: "/rectifications/monthly", Any: []policy.Permission{policy.RectificationReview}, Handle: recordRectificationReview},
		Page{Method: "GET", Path: "/rectifications/{id}", Handle: rectificationPage},
		Page{Method: "GET", Path: "/rectifications/{id}/evidence/{seq}", Handle: rectificationEvidence},
		Page{Method: "POST", Path: "/rectifications/{id}/assign", Any: manage, Handle: assignRectification},
		Page{Method: "POST", Path: "/rectifications/{id}/start", Handle: rectificationProgress(false)},
		Page{Method: "POST", Path: "/rectifications/{id}/done", MaxForm: 700<<10 + 64<<10, Handle: rectificationProgress(true)},
		Page{Method: "POST", Path: "/rectifications/{id}/verify", Any: verify, Handle: rectificationDecision(true)},
		Page{Method: "POST", Path: "/rectifications/{id}/reopen", Any: verify, Handle: rectificationDecision(false)},
		Page{Method: "GET", Path: "/compliance/quarterly", Any: quarterly, Nav: &Nav{Key: "nav.quarterly", Order: 64}, Handle: quarterlyRunsPage},
		Page{Method: "POST", Path: "/compliance/quarterly", Any: []policy.Permission{policy.ComplianceQuarterly}, Handle: startQuarterlyRun},
		Page{Method: "GET", Path: "/compliance/quarterly/{id}", Any: quarterly, Handle: quarterlyRunPage},
		Page{Method: "POST", Path: "/compliance/quarterly/{id}/findings", Any: []policy.Permission{policy.ComplianceQuarterly}, Handle: recordQuarterlyFinding},
		Page{Method: "POST", Path: "/compliance/quarterly/{id}/publish", Any: []policy.Permission{policy.ComplianceQuarterly}, Handle: publishQuarterlyRun},
	)
	noticeWords[rectify.OverdueRule] = noticeWord{
		Subject: func(rq *Request, a detect.Alert) string { return rq.T("alerts.subject.rectification") },
		Explain: func(rq *Request, a detect.Alert) string {
			due := ""
			if m := dueAtPattern.FindStringSubmatch(a.Explanation); m != nil {
				if t, err := time.Parse(time.RFC3339, m[1]); err == nil {
					due = rq.localText(t)
				}
			}
			return rq.T("alerts.explain.rectification_overdue", due)
		},
	}
}

// rectifyFilters are the register's filters, from the query.
type rectifyFilters struct {
	Kind, Status, Severity, Department string
	Overdue, Open                      bool
}

func pick(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return ""
}

type rectificationsView struct {
	Grid      *Grid
	Filters   rectifyFilters
	Filtered  bool
	Mine      bool
	CanManage bool
	CanRead   bool
	// CanQuarterly says the reader may open the quarterly checks.
	CanQuarterly bool
	Kinds        []string
	Severities   []string
	Statuses     []string
	Base         string
}

// severityCell is a severity as a coloured tag.
func (rq *Request) rectifySeverityCell(sev string) Cell {
	c := tagCell(rq.T("rectify.severity."+sev), "sev sev-"+sev)
	c.Sort = strconv.Itoa(slices.Index(rectify.Severities, sev))
	return c
}

// dueCell is an item's deadline, with the time left or overdue.
func (rq *Request) rectifyDueCell(it rectify.Item, now time.Time) Cell {
	c := rq.TimeCell(it.DueAt)
	if it.Status == rectify.Verified || it.Status == rectify.Done {
		return c
	}
	c.Text += " · " + rq.countdown(it.DueAt, now)
	if it.Overdue {
		c.Class += " bad overdue"
	}
	return c
}

// deptText names a department, or the hospital as a whole.
func (rq *Request) deptText(code string) string {
	if code == "" {
		return rq.T("rectify.hospital")
	}
	return rq.Dept(code)
}

// ownerText names an owner, or says nobody is assigned.
func (rq *Request) ownerText(username string) string {
	if username == "" {
		return rq.T("rectify.unassigned")
	}
	return rq.Person(username)
}

func rectificationsPage(rq *Request) error {
	q := rq.URL.Query()
	f := rectifyFilters{Kind: pick(q.Get("kind"), rectify.Kinds), Status: pick(q.Get("status"), rectify.Statuses),
		Severity: pick(q.Get("severity"), rectify.Severities), Overdue: q.Get("overdue") == "true", Open: q.Get("open") == "true"}
	if d := q.Get("department"); len(d) <= 32 {
		f.Department = d
	}
	mine := rq.URL.Path == "/rectifications/mine"
	query := rectify.Query{Kind: f.Kind, Status: f.Status, Severity: f.Severity, Department: f.Department, Overdue: f.Overdue,
		Open: f.Open, Limit: MaxRows}
	if mine {
		query.Owner = rq.Call.Actor.Name
	}
	list, next, err := rq.Deps.Rectify.ListItems(rq.Context(), rq.Call, query)
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	cols := []Column{
		{Key: "title", Title: "rectify.col.title", Sort: true},
		{Key: "kind", Title: "rectify.col.kind", Sort: true},
		{Key: "department", Title: "rectify.col.department", Sort: true},
		{Key: "owner", Title: "rectify.col.owner", Sort: true},
		{Key: "severity", Title: "rectify.col.severity", Sort: true},
		{Key: "status", Title: "rectify.col.status", Sort: true},
		{Key: "due", Title: "rectify.col.due", Sort: true},
	}
	var rows []Row
	for _, it := range list {
		st := Cell{Text: rq.T("rectify.status." + it.Status)}
		if it.Status == rectify.Reopened {
			st.Class = "bad"
		}
		row := Row{Cells: []Cell{
			{Text: it.Title, Href: "/rectifications/" + it.ID},
			{Text: rq.T("rectify.kind." + it.Kind)},
			{Text: rq.deptText(it.Department)},
			{Text: rq.ownerText(it.Owner)},
			rq.rectifySeverityCell(it.Severity),
			st,
			rq.rectifyDueCell(it, now),
		}}
		if it.Overdue {
			row.Class = "flag"
		}
		rows = append(rows, row)
	}
	g, handled, err := rq.Grid("rectifications", cols, rows, GridOptions{DefaultSort: "due", Capped: next != "",
		Export: "rectifications", Empty: "rectify.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v := rectificationsView{Grid: g, Filters: f, Filtered: f != rectifyFilters{}, Mine: mine, CanManage: rq.Can(policy.RectificationManage),
		CanRead: rq.Can(policy.RectificationRead), CanQuarterly: canQuarterly(rq), Kinds: rectify.Kinds, Severities: rectify.Severities, Statuses: rectify.Statuses,
		Base: rq.URL.Path}
	return rq.Render(http.StatusOK, "rectifications", "rectify.title", v)
}

func createRectification(rq *Request) error {
	due, err := rq.dateForm("due_at")
	if err != nil {
		return err
	}
	it, err := rq.Deps.Rectify.CreateItem(rq.Context(), rq.Call, rectify.NewItem{Kind: rq.form("kind"), Ref: rq.form("ref"),
		Title: rq.form("title"), Clauses: splitClauses(rq.form("clauses")), Department: rq.form("department"), Owner: rq.form("owner"),
		Severity: rq.form("severity"), DueAt: due, Description: rq.PostFormValue("description"), Auditor: rq.form("auditor")})
	if err != nil {
		return err
	}
	return rq.Redirect("/rectifications/"+it.ID, "rectification_created")
}

var clauseSeparators = regexp.MustCompile(`[;；、\n]+`)

func splitClauses(v string) []string {
	var out []string
	for _, c := range clauseSeparators.Split(v, -1) {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

type rectificationView struct {
	It *rectify.Item
	// List is the register's page the reader may open: the whole (or
	// their department's), or their own items.
	List       string
	Severity   Cell
	Countdown  string
	Owner      bool
	CanStart   bool
	CanDone    bool
	CanVerify  bool
	CanReopen  bool
	CanAssign  bool
	Severities []string
	History    []rectifyEventRow
	QuarterRun string
}

type rectifyEventRow struct {
	rectify.Event
	Kind string
}

func rectificationPage(rq *Request) error {
	it, err := rq.Deps.Rectify.GetItem(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	owner := it.Owner != "" && it.Owner == rq.Call.Actor.Name
	active := it.Status == rectify.Open || it.Status == rectify.Reopened || it.Status == rectify.InProgress
	v := rectificationView{It: it, Severity: rq.rectifySeverityCell(it.Severity), Owner: owner,
		CanStart: owner && (it.Status == rectify.Open || it.Status == rectify.Reopened), CanDone: owner && active,
		CanVerify: rq.Can(policy.RectificationVerify) && it.Status == rectify.Done && !owner && it.DoneBy != rq.Call.Actor.Name,
		CanReopen: rq.Can(policy.RectificationVerify) && (it.Status == rectify.Done || it.Status == rectify.Verified) && !owner,
		CanAssign: rq.Can(policy.RectificationManage) && it.Status != rectify.Verified, Severities: rectify.Severities,
		List: "/rectifications/mine"}
	if rq.Can(policy.RectificationRead) || rq.Can(policy.RectificationReadDepartment) {
		v.List = "/rectifications"
	}
	if active {
		v.Countdown = rq.countdown(it.DueAt, now)
	}
	if it.Kind == rectify.KindQuarterly && canQuarterly(rq) {
		if run, _, ok := cutRef(it.Ref); ok && medguard.ValidID(run) {
			v.QuarterRun = run
		}
	}
	for _, e := range it.History {
		v.History = append(v.History, rectifyEventRow{Event: e, Kind: rq.T("rectify.event." + e.Kind)})
	}
	return rq.Render(http.StatusOK, "rectification", "rectify.item_title", v)
}

// canQuarterly says the reader may open the quarterly checks.
func canQuarterly(rq *Request) bool {
	return rq.Can(policy.ComplianceRead) || rq.Can(policy.ComplianceQuarterly) || rq.Can(policy.ComplianceQuarterlyResults)
}

// cutRef splits a quarterly item's ref: run/department/item.
func cutRef(ref string) (run, rest string, ok bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:], true
		}
	}
	return "", "", false
}

func rectificationEvidence(rq *Request) error {
	seq, err := strconv.Atoi(rq.PathValue("seq"))
	if err != nil || seq < 1 {
		return medguard.InvalidField("seq", "seq must be an event's number")
	}
	name, content, err := rq.Deps.Rectify.Evidence(rq.Context(), rq.Call, rq.PathValue("id"), seq)
	if err != nil {
		return err
	}
	h := rq.W.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", "attachment; filename=\"evidence\"; filename*=UTF-8''"+url.PathEscape(name))
	h.Set("Content-Length", strconv.Itoa(len(content)))
	rq.W.WriteHeader(http.StatusOK)
	_, _ = rq.W.Write(content)
	return errHandled
}

func assignRectification(rq *Request) error {
	id := rq.PathValue("id")
	var ch rectify.ItemChanges
	if o := rq.form("owner"); o != "" {
		ch.Owner = &o
	}
	if s := rq.form("severity"); s != "" {
		ch.Severity = &s
	}
	if rq.form("due_at") != "" {
		due, err := rq.dateForm("due_at")
		if err != nil {
			return err
		}
		ch.DueAt = &due
	}
	ch.Note = rq.PostFormValue("note")
	if _, err := rq.Deps.Rectify.UpdateItem(rq.Context(), rq.Call, id, ch); err != nil {
		return err
	}
	return rq.Redirect("/rectifications/"+id, "rectification_assigned")
}

func rectificationProgress(done bool) func(*Request) error {
	return func(rq *Request) error {
		id := rq.PathValue("id")
		p := rectify.Progress{Note: rq.PostFormValue("note")}
		if done && rq.MultipartForm != nil && len(rq.MultipartForm.File["evidence"]) > 0 {
			b, err := uploaded(rq, "evidence")
			if err != nil {
				return err
			}
			p.Evidence, p.EvidenceName = b, rq.MultipartForm.File["evidence"][0].Filename
		}
		step, flash := rq.Deps.Rectify.Start, "rectification_started"
		if done {
			step, flash = rq.Deps.Rectify.MarkDone, "rectification_done"
		}
		if _, err := step(rq.Context(), rq.Call, id, p); err != nil {
			return err
		}
		return rq.Redirect("/rectifications/"+id, flash)
	}
}

func rectificationDecision(verify bool) func(*Request) error {
	return func(rq *Request) error {
		id := rq.PathValue("id")
		step, flash := rq.Deps.Rectify.Reopen, "rectification_reopened"
		if verify {
			step, flash = rq.Deps.Rectify.Verify, "rectification_verified"
		}
		if _, err := step(rq.Context(), rq.Call, id, rectify.Verification{Note: rq.PostFormValue("note")}); err != nil {
			return err
		}
		return rq.Redirect("/rectifications/"+id, flash)
	}
}

type rectificationImportView struct {
	Columns []importColumn
	Problem string
	Summary *rectify.ImportSummary
	Auditor string
	Report  string
}

type importColumn struct {
	Name, Headers string
	Required      bool
}

func renderRectificationImport(rq *Request, status int, sum *rectify.ImportSummary, problem string) error {
	v := rectificationImportView{Summary: sum, Problem: problem, Auditor: rq.form("auditor"), Report: rq.form("report")}
	for _, c := range rectify.CSVColumns {
		h := ""
		for i, x := range c.Headers {
			if i > 0 {
				h += "、"
			}
			h += x
		}
		v.Columns = append(v.Columns, importColumn{Name: c.Name, Headers: h, Required: c.Required})
	}
	return rq.Render(status, "rectification_import", "rectify.import_title", v)
}

func rectificationImportPage(rq *Request) error {
	return renderRectificationImport(rq, http.StatusOK, nil, "")
}

// importLine reads the line number out of an import's refusal.
var importLine = regexp.MustCompile(`^line (\d+)`)

func importRectifications(rq *Request) error {
	data, err := uploaded(rq, "file")
	if err == nil {
		var sum *rectify.ImportSummary
		sum, err = rq.Deps.Rectify.ImportReport(rq.Context(), rq.Call, rectify.Import{Auditor: rq.form("auditor"), Report: rq.form("report"),
			CSV: data})
		if err == nil {
			return renderRectificationImport(rq, http.StatusCreated, sum, "")
		}
	}
	var me *medguard.Error
	if !errors.As(err, &me) || (me.Kind != medguard.Invalid && me.Kind != medguard.Conflict && me.Kind != medguard.TooLarge) {
		return err
	}
	field := rq.textOr("rectify.field."+me.Field, me.Field)
	msg := rq.T("rectify.import_refused_field", field)
	if m := importLine.FindStringSubmatch(me.Message); m != nil {
		msg = rq.T("rectify.import_refused_line", m[1], field)
	}
	status := http.StatusUnprocessableEntity
	if me.Kind == medguard.Conflict {
		status, msg = http.StatusConflict, rq.T("rectify.import_conflict")
	}
	return renderRectificationImport(rq, status, nil, msg)
}

type monthlyView struct {
	Month     string
	Prev      string
	Next      string
	F         *rectify.MonthFigures
	Dept      []monthRow
	Source    []monthRow
	Reviews   []rectify.Review
	CanReview bool
}

type monthRow struct {
	Name string
	rectify.MonthCount
}

func rectificationMonthlyPage(rq *Request) error {
	month := rq.URL.Query().Get("month")
	if month == "" {
		month = rq.Deps.Clock.Now().In(rq.c.zone).Format("2006-01")
	}
	f, err := rq.Deps.Rectify.MonthlyProgress(rq.Context(), rq.Call, month)
	if err != nil {
		return err
	}
	reviews, err := rq.Deps.Rectify.ListReviews(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	t, _ := time.Parse("2006-01", month)
	v := monthlyView{Month: month, F: f, Prev: t.AddDate(0, -1, 0).Format("2006-01"), Next: t.AddDate(0, 1, 0).Format("2006-01"),
		CanReview: rq.Can(policy.RectificationReview)}
	for _, r := range f.ByDepartment {
		v.Dept = append(v.Dept, monthRow{Name: rq.deptText(r.Key), MonthCount: r.MonthCount})
	}
	for _, r := range f.BySource {
		v.Source = append(v.Source, monthRow{Name: rq.T("rectify.kind." + r.Key), MonthCount: r.MonthCount})
	}
	for _, r := range reviews {
		if r.Month == month {
			v.Reviews = append(v.Reviews, r)
		}
	}
	return rq.Render(http.StatusOK, "rectification_monthly", "rectify.monthly_title", v)
}

func recordRectificationReview(rq *Request) error {
	month := rq.form("month")
	if _, err := rq.Deps.Rectify.RecordReview(rq.Context(), rq.Call, rectify.NewReview{Month: month, Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/rectifications/monthly?"+url.Values{"month": {month}}.Encode(), "rectification_reviewed")
}

type quarterlyRunsView struct {
	Runs     []quarterlyRunRow
	CanStart bool
	Head     bool
	Quarter  string
}

type quarterlyRunRow struct {
	rectify.Run
	Sampled string
}

func (rq *Request) deptList(codes []string) string {
	out := ""
	for i, c := range codes {
		if i > 0 {
			out += "、"
		}
		out += rq.Dept(c)
	}
	return out
}

func quarterlyRunsPage(rq *Request) error {
	runs, err := rq.Deps.Rectify.ListRuns(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	v := quarterlyRunsView{CanStart: rq.Can(policy.ComplianceQuarterly),
		Head:    !rq.Can(policy.ComplianceRead) && !rq.Can(policy.ComplianceQuarterly),
		Quarter: rectify.QuarterOf(rq.Deps.Clock.Now(), rq.c.zone)}
	for _, r := range runs {
		v.Runs = append(v.Runs, quarterlyRunRow{Run: r, Sampled: rq.deptList(r.Sampled)})
	}
	return rq.Render(http.StatusOK, "quarterly_runs", "quarterly.title", v)
}

func startQuarterlyRun(rq *Request) error {
	in := rectify.NewRun{Quarter: rq.form("quarter")}
	if s := rq.form("seed"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return medguard.InvalidField("seed", "seed must be a whole number")
		}
		in.Seed = &n
	}
	run, err := rq.Deps.Rectify.StartRun(rq.Context(), rq.Call, in)
	if err != nil {
		return err
	}
	return rq.Redirect("/compliance/quarterly/"+run.ID, "quarterly_started")
}

type quarterlyRunView struct {
	Run        *rectify.Run
	Sampled    string
	Share      string
	Findings   []findingRow
	Items      []itemSummaryRow
	Failing    string
	CanRecord  bool
	CanPublish bool
	Head       bool
	Department string
}

type findingRow struct {
	rectify.Finding
	Dept, Title, Measured string
	MeasuredBad           bool
	Pending               bool
}

type itemSummaryRow struct {
	Title          string
	Passed, Failed int
}

func quarterlyRunPage(rq *Request) error {
	r, err := rq.Deps.Rectify.GetRun(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	whole := rq.Can(policy.ComplianceRead) || rq.Can(policy.ComplianceQuarterly)
	v := quarterlyRunView{Run: r, Sampled: rq.deptList(r.Sampled), Share: fmt.Sprintf("%.0f%%", r.SampledShare*100),
		Failing: rq.deptList(r.Summary.FailingDepartments), CanRecord: rq.Can(policy.ComplianceQuarterly) && r.Status == rectify.RunDraft,
		Head: !whole, Department: rq.Dept(rq.Call.Actor.Department)}
	v.CanPublish = v.CanRecord && r.Summary.Pending == 0
	for _, f := range r.Findings {
		row := findingRow{Finding: f, Dept: rq.Dept(f.Department), Title: rq.T("quarterly.item." + f.Item), Pending: f.Result == rectify.ResultPending}
		row.Measured = f.Measured
		// The item a failing finding opened is linked for those who may
		// open it (the register's readers; a head, their department's).
		if !rq.Can(policy.RectificationRead) && !rq.Can(policy.RectificationReadDepartment) {
			row.RectificationID = ""
		}
		if f.MeasuredPass == nil {
			row.Measured = rq.T("quarterly.not_measured")
		} else if !*f.MeasuredPass {
			row.MeasuredBad = true
		}
		v.Findings = append(v.Findings, row)
	}
	for _, s := range r.Summary.Items {
		v.Items = append(v.Items, itemSummaryRow{Title: rq.T("quarterly.item." + s.Item), Passed: s.Passed, Failed: s.Failed})
	}
	return rq.Render(http.StatusOK, "quarterly_run", "quarterly.run_title", v)
}

func recordQuarterlyFinding(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Rectify.RecordFinding(rq.Context(), rq.Call, id, rectify.FindingResult{Department: rq.form("department"),
		Item: rq.form("item"), Result: rq.form("result"), Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/compliance/quarterly/"+id, "quarterly_recorded")
}

func publishQuarterlyRun(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Rectify.Publish(rq.Context(), rq.Call, id); err != nil {
		return err
	}
	return rq.Redirect("/compliance/quarterly/"+id, "quarterly_published")
}

// RectifyTile is the dashboard's tile of the rectification register: the
// items not verified, those overdue and those waiting for verification —
// of the hospital to the register's readers, or (Mine) the caller's own
// items to an owner without the register's permissions.
type RectifyTile struct {
	Open, Overdue, Waiting int
	More, Mine             bool
}

// loadRectifyTile reads the tile: the hospital's to the register's
// readers; to anyone else the items they own, shown only when they own
// some not closed.
func loadRectifyTile(rq *Request) (*RectifyTile, error) {
	if rq.Deps.Rectify == nil {
		return nil, nil
	}
	mine := !rq.Can(policy.RectificationRead)
	items, next, err := rq.Deps.Rectify.ListItems(rq.Context(), rq.Call, rectify.Query{Open: true, Limit: 2000})
	if hidden(err) || mine && len(items) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t := &RectifyTile{Open: len(items), More: next != "", Mine: mine}
	for _, it := range items {
		if it.Overdue {
			t.Overdue++
		}
		if it.Status == rectify.Done {
			t.Waiting++
		}
	}
	return t, nil
}

// quarterlyNotice is a published quarterly check a department head has
// not read yet, on their home page.
type quarterlyNotice struct {
	ID, Quarter string
	Failed      int
}

func (rq *Request) quarterlyNotices() []quarterlyNotice {
	if rq.Deps.Rectify == nil || !rq.Can(policy.ComplianceQuarterlyResults) {
		return nil
	}
	runs, err := rq.Deps.Rectify.Notices(rq.Context(), rq.Call)
	if err != nil {
		return nil
	}
	var out []quarterlyNotice
	for _, r := range runs {
		out = append(out, quarterlyNotice{ID: r.ID, Quarter: r.Quarter, Failed: r.Summary.Failed})
	}
	return out
}
