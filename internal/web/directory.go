package web

import (
	"context"
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
	// Restricted marks the department's records restricted (default: true
	// for psychiatry, 精神科).
	Restricted *bool `json:"restricted"`
}

type restrictionRequest struct {
	Restricted bool   `json:"restricted"`
	Reason     string `json:"reason"`
}

type roleRequest struct {
	Role   string `json:"role"`
	Reason string `json:"reason"`
}

// passwordResetRequest resets a password: for an account that reaches
// neither patient data nor privilege, to Password; for one that does, by a
// four-eyes request that splits the new password between the requester
// and the approver (Password must then be empty).
type passwordResetRequest struct {
	Password string `json:"password"`
	Reason   string `json:"reason"`
}

// departmentChangeRequest moves a user to another department.
type departmentChangeRequest struct {
	Department string `json:"department"`
	Reason     string `json:"reason"`
}

type resetRequest struct {
	Reason string `json:"reason"`
}

type certificateRequest struct {
	Certificate string `json:"certificate"`
	Reason      string `json:"reason"`
}

type apiKeyRequest struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Department string   `json:"department"`
	Reason     string   `json:"reason"`
}

// departmentView is a department as the API shows it.
type departmentView struct {
	identity.Department
	Restricted bool `json:"restricted"`
}

func sorted(xs []string) []string {
	slices.Sort(xs)
	return xs
}

// createDepartment adds a department; psychiatry's records (or those of
// any department created with "restricted": true) are restricted.
func (s *Server) createDepartment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req departmentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	d, restricted, err := s.Approvals.CreateDepartment(r.Context(), c, req.Code, req.Name, req.Restricted)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, departmentView{Department: *d, Restricted: restricted})
}

// restrictDepartment marks a department's records restricted at once, or
// files the four-eyes request that lifts the mark (202).
func (s *Server) restrictDepartment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req restrictionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Approvals.SetDepartmentRestricted(r.Context(), c, r.PathValue("code"), req.Restricted, req.Reason)
	if err != nil {
		return err
	}
	if a != nil {
		return writeJSON(w, http.StatusAccepted, map[string]any{"approval": a})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDepartments(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	ds, err := s.Identity.ListDepartments(r.Context(), c)
	if err != nil {
		return err
	}
	restricted, err := s.Records.RestrictedDepartments(r.Context())
	if err != nil {
		return err
	}
	out := make([]departmentView, len(ds))
	for i, d := range ds {
		out[i] = departmentView{Department: d, Restricted: restricted[d.Code]}
	}
	return writeJSON(w, http.StatusOK, list(out, ""))
}

// roleView is a role as the API shows it.
type roleView struct {
	Name        string `json:"name"`
	NameZH      string `json:"name_zh"`
	Description string `json:"description"`
	Privileged  bool   `json:"privileged"`
	// Clinical roles open patient data; Approval says who approves a
	// grant of the role: "security_officer", or
	// "security_officer_or_department_head", or "" (granted directly).
	Clinical    bool     `json:"clinical"`
	Approval    string   `json:"approval"`
	MFARequired bool     `json:"mfa_required"`
	Permissions []string `json:"permissions"`
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var out []roleView
	for _, role := range policy.DefaultRoles {
		v := roleView{Name: role.Name, NameZH: role.NameZH, Description: role.Description, Privileged: role.Privileged,
			Clinical: role.Clinical, MFARequired: true}
		switch {
		case policy.DepartmentApprovable(role.Name):
			v.Approval = "security_officer_or_department_head"
		case policy.NeedsApproval(role.Name):
			v.Approval = "security_officer"
		}
		for _, p := range role.Permissions {
			v.Permissions = append(v.Permissions, string(p))
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, list(out, ""))
}

// userCreated is the answer to creating a user: the user, and the four-eyes
// requests filed for the roles asked for that open patient data or
// privilege.
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
		a, err := s.Approvals.GrantRole(r.Context(), c, u.ID, role, approvals.ReasonUserCreated)
		if err != nil {
			return err
		}
		out.PendingApprovals = append(out.PendingApprovals, a)
	}
	return writeJSON(w, http.StatusCreated, out)
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

// grantRole grants a role at once, or — for a role that opens patient
// data or privilege — files a four-eyes request and answers 202 with it.
func (s *Server) grantRole(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req roleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	a, err := s.Approvals.GrantRole(r.Context(), c, id, req.Role, req.Reason)
	if err != nil {
		return err
	}
	if a != nil {
		return writeJSON(w, http.StatusAccepted, map[string]any{"approval": a})
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

// changeDepartment moves a user to another department: 204 at once for
// an account that reaches neither patient data nor privilege, 202 with the
// four-eyes request otherwise.
func (s *Server) changeDepartment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req departmentChangeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Approvals.ChangeDepartment(r.Context(), c, r.PathValue("id"), req.Department, req.Reason)
	if err != nil {
		return err
	}
	return pendingOrDone(w, a)
}

// unlockUser lifts a user's sign-in lockout.
func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := s.Identity.Unlock(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pendingOrDone answers 202 with a four-eyes request that was filed, or
// 204 when the change was made at once.
func pendingOrDone(w http.ResponseWriter, a *approvals.Approval) error {
	if a == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"approval": a})
}

// optionalBody decodes a body if there is one.
func optionalBody(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decode(r, v)
}

func (s *Server) resetTOTP(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req resetRequest
	if err := optionalBody(r, &req); err != nil {
		return err
	}
	a, err := s.Approvals.ResetTOTP(r.Context(), c, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	return pendingOrDone(w, a)
}

// resetPassword resets a password: 204 when set at once; 202 with the
// four-eyes request for an account that reaches patient data or
// privilege, whose "secret" is the requester's half of the new password.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req passwordResetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Approvals.ResetPassword(r.Context(), c, r.PathValue("id"), req.Password, req.Reason)
	if err != nil {
		return err
	}
	return pendingOrDone(w, a)
}

func (s *Server) setCertificate(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req certificateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Approvals.SetCertificate(r.Context(), c, r.PathValue("id"), req.Certificate, req.Reason)
	if err != nil {
		return err
	}
	return pendingOrDone(w, a)
}

// createAPIKey makes an API key: 201 with it (and its token, shown once)
// for a key that shows no patient data; 202 with the pending key and its
// four-eyes request otherwise — the key works once a security officer
// approves.
func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req apiKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, a, err := s.Approvals.CreateAPIKey(r.Context(), c, req.Name, req.Scopes, req.Department, req.Reason)
	if err != nil {
		return err
	}
	if a != nil {
		return writeJSON(w, http.StatusAccepted, map[string]any{"key": k, "approval": a})
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

// releaseAPIKey lifts detection's freeze of a key (a security officer).
func (s *Server) releaseAPIKey(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req releaseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.Identity.ReleaseAPIKey(r.Context(), c, r.PathValue("id"), req.Reason); err != nil {
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
