package records_test

import (
	"context"
	"testing"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/records"
)

// auditorCall is a quality auditor's call: audit.read, no patient
// permission.
func (f *fixture) auditorCall(role string) *medguard.Call {
	return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(f.clock.Now()), Name: "sunjing",
		Roles: []string{role}}, IP: "10.1.9.9", Purpose: "audit"}
}

// TestLookupForAudit finds a patient for an audit by ID number, 病案号 and
// name: the holders of audit.read see a masked name, birth year, the end
// of the 病案号 and departments; each match is a patient.search_match
// entry on the patient (a disclosure that counts), the lookup itself is
// logged, and a member of staff without audit.read is refused.
func TestLookupForAudit(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, _ := f.patientWithRecord(t)
	if _, err := f.svc.CreatePatient(ctx, f.as("lina"), records.NewPatient{Name: "张伟", Gender: "male", MRN: "NE-77"}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"auditor", "security_officer"} {
		call := f.auditorCall(role)
		for _, q := range []string{"11010519491231002x", " MR00000001 "} {
			got, err := f.svc.LookupForAudit(ctx, call, q)
			if err != nil || len(got) != 1 {
				t.Fatalf("%s %q: %+v %v", role, q, got, err)
			}
			m := got[0]
			if m.ID != p.ID || m.MaskedName != "张*" || m.BirthYear != 1949 || m.MRNTail != "0001" || m.Gender != "female" ||
				len(m.Departments) != 1 || m.Departments[0] != "CARD" {
				t.Errorf("%s %q: %+v", role, q, m)
			}
			if e := f.last(t); e.Action != "patient.search_match" || e.PatientID != p.ID || e.Decision != audit.Allow ||
				e.Actor != "sunjing" {
				t.Errorf("entry %+v", e)
			}
		}
		got, err := f.svc.LookupForAudit(ctx, call, "张伟")
		if err != nil || len(got) != 2 || got[0].ID == got[1].ID {
			t.Fatalf("by name: %+v %v", got, err)
		}
		for _, m := range got {
			if m.ID != p.ID && m.MRNTail != "E-77" {
				t.Errorf("the other 张伟: %+v", m)
			}
		}
		if none, err := f.svc.LookupForAudit(ctx, call, "欧阳娜娜"); err != nil || len(none) != 0 {
			t.Errorf("nobody: %+v %v", none, err)
		}
		_, err = f.svc.LookupForAudit(ctx, call, "  ")
		wantKind(t, err, medguard.Invalid, "query")
		// A mistyped ID number is said to be one, not searched as a name.
		_, err = f.svc.LookupForAudit(ctx, call, "110105194912310021")
		wantKind(t, err, medguard.Invalid, "id_number")
	}
	// The lookup itself is logged as a search, without the text.
	size, _, _ := f.log.Head(ctx)
	es, _, err := f.log.Search(ctx, audit.Query{Action: "patient.search", Before: size, Limit: 5})
	if err != nil || len(es) == 0 || es[0].Entry.TargetType != "patient_search" || es[0].Entry.Outcome != audit.Invalid {
		t.Fatalf("the lookup's entry: %+v %v", es, err)
	}
	// A doctor holds no audit.read; the refusal is logged.
	_, err = f.svc.LookupForAudit(ctx, f.as("zhangwei"), "张伟")
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Action != "patient.search" || e.Decision != audit.Deny {
		t.Errorf("refusal entry %+v", e)
	}
}

// TestReportSubject names the patient of an access report.
func TestReportSubject(t *testing.T) {
	f := setup(t)
	p, _ := f.patientWithRecord(t)
	got, err := f.svc.ReportSubject(context.Background(), p.ID)
	if err != nil || got.Name != "张伟" || got.MRN != "MR00000001" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := f.svc.ReportSubject(context.Background(), medguard.NewID(f.clock.Now())); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("unknown patient: %v", err)
	}
}
