package console

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"medguard"
	"medguard/internal/deidjobs"
	"medguard/internal/policy"
)

// De-identification jobs (脱敏任务, SPEC §8, issue 12): my jobs, a form
// to ask for one with a rule per field, a job's page with its signed
// manifest and the download of its output (to the recipient, within its
// limits). Medical affairs decides them in the approvals inbox. The
// service decides and logs; these pages only show and post.

func init() {
	register(
		Page{Method: "GET", Path: "/deid", Any: []policy.Permission{policy.DeidRead, policy.DeidRun, policy.DeidApprove},
			Nav: &Nav{Key: "nav.deid", Order: 37}, Handle: deidPage},
		Page{Method: "POST", Path: "/deid", Any: []policy.Permission{policy.DeidRun}, Handle: askDeid},
		Page{Method: "GET", Path: "/deid/{id}", Any: []policy.Permission{policy.DeidRead, policy.DeidRun, policy.DeidApprove},
			Handle: deidJobPage},
		Page{Method: "GET", Path: "/deid/{id}/output", Any: []policy.Permission{policy.DeidRead}, Handle: deidOutput},
	)
}

// deidField is one field of the form: its name and the rules it may take.
type deidField struct {
	Name  string
	Rules []string
}

type deidView struct {
	Items    []deidjobs.Job
	CanAsk   bool
	Fields   []deidField
	Purposes []string
	Types    []policy.RecordType
	QIs      []string
}

func deidPage(rq *Request) error {
	if rq.Deps.DeidJobs == nil {
		return rq.Render(http.StatusOK, "deid", "deid.title", deidView{})
	}
	js, err := rq.Deps.DeidJobs.List(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	v := deidView{Items: js, CanAsk: rq.Can(policy.DeidRun), Purposes: deidjobs.Purposes, Types: policy.RecordTypes,
		QIs: deidjobs.QuasiIdentifiers}
	for _, f := range deidjobs.Fields {
		v.Fields = append(v.Fields, deidField{Name: f, Rules: deidjobs.FieldRules[f]})
	}
	return rq.Render(http.StatusOK, "deid", "deid.title", v)
}

func askDeid(rq *Request) error {
	in := deidjobs.NewJob{Purpose: rq.PostFormValue("purpose"), Reason: rq.PostFormValue("reason"), Fields: map[string]string{},
		Scope: &deidjobs.Scope{Department: strings.TrimSpace(rq.PostFormValue("department"))}}
	if t := rq.PostFormValue("record_type"); t != "" {
		in.Scope.RecordTypes = []string{t}
	}
	if ids := splitIDs(rq.PostFormValue("patient_ids")); len(ids) > 0 {
		in.PatientIDs = ids
		if in.Scope.Department == "" && len(in.Scope.RecordTypes) == 0 {
			in.Scope = nil
		}
	}
	for _, f := range deidjobs.Fields {
		if r := rq.PostFormValue("field_" + f); r != "" {
			in.Fields[f] = r
		}
	}
	for _, n := range []struct {
		field string
		dst   *int
	}{{"k", &in.K}, {"max_downloads", &in.MaxDownloads}} {
		if v := strings.TrimSpace(rq.PostFormValue(n.field)); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return invalidNumber(n.field)
			}
			*n.dst = i
		}
	}
	if v := strings.TrimSpace(rq.PostFormValue("suppress")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return invalidNumber("suppress")
		}
		in.Suppress = f
	}
	if in.K > 0 {
		for _, q := range deidjobs.QuasiIdentifiers {
			if rq.PostFormValue("qi_"+q) != "" {
				in.QuasiIdentifiers = append(in.QuasiIdentifiers, q)
			}
		}
	}
	if v := rq.PostFormValue("expires"); v != "" {
		t, err := rq.dayEnd("expires_at", v)
		if err != nil {
			return err
		}
		in.ExpiresAt = t
	}
	j, err := rq.Deps.DeidJobs.Ask(rq.Context(), rq.Call, in)
	if err != nil {
		return err
	}
	return rq.Redirect("/deid/"+j.ID, "deid_asked")
}

type deidJobView struct {
	Job      *deidjobs.Job
	Manifest string
	Mine     bool
}

func deidJobPage(rq *Request) error {
	j, err := rq.Deps.DeidJobs.Get(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := deidJobView{Job: j, Mine: j.RecipientID == rq.Call.Actor.ID}
	if j.Manifest != nil {
		b, _ := json.MarshalIndent(j.Manifest.Manifest, "", "  ")
		v.Manifest = string(b)
	}
	return rq.Render(http.StatusOK, "deid_job", "deid.job_title", v)
}

func deidOutput(rq *Request) error {
	id, format := rq.PathValue("id"), rq.URL.Query().Get("format")
	if format != "jsonl" {
		format = "csv"
	}
	body, err := rq.Deps.DeidJobs.Output(rq.Context(), rq.Call, id, format)
	if err != nil {
		return err
	}
	ctype := "text/csv; charset=utf-8"
	if format == "jsonl" {
		ctype = "application/jsonl; charset=utf-8"
	}
	rq.W.Header().Set("Content-Type", ctype)
	rq.W.Header().Set("Content-Disposition", `attachment; filename="deid-`+id+`.`+format+`"`)
	rq.W.Header().Set("Cache-Control", "no-store")
	rq.W.WriteHeader(http.StatusOK)
	_, err = rq.W.Write(body)
	return err
}

// invalidNumber names a form field that should hold a number.
func invalidNumber(field string) error {
	return medguard.InvalidField(field, "%s must be a number", field)
}
