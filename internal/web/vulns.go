package web

import (
	"net/http"

	"medguard"
	"medguard/internal/vulns"
)

// Vulnerability management (漏洞管理, issue 13): scanner reports imported
// per asset, the vulnerabilities with their due dates in hours, their
// states, exceptions (four eyes), the scan cadence, and the operations
// suspended while a critical vulnerability of the records system is open.
// The service decides and logs; these handlers decode and answer.

// importVulns takes a scanner report as the body itself:
// ?format=sarif|trivy|openvas|csv&asset=<asset id>[&partial=true]. The
// caller's permission is checked before the body is read; only a few
// reports are read at once, each into memory, up to the limit.
func (s *Server) importVulns(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	partial := false
	switch q.Get("partial") {
	case "", "false":
	case "true":
		partial = true
	default:
		return medguard.InvalidField("partial", "partial must be true or false")
	}
	release, err := s.admitUpload(w)
	if err != nil {
		return err
	}
	defer release()
	body, err := readBody(w, r, s.Vulns.Config().MaxReport)
	if err != nil {
		return err
	}
	scan, err := s.Vulns.Import(r.Context(), c, vulns.Import{AssetID: q.Get("asset"), Format: q.Get("format"), Partial: partial, Report: body})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, scan)
}

func (s *Server) listVulns(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	query := vulns.Query{AssetID: q.Get("asset"), Status: q.Get("status"), Severity: q.Get("severity"), Text: q.Get("q"),
		After: after, Limit: limit}
	if query.Overdue, err = boolQuery(r, "overdue"); err != nil {
		return err
	}
	if query.Proposed, err = boolQuery(r, "proposed"); err != nil {
		return err
	}
	items, next, err := s.Vulns.List(r.Context(), c, query)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, next))
}

func (s *Server) getVuln(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	d, err := s.Vulns.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) setVulnStatus(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req vulns.Transition
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := s.Vulns.SetStatus(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) askVulnException(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req vulns.NewException
	if err := decode(r, &req); err != nil {
		return err
	}
	ask, err := vulns.ExceptionRequest(r.PathValue("id"), req)
	if err != nil {
		return err
	}
	a, err := s.Approvals.Request(r.Context(), c, ask)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, a)
}

func (s *Server) vulnCadence(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	late, err := boolQuery(r, "late")
	if err != nil {
		return err
	}
	items, err := s.Vulns.Cadence(r.Context(), c, late)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, ""))
}

func (s *Server) vulnSummary(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	sum, err := s.Vulns.Summarise(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sum)
}

func (s *Server) listVulnScans(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	scans, err := s.Vulns.Scans(r.Context(), c, vulns.ScanQuery{AssetID: r.URL.Query().Get("asset")})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(scans, ""))
}

func (s *Server) suspendForVuln(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req vulns.NewSuspension
	if err := decode(r, &req); err != nil {
		return err
	}
	sp, err := s.Vulns.Suspend(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, sp)
}

func (s *Server) listSuspensions(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	active, err := boolQuery(r, "active")
	if err != nil {
		return err
	}
	items, err := s.Vulns.ListSuspensions(r.Context(), c, active)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, ""))
}

// liftRequest asks for a suspension to be lifted before its vulnerability
// is fixed: why the operations may resume.
type liftRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) askSuspensionLift(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req liftRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ask, err := vulns.LiftRequest(r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	a, err := s.Approvals.Request(r.Context(), c, ask)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, a)
}
