package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/plans"
	"medguard/internal/policy"
)

// Emergency plans and drills (应急预案与演练, issue 13): the plan library
// by type with each plan's review date; a plan's page with the version in
// force, every version and its signatures, and the workflow's forms (edit
// and submit a draft, the expert review, the leadership's approval, a new
// version, the yearly review) shown to those who may use them; the drills
// as a grid under the cadence of each kind, the departments flagged for
// retraining and the overdue improvement items; the form that records a
// drill against its plan's steps; a drill's page with its steps' times
// against the limits, gaps and improvement items. The service decides and
// logs; these pages only show and post.

func init() {
	read := []policy.Permission{policy.PlanRead}
	manage := []policy.Permission{policy.PlanManage}
	drill := []policy.Permission{policy.DrillManage}
	register(
		Page{Method: "GET", Path: "/plans", Any: read, Nav: &Nav{Key: "nav.plans", Order: 62}, Handle: plansPage},
		Page{Method: "POST", Path: "/plans", Any: manage, Handle: createPlan},
		Page{Method: "GET", Path: "/plans/{id}", Any: read, Handle: planPage},
		Page{Method: "POST", Path: "/plans/{id}/versions", Any: manage, Handle: newPlanVersion},
		Page{Method: "POST", Path: "/plans/{id}/versions/{version}", Any: manage, Handle: editPlanDraft},
		Page{Method: "POST", Path: "/plans/{id}/versions/{version}/submit", Any: manage, Handle: submitPlan},
		Page{Method: "POST", Path: "/plans/{id}/versions/{version}/review", Any: []policy.Permission{policy.PlanReview}, Handle: reviewPlan},
		Page{Method: "POST", Path: "/plans/{id}/versions/{version}/approve", Any: []policy.Permission{policy.PlanApprove}, Handle: approvePlan},
		Page{Method: "POST", Path: "/plans/{id}/annual-review", Any: []policy.Permission{policy.PlanReview}, Handle: annualReview},
		Page{Method: "GET", Path: "/drills", Any: read, Nav: &Nav{Key: "nav.drills", Order: 63}, Handle: exerciseDrillsPage},
		Page{Method: "GET", Path: "/drills/new", Any: drill, Handle: newDrillPage},
		Page{Method: "POST", Path: "/drills", Any: drill, Handle: recordDrill},
		Page{Method: "GET", Path: "/drills/{id}", Any: read, Handle: drillPage},
		Page{Method: "POST", Path: "/drills/{id}/improvements/{improvement}/done", Any: drill, Handle: completeImprovement},
	)
}

// fieldSep splits a line of a plan's form: a full-width or ASCII bar.
func fieldSep(r rune) bool { return r == '|' || r == '｜' }

// lines splits a text area into its non-empty lines, each into fields.
func lines(v string) [][]string {
	var out [][]string
	for _, l := range strings.Split(strings.ReplaceAll(v, "\r", ""), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		// Empty fields are kept, so that a missing name in 角色｜｜职责
		// stays in its column instead of shifting the ones after it.
		var f []string
		for {
			i := strings.IndexFunc(l, fieldSep)
			if i < 0 {
				f = append(f, strings.TrimSpace(l))
				break
			}
			f = append(f, strings.TrimSpace(l[:i]))
			_, size := utf8.DecodeRuneInString(l[i:])
			l = l[i+size:]
		}
		out = append(out, f)
	}
	return out
}

// contentForm reads a plan's content from its form: responders one per
// line as 角色｜姓名｜职责, steps one per line as 步骤｜角色｜时限（分钟）｜措施.
func (rq *Request) contentForm() (plans.Content, error) {
	c := plans.Content{Title: rq.form("title"), Scenario: rq.PostFormValue("scenario")}
	for i, f := range lines(rq.PostFormValue("responders")) {
		switch len(f) {
		case 2:
			c.Responders = append(c.Responders, plans.Responder{Role: f[0], Duty: f[1]})
		case 3:
			c.Responders = append(c.Responders, plans.Responder{Role: f[0], Name: f[1], Duty: f[2]})
		default:
			return c, medguard.InvalidField("responders", "responder line %d: role｜name｜duty", i+1)
		}
	}
	for i, f := range lines(rq.PostFormValue("steps")) {
		if len(f) != 4 {
			return c, medguard.InvalidField("steps", "step line %d: title｜role｜minutes｜action", i+1)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return c, medguard.InvalidField("steps", "step line %d: the time limit is a number of minutes", i+1)
		}
		c.Steps = append(c.Steps, plans.Step{Title: f[0], Role: f[1], LimitMinutes: n, Action: f[3]})
	}
	return c, nil
}

// responderLines and stepLines write a version's content back in the
// form's line format.
func responderLines(rs []plans.Responder) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s｜%s｜%s\n", r.Role, r.Name, r.Duty)
	}
	return b.String()
}

func stepLines(ss []plans.Step) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%s｜%s｜%d｜%s\n", s.Title, s.Role, s.LimitMinutes, strings.ReplaceAll(s.Action, "\n", " "))
	}
	return b.String()
}

type plansView struct {
	Grid      *Grid
	Types     []string
	Type      string
	CanManage bool
}

func plansPage(rq *Request) error {
	typ := ""
	for _, t := range plans.Types {
		if rq.URL.Query().Get("type") == t {
			typ = t
		}
	}
	overdue := rq.URL.Query().Get("overdue") == "true"
	ps, err := rq.Deps.Plans.ListPlans(rq.Context(), rq.Call, plans.PlanQuery{Type: typ, Overdue: overdue})
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	cols := []Column{
		{Key: "title", Title: "plans.col.title", Sort: true},
		{Key: "type", Title: "plans.col.type", Sort: true},
		{Key: "version", Title: "plans.col.version", Sort: true, Num: true},
		{Key: "workflow", Title: "plans.col.workflow", Sort: true},
		{Key: "published", Title: "plans.col.published", Sort: true},
		{Key: "review", Title: "plans.col.review", Sort: true},
	}
	var rows []Row
	for _, p := range ps {
		version := Cell{Text: rq.T("plans.none_published"), Sort: "0", Class: "muted"}
		if p.PublishedVersion > 0 {
			version = NumCell(p.PublishedVersion)
			version.Text = rq.T("plans.version", p.PublishedVersion)
		}
		workflow := Cell{}
		if p.OpenVersion > 0 {
			workflow = tagCell(rq.T("plans.open_version", p.OpenVersion, rq.T("plan.status."+p.OpenStatus)), "warn")
		}
		review := Cell{}
		if p.ReviewDueAt != nil {
			review = rq.TimeCell(*p.ReviewDueAt)
			review.Text += " · " + rq.countdown(*p.ReviewDueAt, now)
			if p.ReviewOverdue {
				review.Class += " bad overdue"
			}
		}
		published := Cell{}
		if p.PublishedAt != nil {
			published = rq.TimeCell(*p.PublishedAt)
		}
		row := Row{Cells: []Cell{{Text: p.Title, Href: "/plans/" + p.ID}, {Text: rq.T("plan.type." + p.Type)}, version, workflow, published, review}}
		if p.ReviewOverdue {
			row.Class = "flag"
		}
		rows = append(rows, row)
	}
	g, handled, err := rq.Grid("plans", cols, rows, GridOptions{DefaultSort: "type", Export: "plans", Empty: "plans.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	return rq.Render(http.StatusOK, "plans", "plans.title", plansView{Grid: g, Types: plans.Types, Type: typ,
		CanManage: rq.Can(policy.PlanManage)})
}

func createPlan(rq *Request) error {
	c, err := rq.contentForm()
	if err != nil {
		return err
	}
	p, err := rq.Deps.Plans.CreatePlan(rq.Context(), rq.Call, plans.NewPlan{Type: rq.form("type"), Title: c.Title, Scenario: c.Scenario,
		Responders: c.Responders, Steps: c.Steps})
	if err != nil {
		return err
	}
	return rq.Redirect("/plans/"+p.ID, "plan_created")
}

type planView struct {
	P *plans.Plan
	// Current is the version in force, Open the one in the workflow.
	Current, Open *plans.Version
	Countdown     string
	// What the caller may do now.
	CanEdit, CanSubmit, CanReview, CanApprove, CanNewVersion, CanAnnual, CanDrill bool
	ResponderText, StepText                                                       string
	History                                                                       []planEventRow
	DrillsLink                                                                    string
}

type planEventRow struct {
	plans.Event
	What string
}

func planPage(rq *Request) error {
	p, err := rq.Deps.Plans.GetPlan(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := planView{P: p, DrillsLink: "/drills?" + url.Values{"plan": {p.ID}}.Encode()}
	for i := range p.Versions {
		switch {
		case p.Versions[i].Version == p.PublishedVersion:
			v.Current = &p.Versions[i]
		case p.Versions[i].Version == p.OpenVersion:
			v.Open = &p.Versions[i]
		}
	}
	if p.ReviewDueAt != nil {
		v.Countdown = rq.countdown(*p.ReviewDueAt, rq.Deps.Clock.Now())
	}
	if o := v.Open; o != nil {
		v.CanEdit = o.Status == plans.Draft && rq.Can(policy.PlanManage)
		v.CanSubmit = v.CanEdit
		// The forms of the next step are offered to those who may sign it:
		// not its authors, nor for the approval its reviewer (the policy
		// refuses them anyway: deny.separation_of_duties).
		me := rq.Call.Actor.Name
		signed := slices.Contains(o.Authors, me)
		v.CanReview = o.Status == plans.InReview && rq.Can(policy.PlanReview) && !signed
		v.CanApprove = o.Status == plans.Reviewed && rq.Can(policy.PlanApprove) && !signed && o.ReviewedBy != me
		v.ResponderText, v.StepText = responderLines(o.Responders), stepLines(o.Steps)
	}
	v.CanNewVersion = v.Open == nil && v.Current != nil && rq.Can(policy.PlanManage)
	v.CanAnnual = v.Current != nil && rq.Can(policy.PlanReview)
	v.CanDrill = v.Current != nil && rq.Can(policy.DrillManage)
	for _, e := range p.History {
		v.History = append(v.History, planEventRow{Event: e, What: rq.T("plan.event." + e.Action)})
	}
	return rq.Render(http.StatusOK, "plan", "plan.title", v)
}

// versionPath reads {id} and {version} of a workflow step's path.
func (rq *Request) versionPath() (string, int, error) {
	v, err := strconv.Atoi(rq.PathValue("version"))
	if err != nil || v < 1 {
		return "", 0, &medguard.Error{Kind: medguard.NotFound, Message: "no such version of the plan"}
	}
	return rq.PathValue("id"), v, nil
}

func newPlanVersion(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Plans.NewVersion(rq.Context(), rq.Call, id); err != nil {
		return err
	}
	return rq.Redirect("/plans/"+id, "plan_version_created")
}

func editPlanDraft(rq *Request) error {
	id, v, err := rq.versionPath()
	if err != nil {
		return err
	}
	c, err := rq.contentForm()
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Plans.UpdateDraft(rq.Context(), rq.Call, id, v, plans.DraftChanges(c)); err != nil {
		return err
	}
	return rq.Redirect("/plans/"+id, "plan_saved")
}

func submitPlan(rq *Request) error {
	id, v, err := rq.versionPath()
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Plans.Submit(rq.Context(), rq.Call, id, v, plans.Note{Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/plans/"+id, "plan_submitted")
}

func reviewPlan(rq *Request) error {
	id, v, err := rq.versionPath()
	if err != nil {
		return err
	}
	approve := rq.form("decision") == "approve"
	if _, err := rq.Deps.Plans.Review(rq.Context(), rq.Call, id, v, plans.Decision{Approve: approve, Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	if approve {
		return rq.Redirect("/plans/"+id, "plan_reviewed")
	}
	return rq.Redirect("/plans/"+id, "plan_returned")
}

func approvePlan(rq *Request) error {
	id, v, err := rq.versionPath()
	if err != nil {
		return err
	}
	approve := rq.form("decision") == "approve"
	if _, err := rq.Deps.Plans.Approve(rq.Context(), rq.Call, id, v, plans.Decision{Approve: approve, Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	if approve {
		return rq.Redirect("/plans/"+id, "plan_published")
	}
	return rq.Redirect("/plans/"+id, "plan_returned")
}

func annualReview(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Plans.AnnualReview(rq.Context(), rq.Call, id, plans.Note{Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/plans/"+id, "plan_annual_reviewed")
}

// periodWords says a drill period (2026-Q4, 2026-H2) in the page's
// language: 2026年第四季度, 2026年下半年.
func (rq *Request) periodWords(name string) string {
	var y, n int
	if _, err := fmt.Sscanf(name, "%d-Q%d", &y, &n); err == nil && n >= 1 && n <= 4 {
		return rq.T("period.quarter", y, rq.T(fmt.Sprintf("period.q%d", n)))
	}
	if _, err := fmt.Sscanf(name, "%d-H%d", &y, &n); err == nil && n >= 1 && n <= 2 {
		return rq.T(fmt.Sprintf("period.h%d", n), y)
	}
	if _, err := fmt.Sscanf(name, "%d-M%d", &y, &n); err == nil {
		return rq.T("period.month", y, n)
	}
	return name
}

// cadenceRow is a kind's cadence in words.
type cadenceRow struct {
	plans.Cadence
	Kind, Period, Due, Last string
	Missed                  []string
	Late                    bool
}

func (rq *Request) cadenceRows(cs []plans.Cadence, now time.Time) []cadenceRow {
	var out []cadenceRow
	for _, c := range cs {
		r := cadenceRow{Cadence: c, Kind: rq.T("drill.kind." + c.Kind), Period: rq.periodWords(c.Period),
			Due: rq.T("drills.due_by", rq.localText(c.NextDueAt), rq.countdown(c.NextDueAt, now)), Late: len(c.Missed) > 0}
		if c.LastDrillAt != nil {
			r.Last = rq.localText(*c.LastDrillAt)
		}
		for _, m := range c.Missed {
			r.Missed = append(r.Missed, rq.periodWords(m))
		}
		out = append(out, r)
	}
	return out
}

type drillsView struct {
	Grid       *Grid
	Cadence    []cadenceRow
	Retraining []retrainingRow
	Overdue    []plans.Improvement
	Status     *plans.Status
	CanRecord  bool
	Published  []plans.Plan
	Kinds      []string
	Kind       string
}

type retrainingRow struct {
	plans.RetrainingFlag
	Department string
}

func exerciseDrillsPage(rq *Request) error {
	q := rq.URL.Query()
	dq := plans.DrillQuery{}
	for _, k := range append(plans.DrillKinds, plans.Restore) {
		if q.Get("kind") == k {
			dq.Kind = k
		}
	}
	if p := q.Get("plan"); medguard.ValidID(p) {
		dq.PlanID = p
	}
	dq.Failed = q.Get("failed") == "true"
	ds, err := rq.Deps.Plans.ListDrills(rq.Context(), rq.Call, dq)
	if err != nil {
		return err
	}
	st, err := rq.Deps.Plans.Status(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	cols := []Column{
		{Key: "held", Title: "drills.col.held", Sort: true},
		{Key: "kind", Title: "drills.col.kind", Sort: true},
		{Key: "title", Title: "drills.col.title", Sort: true},
		{Key: "departments", Title: "drills.col.departments"},
		{Key: "result", Title: "drills.col.result", Sort: true},
		{Key: "steps", Title: "drills.col.steps", Sort: true},
		{Key: "gaps", Title: "drills.col.gaps", Sort: true, Num: true},
		{Key: "improvements", Title: "drills.col.improvements", Sort: true},
	}
	var rows []Row
	for _, d := range ds {
		result := Cell{Text: rq.T("drill.passed"), Class: "ok"}
		if !d.Passed {
			result = Cell{Text: rq.T("drill.failed"), Class: "bad"}
		}
		title := Cell{Text: d.Title, Href: "/drills/" + d.ID}
		steps := Cell{}
		var depts []string
		for _, r := range d.Departments {
			w := rq.Dept(r.Department)
			if !r.Passed {
				w = rq.T("drill.department_failed", w)
			}
			depts = append(depts, w)
		}
		improvements := Cell{}
		if d.Kind == plans.Restore {
			title = Cell{Text: rq.T("drill.restore_title"), Href: "/backups/drills"}
			steps = Cell{Text: rq.T("drill.rto", rq.span(d.RTOSeconds))}
		} else {
			met := 0
			for _, s := range d.Steps {
				if s.Met {
					met++
				}
			}
			steps = Cell{Text: rq.T("drill.steps_met", met, len(d.Steps)), Sort: fmt.Sprintf("%05d", met*1000/max(len(d.Steps), 1))}
			open, late := 0, 0
			for _, im := range d.Improvements {
				if im.Status == plans.ImprovementOpen {
					open++
				}
				if im.Overdue {
					late++
				}
			}
			improvements = Cell{Text: rq.T("drill.improvements_state", len(d.Improvements), open, late)}
			if late > 0 {
				improvements.Class = "bad"
			}
		}
		row := Row{Cells: []Cell{rq.TimeCell(d.HeldAt), {Text: rq.T("drill.kind." + d.Kind)}, title, {Text: strings.Join(depts, rq.T("drills.sep"))},
			result, steps, NumCell(len(d.Gaps)), improvements}}
		if !d.Passed {
			row.Class = "bad"
		}
		rows = append(rows, row)
	}
	g, handled, err := rq.Grid("drills", cols, rows, GridOptions{DefaultSort: "held", DefaultDesc: true, Export: "drills", Empty: "drills.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v := drillsView{Grid: g, Cadence: rq.cadenceRows(st.Cadence, now), Overdue: st.Overdue, Status: st, CanRecord: rq.Can(policy.DrillManage),
		Kinds: append(plans.DrillKinds, plans.Restore), Kind: dq.Kind}
	for _, f := range st.Retraining {
		v.Retraining = append(v.Retraining, retrainingRow{RetrainingFlag: f, Department: rq.Dept(f.Department)})
	}
	if v.CanRecord {
		ps, err := rq.Deps.Plans.ListPlans(rq.Context(), rq.Call, plans.PlanQuery{})
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.PublishedVersion > 0 {
				v.Published = append(v.Published, p)
			}
		}
	}
	return rq.Render(http.StatusOK, "drills", "drills.title", v)
}

// drillRows is how many gap and improvement rows the form offers.
const drillRows = 3

type newDrillView struct {
	P           *plans.Plan
	Version     *plans.Version
	Kinds       []string
	Severities  []string
	Departments []deptOption
	Rows        []int
	HeldAt      string
}

func newDrillPage(rq *Request) error {
	id := rq.URL.Query().Get("plan")
	if !medguard.ValidID(id) {
		return rq.Redirect("/drills#record", "")
	}
	p, err := rq.Deps.Plans.GetPlan(rq.Context(), rq.Call, id)
	if err != nil {
		return err
	}
	v := newDrillView{P: p, Kinds: plans.DrillKinds, Severities: plans.Severities, Rows: make([]int, drillRows),
		HeldAt: rq.localInput(rq.Deps.Clock.Now().Add(-2 * time.Hour))}
	for i := range p.Versions {
		if p.Versions[i].Version == p.PublishedVersion {
			v.Version = &p.Versions[i]
		}
	}
	if v.Version == nil {
		return &medguard.Error{Kind: medguard.Conflict, Message: "the plan has no published version to drill"}
	}
	for i := range v.Rows {
		v.Rows[i] = i
	}
	for _, d := range rq.c.dir.departments() {
		v.Departments = append(v.Departments, deptOption{Code: d.Code, Name: d.Name})
	}
	return rq.Render(http.StatusOK, "drill_new", "drill.new_title", v)
}

// deptCode reads a department given by code or by name.
func (rq *Request) deptCode(v string) string {
	v = strings.TrimSpace(v)
	for _, d := range rq.c.dir.departments() {
		if d.Code == v || d.Name == v {
			return d.Code
		}
	}
	return v
}

func recordDrill(rq *Request) error {
	held, err := rq.localTime("held_at", rq.form("held_at"), false)
	if err != nil {
		return err
	}
	in := plans.NewDrill{Kind: rq.form("kind"), Title: rq.form("title"), PlanID: rq.form("plan_id"), HeldAt: held,
		Departments: rq.PostForm["departments"], Notes: rq.PostFormValue("notes")}
	if in.PlanVersion, err = rq.intForm("plan_version"); err != nil {
		return err
	}
	for i, f := range lines(rq.PostFormValue("participants")) {
		pt := plans.Participant{Name: f[0]}
		if len(f) > 1 {
			pt.Department = rq.deptCode(f[1])
		}
		if len(f) > 2 {
			pt.Role = f[2]
		}
		if len(f) > 3 {
			return medguard.InvalidField("participants", "participant line %d: name｜department｜role", i+1)
		}
		in.Participants = append(in.Participants, pt)
	}
	steps, err := rq.intForm("steps")
	if err != nil || steps < 0 || steps > 50 {
		return medguard.InvalidField("steps", "the form's steps do not match the plan")
	}
	for i := 1; i <= steps; i++ {
		st := plans.StepTime{Step: i, Department: rq.form(fmt.Sprintf("step_%d_department", i))}
		if v := rq.form(fmt.Sprintf("step_%d_took", i)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return medguard.InvalidField(fmt.Sprintf("steps[%d].took_minutes", i-1), "the time taken is a number of minutes")
			}
			st.TookMinutes = &n
		}
		in.Steps = append(in.Steps, st)
	}
	for i := range drillRows {
		if desc := rq.PostFormValue(fmt.Sprintf("gap_%d_description", i)); strings.TrimSpace(desc) != "" {
			in.Gaps = append(in.Gaps, plans.NewGap{Department: rq.form(fmt.Sprintf("gap_%d_department", i)),
				Severity: rq.form(fmt.Sprintf("gap_%d_severity", i)), Description: desc})
		}
		if action := rq.PostFormValue(fmt.Sprintf("improvement_%d_action", i)); strings.TrimSpace(action) != "" {
			due, err := rq.dayEnd(fmt.Sprintf("improvements[%d].due_at", len(in.Improvements)), rq.form(fmt.Sprintf("improvement_%d_due", i)))
			if err != nil {
				return err
			}
			in.Improvements = append(in.Improvements, plans.NewImprovement{Action: action, Owner: rq.form(fmt.Sprintf("improvement_%d_owner", i)),
				Department: rq.form(fmt.Sprintf("improvement_%d_department", i)), DueAt: due})
		}
	}
	d, err := rq.Deps.Plans.RecordDrill(rq.Context(), rq.Call, in)
	if err != nil {
		return err
	}
	return rq.Redirect("/drills/"+d.ID, "drill_recorded")
}

type exerciseDrillView struct {
	D         *plans.Drill
	Steps     []stepRow
	CanManage bool
}

type stepRow struct {
	plans.StepResult
	Took string
}

func drillPage(rq *Request) error {
	d, err := rq.Deps.Plans.GetDrill(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := exerciseDrillView{D: d, CanManage: rq.Can(policy.DrillManage)}
	for _, s := range d.Steps {
		r := stepRow{StepResult: s, Took: rq.T("drill.not_done")}
		if s.TookMinutes != nil {
			r.Took = sayDuration(rq.c.catalog, rq.Lang, *s.TookMinutes)
		}
		v.Steps = append(v.Steps, r)
	}
	return rq.Render(http.StatusOK, "drill", "drill.title", v)
}

func completeImprovement(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Plans.CompleteImprovement(rq.Context(), rq.Call, id, rq.PathValue("improvement"),
		plans.ImprovementCompletion{Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/drills/"+id, "improvement_done")
}

// DrillTile is the dashboard's next drill due: the kind due soonest and
// by when, the periods missed, the departments flagged for retraining and
// the overdue improvement items.
type DrillTile struct {
	Shown, Started, Late     bool
	Kind, Due                string
	Missed                   []string
	Retraining, OverdueItems int
}

// loadDrillTile reads the tile for those who may see the drills.
func loadDrillTile(rq *Request, now time.Time) (DrillTile, error) {
	if rq.Deps.Plans == nil || !rq.Can(policy.PlanRead) {
		return DrillTile{}, nil
	}
	st, err := rq.Deps.Plans.Status(rq.Context(), rq.Call)
	if hidden(err) {
		return DrillTile{}, nil
	}
	if err != nil {
		return DrillTile{}, err
	}
	t := DrillTile{Shown: true, Retraining: len(st.Retraining), OverdueItems: st.OverdueImprovements}
	var next *plans.Cadence
	for i := range st.Cadence {
		c := &st.Cadence[i]
		t.Started = t.Started || c.Started
		if next == nil || c.NextDueAt.Before(next.NextDueAt) {
			next = c
		}
		for _, m := range c.Missed {
			if len(t.Missed) < 2 {
				t.Missed = append(t.Missed, rq.T("dashboard.drill_missed", rq.T("drill.kind."+c.Kind), rq.periodWords(m)))
			}
			t.Late = true
		}
	}
	if next != nil {
		t.Kind = rq.T("drill.kind." + next.Kind)
		t.Due = rq.T("drills.due_by", rq.localText(next.NextDueAt), rq.countdown(next.NextDueAt, now))
	}
	t.Late = t.Late || t.Retraining > 0 || t.OverdueItems > 0
	return t, nil
}
