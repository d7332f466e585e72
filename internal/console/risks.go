package console

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/detect"
	"medguard/internal/plans"
	"medguard/internal/policy"
	"medguard/internal/rectify"
	"medguard/internal/risks"
)

// The risk register (风险评估, issue 13): the register as a grid with its
// filters and the heat map above it; the heat map on a page of its own
// with the level bands; a risk's page with its history and the forms to
// review it, change it, close it, and — for the leadership — decide its
// acceptance; the risk assessments and new systems' checklists, whose
// risk-assessment item takes a completed assessment. The service decides
// and logs; these pages only show and post.

func init() {
	read := []policy.Permission{policy.RiskRead}
	manage := []policy.Permission{policy.RiskManage}
	accept := []policy.Permission{policy.RiskAccept}
	register(
		Page{Method: "GET", Path: "/risks", Any: read, Nav: &Nav{Key: "nav.risks", Order: 60}, Handle: risksPage},
		Page{Method: "POST", Path: "/risks", Any: manage, Handle: createRisk},
		Page{Method: "GET", Path: "/risks/heatmap", Any: read, Handle: heatMapPage},
		Page{Method: "GET", Path: "/risks/{id}", Any: read, Handle: riskPage},
		Page{Method: "POST", Path: "/risks/{id}/edit", Any: manage, Handle: editRisk},
		Page{Method: "POST", Path: "/risks/{id}/review", Any: manage, Handle: reviewRisk},
		Page{Method: "POST", Path: "/risks/{id}/acceptance", Any: accept, Handle: decideAcceptance},
		Page{Method: "POST", Path: "/risks/{id}/close", Any: manage, Handle: closeRisk},
		Page{Method: "GET", Path: "/risk-assessments", Any: read, Handle: riskAssessmentsPage},
		Page{Method: "POST", Path: "/risk-assessments", Any: manage, Handle: createAssessment},
		Page{Method: "GET", Path: "/risk-assessments/{id}", Any: read, Handle: assessmentPage},
		Page{Method: "POST", Path: "/risk-assessments/{id}/complete", Any: manage, Handle: completeAssessment},
		Page{Method: "POST", Path: "/system-introductions", Any: manage, Handle: createIntroduction},
		Page{Method: "GET", Path: "/system-introductions/{id}", Any: read, Handle: introductionPage},
		Page{Method: "POST", Path: "/system-introductions/{id}/items/{item}", Any: manage, Handle: checkIntroductionItem},
		Page{Method: "POST", Path: "/system-introductions/{id}/approve", Any: accept, Handle: approveGoLive},
	)
}

// heatRow is a row of the heat map: a likelihood and its five cells,
// most likely first.
type heatRow struct {
	Likelihood int
	Cells      []risks.HeatCell
}

// heatView is the heat map as the pages draw it.
type heatView struct {
	Rows  []heatRow
	Map   *risks.HeatMap
	Total int
}

func newHeatView(h *risks.HeatMap) *heatView {
	v := &heatView{Map: h, Total: h.Open}
	for l := 5; l >= 1; l-- {
		r := heatRow{Likelihood: l}
		for _, c := range h.Cells {
			if c.Likelihood == l {
				r.Cells = append(r.Cells, c)
			}
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

// riskFilters are the register's filters, from the query.
type riskFilters struct {
	Level, Status, Treatment, Acceptance string
	Assessment                           string
	Overdue                              bool
	Likelihood, Impact                   int
}

func (rq *Request) riskFilters() riskFilters {
	q := rq.URL.Query()
	pick := func(v string, allowed []string) string {
		for _, a := range allowed {
			if a == v {
				return v
			}
		}
		return ""
	}
	f := riskFilters{Level: pick(q.Get("level"), risks.Levels), Status: pick(q.Get("status"), risks.Statuses),
		Treatment: pick(q.Get("treatment"), risks.Treatments), Acceptance: pick(q.Get("acceptance"), risks.AcceptanceStates),
		Overdue: q.Get("overdue") == "true"}
	if a := q.Get("assessment"); medguard.ValidID(a) {
		f.Assessment = a
	}
	if n, err := strconv.Atoi(q.Get("likelihood")); err == nil && n >= 1 && n <= 5 {
		f.Likelihood = n
	}
	if n, err := strconv.Atoi(q.Get("impact")); err == nil && n >= 1 && n <= 5 {
		f.Impact = n
	}
	return f
}

type risksView struct {
	Grid        *Grid
	Heat        *heatView
	Filters     riskFilters
	CanManage   bool
	Levels      []string
	Treatments  []string
	Scale       []int
	Assessments []risks.Assessment
	Filtered    bool
}

// levelCell is a risk's level as a coloured tag.
func (rq *Request) levelCell(level string) Cell {
	c := tagCell(rq.T("risk.level."+level), "sev sev-"+level)
	c.Sort = strconv.Itoa(slicesIndex(risks.Levels, level))
	return c
}

func slicesIndex(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// reviewCell is a review date with the time left or overdue.
func (rq *Request) reviewCell(r risks.Risk, now time.Time) Cell {
	c := rq.TimeCell(r.ReviewDueAt)
	if r.Status != risks.Open {
		return c
	}
	c.Text += " · " + rq.countdown(r.ReviewDueAt, now)
	if r.ReviewOverdue {
		c.Class += " bad overdue"
	}
	return c
}

// assetText names a risk's asset: its name, or its id.
func assetText(id, name string) string {
	if name != "" {
		return name
	}
	return id
}

func risksPage(rq *Request) error {
	f := rq.riskFilters()
	list, next, err := rq.Deps.Risks.ListRisks(rq.Context(), rq.Call, risks.RiskQuery{Level: f.Level, Status: f.Status, Treatment: f.Treatment,
		Acceptance: f.Acceptance, Overdue: f.Overdue, Likelihood: f.Likelihood, Impact: f.Impact, AssessmentID: f.Assessment, Limit: MaxRows})
	if err != nil {
		return err
	}
	h, err := rq.Deps.Risks.HeatMap(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	cols := []Column{
		{Key: "title", Title: "risks.col.title", Sort: true},
		{Key: "asset", Title: "risks.col.asset", Sort: true},
		{Key: "score", Title: "risks.col.score", Sort: true, Num: true},
		{Key: "level", Title: "risks.col.level", Sort: true},
		{Key: "treatment", Title: "risks.col.treatment", Sort: true},
		{Key: "acceptance", Title: "risks.col.acceptance", Sort: true},
		{Key: "owner", Title: "risks.col.owner", Sort: true},
		{Key: "review", Title: "risks.col.review", Sort: true},
		{Key: "status", Title: "risks.col.status", Sort: true},
	}
	var rows []Row
	for _, r := range list {
		score := NumCell(r.Score)
		score.Text = rq.T("risks.score", r.Likelihood, r.Impact, r.Score)
		acc := Cell{Text: rq.T("risk.acceptance." + r.Acceptance)}
		if r.Acceptance == risks.AcceptancePending || r.Acceptance == risks.AcceptanceRefused {
			acc.Class = "bad"
		}
		row := Row{Cells: []Cell{
			{Text: r.Title, Href: "/risks/" + r.ID},
			{Text: assetText(r.AssetID, r.AssetName)},
			score, rq.levelCell(r.Level),
			{Text: rq.T("risk.treatment." + r.Treatment)}, acc,
			{Text: rq.Person(r.Owner)},
			rq.reviewCell(r, now),
			{Text: rq.T("risk.status." + r.Status)},
		}}
		if r.ReviewOverdue {
			row.Class = "flag"
		}
		rows = append(rows, row)
	}
	g, handled, err := rq.Grid("risks", cols, rows, GridOptions{DefaultSort: "score", DefaultDesc: true, Capped: next != "",
		Export: "risks", Empty: "risks.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v := risksView{Grid: g, Heat: newHeatView(h), Filters: f, CanManage: rq.Can(policy.RiskManage), Levels: risks.Levels,
		Treatments: risks.Treatments, Scale: []int{1, 2, 3, 4, 5},
		Filtered: f != riskFilters{}}
	if v.CanManage {
		as, err := rq.Deps.Risks.ListAssessments(rq.Context(), rq.Call)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Status == risks.AssessmentDraft {
				v.Assessments = append(v.Assessments, a)
			}
		}
	}
	return rq.Render(http.StatusOK, "risks", "risks.title", v)
}

// intForm reads a whole number of a form (0 when absent).
func (rq *Request) intForm(field string) (int, error) {
	v := rq.form(field)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, medguard.InvalidField(field, "%s must be a number", field)
	}
	return n, nil
}

// dateForm reads an optional date of a form as the end of that day.
func (rq *Request) dateForm(field string) (time.Time, error) {
	if rq.form(field) == "" {
		return time.Time{}, nil
	}
	return rq.dayEnd(field, rq.form(field))
}

func createRisk(rq *Request) error {
	l, err := rq.intForm("likelihood")
	if err != nil {
		return err
	}
	i, err := rq.intForm("impact")
	if err != nil {
		return err
	}
	review, err := rq.dateForm("review_at")
	if err != nil {
		return err
	}
	r, err := rq.Deps.Risks.CreateRisk(rq.Context(), rq.Call, risks.NewRisk{Title: rq.form("title"), AssetID: rq.form("asset_id"),
		AssetName: rq.form("asset_name"), Threat: rq.form("threat"), Vulnerability: rq.form("vulnerability"), Likelihood: l, Impact: i,
		Treatment: rq.form("treatment"), TreatmentPlan: rq.PostFormValue("treatment_plan"), Owner: rq.form("owner"), ReviewAt: review,
		AssessmentID: rq.form("assessment_id")})
	if err != nil {
		return err
	}
	return rq.Redirect("/risks/"+r.ID, "risk_created")
}

type heatMapView struct {
	Heat   *heatView
	Levels []risks.LevelCount
	Bands  []string
}

func heatMapPage(rq *Request) error {
	h, err := rq.Deps.Risks.HeatMap(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "risk_heatmap", "heatmap.title", heatMapView{Heat: newHeatView(h), Levels: h.Levels, Bands: risks.Levels})
}

type riskView struct {
	R          *risks.Risk
	Level      Cell
	Countdown  string
	CanManage  bool
	CanAccept  bool
	Treatments []string
	Scale      []int
	History    []riskEventRow
	MaxReview  string
}

type riskEventRow struct {
	risks.Event
	Kind  string
	Score int
}

func riskPage(rq *Request) error {
	r, err := rq.Deps.Risks.GetRisk(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	v := riskView{R: r, Level: rq.levelCell(r.Level), CanManage: rq.Can(policy.RiskManage) && r.Status == risks.Open,
		CanAccept: rq.Can(policy.RiskAccept) && r.Acceptance == risks.AcceptancePending, Treatments: risks.Treatments, Scale: []int{1, 2, 3, 4, 5}}
	if r.Status == risks.Open {
		v.Countdown = rq.countdown(r.ReviewDueAt, now)
	}
	for _, e := range r.History {
		v.History = append(v.History, riskEventRow{Event: e, Kind: rq.T("risk.event." + e.Kind), Score: risks.Score(e.Likelihood, e.Impact)})
	}
	return rq.Render(http.StatusOK, "risk", "risk.title", v)
}

func editRisk(rq *Request) error {
	id := rq.PathValue("id")
	owner, plan := rq.form("owner"), rq.PostFormValue("treatment_plan")
	var ch risks.RiskChanges
	if owner != "" {
		ch.Owner = &owner
	}
	if strings.TrimSpace(plan) != "" {
		ch.TreatmentPlan = &plan
	}
	if _, err := rq.Deps.Risks.UpdateRisk(rq.Context(), rq.Call, id, ch); err != nil {
		return err
	}
	return rq.Redirect("/risks/"+id, "risk_changed")
}

func reviewRisk(rq *Request) error {
	id := rq.PathValue("id")
	l, err := rq.intForm("likelihood")
	if err != nil {
		return err
	}
	i, err := rq.intForm("impact")
	if err != nil {
		return err
	}
	next, err := rq.dateForm("next_review_at")
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Risks.ReviewRisk(rq.Context(), rq.Call, id, risks.Review{Likelihood: l, Impact: i, Treatment: rq.form("treatment"),
		TreatmentPlan: rq.PostFormValue("treatment_plan"), Note: rq.PostFormValue("note"), NextReviewAt: next}); err != nil {
		return err
	}
	return rq.Redirect("/risks/"+id, "risk_reviewed")
}

func decideAcceptance(rq *Request) error {
	id := rq.PathValue("id")
	accept := rq.form("decision") == "accept"
	if _, err := rq.Deps.Risks.DecideAcceptance(rq.Context(), rq.Call, id, risks.AcceptanceDecision{Accept: accept,
		Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	if accept {
		return rq.Redirect("/risks/"+id, "risk_accepted")
	}
	return rq.Redirect("/risks/"+id, "risk_acceptance_refused")
}

func closeRisk(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Risks.CloseRisk(rq.Context(), rq.Call, id, risks.Closing{Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/risks/"+id, "risk_closed")
}

type riskAssessmentsView struct {
	Assessments   []risks.Assessment
	Introductions []introductionRow
	CanManage     bool
}

type introductionRow struct {
	risks.Introduction
	Done, Total int
}

func riskAssessmentsPage(rq *Request) error {
	as, err := rq.Deps.Risks.ListAssessments(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	its, err := rq.Deps.Risks.ListIntroductions(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	v := riskAssessmentsView{Assessments: as, CanManage: rq.Can(policy.RiskManage)}
	for _, it := range its {
		row := introductionRow{Introduction: it, Total: len(it.Items)}
		for _, c := range it.Items {
			if c.Done {
				row.Done++
			}
		}
		v.Introductions = append(v.Introductions, row)
	}
	return rq.Render(http.StatusOK, "risk_assessments", "assessments.title", v)
}

func createAssessment(rq *Request) error {
	a, err := rq.Deps.Risks.CreateAssessment(rq.Context(), rq.Call, risks.NewAssessment{Title: rq.form("title"), System: rq.form("system"),
		AssetID: rq.form("asset_id"), AssetName: rq.form("asset_name")})
	if err != nil {
		return err
	}
	return rq.Redirect("/risk-assessments/"+a.ID, "assessment_created")
}

func assessmentPage(rq *Request) error {
	a, err := rq.Deps.Risks.GetAssessment(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "risk_assessment", "assessment.title", map[string]any{"A": a,
		"CanManage": rq.Can(policy.RiskManage) && a.Status == risks.AssessmentDraft,
		"RisksLink": "/risks?" + url.Values{"assessment": {a.ID}}.Encode()})
}

func completeAssessment(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Risks.CompleteAssessment(rq.Context(), rq.Call, id, risks.AssessmentCompletion{Summary: rq.PostFormValue("summary")}); err != nil {
		return err
	}
	return rq.Redirect("/risk-assessments/"+id, "assessment_completed")
}

func createIntroduction(rq *Request) error {
	planned, err := rq.dayEnd("planned_at", rq.form("planned_at"))
	if err != nil {
		return err
	}
	it, err := rq.Deps.Risks.CreateIntroduction(rq.Context(), rq.Call, risks.NewIntroduction{System: rq.form("system"),
		AssetID: rq.form("asset_id"), AssetName: rq.form("asset_name"), PlannedAt: planned})
	if err != nil {
		return err
	}
	return rq.Redirect("/system-introductions/"+it.ID, "introduction_created")
}

type introductionView struct {
	I         *risks.Introduction
	Completed []risks.Assessment
	CanManage bool
	CanAccept bool
	Done      int
}

func introductionPage(rq *Request) error {
	it, err := rq.Deps.Risks.GetIntroduction(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := introductionView{I: it, CanManage: rq.Can(policy.RiskManage) && it.Status == risks.IntroductionOpen,
		CanAccept: rq.Can(policy.RiskAccept) && it.Status == risks.IntroductionOpen}
	for _, c := range it.Items {
		if c.Done {
			v.Done++
		}
	}
	if v.CanManage {
		as, err := rq.Deps.Risks.ListAssessments(rq.Context(), rq.Call)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Status == risks.AssessmentCompleted {
				v.Completed = append(v.Completed, a)
			}
		}
	}
	return rq.Render(http.StatusOK, "system_introduction", "introduction.title", v)
}

func checkIntroductionItem(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Risks.CheckItem(rq.Context(), rq.Call, id, rq.PathValue("item"), risks.ItemCheck{Note: rq.PostFormValue("note"),
		AssessmentID: rq.form("assessment_id")}); err != nil {
		return err
	}
	return rq.Redirect("/system-introductions/"+id, "item_checked")
}

func approveGoLive(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Risks.ApproveGoLive(rq.Context(), rq.Call, id, risks.GoLive{Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/system-introductions/"+id, "golive_approved")
}

// RiskTile is the dashboard's risk register at a glance: the open risks,
// those past their review, the acceptances waiting for the leadership, the
// next review due.
type RiskTile struct {
	Shown                  bool
	Open, Overdue, Pending int
	High                   int // high and critical
	NextReview             string
}

// loadRiskTile reads the tile for those who may see the risks.
func loadRiskTile(rq *Request, now time.Time) (RiskTile, error) {
	if rq.Deps.Risks == nil || !rq.Can(policy.RiskRead) {
		return RiskTile{}, nil
	}
	h, err := rq.Deps.Risks.HeatMap(rq.Context(), rq.Call)
	if hidden(err) {
		return RiskTile{}, nil
	}
	if err != nil {
		return RiskTile{}, err
	}
	t := RiskTile{Shown: true, Open: h.Open, Overdue: h.Overdue, Pending: h.PendingAcceptance}
	for _, l := range h.Levels {
		if l.Level == risks.High || l.Level == risks.Critical {
			t.High += l.Count
		}
	}
	if h.NextReviewAt != nil {
		t.NextReview = fmt.Sprintf("%s · %s", rq.localText(*h.NextReviewAt), rq.countdown(*h.NextReviewAt, now))
	}
	return t, nil
}

// The alerts of the risk register and the drills (risksplans.go in
// internal/cli raises them) in words, for the alerts pages.

// registerAlertRules are their detection rules, to filter by.
var registerAlertRules = []string{risks.ReviewOverdueRule, plans.PlanReviewOverdueRule, plans.ImprovementOverdueRule,
	plans.CadenceMissedRule, plans.RetrainingRule}

// dueAtPattern reads the due date out of an overdue notice's explanation
// ("… was due 2026-12-31T15:30:00Z").
var dueAtPattern = regexp.MustCompile(`was due (\S+)`)

// registerAlertHref is the page an alert of these registers is about,
// for those who may open it ("" otherwise).
func (rq *Request) registerAlertHref(a detect.Alert) string {
	switch a.Rule {
	case risks.ReviewOverdueRule:
		if medguard.ValidID(a.Key) && rq.Can(policy.RiskRead) {
			return "/risks/" + a.Key
		}
	case plans.PlanReviewOverdueRule:
		if medguard.ValidID(a.Key) && rq.Can(policy.PlanRead) {
			return "/plans/" + a.Key
		}
	case plans.ImprovementOverdueRule, plans.CadenceMissedRule, plans.RetrainingRule:
		if rq.Can(policy.PlanRead) {
			return "/drills"
		}
	case rectify.OverdueRule: // issue 14 (rectify.go)
		if medguard.ValidID(a.Key) && rq.Can(policy.RectificationRead) {
			return "/rectifications/" + a.Key
		}
	}
	return ""
}

// registerAlertSubject names what such an alert is about.
func (rq *Request) registerAlertSubject(a detect.Alert) (string, bool) {
	switch a.Rule {
	case risks.ReviewOverdueRule:
		return rq.T("alerts.subject.risk"), true
	case plans.PlanReviewOverdueRule:
		return rq.T("alerts.subject.plan"), true
	case plans.ImprovementOverdueRule, plans.CadenceMissedRule:
		return rq.T("alerts.subject.drill"), true
	case plans.RetrainingRule:
		return rq.Dept(a.Key), true
	}
	return "", false
}

// registerAlertExplanation says why such an alert was raised.
func (rq *Request) registerAlertExplanation(a detect.Alert) (string, bool) {
	due := ""
	if m := dueAtPattern.FindStringSubmatch(a.Explanation); m != nil {
		if t, err := time.Parse(time.RFC3339, m[1]); err == nil {
			due = rq.localText(t)
		}
	}
	switch a.Rule {
	case risks.ReviewOverdueRule, plans.PlanReviewOverdueRule, plans.ImprovementOverdueRule:
		return rq.T("alerts.explain."+a.Rule, due), true
	case plans.CadenceMissedRule:
		kind, period, _ := strings.Cut(a.Key, "-")
		return rq.T("alerts.explain."+a.Rule, rq.textOr("drill.kind."+kind, kind), rq.periodWords(period)), true
	case plans.RetrainingRule:
		return rq.T("alerts.explain."+a.Rule, rq.Dept(a.Key)), true
	}
	return "", false
}
