package policy

import (
	"testing"
	"time"
)

// TestDecideRestrictions is the decision table of the registers' standing
// rules: a member of staff's own restrictions (training not passed) and the
// operations suspended for everyone (a critical vulnerability).
func TestDecideRestrictions(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	training := Restriction{Rule: RuleTrainingRequired, Emergency: true}
	strict := Restriction{Rule: RuleTrainingRequired}
	export := Restriction{Rule: RuleOperationSuspended, Actions: []Permission{RecordExport}}
	subject := func(rs ...Restriction) Subject {
		return Subject{ID: "d1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Doctor}), Restrictions: rs}
	}
	security := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer}), Restrictions: []Restriction{strict}}
	own := Resource{Type: "record", ID: "r1", PatientID: "p", Departments: []string{"CARD"}, RecordType: "progress_note"}
	nurse := Subject{ID: "n1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Nurse}), Restrictions: []Restriction{training}}
	nursing := Resource{Type: "record", ID: "r2", PatientID: "p", Departments: []string{"CARD"}, RecordType: "nursing_note"}
	elsewhere := Resource{Type: "record", ID: "r3", PatientID: "q", Departments: []string{"NEUR"}, RecordType: "lab_report"}
	bulk := Resource{Type: "export", ID: "e1", ExportPatients: 5, ExportApproved: true, RequestedBy: "d1"}

	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"no restriction: the department's record", Request{Subject: subject(), Action: RecordRead, Resource: own}, RuleSameDepartment},
		{"training not passed: the department's own record is refused",
			Request{Subject: subject(training), Action: RecordRead, Resource: own}, RuleTrainingRequired},
		{"training not passed: a write is refused", Request{Subject: subject(training), Action: RecordWrite, Resource: own}, RuleTrainingRequired},
		{"training not passed: a type-qualified permission is closed by its base",
			Request{Subject: nurse, Action: "record.write:nursing_note", Resource: nursing}, RuleTrainingRequired},
		{"training not passed: break-glass in an emergency still opens",
			Request{Subject: subject(training), Action: RecordRead, Resource: elsewhere, BreakGlass: true, Purpose: "emergency"}, RuleBreakGlass},
		{"training not passed: break-glass on the department's own record opens as break-glass only",
			Request{Subject: subject(training), Action: RecordRead, Resource: own, BreakGlass: true, Purpose: "emergency"}, RuleBreakGlass},
		{"training not passed: break-glass opens no write", Request{Subject: subject(training), Action: RecordWrite, Resource: own,
			BreakGlass: true, Purpose: "emergency"}, RuleTrainingRequired},
		{"training not passed: break-glass opens no restricted record", Request{Subject: Subject{ID: "p1", Department: "PSYC",
			Active: true, Permissions: PermissionsOf([]string{Doctor}), Restrictions: []Restriction{training}}, Action: RecordRead,
			Resource:   Resource{Type: "record", ID: "r9", PatientID: "p", Departments: []string{"PSYC"}, RecordType: "psychiatric_note"},
			BreakGlass: true, Purpose: "emergency"}, RuleRestrictedType},
		{"training not passed: core data by break-glass needs a purpose", Request{Subject: subject(training), Action: RecordRead,
			Resource: Resource{Type: "record", ID: "r4", PatientID: "p", Departments: []string{"CARD"}, RecordType: "progress_note",
				Classification: Core}, BreakGlass: true}, RulePurposeRequired},
		{"training not passed: a records clerk cannot break the glass", Request{Subject: Subject{ID: "c1", Department: "MRD", Active: true,
			Permissions: PermissionsOf([]string{RecordsClerk}), Restrictions: []Restriction{training}}, Action: RecordRead, Resource: elsewhere,
			BreakGlass: true, Purpose: "emergency"}, RuleTrainingRequired},
		{"a strict restriction closes break-glass too",
			Request{Subject: subject(strict), Action: RecordRead, Resource: elsewhere, BreakGlass: true, Purpose: "emergency"}, RuleTrainingRequired},
		{"no permission is said before a restriction",
			Request{Subject: subject(training), Action: KeyRotate, Resource: Resource{Type: "keys"}}, RuleNoPermission},
		{"a restriction on patient data leaves other work open",
			Request{Subject: security, Action: IncidentRead, Resource: Resource{Type: "incident", ID: "i1"}}, RulePermission},
		{"a suspended export refuses an approved bulk export",
			Request{Subject: subject(), Action: RecordExport, Resource: bulk, Suspensions: []Restriction{export}}, RuleOperationSuspended},
		{"a suspended export leaves reading open",
			Request{Subject: subject(), Action: RecordRead, Resource: own, Suspensions: []Restriction{export}}, RuleSameDepartment},
		{"an inactive subject is inactive first",
			Request{Subject: Subject{ID: "d1", Permissions: PermissionsOf([]string{Doctor}), Restrictions: []Restriction{training}},
				Action: RecordRead, Resource: own}, RuleInactive},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.Now = now
			got := Decide(c.req)
			if got.Rule != c.want {
				t.Fatalf("rule %q, want %q", got.Rule, c.want)
			}
			if got.BreakGlass != (got.Rule == RuleBreakGlass) {
				t.Fatalf("break-glass flag %v with rule %s: an emergency past a restriction must be marked and reviewed", got.BreakGlass, got.Rule)
			}
		})
	}
}
