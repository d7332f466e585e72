package policy

import (
	"testing"
	"time"
)

// TestDecideInspectionsAndMedia is the decision table of the security
// office's two-signature registers (issue 13): IT engineers and records
// clerks (who keep the archive room) perform the daily inspection, a
// security officer reviews it — never the inspector — and edits the
// checklist; the leadership group and auditors read it. Removable media
// are lent by IT engineers and security officers, never to themselves;
// the borrower's signature is the named borrower's alone, and never the
// lender's; an erasure's witness is someone other than its operator.
func TestDecideInspectionsAndMedia(t *testing.T) {
	now := time.Date(2028, 2, 29, 9, 0, 0, 0, time.UTC)
	subject := func(id, role string) Subject {
		return Subject{ID: id, Active: true, Permissions: PermissionsOf([]string{role})}
	}
	it, clerk, security, security2 := subject("it1", ITEngineer), subject("c1", RecordsClerk), subject("s1", SecurityOfficer), subject("s2", SecurityOfficer)
	auditor, leader, doctor, admin := subject("a1", Auditor), subject("l1", Leadership), subject("d1", Doctor), subject("ad", Admin)
	both := Subject{ID: "x1", Active: true, Permissions: PermissionsOf([]string{ITEngineer, SecurityOfficer})}
	gone := it
	gone.Active = false
	inspection := func(inspector string) Resource {
		return Resource{Type: "inspection", ID: "i1", RequestedBy: inspector}
	}
	loan := func(lender, borrower string) Resource {
		return Resource{Type: "media_loan", ID: "l1", RequestedBy: lender, SubjectUserID: borrower}
	}
	device := Resource{Type: "media", ID: "m1"}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"an IT engineer inspects", it, InspectionPerform, Resource{Type: "inspection"}, RulePermission},
		{"a records clerk inspects the archive room", clerk, InspectionPerform, Resource{Type: "inspection"}, RulePermission},
		{"a security officer does not inspect", security, InspectionPerform, Resource{Type: "inspection"}, RuleNoPermission},
		{"a doctor does not inspect", doctor, InspectionPerform, Resource{Type: "inspection"}, RuleNoPermission},
		{"a security officer reviews the IT engineer's inspection", security, InspectionReview, inspection("it1"), RulePermission},
		{"an IT engineer reviews none", it, InspectionReview, inspection("c1"), RuleNoPermission},
		{"a records clerk reviews none", clerk, InspectionReview, inspection("it1"), RuleNoPermission},
		{"nobody reviews their own inspection", both, InspectionReview, inspection("x1"), RuleSameSignatory},
		{"who holds both roles reviews another's", both, InspectionReview, inspection("it1"), RulePermission},
		{"a deactivated inspector does nothing", gone, InspectionPerform, Resource{Type: "inspection"}, RuleInactive},
		{"a security officer edits the checklist", security, InspectionManage, Resource{Type: "inspection_template"}, RulePermission},
		{"an IT engineer does not edit the checklist", it, InspectionManage, Resource{Type: "inspection_template"}, RuleNoPermission},
		{"the leadership group reads inspections", leader, InspectionRead, Resource{Type: "inspection"}, RulePermission},
		{"an auditor reads inspections", auditor, InspectionRead, Resource{Type: "inspection"}, RulePermission},
		{"an administrator reads none", admin, InspectionRead, Resource{Type: "inspection"}, RuleNoPermission},
		{"a doctor reads none", doctor, InspectionRead, Resource{Type: "inspection"}, RuleNoPermission},

		{"an IT engineer registers a device", it, MediaManage, device, RulePermission},
		{"an IT engineer lends to a clerk", it, MediaManage, Resource{Type: "media", ID: "m1", SubjectUserID: "c1"}, RulePermission},
		{"nobody lends to themselves", it, MediaManage, Resource{Type: "media", ID: "m1", SubjectUserID: "it1"}, RuleSameSignatory},
		{"nobody witnesses their own erasure", security, MediaManage, Resource{Type: "media", ID: "m1", SubjectUserID: "s1"}, RuleSameSignatory},
		{"another witnesses it", security, MediaManage, Resource{Type: "media", ID: "m1", SubjectUserID: "s2"}, RulePermission},
		{"an auditor manages no device", auditor, MediaManage, device, RuleNoPermission},
		{"a records clerk manages no device", clerk, MediaManage, device, RuleNoPermission},
		{"an auditor reads the register", auditor, MediaRead, device, RulePermission},
		{"a records clerk does not read the register", clerk, MediaRead, device, RuleNoPermission},
		{"the borrower signs", clerk, MediaBorrow, loan("it1", "c1"), RulePermission},
		{"another signs for no one", security2, MediaBorrow, loan("it1", "c1"), RuleNotBorrower},
		{"the lender does not sign as borrower", security, MediaBorrow, loan("s1", "s1"), RuleSameSignatory},
		{"a doctor borrows nothing", doctor, MediaBorrow, loan("it1", "d1"), RuleNoPermission},
		{"a borrower lists their loans", auditor, MediaBorrow, Resource{Type: "media_loan"}, RulePermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r, Now: now})
			if d.Rule != c.want || d.Allowed != (c.want[:5] == "allow") {
				t.Fatalf("got %+v, want %s", d, c.want)
			}
		})
	}
	for _, p := range []Permission{InspectionRead, InspectionPerform, InspectionReview, InspectionManage, MediaRead, MediaManage, MediaBorrow} {
		if PatientData(p) {
			t.Errorf("%s touches no patient's data", p)
		}
	}
}
