package policy

import "testing"

// TestDecideRectification is the decision table of the rectification
// register (整改) and the quarterly compliance check (季度合规检查, issue
// 14): the security office and the quality auditors keep the register
// and verify items, never the owner nor who reported an item done
// (deny.own_rectification); an item's owner alone reports its progress;
// a department head reads their own department's items and the published
// quarterly results; the leadership reads everything; the auditor runs
// the quarterly check.
func TestDecideRectification(t *testing.T) {
	subject := func(id, dept, role string) Subject {
		return Subject{ID: id, Department: dept, Active: true, Permissions: PermissionsOf([]string{role})}
	}
	security, security2 := subject("s1", "", SecurityOfficer), subject("s2", "", SecurityOfficer)
	auditor, leader, engineer := subject("a1", "", Auditor), subject("l1", "", Leadership), subject("e1", "ITD", ITEngineer)
	head, otherHead := subject("h1", "CARD", DeptHead), subject("h2", "NEUR", DeptHead)
	doctor, admin := subject("d1", "CARD", Doctor), subject("ad", "", Admin)
	gone := auditor
	gone.Active = false
	key := Subject{ID: "k1", Department: "CARD", Active: true, System: true, Permissions: SetOf([]string{string(RectificationRead), string(RectificationReadDepartment)})}
	// An item of 心内科 owned by the IT engineer e1, reported done by e1.
	item := Resource{Type: "rectification", ID: "i1", Departments: []string{"CARD"}, SubjectUserID: "e1"}
	done := Resource{Type: "rectification", ID: "i1", Departments: []string{"CARD"}, SubjectUserID: "e1", RequestedBy: "e1"}
	// An item owned by the security officer s1.
	ownedBySecurity := Resource{Type: "rectification", ID: "i2", Departments: []string{"ITD"}, SubjectUserID: "s1", RequestedBy: "s1"}
	// An item the auditor a1 reported done for its owner's department head h1.
	reportedByAuditor := Resource{Type: "rectification", ID: "i3", Departments: []string{"CARD"}, SubjectUserID: "h1", RequestedBy: "a1"}
	every := Resource{Type: "rectification"}
	cardList := Resource{Type: "rectification", Departments: []string{"CARD"}}
	missing := Resource{Type: "rectification", ID: "x", Missing: true}
	run := Resource{Type: "quarterly_check", ID: "q1"}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"a security officer reads every item", security, RectificationRead, every, RulePermission},
		{"an auditor reads an item", auditor, RectificationRead, item, RulePermission},
		{"the leadership reads every item", leader, RectificationRead, every, RulePermission},
		{"a department head reads their department's item", head, RectificationRead, item, RuleDepartmentHead},
		{"a department head lists their department", head, RectificationRead, cardList, RuleDepartmentHead},
		{"a department head lists no hospital-wide list", head, RectificationRead, every, RuleOtherDepartment},
		{"another department's head reads none of it", otherHead, RectificationRead, item, RuleOtherDepartment},
		{"a department head asking for a missing item gets its absence", head, RectificationRead, missing, RulePermission},
		{"the owner reads their own item", engineer, RectificationRead, item, RuleRectificationOwner},
		{"a doctor reads no item", doctor, RectificationRead, item, RuleNoPermission},
		{"the administrator reads no item", admin, RectificationRead, every, RuleNoPermission},
		{"an API key is nobody's owner", Subject{ID: "e1", Active: true, System: true}, RectificationRead, item, RuleNoPermission},
		{"a departed auditor reads nothing", gone, RectificationRead, item, RuleInactive},
		{"an API key with the scopes reads as they say", key, RectificationRead, item, RulePermission},

		{"the owner reports progress", engineer, RectificationProgress, item, RuleRectificationOwner},
		{"a security officer reports nobody's progress", security, RectificationProgress, item, RuleNotRectificationOwner},
		{"the department head reports no progress of the owner", head, RectificationProgress, item, RuleNotRectificationOwner},

		{"a security officer opens an item", security, RectificationManage, every, RulePermission},
		{"an auditor enters an internal audit finding", auditor, RectificationManage, every, RulePermission},
		{"the leadership opens none", leader, RectificationManage, every, RuleNoPermission},
		{"a department head opens none", head, RectificationManage, every, RuleNoPermission},
		{"an IT engineer opens none", engineer, RectificationManage, every, RuleNoPermission},

		{"a security officer verifies the engineer's item", security, RectificationVerify, done, RulePermission},
		{"an auditor verifies it", auditor, RectificationVerify, done, RulePermission},
		{"the owner never verifies their own item", subject("s1", "", SecurityOfficer), RectificationVerify, ownedBySecurity, RuleOwnRectification},
		{"another officer verifies the officer's item", security2, RectificationVerify, ownedBySecurity, RulePermission},
		{"who reported it done never verifies it", auditor, RectificationVerify, reportedByAuditor, RuleOwnRectification},
		{"the leadership verifies none", leader, RectificationVerify, done, RuleNoPermission},
		{"an IT engineer verifies none", engineer, RectificationVerify, done, RuleNoPermission},

		{"the security office signs the monthly review", security, RectificationReview, every, RulePermission},
		{"an auditor signs none", auditor, RectificationReview, every, RuleNoPermission},
		{"the leadership signs none", leader, RectificationReview, every, RuleNoPermission},

		{"an auditor runs the quarterly check", auditor, ComplianceQuarterly, run, RulePermission},
		{"a security officer runs none", security, ComplianceQuarterly, run, RuleNoPermission},
		{"the leadership runs none", leader, ComplianceQuarterly, run, RuleNoPermission},
		{"the leadership reads the runs", leader, ComplianceRead, run, RulePermission},
		{"a department head reads the published results", head, ComplianceQuarterlyResults, run, RulePermission},
		{"a doctor reads no results", doctor, ComplianceQuarterlyResults, run, RuleNoPermission},
		{"a doctor reads no run", doctor, ComplianceRead, run, RuleNoPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r})
			if got.Rule != c.want {
				t.Fatalf("rule %s, want %s", got.Rule, c.want)
			}
			if got.Allowed != (c.want[:6] == "allow.") {
				t.Fatalf("allowed %v with rule %s", got.Allowed, got.Rule)
			}
		})
	}
}
