package web

import (
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/partners"
)

// External partners (合作单位, SPEC §8, issue 12): partners, their
// researchers' accounts, agreements (a four-eyes request), early
// termination, the deletion confirmation at the end, and the accounts'
// activity against the agreements' scope. The service decides and logs;
// these handlers decode and answer.

func (s *Server) createPartner(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req partners.NewPartner
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := s.Partners.CreatePartner(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, p)
}

func (s *Server) listPartners(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ps, err := s.Partners.ListPartners(r.Context(), c, r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ps, ""))
}

func (s *Server) getPartner(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	p, err := s.Partners.GetPartner(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) linkPartnerAccount(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req partners.LinkAccount
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Partners.LinkAccount(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) askAgreement(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req partners.NewAgreement
	if err := decode(r, &req); err != nil {
		return err
	}
	ask, err := partners.NewAgreementRequest(r.PathValue("id"), req)
	if err != nil {
		return err
	}
	a, err := s.Approvals.Request(r.Context(), c, ask)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, a)
}

func (s *Server) extendAgreement(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req partners.Extension
	if err := decode(r, &req); err != nil {
		return err
	}
	ask, err := partners.ExtensionRequest(r.PathValue("id"), req)
	if err != nil {
		return err
	}
	a, err := s.Approvals.Request(r.Context(), c, ask)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, a)
}

func (s *Server) terminateAgreement(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Partners.Terminate(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) confirmDeletion(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req partners.NewDeletionConfirmation
	if err := decode(r, &req); err != nil {
		return err
	}
	d, err := s.Partners.ConfirmDeletion(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, d)
}

func (s *Server) partnerActivity(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	months := 0
	if v := r.URL.Query().Get("months"); v != "" {
		var err error
		if months, err = strconv.Atoi(v); err != nil || months == 0 {
			return medguard.InvalidField("months", "months must be between 1 and 12")
		}
	}
	a, err := s.Partners.Activity(r.Context(), c, r.PathValue("id"), months)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}
