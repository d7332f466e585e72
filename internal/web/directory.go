package web

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

type departmentRequest struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

type roleRequest struct {
	Role   string `json:"role"`
	Reason string `json:"reason"`
}

type passwordResetRequest struct {
	Password string `json:"password"`
}

type certificateRequest struct {
	Certificate string `json:"certificate"`
}

type apiKeyRequest struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Department string   `json:"department"`
}

func sorted(xs []string) []string {
	slices.Sort(xs)
	return xs
}

func (s *Server) createDepartment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req departmentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	d, err := s.Identity.CreateDepartment(r.Context(), c, req.Code, req.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, d)
}

func (s *Server) listDepartments(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ds, err := s.Identity.ListDepartments(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ds, ""))
}

// roleView is a role as the API shows it.
type roleView struct {
	Name        string   `json:"name"`
	NameZH      string   `json:"name_zh"`
	Description string   `json:"description"`
	Privileged  bool     `json:"privileged"`
	MFARequired bool     `json:"mfa_required"`
	Permissions []string `json:"permissions"`
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var out []roleView
	mfa := s.Identity.Config().MFARoles
	for _, role := range policy.DefaultRoles {
		v := roleView{Name: role.Name, NameZH: role.NameZH, Description: role.Description, Privileged: role.Privileged,
			MFARequired: slices.Contains(mfa, role.Name)}
		for _, p := range role.Permissions {
			v.Permissions = append(v.Permissions, string(p))
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, list(out, ""))
}

// userCreated is the answer to creating a user: the user, and the four-eyes
// requests filed for the privileged roles asked for.
type userCreated struct {
	*identity.User
	PendingApprovals []*approvals.Approval `json:"pending_approvals"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req identity.NewUser
	if err := decode(r, &req); err != nil {
		return err
	}
	u, pending, err := s.Identity.CreateUser(r.Context(), c, req)
	if err != nil {
		return err
	}
	out := userCreated{User: u, PendingApprovals: []*approvals.Approval{}}
	for _, role := range pending {
		a, err := s.requestRole(r, c, u.ID, role, "requested when the user was created")
		if err != nil {
			return err
		}
		out.PendingApprovals = append(out.PendingApprovals, a)
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) requestRole(r *http.Request, c *medguard.Call, userID, role, reason string) (*approvals.Approval, error) {
	payload, _ := json.Marshal(approvals.RoleGrantPayload{UserID: userID, Role: role})
	return s.Approvals.Request(r.Context(), c, approvals.NewRequest{Kind: approvals.RoleGrant, Payload: payload, Reason: reason})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	us, next, err := s.Identity.ListUsers(r.Context(), c, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(us, next))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	u, err := s.Identity.GetUser(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) deactivateUser(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	u, err := s.Identity.Deactivate(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

// grantRole grants a role at once, or — for a privileged role — files a
// four-eyes request and answers 202 with it.
func (s *Server) grantRole(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req roleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if policy.Privileged(req.Role) {
		reason := req.Reason
		if reason == "" {
			reason = "role grant requested"
		}
		a, err := s.requestRole(r, c, id, req.Role, reason)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusAccepted, map[string]any{"approval": a})
	}
	if err := s.Identity.GrantRole(r.Context(), c, id, req.Role); err != nil {
		return err
	}
	u, err := s.Identity.UserByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) revokeRole(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := s.Identity.RevokeRole(r.Context(), c, r.PathValue("id"), r.PathValue("role")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) resetTOTP(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := s.Identity.ResetTOTP(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req passwordResetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.Identity.ResetPassword(r.Context(), c, r.PathValue("id"), req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) setCertificate(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req certificateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.Identity.SetCertificate(r.Context(), c, r.PathValue("id"), req.Certificate); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req apiKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := s.Identity.CreateAPIKey(r.Context(), c, req.Name, req.Scopes, req.Department)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ks, err := s.Identity.ListAPIKeys(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ks, ""))
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := s.Identity.RevokeAPIKey(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type decisionRequest struct {
	Note string `json:"note"`
}

func (s *Server) requestApproval(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req approvals.NewRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Approvals.Request(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	as, next, err := s.Approvals.List(r.Context(), c, r.URL.Query().Get("status"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(as, next))
}

func (s *Server) getApproval(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Approvals.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return s.decideApproval(w, r, c, s.Approvals.Approve)
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	return s.decideApproval(w, r, c, s.Approvals.Refuse)
}

func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request, c *medguard.Call,
	decide func(ctx context.Context, c *medguard.Call, id, note string) (*approvals.Approval, error)) error {
	var req decisionRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	a, err := decide(r.Context(), c, r.PathValue("id"), req.Note)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) cancelApproval(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Approvals.Cancel(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}
