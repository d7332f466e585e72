package records_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/records"
)

// TestBreakGlassWindow: a neurologist declares a break-glass on a
// cardiology patient once; for BreakGlassWindow her reads of the patient
// are allowed by break-glass, decided one by one (the restricted record
// stays closed, a core record takes the declared purpose), and attached to
// the one event, which cardiology's head reviews as one item naming the
// patient and the records read. After the window, reads are refused again.
func TestBreakGlassWindow(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, r1 := f.patientWithRecord(t)
	r2, err := f.svc.CreateRecord(ctx, f.as("zhangwei"), p.ID, records.NewRecord{Type: "lab_report", Department: "CARD",
		Title: "血常规", Text: "白细胞 6.2×10^9/L"})
	if err != nil {
		t.Fatal(err)
	}
	psych, err := f.svc.CreateRecord(ctx, f.as("zhaolei"), p.ID, records.NewRecord{Type: "psychiatric_note", Department: "PSYC",
		Title: "精神科会诊", Text: "情绪低落"})
	if err != nil {
		t.Fatal(err)
	}
	lina := f.as("lina")
	lina.Purpose = "" // her reads name no purpose: the window's applies
	_, err = f.svc.GetRecord(ctx, lina, r1.ID)
	wantKind(t, err, medguard.Forbidden, "")

	// The declaration needs a reason and a known purpose.
	for _, d := range []struct {
		decl  records.BreakGlassDeclaration
		field string
	}{
		{records.BreakGlassDeclaration{PatientID: p.ID, Reason: "  ", Purpose: "emergency"}, "reason"},
		{records.BreakGlassDeclaration{PatientID: p.ID, Reason: strings.Repeat("急", 501), Purpose: "emergency"}, "reason"},
		{records.BreakGlassDeclaration{PatientID: p.ID, Reason: "急诊抢救"}, "purpose"},
		{records.BreakGlassDeclaration{PatientID: p.ID, Reason: "急诊抢救", Purpose: "患者张伟的家属要求"}, "purpose"},
	} {
		_, err := f.svc.DeclareBreakGlass(ctx, lina, d.decl)
		wantKind(t, err, medguard.Invalid, d.field)
		if e := f.last(t); e.Action != "breakglass.declare" || e.Purpose != "" && e.Purpose != "emergency" || strings.Contains(string(e.Leaf()), "张伟") {
			t.Fatalf("refused declaration entry %+v", e)
		}
	}
	_, err = f.svc.DeclareBreakGlass(ctx, lina, records.BreakGlassDeclaration{PatientID: medguard.NewID(f.clock.Now()), Reason: "急诊", Purpose: "emergency"})
	wantKind(t, err, medguard.NotFound, "")
	_, err = f.svc.DeclareBreakGlass(ctx, f.as("researcher1"), records.BreakGlassDeclaration{PatientID: p.ID, Reason: "科研", Purpose: "research"})
	wantKind(t, err, medguard.Forbidden, "")

	opened := f.clock.Now()
	n, err := f.svc.DeclareBreakGlass(ctx, lina, records.BreakGlassDeclaration{PatientID: p.ID, Reason: "患者昏迷送急诊，需要查看既往病史",
		Purpose: "emergency"})
	if err != nil || n == nil || !n.WindowEndsAt.Equal(opened.Add(records.BreakGlassWindow)) ||
		!n.ReviewDueAt.Equal(opened.Add(24*time.Hour)) {
		t.Fatalf("%+v %v", n, err)
	}
	e := f.last(t)
	if e.Action != "breakglass.declare" || !e.BreakGlass || e.Rule != "allow.break_glass" || e.PatientID != p.ID ||
		e.Purpose != "emergency" || strings.Contains(string(e.Leaf()), "昏迷") {
		t.Fatalf("declaration entry %+v", e)
	}
	// Declaring again joins the open window; so does a record read's reason.
	f.clock.Advance(time.Minute)
	if again, err := f.svc.DeclareBreakGlass(ctx, lina, records.BreakGlassDeclaration{PatientID: p.ID, Reason: "再次说明",
		Purpose: "emergency"}); err != nil || again == nil || again.EventID != n.EventID {
		t.Fatalf("again %+v %v", again, err)
	}
	// A cardiologist needs no break-glass.
	if own, err := f.svc.DeclareBreakGlass(ctx, f.as("zhangwei"), records.BreakGlassDeclaration{PatientID: p.ID, Reason: "查房",
		Purpose: "treatment"}); err != nil || own != nil {
		t.Fatalf("own department: %+v %v", own, err)
	}

	// In the window: the patient, the list, two records — no reason given.
	pt, err := f.svc.GetPatient(ctx, lina, p.ID)
	if err != nil || pt.Name != "张伟" || pt.BreakGlass == nil || pt.BreakGlass.EventID != n.EventID {
		t.Fatalf("patient %+v %v", pt, err)
	}
	list, _, err := f.svc.ListRecords(ctx, lina, p.ID, "", 50)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, id := range []string{r1.ID, r2.ID} {
		f.clock.Advance(time.Minute)
		got, err := f.svc.GetRecord(ctx, lina, id)
		if err != nil || got.BreakGlass == nil || got.BreakGlass.EventID != n.EventID {
			t.Fatalf("record %s: %+v %v", id, got, err)
		}
		if e := f.last(t); !e.BreakGlass || e.Rule != "allow.break_glass" || e.Purpose != "emergency" || e.TargetID != id {
			t.Fatalf("read entry %+v", e)
		}
	}
	if _, err := f.svc.GetRecord(ctx, f.as("lina", "急诊"), r1.ID); err != nil {
		t.Fatal(err)
	}
	// The policy still decides each read: the restricted record stays closed,
	// the history is not a break-glass read.
	_, err = f.svc.GetRecord(ctx, lina, psych.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Rule != "deny.restricted_record_type" {
		t.Fatalf("restricted: %+v", e)
	}
	_, err = f.svc.GetRecordVersion(ctx, lina, r1.ID, 1)
	wantKind(t, err, medguard.Forbidden, "")

	// One item in cardiology's queue, with the records read.
	queue, _, err := f.svc.ListBreakGlass(ctx, f.as("liuyang"), records.BreakGlassFilter{})
	if err != nil || len(queue) != 1 {
		t.Fatalf("queue %+v %v", queue, err)
	}
	ev := queue[0]
	if ev.ID != n.EventID || ev.Username != "lina" || ev.Reason != "患者昏迷送急诊，需要查看既往病史" || ev.Purpose != "emergency" ||
		!ev.Open || !ev.At.Equal(opened) || !ev.WindowEndsAt.Equal(opened.Add(records.BreakGlassWindow)) || ev.Patient != nil ||
		strings.Join(ev.Departments, ",") != "CARD" {
		t.Fatalf("event %+v", ev)
	}
	var read []string
	for _, rd := range ev.Reads {
		if rd.RecordID != "" {
			read = append(read, rd.Type)
			if rd.Title != "" {
				t.Fatalf("a title without Detail: %+v", rd)
			}
		}
	}
	if strings.Join(read, ",") != "progress_note,lab_report,progress_note" || ev.Reads[0].Action != "breakglass.declare" {
		t.Fatalf("reads %+v", ev.Reads)
	}
	// With Detail, the head sees the patient and the titles, logged as a read of the patient.
	detailed, _, err := f.svc.ListBreakGlass(ctx, f.as("liuyang"), records.BreakGlassFilter{Detail: true})
	if err != nil || len(detailed) != 1 || detailed[0].Patient == nil || detailed[0].Patient.Name != "张伟" ||
		detailed[0].Patient.MRN != "MR00000001" || detailed[0].Patient.Age == nil || *detailed[0].Patient.Age != 76 {
		t.Fatalf("detail %+v %v", detailed, err)
	}
	var titles []string
	for _, rd := range detailed[0].Reads {
		if rd.Title != "" {
			titles = append(titles, rd.Title)
		}
	}
	if strings.Join(titles, ",") != "张伟 病程记录,血常规,张伟 病程记录" {
		t.Fatalf("titles %v", titles)
	}
	if e := f.last(t); e.Action != "patient.read" || e.Actor != "liuyang" || e.PatientID != p.ID || e.BreakGlass {
		t.Fatalf("detail entry %+v", e)
	}
	// Neurology's head has nothing to review; an auditor sees the event without patient or reason.
	if other, _, err := f.svc.ListBreakGlass(ctx, f.as("chenjing"), records.BreakGlassFilter{Detail: true}); err != nil || len(other) != 0 {
		t.Fatalf("neurology %+v %v", other, err)
	}
	auditor := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(f.clock.Now()), Name: "wuyan",
		Roles: []string{"auditor"}}, IP: "10.1.9.9"}
	if all, _, err := f.svc.ListBreakGlass(ctx, auditor, records.BreakGlassFilter{Detail: true}); err != nil || len(all) != 1 ||
		all[0].Patient != nil || all[0].Reason != "" || len(all[0].Reads) != len(ev.Reads) {
		t.Fatalf("auditor %+v %v", all, err)
	}

	// The window closes: reads are refused again; a reason opens a new one.
	f.clock.Set(opened.Add(records.BreakGlassWindow))
	_, err = f.svc.GetRecord(ctx, lina, r1.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Rule != "deny.no_relation" {
		t.Fatalf("after the window: %+v", e)
	}
	// A core record needs a purpose: a reason alone opens nothing.
	noPurpose := f.as("lina", "会诊")
	noPurpose.Purpose = ""
	_, err = f.svc.GetRecord(ctx, noPurpose, r1.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Rule != "deny.purpose_required" {
		t.Fatalf("no purpose: %+v", e)
	}
	second, err := f.svc.GetRecord(ctx, f.as("lina", "会诊需要"), r2.ID)
	if err != nil || second.BreakGlass == nil || second.BreakGlass.EventID == n.EventID {
		t.Fatalf("second window %+v %v", second, err)
	}
	queue, _, _ = f.svc.ListBreakGlass(ctx, f.as("liuyang"), records.BreakGlassFilter{})
	if len(queue) != 2 || queue[1].ID != second.BreakGlass.EventID || queue[0].Open || !queue[1].Open {
		t.Fatalf("two windows: %+v", queue)
	}
	// A reviewed window is closed at once.
	if _, err := f.svc.ReviewBreakGlass(ctx, f.as("liuyang"), second.BreakGlass.EventID, records.Justified, ""); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetRecord(ctx, lina, r2.ID)
	wantKind(t, err, medguard.Forbidden, "")
	// Neurology's head may not review cardiology's event.
	_, err = f.svc.ReviewBreakGlass(ctx, f.as("chenjing"), n.EventID, records.Justified, "")
	wantKind(t, err, medguard.Forbidden, "")
}

// TestBreakGlassWindowByAPIReason: reads that carry a reason (the API's
// X-Break-Glass-Reason) open a window and join it; the record list and the
// patient's details join it too, each department once.
func TestBreakGlassWindowByAPIReason(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, r := f.patientWithRecord(t)
	if _, err := f.svc.CreateRecord(ctx, f.as("lina"), p.ID, records.NewRecord{Type: "progress_note", Department: "NEUR",
		Title: "神经内科会诊", Text: "头晕待查"}); err != nil {
		t.Fatal(err)
	}
	// zhaolei (psychiatry) has no relation to either department's records.
	var events []string
	for range 3 {
		got, err := f.svc.GetRecord(ctx, f.as("zhaolei", "急会诊"), r.ID)
		if err != nil || got.BreakGlass == nil {
			t.Fatalf("%+v %v", got, err)
		}
		events = append(events, got.BreakGlass.EventID)
		f.clock.Advance(time.Minute)
	}
	if events[0] != events[1] || events[1] != events[2] {
		t.Fatalf("three windows: %v", events)
	}
	list, _, err := f.svc.ListRecords(ctx, f.as("zhaolei"), p.ID, "", 50)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	for range 2 {
		if _, err := f.svc.GetPatient(ctx, f.as("zhaolei"), p.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Both heads see the one event: it showed both departments' data.
	for _, head := range []string{"liuyang", "chenjing"} {
		q, _, err := f.svc.ListBreakGlass(ctx, f.as(head), records.BreakGlassFilter{})
		if err != nil || len(q) != 1 || q[0].ID != events[0] || strings.Join(q[0].Departments, ",") != "CARD,NEUR" {
			t.Fatalf("%s: %+v %v", head, q, err)
		}
		var actions []string
		for _, rd := range q[0].Reads {
			actions = append(actions, rd.Action+":"+rd.Department)
		}
		if strings.Join(actions, " ") != "record.read:CARD record.read:CARD record.read:CARD record.list:NEUR" {
			t.Fatalf("%s: reads %v", head, actions)
		}
	}
}

// TestBreakGlassPreview: the break-glass form shows whom it opens, as a
// search result does, logged as a search match.
func TestBreakGlassPreview(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, r := f.patientWithRecord(t)
	for _, m := range []func() (*records.Match, error){
		func() (*records.Match, error) { return f.svc.BreakGlassPreview(ctx, f.as("lina"), p.ID, "") },
		func() (*records.Match, error) { return f.svc.BreakGlassPreview(ctx, f.as("lina"), "", r.ID) },
	} {
		got, err := m()
		if err != nil || got.ID != p.ID || got.MaskedName != "张*" || got.MRNTail != "0001" || got.Age == nil || *got.Age != 76 ||
			strings.Join(got.Departments, ",") != "CARD" || got.Gender != "female" {
			t.Fatalf("%+v %v", got, err)
		}
		if e := f.last(t); e.Action != "patient.search_match" || e.PatientID != p.ID || e.Actor != "lina" {
			t.Fatalf("entry %+v", e)
		}
	}
	_, err := f.svc.BreakGlassPreview(ctx, f.as("lina"), "", medguard.NewID(f.clock.Now()))
	wantKind(t, err, medguard.NotFound, "")
	_, err = f.svc.BreakGlassPreview(ctx, f.as("researcher1"), p.ID, "")
	wantKind(t, err, medguard.Forbidden, "")
	// Search results tell patients apart the same way.
	ms, err := f.svc.SearchPatients(ctx, f.as("lina"), records.Search{MRN: "MR00000001"})
	if err != nil || len(ms) != 1 || ms[0].MRNTail != "0001" || ms[0].Age == nil || *ms[0].Age != 76 {
		t.Fatalf("%+v %v", ms, err)
	}
}

func TestAge(t *testing.T) {
	today := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		birth string
		age   int
		ok    bool
	}{
		{"1949-12-31", 76, true}, {"2026-03-02", 0, true}, {"2025-03-03", 0, true}, {"2025-03-02", 1, true},
		{"2000-02-29", 26, true}, {"2026-03-03", 0, false}, {"", 0, false}, {"1949-13-01", 0, false},
	} {
		if age, ok := records.Age(c.birth, today); age != c.age || ok != c.ok {
			t.Errorf("Age(%q) = %d, %v; want %d, %v", c.birth, age, ok, c.age, c.ok)
		}
	}
}
