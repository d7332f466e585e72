package policy

import (
	"testing"
	"time"
)

// TestDecideAssetsAndVulns is the decision table of the asset register and
// the vulnerabilities (资产台账, 漏洞管理; issue 13): security officers and IT
// engineers keep them, auditors and the leadership group read them, only a
// security officer suspends operations, and nobody else reaches them; an
// exception (a risk accepted, a false positive) or an early lift is decided
// by a security officer who did not ask; a suspended operation is refused
// with its own rule to everyone who holds it.
func TestDecideAssetsAndVulns(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	subject := func(id, role string) Subject {
		return Subject{ID: id, Department: "ITD", Active: true, Permissions: PermissionsOf([]string{role})}
	}
	security, security2, it := subject("s1", SecurityOfficer), subject("s2", SecurityOfficer), subject("e1", ITEngineer)
	auditor, leader, admin := subject("a1", Auditor), subject("l1", Leadership), subject("ad", Admin)
	doctor, clerk, researcher := subject("d1", Doctor), subject("c1", RecordsClerk), subject("r1", Researcher)
	affairs := subject("m1", MedicalAffairs)
	gone := it
	gone.Active = false
	asset := Resource{Type: "asset", ID: "as1"}
	vuln := Resource{Type: "vuln", ID: "v1"}
	exception := func(by string) Resource {
		return Resource{Type: "approval", ID: "ap1", RequestedBy: by, Approvers: Approvers{Security: true}}
	}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"a security officer reads the register", security, AssetRead, asset, RulePermission},
		{"an IT engineer keeps the register", it, AssetManage, asset, RulePermission},
		{"a security officer keeps the register", security, AssetManage, asset, RulePermission},
		{"an auditor reads the register", auditor, AssetRead, asset, RulePermission},
		{"an auditor changes nothing", auditor, AssetManage, asset, RuleNoPermission},
		{"the leadership group reads the register", leader, AssetRead, asset, RulePermission},
		{"the leadership group reads the vulnerabilities", leader, VulnRead, vuln, RulePermission},
		{"the leadership group imports no scan", leader, VulnManage, vuln, RuleNoPermission},
		{"an administrator reads no register", admin, AssetRead, asset, RuleNoPermission},
		{"a doctor reads no vulnerability", doctor, VulnRead, vuln, RuleNoPermission},
		{"a records clerk reads no vulnerability", clerk, VulnRead, vuln, RuleNoPermission},
		{"a researcher reads no asset", researcher, AssetRead, asset, RuleNoPermission},
		{"medical affairs reads no vulnerability", affairs, VulnRead, vuln, RuleNoPermission},
		{"an IT engineer imports a scan", it, VulnManage, vuln, RulePermission},
		{"a security officer imports a scan", security, VulnManage, vuln, RulePermission},
		{"an auditor imports no scan", auditor, VulnManage, vuln, RuleNoPermission},
		{"a security officer suspends operations", security, VulnSuspend, vuln, RulePermission},
		{"an IT engineer suspends nothing", it, VulnSuspend, vuln, RuleNoPermission},
		{"an auditor suspends nothing", auditor, VulnSuspend, vuln, RuleNoPermission},
		{"a deactivated engineer does nothing", gone, VulnManage, vuln, RuleInactive},
		{"a security officer decides an engineer's exception", security, ApprovalDecide, exception("e1"), RulePermission},
		{"nobody decides their own exception", security, ApprovalDecide, exception("s1"), RuleOwnRequest},
		{"another security officer decides it", security2, ApprovalDecide, exception("s1"), RulePermission},
		{"an IT engineer decides no exception", it, ApprovalDecide, exception("s1"), RuleNoPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r, Now: now})
			if d.Rule != c.want || d.Allowed != (c.want[:5] == "allow") {
				t.Fatalf("got %+v, want %s", d, c.want)
			}
		})
	}

	// A suspension closes what it names to everyone who holds it — a
	// doctor's export of their own patient, a clinical write, the HIS's
	// key — and leaves everything else open, the security office's work
	// above all.
	suspended := []Restriction{{Rule: RuleOperationSuspended, Actions: []Permission{RecordExport, RecordWrite, DeidRun}}}
	cardDoctor := Subject{ID: "d2", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Doctor})}
	nurse := Subject{ID: "n1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Nurse})}
	his := Subject{ID: "k1", Department: "CARD", Active: true, System: true, Permissions: SetOf([]string{"record.write", "scope.all_departments"})}
	record := Resource{Type: "record", ID: "r1", PatientID: "p1", Departments: []string{"CARD"}, RecordType: "progress_note"}
	nursing := Resource{Type: "record", ID: "r2", PatientID: "p1", Departments: []string{"CARD"}, RecordType: "nursing_note"}
	one := Resource{Type: "export", ID: "x1", ExportPatients: 1, RequestedBy: "d2"}
	for _, c := range []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"an export of one patient is refused", cardDoctor, RecordExport, one, RuleOperationSuspended},
		{"a record write is refused", cardDoctor, RecordWrite, record, RuleOperationSuspended},
		{"a nurse's nursing note is refused", nurse, "record.write:nursing_note", nursing, RuleOperationSuspended},
		{"the HIS's write is refused", his, RecordWrite, record, RuleOperationSuspended},
		{"a de-identification job is not asked", researcher, DeidRun, Resource{Type: "deid_job"}, RuleOperationSuspended},
		{"reading stays open", cardDoctor, RecordRead, record, RuleSameDepartment},
		{"the security office works on", security, VulnManage, vuln, RulePermission},
		{"no permission is said first", auditor, RecordExport, one, RuleNoPermission},
	} {
		t.Run("suspended: "+c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r, Suspensions: suspended, Now: now})
			if d.Rule != c.want {
				t.Fatalf("got %+v, want %s", d, c.want)
			}
		})
	}
}
