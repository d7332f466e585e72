package console

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// The approvals inbox (four-eyes, SPEC §3); the break-glass review queue
// is in breakglass.go.

func init() {
	register(
		Page{Method: "GET", Path: "/approvals", Nav: &Nav{Key: "nav.approvals", Order: 30}, Handle: approvalsPage},
		Page{Method: "POST", Path: "/approvals/{id}/approve", Any: deciders, Handle: decideApproval},
		Page{Method: "POST", Path: "/approvals/{id}/refuse", Any: deciders, Handle: decideApproval},
	)
}

// deciders hold one of the permissions to decide four-eyes requests.
var deciders = []policy.Permission{policy.ApprovalDecide, policy.ApprovalDecideDepartment, policy.DeidApprove, policy.ExportApprove}

// statusFilter keeps a status query parameter to the allowed values.
func statusFilter(v string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return allowed[0]
}

// approvalStatuses are the inbox's status filter, the default first.
var approvalStatuses = []string{approvals.Pending, approvals.Approved, approvals.Refused, approvals.Cancelled,
	approvals.Expired, "all"}

// approvalsFilter is the inbox's filter form (GET).
type approvalsFilter struct {
	Status, Kind, Department string
	// Who: "" for every request the caller sees, "decide" for those the
	// caller may decide, "mine" for the caller's own.
	Who string
}

type approvalsView struct {
	Filter      approvalsFilter
	Statuses    []string
	Kinds       []string
	Departments []identity.Department
	Grid        *Grid
	// Decidable and Mine count the requests of the filter that the caller
	// may decide, and the caller's own.
	Decidable, Mine int
	// CanDecide: the caller holds a permission to decide requests.
	CanDecide bool
	Error     string
	// Secret is the approver's half of a split password, shown once after
	// approving a password reset, and Whose the user it resets.
	Secret, Whose string
}

// itemState is what a request's row keeps of a failed decision: the note
// typed, and the error's catalog key.
type itemState struct {
	ID, Note, Error string
}

func approvalsPage(rq *Request) error {
	return renderApprovals(rq, http.StatusOK, itemState{}, nil)
}

// renderApprovals shows the inbox; failed, if set, is a decision that
// failed, shown on its row; done, if set, is an approved password reset
// whose approver's half is shown once.
func renderApprovals(rq *Request, status int, failed itemState, done *approvals.Approval) error {
	rq.pageAt("/approvals")
	q := rq.URL.Query()
	f := approvalsFilter{Status: statusFilter(q.Get("status"), approvalStatuses...), Kind: q.Get("kind"),
		Department: q.Get("department"), Who: statusFilter(q.Get("who"), "", "decide", "mine")}
	items, next, err := rq.Deps.Approvals.List(rq.Context(), rq.Call, f.Status, "", MaxRows)
	if err != nil {
		return err
	}
	kinds := knownKinds(rq.Deps.Approvals.Kinds())
	if !slices.Contains(kinds, f.Kind) {
		f.Kind = ""
	}
	v := approvalsView{Filter: f, Statuses: approvalStatuses, Kinds: kinds, Departments: rq.c.dir.departments(),
		CanDecide: anyOf(rq.Perms, deciders), Error: failed.Error}
	if failed.ID != "" && failed.Error == "" {
		v.Error = "approvals.error.decide"
	}
	if done != nil && done.Secret != "" {
		v.Secret, v.Whose = done.Secret, rq.Person(done.SubjectUserID)
	}
	words := newDecisionWords(rq)
	var rows []Row
	for i := range items {
		a := &items[i]
		d, err := words.describe(a)
		if err != nil {
			return err
		}
		mine := a.RequestedBy == rq.Call.Actor.Name
		switch {
		case f.Kind != "" && a.Kind != f.Kind,
			f.Department != "" && d.Department != f.Department,
			f.Who == "decide" && !a.MayDecide,
			f.Who == "mine" && !mine:
			continue
		}
		if a.MayDecide {
			v.Decidable++
		}
		if mine {
			v.Mine++
		}
		st := itemState{ID: a.ID}
		if failed.ID == a.ID {
			st = failed
		}
		row, err := words.row(a, d, mine, st)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	g, _, err := rq.Grid("approvals", approvalColumns, rows, GridOptions{DefaultSort: "requested", DefaultDesc: true,
		Capped: next != "", Empty: "approvals.none"})
	if err != nil {
		return err
	}
	v.Grid = g
	return rq.Render(status, "approvals", "approvals.title", v)
}

// approvalColumns are the inbox's columns.
var approvalColumns = []Column{
	{Key: "request", Title: "approvals.col.request", Sort: true},
	{Key: "status", Title: "approvals.col.status", Sort: true},
	{Key: "requested", Title: "approvals.col.requested_at", Sort: true},
	{Key: "approvers", Title: "approvals.col.approvers"},
	{Key: "decision", Title: "approvals.col.decision"},
	{Key: "actions", Title: "approvals.col.actions"},
}

// knownKinds orders the kinds of request for the filter: the built-in
// ones as the security model lists them, then any other.
func knownKinds(names []string) []string {
	order := []string{approvals.RoleGrant, approvals.DepartmentChange, approvals.PasswordReset, approvals.TOTPReset,
		approvals.CertificateSet, approvals.APIKeyCreate, approvals.CareTeamAdd, approvals.AccessGrant, approvals.DepartmentUnlocked}
	out := slices.DeleteFunc(slices.Clone(order), func(k string) bool { return !slices.Contains(names, k) })
	rest := slices.DeleteFunc(slices.Clone(names), func(k string) bool { return slices.Contains(order, k) })
	slices.Sort(rest)
	return append(out, rest...)
}

func decideApproval(rq *Request) error {
	id, note := rq.PathValue("id"), strings.TrimSpace(rq.PostFormValue("note"))
	decide, flash := rq.Deps.Approvals.Approve, "approved"
	refuse := strings.HasSuffix(rq.URL.Path, "/refuse")
	if refuse {
		decide, flash = rq.Deps.Approvals.Refuse, "refused"
	}
	a, err := decide(rq.Context(), rq.Call, id, note)
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Kind == medguard.Conflict) {
			key := "approvals.error.decide"
			switch {
			case me.Kind == medguard.Invalid && me.Field == "note" && refuse && note == "":
				key = "approvals.error.note_required"
			case me.Kind == medguard.Invalid && me.Field == "note":
				key = "approvals.error.note_long"
			}
			return renderApprovals(rq, http.StatusUnprocessableEntity, itemState{ID: idPath(id), Note: note, Error: key}, nil)
		}
		return err
	}
	if a.Secret != "" {
		// The approver's half of a split password: shown once, here.
		return renderApprovals(rq, http.StatusOK, itemState{}, a)
	}
	return rq.Redirect("/approvals", flash)
}

// cancelApproval withdraws the caller's own pending request.
func cancelApproval(rq *Request) error {
	if _, err := rq.Deps.Approvals.Cancel(rq.Context(), rq.Call, rq.PathValue("id")); err != nil {
		if medguard.IsKind(err, medguard.Conflict) {
			return renderApprovals(rq, http.StatusUnprocessableEntity, itemState{ID: idPath(rq.PathValue("id")),
				Error: "approvals.error.cancel"}, nil)
		}
		return err
	}
	return rq.Redirect("/approvals?who=mine", "approval_cancelled")
}
