package console

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/datause"
	"medguard/internal/policy"
)

// Data use (SPEC §8, issue 12): record-use requests (借阅/调阅) — ask,
// approve or refuse, withdraw; the paper-folder registry with loans, due
// dates and overdue folders marked; copies (复印) with the requester's
// identity checked; and the paper–electronic reconciliation with its rate.
// The services decide and log; these pages only show and post.

func init() {
	register(
		Page{Method: "GET", Path: "/use-requests", Any: []policy.Permission{policy.UseRequest, policy.UseRead, policy.UseApprove},
			Nav: &Nav{Key: "nav.use_requests", Order: 32}, Handle: useRequestsPage},
		Page{Method: "POST", Path: "/use-requests", Any: []policy.Permission{policy.UseRequest}, Handle: askUse},
		Page{Method: "POST", Path: "/use-requests/{id}/approve", Any: []policy.Permission{policy.UseApprove, policy.ApprovalDecideDepartment},
			Handle: decideUse(true)},
		Page{Method: "POST", Path: "/use-requests/{id}/refuse", Any: []policy.Permission{policy.UseApprove, policy.ApprovalDecideDepartment},
			Handle: decideUse(false)},
		Page{Method: "POST", Path: "/use-requests/{id}/withdraw", Any: []policy.Permission{policy.UseRequest}, Handle: withdrawUse},
		Page{Method: "GET", Path: "/folders", Any: []policy.Permission{policy.FolderRead},
			Nav: &Nav{Key: "nav.folders", Order: 33}, Handle: foldersPage},
		Page{Method: "POST", Path: "/folders", Any: []policy.Permission{policy.FolderManage}, Handle: registerFolder},
		Page{Method: "POST", Path: "/folders/{id}/lend", Any: []policy.Permission{policy.FolderManage}, Handle: lendFolder},
		Page{Method: "POST", Path: "/folders/{id}/return", Any: []policy.Permission{policy.FolderManage}, Handle: returnFolder},
		Page{Method: "GET", Path: "/folders/reconciliation", Any: []policy.Permission{policy.FolderRead},
			Nav: &Nav{Key: "nav.reconciliation", Order: 34}, Handle: reconciliationPage},
		Page{Method: "GET", Path: "/copies", Any: []policy.Permission{policy.CopyManage},
			Nav: &Nav{Key: "nav.copies", Order: 36}, Handle: copiesPage},
		Page{Method: "POST", Path: "/copies", Any: []policy.Permission{policy.CopyManage}, Handle: recordCopy},
	)
}

// dayEnd reads a date (YYYY-MM-DD) of the hospital's calendar as the end
// of that day; field names the form field at fault.
func (rq *Request) dayEnd(field, v string) (time.Time, error) {
	d, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(v), rq.c.zone)
	if err != nil {
		return time.Time{}, medguard.InvalidField(field, "%s must be a date (YYYY-MM-DD)", field)
	}
	return d.Add(24*time.Hour - time.Second), nil
}

// splitIDs reads a list of ids typed one per line or separated by commas.
func splitIDs(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '，' || r == '\n' || r == ' ' || r == '\r' })
}

type useRequestsView struct {
	Items    []datause.UseRequest
	Mine     bool
	CanAsk   bool
	Purposes []string
	Types    []policy.RecordType
	Self     string
}

func useRequestsPage(rq *Request) error {
	mine := rq.URL.Query().Get("mine") == "true"
	us, err := rq.Deps.DataUse.ListUse(rq.Context(), rq.Call, datause.UseQuery{Mine: mine, Status: useStatusOf(rq.URL.Query().Get("status"))})
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "use_requests", "use.title", useRequestsView{Items: us, Mine: mine,
		CanAsk: rq.Can(policy.UseRequest), Purposes: datause.UsePurposes, Types: policy.RecordTypes, Self: rq.Call.Actor.ID})
}

func useStatusOf(v string) string {
	for _, s := range datause.UseStatuses {
		if s == v {
			return v
		}
	}
	return ""
}

func askUse(rq *Request) error {
	until, err := rq.dayEnd("until", rq.PostFormValue("until"))
	if err != nil {
		return err
	}
	in := datause.NewUseRequest{PatientID: strings.TrimSpace(rq.PostFormValue("patient_id")),
		RecordIDs: splitIDs(rq.PostFormValue("record_ids")), Purpose: rq.PostFormValue("purpose"),
		Reason: rq.PostFormValue("reason"), Until: until}
	if t := rq.PostFormValue("record_type"); t != "" {
		in.RecordTypes = []string{t}
	}
	if _, err := rq.Deps.DataUse.AskUse(rq.Context(), rq.Call, in); err != nil {
		return err
	}
	return rq.Redirect("/use-requests?mine=true", "use_asked")
}

func decideUse(approve bool) func(*Request) error {
	return func(rq *Request) error {
		if _, err := rq.Deps.DataUse.DecideUse(rq.Context(), rq.Call, rq.PathValue("id"), approve, rq.PostFormValue("note")); err != nil {
			return err
		}
		if approve {
			return rq.Redirect("/use-requests", "approved")
		}
		return rq.Redirect("/use-requests", "refused")
	}
}

func withdrawUse(rq *Request) error {
	if _, err := rq.Deps.DataUse.WithdrawUse(rq.Context(), rq.Call, rq.PathValue("id")); err != nil {
		return err
	}
	return rq.Redirect("/use-requests?mine=true", "use_withdrawn")
}

type foldersView struct {
	Items     []datause.Folder
	Link      bool // patient ids link to the patient's page
	Overdue   bool
	CanManage bool
	Purposes  []string
	Statuses  []string
}

func foldersPage(rq *Request) error {
	q := rq.URL.Query()
	overdue := q.Get("overdue") == "true"
	status := ""
	for _, s := range datause.FolderStatuses {
		if q.Get("status") == s {
			status = s
		}
	}
	fs, err := rq.Deps.DataUse.ListFolders(rq.Context(), rq.Call, datause.FolderQuery{Status: status, Overdue: overdue})
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "folders", "folders.title", foldersView{Items: fs, Overdue: overdue,
		CanManage: rq.Can(policy.FolderManage), Link: rq.Can(policy.PatientRead), Purposes: datause.LoanPurposes, Statuses: datause.FolderStatuses})
}

func registerFolder(rq *Request) error {
	in := datause.NewFolder{Barcode: rq.PostFormValue("barcode"), PatientID: strings.TrimSpace(rq.PostFormValue("patient_id")),
		MRN: strings.TrimSpace(rq.PostFormValue("mrn")), Location: rq.PostFormValue("location")}
	if _, err := rq.Deps.DataUse.RegisterFolder(rq.Context(), rq.Call, in); err != nil {
		return err
	}
	return rq.Redirect("/folders", "folder_registered")
}

func lendFolder(rq *Request) error {
	due, err := rq.dayEnd("due_at", rq.PostFormValue("due_at"))
	if err != nil {
		return err
	}
	in := datause.NewLoan{BorrowerID: strings.TrimSpace(rq.PostFormValue("borrower_id")), Purpose: rq.PostFormValue("purpose"),
		DueAt: due, Signature: rq.PostFormValue("signature")}
	if _, err := rq.Deps.DataUse.LendFolder(rq.Context(), rq.Call, rq.PathValue("id"), in); err != nil {
		return err
	}
	return rq.Redirect("/folders", "folder_lent")
}

func returnFolder(rq *Request) error {
	if _, err := rq.Deps.DataUse.ReturnFolder(rq.Context(), rq.Call, rq.PathValue("id")); err != nil {
		return err
	}
	return rq.Redirect("/folders", "folder_returned")
}

func reconciliationPage(rq *Request) error {
	rec, err := rq.Deps.DataUse.Reconcile(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	days, err := rq.Deps.DataUse.Reconciliations(rq.Context(), rq.Call, 31)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "reconciliation", "reconciliation.title", map[string]any{"R": rec, "Days": days,
		"Rate": strconv.FormatFloat(rec.Rate, 'f', 1, 64), "Full": rec.Rate >= 100, "Link": rq.Can(policy.PatientRead)})
}

type copiesView struct {
	Items     []datause.Copy
	Link      bool
	Relations []string
	Purposes  []string
}

func copiesPage(rq *Request) error {
	cs, err := rq.Deps.DataUse.ListCopies(rq.Context(), rq.Call, "")
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "copies", "copies.title", copiesView{Items: cs, Link: rq.Can(policy.PatientRead), Relations: datause.Relations,
		Purposes: datause.CopyPurposes})
}

func recordCopy(rq *Request) error {
	pages, err := strconv.Atoi(strings.TrimSpace(rq.PostFormValue("pages")))
	if err != nil {
		return medguard.InvalidField("pages", "pages must be a number")
	}
	yuan, err := strconv.ParseFloat(strings.TrimSpace(rq.PostFormValue("fee_yuan")), 64)
	if err != nil || yuan < 0 {
		return medguard.InvalidField("fee_fen", "the fee must be an amount in yuan")
	}
	in := datause.NewCopy{PatientID: strings.TrimSpace(rq.PostFormValue("patient_id")),
		PatientIDNumber: rq.PostFormValue("patient_id_number"), RequesterName: rq.PostFormValue("requester_name"),
		RequesterIDNumber: rq.PostFormValue("requester_id_number"), Relation: rq.PostFormValue("relation"),
		Proof: rq.PostFormValue("proof"), Purpose: rq.PostFormValue("purpose"), Pages: pages, FeeFen: int64(yuan*100 + 0.5)}
	if _, err := rq.Deps.DataUse.RecordCopy(rq.Context(), rq.Call, in); err != nil {
		return err
	}
	return rq.Redirect("/copies", "copy_recorded")
}
