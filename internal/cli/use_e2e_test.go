package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/datause"
	"medguard/internal/detect"
	"medguard/internal/identity"
	"medguard/internal/records"
	"medguard/internal/testkit"
)

// Data use over HTTPS (SPEC §8, issue 12): a record-use request opens only
// the approved record, logged under the request's rule, and closes when
// withdrawn; nobody approves their own; a paper folder is lent with the
// borrower's signature and returned; a copy with a wrong ID number is
// refused and logged, with the right one recorded; the reconciliation
// shows the gaps and the rate.
func TestRecordUseOverHTTPS(t *testing.T) {
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"MRD", "病案室"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	ids := map[string]string{}
	for _, u := range [][4]string{{"zhangwei", "张建国", "CARD", "doctor"}, {"lina", "李娜", "NEUR", "doctor"},
		{"chenjing", "陈静", "MRD", "records_clerk"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	doctor, neuro, clerk := s.token("zhangwei", staffPassword), s.token("lina", staffPassword), s.token("chenjing", staffPassword)

	patient := s.json(201, "POST", "/api/v1/patients", neuro, map[string]any{"name": "王秀英", "gender": "female",
		"birth_date": "1958-03-07", "id_number": "110105195803070025", "phone": "13700001111",
		"address": "北京市东城区东四十条22号", "mrn": "MR20260001"})["id"].(string)
	s.json(201, "POST", "/api/v1/patients/"+patient+"/admissions", neuro, map[string]any{"department": "NEUR",
		"admitted_at": time.Now().Add(-72 * time.Hour).UTC().Format(time.RFC3339)})
	note := s.json(201, "POST", "/api/v1/patients/"+patient+"/records", neuro, map[string]any{"type": "progress_note",
		"department": "NEUR", "title": "病程记录", "text": "患者左侧肢体无力较前好转，继续抗血小板治疗。"})["id"].(string)
	lab := s.json(201, "POST", "/api/v1/patients/"+patient+"/records", neuro, map[string]any{"type": "lab_report",
		"department": "NEUR", "title": "血常规", "text": "白细胞 6.2×10^9/L，血红蛋白 128 g/L。"})["id"].(string)

	// Without a relation the cardiologist reads nothing of hers.
	rule(t, s.problem(403, "GET", "/api/v1/records/"+note, doctor, nil), "deny.no_relation")

	// A request for the progress note: bounded period, purpose, reason.
	ask := map[string]any{"patient_id": patient, "record_ids": []string{note}, "purpose": "care_coordination",
		"reason": "心内科会诊需查阅神经内科病程记录", "until": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)}
	long := map[string]any{"patient_id": patient, "record_ids": []string{note}, "purpose": "care_coordination",
		"reason": "长期调阅", "until": time.Now().Add(40 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	if p := s.problem(422, "POST", "/api/v1/use-requests", doctor, long); p["field"] != "until" {
		t.Fatalf("a 40-day request: %v", p)
	}
	req := s.json(201, "POST", "/api/v1/use-requests", doctor, ask)
	reqID := req["id"].(string)
	if req["status"] != "pending" || req["active"] != false {
		t.Fatalf("request %v", req)
	}
	// Still shut while pending; the doctor may not decide; the clerk may
	// not approve a request of their own.
	rule(t, s.problem(403, "GET", "/api/v1/records/"+note, doctor, nil), "deny.no_relation")
	rule(t, s.problem(403, "POST", "/api/v1/use-requests/"+reqID+"/approve", doctor, map[string]string{"note": "同意"}), "deny.no_permission")
	own := s.json(201, "POST", "/api/v1/use-requests", clerk, map[string]any{"patient_id": patient, "purpose": "quality_control",
		"reason": "病案质控抽查", "until": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)})
	rule(t, s.problem(403, "POST", "/api/v1/use-requests/"+own["id"].(string)+"/approve", clerk, map[string]string{"note": "自批"}),
		"deny.own_request")

	// The records office sees it and approves.
	queue := s.json(200, "GET", "/api/v1/use-requests?status=pending", clerk, nil)["items"].([]any)
	found := false
	for _, it := range queue {
		if it := it.(map[string]any); it["id"] == reqID {
			found = it["may_decide"] == true
		}
	}
	if !found {
		t.Fatalf("the clerk's queue lacks the request or may not decide it: %v", queue)
	}
	approved := s.json(200, "POST", "/api/v1/use-requests/"+reqID+"/approve", clerk, map[string]string{"note": "同意会诊调阅"})
	if approved["status"] != "approved" || approved["active"] != true || approved["decided_by"] != "chenjing" {
		t.Fatalf("approved %v", approved)
	}
	s.problem(409, "POST", "/api/v1/use-requests/"+reqID+"/refuse", clerk, map[string]string{"note": "重复决定"})

	// The approved record opens, under the request's rule; the other
	// record of the same patient does not, and the list names only it.
	from := s.size()
	_, h, body := s.do("GET", "/api/v1/records/"+note, doctor, nil)
	if !strings.Contains(string(body), "抗血小板") {
		t.Fatalf("the approved record: %s", body)
	}
	_ = h
	ruled := false
	for _, e := range s.entries(from) {
		if e["actor"] == "zhangwei" && e["action"] == "record.read" && e["target_id"] == note {
			ruled = e["rule"] == "allow.use_request:"+reqID && e["decision"] == "allow"
		}
	}
	if !ruled {
		t.Fatalf("no record.read entry under allow.use_request:%s", reqID)
	}
	rule(t, s.problem(403, "GET", "/api/v1/records/"+lab, doctor, nil), "deny.no_relation")
	listed := s.json(200, "GET", "/api/v1/patients/"+patient+"/records", doctor, nil)["items"].([]any)
	if len(listed) != 1 || listed[0].(map[string]any)["id"] != note {
		t.Fatalf("the list shows %v", listed)
	}
	s.problem(403, "PATCH", "/api/v1/records/"+note, doctor, map[string]string{"title": "改写"})

	// Another doctor withdraws nothing of his; he withdraws, and it closes.
	rule(t, s.problem(403, "POST", "/api/v1/use-requests/"+reqID+"/withdraw", neuro, nil), "deny.not_own_request")
	if w := s.json(200, "POST", "/api/v1/use-requests/"+reqID+"/withdraw", doctor, nil); w["status"] != "withdrawn" {
		t.Fatalf("withdrawn %v", w)
	}
	rule(t, s.problem(403, "GET", "/api/v1/records/"+note, doctor, nil), "deny.no_relation")
	mine := s.json(200, "GET", "/api/v1/use-requests", doctor, nil)["items"].([]any)
	if len(mine) != 1 || mine[0].(map[string]any)["status"] != "withdrawn" {
		t.Fatalf("the doctor's requests: %v", mine)
	}

	// Paper folders: registered by 病案号, lent with the borrower's
	// signature, returned.
	rule(t, s.problem(403, "POST", "/api/v1/folders", doctor, map[string]string{"barcode": "BA2026000123", "mrn": "MR20260001",
		"location": "A区-03架-05层"}), "deny.no_permission")
	folder := s.json(201, "POST", "/api/v1/folders", clerk, map[string]string{"barcode": "BA2026000123", "mrn": "MR20260001",
		"location": "A区-03架-05层"})
	if folder["patient_id"] != patient || folder["status"] != "on_shelf" || folder["mrn_tail"] != "0001" {
		t.Fatalf("folder %v", folder)
	}
	if p := s.problem(409, "POST", "/api/v1/folders", clerk, map[string]string{"barcode": "BA2026000123", "patient_id": patient,
		"location": "A区-03架-06层"}); p["field"] != "barcode" {
		t.Fatalf("duplicate barcode: %v", p)
	}
	fid := folder["id"].(string)
	loan := map[string]string{"borrower_id": ids["zhangwei"], "purpose": "treatment",
		"due_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339), "signature": "张伟"}
	if p := s.problem(422, "POST", "/api/v1/folders/"+fid+"/lend", clerk, loan); p["field"] != "signature" {
		t.Fatalf("a signature that is not the borrower's name: %v", p)
	}
	loan["signature"] = "张建国"
	lent := s.json(200, "POST", "/api/v1/folders/"+fid+"/lend", clerk, loan)
	if l, _ := lent["loan"].(map[string]any); lent["status"] != "lent" || l["signed_name"] != "张建国" || l["borrower"] != "zhangwei" || l["overdue"] != false {
		t.Fatalf("lent %v", lent)
	}
	s.problem(409, "POST", "/api/v1/folders/"+fid+"/lend", clerk, loan)
	if n := len(s.json(200, "GET", "/api/v1/folders?overdue=true", clerk, nil)["items"].([]any)); n != 0 {
		t.Fatalf("%d overdue folders before the due date", n)
	}
	if r := s.json(200, "POST", "/api/v1/folders/"+fid+"/return", clerk, nil); r["status"] != "on_shelf" {
		t.Fatalf("returned %v", r)
	}

	// Copies: a wrong ID number is refused naming the field, and logged.
	cp := map[string]any{"patient_id": patient, "patient_id_number": "11010519491231002X", "requester_name": "王秀英",
		"relation": "self", "purpose": "insurance_claim", "record_ids": []string{note, lab}, "pages": 12, "fee_fen": 600}
	from = s.size()
	if p := s.problem(409, "POST", "/api/v1/copies", clerk, cp); p["field"] != "patient_id_number" {
		t.Fatalf("wrong ID number: %v", p)
	}
	refused := false
	for _, e := range s.entries(from) {
		refused = refused || e["action"] == "copy.record" && e["patient_id"] == patient && e["outcome"] == "conflict"
	}
	if !refused {
		t.Fatal("the refused copy is not in the audit log")
	}
	cp["patient_id_number"] = "110105195803070025"
	cp["requester_name"] = "王秀"
	if p := s.problem(409, "POST", "/api/v1/copies", clerk, cp); p["field"] != "requester_name" {
		t.Fatalf("wrong name in person: %v", p)
	}
	cp["requester_name"] = "王秀英"
	if c := s.json(201, "POST", "/api/v1/copies", clerk, cp); c["identity_checked"] != "id_number+name" || c["pages"] != float64(12) {
		t.Fatalf("copy %v", c)
	}
	insurer := map[string]any{"patient_id": patient, "patient_id_number": "110105195803070025", "requester_name": "刘保险",
		"requester_id_number": "11010519491231002X", "relation": "insurer", "purpose": "insurance_claim", "pages": 3, "fee_fen": 150}
	if p := s.problem(422, "POST", "/api/v1/copies", clerk, insurer); p["field"] != "proof" {
		t.Fatalf("an insurer without a letter: %v", p)
	}
	insurer["proof"] = "中国人寿理赔函 2026-0815"
	s.json(201, "POST", "/api/v1/copies", clerk, insurer)
	copies := s.json(200, "GET", "/api/v1/copies?patient_id="+patient, clerk, nil)
	if items := copies["items"].([]any); len(items) != 2 {
		t.Fatalf("copies %v", copies)
	}
	if _, _, raw := s.do("GET", "/api/v1/copies", clerk, nil); strings.Contains(string(raw), "王秀英") ||
		strings.Contains(string(raw), "110105195803070025") {
		t.Fatalf("the copies list shows a name or an ID number: %s", raw)
	}

	// Reconciliation: her folder matches; a folder whose 病案号 names no
	// patient, and an inpatient with no folder, are the gaps: 1 of 3.
	other := s.json(201, "POST", "/api/v1/patients", neuro, map[string]any{"name": "赵国庆", "gender": "male",
		"mrn": "MR20260002"})["id"].(string)
	s.json(201, "POST", "/api/v1/patients/"+other+"/admissions", neuro, map[string]any{"department": "NEUR",
		"admitted_at": time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)})
	s.json(201, "POST", "/api/v1/folders", clerk, map[string]string{"barcode": "BA2019000777", "mrn": "MR20190777",
		"location": "B区-01架-01层"})
	rec := s.json(200, "GET", "/api/v1/folders/reconciliation", clerk, nil)
	gaps := rec["folders_without_electronic"].([]any)
	missing := rec["patients_without_folder"].([]any)
	if rec["matched"] != float64(1) || len(gaps) != 1 || gaps[0].(map[string]any)["reason"] != "no_patient" ||
		len(missing) != 1 || missing[0] != other || rec["rate"] != 33.3 {
		t.Fatalf("reconciliation %v", rec)
	}
	rule(t, s.problem(403, "GET", "/api/v1/folders/reconciliation", doctor, nil), "deny.no_permission")
}

// The period of an approved request ends by itself, and a folder lent past
// its due date raises one alert — driven through the app's services on a
// test clock (the real server's clock cannot be moved).
func TestRecordUseEndsAndFolderOverdue(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	app := openApp(t, clock)
	call := func(name, dept string, roles ...string) *medguard.Call {
		return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: name,
			Department: dept, Roles: roles}, IP: "10.9.0.7"}
	}
	admin := call("admin", "", "admin")
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"MRD", "病案室"}} {
		if _, err := app.Identity.CreateDepartment(ctx, admin, d[0], d[1]); err != nil {
			t.Fatal(err)
		}
	}
	// Members of staff as the archive knows them (the borrower must be
	// one), acting with their roles.
	user := func(name, display, dept, role string) *medguard.Call {
		t.Helper()
		u, _, err := app.Identity.CreateUser(ctx, admin, identity.NewUser{Username: name, DisplayName: display, Department: dept,
			Roles: []string{role}, Password: staffPassword})
		if err != nil {
			t.Fatal(err)
		}
		c := call(name, dept, role)
		c.Actor.ID = u.ID
		return c
	}
	neuro := user("lina", "李娜", "NEUR", "doctor")
	doctor := user("zhangwei", "张建国", "CARD", "doctor")
	clerk := user("chenjing", "陈静", "MRD", "records_clerk")
	p, err := app.Records.CreatePatient(ctx, neuro, records.NewPatient{Name: "王秀英", Gender: "female", IDNumber: "110105195803070025"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := app.Records.CreateRecord(ctx, neuro, p.ID, records.NewRecord{Type: "progress_note", Department: "NEUR",
		Title: "病程记录", Text: "患者言语含糊较前改善。"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := app.DataUse.AskUse(ctx, doctor, datause.NewUseRequest{PatientID: p.ID, RecordIDs: []string{r.ID},
		Purpose: "care_coordination", Reason: "会诊", Until: clock.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.DataUse.DecideUse(ctx, clerk, u.ID, true, "同意"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Records.GetRecord(ctx, doctor, r.ID); err != nil {
		t.Fatalf("within the period: %v", err)
	}
	clock.Advance(48 * time.Hour)
	if _, err := app.Records.GetRecord(ctx, doctor, r.ID); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("after the period: %v", err)
	}
	list, err := app.DataUse.ListUse(ctx, doctor, datause.UseQuery{Mine: true})
	if err != nil || len(list) != 1 || list[0].Status != datause.Expired {
		t.Fatalf("%+v %v", list, err)
	}
	if _, err := app.DataUse.DecideUse(ctx, clerk, u.ID, false, "过期"); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("deciding an expired request: %v", err)
	}

	// A folder lent for a day, checked after two: one alert, not two.
	f, err := app.DataUse.RegisterFolder(ctx, clerk, datause.NewFolder{Barcode: "BA2026000456", PatientID: p.ID, Location: "A区-01架-02层"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.DataUse.LendFolder(ctx, clerk, f.ID, datause.NewLoan{BorrowerID: doctor.Actor.ID, Purpose: "treatment",
		DueAt: clock.Now().Add(24 * time.Hour), Signature: "张建国"}); err != nil {
		t.Fatal(err)
	}
	if fresh, err := app.DataUse.CheckOverdue(ctx); err != nil || len(fresh) != 0 {
		t.Fatalf("before the due date: %v %v", fresh, err)
	}
	clock.Advance(48 * time.Hour)
	for range 2 {
		if _, err := app.DataUse.CheckOverdue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	so := call("zhouqiang", "", "security_officer")
	alerts, _, err := app.Detect.Alerts(ctx, so, detect.AlertQuery{Rule: datause.OverdueRule, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Key != f.ID || !strings.Contains(alerts[0].Explanation, "BA2026000456") {
		t.Fatalf("overdue alerts %+v", alerts)
	}
	overdue, err := app.DataUse.ListFolders(ctx, clerk, datause.FolderQuery{Overdue: true})
	if err != nil || len(overdue) != 1 || !overdue[0].Loan.Overdue {
		t.Fatalf("overdue folders %+v %v", overdue, err)
	}
	if back, err := app.DataUse.ReturnFolder(ctx, clerk, f.ID); err != nil || back.Status != datause.OnShelf {
		t.Fatalf("%+v %v", back, err)
	}
	if overdue, _ := app.DataUse.ListFolders(ctx, clerk, datause.FolderQuery{Overdue: true}); len(overdue) != 0 {
		t.Fatalf("still overdue after the return: %+v", overdue)
	}

	// The daily reconciliation runs once a day (of the hospital's
	// calendar): a folder naming no patient makes the rate 50 %, which
	// alerts; fixed the next day, 100 % resolves the alert.
	stray, err := app.DataUse.RegisterFolder(ctx, clerk, datause.NewFolder{Barcode: "BA2019000777", MRN: "MR20190777", Location: "B区-01架-01层"})
	if err != nil {
		t.Fatal(err)
	}
	day, err := app.DataUse.ReconcileDaily(ctx)
	if err != nil || day == nil || day.Rate != 50 || day.FoldersWithoutElectronic != 1 {
		t.Fatalf("the day's reconciliation: %+v %v", day, err)
	}
	if again, err := app.DataUse.ReconcileDaily(ctx); err != nil || again != nil {
		t.Fatalf("a second run the same day: %+v %v", again, err)
	}
	sync := func() []detect.Alert {
		t.Helper()
		as, _, err := app.Detect.Alerts(ctx, so, detect.AlertQuery{Rule: datause.ReconcileRule, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	if as := sync(); len(as) != 1 || as[0].Status != detect.StatusNew || !strings.Contains(as[0].Explanation, "50.0%") {
		t.Fatalf("sync alerts %+v", as)
	}
	destroyed := datause.Destroyed
	if _, err := app.DataUse.ChangeFolder(ctx, clerk, stray.ID, datause.FolderChanges{Status: &destroyed}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(24 * time.Hour)
	if day, err := app.DataUse.ReconcileDaily(ctx); err != nil || day == nil || day.Rate != 100 {
		t.Fatalf("the next day's reconciliation: %+v %v", day, err)
	}
	if as := sync(); len(as) != 1 || as[0].Status == detect.StatusNew {
		t.Fatalf("sync alerts after the rate is back: %+v", as)
	}
	kept, err := app.DataUse.Reconciliations(ctx, clerk, 10)
	if err != nil || len(kept) != 2 || kept[0].Rate != 100 || kept[1].Rate != 50 {
		t.Fatalf("kept reconciliations %+v %v", kept, err)
	}
	if _, err := app.DataUse.Reconciliations(ctx, doctor, 10); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("a doctor reads the reconciliations: %v", err)
	}
}
