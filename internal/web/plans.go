package web

import (
	"context"
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/plans"
)

// Emergency plans and drills (应急预案与演练, issue 13): the plan library
// and its workflow (draft → expert review → leadership approval →
// published), the yearly review; drills with their steps, gaps and
// improvement items, the cadence and the departments flagged for
// retraining. The service decides and logs; these handlers decode and
// answer.

// versionOf reads the {version} of a path: a positive number.
func versionOf(r *http.Request) (int, error) {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 || v > 100000 {
		return 0, &medguard.Error{Kind: medguard.NotFound, Message: "no such version of the plan"}
	}
	return v, nil
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	overdue, err := boolQuery(r, "overdue")
	if err != nil {
		return err
	}
	ps, err := s.Plans.ListPlans(r.Context(), c, plans.PlanQuery{Type: q.Get("type"), Status: q.Get("status"), Overdue: overdue})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ps, ""))
}

func (s *Server) createPlan(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req plans.NewPlan
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.Plans.CreatePlan(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

func (s *Server) getPlan(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	p, err := s.Plans.GetPlan(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) newPlanVersion(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	p, err := s.Plans.NewVersion(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

// planVersionStep answers a step on one version of a plan (a draft's
// change, its submission, the review, the approval): the body decoded as
// the step's input, the version from the path, the plan as it stands.
func planVersionStep[T any](w http.ResponseWriter, r *http.Request, c *medguard.Call,
	step func(context.Context, *medguard.Call, string, int, T) (*plans.Plan, error)) error {
	var req T
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := versionOf(r)
	if err != nil {
		return err
	}
	p, err := step(r.Context(), c, r.PathValue("id"), v, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) updatePlanDraft(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return planVersionStep(w, r, c, s.Plans.UpdateDraft)
}

func (s *Server) submitPlan(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return planVersionStep(w, r, c, s.Plans.Submit)
}

func (s *Server) reviewPlan(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return planVersionStep(w, r, c, s.Plans.Review)
}

func (s *Server) approvePlan(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return planVersionStep(w, r, c, s.Plans.Approve)
}

func (s *Server) annualPlanReview(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req plans.Note
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.Plans.AnnualReview(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) listExerciseDrills(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	failed, err := boolQuery(r, "failed")
	if err != nil {
		return err
	}
	ds, err := s.Plans.ListDrills(r.Context(), c, plans.DrillQuery{Kind: q.Get("kind"), PlanID: q.Get("plan_id"),
		Department: q.Get("department"), Failed: failed})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ds, ""))
}

func (s *Server) recordDrill(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req plans.NewDrill
	if err := decode(r, &req); err != nil {
		return err
	}
	d, err := s.Plans.RecordDrill(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, d)
}

func (s *Server) drillStatus(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	st, err := s.Plans.Status(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) getDrill(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	d, err := s.Plans.GetDrill(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) completeImprovement(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req plans.ImprovementCompletion
	if err := decode(r, &req); err != nil {
		return err
	}
	im, err := s.Plans.CompleteImprovement(r.Context(), c, r.PathValue("id"), r.PathValue("improvement_id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, im)
}
