package web

import (
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/training"
)

// The training register (培训考核, SPEC §10, issue 13): the coverage grid
// and its figures, a person's record and one's own, the settings, courses
// (and the one required for record access), sessions with enrolment and
// results, the commitment letters and their signatures, retraining orders
// and the quarterly assessments with their appeals. The service decides
// and logs; these handlers decode and answer.

func (s *Server) trainingCoverage(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	rows, err := s.Training.Coverage(r.Context(), c, training.CoverageQuery{Department: q.Get("department"), Status: q.Get("status")})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rows, ""))
}

func (s *Server) trainingSummary(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	sum, err := s.Training.Summarise(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sum)
}

func (s *Server) myTraining(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	rec, err := s.Training.MyRecord(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) personTraining(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	rec, err := s.Training.PersonRecord(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) trainingSettings(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	st, err := s.Training.GetSettings(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// trainingSettingsRequest changes the register's settings.
type trainingSettingsRequest struct {
	PeriodDays         int `json:"period_days"`
	GraceDays          int `json:"grace_days"`
	AssessmentPassMark int `json:"assessment_pass_mark"`
}

func (s *Server) setTrainingSettings(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req trainingSettingsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	st, err := s.Training.SetSettings(r.Context(), c, training.Settings{PeriodDays: req.PeriodDays, GraceDays: req.GraceDays,
		AssessmentPassMark: req.AssessmentPassMark})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) listCourses(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	cs, err := s.Training.ListCourses(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(cs, ""))
}

func (s *Server) createCourse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.NewCourse
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.CreateCourse(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getCourse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Training.GetCourse(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateCourse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.CourseChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.UpdateCourse(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) requireCourse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.Requirement
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.SetRequired(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listTrainingSessions(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ss, err := s.Training.ListSessions(r.Context(), c, r.URL.Query().Get("course_id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ss, ""))
}

func (s *Server) createTrainingSession(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.NewSession
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.CreateSession(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getTrainingSession(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Training.GetSession(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) enrolTraining(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.Enrolment
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.Enrol(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) recordTrainingResult(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.NewResult
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.RecordResult(r.Context(), c, r.PathValue("id"), r.PathValue("user_id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listLetters(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ls, err := s.Training.ListLetters(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ls, ""))
}

func (s *Server) publishLetter(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.NewLetter
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.PublishLetter(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) myLetter(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Training.MyLetter(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) signLetter(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.SignLetter
	if err := decode(r, &req); err != nil {
		return err
	}
	version, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || version < 1 {
		return medguard.InvalidField("version", "version must be a positive number")
	}
	out, err := s.Training.Sign(r.Context(), c, version, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listRetraining(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	open := false
	switch r.URL.Query().Get("open") {
	case "", "0", "false":
	case "1", "true":
		open = true
	default:
		return medguard.InvalidField("open", "open must be true or false")
	}
	os, err := s.Training.ListOrders(r.Context(), c, open)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(os, ""))
}

func (s *Server) orderRetraining(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.NewOrder
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.Retrain(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) cancelRetraining(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	out, err := s.Training.CancelOrder(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listAssessments(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	as, err := s.Training.ListAssessments(r.Context(), c, r.URL.Query().Get("quarter"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, ""))
}

func (s *Server) computeAssessments(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.NewAssessments
	if err := decode(r, &req); err != nil {
		return err
	}
	as, err := s.Training.ComputeAssessments(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, list(as, ""))
}

func (s *Server) appealAssessment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.AssessmentAppeal
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.AppealAssessment(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) decideAssessmentAppeal(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req training.AppealDecision
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := s.Training.DecideAppeal(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
