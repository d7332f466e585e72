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
	// System is true for a system's API key (the HIS): restricted data
	// never opens to it, whatever its scopes and department.
	System bool
	// ChangedBy lists the users who created, changed or reset the
	// subject's account (its roles, password, second factor, certificate).
	// None of them may have a request approved by the subject: an account
	// someone shaped is not a second person to them.
	ChangedBy []string
	// Restrictions are the standing rules of the hospital's registers on
	// this subject now (training not passed, commitment letter not
	// signed, retraining ordered): each closes actions to them.
	Restrictions []Restriction
}

// A Restriction closes actions to a subject (Subject.Restrictions) or to
// everyone (Request.Suspensions: an operation suspended while a critical
// vulnerability of the records system is open). A closed action is
// refused with the restriction's Rule once the subject's permission is
// established, whatever relation would open it otherwise — a care team, a
// grant, hospital-wide scope, a record-use request — so that the 403
// says why.
type Restriction struct {
	// Rule is the rule of the refusal: "deny.<something>", e.g.
	// RuleTrainingRequired, RuleOperationSuspended.
	Rule string
	// Actions are the permissions it closes (base permissions: closing
	// record.read closes "record.read:psychiatric_note" too). Empty: every
	// action on patient data (PatientData).
	Actions []Permission
	// Emergency, if true, lets break-glass through: a read in an emergency
	// (a reason given, reviewed afterwards) is never refused for it.
	Emergency bool
}

// closes reports whether r closes action (asked with or without
// break-glass).
func (r Restriction) closes(action Permission, breakGlass bool) bool {
	if r.Emergency && breakGlass {
		return false
	}
	if len(r.Actions) == 0 {
		return PatientData(action)
	}
	return slices.Contains(r.Actions, action.base())
}

// restricted returns the rule of the first restriction — the subject's,
// then everyone's — closing req's action. waived is true when only
// restrictions that let an emergency through close it and the subject
// broke the glass: the action may then open, but only as break-glass
// (breakGlassPast), never through the subject's ordinary relations —
// otherwise a reason typed into every request would lift the restriction
// with no review.
func restricted(req Request) (rule string, waived, ok bool) {
	for _, rs := range [][]Restriction{req.Subject.Restrictions, req.Suspensions} {
		for _, r := range rs {
			if r.closes(req.Action, req.BreakGlass) {
				return r.Rule, false, true
			}
			if !ok && r.closes(req.Action, false) {
				rule, waived, ok = r.Rule, true, true
			}
		}
	}
	return rule, waived, ok
}

// breakGlassPast decides an action a restriction closes but lets through in
// an emergency (Restriction.Emergency), asked with break-glass: it opens
// as break-glass — marked, alerted and reviewed like any other — or not
// at all, whatever the subject's relations. A change is refused with the
// restriction's rule (break-glass opens reads only), and restricted data
// and core data without a purpose as break-glass refuses them.
func breakGlassPast(req Request, rule string) Decision {
	r := req.Resource
	switch {
	case !breakGlassable[req.Action.base()] || !req.Subject.Permissions[BreakGlassUse]:
		return deny(rule)
	case r.Restricted || Restricted(r.RecordType):
		return deny(RuleRestrictedType)
	case r.Classification == Core && req.Purpose == "":
		return deny(RulePurposeRequired)
	}
	return Decision{Allowed: true, Rule: RuleBreakGlass, BreakGlass: true}
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
	// RecordID is, for an attachment, the record it belongs to (a
	// record-use request names records, and opens their attachments).
	RecordID string
	// RequestedBy is, for approvals, the user who asked, for break-glass
	// reviews, the user who broke the glass, and for the confirmation of an
	// incident's handling step, the user who recorded it; nobody decides
	// on their own.
	RequestedBy string
	// Subject is, for approvals that change a user's rights, the user whose
	// rights would change; nobody may approve their own elevation.
	SubjectUserID string
	// Investigators are, for the review of an accountability case's appeal,
	// the users who investigated or decided the case; none of them may
	// review it.
	Investigators []string
	// Commander is, for an incident, the user who commands its handling:
	// they may read it (and list the incidents they command) without
	// incident.read (issue 13).
	Commander string
	// Missing says the target does not exist. Only the permission is
	// checked — there is nothing to relate to — and the operation then
	// fails as not found.
	Missing bool
	// Restricted marks data that opens only to the department that owns
	// it and to grants from that department: records of a restricted type
	// (psychiatric, HIV, reproductive) and every record of a department
	// marked restricted (精神科). Restricted types are restricted whether
	// or not the loader set this.
	Restricted bool
	// Classification is a record's classification (core, important,
	// general); break-glass on core data needs a purpose of use.
	Classification string
	// HeldBy is, for a write that adds to a patient's data (a record, an
	// admission), the departments that held the patient's data before it.
	// A write from a department that is not among them, by someone who is
	// not on the patient's care team, makes a new relation with a patient
	// other departments already treat: allowed, and logged under its own
	// rule. Empty when it does not apply (or the patient is new to all).
	HeldBy []string
	// Approvers says who may decide an approval: a security officer (if
	// Security), or the head of Approvers.Department.
	Approvers Approvers
	// ExportPatients is, for an export as a whole (Type "export"), how
	// many patients' records it would hold, and ExportApproved whether an
	// approved four-eyes request covers it: an export of more than one
	// patient opens only when approved, and only to its requester
	// (RequestedBy).
	ExportPatients int
	ExportApproved bool
	// Signers are, for a step of a workflow that needs separate people
	// (an emergency plan's expert review and approval, a high risk's
	// acceptance, a new system's go-live), the users who wrote the thing
	// or signed an earlier step of it: none of them may sign this one.
	Signers []string
}

// Approvers are who may decide a four-eyes request (SPEC §3): security
// officers (approval.decide) when Security is set, the head of Department
// (approval.decide_department) when it is not empty, and the holders of
// Permission when it is set (e.g. deid.approve: medical affairs, 医务科,
// decides de-identification jobs, SPEC §8).
type Approvers struct {
	Security   bool
	Department string
	// Permission, if set, lets its holders decide as well: the office a
	// kind of request belongs to (export.approve: medical affairs, 医务科).
	Permission Permission
	// Excluded are users who, beyond the requester, may not decide the
	// request — the person who placed a legal hold does not approve its
	// lifting — refused with ExcludedRule.
	Excluded     []string
	ExcludedRule string
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

// UseGrant is an approved record-use request (借阅/调阅): it opens, for
// reading only, one patient's records named by id or by type (or all of
// them, when it names neither) from From until Until. The policy checks
// the period at each decision, so that access closes by itself. Restricted
// data opens only to a use grant its owning department's head approved
// (HeadApproved).
type UseGrant struct {
	RequestID    string
	PatientID    string
	RecordIDs    []string
	RecordTypes  []string
	From, Until  time.Time
	HeadApproved bool
}

// DeidJob is an approved de-identification job (SPEC §8): it opens to the
// job itself — medguard acting for it, never a person — the reading of
// the patients and records in its scope, until Until. Restricted data
// never opens to a job.
type DeidJob struct {
	ID string
	// PatientIDs, if set, are the only patients it reads.
	PatientIDs []string
	// Department, if set, is the only department whose records it reads.
	Department string
	// RecordTypes, if set, are the only record types it reads.
	RecordTypes []string
	Until       time.Time
}

// Request is everything the policy needs for one decision.
type Request struct {
	// DeidJob is set when medguard reads for an approved de-identification
	// job (the gate sets it for a system actor only).
	DeidJob  *DeidJob
	Subject  Subject
	Action   Permission
	Resource Resource
	// BreakGlass is true when the subject gave a reason for emergency access.
	BreakGlass bool
	CareTeam   []CareTeamMembership
	Grants     []Grant
	// UseGrants are the subject's approved record-use requests for the
	// patient concerned.
	UseGrants []UseGrant
	// Purpose is the declared purpose of use, a code, or "".
	Purpose string
	// Suspensions are the operations suspended for everyone now (see
	// Restriction).
	Suspensions []Restriction
	Now         time.Time
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
	RuleOwnAccount         = "deny.own_account"
	RuleOwnRelation        = "deny.own_relation"
	RuleApproverShaped     = "deny.approver_changed_by_requester"
	RuleNotApprover        = "deny.not_an_eligible_approver"
	RulePurposeRequired    = "deny.purpose_required"
	RuleNotOwnRequest      = "deny.not_own_request"
	RuleDeidJobEnded       = "deny.deid_job_ended"
	RuleNotRecipient       = "deny.not_recipient"
	// RuleSameSignatory refuses a second signature by the person who gave
	// the first: an inspection's review by its inspector, a device lent
	// to its lender, an erasure witnessed by its operator (issue 13).
	RuleSameSignatory = "deny.same_signatory"
	// RuleNotBorrower refuses the borrower's signature of a loan of
	// removable media to anyone but the named borrower.
	RuleNotBorrower = "deny.not_borrower"
	// RuleTrainingRequired refuses patient data to a member of staff who
	// has not passed the training the hospital requires for record access
	// or not signed the commitment letter (安全承诺书), or whose retraining
	// is overdue past its grace period or was ordered by an accountability
	// case (issue 13).
	RuleTrainingRequired = "deny.training_required"
	// RuleOperationSuspended refuses an operation the security office
	// suspended while a critical vulnerability of the records system is
	// open (seed 003 §3.4.1: 病案室暂停相关操作; issue 13).
	RuleOperationSuspended = "deny.operation_suspended"
	// RuleOwnTraining refuses a training manager's entry about themselves:
	// their own attendance, exam score, retraining order or assessment
	// appeal (issue 13) — nobody certifies their own training.
	RuleOwnTraining = "deny.own_training"
	// RuleNotOwnTraining refuses reading or signing someone else's
	// training record or commitment letter as one's own.
	RuleNotOwnTraining = "deny.not_own_training"
	// RuleSeparationOfDuties refuses a step of a workflow to someone who
	// wrote the thing or signed an earlier step (Resource.Signers): an
	// emergency plan's author reviewing or approving it, its reviewer
	// approving it, the proposer of a high risk's acceptance deciding it
	// (issue 13).
	RuleSeparationOfDuties = "deny.separation_of_duties"
	// RuleExportNotApproved refuses an export of more than one patient
	// without an approved four-eyes request, and any export taken by
	// someone other than its requester; the bulk_export detection rule
	// freezes the account on it (SPEC §6, §8).
	RuleExportNotApproved = "deny.export_not_approved"
	// RuleOwnStep refuses confirming one's own handling step of an
	// incident, or verifying a corrective action one marked done: each
	// step is confirmed by a second person (issue 13).
	RuleOwnStep = "deny.own_step"
	// RuleOwnRectification refuses verifying a rectification item to its
	// owner and to whoever reported it done: a second person checks the
	// rectification (issue 14).
	RuleOwnRectification = "deny.own_rectification"
	// RuleNotRectificationOwner refuses reporting progress on a
	// rectification item (started, done with its evidence) to anyone but
	// its owner.
	RuleNotRectificationOwner = "deny.not_rectification_owner"
	// RuleOtherDepartment refuses a department head another department's
	// rectification items.
	RuleOtherDepartment = "deny.other_department"

	RulePermission     = "allow.permission"
	RuleSameDepartment = "allow.same_department"
	RuleCareTeam       = "allow.care_team"
	RuleAccessGrant    = "allow.access_grant"
	RuleHospitalScope  = "allow.hospital_scope"
	RuleBreakGlass     = "allow.break_glass"
	RuleCaseSubject    = "allow.case_subject"
	RuleNewRelation    = "allow.new_relation"
	RuleDepartmentHead = "allow.department_head"
	// RuleOwnTrainingRecord allows a member of staff their own training
	// record, commitment letter and assessment appeal.
	RuleOwnTrainingRecord = "allow.own_training"
	// RuleIncidentCommander opens an incident to its commander (an IT
	// engineer or a department head commanding a grade 3, say), who may not
	// hold incident.read (issue 13).
	RuleIncidentCommander = "allow.incident_commander"
	// RuleUseRequest is the rule of a read opened by an approved
	// record-use request; decisions name the request:
	// "allow.use_request:<request id>".
	RuleUseRequest = "allow.use_request"
	// RuleDeidJob is the rule of a read done for an approved
	// de-identification job; decisions name the job:
	// "allow.deid_job:<job id>".
	RuleDeidJob = "allow.deid_job"
	// RuleRectificationOwner allows the owner of a rectification item to
	// read it and report its progress (issue 14).
	RuleRectificationOwner = "allow.rectification_owner"
)

func deny(rule string) Decision  { return Decision{Rule: rule} }
func allow(rule string) Decision { return Decision{Allowed: true, Rule: rule} }

// Decide returns whether req.Subject may perform req.Action on req.Resource.
//
// The order of the checks is the policy:
//  1. an inactive subject may do nothing;
//  2. the person concerned by an accountability case may read it and answer
//     (statement, appeal) without any permission, and nobody may answer for
//     them; likewise a member of staff's own training record, commitment
//     letter and assessment appeal (training.self); and an incident's
//     commander may read it without any permission;
//  3. the subject must hold the permission (for the record type, if
//     qualified; deciding approvals: approval.decide or, for requests their
//     department's head may decide, approval.decide_department);
//  4. a restriction (Subject.Restrictions, Request.Suspensions) closing
//     the action refuses it with its own rule — one that lets an
//     emergency through opens a read asked with break-glass as
//     break-glass only (marked and reviewed), whatever the relations;
//  5. nobody signs a step of a workflow they wrote or signed an earlier
//     step of (Resource.Signers: separation of duties);
//     nobody changes their own account or puts themselves on a care team;
//     nobody decides their own request, reviews their own break-glass, or
//     approves their own elevation; nobody records their own training or
//     decides an assessment appeal they computed; nobody approves a request of someone
//     who created, changed or reset their account; only eligible approvers
//     decide (security officers, or the head of the department concerned);
//     nobody handles their own accountability case, and nobody who
//     investigated a case reviews its appeal; nobody confirms their own
//     handling step of an incident;
//  6. actions that touch no patient data, or whose target does not exist,
//     are allowed by the permission alone;
//  7. patient data needs a relation: the subject's department owns the data
//     (a write there for a patient the department never held is a new
//     relation); or, to see data, the subject is on the patient's care
//     team, holds a valid grant from the owning department, or has
//     hospital-wide scope; or, to change data, hospital-wide scope (and, for
//     demographics, the care team). Restricted data (restricted record types,
//     records of restricted departments) opens only to its own department
//     and to its grants — never to a care team elsewhere, hospital-wide
//     scope, a system's API key or break-glass;
//  8. without a relation, a read may break the glass with a reason, if the
//     subject may break the glass and the data is not restricted; core data
//     needs a purpose of use as well.
func Decide(req Request) Decision {
	s, r := req.Subject, req.Resource
	if !s.Active {
		return deny(RuleInactive)
	}
	if req.DeidJob != nil {
		return decideDeidJob(req)
	}
	if req.Action == IncidentRead && r.Commander != "" && r.Commander == s.ID && !s.Permissions[IncidentRead] {
		return allow(RuleIncidentCommander)
	}
	if req.Action == AccountabilityRespond {
		if r.SubjectUserID != "" && r.SubjectUserID == s.ID {
			return allow(RuleCaseSubject)
		}
		return deny(RuleNotOwnCase)
	}
	if req.Action == TrainingSelf {
		// A member of staff's own training record, commitment letter and
		// assessment appeal: theirs alone, never a system's.
		if r.SubjectUserID != "" && r.SubjectUserID == s.ID && !s.System {
			return allow(RuleOwnTrainingRecord)
		}
		return deny(RuleNotOwnTraining)
	}
	if req.Action == ApprovalDecide {
		return decideApproval(req)
	}
	if req.Action == RectificationRead || req.Action == RectificationProgress {
		return decideRectification(req)
	}
	if req.Action == UseApprove {
		return decideUse(req)
	}
	if !s.Permissions.Has(req.Action, r.RecordType) {
		return deny(RuleNoPermission)
	}
	if rule, waived, ok := restricted(req); ok {
		if waived {
			return breakGlassPast(req, rule)
		}
		return deny(rule)
	}
	if slices.Contains(r.Signers, s.ID) {
		return deny(RuleSeparationOfDuties)
	}
	switch {
	case req.Action == UserManage && r.SubjectUserID != "" && r.SubjectUserID == s.ID:
		return deny(RuleOwnAccount)
	case req.Action == CareTeamManage && r.SubjectUserID != "" && r.SubjectUserID == s.ID:
		return deny(RuleOwnRelation)
	case req.Action == TrainingManage && r.SubjectUserID != "" && r.SubjectUserID == s.ID:
		return deny(RuleOwnTraining)
	case req.Action == TrainingManage && slices.Contains(r.Investigators, s.ID):
		return deny(RuleOwnInvestigation)
	}
	if req.Action == AccountabilityManage {
		if r.SubjectUserID != "" && r.SubjectUserID == s.ID {
			return deny(RuleOwnCase)
		}
		if slices.Contains(r.Investigators, s.ID) {
			return deny(RuleOwnInvestigation)
		}
	}
	if req.Action == BreakGlassReview && r.RequestedBy != "" && r.RequestedBy == s.ID {
		return deny(RuleOwnRequest)
	}
	// Two-signature registers (issue 13): the second signatory is never
	// the first — RequestedBy is who signed first (an inspection's
	// inspector, a loan's lender), SubjectUserID whom a change names to
	// sign next (a loan's borrower, an erasure's witness).
	switch {
	case (req.Action == InspectionReview || req.Action == MediaBorrow) && r.RequestedBy != "" && r.RequestedBy == s.ID:
		return deny(RuleSameSignatory)
	case req.Action == MediaManage && r.SubjectUserID != "" && r.SubjectUserID == s.ID:
		return deny(RuleSameSignatory)
	case req.Action == MediaBorrow && r.SubjectUserID != "" && r.SubjectUserID != s.ID:
		return deny(RuleNotBorrower)
	}
	if req.Action == RectificationVerify && (r.SubjectUserID != "" && r.SubjectUserID == s.ID || r.RequestedBy != "" && r.RequestedBy == s.ID) {
		return deny(RuleOwnRectification) // the owner and who reported it done never verify it
	}
	if req.Action == IncidentManage && r.RequestedBy != "" && r.RequestedBy == s.ID {
		return deny(RuleOwnStep) // a handling step is confirmed by someone other than who recorded it
	}
	if req.Action == DeidRead && r.SubjectUserID != "" && r.SubjectUserID != s.ID {
		return deny(RuleNotRecipient) // a job's output goes to its recipient alone
	}
	if req.Action == UseRequest && r.RequestedBy != "" && r.RequestedBy != s.ID {
		return deny(RuleNotOwnRequest) // only the requester withdraws or reads a request as its own
	}
	if req.Action.base() == RecordExport && r.PatientID == "" {
		// The export as a whole (its request, manifest, file, downloads);
		// each patient in it is decided on its own, with its relations.
		switch {
		case r.Type != "export" || r.Missing:
		case r.RequestedBy != "" && r.RequestedBy != s.ID:
			return deny(RuleExportNotApproved)
		case r.ExportPatients > 1 && !r.ExportApproved:
			return deny(RuleExportNotApproved)
		}
		return allow(RulePermission)
	}
	if !PatientData(req.Action) || r.Missing {
		return allow(RulePermission)
	}

	restricted := r.Restricted || Restricted(r.RecordType)
	action := req.Action.base()
	careTeam := onCareTeam(req.CareTeam, r.PatientID, req.Now)
	if s.Department != "" && slices.Contains(r.Departments, s.Department) {
		switch {
		case restricted && s.System:
			return deny(RuleRestrictedType)
		case len(r.HeldBy) > 0 && !slices.Contains(r.HeldBy, s.Department) && !careTeam:
			return allow(RuleNewRelation)
		}
		return allow(RuleSameDepartment)
	}
	hospital := s.Permissions[AllDepartments]
	if discloses[action] {
		if careTeam && !restricted {
			return allow(RuleCareTeam)
		}
		if !s.System && hasGrant(req.Grants, r, req.Now) {
			return allow(RuleAccessGrant)
		}
		if g := useGrant(req.UseGrants, action, r, restricted, req.Now); !s.System && g != "" {
			return allow(RuleUseRequest + ":" + g)
		}
		if hospital && !restricted {
			return allow(RuleHospitalScope)
		}
	} else {
		// Changes belong to the department that owns the data; a care-team
		// member may also correct the patient's demographics. Hospital scope
		// (records clerks, the HIS) may change data in any department.
		if action == PatientUpdate && careTeam && !restricted {
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
		case r.Classification == Core && req.Purpose == "":
			return deny(RulePurposeRequired)
		}
		return Decision{Allowed: true, Rule: RuleBreakGlass, BreakGlass: true}
	}
	switch {
	case restricted && discloses[action] && (hospital || careTeam || s.System):
		return deny(RuleRestrictedType)
	case !discloses[action]:
		return deny(RuleWriteOtherDept)
	}
	return deny(RuleNoRelation)
}

// decideApproval decides who may decide a four-eyes request (or read the
// inbox, when the resource names no request): a security officer, or the
// head of the department the request concerns; never the requester, the
// user whose rights would change, or someone whose account the requester
// created, changed or reset.
func decideApproval(req Request) Decision {
	s, r := req.Subject, req.Resource
	security, head := s.Permissions[ApprovalDecide], s.Permissions[ApprovalDecideDepartment]
	named := r.Approvers.Permission != "" && s.Permissions[r.Approvers.Permission]
	// The holders of an approver permission (medical affairs) see the
	// inbox; each request is then decided by whether it names theirs.
	anyNamed := slices.ContainsFunc(ApproverPermissions, func(p Permission) bool { return s.Permissions[p] })
	if !security && !head && !named && !anyNamed {
		return deny(RuleNoPermission)
	}
	if r.RequestedBy == "" && r.ID == "" {
		return allow(RulePermission) // the inbox: each item is decided on its own
	}
	switch {
	case r.RequestedBy != "" && r.RequestedBy == s.ID:
		return deny(RuleOwnRequest)
	case r.SubjectUserID != "" && r.SubjectUserID == s.ID:
		return deny(RuleOwnElevation)
	case r.RequestedBy != "" && slices.Contains(s.ChangedBy, r.RequestedBy):
		return deny(RuleApproverShaped)
	case slices.Contains(r.Approvers.Excluded, s.ID):
		if r.Approvers.ExcludedRule != "" {
			return deny(r.Approvers.ExcludedRule)
		}
		return deny(RuleNotApprover)
	case r.Missing:
		return allow(RulePermission)
	case security && r.Approvers.Security:
		return allow(RulePermission)
	case named:
		return allow(RulePermission)
	case head && r.Approvers.Department != "" && s.Department == r.Approvers.Department:
		return allow(RuleDepartmentHead)
	}
	return deny(RuleNotApprover)
}

// ApproverPermissions are the permissions that name the deciders of some
// kinds of four-eyes request (Approvers.Permission): their holders see the
// approvals inbox.
var ApproverPermissions = []Permission{DeidApprove, ExportApprove}

// decideDeidJob decides a read done for an approved de-identification
// job: the job's own summary (deid.run on the job) and, within its scope
// and period, reading patients and records (never restricted data).
func decideDeidJob(req Request) Decision {
	j, r := req.DeidJob, req.Resource
	if !req.Now.Before(j.Until) {
		return deny(RuleDeidJobEnded)
	}
	allowed := allow(RuleDeidJob + ":" + j.ID)
	switch req.Action {
	case DeidRun:
		if r.Type == "deid_job" && r.ID == j.ID {
			return allowed
		}
		return deny(RuleNoRelation)
	case PatientRead, RecordRead:
	default:
		return deny(RuleNoPermission)
	}
	switch {
	case r.PatientID == "":
		return deny(RuleNoRelation)
	case r.Restricted || Restricted(r.RecordType):
		return deny(RuleRestrictedType)
	case len(j.PatientIDs) > 0 && !slices.Contains(j.PatientIDs, r.PatientID):
		return deny(RuleNoRelation)
	case j.Department != "" && !slices.Contains(r.Departments, j.Department):
		return deny(RuleNoRelation)
	case req.Action == RecordRead && len(j.RecordTypes) > 0 && !slices.Contains(j.RecordTypes, r.RecordType):
		return deny(RuleNoRelation)
	}
	return allowed
}

// decideUse decides who may approve or refuse a record-use request (or
// see the queue, when the resource names no request): the records office
// (use.approve) for unrestricted records; for restricted ones (restricted
// types, restricted departments) only the head of the department that owns
// them. The head of an owning department may also decide an unrestricted
// request. Nobody decides their own request, nor a request of someone who
// created, changed or reset their account.
func decideUse(req Request) Decision {
	s, r := req.Subject, req.Resource
	office, head := s.Permissions[UseApprove], s.Permissions[ApprovalDecideDepartment]
	if !office && !head {
		return deny(RuleNoPermission)
	}
	if r.RequestedBy == "" && r.ID == "" {
		return allow(RulePermission)
	}
	restricted := r.Restricted || Restricted(r.RecordType)
	switch {
	case r.RequestedBy != "" && r.RequestedBy == s.ID:
		return deny(RuleOwnRequest)
	case r.RequestedBy != "" && slices.Contains(s.ChangedBy, r.RequestedBy):
		return deny(RuleApproverShaped)
	case r.Missing:
		return allow(RulePermission)
	case restricted && head && r.Approvers.Department != "" && s.Department == r.Approvers.Department:
		return allow(RuleDepartmentHead)
	case restricted:
		return deny(RuleNotApprover)
	case office:
		return allow(RulePermission)
	case head && s.Department != "" && slices.Contains(r.Departments, s.Department):
		return allow(RuleDepartmentHead)
	}
	return deny(RuleNotApprover)
}

// useGrant returns the id of a use grant that opens action on r at now, or
// "". A use grant opens a patient's demographics and record list (the list
// shows only the records it opens) and the reading of the records it names.
func useGrant(grants []UseGrant, action Permission, r Resource, restricted bool, now time.Time) string {
	if r.PatientID == "" || !useReads[action] {
		return ""
	}
	for _, g := range grants {
		if g.PatientID != r.PatientID || now.Before(g.From) || !now.Before(g.Until) || restricted && !g.HeadApproved {
			continue
		}
		if action != RecordRead {
			return g.RequestID
		}
		id := r.ID
		if r.RecordID != "" {
			id = r.RecordID
		}
		all := len(g.RecordIDs) == 0 && len(g.RecordTypes) == 0
		if all || slices.Contains(g.RecordIDs, id) || slices.Contains(g.RecordTypes, r.RecordType) {
			return g.RequestID
		}
	}
	return ""
}

// useReads are the reads an approved record-use request opens.
var useReads = map[Permission]bool{PatientRead: true, RecordRead: true, RecordList: true}

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

// decideRectification decides reading a rectification item and reporting
// its progress (issue 14). Resource.SubjectUserID is the item's owner and
// Resource.Departments its department (empty for a list of every
// department's items). Reading opens to rectification.read (every item),
// to a department head's rectification.read_department for their own
// department, and to the owner; reporting progress to the owner alone.
func decideRectification(req Request) Decision {
	s, r := req.Subject, req.Resource
	owner := r.SubjectUserID != "" && r.SubjectUserID == s.ID && !s.System
	if req.Action == RectificationProgress {
		if owner {
			return allow(RuleRectificationOwner)
		}
		return deny(RuleNotRectificationOwner)
	}
	head := s.Permissions[RectificationReadDepartment]
	switch {
	case s.Permissions[RectificationRead]:
		return allow(RulePermission)
	case owner:
		return allow(RuleRectificationOwner)
	case head && r.Missing:
		return allow(RulePermission)
	case head && s.Department != "" && len(r.Departments) > 0 && !slices.ContainsFunc(r.Departments, func(d string) bool { return d != s.Department }):
		return allow(RuleDepartmentHead)
	case head:
		return deny(RuleOtherDepartment)
	}
	return deny(RuleNoPermission)
}
