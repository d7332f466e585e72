package policy

import (
	"testing"
	"time"
)

// TestDecideCompliance is the decision table of the compliance checks
// (合规检查, issue 14): the auditors (质控科), the security office and the
// leadership read the report, and so do the IT engineers who attach
// evidence; the auditors and the security office run the checks; the
// security office and the IT engineers attach the evidence of attested
// checks, and a second person — an auditor or another security officer,
// never the one who attached it (deny.separation_of_duties) — signs it.
// Clinical staff, department heads, researchers and the administrator
// reach none of it.
func TestDecideCompliance(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC)
	subject := func(id, role string) Subject {
		return Subject{ID: id, Active: true, Permissions: PermissionsOf([]string{role})}
	}
	security, security2 := subject("s1", SecurityOfficer), subject("s2", SecurityOfficer)
	engineer, auditor, leader := subject("e1", ITEngineer), subject("a1", Auditor), subject("l1", Leadership)
	admin, researcher := subject("ad", Admin), subject("r1", Researcher)
	doctor := Subject{ID: "d1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Doctor})}
	head := Subject{ID: "h1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{DeptHead})}
	gone := auditor
	gone.Active = false
	report := Resource{Type: "compliance_check"}
	run := Resource{Type: "compliance_run"}
	room := Resource{Type: "compliance_check", ID: "machine_room"}
	// Evidence attached by the IT engineer e1, and by the security officer s1.
	byEngineer := Resource{Type: "compliance_attestation", ID: "x1", Signers: []string{"e1"}}
	bySecurity := Resource{Type: "compliance_attestation", ID: "x2", Signers: []string{"s1"}}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"an auditor reads the report", auditor, ComplianceRead, report, RulePermission},
		{"the leadership reads the report", leader, ComplianceRead, report, RulePermission},
		{"a security officer reads the report", security, ComplianceRead, report, RulePermission},
		{"an IT engineer reads the report", engineer, ComplianceRead, report, RulePermission},
		{"a doctor reads no report", doctor, ComplianceRead, report, RuleNoPermission},
		{"a department head reads no report", head, ComplianceRead, report, RuleNoPermission},
		{"a researcher reads no report", researcher, ComplianceRead, report, RuleNoPermission},
		{"the administrator reads no report", admin, ComplianceRead, report, RuleNoPermission},
		{"a departed auditor reads nothing", gone, ComplianceRead, report, RuleInactive},

		{"an auditor runs the checks", auditor, ComplianceRun, run, RulePermission},
		{"a security officer runs the checks", security, ComplianceRun, run, RulePermission},
		{"the leadership runs none", leader, ComplianceRun, run, RuleNoPermission},
		{"an IT engineer runs none", engineer, ComplianceRun, run, RuleNoPermission},
		{"a doctor runs none", doctor, ComplianceRun, run, RuleNoPermission},

		{"an IT engineer attaches evidence", engineer, ComplianceAttest, room, RulePermission},
		{"a security officer attaches evidence", security, ComplianceAttest, room, RulePermission},
		{"an auditor attaches none (they sign)", auditor, ComplianceAttest, room, RuleNoPermission},
		{"the leadership attaches none", leader, ComplianceAttest, room, RuleNoPermission},

		{"an auditor signs the engineer's evidence", auditor, ComplianceReview, byEngineer, RulePermission},
		{"a security officer signs the engineer's evidence", security, ComplianceReview, byEngineer, RulePermission},
		{"another security officer signs the first one's", security2, ComplianceReview, bySecurity, RulePermission},
		{"nobody signs their own evidence", security, ComplianceReview, bySecurity, RuleSeparationOfDuties},
		{"an engineer signs nothing", engineer, ComplianceReview, bySecurity, RuleNoPermission},
		{"the leadership signs nothing", leader, ComplianceReview, byEngineer, RuleNoPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r, Now: now})
			if d.Rule != c.want || d.Allowed != (c.want[:5] == "allow") {
				t.Fatalf("got %+v, want %s", d, c.want)
			}
		})
	}
	for _, p := range []Permission{ComplianceRead, ComplianceRun, ComplianceAttest, ComplianceReview} {
		if PatientData(p) {
			t.Errorf("%s touches no patient's data", p)
		}
		if !KnownPermission(p) {
			t.Errorf("%s is not in AllPermissions", p)
		}
	}
}
