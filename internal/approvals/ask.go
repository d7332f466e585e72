package approvals

import (
	"context"
	"encoding/json"
	"time"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// The routes that may need a second person ask here: each files a
// four-eyes request when the operation opens patient data or privilege,
// and acts directly otherwise. The API and the console both call these, so
// that the rule of who needs whom is written once.

// request files a request of kind with payload.
func (s *Service) request(ctx context.Context, call *medguard.Call, kind string, payload any, reason string) (*Approval, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, medguard.Wrap("approvals.request", err)
	}
	return s.Request(ctx, call, NewRequest{Kind: kind, Payload: raw, Reason: reason})
}

// The reasons filed when the requester gives none (the API allows that):
// each names the route that filed it. DefaultReasonCode names them by
// code, for pages that say them in the reader's language.
const (
	ReasonUserCreated      = "requested when the user was created"
	ReasonRoleGrant        = "role grant requested"
	ReasonPasswordReset    = "password reset requested"
	ReasonTOTPReset        = "second factor reset requested"
	ReasonCertificate      = "client certificate registration requested"
	ReasonAPIKey           = "API key requested"
	ReasonCareTeam         = "care-team membership requested"
	ReasonUnrestrict       = "lifting the restriction requested"
	ReasonDepartmentChange = "department change requested"
)

var defaultReasons = map[string]string{
	ReasonUserCreated: "user_created", ReasonRoleGrant: "role_grant", ReasonPasswordReset: "password_reset",
	ReasonTOTPReset: "totp_reset", ReasonCertificate: "certificate", ReasonAPIKey: "apikey", ReasonCareTeam: "careteam",
	ReasonUnrestrict: "unrestrict", ReasonDepartmentChange: "department_change",
}

// DefaultReasonCode returns the code of a reason a route filed by default
// ("user_created", "role_grant", …), or "" for a reason someone wrote.
func DefaultReasonCode(reason string) string { return defaultReasons[reason] }

// reasonOr is the requester's reason, or a default naming the route.
func reasonOr(reason, def string) string {
	if reason == "" {
		return def
	}
	return reason
}

// GrantRole grants a role: directly if it opens neither patient data nor
// privilege, otherwise by filing a four-eyes request (returned).
func (s *Service) GrantRole(ctx context.Context, call *medguard.Call, userID, role, reason string) (*Approval, error) {
	if policy.NeedsApproval(role) {
		return s.request(ctx, call, RoleGrant, RoleGrantPayload{UserID: userID, Role: role}, reasonOr(reason, ReasonRoleGrant))
	}
	return nil, s.identity.GrantRole(ctx, call, userID, role)
}

// fourEyes reports whether the account of userID needs a second person
// for changes to its credentials (an unknown user does not: the direct
// route then answers 404, logged).
func (s *Service) fourEyes(ctx context.Context, userID string) bool {
	u, err := s.identity.UserByID(ctx, userID)
	return err == nil && identity.NeedsFourEyes(u.Roles)
}

// ResetPassword resets a user's password. For an account that reaches
// patient data or privilege it files a four-eyes request whose new password
// is split: the answer's Secret is the requester's half (the approver gets
// the other), and password must be empty. Otherwise it sets password.
func (s *Service) ResetPassword(ctx context.Context, call *medguard.Call, userID, password, reason string) (*Approval, error) {
	if !s.fourEyes(ctx, userID) {
		return nil, s.identity.ResetPassword(ctx, call, userID, password)
	}
	if password != "" {
		// Logged like any refused request, by the route.
		return nil, medguard.InvalidField("password", "this account's new password is split between you and the approver: leave password out")
	}
	return s.request(ctx, call, PasswordReset, UserPayload{UserID: userID}, reasonOr(reason, ReasonPasswordReset))
}

// ResetTOTP resets a user's second factor, through a four-eyes request for
// an account that reaches patient data or privilege.
func (s *Service) ResetTOTP(ctx context.Context, call *medguard.Call, userID, reason string) (*Approval, error) {
	if !s.fourEyes(ctx, userID) {
		return nil, s.identity.ResetTOTP(ctx, call, userID)
	}
	return s.request(ctx, call, TOTPReset, UserPayload{UserID: userID}, reasonOr(reason, ReasonTOTPReset))
}

// SetCertificate registers a user's client certificate, through a
// four-eyes request for an account that reaches patient data or privilege.
func (s *Service) SetCertificate(ctx context.Context, call *medguard.Call, userID, certPEM, reason string) (*Approval, error) {
	if !s.fourEyes(ctx, userID) {
		return nil, s.identity.SetCertificate(ctx, call, userID, certPEM)
	}
	return s.request(ctx, call, CertificateSet, CertificatePayload{UserID: userID, Certificate: certPEM},
		reasonOr(reason, ReasonCertificate))
}

// ChangeDepartment moves a user to another department: at once for an
// account that reaches neither patient data nor privilege, otherwise by
// filing a four-eyes request (returned).
func (s *Service) ChangeDepartment(ctx context.Context, call *medguard.Call, userID, department, reason string) (*Approval, error) {
	if !s.fourEyes(ctx, userID) {
		return nil, s.identity.ChangeDepartment(ctx, call, userID, department)
	}
	return s.request(ctx, call, DepartmentChange, DepartmentChangePayload{UserID: userID, Department: department},
		reasonOr(reason, ReasonDepartmentChange))
}

// CreateAPIKey makes an API key: at once for a key that shows no patient
// data, otherwise as a pending key with a four-eyes request (both
// returned; the key's token is in the key, shown once).
func (s *Service) CreateAPIKey(ctx context.Context, call *medguard.Call, name string, scopes []string, department, reason string) (*identity.APIKey, *Approval, error) {
	if !identity.KeyNeedsApproval(scopes) {
		k, err := s.identity.CreateAPIKey(ctx, call, name, scopes, department)
		return k, nil, err
	}
	a, err := s.request(ctx, call, APIKeyCreate, APIKeyPayload{Name: name, Scopes: scopes, Department: department},
		reasonOr(reason, ReasonAPIKey))
	if err != nil {
		return nil, nil, err
	}
	var p keyPayload
	json.Unmarshal(a.Payload, &p)
	k := &identity.APIKey{ID: p.KeyID, Name: p.Name, Scopes: p.Scopes, Department: p.Department, Status: identity.KeyPending,
		CreatedBy: call.Actor.Name, CreatedAt: a.RequestedAt, Key: a.Secret}
	a.Secret = ""
	return k, a, nil
}

// AddCareTeamMember puts a user on a patient's care team: directly when a
// department head adds a member of their own department, through a
// four-eyes request (approved by a security officer) for a member of
// another department.
func (s *Service) AddCareTeamMember(ctx context.Context, call *medguard.Call, patientID, userID string, until *time.Time, reason string) (*records.CareTeamMember, *Approval, error) {
	u, err := s.identity.UserByID(ctx, userID)
	if err != nil || u.Department != "" && u.Department == call.Actor.Department || userID == call.Actor.ID {
		m, err := s.records.AddCareTeamMember(ctx, call, patientID, userID, until)
		return m, nil, err
	}
	a, err := s.request(ctx, call, CareTeamAdd, records.CareTeamRequest{PatientID: patientID, UserID: userID, Until: until},
		reasonOr(reason, ReasonCareTeam))
	return nil, a, err
}

// RequestGrant asks for an access grant, decided by the head of the
// department whose records it opens.
func (s *Service) RequestGrant(ctx context.Context, call *medguard.Call, in records.NewGrant) (*Approval, error) {
	return s.request(ctx, call, AccessGrant, GrantPayload{PatientID: in.PatientID, GranteeID: in.GranteeID,
		Department: in.Department, StartsAt: in.StartsAt, ExpiresAt: in.ExpiresAt}, in.Reason)
}

// SetDepartmentRestricted marks a department restricted at once, or files
// a four-eyes request to lift the mark.
func (s *Service) SetDepartmentRestricted(ctx context.Context, call *medguard.Call, code string, restricted bool, reason string) (*Approval, error) {
	if restricted {
		return nil, s.records.SetDepartmentRestricted(ctx, call, code)
	}
	return s.request(ctx, call, DepartmentUnlocked, DepartmentPayload{Department: code}, reasonOr(reason, ReasonUnrestrict))
}

// CreateDepartment adds a department and marks its records restricted when
// asked to — by default for psychiatry (精神科) — and reports whether it
// is restricted.
func (s *Service) CreateDepartment(ctx context.Context, call *medguard.Call, code, name string, restricted *bool) (*identity.Department, bool, error) {
	d, err := s.identity.CreateDepartment(ctx, call, code, name)
	if err != nil {
		return nil, false, err
	}
	r := records.RestrictedByDefault(d.Code, d.Name)
	if restricted != nil {
		r = *restricted
	}
	if r {
		if err := s.records.SetDepartmentRestricted(ctx, call, d.Code); err != nil {
			return d, false, err
		}
	}
	return d, r, nil
}
