package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"medguard"
	"medguard/internal/compliance"
	"medguard/internal/trail"
)

// The compliance checks (合规检查, issue 14): the report (JSON, or PDF
// through the CompliancePDF hook), each check's history, the score's
// trend, runs on demand, and the evidence of the attested checks. The
// service decides and logs; these handlers decode and answer.

var errNoCompliance = &medguard.Error{Kind: medguard.Internal, Message: "the compliance checks are not available on this server"}

// complianceLang reads lang= or Accept-Language: "zh-CN" or "en".
func complianceLang(r *http.Request) (string, error) {
	l, err := reportLang(r.URL.Query().Get("lang"), r.Header.Get("Accept-Language"))
	if err != nil {
		return "", err
	}
	if l == trail.Chinese {
		return "zh-CN", nil
	}
	return "en", nil
}

// wantsPDF reads format= (json or pdf) and, without it, whether Accept
// names application/pdf before JSON.
func wantsPDF(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("format") {
	case "pdf":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, medguard.InvalidField("format", "format must be json or pdf")
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/pdf":
			return true, nil
		case "application/json", "application/*", "*/*":
			return false, nil
		}
	}
	return false, nil
}

// complianceReport serves GET /api/v1/compliance/report: the newest run's
// results as JSON, or as a PDF (?format=pdf or Accept: application/pdf)
// when the server can render one — 406 otherwise.
func (s *Server) complianceReport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "format", "lang"); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	pdf, err := wantsPDF(r)
	if err != nil {
		return err
	}
	lang, err := complianceLang(r)
	if err != nil {
		return err
	}
	if pdf && s.CompliancePDF == nil {
		// Refused before anything is read: the report is not computed for
		// an answer that cannot be given.
		return &medguard.Error{Kind: medguard.NotAcceptable, Code: "pdf_unavailable",
			Message: "this server cannot render the report as a PDF yet; ask for application/json"}
	}
	rep, err := s.Compliance.Report(r.Context(), c, lang)
	if err != nil {
		return err
	}
	if !pdf {
		return writeJSON(w, http.StatusOK, rep)
	}
	b, err := s.CompliancePDF(r.Context(), lang, rep)
	if err != nil {
		return err
	}
	name := "compliance-" + rep.GeneratedAt.Format("2006-01-02") + ".pdf"
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", "attachment; filename=\""+name+"\"")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, err = w.Write(b)
	return err
}

// complianceChecks serves GET /api/v1/compliance/checks: the catalogue's
// checks with their latest result (the report's checks).
func (s *Server) complianceChecks(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "lang"); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	lang, err := complianceLang(r)
	if err != nil {
		return err
	}
	rep, err := s.Compliance.Report(r.Context(), c, lang)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rep.Checks, ""))
}

// complianceHistory serves GET /api/v1/compliance/checks/{id}: a check's
// results from the newest (limit, default 90).
func (s *Server) complianceHistory(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "lang", "limit"); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	lang, err := complianceLang(r)
	if err != nil {
		return err
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 400 {
			return medguard.InvalidField("limit", "limit must be from 1 to 400")
		}
	}
	hist, err := s.Compliance.History(r.Context(), c, r.PathValue("id"), lang, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(hist, ""))
}

// complianceScores serves GET /api/v1/compliance/scores?from=&to=: the
// score of each run (default the last 90 days).
func (s *Server) complianceScores(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "from", "to"); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	zone := s.Trail.Zone()
	q := r.URL.Query()
	to := s.clock.Now()
	from := to.AddDate(0, 0, -90)
	var err error
	if v := q.Get("from"); v != "" {
		if from, err = parseReportTime("from", v, zone, false); err != nil {
			return err
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = parseReportTime("to", v, zone, true); err != nil {
			return err
		}
	}
	pts, err := s.Compliance.ScoreHistory(r.Context(), c, from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(pts, ""))
}

// complianceRun serves POST /api/v1/compliance/runs: every check computed
// now and kept.
func (s *Server) complianceRun(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	run, err := s.Compliance.Run(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, run)
}

// complianceRuns serves GET /api/v1/compliance/runs: the runs from the
// newest (limit, default 30).
func (s *Server) complianceRuns(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "limit"); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 400 {
			return medguard.InvalidField("limit", "limit must be from 1 to 400")
		}
	}
	runs, err := s.Compliance.Runs(r.Context(), c, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(runs, ""))
}

// complianceAttestations serves GET /api/v1/compliance/checks/{id}/attestations.
func (s *Server) complianceAttestations(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	as, err := s.Compliance.Attestations(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, ""))
}

// complianceAttest serves POST /api/v1/compliance/checks/{id}/attestations?kind=:
// multipart/form-data with the field "note" (first) and the field "file",
// read only once the caller is admitted.
func (s *Server) complianceAttest(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "kind"); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return &medguard.Error{Kind: medguard.Unsupported, Message: "send the evidence as multipart/form-data: the field \"note\", then the field \"file\""}
	}
	kind := r.URL.Query().Get("kind")
	limit := int64(compliance.MaxEvidenceFile)
	a, err := s.Compliance.Attest(r.Context(), c, r.PathValue("id"), func() (compliance.Upload, error) {
		mr, release, err := s.multipartUpload(w, r, limit)
		if err != nil {
			return compliance.Upload{}, err
		}
		defer release()
		up := compliance.Upload{Kind: kind}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return compliance.Upload{}, medguard.InvalidField("file", "the field \"file\" is missing")
			}
			if err != nil {
				return compliance.Upload{}, bodyError(err)
			}
			switch part.FormName() {
			case "note":
				b, err := io.ReadAll(io.LimitReader(part, 4*compliance.MaxNote+1))
				if err != nil {
					return compliance.Upload{}, bodyError(err)
				}
				up.Note = string(b)
			case "file":
				content, err := io.ReadAll(io.LimitReader(part, limit+1))
				if err != nil {
					return compliance.Upload{}, bodyError(err)
				}
				if int64(len(content)) > limit {
					return compliance.Upload{}, &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "an evidence file is at most 10 MiB"}
				}
				up.Filename, up.Content = rawFilename(part), content
				return up, nil
			default:
				part.Close()
			}
		}
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

// attestationReview is the body of a second person's signature.
type attestationReview struct {
	Note string `json:"note"`
}

// complianceReview serves POST /api/v1/compliance/attestations/{id}/review.
func (s *Server) complianceReview(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req attestationReview
	if err := decode(r, &req); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	a, err := s.Compliance.Review(r.Context(), c, r.PathValue("id"), req.Note)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

// complianceFile serves an attested check's evidence file, with its
// SHA-256 in a header.
func (s *Server) complianceFile(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if s.Compliance == nil {
		return errNoCompliance
	}
	a, content, err := s.Compliance.AttestationFile(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	ct := a.ContentType
	if ct == "text/plain" {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", "attachment; filename=\"evidence\"; filename*=UTF-8''"+url.PathEscape(a.Filename))
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	w.Header().Set("X-Content-SHA256", a.SHA256)
	_, err = w.Write(content)
	return err
}

// complianceCatalogue serves GET /api/v1/compliance/catalogue: the
// catalogue of checks as JSON, or (?format=ciso-assistant) as a CISO
// Assistant library in YAML, for an outside GRC tool.
func (s *Server) complianceCatalogue(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "format"); err != nil {
		return err
	}
	if s.Compliance == nil {
		return errNoCompliance
	}
	var ciso bool
	switch r.URL.Query().Get("format") {
	case "", "json":
	case "ciso-assistant":
		ciso = true
	default:
		return medguard.InvalidField("format", "format must be json or ciso-assistant")
	}
	cat, b, err := s.Compliance.ExportCatalogue(r.Context(), c, ciso)
	if err != nil {
		return err
	}
	if !ciso {
		return writeJSON(w, http.StatusOK, cat)
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", "attachment; filename=\"medguard-compliance-checks.yaml\"")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, err = w.Write(b)
	return err
}
