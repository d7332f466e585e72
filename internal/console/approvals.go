package console

import (
	"errors"
	"net/http"
	"strings"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/policy"
)

// The approvals inbox (four-eyes, SPEC §3) and the break-glass review queue
// of department heads.

func init() {
	register(
		Page{Method: "GET", Path: "/approvals", Nav: &Nav{Key: "nav.approvals", Order: 30}, Handle: approvalsPage},
		Page{Method: "POST", Path: "/approvals/{id}/approve", Any: deciders, Handle: decideApproval},
		Page{Method: "POST", Path: "/approvals/{id}/refuse", Any: deciders, Handle: decideApproval},
	)
}

// deciders hold one of the permissions to decide four-eyes requests.
var deciders = []policy.Permission{policy.ApprovalDecide, policy.ApprovalDecideDepartment}

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
	Items    []approvalItem
	Next     string
	Status   string
	Statuses []string
	Error    string
	// Secret is the approver's half of a split password, shown once after
	// approving a password reset.
	Secret string
}

// approvalItem is a request in the inbox, and whether the caller may
// decide it (the requester sees their own requests without the buttons).
type approvalItem struct {
	approvals.Approval
	CanDecide bool
}

func approvalsPage(rq *Request) error {
	return renderApprovals(rq, http.StatusOK, "", "")
}

func renderApprovals(rq *Request, status int, errKey, secret string) error {
	st := statusFilter(rq.URL.Query().Get("status"), approvals.Pending, approvals.Approved, approvals.Refused,
		approvals.Cancelled, approvals.Expired, "all")
	items, next, err := rq.Deps.Approvals.List(rq.Context(), rq.Call, st, rq.Cursor(), PageSize)
	if err != nil {
		return err
	}
	v := approvalsView{Next: next, Status: st, Error: errKey, Secret: secret,
		Statuses: []string{approvals.Pending, approvals.Approved, approvals.Refused, approvals.Cancelled, approvals.Expired, "all"}}
	for _, a := range items {
		v.Items = append(v.Items, approvalItem{Approval: a, CanDecide: a.Status == approvals.Pending && a.RequestedBy != rq.Call.Actor.Name &&
			a.SubjectUserID != rq.Call.Actor.ID && (rq.Can(policy.ApprovalDecide) && a.Approvers.SecurityOfficer ||
			rq.Can(policy.ApprovalDecideDepartment) && a.Approvers.DepartmentHead == rq.Call.Actor.Department)})
	}
	return rq.Render(status, "approvals", "approvals.title", v)
}

func decideApproval(rq *Request) error {
	id, note := rq.PathValue("id"), strings.TrimSpace(rq.PostFormValue("note"))
	decide, flash := rq.Deps.Approvals.Approve, "approved"
	if strings.HasSuffix(rq.URL.Path, "/refuse") {
		decide, flash = rq.Deps.Approvals.Refuse, "refused"
	}
	a, err := decide(rq.Context(), rq.Call, id, note)
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Kind == medguard.Conflict) {
			return renderApprovals(rq, http.StatusUnprocessableEntity, "approvals.error.decide", "")
		}
		return err
	}
	if a.Secret != "" {
		// The approver's half of a split password: shown once, here.
		return renderApprovals(rq, http.StatusOK, "", a.Secret)
	}
	return rq.Redirect("/approvals", flash)
}
