package policy

import (
	"testing"
	"time"
)

// Exports (SPEC §3, §8): one patient's records go to whoever may export
// and relates to the patient; more than one patient only under an approved
// four-eyes request, and only to its requester; medical affairs decides
// the requests of its office, never its own.
func TestDecideExports(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	doctor := Subject{ID: "d1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Doctor})}
	clerk := Subject{ID: "c1", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk})}
	nurse := Subject{ID: "n1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Nurse})}
	affairs := Subject{ID: "m1", Active: true, Permissions: PermissionsOf([]string{MedicalAffairs})}
	affairsShaped := Subject{ID: "m2", Active: true, Permissions: PermissionsOf([]string{MedicalAffairs}), ChangedBy: []string{"c1"}}
	security := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	export := func(n int, approved bool, by string) Resource {
		return Resource{Type: "export", ID: "e1", ExportPatients: n, ExportApproved: approved, RequestedBy: by}
	}
	office := Approvers{Permission: ExportApprove}
	either := Approvers{Security: true, Permission: ExportApprove}
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"doctor exports one patient", Request{Subject: doctor, Action: RecordExport, Resource: export(1, false, "")}, RulePermission},
		{"doctor exports two patients unapproved", Request{Subject: doctor, Action: RecordExport, Resource: export(2, false, "")}, RuleExportNotApproved},
		{"doctor takes an approved export of his own", Request{Subject: doctor, Action: RecordExport, Resource: export(40, true, "d1")}, RulePermission},
		{"doctor takes another's approved export", Request{Subject: doctor, Action: RecordExport, Resource: export(40, true, "c1")}, RuleExportNotApproved},
		{"doctor takes another's one-patient export", Request{Subject: doctor, Action: RecordExport, Resource: export(1, false, "c1")}, RuleExportNotApproved},
		{"clerk takes a pending request's file", Request{Subject: clerk, Action: RecordExport, Resource: export(3, false, "c1")}, RuleExportNotApproved},
		{"nurse may not export", Request{Subject: nurse, Action: RecordExport, Resource: export(1, false, "")}, RuleNoPermission},
		{"a missing export", Request{Subject: doctor, Action: RecordExport, Resource: Resource{Type: "export", ID: "x", Missing: true}}, RulePermission},
		{"asking for a request", Request{Subject: doctor, Action: RecordExport, Resource: Resource{Type: "approval", ID: "a1"}}, RulePermission},
		{"one patient in it, same department", Request{Subject: doctor, Action: RecordExport, Resource: Resource{Type: "patient", ID: "p1", PatientID: "p1", Departments: []string{"CARD"}}}, RuleSameDepartment},
		{"one patient in it, no relation", Request{Subject: doctor, Action: RecordExport, Resource: Resource{Type: "patient", ID: "p1", PatientID: "p1", Departments: []string{"NEUR"}}}, RuleNoRelation},
		{"clerk, hospital scope", Request{Subject: clerk, Action: RecordExport, Resource: Resource{Type: "patient", ID: "p1", PatientID: "p1", Departments: []string{"NEUR"}}}, RuleHospitalScope},
		{"clerk, restricted record", Request{Subject: clerk, Action: RecordExport, Resource: Resource{Type: "record", ID: "r1", PatientID: "p1", Departments: []string{"PSYC"}, RecordType: "psychiatric_note"}}, RuleRestrictedType},
		{"break-glass never exports", Request{Subject: doctor, Action: RecordExport, BreakGlass: true, Resource: Resource{Type: "patient", ID: "p1", PatientID: "p1", Departments: []string{"NEUR"}}}, RuleBreakGlassReadOnly},
		{"medical affairs sees the inbox", Request{Subject: affairs, Action: ApprovalDecide, Resource: Resource{Type: "approval"}}, RulePermission},
		{"medical affairs approves an export", Request{Subject: affairs, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "a", RequestedBy: "c1", Approvers: office}}, RulePermission},
		{"medical affairs approves a role grant", Request{Subject: affairs, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "a", RequestedBy: "c1", Approvers: Approvers{Security: true}}}, RuleNotApprover},
		{"medical affairs approves its own", Request{Subject: affairs, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "a", RequestedBy: "m1", Approvers: office}}, RuleOwnRequest},
		{"medical affairs shaped by the requester", Request{Subject: affairsShaped, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "a", RequestedBy: "c1", Approvers: office}}, RuleApproverShaped},
		{"security officer, core data", Request{Subject: security, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "a", RequestedBy: "c1", Approvers: office}}, RuleNotApprover},
		{"security officer, no core data", Request{Subject: security, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "a", RequestedBy: "c1", Approvers: either}}, RulePermission},
		{"doctor decides nothing", Request{Subject: doctor, Action: ApprovalDecide, Resource: Resource{Type: "approval", ID: "a", RequestedBy: "c1", Approvers: either}}, RuleNoPermission},
	} {
		c.req.Now = now
		got := Decide(c.req)
		want := c.want
		if got.Rule != want || got.Allowed != (want[:6] == "allow.") {
			t.Errorf("%s: got %+v, want %s", c.name, got, want)
		}
	}
}
