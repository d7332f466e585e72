package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/records"
)

// retentionRequest sets a record type's retention period: applied at once
// when it lengthens, a four-eyes request (retention.shorten) when it
// shortens.
type retentionRequest struct {
	Years  int    `json:"years"`
	Reason string `json:"reason"`
}

// retentionChange answers a retention change: the period set, or the
// request a security officer must approve.
type retentionChange struct {
	Period          *records.RetentionPeriod `json:"period,omitempty"`
	PendingApproval *approvals.Approval      `json:"pending_approval,omitempty"`
}

// destructionRequest asks for records to be destroyed (a records.destroy
// four-eyes request).
type destructionRequest struct {
	RecordIDs []string `json:"record_ids"`
	Reason    string   `json:"reason"`
}

func (s *Server) listRetentionPeriods(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ps, err := s.Records.RetentionPeriods(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ps, ""))
}

func (s *Server) setRetentionPeriod(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req retentionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	typ := r.PathValue("type")
	p, err := s.Records.LengthenRetention(r.Context(), c, typ, req.Years)
	if me := (*medguard.Error)(nil); errors.As(err, &me) && me.Code == "shortening_needs_approval" {
		payload, _ := json.Marshal(approvals.RetentionPayload{RecordType: typ, Years: req.Years})
		a, err := s.Approvals.Request(r.Context(), c, approvals.NewRequest{Kind: approvals.RetentionShorten,
			Payload: payload, Reason: req.Reason})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusAccepted, retentionChange{PendingApproval: a})
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, retentionChange{Period: p})
}

func (s *Server) listExpiredRecords(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	es, next, err := s.Records.ExpiredRecords(r.Context(), c, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(es, next))
}

func (s *Server) requestDestruction(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req destructionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	payload, err := json.Marshal(records.DestructionRequest{RecordIDs: req.RecordIDs})
	if err != nil {
		return err
	}
	a, err := s.Approvals.Request(r.Context(), c, approvals.NewRequest{Kind: approvals.RecordsDestroy, Payload: payload,
		Reason: req.Reason})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listCertificates(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	cs, next, err := s.Records.Certificates(r.Context(), c, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(cs, next))
}

// getCertificate serves a destruction certificate as the signed JSON file
// that `medguard retention verify-certificate` checks offline.
func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	id := r.PathValue("id")
	body, _, err := s.Records.Certificate(r.Context(), c, id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="destruction-certificate-`+id+`.json"`)
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append(body, '\n'))
	return err
}

// holdLiftRequest asks for a legal hold to be lifted (a retention.hold_lift
// four-eyes request).
type holdLiftRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	hs, err := s.Records.Holds(r.Context(), c, r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(hs, ""))
}

func (s *Server) placeHold(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.NewHold
	if err := decode(r, &req); err != nil {
		return err
	}
	h, err := s.Records.PlaceHold(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, h)
}

// liftHold files the four-eyes request that lifts a hold (202): a security
// officer other than the requester and the person who placed it approves.
func (s *Server) liftHold(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req holdLiftRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	payload, err := json.Marshal(approvals.HoldLiftPayload{HoldID: r.PathValue("id")})
	if err != nil {
		return err
	}
	a, err := s.Approvals.Request(r.Context(), c, approvals.NewRequest{Kind: approvals.HoldLift, Payload: payload, Reason: req.Reason})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, a)
}
