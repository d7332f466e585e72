package console

import (
	"errors"
	"net/http"
	"strings"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Patients and records (SPEC §4): search by POST, the patient page with the
// record list, the record view, and break-glass (紧急访问) with a reason.
// Ids in paths are opaque; search terms travel only in POST bodies.

func init() {
	register(
		Page{Method: "GET", Path: "/patients/search", Any: []policy.Permission{policy.PatientSearch},
			Nav: &Nav{Key: "nav.search", Order: 20}, Handle: searchPage},
		Page{Method: "POST", Path: "/patients/search", Any: []policy.Permission{policy.PatientSearch}, Handle: search},
		Page{Method: "GET", Path: "/patients/{id}", Any: []policy.Permission{policy.PatientRead}, Handle: patientPage},
		Page{Method: "POST", Path: "/patients/{id}/break-glass", Any: []policy.Permission{policy.BreakGlassUse}, Handle: patientBreakGlass},
		Page{Method: "GET", Path: "/records/{id}", Any: []policy.Permission{policy.RecordRead}, Handle: recordPage},
		Page{Method: "POST", Path: "/records/open", Any: []policy.Permission{policy.RecordRead}, Handle: openRecord},
	)
}

// searchView is the search form and its results.
type searchView struct {
	Query    records.Search
	Matches  []records.Match
	Searched bool
	Error    string
}

func searchPage(rq *Request) error {
	return rq.Render(http.StatusOK, "search", "search.title", searchView{})
}

func search(rq *Request) error {
	q := records.Search{IDNumber: strings.TrimSpace(rq.PostFormValue("id_number")), Phone: strings.TrimSpace(rq.PostFormValue("phone")),
		MRN: strings.TrimSpace(rq.PostFormValue("mrn")), Name: strings.TrimSpace(rq.PostFormValue("name"))}
	ms, err := rq.Deps.Records.SearchPatients(rq.Context(), rq.Call, q)
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && me.Kind == medguard.Invalid {
			key := "search.error.one_field"
			if me.Field == "id_number" {
				key = "search.error.id_number"
			} else if me.Field != "query" {
				key = "search.error.invalid"
			}
			return rq.Render(http.StatusUnprocessableEntity, "search", "search.title", searchView{Query: q, Error: key})
		}
		return err
	}
	return rq.Render(http.StatusOK, "search", "search.title", searchView{Query: q, Matches: ms, Searched: true})
}

// purposeOf reads a purpose-of-use code, treatment by default.
func purposeOf(v string) string {
	if policy.KnownPurpose(v) {
		return v
	}
	return "treatment"
}

// patientView is a patient's page.
type patientView struct {
	Patient  *records.Patient
	Records  []records.RecordSummary
	Next     string
	Purpose  string
	Purposes []string
	// Glass is the break-glass reason in force, carried by the record
	// forms in the page body (never in a URL).
	Glass string
}

// glassView is the break-glass dialog.
type glassView struct {
	Action   string // the form's target
	RecordID string
	Rule     string
	Purposes []string
	Purpose  string
	Error    string
}

func patientPage(rq *Request) error {
	rq.Call.Purpose = purposeOf(rq.URL.Query().Get("purpose"))
	return showPatient(rq, rq.PathValue("id"), rq.Cursor())
}

func patientBreakGlass(rq *Request) error {
	id := rq.PathValue("id")
	reason := strings.TrimSpace(rq.PostFormValue("reason"))
	rq.Call.Purpose = purposeOf(rq.PostFormValue("purpose"))
	if reason == "" {
		return rq.Render(http.StatusUnprocessableEntity, "breakglass", "breakglass.title", glassView{
			Action: "/patients/" + id + "/break-glass", Purposes: policy.Purposes, Purpose: rq.Call.Purpose, Error: "breakglass.error.reason"})
	}
	rq.Call.BreakGlassReason = reason
	after := rq.PostFormValue("after")
	if !cursorPattern.MatchString(after) {
		after = ""
	}
	return showPatient(rq, id, after)
}

func showPatient(rq *Request, id, after string) error {
	p, err := rq.Deps.Records.GetPatient(rq.Context(), rq.Call, id)
	if err != nil {
		return glassOr(rq, err, "/patients/"+id+"/break-glass", "")
	}
	rs, next, err := rq.Deps.Records.ListRecords(rq.Context(), rq.Call, id, after, PageSize)
	if err != nil {
		return glassOr(rq, err, "/patients/"+id+"/break-glass", "")
	}
	return rq.Render(http.StatusOK, "patient", "patient.title", patientView{Patient: p, Records: rs, Next: next,
		Purpose: rq.Call.Purpose, Purposes: policy.Purposes, Glass: rq.Call.BreakGlassReason})
}

// glassOr shows the break-glass dialog when the policy refused for want of
// a relation and the caller may break the glass; otherwise the error.
func glassOr(rq *Request, err error, action, recordID string) error {
	var me *medguard.Error
	if errors.As(err, &me) && me.Kind == medguard.Forbidden && me.Rule == policy.RuleNoRelation &&
		rq.Can(policy.BreakGlassUse) && rq.Call.BreakGlassReason == "" {
		return rq.Render(http.StatusForbidden, "breakglass", "breakglass.title", glassView{Action: action, RecordID: recordID,
			Rule: me.Rule, Purposes: policy.Purposes, Purpose: rq.Call.Purpose})
	}
	return err
}

// recordView is a record's page.
type recordView struct {
	Record *records.Record
	Glass  bool
}

func recordPage(rq *Request) error {
	rq.Call.Purpose = purposeOf(rq.URL.Query().Get("purpose"))
	return showRecord(rq, rq.PathValue("id"))
}

// openRecord opens a record from a form: the record list's, with the
// purpose of use, or the break-glass dialog's, with the reason.
func openRecord(rq *Request) error {
	id := rq.PostFormValue("record")
	rq.Call.Purpose = purposeOf(rq.PostFormValue("purpose"))
	if rq.PostForm.Has("reason") {
		reason := strings.TrimSpace(rq.PostFormValue("reason"))
		if reason == "" {
			return rq.Render(http.StatusUnprocessableEntity, "breakglass", "breakglass.title", glassView{Action: "/records/open",
				RecordID: id, Purposes: policy.Purposes, Purpose: rq.Call.Purpose, Error: "breakglass.error.reason"})
		}
		rq.Call.BreakGlassReason = reason
	}
	return showRecord(rq, id)
}

func showRecord(rq *Request, id string) error {
	rec, err := rq.Deps.Records.GetRecord(rq.Context(), rq.Call, id)
	if err != nil {
		return glassOr(rq, err, "/records/open", id)
	}
	return rq.Render(http.StatusOK, "record", "record.title", recordView{Record: rec, Glass: rec.BreakGlass != nil})
}
