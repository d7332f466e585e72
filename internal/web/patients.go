package web

// Patients and their admissions: registration, search, admission, discharge, archiving.

import (
	"net/http"
	"time"

	"medguard"
	"medguard/internal/records"
)

type admissionRequest struct {
	Department string `json:"department"`
	AdmittedAt string `json:"admitted_at"`
}

type dischargeRequest struct {
	DischargedAt string `json:"discharged_at"`
}

func (s *Server) createPatient(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.NewPatient
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.Records.CreatePatient(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

func (s *Server) listPatients(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	ps, next, err := s.Records.ListPatients(r.Context(), c, r.URL.Query().Get("department"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ps, next))
}

// searchPatients takes the search by POST, so that ID numbers, phones and
// names never appear in URLs or access logs.
func (s *Server) searchPatients(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.Search
	if err := decode(r, &req); err != nil {
		return err
	}
	ms, err := s.Records.SearchPatients(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ms, ""))
}

func (s *Server) getPatient(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	p, err := s.Records.GetPatient(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) updatePatient(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.PatientChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.Records.UpdatePatient(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) admit(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req admissionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	at, err := parseTime("admitted_at", req.AdmittedAt)
	if err != nil {
		return err
	}
	a, err := s.Records.Admit(r.Context(), c, r.PathValue("id"), req.Department, at)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listAdmissions(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	as, err := s.Records.ListAdmissions(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, ""))
}

func (s *Server) discharge(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req dischargeRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	at, err := parseTime("discharged_at", req.DischargedAt)
	if err != nil {
		return err
	}
	a, err := s.Records.Discharge(r.Context(), c, r.PathValue("id"), at)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) archive(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Records.Archive(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) lateArchiving(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	since, err := parseTime("since", r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	if since.IsZero() {
		since = s.clock.Now().Add(-30 * 24 * time.Hour)
	}
	as, err := s.Records.LateArchiving(r.Context(), c, r.URL.Query().Get("department"), since)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, ""))
}
