package console

import (
	"net/http"
	"strconv"
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

type caseRow struct {
	incidents.Case
	CriterionName string
	Deadlines     []deadlineRow
}

type casesView struct {
	Items    []caseRow
	Next     string
	Status   string
	Statuses []string
}

func casesPage(rq *Request) error {
	st := statusFilter(rq.URL.Query().Get("status"), append([]string{"all"}, CaseStatuses...)...)
	items, next, err := rq.Deps.Incidents.ListCases(rq.Context(), rq.Call, st, rq.Cursor(), PageSize)
	if err != nil {
		return err
	}
	v := casesView{Next: next, Status: st, Statuses: append([]string{"all"}, CaseStatuses...)}
	for _, c := range items {
		v.Items = append(v.Items, caseRow{Case: c, CriterionName: rq.criterionName(c.Criterion), Deadlines: rq.deadlineRows(c.Deadlines)})
	}
	return rq.Render(http.StatusOK, "cases", "cases.title", v)
}

// candidateRow is a candidate with its evidence as a form value.
type candidateRow struct {
	incidents.Candidate
	KindName string
	Indexes  string
}

type candidatesView struct {
	Items    []candidateRow
	Criteria []criterionOption
	Form     map[string]string
	Error    *formError
}

// candidateDays is how far back the candidates look.
const candidateDays = 30

func candidatesPage(rq *Request) error {
	return renderCandidates(rq, http.StatusOK, map[string]string{}, nil)
}

func renderCandidates(rq *Request, status int, form map[string]string, fe *formError) error {
	to := rq.Deps.Clock.Now().Add(time.Millisecond)
	cs, err := rq.Deps.Incidents.Candidates(rq.Context(), rq.Call, to.AddDate(0, 0, -candidateDays), to)
	if err != nil {
		return err
	}
	v := candidatesView{Criteria: rq.criterionOptions(incidents.CaseCriteria), Form: form, Error: fe}
	for _, c := range cs {
		idx := make([]string, len(c.AuditIndexes))
		for i, n := range c.AuditIndexes {
			idx[i] = strconv.FormatUint(n, 10)
		}
		v.Items = append(v.Items, candidateRow{Candidate: c, KindName: rq.criterionName(c.Kind), Indexes: strings.Join(idx, ", ")})
	}
	return rq.Render(status, "candidates", "cases.candidates.title", v)
}

// userIDOf resolves the person a case is about: an id, or a username
// looked up in the user list (which the case managers may read).
func userIDOf(rq *Request, who string) (string, error) {
	if medguard.ValidID(who) || who == "" {
		return who, nil
	}
	after := ""
	for range 50 {
		us, next, err := rq.Deps.Identity.ListUsers(rq.Context(), rq.Call, after, 200)
		if err != nil {
			return "", err
		}
		for _, u := range us {
			if u.Username == who {
				return u.ID, nil
			}
		}
		if next == "" {
			break
		}
		after = next
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
	CriterionName string
	Deadlines     []deadlineRow
	Manage        bool // the caller manages cases
	Subject       bool // the caller is the person concerned
	AppealOpen    bool
	Error         *formError
}

func casePage(rq *Request) error { return renderCase(rq, http.StatusOK, nil) }

func renderCase(rq *Request, status int, fe *formError) error {
	c, err := rq.Deps.Incidents.GetCase(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	v := caseView{Case: c, CriterionName: rq.criterionName(c.Criterion), Deadlines: rq.deadlineRows(c.Deadlines),
		Manage: rq.Can(policy.AccountabilityManage), Subject: c.SubjectUserID == rq.Call.Actor.ID, Error: fe,
		AppealOpen: c.Status == incidents.Decided && c.AppealDueAt != nil && now.Before(*c.AppealDueAt)}
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
