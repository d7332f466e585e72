package web

import (
	"context"
	"net/http"
	"time"

	"medguard"
	"medguard/internal/incidents"
)

// evidenceRequest names the audit entries to attach to an incident.
type evidenceRequest struct {
	Indexes []uint64 `json:"indexes"`
}

// actionRequest is a corrective action to add.
type actionRequest struct {
	Description string `json:"description"`
	Owner       string `json:"owner"`
	DueAt       string `json:"due_at"`
}

// actionStateRequest moves a corrective action.
type actionStateRequest struct {
	State string `json:"state"`
}

// closeRequest closes an incident, with an optional summary.
type closeRequest struct {
	Summary string `json:"summary"`
}

// noteRequest is a finding, a statement or an appeal.
type noteRequest struct {
	Text string `json:"text"`
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Incidents.List(r.Context(), c, r.URL.Query().Get("status"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, next))
}

func (s *Server) reportIncident(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.NewIncident
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Incidents.Report(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, in)
}

func (s *Server) overdueIncidents(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	items, err := s.Incidents.ListOverdue(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, ""))
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	in, err := s.Incidents.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) confirmGrade(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.GradeConfirmation
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Incidents.ConfirmGrade(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) addIncidentUpdate(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.NewUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Incidents.AddUpdate(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, in)
}

func (s *Server) attachEvidence(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req evidenceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ev, err := s.Incidents.AttachEvidence(r.Context(), c, r.PathValue("id"), req.Indexes)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, list(ev, ""))
}

func (s *Server) setAnalysis(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.RootCause
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Incidents.SetAnalysis(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) addAction(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req actionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	due, err := parseTime("due_at", req.DueAt)
	if err != nil {
		return err
	}
	a, err := s.Incidents.AddAction(r.Context(), c, r.PathValue("id"), incidents.NewAction{Description: req.Description,
		Owner: req.Owner, DueAt: due})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) setActionState(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req actionStateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Incidents.SetActionState(r.Context(), c, r.PathValue("id"), r.PathValue("action_id"), req.State)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) closeIncident(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req closeRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	in, err := s.Incidents.Close(r.Context(), c, r.PathValue("id"), req.Summary)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) listCases(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Incidents.ListCases(r.Context(), c, r.URL.Query().Get("status"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, next))
}

func (s *Server) openCase(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.NewCase
	if err := decode(r, &req); err != nil {
		return err
	}
	cs, err := s.Incidents.OpenCase(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, cs)
}

// caseCandidates serves GET /api/v1/accountability/candidates?from=&to=
// (default: the last 30 days).
func (s *Server) caseCandidates(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "from", "to"); err != nil {
		return err
	}
	from, err := parseTime("from", r.URL.Query().Get("from"))
	if err != nil {
		return err
	}
	to, err := parseTime("to", r.URL.Query().Get("to"))
	if err != nil {
		return err
	}
	if to.IsZero() {
		to = s.clock.Now().Add(time.Millisecond)
	}
	if from.IsZero() {
		from = to.Add(-30 * 24 * time.Hour)
	}
	items, err := s.Incidents.Candidates(r.Context(), c, from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, ""))
}

func (s *Server) getCase(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	cs, err := s.Incidents.GetCase(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cs)
}

// caseNote decodes a note (finding, statement or appeal) and runs step with it.
func caseNote(w http.ResponseWriter, r *http.Request, c *medguard.Call,
	step func(ctx context.Context, call *medguard.Call, id, text string) (*incidents.Case, error)) error {
	var req noteRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	cs, err := step(r.Context(), c, r.PathValue("id"), req.Text)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cs)
}

func (s *Server) addFinding(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return caseNote(w, r, c, s.Incidents.AddFinding)
}

func (s *Server) caseStatement(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return caseNote(w, r, c, s.Incidents.Statement)
}

func (s *Server) caseAppeal(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return caseNote(w, r, c, s.Incidents.Appeal)
}

func (s *Server) decideCase(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.CaseDecision
	if err := decode(r, &req); err != nil {
		return err
	}
	cs, err := s.Incidents.Decide(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cs)
}

func (s *Server) reviewAppeal(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.CaseReview
	if err := decode(r, &req); err != nil {
		return err
	}
	cs, err := s.Incidents.ReviewAppeal(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cs)
}
