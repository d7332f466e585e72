package web

import (
	"net/http"
	"net/url"
	"strconv"

	"medguard"
	"medguard/internal/rectify"
)

// The rectification register (整改) and the quarterly compliance check
// (季度合规检查, issue 14). The service decides and logs; these handlers
// decode and answer.

func (s *Server) listRectifications(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	rq := rectify.Query{Kind: q.Get("kind"), Status: q.Get("status"), Severity: q.Get("severity"), Department: q.Get("department"),
		Owner: q.Get("owner"), Ref: q.Get("ref"), After: after, Limit: limit}
	if rq.Overdue, err = boolQuery(r, "overdue"); err != nil {
		return err
	}
	if rq.Open, err = boolQuery(r, "open"); err != nil {
		return err
	}
	items, next, err := s.Rectify.ListItems(r.Context(), c, rq)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, next))
}

func (s *Server) createRectification(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req rectify.NewItem
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Rectify.CreateItem(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

// importRectifications takes a third-party audit report in CSV as the body
// itself: ?auditor=<the audit firm>[&report=<the report's number>].
func (s *Server) importRectifications(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	body, err := readBody(w, r, 4<<20)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	sum, err := s.Rectify.ImportReport(r.Context(), c, rectify.Import{Auditor: q.Get("auditor"), Report: q.Get("report"), CSV: body})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, sum)
}

func (s *Server) getRectification(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Rectify.GetItem(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateRectification(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req rectify.ItemChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Rectify.UpdateItem(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// rectificationProgress serves the owner's start and done.
func (s *Server) rectificationProgress(done bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
		var req rectify.Progress
		if err := decode(r, &req); err != nil {
			return err
		}
		step := s.Rectify.Start
		if done {
			step = s.Rectify.MarkDone
		}
		out, err := step(r.Context(), c, r.PathValue("id"), req)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

// rectificationVerification serves the verification and the reopening.
func (s *Server) rectificationVerification(verify bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
		var req rectify.Verification
		if err := decode(r, &req); err != nil {
			return err
		}
		step := s.Rectify.Reopen
		if verify {
			step = s.Rectify.Verify
		}
		out, err := step(r.Context(), c, r.PathValue("id"), req)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) getRectificationEvidence(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	seq, err := strconv.Atoi(r.PathValue("seq"))
	if err != nil || seq < 1 {
		return medguard.InvalidField("seq", "seq must be an event's number")
	}
	name, content, err := s.Rectify.Evidence(r.Context(), c, r.PathValue("id"), seq)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", "attachment; filename=\"evidence\"; filename*=UTF-8''"+url.PathEscape(name))
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	_, err = w.Write(content)
	return err
}

func (s *Server) rectificationMonthly(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Rectify.MonthlyProgress(r.Context(), c, r.URL.Query().Get("month"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listRectificationReviews(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Rectify.ListReviews(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(out, ""))
}

func (s *Server) recordRectificationReview(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req rectify.NewReview
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Rectify.RecordReview(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listQuarterlyRuns(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Rectify.ListRuns(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(out, ""))
}

func (s *Server) startQuarterlyRun(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req rectify.NewRun
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Rectify.StartRun(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getQuarterlyRun(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Rectify.GetRun(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) recordQuarterlyFinding(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req rectify.FindingResult
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Rectify.RecordFinding(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) publishQuarterlyRun(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Rectify.Publish(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
