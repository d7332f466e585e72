package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/policy"
	"medguard/internal/vulns"
)

// Vulnerabilities (漏洞管理, issue 13): the operations suspended now (a
// banner, also on every page of those they affect), the open and overdue
// vulnerabilities by severity, the grid of vulnerabilities with their due
// dates in hours (overdue ones marked), the form that imports a scanner
// report (a file), the assets not scanned within the week; a
// vulnerability's page with its facts, the scanner's description, the
// scans that found it, its history, the forms that move it on, ask for
// an exception (four eyes), suspend operations and ask for a suspension
// to be lifted early (four eyes). The services decide and log; these pages
// only show and post.

func init() {
	read, manage, suspend := []policy.Permission{policy.VulnRead}, []policy.Permission{policy.VulnManage}, []policy.Permission{policy.VulnSuspend}
	register(
		Page{Method: "GET", Path: "/vulns", Any: read, Nav: &Nav{Key: "nav.vulns", Order: 46}, Handle: vulnsPage},
		Page{Method: "POST", Path: "/vulns/import", Any: manage, MaxForm: 16<<20 + 64<<10, Handle: importScan},
		Page{Method: "GET", Path: "/vulns/{id}", Any: read, Handle: vulnPage},
		Page{Method: "POST", Path: "/vulns/{id}/status", Any: manage, Handle: setVulnStatus},
		Page{Method: "POST", Path: "/vulns/{id}/exception", Any: manage, Handle: askVulnException},
		Page{Method: "POST", Path: "/vulns/{id}/suspension", Any: suspend, Handle: suspendOperations},
		Page{Method: "POST", Path: "/suspensions/{id}/lift", Any: suspend, Handle: askSuspensionLift},
	)
}

// vulnFilter is the list's filters as given.
type vulnFilter struct {
	Status, Severity, Asset, Text string
	Overdue, Proposed             bool
}

func (f vulnFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "severity": f.Severity, "asset": f.Asset, "q": f.Text} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Overdue {
		q.Set("overdue", "1")
	}
	if f.Proposed {
		q.Set("proposed", "1")
	}
	return q
}

// sevCount is a severity with a count, for the figures.
type sevCount struct {
	Severity, Text string
	N              int
	Href           string
}

// suspensionRow is a suspension in force, in words.
type suspensionRow struct {
	vulns.Suspension
	Operations string
	Vuln       string
	Asset      string
}

type vulnsView struct {
	Filter      vulnFilter
	Statuses    []option
	Severities  []option
	Assets      []option
	Formats     []option
	Grid        *Grid
	Open        []sevCount
	Overdue     []sevCount
	Proposed    int
	Suspensions []suspensionRow
	Late        []vulns.CadenceItem
	Cadence     string
	CanImport   bool
	Result      *vulns.Scan
	ResultAsset string
	Error       string
}

func (rq *Request) formatOptions() []option {
	var out []option
	for _, f := range vulns.Formats {
		out = append(out, option{Value: f, Text: rq.T("vulns.format." + f)})
	}
	return out
}

func vulnsPage(rq *Request) error { return renderVulns(rq, http.StatusOK, nil, "") }

func renderVulns(rq *Request, status int, result *vulns.Scan, problem string) error {
	ctx, call := rq.Context(), rq.Call
	q := rq.URL.Query()
	if rq.Method == http.MethodPost {
		q = url.Values{}
		if result != nil {
			q.Set("asset", result.AssetID)
		}
	}
	f := vulnFilter{Status: q.Get("status"), Severity: q.Get("severity"), Asset: q.Get("asset"), Text: strings.TrimSpace(q.Get("q")),
		Overdue: q.Get("overdue") == "1", Proposed: q.Get("proposed") == "1"}
	if f.Status == "" && !q.Has("status") {
		f.Status = vulns.QueryOpen
	}
	if f.Status == "all" {
		f.Status = ""
	} else if f.Status != vulns.QueryOpen && f.Status != vulns.QueryResolved && !slices.Contains(vulns.Statuses, f.Status) {
		f.Status = vulns.QueryOpen
	}
	if !slices.Contains(vulns.Severities, f.Severity) {
		f.Severity = ""
	}
	if !medguard.ValidID(f.Asset) {
		f.Asset = ""
	}
	if len([]rune(f.Text)) > 100 {
		f.Text = ""
	}
	list, next, err := rq.Deps.Vulns.List(ctx, call, vulns.Query{AssetID: f.Asset, Status: f.Status, Severity: f.Severity, Overdue: f.Overdue,
		Proposed: f.Proposed, Text: f.Text, Limit: MaxRows})
	if err != nil {
		return err
	}
	if f.Status == "" {
		f.Status = "all"
	}
	v := vulnsView{Filter: f, CanImport: rq.Can(policy.VulnManage), Formats: rq.formatOptions(), Result: result, Error: problem,
		Cadence: sayDuration(rq.c.catalog, rq.Lang, rq.Deps.Vulns.Config().ScanCadence)}
	for _, s := range append([]string{vulns.QueryOpen, vulns.QueryResolved}, append(slices.Clone(vulns.Statuses), "all")...) {
		v.Statuses = append(v.Statuses, option{Value: s, Text: rq.T("vuln.status." + s)})
	}
	for _, s := range vulns.Severities {
		v.Severities = append(v.Severities, option{Value: s, Text: rq.T("severity." + s)})
	}
	sum, err := rq.Deps.Vulns.Summarise(ctx, call)
	if err != nil {
		return err
	}
	for _, s := range vulns.Severities {
		v.Open = append(v.Open, sevCount{Severity: s, Text: rq.T("severity." + s), N: sum.Open[s], Href: "/vulns?" + url.Values{"severity": {s}}.Encode()})
		v.Overdue = append(v.Overdue, sevCount{Severity: s, Text: rq.T("severity." + s), N: sum.Overdue[s],
			Href: "/vulns?" + url.Values{"severity": {s}, "overdue": {"1"}}.Encode()})
	}
	v.Proposed = sum.Proposed
	names := map[string]string{}
	if rq.Can(policy.AssetRead) {
		as, _, err := rq.Deps.Assets.List(ctx, call, assets.Query{Status: assets.InUse})
		if err != nil {
			return err
		}
		for _, a := range as {
			names[a.ID] = a.Name
			v.Assets = append(v.Assets, option{Value: a.ID, Text: a.Code + " " + a.Name})
		}
	}
	if v.Suspensions, err = rq.suspensionRows(names); err != nil {
		return err
	}
	cad, err := rq.Deps.Vulns.Cadence(ctx, call, true)
	if err != nil {
		return err
	}
	v.Late = cad
	if result != nil {
		v.ResultAsset = names[result.AssetID]
	}
	cols, rows := rq.vulnRows(list, true)
	for i, x := range list {
		if n := names[x.AssetID]; n != "" {
			rows[i].Cells[1] = Cell{Text: n, Href: "/assets/" + x.AssetID}
		}
	}
	if rq.Method == http.MethodPost {
		u := *rq.URL
		u.Path, u.RawQuery = "/vulns", f.query().Encode()
		rq.URL = &u
	}
	g, handled, err := rq.Grid("vulns", cols, rows, GridOptions{DefaultSort: "due", Capped: next != "", Export: "vulns", Empty: "vulns.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(status, "vulns", "vulns.title", v)
}

// suspensionRows are the suspensions in force, in words.
func (rq *Request) suspensionRows(assetNames map[string]string) ([]suspensionRow, error) {
	sps, err := rq.Deps.Vulns.ListSuspensions(rq.Context(), rq.Call, true)
	if err != nil {
		return nil, err
	}
	var out []suspensionRow
	for _, sp := range sps {
		out = append(out, suspensionRow{Suspension: sp, Operations: rq.operations(sp.Actions), Asset: assetNames[sp.AssetID]})
	}
	return out, nil
}

// operations names operations in words: 导出病历、书写病历.
func (rq *Request) operations(ps []policy.Permission) string {
	words := make([]string, len(ps))
	for i, p := range ps {
		words[i] = rq.textOr("perm."+string(p), string(p))
	}
	return strings.Join(words, rq.T("vulns.list_sep"))
}

// dueCell says the time left in hours, or how long overdue, marked.
func (rq *Request) dueCell(v *vulns.Vuln) Cell {
	sortKey := v.DueAt.UTC().Format(time.RFC3339)
	switch {
	case !vulns.Open(v.Status):
		return Cell{Text: rq.T("vulns.due_done"), Class: "muted", Sort: "9" + sortKey}
	case v.Overdue:
		late := int(rq.Deps.Clock.Now().Sub(v.DueAt) / time.Hour)
		return Cell{Text: rq.T("vulns.due_late", late), Class: "overdue nowrap", Sort: "0" + sortKey,
			Title: rq.TimeCell(v.DueAt).Text}
	}
	return Cell{Text: rq.T("vulns.due_left", v.DueInHours), Class: "nowrap", Sort: "1" + sortKey, Title: rq.TimeCell(v.DueAt).Text}
}

// vulnRows turns vulnerabilities into the rows of a grid; withAsset adds
// the asset's column (filled in by the caller).
func (rq *Request) vulnRows(list []vulns.Vuln, withAsset bool) ([]Column, []Row) {
	cols := []Column{{Key: "title", Title: "vulns.col.title", Sort: true}}
	if withAsset {
		cols = append(cols, Column{Key: "asset", Title: "vulns.col.asset", Sort: true})
	}
	cols = append(cols, Column{Key: "severity", Title: "vulns.col.severity", Sort: true}, Column{Key: "status", Title: "vulns.col.status", Sort: true},
		Column{Key: "due", Title: "vulns.col.due", Sort: true}, Column{Key: "due_at", Title: "vulns.col.due_at", Sort: true},
		Column{Key: "rule", Title: "vulns.col.rule", Sort: true}, Column{Key: "location", Title: "vulns.col.location"},
		Column{Key: "first", Title: "vulns.col.first_seen", Sort: true}, Column{Key: "sightings", Title: "vulns.col.sightings", Sort: true, Num: true})
	rows := make([]Row, 0, len(list))
	for i := range list {
		x := &list[i]
		sev := tagCell(rq.T("severity."+x.Severity), "sev sev-"+x.Severity)
		sev.Sort = fmt.Sprint(slices.Index(vulns.Severities, x.Severity))
		st := Cell{Text: rq.T("vuln.status." + x.Status), Sort: fmt.Sprint(slices.Index(vulns.Statuses, x.Status))}
		if x.ProposedFixedAt != nil {
			st = tagCell(st.Text+rq.T("vulns.proposed_suffix"), "warn")
		}
		if x.Suspending {
			st.HTML += " " + tagCell(rq.T("vulns.suspending"), "bad").HTML
		}
		r := Row{Cells: []Cell{{Text: x.Title, Href: "/vulns/" + x.ID}}}
		if withAsset {
			r.Cells = append(r.Cells, Cell{Text: x.AssetID, Href: "/assets/" + x.AssetID, Class: "mono"})
		}
		r.Cells = append(r.Cells, sev, st, rq.dueCell(x), rq.TimeCell(x.DueAt), Cell{Text: x.RuleID, Class: "mono"},
			Cell{Text: x.Location}, rq.TimeCell(x.FirstSeen), NumCell(x.Sightings))
		if x.Overdue {
			r.Class = "bad"
		} else if !vulns.Open(x.Status) {
			r.Class = "muted"
		}
		rows = append(rows, r)
	}
	return cols, rows
}

// importScan imports the uploaded scanner report for the asset chosen and
// shows what it did; a report that does not parse is shown back with why,
// and nothing changes.
func importScan(rq *Request) error {
	data, err := uploaded(rq, "file")
	if err == nil {
		var sc *vulns.Scan
		sc, err = rq.Deps.Vulns.Import(rq.Context(), rq.Call, vulns.Import{AssetID: rq.PostFormValue("asset"), Format: rq.PostFormValue("format"),
			Partial: rq.PostFormValue("partial") == "yes", Report: data})
		if err == nil {
			return renderVulns(rq, http.StatusCreated, sc, "")
		}
	}
	var me *medguard.Error
	if errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Kind == medguard.TooLarge || me.Kind == medguard.Conflict) {
		msg := me.Message
		if me.Field == "asset" || me.Field == "format" {
			msg = rq.T("vulns.import_choose")
		}
		return renderVulns(rq, http.StatusUnprocessableEntity, nil, msg)
	}
	return err
}

type vulnView struct {
	V           *vulns.Detail
	Asset       *assets.Asset
	SLA         string
	Due         Cell
	Next        []option
	CanManage   bool
	CanSuspend  bool
	MaySuspend  bool
	Operations  []option
	Exceptions  []option
	Suspensions []suspensionRow
	Events      []eventRow
}

// eventRow is a step of the history, in words.
type eventRow struct {
	vulns.Event
	Text string
}

func vulnPage(rq *Request) error {
	d, err := rq.Deps.Vulns.Get(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := vulnView{V: d, CanManage: rq.Can(policy.VulnManage), CanSuspend: rq.Can(policy.VulnSuspend), Due: rq.dueCell(&d.Vuln),
		SLA: sayDuration(rq.c.catalog, rq.Lang, rq.Deps.Vulns.Config().SLA(d.Severity))}
	if rq.Can(policy.AssetRead) {
		if v.Asset, err = rq.Deps.Assets.Get(rq.Context(), rq.Call, d.AssetID); err != nil {
			return err
		}
	}
	for _, s := range d.Next {
		v.Next = append(v.Next, option{Value: s, Text: rq.T("vuln.status." + s)})
	}
	for _, p := range vulns.Suspendable {
		v.Operations = append(v.Operations, option{Value: string(p), Text: rq.textOr("perm."+string(p), string(p))})
	}
	for _, e := range vulns.Exceptions {
		v.Exceptions = append(v.Exceptions, option{Value: e, Text: rq.T("vuln.status." + e)})
	}
	active := false
	for _, sp := range d.Suspensions {
		v.Suspensions = append(v.Suspensions, suspensionRow{Suspension: sp, Operations: rq.operations(sp.Actions)})
		active = active || sp.Active
	}
	v.MaySuspend = v.CanSuspend && !active && vulns.Open(d.Status) && d.Severity == vulns.Critical && v.Asset != nil && v.Asset.RecordsSystem
	for _, e := range d.History {
		v.Events = append(v.Events, eventRow{Event: e, Text: rq.eventWords(e)})
	}
	return rq.Render(http.StatusOK, "vuln", "vuln.title", v)
}

// eventWords says a step of the history.
func (rq *Request) eventWords(e vulns.Event) string {
	from, to := rq.T("vuln.status."+e.From), rq.T("vuln.status."+e.To)
	switch e.Kind {
	case vulns.EventState:
		return rq.T("vuln.event.state", from, to)
	case vulns.EventSeverity:
		return rq.T("vuln.event.severity", rq.T("severity."+e.From), rq.T("severity."+e.To))
	case vulns.EventException:
		return rq.T("vuln.event.exception", to)
	}
	return rq.T("vuln.event." + e.Kind)
}

func setVulnStatus(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Vulns.SetStatus(rq.Context(), rq.Call, id, vulns.Transition{Status: rq.PostFormValue("status"),
		Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/vulns/"+url.PathEscape(id), "vuln_moved")
}

func askVulnException(rq *Request) error {
	id := rq.PathValue("id")
	ask, err := vulns.ExceptionRequest(id, vulns.NewException{Outcome: rq.PostFormValue("outcome"), Reason: rq.PostFormValue("reason")})
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Approvals.Request(rq.Context(), rq.Call, ask); err != nil {
		return err
	}
	return rq.Redirect("/vulns/"+url.PathEscape(id), "vuln_exception_asked")
}

func suspendOperations(rq *Request) error {
	id := rq.PathValue("id")
	var actions []policy.Permission
	for _, a := range rq.PostForm["actions"] {
		actions = append(actions, policy.Permission(a))
	}
	if _, err := rq.Deps.Vulns.Suspend(rq.Context(), rq.Call, id, vulns.NewSuspension{Actions: actions, Reason: rq.PostFormValue("reason")}); err != nil {
		return err
	}
	return rq.Redirect("/vulns/"+url.PathEscape(id), "operations_suspended")
}

func askSuspensionLift(rq *Request) error {
	ask, err := vulns.LiftRequest(rq.PathValue("id"), rq.PostFormValue("reason"))
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Approvals.Request(rq.Context(), rq.Call, ask); err != nil {
		return err
	}
	back := "/vulns"
	if v := rq.PostFormValue("vuln"); medguard.ValidID(v) {
		back = "/vulns/" + v
	}
	return rq.Redirect(back, "suspension_lift_asked")
}

// suspendedBanner says the operations suspended now that the caller
// holds, for the banner on every page (nil when none).
func (rq *Request) suspendedBanner() *banner {
	if rq.Call == nil || rq.Deps.Vulns == nil {
		return nil
	}
	var mine []policy.Permission
	for _, p := range rq.Deps.Vulns.Suspended() {
		for held := range rq.Perms {
			if held == p || strings.HasPrefix(string(held), string(p)+":") {
				mine = append(mine, p)
				break
			}
		}
	}
	if len(mine) == 0 {
		return nil
	}
	return &banner{Operations: rq.operations(mine), Link: rq.Can(policy.VulnRead)}
}

// banner is the notice of the operations suspended.
type banner struct {
	Operations string
	Link       bool
}

// VulnTile is the dashboard's figure of vulnerability management: the open
// vulnerabilities past their due date, by severity; the assets not
// scanned within the cadence; the operations suspended.
type VulnTile struct {
	Late      int
	Overdue   []sevCount
	Unscanned int
	Suspended int
}

func loadVulnTile(rq *Request) (*VulnTile, error) {
	sum, err := rq.Deps.Vulns.Summarise(rq.Context(), rq.Call)
	if err != nil {
		return nil, err
	}
	t := &VulnTile{Unscanned: sum.Unscanned, Suspended: len(sum.Suspended)}
	for _, s := range vulns.Severities {
		t.Late += sum.Overdue[s]
		t.Overdue = append(t.Overdue, sevCount{Severity: s, Text: rq.T("severity." + s), N: sum.Overdue[s],
			Href: "/vulns?" + url.Values{"severity": {s}, "overdue": {"1"}}.Encode()})
	}
	return t, nil
}

// vulnWhat says a four-eyes request of vulnerability management: the
// exception asked for and the vulnerability's title, or the lift of a
// suspension (vulnerabilities the reader may not see are named by id).
func (w *decisionWords) vulnWhat(a *approvals.Approval) string {
	rq := w.rq
	title := func(id string) string {
		if rq.Deps.Vulns == nil || !rq.Can(policy.VulnRead) {
			return id
		}
		if d, err := rq.Deps.Vulns.Get(rq.Context(), rq.Call, id); err == nil {
			return d.Title
		}
		return id
	}
	if a.Kind == vulns.ExceptionKind {
		var p vulns.ExceptionPayload
		json.Unmarshal(a.Payload, &p) // the service wrote it
		return rq.T("approvals.what.vulns.exception", rq.T("vuln.status."+p.Outcome), title(p.VulnID))
	}
	return rq.T("approvals.what.vulns.suspension_lift")
}
