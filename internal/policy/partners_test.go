package policy

import (
	"testing"
	"time"
)

// TestDecidePartners is the decision table of external partners (合作单位,
// SPEC §8): medical affairs and security officers manage partners and ask
// for agreements; auditors, security officers and medical affairs read the
// partners' activity; an agreement is decided by a security officer who
// did not ask for it; a partner's researcher reaches none of it.
func TestDecidePartners(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	subject := func(id, role string) Subject {
		return Subject{ID: id, Active: true, Permissions: PermissionsOf([]string{role})}
	}
	affairs, security, security2 := subject("m1", MedicalAffairs), subject("s1", SecurityOfficer), subject("s2", SecurityOfficer)
	auditor, researcher, admin := subject("a1", Auditor), subject("r1", Researcher), subject("ad", Admin)
	clerk, head := subject("c1", RecordsClerk), Subject{ID: "h1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{DeptHead})}
	shaped := security2
	shaped.ChangedBy = []string{"m1"}
	gone := affairs
	gone.Active = false
	partner := Resource{Type: "partner", ID: "p1"}
	agreement := func(by string) Resource {
		return Resource{Type: "approval", ID: "ap1", RequestedBy: by, Approvers: Approvers{Security: true}}
	}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"medical affairs registers a partner", affairs, PartnerManage, partner, RulePermission},
		{"a security officer registers a partner", security, PartnerManage, partner, RulePermission},
		{"an auditor registers none", auditor, PartnerManage, partner, RuleNoPermission},
		{"a researcher manages nothing", researcher, PartnerManage, partner, RuleNoPermission},
		{"an administrator manages no partner", admin, PartnerManage, partner, RuleNoPermission},
		{"a records clerk manages no partner", clerk, PartnerManage, partner, RuleNoPermission},
		{"an auditor reads the activity", auditor, PartnerRead, partner, RulePermission},
		{"a security officer reads the activity", security, PartnerRead, partner, RulePermission},
		{"medical affairs reads the activity", affairs, PartnerRead, partner, RulePermission},
		{"a researcher reads no activity", researcher, PartnerRead, partner, RuleNoPermission},
		{"a department head reads no activity", head, PartnerRead, partner, RuleNoPermission},
		{"a deactivated account does nothing", gone, PartnerManage, partner, RuleInactive},
		{"a security officer approves medical affairs' agreement", security, ApprovalDecide, agreement("m1"), RulePermission},
		{"nobody approves their own agreement", security, ApprovalDecide, agreement("s1"), RuleOwnRequest},
		{"another security officer approves it", security2, ApprovalDecide, agreement("s1"), RulePermission},
		{"an account the requester shaped does not", shaped, ApprovalDecide, agreement("m1"), RuleApproverShaped},
		{"medical affairs approves no agreement", affairs, ApprovalDecide, agreement("s1"), RuleNotApprover},
		{"a department head approves no agreement", head, ApprovalDecide, agreement("m1"), RuleNotApprover},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r, Now: now})
			if d.Rule != c.want || d.Allowed != (c.want[:5] == "allow") {
				t.Fatalf("got %+v, want %s", d, c.want)
			}
		})
	}
	if PatientData(PartnerRead) || PatientData(PartnerManage) {
		t.Fatal("partner permissions touch no patient's data")
	}
}
