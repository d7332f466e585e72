package web

// Who may read a patient beyond their department: care teams, grants, break-glass reviews.

import (
	"net/http"
	"time"

	"medguard"
	"medguard/internal/records"
)

type careTeamRequest struct {
	UserID string `json:"user_id"`
	Until  string `json:"until"`
	// Reason explains a request that needs a second person (a member of
	// another department).
	Reason string `json:"reason"`
}

type grantRequest struct {
	PatientID  string `json:"patient_id"`
	GranteeID  string `json:"grantee_id"`
	Department string `json:"department"`
	Reason     string `json:"reason"`
	StartsAt   string `json:"starts_at"`
	ExpiresAt  string `json:"expires_at"`
}

type reviewRequest struct {
	Outcome string `json:"outcome"`
	Note    string `json:"note"`
}

func (s *Server) addCareTeam(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req careTeamRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	until, err := parseTime("until", req.Until)
	if err != nil {
		return err
	}
	var u *time.Time
	if !until.IsZero() {
		u = &until
	}
	m, a, err := s.Approvals.AddCareTeamMember(r.Context(), c, r.PathValue("id"), req.UserID, u, req.Reason)
	if err != nil {
		return err
	}
	if a != nil {
		return writeJSON(w, http.StatusAccepted, map[string]any{"approval": a})
	}
	return writeJSON(w, http.StatusCreated, m)
}

func (s *Server) listCareTeam(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ms, err := s.Records.ListCareTeam(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ms, ""))
}

func (s *Server) removeCareTeam(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := s.Records.RemoveCareTeamMember(r.Context(), c, r.PathValue("id"), r.PathValue("user_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// createGrant asks for an access grant: a four-eyes request that the head
// of the department whose records it opens decides (202 with it).
func (s *Server) createGrant(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req grantRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	starts, err := parseTime("starts_at", req.StartsAt)
	if err != nil {
		return err
	}
	expires, err := parseTime("expires_at", req.ExpiresAt)
	if err != nil {
		return err
	}
	a, err := s.Approvals.RequestGrant(r.Context(), c, records.NewGrant{PatientID: req.PatientID, GranteeID: req.GranteeID,
		Department: req.Department, Reason: req.Reason, StartsAt: starts, ExpiresAt: expires})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"approval": a})
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	gs, err := s.Records.ListGrants(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(gs, ""))
}

func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	g, err := s.Records.RevokeGrant(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

func (s *Server) listBreakGlass(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	es, next, err := s.Records.ListBreakGlass(r.Context(), c, records.BreakGlassFilter{Status: r.URL.Query().Get("status"),
		After: after, Limit: limit})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(es, next))
}

func (s *Server) reviewBreakGlass(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req reviewRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	e, err := s.Records.ReviewBreakGlass(r.Context(), c, r.PathValue("id"), req.Outcome, req.Note)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}
