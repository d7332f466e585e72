package web

import (
	"net/http"
	"time"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp"`
}

type totpConfirmRequest struct {
	Code string `json:"code"`
}

type passwordChangeRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if !s.signIns.allow(c.IP) {
		return &medguard.Error{Kind: medguard.RateLimited, Message: "too many sign-in attempts from this address; wait a minute"}
	}
	var req loginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	cr := identity.Credentials{Username: req.Username, Password: req.Password, TOTP: req.TOTP}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cr.ClientCert = r.TLS.VerifiedChains[0][0].Raw
	}
	in, err := s.Identity.Login(r.Context(), c, cr)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := s.Identity.Logout(r.Context(), c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) startTOTP(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	enr, err := s.Identity.StartTOTP(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, enr)
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req totpConfirmRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Identity.ConfirmTOTP(r.Context(), c, req.Code)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}{in.Token, in.ExpiresAt})
}

// me describes the caller: who they are, what they may do, and their session.
func (s *Server) me(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	perms := []string{}
	for p := range policy.PermissionsOf(c.Actor.Roles) {
		perms = append(perms, string(p))
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"id": c.Actor.ID, "username": c.Actor.Name, "department": c.Actor.Department, "roles": c.Actor.Roles,
		"permissions": sorted(perms), "session_id": c.Actor.SessionID,
	})
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req passwordChangeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.Identity.ChangePassword(r.Context(), c, req.CurrentPassword, req.NewPassword); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
