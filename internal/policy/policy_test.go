package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// roleGrid is an independent statement of which role holds which permission.
// Columns: admin, records_clerk, doctor, nurse, dept_head, it_engineer,
// security_officer, auditor, researcher, leadership, medical_affairs. "x" =
// holds it, "." = does not.
const roleGrid = `
patient.create         . x x . x . . . . . .
patient.read           . x x x x . . . . . .
patient.update         . x x . x . . . . . .
patient.search         . x x x x . . . . . .
patient.list           . x x x x . . . . . .
record.read            . x x x x . . . . . .
record.write           . . x . x . . . . . .
record.list            . x x x x . . . . . .
record.read_history    . x . . x . . . . . .
record.archive         . x . . . . . . . . .
record.export          . x x . x . . . . . .
archiving.read         . x . . x . . x . . .
admission.manage       . x x x x . . . . . .
careteam.manage        . . . . x . . . . . .
grant.manage           . . . . x . . . . . .
grant.request          . x x x x . . . . . .
breakglass.use         . . x x x . . . . . .
breakglass.review      . . . . x . . . . . .
breakglass.read        . . . . x . x x . . .
scope.all_departments  . x . . . . . x . . .
directory.read         x x x x x x x x x x x
user.read              x . . . . . x x . . .
user.manage            x . . . . . . . . . .
department.manage      x . . . . . . . . . .
role.read              x . . . . x x x . . x
apikey.manage          x . . . . . . . . . .
settings.manage        x . . . . . . . . . .
approval.decide        . . . . . . x . . . .
approval.decide_department . . . . x . . . . . .
audit.read             x . . . . . x x . . .
alert.read             x . . . . . x x . x .
alert.manage           . . . . . . x . . . .
rule.manage            . . . . . . x . . . .
account.release        . . . . . . x . . . .
incident.read          . . . . . . x x . x .
incident.manage        . . . . . . x . . . .
accountability.manage  . . . . . . . x . . .
accountability.respond . . . . . . . . . . .
compliance.read        . . . . . x x x . x .
compliance.run         . . . . . . x x . . .
compliance.attest      . . . . . x x . . . .
compliance.review      . . . . . . x x . . .
key.rotate             . . . . . x . . . . .
backup.run             . . . . . x . . . . .
system.metrics         x . . . . x . . . . .
deid.run               . . . . . . . . x . .
deid.read              . . . . . . . . x . x
export.approve         . . . . . . . . . . x
deid.approve           . . . . . . . . . . x
retention.read         x x . . . . x x . x .
retention.manage       x . . . . . . . . . .
record.destroy         . x . . . . . . . . .
backup.read            x . . . . x x x . x .
retention.hold         . x . . . . x . . . .
use.request            . x x x x . . . . . .
use.read               . x . . . . . x . . .
use.approve            . x . . . . . . . . .
folder.read            . x . . . . . x . . .
folder.manage          . x . . . . . . . . .
copy.manage            . x . . . . . . . . .
partner.manage         . . . . . . x . . . x
partner.read           . . . . . . x x . . x
inspection.read        . x . . . x x x . x .
inspection.perform     . x . . . x . . . . .
inspection.review      . . . . . . x . . . .
inspection.manage      . . . . . . x . . . .
media.read             . . . . . x x x . . .
media.manage           . . . . . x x . . . .
media.borrow           . x . . . x x x . . .
training.read          . . . . . . x x . x x
training.manage        . . . . . . x . . . x
training.self          . . . . . . . . . . .
asset.read             . . . . . x x x . x .
asset.manage           . . . . . x x . . . .
vuln.read              . . . . . x x x . x .
vuln.manage            . . . . . x x . . . .
vuln.suspend           . . . . . . x . . . .
report.triage          . . . . . . x x . . .
risk.read              . . . . . x x x . x .
risk.manage            . . . . . x x . . . .
risk.accept            . . . . . . . . . x .
plan.read              . . . . . x x x . x .
plan.manage            . . . . . x x . . . .
plan.review            . . . . . x x . . . .
plan.approve           . . . . . . . . . x .
drill.manage           . . . . . x x . . . .
report.read            . . . . . . x x . x .
report.generate        . . . . . . x . . x .
rectification.read     . . . . . . x x . x .
rectification.read_department . . . . x . . . . . .
rectification.manage   . . . . . . x x . . .
rectification.verify   . . . . . . x x . . .
rectification.review   . . . . . . x . . . .
rectification.progress . . . . . . . . . . .
compliance.quarterly   . . . . . . . x . . .
compliance.quarterly_results . . . . x . . . . . .
`

var gridRoles = []string{Admin, RecordsClerk, Doctor, Nurse, DeptHead, ITEngineer, SecurityOfficer, Auditor, Researcher, Leadership,
	MedicalAffairs}

func parseGrid(t *testing.T) map[string]map[Permission]bool {
	t.Helper()
	held := map[string]map[Permission]bool{}
	for _, r := range gridRoles {
		held[r] = map[Permission]bool{}
	}
	for _, line := range strings.Split(strings.TrimSpace(roleGrid), "\n") {
		f := strings.Fields(line)
		if len(f) != 1+len(gridRoles) {
			t.Fatalf("bad grid line %q", line)
		}
		for i, mark := range f[1:] {
			if mark == "x" {
				held[gridRoles[i]][Permission(f[0])] = true
			}
		}
	}
	return held
}

func TestRolesMatchGrid(t *testing.T) {
	held := parseGrid(t)
	if len(DefaultRoles) != len(gridRoles) {
		t.Fatalf("DefaultRoles has %d roles, want %d", len(DefaultRoles), len(gridRoles))
	}
	for _, name := range gridRoles {
		set := PermissionsOf([]string{name})
		for _, p := range AllPermissions {
			if set[p] != held[name][p] {
				t.Errorf("role %s permission %s: have %v, grid says %v", name, p, set[p], held[name][p])
			}
		}
	}
	// The nurse's one qualified permission.
	if !PermissionsOf([]string{Nurse}).Has(RecordWrite, "nursing_note") {
		t.Error("nurse cannot write nursing notes")
	}
	if PermissionsOf([]string{Nurse}).Has(RecordWrite, "progress_note") {
		t.Error("nurse can write progress notes")
	}
	// Admin never touches patient data (Appendix A).
	for p := range PermissionsOf([]string{Admin}) {
		if PatientData(p) || p == PatientCreate || p == PatientSearch || p == PatientList || p == AllDepartments {
			t.Errorf("admin holds patient-data permission %s", p)
		}
	}
	for _, r := range []string{Admin, SecurityOfficer, Auditor, ITEngineer} {
		if !Privileged(r) {
			t.Errorf("%s is not privileged", r)
		}
	}
	for _, r := range []string{Doctor, Nurse, RecordsClerk, DeptHead, Researcher} {
		if Privileged(r) {
			t.Errorf("%s is privileged", r)
		}
	}
	// Every role that opens patient data or privilege needs a second person;
	// the head of a department approves only roles confined to one department.
	for _, r := range DefaultRoles {
		opens := false
		for _, p := range r.Permissions {
			opens = opens || PatientData(p)
		}
		if want := r.Privileged || opens; NeedsApproval(r.Name) != want {
			t.Errorf("%s: NeedsApproval %v, want %v", r.Name, NeedsApproval(r.Name), want)
		}
	}
	for r, want := range map[string]bool{Doctor: true, Nurse: true, DeptHead: true, RecordsClerk: false, Admin: false,
		SecurityOfficer: false, Researcher: false} {
		if DepartmentApprovable(r) != want {
			t.Errorf("DepartmentApprovable(%s) = %v", r, !want)
		}
	}
}

// relation is how the subject stands to the data.
type relation string

const (
	relNone         relation = "none"
	relSameDept     relation = "same_department"
	relCareTeam     relation = "care_team"
	relCareTeamOver relation = "care_team_ended"
	relGrant        relation = "grant"
	relGrantExpired relation = "grant_expired"
	relGrantOther   relation = "grant_other_department"
	relGrantRevoked relation = "grant_revoked"
	relBreakGlass   relation = "break_glass"
)

var relations = []relation{relNone, relSameDept, relCareTeam, relCareTeamOver, relGrant, relGrantExpired,
	relGrantOther, relGrantRevoked, relBreakGlass}

// actionClass groups the patient-data permissions by how relations open them.
func actionClass(p Permission) string {
	switch p {
	case PatientRead, RecordRead, RecordList:
		return "read"
	case RecordReadHistory, PatientList, ArchivingRead, RecordExport:
		return "history"
	case PatientUpdate:
		return "update"
	}
	return "change"
}

// expected is the decision table: for an action class and a relation, the
// rule when the subject holds the permission (without hospital scope). "bg"
// means: the break-glass outcome, which depends on breakglass.use and on
// whether the type is restricted.
var expected = map[string]map[relation]string{
	"read": {relNone: RuleNoRelation, relSameDept: RuleSameDepartment, relCareTeam: RuleCareTeam,
		relCareTeamOver: RuleNoRelation, relGrant: RuleAccessGrant, relGrantExpired: RuleNoRelation,
		relGrantOther: RuleNoRelation, relGrantRevoked: RuleNoRelation, relBreakGlass: "bg"},
	"history": {relNone: RuleNoRelation, relSameDept: RuleSameDepartment, relCareTeam: RuleCareTeam,
		relCareTeamOver: RuleNoRelation, relGrant: RuleAccessGrant, relGrantExpired: RuleNoRelation,
		relGrantOther: RuleNoRelation, relGrantRevoked: RuleNoRelation, relBreakGlass: RuleBreakGlassReadOnly},
	"update": {relNone: RuleWriteOtherDept, relSameDept: RuleSameDepartment, relCareTeam: RuleCareTeam,
		relCareTeamOver: RuleWriteOtherDept, relGrant: RuleWriteOtherDept, relGrantExpired: RuleWriteOtherDept,
		relGrantOther: RuleWriteOtherDept, relGrantRevoked: RuleWriteOtherDept, relBreakGlass: RuleBreakGlassReadOnly},
	"change": {relNone: RuleWriteOtherDept, relSameDept: RuleSameDepartment, relCareTeam: RuleWriteOtherDept,
		relCareTeamOver: RuleWriteOtherDept, relGrant: RuleWriteOtherDept, relGrantExpired: RuleWriteOtherDept,
		relGrantOther: RuleWriteOtherDept, relGrantRevoked: RuleWriteOtherDept, relBreakGlass: RuleBreakGlassReadOnly},
}

func TestDecideEveryRoleActionRelation(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	held := parseGrid(t)
	cases := 0
	for _, role := range gridRoles {
		perms := PermissionsOf([]string{role})
		for _, action := range AllPermissions {
			for _, rel := range relations {
				for _, recordType := range []string{"progress_note", "psychiatric_note"} {
					req := Request{
						Subject: Subject{ID: "u1", Department: "CARD", Active: true, Permissions: perms},
						Action:  action,
						Resource: Resource{Type: "record", ID: "r1", PatientID: "p1",
							Departments: []string{"NEUR"}, RecordType: recordType},
						Now: now,
					}
					switch rel {
					case relSameDept:
						req.Resource.Departments = []string{"CARD"}
					case relCareTeam:
						req.CareTeam = []CareTeamMembership{{PatientID: "p1", Until: now.Add(time.Hour)}}
					case relCareTeamOver:
						req.CareTeam = []CareTeamMembership{{PatientID: "p1", Until: now}}
					case relGrant:
						req.Grants = []Grant{{PatientID: "p1", Department: "NEUR", StartsAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}}
					case relGrantExpired:
						req.Grants = []Grant{{PatientID: "p1", Department: "NEUR", StartsAt: now.Add(-2 * time.Hour), ExpiresAt: now}}
					case relGrantOther:
						req.Grants = []Grant{{PatientID: "p1", Department: "GAST", StartsAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}}
					case relGrantRevoked:
						req.Grants = []Grant{{PatientID: "p1", Department: "NEUR", StartsAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), Revoked: true}}
					case relBreakGlass:
						req.BreakGlass = true
					}
					want := oracle(held[role], action, rel, Restricted(recordType))
					got := Decide(req)
					cases++
					if got.Rule != want || got.Allowed != strings.HasPrefix(want, "allow.") {
						t.Errorf("%s %s %s %s: got %+v, want %s", role, action, rel, recordType, got, want)
					}
					if got.BreakGlass != (got.Rule == RuleBreakGlass) {
						t.Errorf("%s %s %s: BreakGlass flag %v with rule %s", role, action, rel, got.BreakGlass, got.Rule)
					}
				}
			}
		}
	}
	t.Logf("%d decisions checked", cases)
}

// oracle reads the decision table for one case.
func oracle(held map[Permission]bool, action Permission, rel relation, restricted bool) string {
	if action == AccountabilityRespond {
		return RuleNotOwnCase // only a case's subject answers it; these resources name no subject
	}
	if action == TrainingSelf {
		return RuleNotOwnTraining // only the person concerned; these resources name no subject
	}
	if action == RectificationProgress {
		return RuleNotRectificationOwner // only an item's owner; these resources name no owner
	}
	if action == RectificationRead && !held[RectificationRead] && held[RectificationReadDepartment] {
		if rel == relSameDept {
			return RuleDepartmentHead // a department head reads their own department's items
		}
		return RuleOtherDepartment
	}
	if action == ApprovalDecide {
		if held[ApprovalDecide] || held[ApprovalDecideDepartment] || held[ExportApprove] || held[DeidApprove] {
			return RuleNotApprover // these resources name no approvers
		}
		return RuleNoPermission
	}
	if action == UseApprove {
		switch {
		case !held[UseApprove] && !held[ApprovalDecideDepartment]:
			return RuleNoPermission
		case restricted:
			return RuleNotApprover // these resources name no approving department
		case held[UseApprove]:
			return RulePermission
		case rel == relSameDept:
			return RuleDepartmentHead
		}
		return RuleNotApprover
	}
	if !held[action] {
		return RuleNoPermission
	}
	if !PatientData(action) {
		return RulePermission
	}
	hospital := held[AllDepartments]
	class := actionClass(action)
	rule := expected[class][rel]
	if restricted && rel == relCareTeam && rule == RuleCareTeam {
		// A care team never opens restricted data of another department.
		switch {
		case hospital && (class == "update" || class == "change"):
			return RuleHospitalScope
		case hospital, class == "read" || class == "history":
			return RuleRestrictedType
		}
		return RuleWriteOtherDept
	}
	if hospital && strings.HasPrefix(rule, "deny.") || hospital && rule == "bg" {
		switch {
		case class == "update" || class == "change":
			return RuleHospitalScope
		case !restricted:
			return RuleHospitalScope
		}
	}
	if rule == "bg" {
		switch {
		case !held[BreakGlassUse]:
			return RuleBreakGlassDenied
		case restricted:
			return RuleRestrictedType
		}
		return RuleBreakGlass
	}
	if hospital && restricted && rule == RuleNoRelation {
		return RuleRestrictedType
	}
	return rule
}

func TestDecideSpecialCases(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	doctor := Subject{ID: "d1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Doctor})}
	head := Subject{ID: "h1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{DeptHead})}
	nurse := Subject{ID: "n1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Nurse})}
	his := Subject{ID: "k1", Active: true, Permissions: SetOf([]string{"record.write", "patient.create", "scope.all_departments"})}
	auditor := Subject{ID: "a", Active: true, Permissions: PermissionsOf([]string{Auditor})}
	security := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	admin := Subject{ID: "a1", Active: true, Permissions: PermissionsOf([]string{Admin})}
	puppet := Subject{ID: "h2", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{DeptHead}), ChangedBy: []string{"a1"}}
	clerk := Subject{ID: "c1", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk})}
	psychiatrist := Subject{ID: "p1", Department: "PSYC", Active: true, Permissions: PermissionsOf([]string{Doctor})}
	psycKey := Subject{ID: "k2", Department: "PSYC", Active: true, System: true, Permissions: SetOf([]string{"record.read", "patient.read"})}
	readKey := Subject{ID: "k3", Active: true, System: true, Permissions: SetOf([]string{"record.read", "scope.all_departments"})}
	restrictedDept := func(typ string) Resource {
		return Resource{Type: "record", ID: "r", PatientID: "p", Departments: []string{"PSYC"}, RecordType: typ, Restricted: true}
	}
	core := func(dept string) Resource {
		return Resource{Type: "record", ID: "r", PatientID: "p", Departments: []string{dept}, RecordType: "progress_note", Classification: Core}
	}
	held := func(dept string, holding ...string) Resource {
		return Resource{Type: "record", ID: "r", PatientID: "p", Departments: []string{dept}, RecordType: "progress_note",
			HeldBy: append([]string{}, holding...)}
	}
	inactive := doctor
	inactive.Active = false
	rec := func(dept, typ string) Resource {
		return Resource{Type: "record", ID: "r", PatientID: "p", Departments: []string{dept}, RecordType: typ}
	}
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"deactivated doctor reads own department", Request{Subject: inactive, Action: RecordRead, Resource: rec("CARD", "progress_note")}, RuleInactive},
		{"doctor reads own department", Request{Subject: doctor, Action: RecordRead, Resource: rec("CARD", "progress_note")}, RuleSameDepartment},
		{"doctor reads restricted type in own department", Request{Subject: doctor, Action: RecordRead, Resource: rec("CARD", "hiv_test")}, RuleSameDepartment},
		{"doctor reads other department", Request{Subject: doctor, Action: RecordRead, Resource: rec("NEUR", "progress_note")}, RuleNoRelation},
		{"doctor breaks the glass", Request{Subject: doctor, Action: RecordRead, Resource: rec("NEUR", "progress_note"), BreakGlass: true}, RuleBreakGlass},
		{"break-glass never opens psychiatric notes", Request{Subject: doctor, Action: RecordRead, Resource: rec("PSYC", "psychiatric_note"), BreakGlass: true}, RuleRestrictedType},
		{"break-glass never opens HIV tests", Request{Subject: doctor, Action: RecordRead, Resource: rec("INFD", "hiv_test"), BreakGlass: true}, RuleRestrictedType},
		{"break-glass does not write", Request{Subject: doctor, Action: RecordWrite, Resource: rec("NEUR", "progress_note"), BreakGlass: true}, RuleBreakGlassReadOnly},
		{"nurse writes nursing note", Request{Subject: nurse, Action: RecordWrite, Resource: rec("CARD", "nursing_note")}, RuleSameDepartment},
		{"nurse may not write progress note", Request{Subject: nurse, Action: RecordWrite, Resource: rec("CARD", "progress_note")}, RuleNoPermission},
		{"HIS key writes in any department", Request{Subject: his, Action: RecordWrite, Resource: rec("PSYC", "psychiatric_note")}, RuleHospitalScope},
		{"HIS key cannot read", Request{Subject: his, Action: RecordRead, Resource: rec("PSYC", "progress_note")}, RuleNoPermission},
		{"patient read via any owning department", Request{Subject: doctor, Action: PatientRead, Resource: Resource{Type: "patient", PatientID: "p", Departments: []string{"NEUR", "CARD"}}}, RuleSameDepartment},
		{"patient with no department", Request{Subject: doctor, Action: PatientRead, Resource: Resource{Type: "patient", PatientID: "p"}}, RuleNoRelation},
		{"grant starts later", Request{Subject: doctor, Action: RecordRead, Resource: rec("NEUR", "progress_note"), Now: now,
			Grants: []Grant{{PatientID: "p", Department: "NEUR", StartsAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}}}, RuleNoRelation},
		{"grant for another patient", Request{Subject: doctor, Action: RecordRead, Resource: rec("NEUR", "progress_note"), Now: now,
			Grants: []Grant{{PatientID: "q", Department: "NEUR", StartsAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}}}, RuleNoRelation},
		{"care team of another patient", Request{Subject: doctor, Action: RecordRead, Resource: rec("NEUR", "progress_note"), Now: now,
			CareTeam: []CareTeamMembership{{PatientID: "q"}}}, RuleNoRelation},
		{"open-ended care team", Request{Subject: doctor, Action: RecordRead, Resource: rec("NEUR", "progress_note"), Now: now,
			CareTeam: []CareTeamMembership{{PatientID: "p"}}}, RuleCareTeam},
		{"head approves a request of the department", Request{Subject: head, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "a1", SubjectUserID: "u9", Approvers: Approvers{Security: true, Department: "CARD"}}}, RuleDepartmentHead},
		{"head approves a request of another department", Request{Subject: head, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "a1", SubjectUserID: "u9", Approvers: Approvers{Security: true, Department: "NEUR"}}}, RuleNotApprover},
		{"head approves a request for a security officer", Request{Subject: head, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "a1", SubjectUserID: "u9", Approvers: Approvers{Security: true}}}, RuleNotApprover},
		{"security officer approves", Request{Subject: security, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "a1", SubjectUserID: "u9", Approvers: Approvers{Security: true, Department: "CARD"}}}, RulePermission},
		{"security officer approves what only a head may", Request{Subject: security, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "a1", SubjectUserID: "u9", Approvers: Approvers{Department: "PSYC"}}}, RuleNotApprover},
		{"admin approves nothing", Request{Subject: admin, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "s1", Approvers: Approvers{Security: true}}}, RuleNoPermission},
		{"head approves own request", Request{Subject: head, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "h1", Approvers: Approvers{Department: "CARD"}}}, RuleOwnRequest},
		{"head approves own elevation", Request{Subject: head, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "a1", SubjectUserID: "h1", Approvers: Approvers{Department: "CARD"}}}, RuleOwnElevation},
		{"the placer of a legal hold approves its lifting", Request{Subject: security, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x",
			RequestedBy: "a1", Approvers: Approvers{Security: true, Excluded: []string{security.ID}, ExcludedRule: "deny.own_hold"}}}, "deny.own_hold"},
		{"another officer approves the lifting", Request{Subject: security, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x",
			RequestedBy: "a1", Approvers: Approvers{Security: true, Excluded: []string{"s9"}, ExcludedRule: "deny.own_hold"}}}, RulePermission},
		{"a puppet approves its maker's request", Request{Subject: puppet, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "x", RequestedBy: "a1", SubjectUserID: "u9", Approvers: Approvers{Security: true, Department: "CARD"}}}, RuleApproverShaped},
		{"the inbox needs an approver's permission", Request{Subject: head, Action: ApprovalDecide, Resource: Resource{Type: "approval"}}, RulePermission},
		{"admin changes own account", Request{Subject: admin, Action: UserManage, Resource: Resource{Type: "user", ID: "a1", SubjectUserID: "a1"}}, RuleOwnAccount},
		{"admin changes another account", Request{Subject: admin, Action: UserManage, Resource: Resource{Type: "user", ID: "u9", SubjectUserID: "u9"}}, RulePermission},
		{"head puts self on a care team", Request{Subject: head, Action: CareTeamManage, Resource: Resource{Type: "patient", PatientID: "p", Departments: []string{"CARD"}, SubjectUserID: "h1"}}, RuleOwnRelation},
		{"head puts a colleague on a care team", Request{Subject: head, Action: CareTeamManage, Resource: Resource{Type: "patient", PatientID: "p", Departments: []string{"CARD"}, SubjectUserID: "d1"}}, RuleSameDepartment},
		{"HIS key of the department reads a psychiatric note", Request{Subject: psycKey, Action: RecordRead, Resource: rec("PSYC", "psychiatric_note")}, RuleRestrictedType},
		{"HIS key of the department reads a record of a restricted department", Request{Subject: psycKey, Action: RecordRead, Resource: restrictedDept("progress_note")}, RuleRestrictedType},
		{"hospital-wide key reads a record", Request{Subject: readKey, Action: RecordRead, Resource: rec("NEUR", "progress_note")}, RuleHospitalScope},
		{"hospital-wide key reads a restricted department", Request{Subject: readKey, Action: RecordRead, Resource: restrictedDept("progress_note")}, RuleRestrictedType},
		{"psychiatrist reads own department's admission note", Request{Subject: psychiatrist, Action: RecordRead, Resource: restrictedDept("admission_note")}, RuleSameDepartment},
		{"care team never opens a restricted department", Request{Subject: doctor, Action: RecordRead, Resource: restrictedDept("admission_note"), Now: now,
			CareTeam: []CareTeamMembership{{PatientID: "p"}}}, RuleRestrictedType},
		{"care team never opens a restricted type elsewhere", Request{Subject: doctor, Action: RecordRead, Resource: rec("NEUR", "hiv_test"), Now: now,
			CareTeam: []CareTeamMembership{{PatientID: "p"}}}, RuleRestrictedType},
		{"a grant from the restricted department opens it", Request{Subject: doctor, Action: RecordRead, Resource: restrictedDept("admission_note"), Now: now,
			Grants: []Grant{{PatientID: "p", Department: "PSYC", StartsAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}}}, RuleAccessGrant},
		{"clerk's scope never opens a restricted department", Request{Subject: clerk, Action: RecordRead, Resource: restrictedDept("admission_note")}, RuleRestrictedType},
		{"break-glass never opens a restricted department", Request{Subject: doctor, Action: RecordRead, Resource: restrictedDept("admission_note"), BreakGlass: true, Purpose: "emergency"}, RuleRestrictedType},
		{"break-glass on core data needs a purpose", Request{Subject: doctor, Action: RecordRead, Resource: core("NEUR"), BreakGlass: true}, RulePurposeRequired},
		{"break-glass on core data with a purpose", Request{Subject: doctor, Action: RecordRead, Resource: core("NEUR"), BreakGlass: true, Purpose: "emergency"}, RuleBreakGlass},
		{"writing for a patient the department never held", Request{Subject: doctor, Action: RecordWrite, Resource: held("CARD", "NEUR")}, RuleNewRelation},
		{"writing for a patient of the department", Request{Subject: doctor, Action: RecordWrite, Resource: held("CARD", "NEUR", "CARD")}, RuleSameDepartment},
		{"writing for a care-team patient", Request{Subject: doctor, Action: RecordWrite, Resource: held("CARD", "NEUR"), Now: now,
			CareTeam: []CareTeamMembership{{PatientID: "p"}}}, RuleSameDepartment},
		{"writing for a patient no department held yet", Request{Subject: doctor, Action: RecordWrite, Resource: held("CARD")}, RuleSameDepartment},
		{"head reviews break-glass in own department", Request{Subject: head, Action: BreakGlassReview, Resource: rec("CARD", "progress_note")}, RuleSameDepartment},
		{"head reviews own break-glass", Request{Subject: head, Action: BreakGlassReview, Resource: Resource{Type: "break_glass", PatientID: "p", Departments: []string{"CARD"}, RequestedBy: "h1"}}, RuleOwnRequest},
		{"missing target: the permission alone decides", Request{Subject: doctor, Action: RecordRead, Resource: Resource{Type: "record", ID: "gone", Missing: true}}, RulePermission},
		{"missing target without the permission", Request{Subject: nurse, Action: RecordReadHistory, Resource: Resource{Type: "record", ID: "gone", Missing: true}}, RuleNoPermission},
		{"auditor sees late archiving hospital-wide", Request{Subject: Subject{ID: "a", Active: true, Permissions: PermissionsOf([]string{Auditor})}, Action: ArchivingRead, Resource: Resource{Type: "archiving"}}, RuleHospitalScope},
		{"auditor's scope opens no records", Request{Subject: Subject{ID: "a", Active: true, Permissions: PermissionsOf([]string{Auditor})}, Action: RecordRead, Resource: rec("CARD", "progress_note")}, RuleNoPermission},
		{"head reviews break-glass elsewhere", Request{Subject: head, Action: BreakGlassReview, Resource: rec("NEUR", "progress_note")}, RuleWriteOtherDept},
		{"the person concerned answers their case", Request{Subject: doctor, Action: AccountabilityRespond, Resource: Resource{Type: "accountability_case", SubjectUserID: "d1"}}, RuleCaseSubject},
		{"nobody answers another's case", Request{Subject: auditor, Action: AccountabilityRespond, Resource: Resource{Type: "accountability_case", SubjectUserID: "d1"}}, RuleNotOwnCase},
		{"a deactivated subject answers nothing", Request{Subject: inactive, Action: AccountabilityRespond, Resource: Resource{Type: "accountability_case", SubjectUserID: "d1"}}, RuleInactive},
		{"auditor manages another's case", Request{Subject: auditor, Action: AccountabilityManage, Resource: Resource{Type: "accountability_case", SubjectUserID: "d1"}}, RulePermission},
		{"auditor manages own case", Request{Subject: auditor, Action: AccountabilityManage, Resource: Resource{Type: "accountability_case", SubjectUserID: "a"}}, RuleOwnCase},
		{"investigator reviews the appeal", Request{Subject: auditor, Action: AccountabilityManage, Resource: Resource{Type: "accountability_case", SubjectUserID: "d1", Investigators: []string{"x", "a"}}}, RuleOwnInvestigation},
		{"another auditor reviews the appeal", Request{Subject: auditor, Action: AccountabilityManage, Resource: Resource{Type: "accountability_case", SubjectUserID: "d1", Investigators: []string{"x"}}}, RulePermission},
		{"doctor manages no case", Request{Subject: doctor, Action: AccountabilityManage, Resource: Resource{Type: "accountability_case", SubjectUserID: "x"}}, RuleNoPermission},
	}
	for _, c := range cases {
		got := Decide(c.req)
		if got.Rule != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got.Rule, c.want)
		}
	}
}

func TestKnownPermission(t *testing.T) {
	for _, p := range AllPermissions {
		if !KnownPermission(p) {
			t.Errorf("%s unknown", p)
		}
	}
	for _, c := range []struct {
		p    Permission
		want bool
	}{{"record.write:nursing_note", true}, {"record.write:nonsense", false}, {"record.delete", false}, {"", false}} {
		if got := KnownPermission(c.p); got != c.want {
			t.Errorf("KnownPermission(%q) = %v", c.p, got)
		}
	}
}

func TestEveryRoleHasPermissionsAndNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range DefaultRoles {
		if seen[r.Name] || r.NameZH == "" || r.Description == "" || len(r.Permissions) == 0 {
			t.Errorf("role %+v incomplete or duplicate", r)
		}
		seen[r.Name] = true
		for _, p := range r.Permissions {
			if !KnownPermission(p) {
				t.Errorf("role %s has unknown permission %s", r.Name, p)
			}
		}
	}
	if !slices.Equal(gridRoles, func() (n []string) {
		for _, r := range DefaultRoles {
			n = append(n, r.Name)
		}
		return
	}()) {
		t.Error("role order differs from Appendix A")
	}
}
