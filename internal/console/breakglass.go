package console

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// The break-glass review queue (紧急访问复核, SPEC §3): one item per
// break-glass window, naming the patient (as the department head may see
// them), the records read, the reader by name and department, the purpose,
// the reason and the time. A head judges each item 合理 or 不合理 — nothing
// is chosen for them, and 不合理 needs a note. The items are one form, each
// with its own button: when a judgement is refused, the page comes back
// with the message next to that item and every item as it was typed.

func init() {
	register(
		Page{Method: "GET", Path: "/break-glass", Any: []policy.Permission{policy.BreakGlassReview, policy.BreakGlassRead},
			Nav: &Nav{Key: "nav.reviews", Order: 35}, Handle: reviewsPage},
		Page{Method: "POST", Path: "/break-glass/{id}/review", Any: []policy.Permission{policy.BreakGlassReview}, Handle: review},
	)
}

// reviewStatuses are the queue's filters, the default first.
var reviewStatuses = []string{"pending", "overdue", "reviewed", "all"}

type reviewsView struct {
	Items     []reviewItem
	Next      string
	Status    string
	After     string // the page's cursor, carried by the form
	Statuses  []string
	CanReview bool
	Error     string // a message for the page, not for an item
}

// reviewItem is an event as the queue shows it, with what was typed into
// its part of the form.
type reviewItem struct {
	records.BreakGlassEvent
	Reader       string // name (department)
	Patient      string // the name, as far as shown
	PatientFacts string // gender, age
	MRN          string
	Departments  string // by name
	Reads        []readLine
	Views        string // the other views of the patient's data, in words
	Reviewer     string
	// FormOutcome and FormNote are the form's values; Error the message
	// next to the item (a catalog key), and ErrorField the field it
	// concerns.
	FormOutcome, FormNote string
	Error, ErrorField     string
}

// readLine is a record read in a window.
type readLine struct {
	RecordID, At, Type, Title, Department string
}

func reviewsPage(rq *Request) error {
	q := rq.URL.Query()
	return renderReviews(rq, http.StatusOK, reviewStatusOf(q.Get("status")), rq.Cursor(), nil, "", "", "")
}

// reviewStatusOf keeps a status filter to the known ones.
func reviewStatusOf(v string) string {
	for _, s := range reviewStatuses {
		if v == s {
			return v
		}
	}
	return reviewStatuses[0]
}

// renderReviews shows a page of the queue. form, when set, holds what was
// typed (a refused judgement); failed names the item whose judgement was
// refused with the message errKey about field.
func renderReviews(rq *Request, status int, st, after string, form url.Values, failed, errKey, field string) error {
	items, next, err := rq.Deps.Records.ListBreakGlass(rq.Context(), rq.Call, records.BreakGlassFilter{Status: st,
		After: after, Limit: PageSize, Detail: true})
	if err != nil {
		return err
	}
	v := reviewsView{Next: next, Status: st, After: after, Statuses: reviewStatuses, CanReview: rq.Can(policy.BreakGlassReview)}
	found := failed == ""
	for _, e := range items {
		it := rq.reviewItem(e)
		if form != nil {
			it.FormOutcome, it.FormNote = form.Get("outcome-"+e.ID), form.Get("note-"+e.ID)
		}
		if e.ID == failed {
			it.Error, it.ErrorField, found = errKey, field, true
		}
		v.Items = append(v.Items, it)
	}
	if !found {
		v.Error = errKey
	}
	return rq.Render(status, "reviews", "glassreview.title", v)
}

// reviewItem puts an event in the page's words.
func (rq *Request) reviewItem(e records.BreakGlassEvent) reviewItem {
	it := reviewItem{BreakGlassEvent: e, Reader: rq.Person(e.Username), Reviewer: rq.Person(e.ReviewedBy)}
	if p := e.Patient; p != nil {
		facts := []string{rq.textOr("gender."+p.Gender, p.Gender)}
		if p.Age != nil {
			facts = append(facts, rq.T("patient.age_years", *p.Age))
		}
		it.Patient, it.PatientFacts, it.MRN = p.Name, strings.Join(facts, rq.T("reading.list_sep")), p.MRN
	}
	names := make([]string, len(e.Departments))
	for i, d := range e.Departments {
		names[i] = rq.Dept(d)
	}
	it.Departments = strings.Join(names, rq.T("reading.list_sep"))
	var views []string
	for _, rd := range e.Reads {
		if rd.RecordID != "" {
			it.Reads = append(it.Reads, readLine{RecordID: rd.RecordID, At: rq.TimeCell(rd.At).Text, Type: rq.recordType(rd.Type), Title: rd.Title,
				Department: rq.Dept(rd.Department)})
			continue
		}
		if w := rq.T("glassreview.view." + rd.Action); rq.c.catalog.has("glassreview.view."+rd.Action) && !slices.Contains(views, w) {
			views = append(views, w)
		}
	}
	it.Views = strings.Join(views, rq.T("reading.list_sep"))
	return it
}

// review records a judgement. The fields of the form are per item
// (outcome-<id>, note-<id>); the form also carries the page's filter.
func review(rq *Request) error {
	id := rq.PathValue("id")
	st, after := reviewStatusOf(rq.PostFormValue("status")), ""
	if a := rq.PostFormValue("after"); cursorPattern.MatchString(a) {
		after = a
	}
	outcome := cmp.Or(rq.form("outcome-"+id), rq.form("outcome"))
	note := cmp.Or(rq.form("note-"+id), rq.form("note"))
	again := func(key, field string) error {
		return renderReviews(rq, http.StatusUnprocessableEntity, st, after, rq.PostForm, id, key, field)
	}
	if outcome == "" {
		return again("glassreview.error.outcome", "outcome")
	}
	_, err := rq.Deps.Records.ReviewBreakGlass(rq.Context(), rq.Call, id, outcome, note)
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Kind == medguard.Conflict) {
			switch {
			case me.Kind == medguard.Conflict:
				return again("glassreview.error.conflict", "")
			case me.Field == "note":
				return again("glassreview.error.note", "note")
			case me.Field == "outcome":
				return again("glassreview.error.outcome", "outcome")
			}
			return again("glassreview.error.invalid", "")
		}
		return err
	}
	target := "/break-glass"
	if st != reviewStatuses[0] {
		target += "?status=" + st
	}
	return rq.Redirect(target, "reviewed")
}
