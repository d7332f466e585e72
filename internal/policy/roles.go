package policy

import (
	"slices"
	"strings"
)

// Permission is a fine-grained verb that a role or an API key may hold.
// A permission of the form "verb:record_type" (e.g. "record.write:nursing_note")
// allows the verb for that one record type only.
type Permission string

// The permissions medguard knows. Patient-data permissions (see PatientData)
// also need a relation to the patient or record before they allow anything.
const (
	PatientCreate Permission = "patient.create"
	PatientRead   Permission = "patient.read"
	PatientUpdate Permission = "patient.update"
	PatientSearch Permission = "patient.search"
	PatientList   Permission = "patient.list"

	RecordRead        Permission = "record.read"
	RecordWrite       Permission = "record.write"
	RecordList        Permission = "record.list"
	RecordReadHistory Permission = "record.read_history"
	RecordArchive     Permission = "record.archive"
	RecordExport      Permission = "record.export"
	// ArchivingRead shows the late-archiving list (patient ids, no data).
	ArchivingRead   Permission = "archiving.read"
	AdmissionManage Permission = "admission.manage"
	CareTeamManage  Permission = "careteam.manage"
	GrantManage     Permission = "grant.manage"
	// GrantRequest asks for an access grant to another department's
	// records (for oneself or a colleague); that department's head decides.
	GrantRequest     Permission = "grant.request"
	BreakGlassUse    Permission = "breakglass.use"
	BreakGlassReview Permission = "breakglass.review"
	BreakGlassRead   Permission = "breakglass.read"
	// AllDepartments widens patient-data permissions from the holder's own
	// department to the whole hospital (records clerks, the HIS), except for
	// restricted record types.
	AllDepartments Permission = "scope.all_departments"

	// DirectoryRead lets any member of staff list departments and roles.
	DirectoryRead    Permission = "directory.read"
	UserRead         Permission = "user.read"
	UserManage       Permission = "user.manage"
	DepartmentManage Permission = "department.manage"
	RoleRead         Permission = "role.read"
	APIKeyManage     Permission = "apikey.manage"
	SettingsManage   Permission = "settings.manage"
	// ApprovalDecide decides any four-eyes request that a security officer
	// may decide; ApprovalDecideDepartment decides those that the head of
	// the holder's own department may decide (clinical roles, credential
	// resets and care teams in the department, access grants to its data).
	ApprovalDecide           Permission = "approval.decide"
	ApprovalDecideDepartment Permission = "approval.decide_department"

	AuditRead            Permission = "audit.read"
	AlertRead            Permission = "alert.read"
	AlertManage          Permission = "alert.manage"
	RuleManage           Permission = "rule.manage"
	AccountRelease       Permission = "account.release"
	IncidentRead         Permission = "incident.read"
	IncidentManage       Permission = "incident.manage"
	AccountabilityManage Permission = "accountability.manage"
	// AccountabilityRespond is the person concerned answering their own
	// accountability case (reading it, their statement, their appeal). No
	// role holds it: the policy allows it to the case's subject alone.
	AccountabilityRespond Permission = "accountability.respond"
	ComplianceRead        Permission = "compliance.read"
	// ComplianceRun computes the compliance checks now and keeps the
	// results (a run); the daily run is medguard's own.
	ComplianceRun Permission = "compliance.run"
	// ComplianceAttest attaches the evidence of an attested check (a
	// machine room's survey, a grounding test report).
	ComplianceAttest Permission = "compliance.attest"
	// ComplianceReview signs attested evidence as the second person; never
	// one's own (deny.separation_of_duties).
	ComplianceReview Permission = "compliance.review"

	KeyRotate     Permission = "key.rotate"
	BackupRun     Permission = "backup.run"
	SystemMetrics Permission = "system.metrics"
	// BackupRead shows the backups' health (each target's last backup and
	// error, the achieved RPO, the 3-2-1 state) and the restore drills
	// (恢复演练): operational facts with no patient data and no secret,
	// for those who run, secure, audit or administer the installation.
	BackupRead Permission = "backup.read"

	// DeidRun asks for a de-identification job (a four-eyes request that
	// medical affairs decides); DeidRead lists one's jobs and downloads
	// the output of an approved job one is the recipient of.
	DeidRun  Permission = "deid.run"
	DeidRead Permission = "deid.read"
	// ExportApprove and DeidApprove decide the four-eyes requests that let
	// data leave the archive (SPEC §8): an export of more than one
	// patient's records, and a de-identification job. Medical affairs
	// (医务科) holds them; never the requester.
	ExportApprove Permission = "export.approve"
	DeidApprove   Permission = "deid.approve"

	// RetentionRead lists the records whose retention period has ended
	// (ids, types, departments and dates: no patient data), the retention
	// periods and the destruction certificates.
	RetentionRead Permission = "retention.read"
	// RetentionManage lengthens a record type's retention period; a
	// shortening is a four-eyes request a security officer decides.
	RetentionManage Permission = "retention.manage"
	// RecordDestroy asks for the destruction of records whose retention
	// has ended: a four-eyes request a security officer decides, never the
	// requester (SPEC §3, §4).
	RecordDestroy Permission = "record.destroy"
	// RetentionHold places a legal hold (诉讼保全/封存) on a patient's
	// records or on named records, which stops their destruction: a
	// protective act one person may do alone (records office, security
	// officer), and asks for a hold to be lifted — a four-eyes request a
	// security officer other than the one who placed it decides.
	RetentionHold Permission = "retention.hold"

	// UseRequest asks for a record-use request (借阅/调阅): a member of
	// staff asks to read a patient's records for a purpose and a period;
	// it also shows and withdraws the caller's own requests.
	UseRequest Permission = "use.request"
	// UseRead lists every record-use request (the records office's queue).
	UseRead Permission = "use.read"
	// UseApprove approves or refuses a record-use request (the records
	// office); requests that name restricted records are decided by the
	// owning department's head (approval.decide_department) instead.
	UseApprove Permission = "use.approve"
	// FolderRead shows the paper folders (纸质病案), their loans and the
	// paper–electronic reconciliation: barcodes, locations, patient ids;
	// no demographics.
	FolderRead Permission = "folder.read"
	// FolderManage registers paper folders, lends and returns them.
	FolderManage Permission = "folder.manage"
	// CopyManage records copies (复印) of records for patients and
	// insurers, after checking the requester's identity.
	CopyManage Permission = "copy.manage"

	// PartnerManage registers external partners (合作单位), links their
	// researchers' accounts, asks for their agreements (a four-eyes request
	// a security officer decides), ends an agreement early and records the
	// partner's deletion confirmation (删除确认) at its end.
	PartnerManage Permission = "partner.manage"
	// PartnerRead shows the partners, their agreements and deletion
	// confirmations, and the partner accounts' activity against the
	// agreements' scope (the unannounced inspection of seed 003 §3.3.2):
	// audit entries of the partners' accounts, no patient data.
	PartnerRead Permission = "partner.read"

	// InspectionRead shows the daily inspections (巡查, seed 003 §4.1.1),
	// their readings, signatures and weekly summaries, and the checklist
	// templates: facts about rooms and servers, no patient data.
	InspectionRead Permission = "inspection.read"
	// InspectionPerform records the day's inspection and signs it as the
	// inspector (IT engineers; records clerks, who keep the archive room).
	InspectionPerform Permission = "inspection.perform"
	// InspectionReview countersigns an inspection as its reviewer: never
	// its own inspector (deny.same_signatory).
	InspectionReview Permission = "inspection.review"
	// InspectionManage edits the daily checklist template: a new version
	// of its items and ranges.
	InspectionManage Permission = "inspection.manage"
	// MediaRead shows the removable media register (移动存储介质): devices,
	// loans, erasures and disposals.
	MediaRead Permission = "media.read"
	// MediaManage registers devices, lends them (the lender's signature;
	// never to oneself), takes them back, records their erasure before a
	// witness and their disposal.
	MediaManage Permission = "media.manage"
	// MediaBorrow signs for a device lent to oneself (the borrower's
	// signature: the named borrower alone) and lists one's own loans.
	MediaBorrow Permission = "media.borrow"
	// TrainingRead shows the training register (培训考核, issue 13): the
	// courses, sessions with attendance and exam scores, every member of
	// staff's training record, the coverage grid with the overdue marked,
	// the commitment letters (安全承诺书) and who signed them, the
	// retraining orders and the quarterly staff assessments.
	TrainingRead Permission = "training.read"
	// TrainingManage runs the register: courses (and which one is
	// required for record access), sessions, attendance and exam scores,
	// commitment letters, retraining orders, the settings (the training
	// period and the grace period) and the quarterly assessments with
	// their appeals. Nobody records their own attendance or score, nor
	// decides their own appeal (policy rule deny.own_training).
	TrainingManage Permission = "training.manage"
	// TrainingSelf is a member of staff reading their own training record
	// and signing the commitment letter, or appealing their own
	// assessment. No role holds it: the policy allows it to the person
	// concerned alone (the resource's SubjectUserID).
	TrainingSelf Permission = "training.self"
	// AssetRead shows the asset register (资产台账): servers, applications,
	// workstations and devices with their owner, department, location,
	// classification, labels and end of support; no patient data.
	AssetRead Permission = "asset.read"
	// AssetManage registers, changes and imports (CSV) assets.
	AssetManage Permission = "asset.manage"
	// VulnRead shows the vulnerabilities (漏洞管理) found on the assets:
	// their severity, state, due dates, sightings and history, the scans
	// imported, the scan cadence and the operations suspended.
	VulnRead Permission = "vuln.read"
	// VulnManage imports scanner reports and moves vulnerabilities through
	// their states (confirmed, fixing, fixed, verified in test, deployed);
	// accepting a risk or calling a finding a false positive is a
	// four-eyes request a security officer decides.
	VulnManage Permission = "vuln.manage"
	// VulnSuspend suspends named operations (exports, record writes, …)
	// while a critical vulnerability of the records system is open
	// (病案室暂停相关操作), and asks for a suspension to be lifted early — a
	// four-eyes request another security officer decides.
	VulnSuspend Permission = "vuln.suspend"
)

// The security office's anonymous reporting channel (举报, issue 13).
const (
	// ReportTriage reads the anonymous reports (举报), answers their
	// reporters through their receipt codes, converts a report into an
	// incident (with incident.manage) or an accountability case (with
	// accountability.manage), and closes it. Filing a report needs no
	// permission and no sign-in: the channel stores no identity.
	ReportTriage Permission = "report.triage"
	// RiskRead shows the risk register (风险评估, issue 13): risks, their
	// heat map, the risk assessments and the new-system checklists. No
	// patient data: systems, threats, owners and dates.
	RiskRead Permission = "risk.read"
	// RiskManage records and reviews risks, records risk assessments and
	// keeps the checklist of a new system's introduction.
	RiskManage Permission = "risk.manage"
	// RiskAccept decides the acceptance of a high or critical risk and a
	// new system's go-live (the leadership group, 领导小组): never by the
	// person who proposed it (deny.separation_of_duties).
	RiskAccept Permission = "risk.accept"
	// PlanRead shows the emergency plans (应急预案), their versions and
	// workflow, and the drills (演练) with their gaps and improvements.
	PlanRead Permission = "plan.read"
	// PlanManage writes emergency plans: drafts, new versions, submitting
	// a draft for expert review.
	PlanManage Permission = "plan.manage"
	// PlanReview is the expert review (专家评审) of a submitted plan and
	// the yearly review of a published one; never by an author.
	PlanReview Permission = "plan.review"
	// PlanApprove is the leadership's approval (领导审批) that publishes a
	// reviewed plan; never by an author or its reviewer.
	PlanApprove Permission = "plan.approve"
	// DrillManage records drills (演练) with their steps' response times,
	// gaps and improvement items, and closes improvement items.
	DrillManage Permission = "drill.manage"
)

// The leadership's periodic security posture reports (安全态势报告, issue 14).
const (
	// ReportRead lists the posture reports generated, shows their figures
	// and downloads their HTML and PDF (the leadership group, the security
	// office and the quality auditors). No patient data: counts and staff.
	ReportRead Permission = "report.read"
	// ReportGenerate generates a posture report on demand (the leadership
	// group and the security office); scheduled reports are generated by
	// medguard itself.
	ReportGenerate Permission = "report.generate"
)

// The rectification register (整改) and the quarterly compliance check
// (季度合规检查, issue 14).
const (
	// RectificationRead shows every rectification item, its history and
	// evidence, and the monthly reviews (the security office, the quality
	// auditors, the leadership). No patient data: findings, departments,
	// owners and dates.
	RectificationRead Permission = "rectification.read"
	// RectificationReadDepartment shows a department head the items of
	// their own department (deny.other_department elsewhere). An item's
	// owner reads their own item without any permission.
	RectificationReadDepartment Permission = "rectification.read_department"
	// RectificationManage opens items (internal audit findings by hand,
	// third-party audit reports imported from CSV), assigns their owner,
	// deadline and severity, and reopens them.
	RectificationManage Permission = "rectification.manage"
	// RectificationVerify verifies an item its owner reported done, or
	// sends it back; never the owner nor who reported it done
	// (deny.own_rectification). Reporting progress is the owner's alone
	// (deny.not_rectification_owner), with no permission.
	RectificationVerify Permission = "rectification.verify"
	// RectificationReview records the monthly review of rectification
	// (月度整改评审) as the security office's signed statement of the
	// figures of the month.
	RectificationReview Permission = "rectification.review"
	// RectificationProgress is the owner's report of progress on their
	// item (started, done with the evidence): decided by ownership, held
	// by no role.
	RectificationProgress Permission = "rectification.progress"
	// ComplianceQuarterly runs the quarterly compliance check (季度合规检查,
	// 质控科): samples the departments, records the findings and
	// publishes the run to every department head.
	ComplianceQuarterly Permission = "compliance.quarterly"
	// ComplianceQuarterlyResults shows a department head the published
	// quarterly checks: their department's findings and the hospital's
	// summary (the whole run needs compliance.read).
	ComplianceQuarterlyResults Permission = "compliance.quarterly_results"
)

// AllPermissions lists every permission, in a stable order.
var AllPermissions = []Permission{
	PatientCreate, PatientRead, PatientUpdate, PatientSearch, PatientList,
	RecordRead, RecordWrite, RecordList, RecordReadHistory, RecordArchive, RecordExport, ArchivingRead,
	AdmissionManage, CareTeamManage, GrantManage, GrantRequest, BreakGlassUse, BreakGlassReview, BreakGlassRead,
	AllDepartments,
	DirectoryRead, UserRead, UserManage, DepartmentManage, RoleRead, APIKeyManage, SettingsManage, ApprovalDecide,
	ApprovalDecideDepartment, AuditRead, AlertRead, AlertManage, RuleManage, AccountRelease, IncidentRead, IncidentManage,
	AccountabilityManage, AccountabilityRespond, ComplianceRead, ComplianceRun, ComplianceAttest, ComplianceReview,
	KeyRotate, BackupRun, SystemMetrics,
	DeidRun, DeidRead, ExportApprove, DeidApprove,
	RetentionRead, RetentionManage, RecordDestroy,
	BackupRead, RetentionHold,
	UseRequest, UseRead, UseApprove, FolderRead, FolderManage, CopyManage,
	PartnerManage, PartnerRead,
	InspectionRead, InspectionPerform, InspectionReview, InspectionManage, MediaRead, MediaManage, MediaBorrow,
	TrainingRead, TrainingManage, TrainingSelf,
	AssetRead, AssetManage, VulnRead, VulnManage, VulnSuspend,
	ReportTriage,
	RiskRead, RiskManage, RiskAccept, PlanRead, PlanManage, PlanReview, PlanApprove, DrillManage,
	ReportRead, ReportGenerate,
	RectificationRead, RectificationReadDepartment, RectificationManage, RectificationVerify, RectificationReview,
	RectificationProgress, ComplianceQuarterly, ComplianceQuarterlyResults,
}

// patientData are the permissions whose use touches a patient's data and so
// needs a relation (department, care team, grant, hospital scope or
// break-glass) on top of the permission itself.
var patientData = map[Permission]bool{
	PatientRead: true, PatientUpdate: true, PatientList: true,
	RecordRead: true, RecordWrite: true, RecordList: true, RecordReadHistory: true,
	RecordArchive: true, ArchivingRead: true, AdmissionManage: true, CareTeamManage: true, GrantManage: true,
	BreakGlassReview: true, RecordExport: true,
}

// PatientData reports whether using p touches a particular patient's data and
// so needs a relation to that patient.
func PatientData(p Permission) bool { return patientData[p.base()] }

// discloses are the patient-data permissions that show data rather than
// change it; care-team membership and access grants open only these.
var discloses = map[Permission]bool{PatientRead: true, RecordRead: true, RecordList: true, RecordReadHistory: true,
	PatientList: true, ArchivingRead: true, RecordExport: true}

// breakGlassable are the reads that break-glass may open.
var breakGlassable = map[Permission]bool{PatientRead: true, RecordRead: true, RecordList: true}

func (p Permission) base() Permission {
	if i := strings.IndexByte(string(p), ':'); i >= 0 {
		return p[:i]
	}
	return p
}

// Role names, exactly as in SPEC Appendix A.
const (
	Admin           = "admin"
	RecordsClerk    = "records_clerk"
	Doctor          = "doctor"
	Nurse           = "nurse"
	DeptHead        = "dept_head"
	ITEngineer      = "it_engineer"
	SecurityOfficer = "security_officer"
	Auditor         = "auditor"
	Researcher      = "researcher"
	Leadership      = "leadership"
	// MedicalAffairs is the medical-affairs office (医务科), which approves
	// exports and de-identification jobs (SPEC §8).
	MedicalAffairs = "medical_affairs"
)

// Role is a named set of permissions.
type Role struct {
	Name        string
	NameZH      string
	Description string
	Permissions []Permission
	// Privileged roles (system administration, security, audit, IT) are
	// granted through a four-eyes approval by a security officer.
	Privileged bool
	// Clinical roles open patient data; they too are granted through a
	// four-eyes approval: by a security officer or, for a role in one
	// department, by that department's head (records clerks, whose scope is
	// hospital-wide, by a security officer).
	Clinical bool
}

var doctorPermissions = []Permission{
	DirectoryRead, PatientCreate, PatientRead, PatientUpdate, PatientSearch, PatientList,
	RecordRead, RecordWrite, RecordList, AdmissionManage, BreakGlassUse, GrantRequest, UseRequest, RecordExport,
}

// DefaultRoles are the roles every installation has, covering every user of
// SPEC §0. Admin holds no patient-data permission at all.
var DefaultRoles = []Role{
	{Name: Admin, NameZH: "系统管理员", Privileged: true,
		Description: "Users, departments, roles and settings; reads the audit log and alerts; no patient data. Asks for the grants a security officer approves.",
		Permissions: []Permission{DirectoryRead, UserRead, UserManage, DepartmentManage, RoleRead, APIKeyManage,
			SettingsManage, AuditRead, AlertRead, SystemMetrics, RetentionRead, RetentionManage, BackupRead}},
	{Name: RecordsClerk, NameZH: "病案管理员", Clinical: true,
		Description: "Registers patients and admissions and archives records for the whole hospital; handles record-use requests, paper folders and copies; restricted record types need a grant.",
		Permissions: []Permission{DirectoryRead, PatientCreate, PatientRead, PatientUpdate, PatientSearch, PatientList,
			RecordRead, RecordList, RecordReadHistory, RecordArchive, ArchivingRead, AdmissionManage, AllDepartments, GrantRequest,
			RetentionRead, RecordDestroy, RetentionHold, UseRequest, UseRead, UseApprove, FolderRead, FolderManage, CopyManage,
			RecordExport, InspectionRead, InspectionPerform, MediaBorrow}},
	{Name: Doctor, NameZH: "医生", Clinical: true,
		Description: "Reads and writes the records of their department's and care team's patients; may break the glass.",
		Permissions: doctorPermissions},
	{Name: Nurse, NameZH: "护士", Clinical: true,
		Description: "Reads their department's records and writes nursing notes; may break the glass.",
		Permissions: []Permission{DirectoryRead, PatientRead, PatientSearch, PatientList, RecordRead, RecordList,
			"record.write:nursing_note", AdmissionManage, BreakGlassUse, GrantRequest, UseRequest}},
	{Name: DeptHead, NameZH: "科室主任", Clinical: true,
		Description: "A doctor who also reviews break-glass, manages care teams and access grants in the department, and approves the department's requests.",
		Permissions: append(slices.Clone(doctorPermissions), RecordReadHistory, ArchivingRead, BreakGlassReview,
			BreakGlassRead, CareTeamManage, GrantManage, ApprovalDecideDepartment, RectificationReadDepartment, ComplianceQuarterlyResults)},
	{Name: ITEngineer, NameZH: "信息科工程师", Privileged: true,
		Description: "Runs the server: backups, keys, metrics; keeps the asset register and fixes vulnerabilities; inspects daily; keeps risks, emergency plans and drills with the security office; no patient data.",
		Permissions: []Permission{DirectoryRead, BackupRun, KeyRotate, SystemMetrics, RoleRead, BackupRead,
			InspectionRead, InspectionPerform, MediaRead, MediaManage, MediaBorrow, AssetRead, AssetManage, VulnRead, VulnManage,
			RiskRead, RiskManage, PlanRead, PlanManage, PlanReview, DrillManage, ComplianceRead, ComplianceAttest}},
	{Name: SecurityOfficer, NameZH: "信息安全专员", Privileged: true,
		Description: "Rules, alerts, incidents, audits and reports; releases frozen accounts; approves the four-eyes requests that grant privilege or open patient data.",
		Permissions: []Permission{DirectoryRead, AuditRead, AlertRead, AlertManage, RuleManage, AccountRelease,
			IncidentRead, IncidentManage, UserRead, RoleRead, ApprovalDecide, ComplianceRead, ComplianceRun, ComplianceAttest,
			ComplianceReview, BreakGlassRead, RetentionRead,
			BackupRead, RetentionHold, PartnerManage, PartnerRead,
			InspectionRead, InspectionReview, InspectionManage, MediaRead, MediaManage, MediaBorrow, TrainingRead, TrainingManage,
			AssetRead, AssetManage, VulnRead, VulnManage, VulnSuspend, ReportTriage,
			RiskRead, RiskManage, PlanRead, PlanManage, PlanReview, DrillManage, ReportRead, ReportGenerate,
			RectificationRead, RectificationManage, RectificationVerify, RectificationReview}},
	{Name: Auditor, NameZH: "质控审计员", Privileged: true,
		Description: "Read-only audit, compliance checks and accountability cases; sees late archiving hospital-wide.",
		Permissions: []Permission{DirectoryRead, AuditRead, AlertRead, IncidentRead, ComplianceRead, ComplianceRun, ComplianceReview,
			AccountabilityManage, UserRead, RoleRead, BreakGlassRead, ArchivingRead, AllDepartments, RetentionRead,
			BackupRead, UseRead, FolderRead, PartnerRead, InspectionRead, MediaRead, MediaBorrow, TrainingRead, AssetRead, VulnRead,
			ReportTriage, RiskRead, PlanRead, ReportRead, RectificationRead, RectificationManage, RectificationVerify, ComplianceQuarterly}},
	{Name: Researcher, NameZH: "科研人员",
		Description: "Asks for de-identification jobs and receives their approved, de-identified output only.",
		Permissions: []Permission{DirectoryRead, DeidRead, DeidRun}},
	{Name: Leadership, NameZH: "领导小组", Privileged: true,
		Description: "The leadership group (领导小组): reads the security posture — compliance, incidents, alerts, backups, retention, risks, plans and drills; accepts high risks and approves emergency plans; no patient data.",
		Permissions: []Permission{DirectoryRead, ComplianceRead, IncidentRead, AlertRead, BackupRead, RetentionRead,
			InspectionRead, TrainingRead, AssetRead, VulnRead, RiskRead, RiskAccept, PlanRead, PlanApprove, ReportRead, ReportGenerate,
			RectificationRead}},
	{Name: MedicalAffairs, NameZH: "医务科", Privileged: true,
		Description: "Approves the requests that let data leave the archive: exports of more than one patient and de-identification jobs; sees their manifests; no patient data of its own.",
		Permissions: []Permission{DirectoryRead, RoleRead, ExportApprove, DeidApprove, DeidRead, PartnerManage, PartnerRead,
			TrainingRead, TrainingManage}},
}

// LookupRole returns the default role with the given name.
func LookupRole(name string) (Role, bool) {
	for _, r := range DefaultRoles {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// Privileged reports whether the named role is privileged (system
// administration, security, audit, IT).
func Privileged(role string) bool {
	r, ok := LookupRole(role)
	return ok && r.Privileged
}

// Clinical reports whether the named role opens patient data.
func Clinical(role string) bool {
	r, ok := LookupRole(role)
	return ok && r.Clinical
}

// NeedsApproval reports whether granting the named role needs a second
// person: every role that grants privilege or opens patient data.
func NeedsApproval(role string) bool {
	return Privileged(role) || Clinical(role)
}

// DepartmentApprovable reports whether the head of the holder's department
// may approve granting the role (a clinical role in one department), rather
// than only a security officer.
func DepartmentApprovable(role string) bool {
	r, ok := LookupRole(role)
	return ok && r.Clinical && !slices.Contains(r.Permissions, AllDepartments)
}

// PermissionSet is the set of permissions a subject holds.
type PermissionSet map[Permission]bool

// PermissionsOf returns the union of the permissions of the named roles.
// Unknown role names contribute nothing.
func PermissionsOf(roles []string) PermissionSet {
	set := PermissionSet{}
	for _, name := range roles {
		if r, ok := LookupRole(name); ok {
			for _, p := range r.Permissions {
				set[p] = true
			}
		}
	}
	return set
}

// SetOf makes a permission set from a list (e.g. an API key's scopes).
func SetOf(perms []string) PermissionSet {
	set := PermissionSet{}
	for _, p := range perms {
		set[Permission(p)] = true
	}
	return set
}

// Has reports whether the set allows p for the given record type: either p
// itself, or the type-qualified "p:recordType".
func (s PermissionSet) Has(p Permission, recordType string) bool {
	if s[p] {
		return true
	}
	return recordType != "" && s[p+":"+Permission(recordType)]
}

// KnownPermission reports whether p is a permission medguard knows, possibly
// qualified by a known record type.
func KnownPermission(p Permission) bool {
	base := p.base()
	if !slices.Contains(AllPermissions, base) {
		return false
	}
	if base == p {
		return true
	}
	return KnownRecordType(string(p[len(base)+1:]))
}
