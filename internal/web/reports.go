package web

import (
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/reports"
)

// The leadership's posture reports (安全态势报告, issue 14): the list, one
// generated on demand, one's figures, and its HTML and PDF exactly as
// generated (their SHA-256 in a header; the PDF's is the target of its
// report.generate audit entry). The service decides and logs; these
// handlers decode and answer.

func (s *Server) listPostureReports(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	rs, next, err := s.Reports.List(r.Context(), c, reports.Query{Kind: r.URL.Query().Get("kind"), After: after, Limit: limit})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rs, next))
}

func (s *Server) generatePostureReport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req reports.Request
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Reports.Generate(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getPostureReport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Reports.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// reportDocument serves a report's HTML or PDF.
func (s *Server) reportDocument(format string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
		rep, body, err := s.Reports.Download(r.Context(), c, r.PathValue("id"), format)
		if err != nil {
			return err
		}
		WriteReport(w, rep, format, body)
		return nil
	}
}

// WriteReport answers with a report's document: the PDF as an attachment,
// the HTML inline under a policy that lets its own style apply and nothing
// else run or load.
func WriteReport(w http.ResponseWriter, rep *reports.Report, format string, body []byte) {
	h := w.Header()
	if format == reports.FormatPDF {
		h.Set("Content-Type", "application/pdf")
		h.Set("Content-Disposition", `attachment; filename="`+rep.FileName(format)+`"`)
		h.Set("X-Content-SHA256", rep.PDFSHA256)
	} else {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Disposition", `inline; filename="`+rep.FileName(format)+`"`)
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'")
		h.Set("X-Content-SHA256", rep.HTMLSHA256)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
