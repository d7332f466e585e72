package policy

import (
	"testing"
	"time"
)

// TestDecideRisksAndPlans is the decision table of the risk register
// (风险评估) and the emergency plans and drills (应急预案与演练, issue 13):
// the security office and the information engineers keep the registers,
// auditors read them, the leadership group accepts high risks and approves
// plans; an expert review and an approval are never signed by the plan's
// author, nor the approval by its reviewer, nor a risk's acceptance by
// whoever proposed it (deny.separation_of_duties). Clinical staff and the
// administrator reach none of it.
func TestDecideRisksAndPlans(t *testing.T) {
	now := time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC)
	subject := func(id, role string) Subject {
		return Subject{ID: id, Active: true, Permissions: PermissionsOf([]string{role})}
	}
	security, security2 := subject("s1", SecurityOfficer), subject("s2", SecurityOfficer)
	engineer, auditor, leader := subject("e1", ITEngineer), subject("a1", Auditor), subject("l1", Leadership)
	admin, doctor := subject("ad", Admin), Subject{ID: "d1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Doctor})}
	head := Subject{ID: "h1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{DeptHead})}
	gone := security
	gone.Active = false
	risk := Resource{Type: "risk", ID: "r1"}
	plan := Resource{Type: "plan", ID: "p1"}
	drill := Resource{Type: "drill", ID: "d1"}
	// A plan version written by s1, reviewed by e1.
	toReview := Resource{Type: "plan", ID: "p1", Signers: []string{"s1"}}
	toApprove := Resource{Type: "plan", ID: "p1", Signers: []string{"s1", "e1"}}
	// A critical risk whose acceptance s1 proposed.
	acceptance := Resource{Type: "risk", ID: "r1", Signers: []string{"s1"}}
	// The leader wrote the plan (an author may hold any role).
	ownPlan := Resource{Type: "plan", ID: "p2", Signers: []string{"l1"}}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"a security officer reads the risks", security, RiskRead, risk, RulePermission},
		{"a security officer records a risk", security, RiskManage, risk, RulePermission},
		{"an IT engineer records a risk", engineer, RiskManage, risk, RulePermission},
		{"an auditor reads the risks", auditor, RiskRead, risk, RulePermission},
		{"an auditor records none", auditor, RiskManage, risk, RuleNoPermission},
		{"the leadership reads the risks", leader, RiskRead, risk, RulePermission},
		{"the leadership records none", leader, RiskManage, risk, RuleNoPermission},
		{"a doctor reads no risk", doctor, RiskRead, risk, RuleNoPermission},
		{"a department head reads no risk", head, RiskRead, risk, RuleNoPermission},
		{"the administrator reads no risk", admin, RiskRead, risk, RuleNoPermission},
		{"a deactivated account does nothing", gone, RiskRead, risk, RuleInactive},
		{"the leadership accepts a risk another proposed", leader, RiskAccept, acceptance, RulePermission},
		{"a security officer accepts no risk", security2, RiskAccept, acceptance, RuleNoPermission},
		{"the proposer never decides the acceptance", Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer, Leadership})},
			RiskAccept, acceptance, RuleSeparationOfDuties},

		{"a security officer writes a plan", security, PlanManage, plan, RulePermission},
		{"an IT engineer writes a plan", engineer, PlanManage, plan, RulePermission},
		{"the leadership writes no plan", leader, PlanManage, plan, RuleNoPermission},
		{"an auditor reads the plans", auditor, PlanRead, plan, RulePermission},
		{"an auditor writes none", auditor, PlanManage, plan, RuleNoPermission},
		{"a doctor reads no plan", doctor, PlanRead, plan, RuleNoPermission},
		{"the author never reviews their plan", security, PlanReview, toReview, RuleSeparationOfDuties},
		{"another security officer reviews it", security2, PlanReview, toReview, RulePermission},
		{"an IT engineer reviews it", engineer, PlanReview, toReview, RulePermission},
		{"an auditor reviews none", auditor, PlanReview, toReview, RuleNoPermission},
		{"the leadership approves it", leader, PlanApprove, toApprove, RulePermission},
		{"the reviewer approves nothing (no permission)", engineer, PlanApprove, toApprove, RuleNoPermission},
		{"a leader who wrote the plan never approves it", leader, PlanApprove, ownPlan, RuleSeparationOfDuties},
		{"a security officer approves no plan", security2, PlanApprove, toApprove, RuleNoPermission},

		{"a security officer records a drill", security, DrillManage, drill, RulePermission},
		{"an IT engineer records a drill", engineer, DrillManage, drill, RulePermission},
		{"an auditor records none", auditor, DrillManage, drill, RuleNoPermission},
		{"the leadership reads the drills", leader, PlanRead, drill, RulePermission},
		{"a nurse reads no drill", Subject{ID: "n1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Nurse})},
			PlanRead, drill, RuleNoPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r, Now: now})
			if d.Rule != c.want || d.Allowed != (c.want[:5] == "allow") {
				t.Fatalf("got %+v, want %s", d, c.want)
			}
		})
	}
	for _, p := range []Permission{RiskRead, RiskManage, RiskAccept, PlanRead, PlanManage, PlanReview, PlanApprove, DrillManage} {
		if PatientData(p) {
			t.Errorf("%s touches no patient's data", p)
		}
		if !KnownPermission(p) {
			t.Errorf("%s is not in AllPermissions", p)
		}
	}
	// Signers close a step whatever the permission: even a patient-data
	// action named with signers (no route does) is refused first.
	d := Decide(Request{Subject: doctor, Action: RecordRead, Now: now,
		Resource: Resource{Type: "record", ID: "x", PatientID: "p", Departments: []string{"CARD"}, Signers: []string{"d1"}}})
	if d.Rule != RuleSeparationOfDuties {
		t.Errorf("signers on a record: %+v", d)
	}
}
