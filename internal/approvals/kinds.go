package approvals

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// The kinds of four-eyes request (SPEC §3: every grant that opens patient
// data or privilege, every API key that can read patient data, every reset
// of such an account's credentials, restricted data opened to another
// department).
const (
	RoleGrant          = "role.grant"
	PasswordReset      = "user.password_reset"
	TOTPReset          = "user.totp_reset"
	CertificateSet     = "user.certificate_set"
	APIKeyCreate       = "apikey.create"
	CareTeamAdd        = "careteam.add"
	AccessGrant        = "access.grant"
	DepartmentUnlocked = "department.unrestrict"
	DepartmentChange   = "user.department_change"
	// RecordsDestroy destroys records whose retention period has ended
	// (SPEC §4); RetentionShorten shortens a record type's retention period.
	RecordsDestroy   = "records.destroy"
	RetentionShorten = "retention.shorten"
	// HoldLift lifts a legal hold (诉讼保全) on records (docs/retention.md).
	HoldLift = "retention.hold_lift"
	// KeysRotate makes a new version of the root key (KEK) active; the
	// server then rewraps every data key under it (SPEC §3, §9).
	KeysRotate = "keys.rotate"
	// DeidJob runs a de-identification job (SPEC §8): asked by a researcher
	// (deid.run), decided by medical affairs (deid.approve). The kind is
	// registered by internal/deidjobs, which owns the jobs.
	DeidJob = "deid.job"
	// ExportsBulk exports more than one patient's records (SPEC §8): the
	// kind is registered by internal/exports; medical affairs
	// (export.approve) decides it, and a security officer too when it
	// holds no core data.
	ExportsBulk = "exports.bulk"
)

// RoleGrantPayload is the payload of a role.grant request.
type RoleGrantPayload struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

// UserPayload is the payload of a reset request: whose account.
type UserPayload struct {
	UserID string `json:"user_id"`
}

// CertificatePayload is the payload of a certificate request.
type CertificatePayload struct {
	UserID      string `json:"user_id"`
	Certificate string `json:"certificate"`
}

// keyPayload is the payload of an API key request, as stored: the pending
// key it activates.
type keyPayload struct {
	KeyID      string   `json:"key_id"`
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Department string   `json:"department,omitempty"`
}

// APIKeyPayload is the payload of an API key request.
type APIKeyPayload struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Department string   `json:"department,omitempty"`
}

// GrantPayload is the payload of an access.grant request: which records,
// for whom, for how long. The grant's reason is the request's reason
// (sealed), never part of the payload.
type GrantPayload struct {
	PatientID  string    `json:"patient_id"`
	GranteeID  string    `json:"grantee_id"`
	Department string    `json:"department,omitempty"`
	StartsAt   time.Time `json:"starts_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// DepartmentChangePayload is the payload of a request to move a user to
// another department: whose account, and the new department's code.
type DepartmentChangePayload struct {
	UserID     string `json:"user_id"`
	Department string `json:"department"`
}

// DepartmentPayload is the payload of a request to lift a department's
// restriction.
type DepartmentPayload struct {
	Department string `json:"department"`
}

// strict decodes a payload into v, refusing unknown fields, as an Invalid
// error naming "payload".
func strict(raw json.RawMessage, v any, shape string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return medguard.InvalidField("payload", "payload must be %s", shape)
	}
	return nil
}

// userIDOf reads the user_id of a payload, for the policy's own-account
// rule; "" when there is none.
func userIDOf(field string) func(json.RawMessage) string {
	return func(raw json.RawMessage) string {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return ""
		}
		var id string
		json.Unmarshal(m[field], &id)
		if !medguard.ValidID(id) {
			return ""
		}
		return id
	}
}

// activeUser returns the active user named by a payload.
func (s *Service) activeUser(ctx context.Context, field, id string) (*identity.User, error) {
	u, err := s.identity.UserByID(ctx, id)
	if err != nil || u.Status != identity.Active {
		return nil, medguard.InvalidField(field, "no active user has this id")
	}
	return u, nil
}

func (s *Service) builtinKinds() []Kind {
	return []Kind{s.roleGrant(), s.passwordReset(), s.totpReset(), s.certificateSet(), s.apiKeyCreate(),
		s.careTeamAdd(), s.accessGrant(), s.departmentUnrestrict(), s.departmentChange(), s.recordsDestroy(),
		s.retentionShorten(), s.keysRotate(), s.holdLift()}
}

// keysRotate rotates the root key: asked by whoever may rotate keys (the
// IT engineer), approved by a security officer. The run makes the new KEK
// version in the KEK source (key file, environment, HSM) and, committed
// with the approval, makes it active; the rewrap of the data keys follows
// in the background (keys.rewrap in the audit log).
func (s *Service) keysRotate() Kind {
	return Kind{
		Name: KeysRotate, RequestPermission: policy.KeyRotate, RunAction: "keys.rotate",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			var p struct{}
			if len(bytes.TrimSpace(raw)) > 0 {
				if err := strict(raw, &p, `{}`); err != nil {
					return nil, err
				}
			}
			if err := s.keys.CheckRotation(ctx); err != nil {
				return nil, err
			}
			return &Plan{Payload: p, Approvers: policy.Approvers{Security: true}, TargetType: "kek", TargetID: "root"}, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, _ string) (audit.Mutation, string, error) {
			_, activate, err := s.keys.NewKEKVersion(ctx, a.ID)
			if err != nil {
				return nil, "", err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error { return activate(ctx, tx) }, "", nil
		},
	}
}

// roleGrant grants a role that opens patient data or privilege: approved
// by a security officer, or — for a clinical role confined to one
// department — by that department's head.
func (s *Service) roleGrant() Kind {
	return Kind{
		Name: RoleGrant, RequestPermission: policy.UserManage, RunAction: "user.role_grant", Subject: userIDOf("user_id"),
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			var p RoleGrantPayload
			if err := strict(raw, &p, `{"user_id", "role"}`); err != nil {
				return nil, err
			}
			if !policy.NeedsApproval(p.Role) {
				return nil, medguard.InvalidField("payload.role", "only roles that open patient data or privilege need approval; grant others directly")
			}
			u, err := s.activeUser(ctx, "payload.user_id", p.UserID)
			if err != nil {
				return nil, err
			}
			if slices.Contains(u.Roles, p.Role) {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.role", Message: "the user already holds this role"}
			}
			plan := &Plan{Subject: u.ID, Payload: p, Approvers: policy.Approvers{Security: true}, TargetType: "user", TargetID: u.ID}
			if policy.DepartmentApprovable(p.Role) && u.Department != "" {
				plan.Approvers.Department = u.Department
			}
			return plan, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p RoleGrantPayload
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			return s.identity.GrantApprovedRole(p.UserID, p.Role, a.requestedByID, a.ID), "", nil
		},
	}
}

// resetUser checks the account a reset request names.
func (s *Service) resetUser(ctx context.Context, raw json.RawMessage) (*identity.User, *Plan, error) {
	var p UserPayload
	if err := strict(raw, &p, `{"user_id"}`); err != nil {
		return nil, nil, err
	}
	u, err := s.activeUser(ctx, "payload.user_id", p.UserID)
	if err != nil {
		return nil, nil, err
	}
	return u, &Plan{Subject: u.ID, Payload: p, Approvers: identity.Approvers(u), TargetType: "user", TargetID: u.ID}, nil
}

// passwordReset resets a password, split between two people: the
// requester is shown one half when asking, the approver the other when
// approving; the user must then choose a new password and enrol a new
// second factor.
func (s *Service) passwordReset() Kind {
	return Kind{
		Name: PasswordReset, RequestPermission: policy.UserManage, RunAction: "user.password_reset", Subject: userIDOf("user_id"),
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			_, plan, err := s.resetUser(ctx, raw)
			if err != nil {
				return nil, err
			}
			plan.Secret, plan.KeepSecret = identity.NewPasswordHalf(), true
			return plan, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, requesterHalf string) (audit.Mutation, string, error) {
			if requesterHalf == "" {
				return nil, "", &medguard.Error{Kind: medguard.Conflict, Message: "this request lost its secret; file a new one"}
			}
			approverHalf := identity.NewPasswordHalf()
			return s.identity.PasswordReset(a.SubjectUserID, a.requestedByID, identity.SplitPassword(requesterHalf, approverHalf)),
				approverHalf, nil
		},
	}
}

// totpReset resets a second factor. It is refused for an account whose
// password someone else set (the requester might know it): that needs a
// password reset, which resets both.
func (s *Service) totpReset() Kind {
	return Kind{
		Name: TOTPReset, RequestPermission: policy.UserManage, RunAction: "user.totp_reset", Subject: userIDOf("user_id"),
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			u, plan, err := s.resetUser(ctx, raw)
			if err != nil {
				return nil, err
			}
			if u.PasswordSetBy != u.ID {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.user_id", Code: "password_reset_required",
					Message: "the user has not chosen their own password yet: reset the password instead, which resets the second factor too"}
			}
			return plan, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, _ string) (audit.Mutation, string, error) {
			return s.identity.TOTPReset(a.SubjectUserID, a.requestedByID), "", nil
		},
	}
}

// certificateSet registers a client certificate (a second factor).
func (s *Service) certificateSet() Kind {
	return Kind{
		Name: CertificateSet, RequestPermission: policy.UserManage, RunAction: "user.certificate_set", Subject: userIDOf("user_id"),
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			var p CertificatePayload
			if err := strict(raw, &p, `{"user_id", "certificate"}`); err != nil {
				return nil, err
			}
			u, err := s.activeUser(ctx, "payload.user_id", p.UserID)
			if err != nil {
				return nil, err
			}
			if _, err := identity.CertificateFingerprint(p.Certificate); err != nil {
				return nil, err
			}
			return &Plan{Subject: u.ID, Payload: p, Approvers: identity.Approvers(u), TargetType: "user", TargetID: u.ID}, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p CertificatePayload
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			fp, err := identity.CertificateFingerprint(p.Certificate)
			if err != nil {
				return nil, "", err
			}
			return s.identity.CertificateSet(p.UserID, a.requestedByID, fp), "", nil
		},
	}
}

// apiKeyCreate makes a key that can read patient data: it is stored
// pending with the request (its token shown once to the requester) and
// works once a security officer approves.
func (s *Service) apiKeyCreate() Kind {
	return Kind{
		Name: APIKeyCreate, RequestPermission: policy.APIKeyManage, RunAction: "apikey.activate",
		Check: func(ctx context.Context, call *medguard.Call, raw json.RawMessage, _, id string) (*Plan, error) {
			var p APIKeyPayload
			if err := strict(raw, &p, `{"name", "scopes", "department"}`); err != nil {
				return nil, err
			}
			k, insert, err := s.identity.NewAPIKey(ctx, call, p.Name, p.Scopes, p.Department, id)
			if err != nil {
				return nil, err
			}
			return &Plan{Payload: keyPayload{KeyID: k.ID, Name: k.Name, Scopes: k.Scopes, Department: k.Department},
				Approvers: policy.Approvers{Security: true}, TargetType: "api_key", TargetID: k.ID, Secret: k.Key,
				OnRequest: insert}, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, _ string) (audit.Mutation, string, error) {
			return s.identity.ActivateAPIKey(a.TargetID, a.ID), "", nil
		},
	}
}

// careTeamAdd puts a member of another department on a patient's care
// team: asked by the head of a department that holds the patient's data,
// approved by a security officer.
func (s *Service) careTeamAdd() Kind {
	return Kind{
		Name: CareTeamAdd, RequestPermission: policy.CareTeamManage, RunAction: "careteam.add", Subject: userIDOf("user_id"),
		// Decided on the patient: only the head of a department that
		// holds the patient's data asks.
		Resource: func(ctx context.Context, raw json.RawMessage) (policy.Resource, error) {
			return s.records.PatientResource(ctx, userIDOf("patient_id")(raw))
		},
		Check: func(ctx context.Context, call *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			var p records.CareTeamRequest
			if err := strict(raw, &p, `{"patient_id", "user_id", "until"}`); err != nil {
				return nil, err
			}
			u, approvers, err := s.records.CheckCareTeamRequest(ctx, p)
			if err != nil {
				return nil, err
			}
			return &Plan{Subject: u.ID, Payload: p, Approvers: approvers, TargetType: "patient", TargetID: p.PatientID}, nil
		},
		Run: func(ctx context.Context, a *Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p records.CareTeamRequest
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			u, err := s.activeUser(ctx, "payload.user_id", p.UserID)
			if err != nil {
				return nil, "", err
			}
			_, m := s.records.CareTeamAdd(p, u.Username, approver.Actor.Name)
			return m, "", nil
		},
	}
}

// accessGrant opens one department's records of a patient to someone for
// a while: anyone who reads records may ask (for themselves or a
// colleague); the head of that department alone approves.
func (s *Service) accessGrant() Kind {
	return Kind{
		Name: AccessGrant, RequestPermission: policy.GrantRequest, RunAction: "grant.create",
		Check: func(ctx context.Context, call *medguard.Call, raw json.RawMessage, reason, _ string) (*Plan, error) {
			var p GrantPayload
			if err := strict(raw, &p, `{"patient_id", "grantee_id", "department", "starts_at", "expires_at"}`); err != nil {
				return nil, err
			}
			g, u, approvers, err := s.records.CheckGrantRequest(ctx, call, records.NewGrant{PatientID: p.PatientID,
				GranteeID: p.GranteeID, Department: p.Department, Reason: reason, StartsAt: p.StartsAt, ExpiresAt: p.ExpiresAt})
			if err != nil {
				return nil, err
			}
			p = GrantPayload{PatientID: g.PatientID, GranteeID: g.GranteeID, Department: g.Department, StartsAt: g.StartsAt,
				ExpiresAt: g.ExpiresAt}
			return &Plan{Subject: u.ID, Payload: p, Approvers: approvers, TargetType: "patient", TargetID: p.PatientID}, nil
		},
		Run: func(ctx context.Context, a *Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			var gp GrantPayload
			if err := json.Unmarshal(a.Payload, &gp); err != nil {
				return nil, "", err
			}
			p := records.NewGrant{PatientID: gp.PatientID, GranteeID: gp.GranteeID, Department: gp.Department, Reason: a.Reason,
				StartsAt: gp.StartsAt, ExpiresAt: gp.ExpiresAt}
			u, err := s.activeUser(ctx, "payload.grantee_id", p.GranteeID)
			if err != nil {
				return nil, "", err
			}
			_, m, err := s.records.GrantAccess(ctx, p, u.Username, approver.Actor.Name)
			return m, "", err
		},
	}
}

// departmentUnrestrict lifts a department's restriction: asked by an
// administrator, approved by a security officer or the department's head.
func (s *Service) departmentUnrestrict() Kind {
	return Kind{
		Name: DepartmentUnlocked, RequestPermission: policy.DepartmentManage, RunAction: "department.unrestrict",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			var p DepartmentPayload
			if err := strict(raw, &p, `{"department"}`); err != nil {
				return nil, err
			}
			d, err := s.identity.DepartmentByCode(ctx, p.Department)
			if err != nil {
				return nil, medguard.InvalidField("payload.department", "no department has this code")
			}
			restricted, err := s.records.RestrictedDepartments(ctx)
			if err != nil {
				return nil, err
			}
			if !restricted[d.Code] {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.department", Message: "the department is not restricted"}
			}
			return &Plan{Payload: p, Approvers: policy.Approvers{Security: true, Department: d.Code},
				TargetType: "department", TargetID: d.Code}, nil
		},
		Run: func(ctx context.Context, a *Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			return s.records.DepartmentRestriction(a.TargetID, false, approver.Actor.ID), "", nil
		},
	}
}

// departmentChange moves an account that reaches patient data or privilege
// to another department — where a clinical account reaches patient data:
// asked by an administrator, approved by a security officer or, for an
// account whose every such role is a clinical role confined to one
// department, by the head of the department it moves to (who takes the
// person in; the head of the department it leaves has no say over the
// new department's data).
func (s *Service) departmentChange() Kind {
	return Kind{
		Name: DepartmentChange, RequestPermission: policy.UserManage, RunAction: "user.department_change", Subject: userIDOf("user_id"),
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			var p DepartmentChangePayload
			if err := strict(raw, &p, `{"user_id", "department"}`); err != nil {
				return nil, err
			}
			u, d, err := s.identity.CheckDepartmentChange(ctx, p.UserID, p.Department)
			if err != nil {
				if me := (*medguard.Error)(nil); errors.As(err, &me) && me.Field == "department" {
					me.Field = "payload.department"
				}
				return nil, err
			}
			p.Department = d.Code
			moved := *u
			moved.Department = d.Code
			return &Plan{Subject: u.ID, Payload: p, Approvers: identity.Approvers(&moved), TargetType: "user", TargetID: u.ID}, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p DepartmentChangePayload
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			d, err := s.identity.DepartmentByCode(ctx, p.Department)
			if err != nil {
				return nil, "", &medguard.Error{Kind: medguard.Conflict, Message: "the department no longer exists"}
			}
			return s.identity.DepartmentChange(p.UserID, a.requestedByID, d.ID), "", nil
		},
	}
}
