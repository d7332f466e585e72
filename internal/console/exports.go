package console

import (
	"net/http"
	"strings"
	"time"

	"medguard/internal/exports"
	"medguard/internal/policy"
)

// Exports (SPEC §8, issue 12): ask for an export (one patient at once,
// more than one through a four-eyes request decided in the approvals
// inbox), see one's exports and their state, build an approved one — the
// page that answers shows the key once — download the file, and read the
// manifest. The service decides and logs; these pages only show and post.

func init() {
	register(
		Page{Method: "GET", Path: "/exports", Any: []policy.Permission{policy.RecordExport, policy.ExportApprove},
			Nav: &Nav{Key: "nav.exports", Order: 37}, Handle: exportsPage},
		Page{Method: "POST", Path: "/exports", Any: []policy.Permission{policy.RecordExport}, Handle: askExport},
		Page{Method: "GET", Path: "/exports/{id}", Any: []policy.Permission{policy.RecordExport, policy.ExportApprove}, Handle: exportPage},
		Page{Method: "POST", Path: "/exports/{id}/file", Any: []policy.Permission{policy.RecordExport}, Handle: buildExport},
		Page{Method: "GET", Path: "/exports/{id}/file", Any: []policy.Permission{policy.RecordExport}, Handle: downloadExport},
	)
}

type exportsView struct {
	Items    []exports.Export
	All      bool
	CanAsk   bool
	Purposes []string
	Formats  []string
	Ciphers  []string
	Types    []policy.RecordType
}

func exportsPage(rq *Request) error {
	all := rq.Can(policy.ExportApprove) && (rq.URL.Query().Get("all") == "true" || !rq.Can(policy.RecordExport))
	es, err := rq.Deps.Exports.List(rq.Context(), rq.Call, exports.Query{All: all})
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "exports", "exports.title", exportsView{Items: es, All: all, CanAsk: rq.Can(policy.RecordExport),
		Purposes: exports.Purposes, Formats: exports.Formats, Ciphers: exports.Ciphers, Types: policy.RecordTypes})
}

func askExport(rq *Request) error {
	in := exports.NewExport{PatientIDs: splitIDs(rq.PostFormValue("patient_ids")), Department: strings.TrimSpace(rq.PostFormValue("department")),
		Format: rq.PostFormValue("format"), Cipher: rq.PostFormValue("cipher"), Purpose: rq.PostFormValue("purpose"),
		Reason: rq.PostFormValue("reason")}
	if t := rq.PostFormValue("record_type"); t != "" {
		in.RecordTypes = []string{t}
	}
	if in.Department != "" {
		to, err := rq.dayEnd("to", rq.PostFormValue("to"))
		if err != nil {
			return err
		}
		from, err := rq.dayEnd("from", rq.PostFormValue("from"))
		if err != nil {
			return err
		}
		in.From, in.To = from.Add(-24*time.Hour+time.Second), to.Add(time.Second)
	}
	e, a, err := rq.Deps.Exports.Create(rq.Context(), rq.Call, in)
	if err != nil {
		return err
	}
	if a != nil {
		return rq.Redirect("/exports", "export_requested")
	}
	return rq.Render(http.StatusCreated, "export", "exports.export.title", e)
}

func exportPage(rq *Request) error {
	e, err := rq.Deps.Exports.Get(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "export", "exports.export.title", e)
}

func buildExport(rq *Request) error {
	e, err := rq.Deps.Exports.Build(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	rq.W.Header().Set("Cache-Control", "no-store")
	return rq.Render(http.StatusCreated, "export", "exports.export.title", e)
}

func downloadExport(rq *Request) error {
	file, e, err := rq.Deps.Exports.Download(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	rq.W.Header().Set("Content-Type", "application/octet-stream")
	rq.W.Header().Set("Content-Disposition", `attachment; filename="export-`+e.ID+`.mgx"`)
	rq.W.Header().Set("Cache-Control", "no-store")
	rq.W.WriteHeader(http.StatusOK)
	_, err = rq.W.Write(file)
	return err
}
