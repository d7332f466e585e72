package console

import (
	"errors"
	"net/http"
	"strings"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// The approvals inbox (four-eyes, SPEC §3) and the break-glass review queue
// of department heads.

func init() {
	register(
		Page{Method: "GET", Path: "/approvals", Any: []policy.Permission{policy.ApprovalDecide},
			Nav: &Nav{Key: "nav.approvals", Order: 30}, Handle: approvalsPage},
		Page{Method: "POST", Path: "/approvals/{id}/approve", Any: []policy.Permission{policy.ApprovalDecide}, Handle: decideApproval},
		Page{Method: "POST", Path: "/approvals/{id}/refuse", Any: []policy.Permission{policy.ApprovalDecide}, Handle: decideApproval},
		Page{Method: "GET", Path: "/break-glass", Any: []policy.Permission{policy.BreakGlassReview, policy.BreakGlassRead},
			Nav: &Nav{Key: "nav.reviews", Order: 35}, Handle: reviewsPage},
		Page{Method: "POST", Path: "/break-glass/{id}/review", Any: []policy.Permission{policy.BreakGlassReview}, Handle: review},
	)
}

// statusFilter keeps a status query parameter to the allowed values.
func statusFilter(v string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return allowed[0]
}

type approvalsView struct {
	Items    []approvals.Approval
	Next     string
	Status   string
	Statuses []string
	Error    string
}

func approvalsPage(rq *Request) error {
	return renderApprovals(rq, http.StatusOK, "")
}

func renderApprovals(rq *Request, status int, errKey string) error {
	st := statusFilter(rq.URL.Query().Get("status"), approvals.Pending, approvals.Approved, approvals.Refused,
		approvals.Cancelled, approvals.Expired, "all")
	items, next, err := rq.Deps.Approvals.List(rq.Context(), rq.Call, st, rq.Cursor(), PageSize)
	if err != nil {
		return err
	}
	return rq.Render(status, "approvals", "approvals.title", approvalsView{Items: items, Next: next, Status: st,
		Statuses: []string{approvals.Pending, approvals.Approved, approvals.Refused, approvals.Cancelled, approvals.Expired, "all"},
		Error:    errKey})
}

func decideApproval(rq *Request) error {
	id, note := rq.PathValue("id"), strings.TrimSpace(rq.PostFormValue("note"))
	decide, flash := rq.Deps.Approvals.Approve, "approved"
	if strings.HasSuffix(rq.URL.Path, "/refuse") {
		decide, flash = rq.Deps.Approvals.Refuse, "refused"
	}
	if _, err := decide(rq.Context(), rq.Call, id, note); err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Kind == medguard.Conflict) {
			return renderApprovals(rq, http.StatusUnprocessableEntity, "approvals.error.decide")
		}
		return err
	}
	return rq.Redirect("/approvals", flash)
}

type reviewsView struct {
	Items     []records.BreakGlassEvent
	Next      string
	Status    string
	Statuses  []string
	CanReview bool
	Error     string
}

func reviewsPage(rq *Request) error { return renderReviews(rq, http.StatusOK, "") }

func renderReviews(rq *Request, status int, errKey string) error {
	st := statusFilter(rq.URL.Query().Get("status"), "pending", "overdue", "reviewed", "all")
	items, next, err := rq.Deps.Records.ListBreakGlass(rq.Context(), rq.Call, records.BreakGlassFilter{Status: st,
		After: rq.Cursor(), Limit: PageSize})
	if err != nil {
		return err
	}
	return rq.Render(status, "reviews", "reviews.title", reviewsView{Items: items, Next: next, Status: st,
		Statuses: []string{"pending", "overdue", "reviewed", "all"}, CanReview: rq.Can(policy.BreakGlassReview), Error: errKey})
}

func review(rq *Request) error {
	_, err := rq.Deps.Records.ReviewBreakGlass(rq.Context(), rq.Call, rq.PathValue("id"),
		rq.PostFormValue("outcome"), rq.PostFormValue("note"))
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Kind == medguard.Conflict) {
			key := "reviews.error.invalid"
			if me.Field == "note" {
				key = "reviews.error.note"
			}
			return renderReviews(rq, http.StatusUnprocessableEntity, key)
		}
		return err
	}
	return rq.Redirect("/break-glass", "reviewed")
}
