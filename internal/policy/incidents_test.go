package policy

import (
	"slices"
	"testing"
)

// The security office's completed incidents and accountability (issue 13):
// a handling step is confirmed by a second person, and anonymous reports
// are triaged by the security office and the auditors.
func TestSecondPersonConfirmsSteps(t *testing.T) {
	officer := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	leader := Subject{ID: "l1", Active: true, Permissions: PermissionsOf([]string{Leadership})}
	step := func(by string) Resource { return Resource{Type: "incident", ID: "i", RequestedBy: by} }
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"another officer confirms the step", Request{Subject: officer, Action: IncidentManage, Resource: step("s2")}, RulePermission},
		{"the officer who recorded it does not", Request{Subject: officer, Action: IncidentManage, Resource: step("s1")}, RuleOwnStep},
		{"a step recorded by medguard itself", Request{Subject: officer, Action: IncidentManage, Resource: step("")}, RulePermission},
		{"the leadership reads but confirms nothing", Request{Subject: leader, Action: IncidentManage, Resource: step("s2")}, RuleNoPermission},
		{"a deactivated officer confirms nothing", Request{Subject: Subject{ID: "s3", Permissions: officer.Permissions}, Action: IncidentManage, Resource: step("s2")}, RuleInactive},
	} {
		if got := Decide(c.req).Rule; got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestCommanderReadsTheIncident(t *testing.T) {
	it := Subject{ID: "e1", Active: true, Permissions: PermissionsOf([]string{ITEngineer})}
	officer := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"IT reads the incident it commands", Request{Subject: it, Action: IncidentRead, Resource: Resource{Type: "incident", ID: "i", Commander: "e1"}}, RuleIncidentCommander},
		{"IT reads no other", Request{Subject: it, Action: IncidentRead, Resource: Resource{Type: "incident", ID: "i", Commander: "e2"}}, RuleNoPermission},
		{"IT manages nothing for commanding", Request{Subject: it, Action: IncidentManage, Resource: Resource{Type: "incident", ID: "i", Commander: "e1"}}, RuleNoPermission},
		{"an officer reads by permission", Request{Subject: officer, Action: IncidentRead, Resource: Resource{Type: "incident", ID: "i", Commander: "s1"}}, RulePermission},
		{"a deactivated commander reads nothing", Request{Subject: Subject{ID: "e1", Permissions: it.Permissions}, Action: IncidentRead, Resource: Resource{Type: "incident", Commander: "e1"}}, RuleInactive},
	} {
		if got := Decide(c.req).Rule; got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestReportTriageHolders(t *testing.T) {
	for _, r := range DefaultRoles {
		want := r.Name == SecurityOfficer || r.Name == Auditor
		if got := slices.Contains(r.Permissions, ReportTriage); got != want {
			t.Errorf("%s holds report.triage: %v, want %v", r.Name, got, want)
		}
	}
	if !KnownPermission(ReportTriage) || PatientData(ReportTriage) {
		t.Error("report.triage must be known and touch no patient data")
	}
}
