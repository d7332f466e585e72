// Package policy decides, for one request, whether a subject may perform an
// action on a resource, and names the rule that decided.
//
// It is a pure function of its arguments: no database, no HTTP, no clock other
// than the Now it is given. Callers (the gate) load the facts — the subject's
// roles and department, the resource's department and type, the care-team
// memberships and access grants that apply — and pass them in. The policy
// must never look anything up itself.
package policy

import (
	"slices"
	"time"
)

// Subject is who asks: a user (with roles) or a system (with an API key's
// scopes), and their department.
type Subject struct {
	ID          string
	Department  string // department code; empty for none
	Active      bool   // false once deactivated (离职) or frozen
	Permissions PermissionSet
}

// Resource describes what the action is on. For patient data, Departments
// lists the departments that own it: for a record, its one department; for a
// patient, every department where the patient has records or admissions.
type Resource struct {
	Type        string // "patient", "record", "user", "approval", …
	ID          string
	PatientID   string
	Departments []string
	RecordType  string // for records: its type (restricted types are special)
	// RequestedBy is, for approvals, the user who asked, and for break-glass
	// reviews, the user who broke the glass; nobody decides on their own.
	RequestedBy string
	// Subject is, for approvals that change a user's rights, the user whose
	// rights would change; nobody may approve their own elevation.
	SubjectUserID string
	// Investigators are, for the review of an accountability case's appeal,
	// the users who investigated or decided the case; none of them may
	// review it.
	Investigators []string
	// Missing says the target does not exist. Only the permission is
	// checked — there is nothing to relate to — and the operation then
	// fails as not found.
	Missing bool
}

// CareTeamMembership says that the subject is on a patient's care team, until
// an optional end.
type CareTeamMembership struct {
	PatientID string
	Until     time.Time // zero: open-ended
}

// Grant is a time-boxed access grant to a patient's records in one
// department, given by that department's head.
type Grant struct {
	PatientID  string
	Department string
	StartsAt   time.Time
	ExpiresAt  time.Time
	Revoked    bool
}

// Request is everything the policy needs for one decision.
type Request struct {
	Subject  Subject
	Action   Permission
	Resource Resource
	// BreakGlass is true when the subject gave a reason for emergency access.
	BreakGlass bool
	CareTeam   []CareTeamMembership
	Grants     []Grant
	Now        time.Time
}

// Decision is the policy's answer and the rule that made it.
type Decision struct {
	Allowed    bool
	Rule       string
	BreakGlass bool // allowed only because the glass was broken
}

// The rules, as they appear in decisions and in the audit log.
const (
	RuleInactive           = "deny.inactive_account"
	RuleNoPermission       = "deny.no_permission"
	RuleOwnRequest         = "deny.own_request"
	RuleOwnElevation       = "deny.own_elevation"
	RuleNoRelation         = "deny.no_relation"
	RuleRestrictedType     = "deny.restricted_record_type"
	RuleBreakGlassDenied   = "deny.break_glass_not_permitted"
	RuleBreakGlassReadOnly = "deny.break_glass_read_only"
	RuleWriteOtherDept     = "deny.write_other_department"
	RuleNotOwnCase         = "deny.not_own_case"
	RuleOwnCase            = "deny.own_case"
	RuleOwnInvestigation   = "deny.own_investigation"

	RulePermission     = "allow.permission"
	RuleSameDepartment = "allow.same_department"
	RuleCareTeam       = "allow.care_team"
	RuleAccessGrant    = "allow.access_grant"
	RuleHospitalScope  = "allow.hospital_scope"
	RuleBreakGlass     = "allow.break_glass"
	RuleCaseSubject    = "allow.case_subject"
)

func deny(rule string) Decision  { return Decision{Rule: rule} }
func allow(rule string) Decision { return Decision{Allowed: true, Rule: rule} }

// Decide returns whether req.Subject may perform req.Action on req.Resource.
//
// The order of the checks is the policy:
//  1. an inactive subject may do nothing;
//  2. the person concerned by an accountability case may read it and answer
//     (statement, appeal) without any permission, and nobody may answer for
//     them;
//  3. the subject must hold the permission (for the record type, if qualified);
//  4. nobody decides their own request, reviews their own break-glass, or
//     approves their own elevation; nobody handles their own accountability
//     case, and nobody who investigated a case reviews its appeal;
//  5. actions that touch no patient data, or whose target does not exist,
//     are allowed by the permission alone;
//  6. patient data needs a relation: the subject's department owns the data;
//     or, to see data, the subject is on the patient's care team, holds a valid
//     grant from the owning department, or has hospital-wide scope — which
//     never opens restricted record types (psychiatric, HIV, reproductive);
//     or, to change data, hospital-wide scope (and, for demographics, the
//     care team);
//  7. without a relation, a read may break the glass with a reason, if the
//     subject may break the glass and the record type is not restricted.
func Decide(req Request) Decision {
	s, r := req.Subject, req.Resource
	if !s.Active {
		return deny(RuleInactive)
	}
	if req.Action == AccountabilityRespond {
		if r.SubjectUserID != "" && r.SubjectUserID == s.ID {
			return allow(RuleCaseSubject)
		}
		return deny(RuleNotOwnCase)
	}
	if !s.Permissions.Has(req.Action, r.RecordType) {
		return deny(RuleNoPermission)
	}
	if req.Action == AccountabilityManage {
		if r.SubjectUserID != "" && r.SubjectUserID == s.ID {
			return deny(RuleOwnCase)
		}
		if slices.Contains(r.Investigators, s.ID) {
			return deny(RuleOwnInvestigation)
		}
	}
	if req.Action == ApprovalDecide || req.Action == BreakGlassReview {
		if r.RequestedBy != "" && r.RequestedBy == s.ID {
			return deny(RuleOwnRequest)
		}
		if r.SubjectUserID != "" && r.SubjectUserID == s.ID {
			return deny(RuleOwnElevation)
		}
	}
	if !PatientData(req.Action) || r.Missing {
		return allow(RulePermission)
	}

	restricted := Restricted(r.RecordType)
	action := req.Action.base()
	if s.Department != "" && slices.Contains(r.Departments, s.Department) {
		return allow(RuleSameDepartment)
	}
	hospital := s.Permissions[AllDepartments]
	if discloses[action] {
		if onCareTeam(req.CareTeam, r.PatientID, req.Now) {
			return allow(RuleCareTeam)
		}
		if hasGrant(req.Grants, r, req.Now) {
			return allow(RuleAccessGrant)
		}
		if hospital && !restricted {
			return allow(RuleHospitalScope)
		}
	} else {
		// Changes belong to the department that owns the data; a care-team
		// member may also correct the patient's demographics. Hospital scope
		// (records clerks, the HIS) may change data in any department.
		if action == PatientUpdate && onCareTeam(req.CareTeam, r.PatientID, req.Now) {
			return allow(RuleCareTeam)
		}
		if hospital {
			return allow(RuleHospitalScope)
		}
	}
	if req.BreakGlass {
		switch {
		case !breakGlassable[action]:
			return deny(RuleBreakGlassReadOnly)
		case !s.Permissions[BreakGlassUse]:
			return deny(RuleBreakGlassDenied)
		case restricted:
			return deny(RuleRestrictedType)
		}
		return Decision{Allowed: true, Rule: RuleBreakGlass, BreakGlass: true}
	}
	switch {
	case restricted && hospital:
		return deny(RuleRestrictedType)
	case !discloses[action]:
		return deny(RuleWriteOtherDept)
	}
	return deny(RuleNoRelation)
}

func onCareTeam(members []CareTeamMembership, patientID string, now time.Time) bool {
	if patientID == "" {
		return false
	}
	for _, m := range members {
		if m.PatientID == patientID && (m.Until.IsZero() || now.Before(m.Until)) {
			return true
		}
	}
	return false
}

func hasGrant(grants []Grant, r Resource, now time.Time) bool {
	if r.PatientID == "" {
		return false
	}
	for _, g := range grants {
		if g.Revoked || g.PatientID != r.PatientID || now.Before(g.StartsAt) || !now.Before(g.ExpiresAt) {
			continue
		}
		// A grant opens its department's data. For a patient resource (which
		// spans departments) a grant from any owning department opens the
		// demographics; for a record only the record's own department counts.
		if slices.Contains(r.Departments, g.Department) {
			return true
		}
	}
	return false
}
