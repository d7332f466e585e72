package records_test

import (
	"context"
	"testing"
	"time"

	"medguard"
	"medguard/internal/records"
)

// ward registers four cardiology patients: 王芳 in hospital, 李明
// discharged (archiving due), 赵强 discharged long ago (archiving overdue),
// 陈静 an outpatient with a record; and one psychiatric inpatient.
func (f *fixture) ward(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	ids := map[string]string{}
	doc := f.as("zhangwei")
	register := func(name, mrn string, by *medguard.Call) string {
		p, err := f.svc.CreatePatient(ctx, by, records.NewPatient{Name: name, Gender: "male", BirthDate: "1960-05-01", MRN: mrn})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = p.ID
		return p.ID
	}
	write := func(by *medguard.Call, pid, typ, dept string) string {
		r, err := f.svc.CreateRecord(ctx, by, pid, records.NewRecord{Type: typ, Department: dept, Title: "记录", Text: "患者一般情况可。"})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	admit := func(by *medguard.Call, pid, dept string) *records.Admission {
		a, err := f.svc.Admit(ctx, by, pid, dept, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids["admission:"+pid] = a.ID
		return a
	}
	// 赵强: admitted and discharged ten days ago, never archived.
	z := register("赵强", "MR-Z", doc)
	a := admit(doc, z, "CARD")
	f.clock.Advance(time.Hour)
	write(doc, z, "admission_note", "CARD")
	if _, err := f.svc.Discharge(ctx, doc, a.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * 24 * time.Hour)
	// 李明: admitted and discharged yesterday.
	l := register("李明", "MR-L", doc)
	a = admit(doc, l, "CARD")
	f.clock.Advance(time.Hour)
	write(doc, l, "progress_note", "CARD")
	if _, err := f.svc.Discharge(ctx, doc, a.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(24 * time.Hour)
	// 陈静: an outpatient, with an HIV test (a restricted type).
	c := register("陈静", "MR-C", doc)
	f.clock.Advance(time.Minute)
	write(doc, c, "outpatient_note", "CARD")
	f.clock.Advance(time.Minute)
	ids["hiv"] = write(doc, c, "hiv_test", "CARD")
	f.clock.Advance(time.Hour)
	// 王芳: in hospital now, the latest record of all.
	w := register("王芳", "MR-W", doc)
	admit(doc, w, "CARD")
	f.clock.Advance(time.Minute)
	ids["last"] = write(doc, w, "progress_note", "CARD")
	// A psychiatric inpatient.
	ps := register("孙悦", "MR-P", f.as("zhaolei"))
	admit(f.as("zhaolei"), ps, "PSYC")
	return ids
}

func TestDepartmentPatients(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ids := f.ward(t)
	names := func(p *records.DepartmentPage) []string {
		var out []string
		for _, it := range p.Items {
			out = append(out, it.Name)
		}
		return out
	}
	size, _, _ := f.log.Head(ctx)
	page, err := f.svc.DepartmentPatients(ctx, f.as("zhangwei"), records.DepartmentQuery{Desc: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(page); len(got) != 4 || got[0] != "王芳" || got[1] != "陈静" || got[3] != "赵强" {
		t.Fatalf("by last record: %v", got)
	}
	want := map[string]int{"all": 4, "admitted": 1, "pending": 2, "overdue": 1}
	for k, v := range want {
		if page.Counts[k] != v {
			t.Errorf("count %s = %d, want %d (%v)", k, page.Counts[k], v, page.Counts)
		}
	}
	if page.Total != 4 || page.Department != "CARD" {
		t.Fatalf("total %d department %q", page.Total, page.Department)
	}
	w := page.Items[0]
	if w.Admission == nil || w.Admission.Status != "admitted" || w.LastRecord == nil || w.LastRecord.ID != ids["last"] ||
		w.LastRecord.Type != "progress_note" || w.MRN != "MR-W" || w.BirthDate != "1960-05-01" {
		t.Fatalf("王芳: %+v %+v %+v", w, w.Admission, w.LastRecord)
	}
	if c := page.Items[1]; c.Admission != nil || c.LastRecord == nil || c.LastRecord.ID != ids["hiv"] {
		t.Fatalf("陈静 (own department sees the HIV test): %+v %+v", c.Admission, c.LastRecord)
	}
	if z := page.Items[3]; z.Admission == nil || z.Admission.Status != "overdue" || z.Admission.HoursLate == 0 {
		t.Fatalf("赵强: %+v", z.Admission)
	}
	// One entry for the list, one for each patient shown.
	end, _, _ := f.log.Head(ctx)
	es, err := f.log.Entries(ctx, size, end)
	if err != nil || len(es) != 5 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	for _, e := range es {
		if e.Entry.Action != "patient.list" || e.Entry.Decision != "allow" {
			t.Errorf("entry %+v", e.Entry)
		}
	}

	// States, sorting and pages.
	for _, c := range []struct {
		q    records.DepartmentQuery
		want []string
	}{
		{records.DepartmentQuery{State: records.StateAdmitted}, []string{"王芳"}},
		{records.DepartmentQuery{State: records.StatePending, Sort: "admitted"}, []string{"赵强", "李明"}},
		{records.DepartmentQuery{State: records.StateOverdue}, []string{"赵强"}},
		{records.DepartmentQuery{Sort: "registered", Limit: 2}, []string{"赵强", "李明"}},
		{records.DepartmentQuery{Sort: "registered", Limit: 2, Offset: 2}, []string{"陈静", "王芳"}},
		{records.DepartmentQuery{Sort: "registered", Desc: true, Limit: 1}, []string{"王芳"}},
	} {
		p, err := f.svc.DepartmentPatients(ctx, f.as("liuyang"), c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(p); len(got) != len(c.want) || got[0] != c.want[0] || got[len(got)-1] != c.want[len(c.want)-1] {
			t.Errorf("%+v: %v, want %v", c.q, got, c.want)
		}
	}
	if p, _ := f.svc.DepartmentPatients(ctx, f.as("liuyang"), records.DepartmentQuery{Sort: "registered", Limit: 2}); p.Total != 4 {
		t.Errorf("a page's total %d", p.Total)
	}

	// The records office (hospital scope) may list cardiology, but is not
	// told of the HIV test; nobody but psychiatry lists psychiatry.
	p, err := f.svc.DepartmentPatients(ctx, f.as("sunli"), records.DepartmentQuery{Department: "CARD", Sort: "registered"})
	if err != nil || len(p.Items) != 4 {
		t.Fatalf("clerk: %v %v", p, err)
	}
	if c := p.Items[2]; c.Name != "陈静" || c.LastRecord == nil || c.LastRecord.Type != "outpatient_note" {
		t.Fatalf("the clerk sees 陈静's last record as %+v", c.LastRecord)
	}
	_, err = f.svc.DepartmentPatients(ctx, f.as("sunli"), records.DepartmentQuery{Department: "PSYC"})
	wantKind(t, err, medguard.Forbidden, "")
	_, err = f.svc.DepartmentPatients(ctx, f.as("lina"), records.DepartmentQuery{Department: "CARD"})
	wantKind(t, err, medguard.Forbidden, "")
	if p, err := f.svc.DepartmentPatients(ctx, f.as("zhaolei"), records.DepartmentQuery{}); err != nil || len(p.Items) != 1 {
		t.Fatalf("psychiatry's own list: %v %v", p, err)
	}
	for _, q := range []records.DepartmentQuery{{State: "gone"}, {Sort: "name"}, {Limit: 1000}, {Offset: -1}} {
		_, err := f.svc.DepartmentPatients(ctx, f.as("zhangwei"), q)
		wantKind(t, err, medguard.Invalid, "")
	}
	// An unknown department: invalid for hospital scope, refused for others.
	_, err = f.svc.DepartmentPatients(ctx, f.as("sunli"), records.DepartmentQuery{Department: "NOPE"})
	wantKind(t, err, medguard.Invalid, "department")
	_, err = f.svc.DepartmentPatients(ctx, f.as("zhangwei"), records.DepartmentQuery{Department: "NOPE"})
	wantKind(t, err, medguard.Forbidden, "")
	_, err = f.svc.DepartmentPatients(ctx, f.as("researcher1"), records.DepartmentQuery{Department: "CARD"})
	wantKind(t, err, medguard.Forbidden, "")
}

func TestQueryAdmissions(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ids := f.ward(t)
	// 李明's archiving is done on time.
	if _, err := f.svc.Archive(ctx, f.as("sunli"), ids["admission:"+ids["李明"]]); err != nil {
		t.Fatal(err)
	}
	size, _, _ := f.log.Head(ctx)
	all, err := f.svc.QueryAdmissions(ctx, f.as("sunli"), records.AdmissionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != 4 || len(all.Items) != 4 {
		t.Fatalf("hospital: %+v", all)
	}
	want := map[string]int{"admitted": 2, "due": 0, "overdue": 1, "archived": 1, "archived_late": 0}
	for k, v := range want {
		if all.Counts[k] != v {
			t.Errorf("count %s = %d, want %d (%v)", k, all.Counts[k], v, all.Counts)
		}
	}
	// One entry, no patient's.
	end, _, _ := f.log.Head(ctx)
	es, _ := f.log.Entries(ctx, size, end)
	if len(es) != 1 || es[0].Entry.Action != "archiving.queue" || es[0].Entry.PatientID != "" {
		t.Fatalf("entries %+v", es)
	}
	// The psychiatric admission does not name its patient outside psychiatry.
	for _, a := range all.Items {
		if (a.Department == "PSYC") != (a.PatientID == "") {
			t.Errorf("admission %+v", a)
		}
	}
	for _, c := range []struct {
		who  string
		q    records.AdmissionQuery
		want []string // patients, in order
	}{
		{"sunli", records.AdmissionQuery{Status: records.StateOverdue}, []string{"赵强"}},
		{"sunli", records.AdmissionQuery{Status: records.StatePending}, []string{"赵强"}},
		{"sunli", records.AdmissionQuery{Status: records.StatusArchived}, []string{"李明"}},
		{"sunli", records.AdmissionQuery{Status: records.StateAdmitted, Department: "CARD"}, []string{"王芳"}},
		{"sunli", records.AdmissionQuery{Department: "CARD", Sort: "admitted"}, []string{"赵强", "李明", "王芳"}},
		{"sunli", records.AdmissionQuery{Department: "CARD", Sort: "admitted", Desc: true, Limit: 1}, []string{"王芳"}},
		{"sunli", records.AdmissionQuery{Department: "CARD", Sort: "admitted", Limit: 2, Offset: 2}, []string{"王芳"}},
		{"sunli", records.AdmissionQuery{Department: "CARD", From: f.clock.Now().Add(-2 * time.Hour)}, []string{"王芳"}},
		{"sunli", records.AdmissionQuery{Department: "CARD", To: f.clock.Now().Add(-5 * 24 * time.Hour)}, []string{"赵强"}},
		{"liuyang", records.AdmissionQuery{Department: "CARD", Status: records.StateOverdue}, []string{"赵强"}},
		{"zhaolei", records.AdmissionQuery{Department: "PSYC"}, nil},
	} {
		p, err := f.svc.QueryAdmissions(ctx, f.as(c.who), c.q)
		if c.want == nil {
			wantKind(t, err, medguard.Forbidden, "") // a doctor has no archiving list
			continue
		}
		if err != nil {
			t.Fatalf("%s %+v: %v", c.who, c.q, err)
		}
		var got []string
		for _, a := range p.Items {
			for name, id := range ids {
				if id == a.PatientID {
					got = append(got, name)
				}
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s %+v: %v, want %v", c.who, c.q, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s %+v: %v, want %v", c.who, c.q, got, c.want)
			}
		}
	}
	// A department head sees their department's, not the hospital's.
	_, err = f.svc.QueryAdmissions(ctx, f.as("liuyang"), records.AdmissionQuery{})
	wantKind(t, err, medguard.Forbidden, "")
	_, err = f.svc.QueryAdmissions(ctx, f.as("liuyang"), records.AdmissionQuery{Department: "NEUR"})
	wantKind(t, err, medguard.Forbidden, "")
	now := f.clock.Now()
	for _, q := range []records.AdmissionQuery{{Status: "lost"}, {Sort: "patient"}, {Limit: -1}, {From: now, To: now},
		{Department: "NOPE"}} {
		_, err := f.svc.QueryAdmissions(ctx, f.as("sunli"), q)
		wantKind(t, err, medguard.Invalid, "")
	}
}
