package policy

import (
	"testing"
	"time"
)

// A de-identification job opens, to medguard acting for it, the reads of
// its scope until its window ends, never restricted data; medical affairs
// decides deid.job requests, security officers do not; only the
// recipient downloads.
func TestDeidJob(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	job := &DeidJob{ID: "job1", Department: "CARD", RecordTypes: []string{"progress_note"}, Until: now.Add(time.Hour)}
	system := Subject{ID: "job1", Active: true, Permissions: PermissionSet{}}
	rec := func(typ, dept string, restricted bool) Resource {
		return Resource{Type: "record", ID: "r1", PatientID: "p1", Departments: []string{dept}, RecordType: typ, Restricted: restricted}
	}
	for _, c := range []struct {
		name   string
		action Permission
		r      Resource
		job    *DeidJob
		at     time.Time
		want   string
	}{
		{"its record", RecordRead, rec("progress_note", "CARD", false), job, now, "allow.deid_job:job1"},
		{"its patient", PatientRead, Resource{Type: "patient", ID: "p1", PatientID: "p1", Departments: []string{"CARD", "NEUR"}}, job, now, "allow.deid_job:job1"},
		{"its summary", DeidRun, Resource{Type: "deid_job", ID: "job1"}, job, now, "allow.deid_job:job1"},
		{"another job", DeidRun, Resource{Type: "deid_job", ID: "job2"}, job, now, RuleNoRelation},
		{"another type", RecordRead, rec("lab_report", "CARD", false), job, now, RuleNoRelation},
		{"another department", RecordRead, rec("progress_note", "NEUR", false), job, now, RuleNoRelation},
		{"restricted type", RecordRead, rec("hiv_test", "CARD", false), &DeidJob{ID: "job1", Until: now.Add(time.Hour)}, now, RuleRestrictedType},
		{"restricted department", RecordRead, rec("progress_note", "CARD", true), job, now, RuleRestrictedType},
		{"a write", RecordWrite, rec("progress_note", "CARD", false), job, now, RuleNoPermission},
		{"after its window", RecordRead, rec("progress_note", "CARD", false), job, now.Add(time.Hour), RuleDeidJobEnded},
		{"without a job", RecordRead, rec("progress_note", "CARD", false), nil, now, RuleNoPermission},
	} {
		d := Decide(Request{Subject: system, Action: c.action, Resource: c.r, DeidJob: c.job, Now: c.at})
		if d.Rule != c.want || d.Allowed != (c.want == "allow.deid_job:job1") {
			t.Errorf("%s: %+v, want %s", c.name, d, c.want)
		}
	}

	approval := Resource{Type: "approval", ID: "a1", RequestedBy: "researcher", SubjectUserID: "researcher",
		Approvers: Approvers{Permission: DeidApprove}}
	for _, c := range []struct {
		name string
		s    Subject
		want string
	}{
		{"medical affairs", Subject{ID: "ma", Active: true, Permissions: PermissionsOf([]string{MedicalAffairs})}, RulePermission},
		{"a security officer", Subject{ID: "so", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}, RuleNotApprover},
		{"the researcher", Subject{ID: "researcher", Active: true, Permissions: PermissionsOf([]string{Researcher, MedicalAffairs})}, RuleOwnRequest},
		{"a researcher", Subject{ID: "r2", Active: true, Permissions: PermissionsOf([]string{Researcher})}, RuleNoPermission},
	} {
		if d := Decide(Request{Subject: c.s, Action: ApprovalDecide, Resource: approval, Now: now}); d.Rule != c.want {
			t.Errorf("%s deciding a deid.job: %+v, want %s", c.name, d, c.want)
		}
	}
	inbox := Decide(Request{Subject: Subject{ID: "ma", Active: true, Permissions: PermissionsOf([]string{MedicalAffairs})},
		Action: ApprovalDecide, Resource: Resource{Type: "approval"}, Now: now})
	if !inbox.Allowed {
		t.Errorf("medical affairs' inbox: %+v", inbox)
	}
	out := Resource{Type: "deid_job", ID: "job1", SubjectUserID: "researcher"}
	for id, want := range map[string]string{"researcher": RulePermission, "r2": RuleNotRecipient} {
		if d := Decide(Request{Subject: Subject{ID: id, Active: true, Permissions: PermissionsOf([]string{Researcher})},
			Action: DeidRead, Resource: out, Now: now}); d.Rule != want {
			t.Errorf("%s downloading: %+v, want %s", id, d, want)
		}
	}
}
