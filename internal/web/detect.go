package web

import (
	"net/http"

	"medguard"
	"medguard/internal/detect"
)

// Detection (SPEC §6): alerts with their states, the rules in force, and
// releasing frozen accounts.

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "", detect.StatusNew, detect.StatusAcknowledged, detect.StatusFalsePositive, detect.StatusEscalated:
	default:
		return medguard.InvalidField("status", "status must be new, acknowledged, false_positive or escalated")
	}
	as, next, err := s.Detect.Alerts(r.Context(), c, detect.AlertQuery{Status: status, Rule: q.Get("rule"),
		Username: q.Get("username"), After: after, Limit: limit})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, next))
}

// alertStatusRequest is the body of an alert's state change.
type alertStatusRequest struct {
	// IncidentID links an escalated alert to its incident.
	IncidentID string `json:"incident_id,omitempty"`
}

func (s *Server) alertStatus(status string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
		var req alertStatusRequest
		if r.ContentLength != 0 {
			if err := decode(r, &req); err != nil {
				return err
			}
		}
		a, err := s.Detect.SetStatus(r.Context(), c, r.PathValue("id"), status, req.IncidentID)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, a)
	}
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	rules, err := s.Detect.Rules(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rules, ""))
}

func (s *Server) setRule(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var rule detect.Rule
	if err := decode(r, &rule); err != nil {
		return err
	}
	if rule.Name == "" {
		rule.Name = r.PathValue("name")
	}
	if rule.Name != r.PathValue("name") {
		return medguard.InvalidField("name", "the rule's name must be the one in the path")
	}
	saved, err := s.Detect.SetRule(r.Context(), c, rule)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, saved)
}

// releaseRequest is the body of releasing a frozen account.
type releaseRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) releaseAccount(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req releaseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.Identity.ReleaseAccount(r.Context(), c, r.PathValue("id"), req.Reason); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "frozen": false})
}

func (s *Server) listFreezes(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	fs, err := s.Identity.Freezes(r.Context(), c, r.URL.Query().Get("frozen") == "true")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(fs, ""))
}
