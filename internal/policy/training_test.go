package policy

import (
	"testing"
	"time"
)

// TestDecideTraining is the decision table of the training register
// (培训考核, issue 13): security officers and medical affairs run it,
// auditors and the leadership read it, every member of staff reads and
// signs their own (training.self, held by no role), nobody records their
// own attendance or score, and the one who computed an assessment does
// not decide its appeal.
func TestDecideTraining(t *testing.T) {
	now := time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)
	subject := func(id, dept, role string) Subject {
		return Subject{ID: id, Department: dept, Active: true, Permissions: PermissionsOf([]string{role})}
	}
	security, affairs := subject("s1", "ITD", SecurityOfficer), subject("m1", "MAD", MedicalAffairs)
	auditor, leader, admin := subject("a1", "QCD", Auditor), subject("l1", "LDG", Leadership), subject("ad", "", Admin)
	doctor, head := subject("d1", "CARD", Doctor), subject("h1", "CARD", DeptHead)
	key := Subject{ID: "k1", Active: true, System: true, Permissions: SetOf([]string{"training.self", "training.manage"})}
	gone := doctor
	gone.Active = false
	// A member of medical affairs who is also a doctor, and gated: the
	// restriction closes running the register to them as well.
	gated := Subject{ID: "m2", Department: "MAD", Active: true, Permissions: PermissionsOf([]string{MedicalAffairs, Doctor}),
		Restrictions: []Restriction{{Rule: RuleTrainingRequired, Emergency: true, Actions: []Permission{RecordRead, TrainingManage}}}}
	about := func(user string) Resource { return Resource{Type: "training_session", ID: "ts1", SubjectUserID: user} }
	appeal := Resource{Type: "training_assessment", ID: "ta1", SubjectUserID: "d1", Investigators: []string{"s1"}}
	cases := []struct {
		name string
		s    Subject
		a    Permission
		r    Resource
		want string
	}{
		{"a security officer records a doctor's score", security, TrainingManage, about("d1"), RulePermission},
		{"medical affairs records a doctor's score", affairs, TrainingManage, about("d1"), RulePermission},
		{"nobody records their own score", security, TrainingManage, about("s1"), RuleOwnTraining},
		{"a department head records no score", head, TrainingManage, about("d1"), RuleNoPermission},
		{"an administrator records no score", admin, TrainingManage, about("d1"), RuleNoPermission},
		{"a doctor records no attendance, not even their own", doctor, TrainingManage, about("d1"), RuleNoPermission},
		{"an auditor reads the register", auditor, TrainingRead, Resource{Type: "training"}, RulePermission},
		{"the leadership reads the register", leader, TrainingRead, Resource{Type: "training"}, RulePermission},
		{"an auditor runs nothing", auditor, TrainingManage, about("d1"), RuleNoPermission},
		{"a doctor reads no register", doctor, TrainingRead, Resource{Type: "training"}, RuleNoPermission},
		{"a doctor reads their own record", doctor, TrainingSelf, Resource{Type: "user", ID: "d1", SubjectUserID: "d1"}, RuleOwnTrainingRecord},
		{"a doctor reads nobody else's as their own", doctor, TrainingSelf, Resource{Type: "user", ID: "h1", SubjectUserID: "h1"}, RuleNotOwnTraining},
		{"an administrator signs nobody's letter", admin, TrainingSelf, Resource{Type: "commitment_letter", SubjectUserID: "d1"}, RuleNotOwnTraining},
		{"an API key has no training of its own", key, TrainingSelf, Resource{Type: "user", ID: "k1", SubjectUserID: "k1"}, RuleNotOwnTraining},
		{"a departed member of staff signs nothing", gone, TrainingSelf, Resource{Type: "user", ID: "d1", SubjectUserID: "d1"}, RuleInactive},
		{"another manager decides the appeal", affairs, TrainingManage, appeal, RulePermission},
		{"the one who computed the assessment does not", security, TrainingManage, appeal, RuleOwnInvestigation},
		{"a gated manager runs no register", gated, TrainingManage, about("d1"), RuleTrainingRequired},
		{"a gated member of staff still reads their own record", gated, TrainingSelf, Resource{Type: "user", ID: "m2", SubjectUserID: "m2"}, RuleOwnTrainingRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Request{Subject: c.s, Action: c.a, Resource: c.r, Now: now})
			if d.Rule != c.want || d.Allowed != (c.want[:5] == "allow") {
				t.Fatalf("got %+v, want %s", d, c.want)
			}
		})
	}
}
