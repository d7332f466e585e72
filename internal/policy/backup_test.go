package policy

import "testing"

// TestBackupRead: the backups' health and drill history are shown to those
// who run (IT), secure (security officer), audit (auditor) or administer
// (admin, who already sees the same figures in /metrics) the installation,
// and to nobody who works with patients or only receives research data;
// reading it runs nothing (backup.run and key.rotate stay the IT
// engineer's alone).
func TestBackupRead(t *testing.T) {
	res := Resource{Type: "backup"}
	cases := []struct {
		role    string
		action  Permission
		allowed bool
		rule    string
	}{
		{ITEngineer, BackupRead, true, RulePermission},
		{SecurityOfficer, BackupRead, true, RulePermission},
		{Auditor, BackupRead, true, RulePermission},
		{Admin, BackupRead, true, RulePermission},
		{Doctor, BackupRead, false, RuleNoPermission},
		{Nurse, BackupRead, false, RuleNoPermission},
		{DeptHead, BackupRead, false, RuleNoPermission},
		{RecordsClerk, BackupRead, false, RuleNoPermission},
		{Researcher, BackupRead, false, RuleNoPermission},
		{SecurityOfficer, BackupRun, false, RuleNoPermission},
		{Auditor, BackupRun, false, RuleNoPermission},
		{Admin, BackupRun, false, RuleNoPermission},
		{ITEngineer, BackupRun, true, RulePermission},
	}
	for _, c := range cases {
		s := Subject{ID: "u1", Department: "INFO", Active: true, Permissions: PermissionsOf([]string{c.role})}
		d := Decide(Request{Subject: s, Action: c.action, Resource: res})
		if d.Allowed != c.allowed || d.Rule != c.rule {
			t.Errorf("%s %s: got %v %s, want %v %s", c.role, c.action, d.Allowed, d.Rule, c.allowed, c.rule)
		}
	}
	if PatientData(BackupRead) {
		t.Error("backup.read is not a patient-data permission")
	}
	inactive := Subject{ID: "u2", Active: false, Permissions: PermissionsOf([]string{ITEngineer})}
	if d := Decide(Request{Subject: inactive, Action: BackupRead, Resource: res}); d.Allowed {
		t.Error("a deactivated engineer reads the backups' health")
	}
}
