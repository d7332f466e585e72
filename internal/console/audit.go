package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/trail"
)

// The audit log (SPEC §5) as auditors use it: finding a patient by what
// they bring to the desk — a name, a resident ID number or a 病案号, POSTed,
// never in a URL — and from there the patient's access report (患者访问记录,
// which names them: it is handed to them) and audit trail; the search of
// the log as a grid (by person, action, status and time, every code in
// words, CSV and print); the state of the log — its latest signed
// checkpoint and whether the signature verifies with the verifier key —
// and one entry with its inclusion proof verified here, on the server.
//
// A patient's trail and report are at /patients/{id}/audit and
// /patients/{id}/access-report: the id is opaque, and no search text
// reaches a URL.

func init() {
	read := []policy.Permission{policy.AuditRead}
	register(
		Page{Method: "GET", Path: "/audit", Any: read, Nav: &Nav{Key: "nav.audit", Order: 50}, Handle: auditPage},
		Page{Method: "POST", Path: "/audit", Any: read, Handle: auditSearchForm},
		Page{Method: "GET", Path: "/audit/search", Any: read, Handle: auditSearch},
		Page{Method: "POST", Path: "/audit/patients", Any: read, Handle: auditPatientLookup},
		Page{Method: "GET", Path: "/audit/entries/{index}", Any: read, Handle: auditEntry},
		Page{Method: "GET", Path: "/audit/verify", Any: read, Handle: auditVerifyForm},
		Page{Method: "POST", Path: "/audit/access-report", Any: read, Handle: accessReportForm},
		Page{Method: "GET", Path: "/patients/{id}/access-report", Any: read, Handle: accessReportPage},
		Page{Method: "GET", Path: "/patients/{id}/audit", Any: read, Handle: auditSearch},
	)
}

// LogState is the audit log's latest signed checkpoint and whether it
// verifies with the log's verifier key.
type LogState struct {
	Size     uint64
	Root     []byte
	SignedAt time.Time
	Verified bool
	Key      string // the note verifier key
}

// logState reads and verifies the latest checkpoint.
func logState(rq *Request) (*LogState, error) {
	cp, err := rq.Deps.Trail.Checkpoint(rq.Context(), rq.Call)
	if err != nil {
		return nil, err
	}
	key, err := rq.Deps.Trail.VerifierKey(rq.Context(), rq.Call)
	if err != nil {
		return nil, err
	}
	st := &LogState{Size: cp.Size, Root: cp.Root, SignedAt: cp.SignedAt, Key: key}
	if _, size, root, err := audit.OpenCheckpoint([]byte(cp.Note), key); err == nil && size == cp.Size {
		st.Verified, st.Root = true, root
	}
	return st, nil
}

// ---- Words for the log's codes ----

// actionWords says an audit action in words: 查阅病历 for record.read.
func (rq *Request) actionWords(code string) string {
	if rq.c.catalog.has("audit.action." + code) {
		return rq.T("audit.action." + code)
	}
	return rq.T("audit.action.other")
}

// ruleWords says the rule that decided an entry: a policy rule, a sign-in
// rule, medguard's own (allow.system.*), or a detection rule.
func (rq *Request) ruleWords(code string) string {
	switch {
	case code == "":
		return ""
	case rq.c.catalog.has("rule." + code):
		return rq.T("rule." + code)
	case rq.c.catalog.has("audit.rule." + code):
		return rq.T("audit.rule." + code)
	}
	if prefix, _, ok := strings.Cut(code, ":"); ok && rq.c.catalog.has("audit.rule."+prefix) {
		return rq.T("audit.rule." + prefix) // allow.four_eyes:<id>, allow.system.deadline:<name>
	}
	if name, ok := strings.CutPrefix(code, "detect."); ok {
		return rq.T("audit.rule.detect", rq.textOr("detect.rule."+name, rq.T("audit.rule.detect_other")))
	}
	if strings.HasPrefix(code, "allow.system.") {
		return rq.T("audit.rule.allow.system")
	}
	return rq.T("rule.unknown")
}

// wordsOr is the catalog text of prefix+code, or of prefix+"other".
func (rq *Request) wordsOr(prefix, code string) string {
	if code == "" {
		return ""
	}
	if rq.c.catalog.has(prefix + code) {
		return rq.T(prefix + code)
	}
	return rq.T(prefix + "other")
}

// roleWords says roles in words, joined.
func (rq *Request) roleWords(roles []string) string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		switch {
		case r == "api_key":
			out = append(out, rq.T("audit.role.api_key"))
		case rq.c.catalog.has("role." + r):
			out = append(out, rq.T("role."+r))
		default:
			out = append(out, rq.T("audit.role.other"))
		}
	}
	return strings.Join(out, rq.T("audit.list_sep"))
}

// purposeWords says a purpose of use in words.
func (rq *Request) purposeWords(code string) string {
	if code == "" {
		return rq.T("audit.purpose.none")
	}
	return rq.textOr("purpose."+code, rq.T("audit.purpose.other"))
}

// statusOf is an entry's status, as the trail counts it.
func statusOf(e audit.Fields) string {
	switch {
	case e.Decision == audit.Deny || e.Outcome == audit.Denied:
		return trail.StatusDenied
	case e.Outcome != audit.Success:
		return trail.StatusIncomplete
	}
	return trail.StatusCompleted
}

// ---- The audit page ----

// patientMatch is a patient found for an audit, in words.
type patientMatch struct {
	records.AuditMatch
	Gender      string
	Departments string
}

type auditView struct {
	Log     *LogState
	Lookup  string
	Matches []patientMatch
	Looked  bool
	Search  *searchForm
	Error   *formError
}

func auditPage(rq *Request) error { return renderAudit(rq, http.StatusOK, auditView{}) }

func renderAudit(rq *Request, status int, v auditView) error {
	st, err := logState(rq)
	if err != nil {
		return err
	}
	v.Log = st
	if v.Search == nil {
		v.Search = rq.newSearchForm(url.Values{}, "")
	}
	return rq.Render(status, "audit", "audit.title", v)
}

// auditPatientLookup finds a patient by name, resident ID number or 病案号
// (POSTed): each match links to the patient's report and trail.
func auditPatientLookup(rq *Request) error {
	return lookupPatients(rq, rq.form("q"))
}

func lookupPatients(rq *Request, text string) error {
	v := auditView{Lookup: text, Looked: true}
	ms, err := rq.Deps.Records.LookupForAudit(rq.Context(), rq.Call, text)
	if err != nil {
		fe, ok := rq.asFormError(err, "audit.error.lookup")
		if !ok {
			return err
		}
		v.Error = fe
		return renderAudit(rq, http.StatusUnprocessableEntity, v)
	}
	for _, m := range ms {
		pm := patientMatch{AuditMatch: m, Gender: rq.textOr("gender."+m.Gender, "")}
		names := make([]string, len(m.Departments))
		for i, d := range m.Departments {
			names[i] = rq.Dept(d)
		}
		pm.Departments = strings.Join(names, rq.T("audit.list_sep"))
		v.Matches = append(v.Matches, pm)
	}
	return renderAudit(rq, http.StatusOK, v)
}

// ---- The search ----

// searchForm is the audit search's filters as given, and the choices the
// form offers.
type searchForm struct {
	Action     string // the form's target
	Actor      string
	ActorName  string
	Act        string
	Status     string
	From, To   string
	Staff      []option
	Actions    []option
	Statuses   []option
	PatientID  string
	Searchable bool
}

// option is a choice of a select or datalist.
type option struct {
	Value, Text string
}

// newSearchForm reads the filters of a search (from a URL query).
func (rq *Request) newSearchForm(q url.Values, patientID string) *searchForm {
	f := &searchForm{Action: "/audit/search", Actor: strings.TrimSpace(q.Get("actor")), Act: q.Get("action"),
		Status: q.Get("status"), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), PatientID: patientID}
	if patientID != "" {
		f.Action = "/patients/" + patientID + "/audit"
	}
	if len(f.Actor) > 64 {
		f.Actor = f.Actor[:64]
	}
	if f.Actor != "" {
		f.ActorName = rq.Person(f.Actor)
	}
	f.Staff = rq.staffOptions()
	for _, code := range rq.actionCodes() {
		f.Actions = append(f.Actions, option{Value: code, Text: rq.actionWords(code)})
	}
	if !slices.ContainsFunc(f.Actions, func(o option) bool { return o.Value == f.Act }) {
		f.Act = ""
	}
	for _, s := range []string{trail.StatusCompleted, trail.StatusDenied, trail.StatusIncomplete} {
		f.Statuses = append(f.Statuses, option{Value: s, Text: rq.T("audit.status." + s)})
	}
	if !slices.ContainsFunc(f.Statuses, func(o option) bool { return o.Value == f.Status }) {
		f.Status = ""
	}
	return f
}

// query is the form as a URL query (for the results' links).
func (f *searchForm) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"actor": f.Actor, "action": f.Act, "status": f.Status, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// staffOptions are the members of staff, by department and name, for
// choosing a person.
func (rq *Request) staffOptions() []option {
	staff, _, err := rq.Deps.Identity.Directory(rq.Context())
	if err != nil {
		return nil
	}
	out := make([]option, 0, len(staff))
	for _, s := range staff {
		out = append(out, option{Value: s.Username, Text: rq.Person(s.Username)})
	}
	slices.SortStableFunc(out, func(a, b option) int { return strings.Compare(a.Text, b.Text) })
	return out
}

// actionCodes are the audit actions the catalog has words for, sorted.
func (rq *Request) actionCodes() []string {
	var out []string
	for k := range rq.c.catalog.msgs[Languages[0]] {
		if code, ok := strings.CutPrefix(k, "audit.action."); ok && code != "other" {
			out = append(out, code)
		}
	}
	slices.Sort(out)
	return out
}

// auditSearchForm takes the search form of earlier versions of the page
// (POST /audit): a patient id leads to the patient's trail, any other
// patient text to the lookup, the rest to the search.
func auditSearchForm(rq *Request) error {
	q := url.Values{}
	for _, k := range []string{"actor", "action", "status", "from", "to"} {
		if v := rq.form(k); v != "" {
			q.Set(k, v)
		}
	}
	target := "/audit/search"
	if p := rq.form("patient"); p != "" {
		if idPath(p) == "" {
			return lookupPatients(rq, p)
		}
		target = "/patients/" + p + "/audit"
	}
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	return rq.Redirect(target, "")
}

type auditResults struct {
	Form    *searchForm
	Grid    *Grid
	Patient string // the patient whose trail it is, or ""
	Error   *formError
}

// auditSearchRows is how many entries one search shows at most.
const auditSearchRows = MaxRows

func auditSearch(rq *Request) error {
	patient := ""
	if rq.page.Path == "/patients/{id}/audit" {
		if patient = idPath(rq.PathValue("id")); patient == "" {
			return &notFound
		}
	}
	f := rq.newSearchForm(rq.URL.Query(), patient)
	v := auditResults{Form: f, Patient: patient}
	fail := func(err error) error {
		fe, ok := rq.asFormError(err, "audit.error.query")
		if !ok {
			return err
		}
		v.Error = fe
		return rq.Render(http.StatusUnprocessableEntity, "audit_results", "audit.results.title", v)
	}
	from, err := rq.localTime("from", f.From, false)
	if err != nil {
		return fail(err)
	}
	to, err := rq.localTime("to", f.To, true)
	if err != nil {
		return fail(err)
	}
	var entries []trail.Entry
	var before uint64
	capped := false
	for len(entries) < auditSearchRows {
		es, next, err := rq.Deps.Trail.Search(rq.Context(), rq.Call, trail.Query{Actor: f.Actor, PatientID: patient,
			Action: f.Act, Status: f.Status, From: from, To: to, Before: before, Limit: min(audit.MaxEntries, auditSearchRows-len(entries))})
		if err != nil {
			return fail(err)
		}
		entries = append(entries, es...)
		if next == 0 {
			break
		}
		if len(entries) >= auditSearchRows {
			capped = true
		}
		before = next
	}
	cols := []Column{{Key: "index", Title: "audit.col.index", Sort: true, Num: true}, {Key: "time", Title: "audit.col.time", Sort: true},
		{Key: "actor", Title: "audit.col.actor", Sort: true}, {Key: "roles", Title: "audit.col.roles"},
		{Key: "action", Title: "audit.col.action", Sort: true}, {Key: "target", Title: "audit.col.target", Sort: true}}
	if patient == "" {
		cols = append(cols, Column{Key: "patient", Title: "audit.col.patient"})
	}
	cols = append(cols, Column{Key: "purpose", Title: "audit.col.purpose", Sort: true},
		Column{Key: "decision", Title: "audit.col.decision", Sort: true}, Column{Key: "outcome", Title: "audit.col.outcome", Sort: true},
		Column{Key: "ip", Title: "audit.entry.ip", Sort: true})
	rows := make([]Row, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, rq.auditRow(e, patient == ""))
	}
	g, handled, err := rq.Grid("audit-results", cols, rows, GridOptions{DefaultSort: "index", DefaultDesc: true, Capped: capped,
		Export: "audit", Empty: "audit.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "audit_results", "audit.results.title", v)
}

// auditRow is an entry as a row of the results: every code in words.
func (rq *Request) auditRow(e trail.Entry, withPatient bool) Row {
	f := e.Entry
	at, _ := time.Parse(time.RFC3339Nano, f.Time)
	idx := strconv.FormatUint(e.Index, 10)
	action := Cell{Text: rq.actionWords(f.Action)}
	if f.BreakGlass {
		action.Text += rq.T("audit.break_glass_suffix")
		action.Class = "bad"
	}
	target := Cell{Text: rq.wordsOr("audit.target.", f.TargetType)}
	if f.TargetID != "" {
		target.Title = f.TargetID
	}
	cells := []Cell{{Text: idx, Href: "/audit/entries/" + idx, Sort: sortNum(e.Index)}, rq.TimeCell(at),
		{Text: rq.Person(f.Actor)}, {Text: rq.roleWords(f.ActorRoles)}, action, target}
	if withPatient {
		c := Cell{}
		if id := idPath(f.PatientID); id != "" {
			c = Cell{Text: rq.T("audit.patient_trail"), Href: "/patients/" + id + "/audit", Title: id}
		}
		cells = append(cells, c)
	}
	decision := Cell{Text: rq.wordsOr("audit.decision.", f.Decision)}
	if r := rq.ruleWords(f.Rule); r != "" {
		decision.Text += rq.T("audit.decision_rule", r)
	}
	status := statusOf(f)
	outcome := Cell{Text: rq.wordsOr("audit.outcome.", f.Outcome)}
	row := Row{}
	switch status {
	case trail.StatusDenied:
		decision.Class, outcome.Class, row.Class = "bad", "bad", "flag"
	case trail.StatusIncomplete:
		outcome.Class = "bad"
	}
	cells = append(cells, Cell{Text: rq.purposeWords(f.Purpose)}, decision, outcome, Cell{Text: f.IP, Class: "nowrap"})
	row.Cells = cells
	return row
}

// sortNum is the sort key of a number.
func sortNum(n uint64) string { return fmt.Sprintf("%020d", n) }

// ---- One entry ----

// auditRowView is an entry with its codes in words.
type auditRowView struct {
	Index      uint64
	Entry      audit.Fields
	At         time.Time
	Actor      string
	Roles      string
	Department string
	Action     string
	Target     string
	Decision   string
	Rule       string
	Outcome    string
	Purpose    string
	Denied     bool
}

func (rq *Request) entryWords(index uint64, f audit.Fields) auditRowView {
	at, _ := time.Parse(time.RFC3339Nano, f.Time)
	return auditRowView{Index: index, Entry: f, At: at, Actor: rq.Person(f.Actor), Roles: rq.roleWords(f.ActorRoles),
		Department: rq.Dept(f.ActorDepartment), Action: rq.actionWords(f.Action), Target: rq.wordsOr("audit.target.", f.TargetType),
		Decision: rq.wordsOr("audit.decision.", f.Decision), Rule: rq.ruleWords(f.Rule),
		Outcome: rq.wordsOr("audit.outcome.", f.Outcome), Purpose: rq.purposeWords(f.Purpose),
		Denied: statusOf(f) == trail.StatusDenied}
}

// entryView is one entry with its inclusion proof, verified.
type entryView struct {
	Entry    auditRowView
	Log      *LogState
	Covered  bool // the entry is in the tree of the latest checkpoint
	Proof    [][]byte
	LeafHash []byte
	Verified bool
}

func auditVerifyForm(rq *Request) error {
	n, err := uintValue("index", rq.URL.Query().Get("index"))
	if err != nil {
		return err
	}
	return rq.Redirect("/audit/entries/"+strconv.FormatUint(n, 10), "")
}

func auditEntry(rq *Request) error {
	index, err := uintValue("index", rq.PathValue("index"))
	if err != nil {
		return &notFound
	}
	st, err := logState(rq)
	if err != nil {
		return err
	}
	es, err := rq.Deps.Trail.Entries(rq.Context(), rq.Call, index, index+1)
	if err != nil {
		return err
	}
	if len(es) != 1 {
		return &medguard.Error{Kind: medguard.NotFound, Message: "no such audit entry"}
	}
	v := entryView{Entry: rq.entryWords(es[0].Index, es[0].Entry), Log: st, LeafHash: rfc6962.DefaultHasher.HashLeaf(es[0].Leaf)}
	if index < st.Size && st.Verified {
		v.Covered = true
		p, err := rq.Deps.Trail.InclusionProof(rq.Context(), rq.Call, index, st.Size)
		if err != nil {
			return err
		}
		v.Proof = p
		v.Verified = proof.VerifyInclusion(rfc6962.DefaultHasher, index, st.Size, v.LeafHash, p, st.Root) == nil
	}
	return rq.Render(http.StatusOK, "audit_entry", "audit.entry.title", v)
}

// ---- The patient access report ----

// accessReportForm takes a patient from the audit page to the report: an
// id goes straight there, any other text is looked up.
func accessReportForm(rq *Request) error {
	p := rq.form("patient")
	if id := idPath(p); id != "" {
		return rq.Redirect("/patients/"+id+"/access-report", "")
	}
	if p == "" {
		return renderAudit(rq, http.StatusUnprocessableEntity, auditView{Error: &formError{Key: "audit.error.lookup.query"}})
	}
	return lookupPatients(rq, p)
}

type reportView struct {
	Report   *trail.AccessReport
	Grid     *Grid
	From, To string
	Error    *formError
}

// reportRows is how many lines of a report the page shows at most.
const reportRows = MaxRows

func accessReportPage(rq *Request) error {
	id := rq.PathValue("id")
	lang := trail.Chinese
	if rq.Lang == "en" {
		lang = trail.English
	}
	q := rq.URL.Query()
	v := reportView{From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	from, ferr := rq.localTime("from", v.From, false)
	to, terr := rq.localTime("to", v.To, true)
	if ferr != nil || terr != nil {
		from, to = time.Time{}, time.Time{}
		v.Error = &formError{Key: "report.error.period"}
	}
	read := func(from, to time.Time) (*trail.AccessReport, bool, error) {
		var rep *trail.AccessReport
		var before uint64
		for {
			page, next, err := rq.Deps.Trail.AccessReport(rq.Context(), rq.Call, trail.ReportQuery{PatientID: id, From: from, To: to,
				Lang: lang, Before: before, Limit: audit.MaxEntries, Named: true})
			if err != nil {
				return nil, false, err
			}
			if rep == nil {
				rep = page
			} else {
				rep.Items = append(rep.Items, page.Items...)
			}
			if next == 0 {
				return rep, false, nil
			}
			if len(rep.Items) >= reportRows {
				return rep, true, nil
			}
			before = next
		}
	}
	rep, capped, err := read(from, to)
	if err != nil {
		fe, ok := rq.asFormError(err, "report.error.period")
		if !ok {
			return err
		}
		v.Error = fe
		if rep, capped, err = read(time.Time{}, time.Time{}); err != nil {
			return err
		}
	}
	v.Report = rep
	cols := []Column{{Key: "time", Title: "report.col.time", Sort: true}, {Key: "who", Title: "report.col.who", Sort: true},
		{Key: "roles", Title: "report.col.roles"}, {Key: "what", Title: "report.col.what", Sort: true},
		{Key: "why", Title: "report.col.why", Sort: true}, {Key: "result", Title: "report.col.result", Sort: true},
		{Key: "entry", Title: "report.col.proof", Num: true}}
	rows := make([]Row, 0, len(rep.Items))
	for _, l := range rep.Items {
		who := l.Who
		if l.ActorKind == trail.ActorStaff {
			who = rq.Person(l.Actor)
		}
		what := Cell{Text: l.What}
		if l.BreakGlass {
			what.Text += rq.T("audit.break_glass_suffix")
			what.Class, what.Title = "bad", l.BreakGlassNote
		}
		r := Row{Cells: []Cell{rq.TimeCell(l.Time), {Text: who}, {Text: strings.Join(l.Roles, rq.T("audit.list_sep"))}, what,
			{Text: l.Why}, {Text: l.Result}, {Text: "#" + strconv.FormatUint(l.Index, 10), Href: "/audit/entries/" + strconv.FormatUint(l.Index, 10),
				Sort: sortNum(l.Index)}}}
		if l.Denied {
			r.Class, r.Cells[5].Class = "flag", "bad"
		}
		rows = append(rows, r)
	}
	g, handled, err := rq.Grid("report-lines", cols, rows, GridOptions{DefaultSort: "time", DefaultDesc: true, Capped: capped,
		Export: "access-report", Empty: "report.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	status := http.StatusOK
	if v.Error != nil {
		status = http.StatusUnprocessableEntity
	}
	return rq.Render(status, "access_report", "report.title", v)
}
