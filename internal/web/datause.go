package web

import (
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/datause"
)

// Data use (SPEC §8, issue 12): record-use requests, paper folders,
// copies and the paper–electronic reconciliation. The services decide and
// log; these handlers decode and answer.

// useDecisionRequest approves or refuses a record-use request (a note is
// required to refuse).
type useDecisionRequest struct {
	Note string `json:"note"`
}

func (s *Server) askUse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req datause.NewUseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.DataUse.AskUse(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, u)
}

func (s *Server) listUse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	mine := q.Get("mine")
	if mine != "" && mine != "true" && mine != "false" {
		return medguard.InvalidField("mine", "mine must be true or false")
	}
	us, err := s.DataUse.ListUse(r.Context(), c, datause.UseQuery{Mine: mine == "true", Status: q.Get("status")})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(us, ""))
}

func (s *Server) decideUse(approve bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
		var req useDecisionRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		u, err := s.DataUse.DecideUse(r.Context(), c, r.PathValue("id"), approve, req.Note)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, u)
	}
}

func (s *Server) withdrawUse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	u, err := s.DataUse.WithdrawUse(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) registerFolder(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req datause.NewFolder
	if err := decode(r, &req); err != nil {
		return err
	}
	f, err := s.DataUse.RegisterFolder(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, f)
}

func (s *Server) listFolders(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	overdue := q.Get("overdue")
	if overdue != "" && overdue != "true" && overdue != "false" {
		return medguard.InvalidField("overdue", "overdue must be true or false")
	}
	fs, err := s.DataUse.ListFolders(r.Context(), c, datause.FolderQuery{Status: q.Get("status"), Overdue: overdue == "true",
		PatientID: q.Get("patient_id")})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(fs, ""))
}

func (s *Server) changeFolder(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req datause.FolderChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	f, err := s.DataUse.ChangeFolder(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f)
}

func (s *Server) lendFolder(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req datause.NewLoan
	if err := decode(r, &req); err != nil {
		return err
	}
	f, err := s.DataUse.LendFolder(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f)
}

func (s *Server) returnFolder(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	f, err := s.DataUse.ReturnFolder(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f)
}

func (s *Server) reconcileFolders(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	rec, err := s.DataUse.Reconcile(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) listReconciliations(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366 {
			return medguard.InvalidField("limit", "limit must be 1 to 366")
		}
		limit = n
	}
	days, err := s.DataUse.Reconciliations(r.Context(), c, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(days, ""))
}

func (s *Server) recordCopy(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req datause.NewCopy
	if err := decode(r, &req); err != nil {
		return err
	}
	cp, err := s.DataUse.RecordCopy(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, cp)
}

func (s *Server) listCopies(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	cs, err := s.DataUse.ListCopies(r.Context(), c, r.URL.Query().Get("patient_id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(cs, ""))
}
