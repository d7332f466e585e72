package web

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/records"
)

type admissionRequest struct {
	Department string `json:"department"`
	AdmittedAt string `json:"admitted_at"`
}

type dischargeRequest struct {
	DischargedAt string `json:"discharged_at"`
}

type careTeamRequest struct {
	UserID string `json:"user_id"`
	Until  string `json:"until"`
}

type grantRequest struct {
	PatientID string `json:"patient_id"`
	GranteeID string `json:"grantee_id"`
	Reason    string `json:"reason"`
	StartsAt  string `json:"starts_at"`
	ExpiresAt string `json:"expires_at"`
}

type reviewRequest struct {
	Outcome string `json:"outcome"`
	Note    string `json:"note"`
}

func (s *Server) createPatient(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.NewPatient
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.Records.CreatePatient(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

func (s *Server) listPatients(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	ps, next, err := s.Records.ListPatients(r.Context(), c, r.URL.Query().Get("department"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ps, next))
}

// searchPatients takes the search by POST, so that ID numbers, phones and
// names never appear in URLs or access logs.
func (s *Server) searchPatients(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.Search
	if err := decode(r, &req); err != nil {
		return err
	}
	ms, err := s.Records.SearchPatients(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ms, ""))
}

func (s *Server) getPatient(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	p, err := s.Records.GetPatient(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) updatePatient(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.PatientChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.Records.UpdatePatient(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.NewRecord
	if err := decode(r, &req); err != nil {
		return err
	}
	rec, err := s.Records.CreateRecord(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, rec)
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	rs, next, err := s.Records.ListRecords(r.Context(), c, r.PathValue("id"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rs, next))
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	rec, err := s.Records.GetRecord(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"v`+strconv.Itoa(rec.Version)+`"`)
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.RecordChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	rec, err := s.Records.UpdateRecord(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"v`+strconv.Itoa(rec.Version)+`"`)
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	vs, err := s.Records.ListVersions(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(vs, ""))
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil {
		return medguard.InvalidField("version", "version must be a positive number")
	}
	rec, err := s.Records.GetRecordVersion(r.Context(), c, r.PathValue("id"), v)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

// addAttachment takes one file as multipart/form-data (field "file"). The
// body is read into memory up to the limit and never written to a temporary
// file, so that no clear copy of it touches the disk.
func (s *Server) addAttachment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return &medguard.Error{Kind: medguard.Unsupported, Message: "send the file as multipart/form-data in the field \"file\""}
	}
	limit := s.Records.Config().MaxAttachment
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		return &medguard.Error{Kind: medguard.Malformed, Message: "the multipart body could not be read"}
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return medguard.InvalidField("file", "the field \"file\" is missing")
		}
		if err != nil {
			return bodyError(err)
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		content, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			return bodyError(err)
		}
		if int64(len(content)) > limit {
			return &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "the file is larger than the limit"}
		}
		a, err := s.Records.AddAttachment(r.Context(), c, r.PathValue("id"), rawFilename(part), part.Header.Get("Content-Type"), content)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, a)
	}
}

// rawFilename is the file name as the client sent it. (Part.FileName strips
// folders silently; medguard refuses such names instead.)
func rawFilename(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "the body is larger than the limit"}
	}
	return &medguard.Error{Kind: medguard.Malformed, Message: "the multipart body could not be read"}
}

func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Records.GetAttachment(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("Content-Disposition", "attachment; filename=\"attachment\"; filename*=UTF-8''"+url.PathEscape(a.Filename))
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Content)))
	_, err = w.Write(a.Content)
	return err
}

func (s *Server) admit(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req admissionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	at, err := parseTime("admitted_at", req.AdmittedAt)
	if err != nil {
		return err
	}
	a, err := s.Records.Admit(r.Context(), c, r.PathValue("id"), req.Department, at)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listAdmissions(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	as, err := s.Records.ListAdmissions(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, ""))
}

func (s *Server) discharge(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req dischargeRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	at, err := parseTime("discharged_at", req.DischargedAt)
	if err != nil {
		return err
	}
	a, err := s.Records.Discharge(r.Context(), c, r.PathValue("id"), at)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) archive(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Records.Archive(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) lateArchiving(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	since, err := parseTime("since", r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	if since.IsZero() {
		since = s.clock.Now().Add(-30 * 24 * time.Hour)
	}
	as, err := s.Records.LateArchiving(r.Context(), c, r.URL.Query().Get("department"), since)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, ""))
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
	m, err := s.Records.AddCareTeamMember(r.Context(), c, r.PathValue("id"), req.UserID, u)
	if err != nil {
		return err
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
	g, err := s.Records.CreateGrant(r.Context(), c, records.NewGrant{PatientID: req.PatientID, GranteeID: req.GranteeID,
		Reason: req.Reason, StartsAt: starts, ExpiresAt: expires})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, g)
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
