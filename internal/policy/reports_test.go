package policy

import (
	"testing"
	"time"
)

// TestDecideReports is the decision table of the posture reports (安全态势报告,
// issue 14): the leadership group, the security office and the quality
// auditors read them; the leadership and the security office generate one
// on demand; clinical staff, the administrator, IT engineers, researchers
// and API keys reach none of it.
func TestDecideReports(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	subject := func(role string) Subject {
		return Subject{ID: role, Active: true, Permissions: PermissionsOf([]string{role})}
	}
	gone := subject(Leadership)
	gone.Active = false
	key := Subject{ID: "k1", Active: true, System: true, Permissions: SetOf([]string{string(ReportRead)})}
	report := Resource{Type: "report", ID: "r1"}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		want string
	}{
		{"the leadership reads the reports", subject(Leadership), ReportRead, RulePermission},
		{"the leadership generates one", subject(Leadership), ReportGenerate, RulePermission},
		{"a security officer reads them", subject(SecurityOfficer), ReportRead, RulePermission},
		{"a security officer generates one", subject(SecurityOfficer), ReportGenerate, RulePermission},
		{"an auditor reads them", subject(Auditor), ReportRead, RulePermission},
		{"an auditor generates none", subject(Auditor), ReportGenerate, RuleNoPermission},
		{"a doctor reads none", subject(Doctor), ReportRead, RuleNoPermission},
		{"a department head reads none", subject(DeptHead), ReportRead, RuleNoPermission},
		{"a nurse generates none", subject(Nurse), ReportGenerate, RuleNoPermission},
		{"the administrator reads none", subject(Admin), ReportRead, RuleNoPermission},
		{"an IT engineer reads none", subject(ITEngineer), ReportRead, RuleNoPermission},
		{"a researcher reads none", subject(Researcher), ReportRead, RuleNoPermission},
		{"a records clerk generates none", subject(RecordsClerk), ReportGenerate, RuleNoPermission},
		{"a deactivated leader reads nothing", gone, ReportRead, RuleInactive},
		{"an API key with the scope reads them", key, ReportRead, RulePermission},
		{"an API key without the scope generates none", key, ReportGenerate, RuleNoPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: report, Now: now})
			if d.Rule != c.want || d.Allowed != (c.want == RulePermission) {
				t.Errorf("got %v (%s), want %s", d.Allowed, d.Rule, c.want)
			}
		})
	}
}
