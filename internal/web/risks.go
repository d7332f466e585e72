package web

import (
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/risks"
)

// The risk register (风险评估, issue 13): risks with their 5 × 5 scores,
// treatments, reviews and the leadership's acceptance of high risks; the
// heat map; risk assessments; new systems' checklists. The service decides
// and logs; these handlers decode and answer.

// boolQuery reads a query parameter that is true, false or absent.
func boolQuery(r *http.Request, name string) (bool, error) {
	switch r.URL.Query().Get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, medguard.InvalidField(name, "%s must be true or false", name)
}

// scaleQuery reads a likelihood or impact filter (1 to 5, or absent).
func scaleQuery(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 5 {
		return 0, medguard.InvalidField(name, "%s must be from 1 to 5", name)
	}
	return n, nil
}

func (s *Server) listRisks(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	rq := risks.RiskQuery{Status: q.Get("status"), Level: q.Get("level"), Treatment: q.Get("treatment"), Acceptance: q.Get("acceptance"),
		AssetID: q.Get("asset_id"), AssessmentID: q.Get("assessment_id"), After: after, Limit: limit}
	if rq.Overdue, err = boolQuery(r, "overdue"); err != nil {
		return err
	}
	if rq.Likelihood, err = scaleQuery(r, "likelihood"); err != nil {
		return err
	}
	if rq.Impact, err = scaleQuery(r, "impact"); err != nil {
		return err
	}
	rs, next, err := s.Risks.ListRisks(r.Context(), c, rq)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rs, next))
}

func (s *Server) createRisk(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.NewRisk
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.CreateRisk(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) riskHeatMap(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	h, err := s.Risks.HeatMap(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) getRisk(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Risks.GetRisk(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateRisk(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.RiskChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.UpdateRisk(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) reviewRisk(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.Review
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.ReviewRisk(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) decideRiskAcceptance(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.AcceptanceDecision
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.DecideAcceptance(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) closeRisk(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.Closing
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.CloseRisk(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listRiskAssessments(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	as, err := s.Risks.ListAssessments(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, ""))
}

func (s *Server) createAssessment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.NewAssessment
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.CreateAssessment(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getAssessment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Risks.GetAssessment(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) completeAssessment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.AssessmentCompletion
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.CompleteAssessment(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listIntroductions(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Risks.ListIntroductions(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(out, ""))
}

func (s *Server) createIntroduction(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.NewIntroduction
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.CreateIntroduction(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getIntroduction(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Risks.GetIntroduction(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) checkIntroductionItem(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.ItemCheck
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.CheckItem(r.Context(), c, r.PathValue("id"), r.PathValue("item"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) approveGoLive(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req risks.GoLive
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Risks.ApproveGoLive(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
