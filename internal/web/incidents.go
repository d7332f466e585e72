package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
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

func (s *Server) changeCommander(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.CommanderChange
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Incidents.ChangeCommander(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

// confirmStep serves POST /api/v1/incidents/{id}/steps/{index}/confirm.
func (s *Server) confirmStep(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 63)
	if err != nil {
		return medguard.InvalidField("index", "index is the audit index of the step's timeline line")
	}
	in, err := s.Incidents.ConfirmStep(r.Context(), c, r.PathValue("id"), index)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

// attachFile serves POST /api/v1/incidents/{id}/files?kind=: the file as
// multipart/form-data in the field "file", read only once the caller is
// admitted.
func (s *Server) attachFile(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "kind"); err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return &medguard.Error{Kind: medguard.Unsupported, Message: "send the file as multipart/form-data in the field \"file\""}
	}
	kind := r.URL.Query().Get("kind")
	limit := int64(incidents.MaxEvidenceFile)
	f, err := s.Incidents.AttachFile(r.Context(), c, r.PathValue("id"), func() (incidents.FileUpload, error) {
		mr, release, err := s.multipartUpload(w, r, limit)
		if err != nil {
			return incidents.FileUpload{}, err
		}
		defer release()
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return incidents.FileUpload{}, medguard.InvalidField("file", "the field \"file\" is missing")
			}
			if err != nil {
				return incidents.FileUpload{}, bodyError(err)
			}
			if part.FormName() != "file" {
				part.Close()
				continue
			}
			content, err := io.ReadAll(io.LimitReader(part, limit+1))
			if err != nil {
				return incidents.FileUpload{}, bodyError(err)
			}
			if int64(len(content)) > limit {
				return incidents.FileUpload{}, &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "an evidence file is at most 10 MiB"}
			}
			return incidents.FileUpload{Kind: kind, Filename: rawFilename(part), DeclaredType: part.Header.Get("Content-Type"),
				Content: content}, nil
		}
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, f)
}

// getFile serves an evidence file, with its SHA-256 in a header.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	f, content, err := s.Incidents.GetFile(r.Context(), c, r.PathValue("id"), r.PathValue("file_id"))
	if err != nil {
		return err
	}
	ct := f.ContentType
	if ct == "text/plain" {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", "attachment; filename=\"evidence\"; filename*=UTF-8''"+url.PathEscape(f.Filename))
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	w.Header().Set("X-Content-SHA256", f.SHA256)
	_, err = w.Write(content)
	return err
}

func (s *Server) caseOpinion(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.CaseOpinion
	if err := decode(r, &req); err != nil {
		return err
	}
	cs, err := s.Incidents.Opinion(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cs)
}

// commandedIncidents serves GET /api/v1/incidents/commanded?status=: the
// incidents the caller commands, which they read without incident.read.
func (s *Server) commandedIncidents(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "status"); err != nil {
		return err
	}
	items, err := s.Incidents.ListCommanded(r.Context(), c, r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, ""))
}
