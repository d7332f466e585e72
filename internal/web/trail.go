package web

import (
	"encoding/json"
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/trail"
)

func uintParam(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, medguard.InvalidField(name, "%s must be a non-negative whole number", name)
	}
	return n, nil
}

// auditEntries serves entries [start, end) as JSON lines (SPEC §5):
// {"index": I, "leaf": "<base64>", "entry": {…}}; at most 1,000 a call.
func (s *Server) auditEntries(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	start, err := uintParam(r, "start", 0)
	if err != nil {
		return err
	}
	end, err := uintParam(r, "end", start+audit.MaxEntries)
	if err != nil {
		return err
	}
	es, err := s.Trail.Entries(r.Context(), c, start, end)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range es {
		if err := enc.Encode(e); err != nil {
			return nil // the client went away
		}
	}
	return nil
}

// auditSearch serves GET /api/v1/audit/search?actor=&patient=&action=&from=&to=.
func (s *Server) auditSearch(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	from, err := parseTime("from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := parseTime("to", q.Get("to"))
	if err != nil {
		return err
	}
	_, limit, err := page(r)
	if err != nil {
		return err
	}
	var before uint64
	if cur := q.Get("cursor"); cur != "" {
		after, _, err := page(r)
		if err != nil {
			return err
		}
		if before, err = strconv.ParseUint(after, 10, 63); err != nil {
			return medguard.InvalidField("cursor", "cursor is not one this server gave out")
		}
	}
	es, next, err := s.Trail.Search(r.Context(), c, trail.Query{Actor: q.Get("actor"), PatientID: q.Get("patient"),
		Action: q.Get("action"), From: from, To: to, Before: before, Limit: limit})
	if err != nil {
		return err
	}
	cursor := ""
	if next > 0 {
		cursor = strconv.FormatUint(next, 10)
	}
	return writeJSON(w, http.StatusOK, list(es, cursor))
}
