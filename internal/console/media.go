package console

import (
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/detect"
	"medguard/internal/media"
	"medguard/internal/policy"
)

// The removable media register (移动存储介质, issue 13): the devices as a
// grid (unencrypted ones flagged, overdue loans marked) with CSV export and
// the form to register one; a device's page with its history and the
// custodian's forms — lend (the lender's signature), take back, cancel a
// loan not yet signed, erase before a witness, dispose of; the loans page,
// where a borrower signs for a device lent to them. The service decides
// and logs; these pages only show and post.

func init() {
	register(
		Page{Method: "GET", Path: "/media", Any: []policy.Permission{policy.MediaRead}, Nav: &Nav{Key: "nav.media", Order: 60}, Handle: mediaPage},
		Page{Method: "POST", Path: "/media", Any: []policy.Permission{policy.MediaManage}, Handle: registerMedia},
		Page{Method: "GET", Path: "/media/loans", Any: []policy.Permission{policy.MediaRead, policy.MediaBorrow},
			Nav: &Nav{Key: "nav.media_loans", Order: 61}, Handle: mediaLoansPage},
		Page{Method: "POST", Path: "/media/loans/{id}/sign", Any: []policy.Permission{policy.MediaBorrow}, Handle: signMediaLoan},
		Page{Method: "POST", Path: "/media/loans/{id}/cancel", Any: []policy.Permission{policy.MediaManage}, Handle: mediaLoanStep("cancel")},
		Page{Method: "POST", Path: "/media/loans/{id}/return", Any: []policy.Permission{policy.MediaManage}, Handle: mediaLoanStep("return")},
		Page{Method: "GET", Path: "/media/{id}", Any: []policy.Permission{policy.MediaRead}, Handle: mediumPage},
		Page{Method: "POST", Path: "/media/{id}/lend", Any: []policy.Permission{policy.MediaManage}, Handle: lendMedia},
		Page{Method: "POST", Path: "/media/{id}/erase", Any: []policy.Permission{policy.MediaManage}, Handle: eraseMedia},
		Page{Method: "POST", Path: "/media/{id}/dispose", Any: []policy.Permission{policy.MediaManage}, Handle: disposeMedia},
	)
	noticeWords[media.OverdueRule] = noticeWord{
		Subject: func(rq *Request, a detect.Alert) string { return rq.T("media.alert_subject", a.Key) },
		Explain: func(rq *Request, a detect.Alert) string { return rq.T("alerts.explain.media_loan_overdue", a.Key) },
	}
}

type mediaView struct {
	Grid      *Grid
	Status    string
	Filters   []option
	CanManage bool
	Kinds     []string
	// Problem is what is wrong with a registration sent back; Form what
	// was typed.
	Problem string
	Form    map[string]string
}

func mediaPage(rq *Request) error { return renderMedia(rq, nil) }

// renderMedia shows the register; after a refused registration, with
// what is wrong and what was typed.
func renderMedia(rq *Request, refused error) error {
	status := rq.URL.Query().Get("status")
	v := mediaView{CanManage: rq.Can(policy.MediaManage), Kinds: media.Kinds, Form: map[string]string{}}
	code := http.StatusOK
	if refused != nil {
		msg, st, ok := rq.problemOf(refused, "media.error")
		if !ok {
			return refused
		}
		v.Problem, code = msg, st
		for _, f := range []string{"label", "kind", "model", "serial", "capacity_gb", "encrypted", "encryption"} {
			v.Form[f] = rq.PostFormValue(f)
		}
		u := *rq.URL
		u.Path, u.RawQuery = "/media", ""
		rq.URL = &u
		status = ""
	}
	v.Filters = append(v.Filters, option{Value: "", Text: rq.T("media.status.all")})
	for _, s := range append(append([]string{}, media.Statuses...), media.OverdueFilter, media.UnencryptedFilter) {
		v.Filters = append(v.Filters, option{Value: s, Text: rq.T("media.status." + s)})
		if s == status {
			v.Status = s
		}
	}
	ds, err := rq.Deps.Media.List(rq.Context(), rq.Call, v.Status)
	if err != nil {
		return err
	}
	cols := []Column{{Key: "label", Title: "media.col.label", Sort: true}, {Key: "kind", Title: "media.col.kind", Sort: true},
		{Key: "model", Title: "media.col.model"}, {Key: "encrypted", Title: "media.col.encrypted", Sort: true},
		{Key: "status", Title: "media.col.status", Sort: true}, {Key: "loan", Title: "media.col.loan"},
		{Key: "due", Title: "media.col.due", Sort: true}, {Key: "erased", Title: "media.col.erased", Sort: true}}
	rows := make([]Row, 0, len(ds))
	for _, d := range ds {
		enc := Cell{Text: d.Encryption, Class: "ok"}
		if !d.Encrypted {
			enc = Cell{Text: rq.T("media.unencrypted"), Class: "bad"}
		}
		r := Row{Cells: []Cell{{Text: d.Label, Href: "/media/" + d.ID, Class: "mono"}, {Text: rq.T("media.kind." + d.Kind)},
			{Text: d.Model + " · " + strconv.Itoa(d.CapacityGB) + " GB"}, enc, {Text: rq.T("media.status." + d.Status)}, {}, {}, {}}}
		if !d.Encrypted {
			r.Class = "flag"
		}
		if l := d.Loan; l != nil {
			r.Cells[5] = Cell{Text: rq.Person(l.Borrower) + " · " + rq.T("media.loan_status."+l.Status)}
			r.Cells[6] = rq.TimeCell(l.DueAt)
			if l.Overdue {
				r.Cells[6].Class, r.Class = "bad overdue", "flag"
				r.Cells[5].Text += " · " + rq.T("media.overdue")
			}
		}
		if e := d.LastErasure; e != nil {
			r.Cells[7] = rq.TimeCell(e.ErasedAt)
		}
		rows = append(rows, r)
	}
	g, handled, err := rq.Grid("media", cols, rows, GridOptions{DefaultSort: "label", Export: "media", Empty: "media.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(code, "media", "media.title", v)
}

func registerMedia(rq *Request) error {
	capacity, err := strconv.Atoi(rq.form("capacity_gb"))
	if err != nil {
		return renderMedia(rq, medguard.InvalidField("capacity_gb", "capacity_gb must be a number"))
	}
	d, err := rq.Deps.Media.Register(rq.Context(), rq.Call, media.NewDevice{Label: rq.form("label"), Kind: rq.form("kind"),
		Model: rq.PostFormValue("model"), Serial: rq.PostFormValue("serial"), CapacityGB: capacity,
		Encrypted: rq.form("encrypted") == "true", Encryption: rq.PostFormValue("encryption")})
	if err != nil {
		return renderMedia(rq, err)
	}
	return rq.Redirect("/media/"+d.ID, "media_registered")
}

type mediumView struct {
	D               *media.Device
	CanManage       bool
	Staff           []option
	ErasureMethods  []string
	DisposalMethods []string
	MinDue, MaxDue  string
	// Problem is what is wrong with a form sent back (Form says which).
	Problem, Form string
}

func mediumPage(rq *Request) error { return renderMedium(rq, "", nil) }

// renderMedium shows a device's page; after a refused form, with what is
// wrong next to it.
func renderMedium(rq *Request, form string, refused error) error {
	code := http.StatusOK
	problem := ""
	if refused != nil {
		msg, st, ok := rq.problemOf(refused, "media.error")
		if !ok {
			return refused
		}
		problem, code = msg, st
	}
	d, err := rq.Deps.Media.Get(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now().In(rq.c.zone)
	v := mediumView{D: d, CanManage: rq.Can(policy.MediaManage), ErasureMethods: media.ErasureMethods, DisposalMethods: media.DisposalMethods,
		MinDue: now.Format("2006-01-02"), MaxDue: now.Add(rq.Deps.Media.Config().MaxLoan).Format("2006-01-02"), Problem: problem, Form: form}
	if v.CanManage {
		v.Staff = rq.staffOptions()
	}
	return rq.Render(code, "medium", "media.one_title", v)
}

func lendMedia(rq *Request) error {
	due, err := rq.dayEnd("due_at", rq.PostFormValue("due_at"))
	if err != nil {
		return renderMedium(rq, "lend", err)
	}
	id := rq.PathValue("id")
	if _, err := rq.Deps.Media.Lend(rq.Context(), rq.Call, id, media.NewLoan{Borrower: rq.form("borrower"),
		Purpose: rq.PostFormValue("purpose"), DueAt: due}); err != nil {
		return renderMedium(rq, "lend", err)
	}
	return rq.Redirect("/media/"+id, "media_lent")
}

func eraseMedia(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Media.Erase(rq.Context(), rq.Call, id, media.NewErasure{Method: rq.form("method"), Witness: rq.form("witness"),
		Note: rq.PostFormValue("note")}); err != nil {
		return renderMedium(rq, "erase", err)
	}
	return rq.Redirect("/media/"+id, "media_erased")
}

func disposeMedia(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Media.Dispose(rq.Context(), rq.Call, id, media.NewDisposal{Method: rq.form("method"), Witness: rq.form("witness"),
		Note: rq.PostFormValue("note")}); err != nil {
		return renderMedium(rq, "dispose", err)
	}
	return rq.Redirect("/media/"+id, "media_disposed")
}

// mediaLoanStep takes a device back or cancels a loan not yet signed,
// back to the device's page.
func mediaLoanStep(step string) func(*Request) error {
	return func(rq *Request) error {
		do := rq.Deps.Media.Return
		if step == "cancel" {
			do = rq.Deps.Media.Cancel
		}
		l, err := do(rq.Context(), rq.Call, rq.PathValue("id"))
		if err != nil {
			return err
		}
		return rq.Redirect("/media/"+l.DeviceID, "media_"+step+"ed")
	}
}

type mediaLoansView struct {
	// Waiting are the caller's loans waiting for their signature; Mine
	// the rest of theirs.
	Waiting, Mine []media.Loan
	Grid          *Grid
	CanRead       bool
	CanBorrow     bool
}

func mediaLoansPage(rq *Request) error {
	v := mediaLoansView{CanRead: rq.Can(policy.MediaRead), CanBorrow: rq.Can(policy.MediaBorrow)}
	if v.CanBorrow {
		mine, err := rq.Deps.Media.Loans(rq.Context(), rq.Call, media.LoanQuery{Mine: true})
		if err != nil {
			return err
		}
		for _, l := range mine {
			if l.Status == media.AwaitingBorrower {
				v.Waiting = append(v.Waiting, l)
			} else {
				v.Mine = append(v.Mine, l)
			}
		}
	}
	if v.CanRead {
		ls, err := rq.Deps.Media.Loans(rq.Context(), rq.Call, media.LoanQuery{Status: rq.URL.Query().Get("status")})
		if err != nil {
			return err
		}
		cols := []Column{{Key: "label", Title: "media.col.label", Sort: true}, {Key: "lender", Title: "media.col.lender", Sort: true},
			{Key: "lent", Title: "media.col.lent", Sort: true}, {Key: "borrower", Title: "media.col.borrower", Sort: true},
			{Key: "signed", Title: "media.col.signed", Sort: true}, {Key: "due", Title: "media.col.due", Sort: true},
			{Key: "status", Title: "media.col.status", Sort: true}, {Key: "returned", Title: "media.col.returned", Sort: true}}
		rows := make([]Row, 0, len(ls))
		for _, l := range ls {
			status := Cell{Text: rq.T("media.loan_status." + l.Status)}
			r := Row{Cells: []Cell{{Text: l.Label, Href: "/media/" + l.DeviceID, Class: "mono"}, {Text: rq.Person(l.Lender)}, rq.TimeCell(l.LentAt),
				{Text: rq.Person(l.Borrower)}, {}, rq.TimeCell(l.DueAt), status, {}}}
			if l.SignedAt != nil {
				r.Cells[4] = rq.TimeCell(*l.SignedAt)
			}
			if l.ReturnedAt != nil {
				r.Cells[7] = rq.TimeCell(*l.ReturnedAt)
				r.Cells[7].Text += " · " + rq.Person(l.ReturnedTo)
			}
			if l.Overdue {
				r.Cells[6].Text += " · " + rq.T("media.overdue")
				r.Cells[6].Class, r.Class = "bad", "flag"
			}
			rows = append(rows, r)
		}
		g, handled, err := rq.Grid("media-loans", cols, rows, GridOptions{DefaultSort: "lent", DefaultDesc: true, Export: "media-loans",
			Empty: "media.loans_none"})
		if err != nil || handled {
			if err == nil {
				err = errHandled
			}
			return err
		}
		v.Grid = g
	}
	return rq.Render(http.StatusOK, "media_loans", "media.loans_title", v)
}

func signMediaLoan(rq *Request) error {
	if _, err := rq.Deps.Media.Sign(rq.Context(), rq.Call, rq.PathValue("id")); err != nil {
		return err
	}
	return rq.Redirect("/media/loans", "media_signed")
}
