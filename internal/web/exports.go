package web

import (
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/exports"
)

// Exports (SPEC §8, issue 12): one patient's records at once, more than
// one through a four-eyes request; the file encrypted under a key shown
// once, downloadable a limited number of times. The service decides and
// logs; these handlers decode and answer.

// exportAnswer is the answer to a request for an export: the export (with
// its key, shown once, when its file was built) or the export waiting on
// the four-eyes request filed for it.
type exportAnswer struct {
	*exports.Export
	Approval any `json:"approval,omitempty"`
}

func (s *Server) createExport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req exports.NewExport
	if err := decode(r, &req); err != nil {
		return err
	}
	e, a, err := s.Exports.Create(r.Context(), c, req)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	if a != nil {
		return writeJSON(w, http.StatusAccepted, exportAnswer{Export: e, Approval: a})
	}
	return writeJSON(w, http.StatusCreated, exportAnswer{Export: e})
}

func (s *Server) listExports(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	all := r.URL.Query().Get("all")
	if all != "" && all != "true" && all != "false" {
		return medguard.InvalidField("all", "all must be true or false")
	}
	es, err := s.Exports.List(r.Context(), c, exports.Query{All: all == "true"})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(es, ""))
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	e, err := s.Exports.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

func (s *Server) buildExport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	e, err := s.Exports.Build(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, e)
}

func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	file, e, err := s.Exports.Download(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="export-`+e.ID+`.mgx"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(file)))
	w.Header().Set("X-Downloads-Left", strconv.Itoa(max(0, e.MaxDownloads-e.Downloads)))
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(file)
	return err
}
