package policy

import (
	"testing"
	"time"
)

// TestDecideRecordUse is the decision table of record-use requests
// (借阅/调阅): who approves them, and what an approved one opens, when.
func TestDecideRecordUse(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	doctor := Subject{ID: "d1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Doctor})}
	clerk := Subject{ID: "c1", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk})}
	clerk2 := Subject{ID: "c2", Department: "MRD", Active: true, Permissions: PermissionsOf([]string{RecordsClerk}), ChangedBy: []string{"d1"}}
	psycHead := Subject{ID: "h9", Department: "PSYC", Active: true, Permissions: PermissionsOf([]string{DeptHead})}
	neurHead := Subject{ID: "h2", Department: "NEUR", Active: true, Permissions: PermissionsOf([]string{DeptHead})}
	nurse := Subject{ID: "n1", Department: "CARD", Active: true, Permissions: PermissionsOf([]string{Nurse})}
	security := Subject{ID: "s1", Active: true, Permissions: PermissionsOf([]string{SecurityOfficer})}
	his := Subject{ID: "k1", Department: "CARD", Active: true, System: true, Permissions: SetOf([]string{"record.read"})}

	ask := func(restricted bool) Resource {
		r := Resource{Type: "use_request", ID: "u1", PatientID: "p", Departments: []string{"NEUR"}, RequestedBy: "d1"}
		if restricted {
			r.Departments, r.Restricted, r.Approvers = []string{"PSYC"}, true, Approvers{Department: "PSYC"}
		}
		return r
	}
	rec := func(id, dept, typ string) Resource {
		return Resource{Type: "record", ID: id, PatientID: "p", Departments: []string{dept}, RecordType: typ,
			Restricted: dept == "PSYC"}
	}
	patient := Resource{Type: "patient", ID: "p", PatientID: "p", Departments: []string{"NEUR"}}
	live := UseGrant{RequestID: "u1", PatientID: "p", RecordIDs: []string{"r1"}, From: now.Add(-time.Hour), Until: now.Add(time.Hour)}
	byType := UseGrant{RequestID: "u2", PatientID: "p", RecordTypes: []string{"lab_report"}, From: now.Add(-time.Hour), Until: now.Add(time.Hour)}
	all := UseGrant{RequestID: "u3", PatientID: "p", From: now.Add(-time.Hour), Until: now.Add(time.Hour)}
	ended := live
	ended.Until = now
	later := live
	later.From = now.Add(time.Minute)
	other := live
	other.PatientID = "q"
	headApproved := UseGrant{RequestID: "u4", PatientID: "p", RecordIDs: []string{"r9"}, From: now.Add(-time.Hour),
		Until: now.Add(time.Hour), HeadApproved: true}
	officeApproved := headApproved
	officeApproved.HeadApproved = false

	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"the records office approves", Request{Subject: clerk, Action: UseApprove, Resource: ask(false)}, RulePermission},
		{"the records office sees the queue", Request{Subject: clerk, Action: UseApprove, Resource: Resource{Type: "use_request"}}, RulePermission},
		{"a doctor approves nothing", Request{Subject: doctor, Action: UseApprove, Resource: ask(false)}, RuleNoPermission},
		{"a security officer approves no use", Request{Subject: security, Action: UseApprove, Resource: ask(false)}, RuleNoPermission},
		{"nobody approves their own request", Request{Subject: clerk, Action: UseApprove, Resource: Resource{Type: "use_request", ID: "u1",
			PatientID: "p", Departments: []string{"NEUR"}, RequestedBy: "c1"}}, RuleOwnRequest},
		{"an account the requester shaped approves nothing of theirs", Request{Subject: clerk2, Action: UseApprove, Resource: ask(false)}, RuleApproverShaped},
		{"the records office never opens restricted records", Request{Subject: clerk, Action: UseApprove, Resource: ask(true)}, RuleNotApprover},
		{"the owning head approves restricted records", Request{Subject: psycHead, Action: UseApprove, Resource: ask(true)}, RuleDepartmentHead},
		{"another head does not", Request{Subject: neurHead, Action: UseApprove, Resource: ask(true)}, RuleNotApprover},
		{"the owning head may approve an ordinary request", Request{Subject: neurHead, Action: UseApprove, Resource: ask(false)}, RuleDepartmentHead},
		{"a head elsewhere may not", Request{Subject: psycHead, Action: UseApprove, Resource: ask(false)}, RuleNotApprover},
		{"the requester withdraws", Request{Subject: doctor, Action: UseRequest, Resource: ask(false)}, RulePermission},
		{"nobody withdraws another's request", Request{Subject: nurse, Action: UseRequest, Resource: ask(false)}, RuleNotOwnRequest},

		{"no request, no reading", Request{Subject: doctor, Action: RecordRead, Resource: rec("r1", "NEUR", "progress_note"), Now: now}, RuleNoRelation},
		{"the approved record opens", Request{Subject: doctor, Action: RecordRead, Resource: rec("r1", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{live}}, RuleUseRequest + ":u1"},
		{"another record of the patient stays shut", Request{Subject: doctor, Action: RecordRead, Resource: rec("r2", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{live}}, RuleNoRelation},
		{"a record of the approved type opens", Request{Subject: doctor, Action: RecordRead, Resource: rec("r2", "NEUR", "lab_report"), Now: now,
			UseGrants: []UseGrant{byType}}, RuleUseRequest + ":u2"},
		{"a record of another type stays shut", Request{Subject: doctor, Action: RecordRead, Resource: rec("r2", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{byType}}, RuleNoRelation},
		{"a request for all records opens each", Request{Subject: doctor, Action: RecordRead, Resource: rec("r7", "NEUR", "discharge_summary"), Now: now,
			UseGrants: []UseGrant{all}}, RuleUseRequest + ":u3"},
		{"the patient's demographics open", Request{Subject: doctor, Action: PatientRead, Resource: patient, Now: now,
			UseGrants: []UseGrant{live}}, RuleUseRequest + ":u1"},
		{"the record list opens (it shows what the request opens)", Request{Subject: doctor, Action: RecordList, Resource: patient, Now: now,
			UseGrants: []UseGrant{live}}, RuleUseRequest + ":u1"},
		{"the period ended", Request{Subject: doctor, Action: RecordRead, Resource: rec("r1", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{ended}}, RuleNoRelation},
		{"the period has not begun", Request{Subject: doctor, Action: RecordRead, Resource: rec("r1", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{later}}, RuleNoRelation},
		{"another patient's request", Request{Subject: doctor, Action: RecordRead, Resource: rec("r1", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{other}}, RuleNoRelation},
		{"an attachment of the approved record opens", Request{Subject: doctor, Action: RecordRead, Resource: Resource{Type: "attachment", ID: "a1",
			RecordID: "r1", PatientID: "p", Departments: []string{"NEUR"}, RecordType: "progress_note"}, Now: now, UseGrants: []UseGrant{live}}, RuleUseRequest + ":u1"},
		{"an attachment of another record stays shut", Request{Subject: doctor, Action: RecordRead, Resource: Resource{Type: "attachment", ID: "a1",
			RecordID: "r2", PatientID: "p", Departments: []string{"NEUR"}, RecordType: "progress_note"}, Now: now, UseGrants: []UseGrant{live}}, RuleNoRelation},
		{"a request never writes", Request{Subject: doctor, Action: RecordWrite, Resource: rec("r1", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{live}}, RuleWriteOtherDept},
		{"a request never shows history", Request{Subject: doctor, Action: RecordReadHistory, Resource: rec("r1", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{live}}, RuleNoPermission},
		{"a restricted record opens only when its head approved", Request{Subject: doctor, Action: RecordRead, Resource: rec("r9", "PSYC", "psychiatric_note"), Now: now,
			UseGrants: []UseGrant{headApproved}}, RuleUseRequest + ":u4"},
		{"the office's approval never opens a restricted record", Request{Subject: doctor, Action: RecordRead, Resource: rec("r9", "PSYC", "psychiatric_note"), Now: now,
			UseGrants: []UseGrant{officeApproved}}, RuleNoRelation},
		{"a system's key never reads by a request", Request{Subject: his, Action: RecordRead, Resource: rec("r1", "NEUR", "progress_note"), Now: now,
			UseGrants: []UseGrant{live}}, RuleNoRelation},
	}
	for _, c := range cases {
		got := Decide(c.req)
		if got.Rule != c.want || got.Allowed != (c.want[:6] == "allow.") {
			t.Errorf("%s: got %+v, want %s", c.name, got, c.want)
		}
	}
}
