package web

import (
	"encoding/json"
	"net/http"

	"medguard"
	"medguard/internal/deidjobs"
)

// De-identification jobs (SPEC §8, issue 12): a researcher asks, medical
// affairs approves through /api/v1/approvals, the recipient downloads.
// The service decides and logs; these handlers decode and answer.

func (s *Server) askDeidJob(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req deidjobs.NewJob
	if err := decode(r, &req); err != nil {
		return err
	}
	j, err := s.DeidJobs.Ask(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, j)
}

func (s *Server) listDeidJobs(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	js, err := s.DeidJobs.List(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(js, ""))
}

func (s *Server) getDeidJob(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	j, err := s.DeidJobs.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

// getDeidManifest serves a job's signed manifest as the file `medguard
// deid verify-manifest` checks offline.
func (s *Server) getDeidManifest(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	id := r.PathValue("id")
	j, err := s.DeidJobs.Get(r.Context(), c, id)
	if err != nil {
		return err
	}
	if j.Manifest == nil {
		return &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the job is " + j.Status + ", it has no manifest yet"}
	}
	body, err := json.MarshalIndent(j.Manifest, "", " ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="deid-manifest-`+id+`.json"`)
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append(body, '\n'))
	return err
}

// downloadDeidOutput serves a job's output (?format=csv, the default, or
// jsonl) to its recipient, counting the download.
func (s *Server) downloadDeidOutput(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	id, format := r.PathValue("id"), r.URL.Query().Get("format")
	body, err := s.DeidJobs.Output(r.Context(), c, id, format)
	if err != nil {
		return err
	}
	ctype, ext := "text/csv; charset=utf-8", "csv"
	if format == "jsonl" {
		ctype, ext = "application/jsonl; charset=utf-8", "jsonl"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="deid-`+id+`.`+ext+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}
