package web

import (
	"encoding/csv"
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/inspections"
	"medguard/internal/media"
)

// The security office's two-signature registers (issue 13): the daily
// inspection (巡查) — today's form, the inspector's and the reviewer's
// signatures, the history of days, the weekly summary, the checklist's
// versions — and the removable media register — devices, loans signed by
// lender and borrower, returns, erasures and disposals. The services
// decide and log; these handlers decode and answer.

func (s *Server) inspectionToday(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	t, err := s.Inspections.Today(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) recordInspection(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req inspections.NewInspection
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Inspections.Record(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, in)
}

func (s *Server) listInspectionDays(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	before, limit, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	days, next, err := s.Inspections.Days(r.Context(), c, inspections.DayQuery{From: q.Get("from"), To: q.Get("to"),
		Status: q.Get("status"), Before: before, Limit: limit})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(days, next))
}

func (s *Server) getInspection(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	in, err := s.Inspections.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) reviewInspection(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req inspections.Review
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Inspections.Countersign(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

// inspectionWeeks answers the weekly summary as JSON, or — with
// ?format=csv — as a CSV file.
func (s *Server) inspectionWeeks(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return medguard.InvalidField("format", "format must be json or csv")
	}
	weeks, err := s.Inspections.Weeks(r.Context(), c, q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	if format != "csv" {
		return writeJSON(w, http.StatusOK, list(weeks, ""))
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="inspection-weeks.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.Write([]string{"week", "from", "to", "days", "inspected", "missed", "out_of_range", "unsigned"})
	for _, wk := range weeks {
		cw.Write([]string{wk.Week, wk.From, wk.To, strconv.Itoa(wk.Days), strconv.Itoa(wk.Inspected), strconv.Itoa(wk.Missed),
			strconv.Itoa(wk.OutOfRange), strconv.Itoa(wk.Unsigned)})
	}
	cw.Flush()
	return cw.Error()
}

func (s *Server) listInspectionTemplates(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ts, err := s.Inspections.Templates(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ts, ""))
}

func (s *Server) saveInspectionTemplate(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req inspections.NewTemplate
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Inspections.SaveTemplate(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}

func (s *Server) listMedia(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ds, err := s.Media.List(r.Context(), c, r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ds, ""))
}

func (s *Server) registerMedia(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req media.NewDevice
	if err := decode(r, &req); err != nil {
		return err
	}
	d, err := s.Media.Register(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, d)
}

func (s *Server) getMedia(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	d, err := s.Media.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) listMediaLoans(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	mine := q.Get("mine")
	if mine != "" && mine != "true" && mine != "false" {
		return medguard.InvalidField("mine", "mine must be true or false")
	}
	ls, err := s.Media.Loans(r.Context(), c, media.LoanQuery{Mine: mine == "true", Status: q.Get("status")})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ls, ""))
}

func (s *Server) lendMedia(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req media.NewLoan
	if err := decode(r, &req); err != nil {
		return err
	}
	l, err := s.Media.Lend(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, l)
}

func (s *Server) signMediaLoan(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	l, err := s.Media.Sign(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, l)
}

func (s *Server) cancelMediaLoan(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	l, err := s.Media.Cancel(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, l)
}

func (s *Server) returnMedia(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	l, err := s.Media.Return(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, l)
}

func (s *Server) eraseMedia(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req media.NewErasure
	if err := decode(r, &req); err != nil {
		return err
	}
	e, err := s.Media.Erase(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, e)
}

func (s *Server) disposeMedia(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req media.NewDisposal
	if err := decode(r, &req); err != nil {
		return err
	}
	d, err := s.Media.Dispose(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, d)
}
