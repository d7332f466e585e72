package policy

import "testing"

// TestDestructionNeedsTwoPeople: no default role both asks for a
// destruction and decides it, and the decision is the security officer's,
// never the requester's — whatever roles one person holds.
func TestDestructionNeedsTwoPeople(t *testing.T) {
	for _, r := range DefaultRoles {
		p := PermissionsOf([]string{r.Name})
		if p[RecordDestroy] && (p[ApprovalDecide] || p[ApprovalDecideDepartment]) {
			t.Errorf("%s both requests and decides destructions", r.Name)
		}
	}
	clerk := Subject{ID: "c1", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk})}
	clerk2 := Subject{ID: "c2", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk})}
	officer := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	both := Subject{ID: "x1", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk, SecurityOfficer})}
	admin := Subject{ID: "a1", Active: true, Permissions: PermissionsOf([]string{Admin})}
	head := Subject{ID: "h1", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{DeptHead})}
	shaped := Subject{ID: "s2", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer}), ChangedBy: []string{"c1"}}
	destruction := func(by string) Resource {
		return Resource{Type: "approval", ID: "ap1", RequestedBy: by, Approvers: Approvers{Security: true}}
	}
	cases := []struct {
		name    string
		req     Request
		allowed bool
		rule    string
	}{
		{"clerk asks", Request{Subject: clerk, Action: RecordDestroy, Resource: Resource{Type: "approval"}}, true, RulePermission},
		{"officer may not ask", Request{Subject: officer, Action: RecordDestroy, Resource: Resource{Type: "approval"}}, false, RuleNoPermission},
		{"admin may not ask", Request{Subject: admin, Action: RecordDestroy, Resource: Resource{Type: "approval"}}, false, RuleNoPermission},
		{"admin may not approve", Request{Subject: admin, Action: ApprovalDecide, Resource: destruction("c1")}, false, RuleNoPermission},
		{"admin lengthens periods", Request{Subject: admin, Action: RetentionManage, Resource: Resource{Type: "retention"}}, true, RulePermission},
		{"clerk may not change periods", Request{Subject: clerk, Action: RetentionManage, Resource: Resource{Type: "retention"}}, false, RuleNoPermission},
		{"clerk lists expired", Request{Subject: clerk, Action: RetentionRead, Resource: Resource{Type: "retention"}}, true, RulePermission},
		{"another clerk may not approve", Request{Subject: clerk2, Action: ApprovalDecide, Resource: destruction("c1")}, false, RuleNoPermission},
		{"the department head may not approve", Request{Subject: head, Action: ApprovalDecide, Resource: destruction("c1")}, false, RuleNotApprover},
		{"officer approves", Request{Subject: officer, Action: ApprovalDecide, Resource: destruction("c1")}, true, RulePermission},
		{"clerk-officer may not approve own", Request{Subject: both, Action: ApprovalDecide, Resource: destruction("x1")}, false, RuleOwnRequest},
		{"officer shaped by the clerk may not approve", Request{Subject: shaped, Action: ApprovalDecide, Resource: destruction("c1")}, false, RuleApproverShaped},
	}
	for _, c := range cases {
		d := Decide(c.req)
		if d.Allowed != c.allowed || d.Rule != c.rule {
			t.Errorf("%s: got %v %s, want %v %s", c.name, d.Allowed, d.Rule, c.allowed, c.rule)
		}
	}
}

// TestLegalHoldPermission: placing a legal hold is a protective act of the
// records office and the security officer alone (retention.hold); the
// administrator, clinicians, IT and the auditor cannot; and the lifting is
// decided by a security officer who did not ask for it.
func TestLegalHoldPermission(t *testing.T) {
	holders := map[string]bool{RecordsClerk: true, SecurityOfficer: true}
	for _, r := range DefaultRoles {
		s := Subject{ID: "u-" + r.Name, Department: "CARD", Active: true, Permissions: PermissionsOf([]string{r.Name})}
		d := Decide(Request{Subject: s, Action: RetentionHold, Resource: Resource{Type: "legal_hold", PatientID: "p1"}})
		if d.Allowed != holders[r.Name] {
			t.Errorf("%s places a hold: %v %s, want %v", r.Name, d.Allowed, d.Rule, holders[r.Name])
		}
	}
	clerk := Subject{ID: "c1", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk})}
	officer := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	officer2 := Subject{ID: "s2", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	frozen := Subject{ID: "s3", Active: false, Permissions: PermissionsOf([]string{SecurityOfficer})}
	lift := func(by string) Resource {
		return Resource{Type: "approval", ID: "ap1", RequestedBy: by, Approvers: Approvers{Security: true}}
	}
	cases := []struct {
		name    string
		req     Request
		allowed bool
		rule    string
	}{
		{"a clerk holds a patient's records", Request{Subject: clerk, Action: RetentionHold, Resource: Resource{Type: "legal_hold", PatientID: "p1"}}, true, RulePermission},
		{"an officer holds named records", Request{Subject: officer, Action: RetentionHold, Resource: Resource{Type: "legal_hold"}}, true, RulePermission},
		{"a frozen officer may not", Request{Subject: frozen, Action: RetentionHold, Resource: Resource{Type: "legal_hold"}}, false, RuleInactive},
		{"the clerk may not approve the lifting", Request{Subject: clerk, Action: ApprovalDecide, Resource: lift("s1")}, false, RuleNoPermission},
		{"the officer who asked may not approve", Request{Subject: officer, Action: ApprovalDecide, Resource: lift("s1")}, false, RuleOwnRequest},
		{"another officer approves", Request{Subject: officer2, Action: ApprovalDecide, Resource: lift("s1")}, true, RulePermission},
		{"an officer approves a clerk's request", Request{Subject: officer, Action: ApprovalDecide, Resource: lift("c1")}, true, RulePermission},
	}
	for _, c := range cases {
		d := Decide(c.req)
		if d.Allowed != c.allowed || d.Rule != c.rule {
			t.Errorf("%s: got %v %s, want %v %s", c.name, d.Allowed, d.Rule, c.allowed, c.rule)
		}
	}
}
