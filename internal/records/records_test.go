package records_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// A valid resident ID number (the well-known GB 11643 example).
const idNumber = "11010519491231002X"

type fixture struct {
	gate  *gate.Gate
	db    *storage.DB
	dir   string
	clock *testkit.Clock
	log   *audit.Log
	id    *identity.Service
	svc   *records.Service
	calls map[string]*medguard.Call
	// keys and keyFile are the archive's keyring and its (in-memory) key
	// file.
	keys    *keys.Keyring
	keyFile *keys.KeyFile
}

// setup builds the archive with three departments and staff in each role.
func setup(t *testing.T) *fixture {
	t.Helper()
	return setupWith(t, records.Config{})
}

// setupWith is setup with the archive's configuration.
func setupWith(t *testing.T, cfg records.Config) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)), calls: map[string]*medguard.Call{}}
	schemas := []storage.Schema{keys.Schema(), audit.Schema(), identity.Schema(), records.Schema()}
	if os.Getenv(storagetest.PostgresEnv) != "" {
		f.db = storagetest.Open(t, schemas...)
	} else {
		f.dir = t.TempDir()
		db, err := storage.Open(ctx, "", f.dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx, schemas...); err != nil {
			t.Fatal(err)
		}
		f.db = db
	}
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	f.gate = g
	f.keyFile = keys.NewKeyFile(keys.SM4GCM, f.clock.Now())
	kr := keys.NewKeyring(f.db, f.keyFile, f.clock)
	f.keys = kr
	f.id = identity.New(f.db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.svc = records.New(f.db, g, kr, f.id, cfg)
	adminID, err := f.id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"PSYC", "精神科"}, {"MRD", "病案室"}} {
		if _, err := f.id.CreateDepartment(ctx, admin, d[0], d[1]); err != nil {
			t.Fatal(err)
		}
		if records.RestrictedByDefault(d[0], d[1]) {
			if err := f.svc.SetDepartmentRestricted(ctx, admin, d[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, u := range []struct{ name, dept, role string }{
		{"zhangwei", "CARD", "doctor"}, {"lina", "NEUR", "doctor"}, {"wangfang", "CARD", "nurse"},
		{"liuyang", "CARD", "dept_head"}, {"chenjing", "NEUR", "dept_head"}, {"zhaolei", "PSYC", "doctor"},
		{"sunli", "MRD", "records_clerk"}, {"researcher1", "", "researcher"},
	} {
		created, _, err := f.id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: "测试用户",
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}, IP: "10.1.1.1", Purpose: "treatment"}
	}
	return f
}

// as returns the call of the named user, optionally breaking the glass.
func (f *fixture) as(name string, breakGlass ...string) *medguard.Call {
	c := *f.calls[name]
	if len(breakGlass) > 0 {
		c.BreakGlassReason = breakGlass[0]
	}
	return &c
}

func (f *fixture) last(t *testing.T) *audit.Entry {
	t.Helper()
	size, _, _ := f.log.Head(context.Background())
	got, err := f.log.Entries(context.Background(), size-1, size)
	if err != nil || len(got) != 1 {
		t.Fatal(err)
	}
	return got[0].Entry
}

func wantKind(t *testing.T, err error, k medguard.Kind, field string) {
	t.Helper()
	if !medguard.IsKind(err, k) {
		t.Fatalf("got %v, want %s", err, k)
	}
	if field != "" {
		e, _ := err.(*medguard.Error)
		if e == nil || e.Field != field {
			t.Fatalf("error %v does not name field %q", err, field)
		}
	}
}

var zhang = records.NewPatient{Name: "张伟", Gender: "female", BirthDate: "1949-12-31", IDNumber: idNumber,
	Phone: "13912345678", Address: "北京市朝阳区建国路88号3号楼502室", MRN: "MR00000001"}

const note = "患者张伟，女，76岁，因反复胸闷胸痛3年，加重1天入院。既往高血压病史10年。"

// patientWithRecord registers 张伟 (by the CARD doctor) with one progress note.
func (f *fixture) patientWithRecord(t *testing.T) (*records.Patient, *records.Record) {
	t.Helper()
	ctx := context.Background()
	p, err := f.svc.CreatePatient(ctx, f.as("zhangwei"), zhang)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.CreateRecord(ctx, f.as("zhangwei"), p.ID, records.NewRecord{Type: "progress_note", Department: "CARD",
		Title: "张伟 病程记录", Text: note, Fields: map[string]string{"血压": "150/95 mmHg", "诊断": "冠状动脉粥样硬化性心脏病"}})
	if err != nil {
		t.Fatal(err)
	}
	return p, r
}

func TestPatientValidation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	clerk := f.as("sunli")
	for _, c := range []struct {
		p     records.NewPatient
		field string
	}{
		{records.NewPatient{Gender: "male"}, "name"},
		{records.NewPatient{Name: "李四", Gender: "man"}, "gender"},
		{records.NewPatient{Name: "李四", IDNumber: "110105194912310021"}, "id_number"}, // check digit
		{records.NewPatient{Name: "李四", IDNumber: "11010519491332002X"}, "id_number"}, // month 13
		{records.NewPatient{Name: "李四", IDNumber: "1101051949123100"}, "id_number"},   // length
		{records.NewPatient{Name: "李四", IDNumber: idNumber, BirthDate: "1950-01-01"}, "birth_date"},
		{records.NewPatient{Name: "李四", IDNumber: idNumber, Gender: "male"}, "gender"},
		{records.NewPatient{Name: "李四", BirthDate: "2099-01-01"}, "birth_date"},
		{records.NewPatient{Name: "李四", BirthDate: "31/12/1949"}, "birth_date"},
		{records.NewPatient{Name: "李四", Phone: "12345"}, "phone"},
		{records.NewPatient{Name: "李四", MRN: "病案/1"}, "mrn"},
		{records.NewPatient{Name: "李\x00四"}, "name"},
	} {
		_, err := f.svc.CreatePatient(ctx, clerk, c.p)
		wantKind(t, err, medguard.Invalid, c.field)
		if strings.Contains(err.Error(), "李四") || (c.p.IDNumber != "" && strings.Contains(err.Error(), c.p.IDNumber)) {
			t.Errorf("error %q repeats patient data", err)
		}
		if e := f.last(t); e.Outcome != audit.Invalid || e.Action != "patient.create" {
			t.Errorf("entry %+v", e)
		}
	}
	p, err := f.svc.CreatePatient(ctx, clerk, records.NewPatient{Name: " 李四 ", IDNumber: "11010519491231002x", Phone: "139 1234 5678"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "李四" || p.IDNumber != idNumber || p.BirthDate != "1949-12-31" || p.Phone != "13912345678" || p.Gender != "unknown" {
		t.Fatalf("normalised: %+v", p)
	}
	_, err = f.svc.CreatePatient(ctx, clerk, records.NewPatient{Name: "王五", IDNumber: idNumber})
	wantKind(t, err, medguard.Conflict, "id_number")
	if _, err := f.svc.CreatePatient(ctx, clerk, records.NewPatient{Name: "王五", MRN: "MR1"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CreatePatient(ctx, clerk, records.NewPatient{Name: "赵六", MRN: "MR1"})
	wantKind(t, err, medguard.Conflict, "mrn")
	// Researchers cannot register patients.
	_, err = f.svc.CreatePatient(ctx, f.as("researcher1"), zhang)
	wantKind(t, err, medguard.Forbidden, "")
}

func TestPatientAccessFollowsDepartments(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, err := f.svc.CreatePatient(ctx, f.as("sunli"), zhang)
	if err != nil {
		t.Fatal(err)
	}
	// Registered by the records office: the clerk reads it, a cardiologist not yet.
	if _, err := f.svc.GetPatient(ctx, f.as("sunli"), p.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetPatient(ctx, f.as("zhangwei"), p.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Decision != audit.Deny || e.Rule != "deny.no_relation" || e.PatientID != p.ID {
		t.Fatalf("entry %+v", e)
	}
	// Admitted to cardiology: now the cardiologist reads it.
	if _, err := f.svc.Admit(ctx, f.as("zhangwei"), p.ID, "CARD", time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.GetPatient(ctx, f.as("zhangwei"), p.ID)
	if err != nil || got.Name != "张伟" || got.Address != zhang.Address || got.IDNumber != idNumber {
		t.Fatalf("%+v %v", got, err)
	}
	if e := f.last(t); e.Rule != "allow.same_department" || e.Action != "patient.read" {
		t.Fatalf("entry %+v", e)
	}
	// Admin holds no patient-data permission at all.
	// (admin's call is not in the fixture; researcher stands in for no permission.)
	_, err = f.svc.GetPatient(ctx, f.as("researcher1"), p.ID)
	wantKind(t, err, medguard.Forbidden, "")

	// Update: new version, optimistic check.
	v := 1
	newAddr := "上海市浦东新区世纪大道100号"
	up, err := f.svc.UpdatePatient(ctx, f.as("zhangwei"), p.ID, records.PatientChanges{Address: &newAddr, Version: &v})
	if err != nil || up.Address != newAddr || up.Version != 2 || up.Name != "张伟" {
		t.Fatalf("%+v %v", up, err)
	}
	_, err = f.svc.UpdatePatient(ctx, f.as("zhangwei"), p.ID, records.PatientChanges{Address: &newAddr, Version: &v})
	wantKind(t, err, medguard.Conflict, "version")
	_, err = f.svc.UpdatePatient(ctx, f.as("lina"), p.ID, records.PatientChanges{Address: &newAddr})
	wantKind(t, err, medguard.Forbidden, "")
	_, err = f.svc.GetPatient(ctx, f.as("zhangwei"), "nosuchpatient")
	wantKind(t, err, medguard.NotFound, "")
}

func TestSearchThroughBlindIndexes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, _ := f.patientWithRecord(t)
	other, err := f.svc.CreatePatient(ctx, f.as("sunli"), records.NewPatient{Name: "张伟", Gender: "male", Phone: "13800000000"})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []records.Search{{IDNumber: "11010519491231002x"}, {Phone: "13912345678"}, {MRN: "MR00000001"}} {
		got, err := f.svc.SearchPatients(ctx, f.as("lina"), q)
		if err != nil || len(got) != 1 || got[0].ID != p.ID || got[0].MaskedName != "张*" || got[0].BirthYear != 1949 {
			t.Fatalf("%+v: %+v %v", q, got, err)
		}
		if e := f.last(t); e.Action != "patient.search_match" || e.PatientID != p.ID {
			t.Fatalf("entry %+v", e)
		}
	}
	got, err := f.svc.SearchPatients(ctx, f.as("lina"), records.Search{Name: "张伟"})
	if err != nil || len(got) != 2 || got[0].ID == got[1].ID {
		t.Fatalf("by name: %+v %v", got, err)
	}
	_ = other
	none, err := f.svc.SearchPatients(ctx, f.as("lina"), records.Search{Name: "欧阳娜娜"})
	if err != nil || len(none) != 0 {
		t.Fatalf("%+v %v", none, err)
	}
	_, err = f.svc.SearchPatients(ctx, f.as("lina"), records.Search{Name: "张伟", Phone: "13912345678"})
	wantKind(t, err, medguard.Invalid, "query")
	_, err = f.svc.SearchPatients(ctx, f.as("researcher1"), records.Search{Name: "张伟"})
	wantKind(t, err, medguard.Forbidden, "")
}

func TestRecordReadAndBreakGlass(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, r := f.patientWithRecord(t)

	got, err := f.svc.GetRecord(ctx, f.as("wangfang"), r.ID)
	if err != nil || got.Text != note || got.Fields["血压"] != "150/95 mmHg" || got.BreakGlass != nil {
		t.Fatalf("%+v %v", got, err)
	}
	// A neurologist is refused...
	_, err = f.svc.GetRecord(ctx, f.as("lina"), r.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Rule != "deny.no_relation" || e.BreakGlass {
		t.Fatalf("entry %+v", e)
	}
	// ...and may break the glass with a reason.
	got, err = f.svc.GetRecord(ctx, f.as("lina", "患者昏迷送急诊，需要查看既往病史"), r.ID)
	if err != nil || got.Text != note || got.BreakGlass == nil {
		t.Fatalf("%+v %v", got, err)
	}
	if !got.BreakGlass.ReviewDueAt.Equal(f.clock.Now().Add(24 * time.Hour)) {
		t.Fatalf("review due %v", got.BreakGlass.ReviewDueAt)
	}
	e := f.last(t)
	if !e.BreakGlass || e.Rule != "allow.break_glass" || e.PatientID != p.ID || e.TargetID != r.ID {
		t.Fatalf("entry %+v", e)
	}
	if strings.Contains(string(e.Leaf()), "昏迷") {
		t.Fatal("the reason is in the audit entry")
	}

	// The cardiology head sees it in the queue with the reason; the
	// neurology head does not; security officers would see it without reason.
	queue, _, err := f.svc.ListBreakGlass(ctx, f.as("liuyang"), records.BreakGlassFilter{})
	if err != nil || len(queue) != 1 || queue[0].Username != "lina" || queue[0].Reason != "患者昏迷送急诊，需要查看既往病史" {
		t.Fatalf("%+v %v", queue, err)
	}
	other, _, err := f.svc.ListBreakGlass(ctx, f.as("chenjing"), records.BreakGlassFilter{})
	if err != nil || len(other) != 0 {
		t.Fatalf("neurology queue %+v %v", other, err)
	}
	_, err = f.svc.ReviewBreakGlass(ctx, f.as("chenjing"), queue[0].ID, records.Justified, "")
	wantKind(t, err, medguard.Forbidden, "")
	_, err = f.svc.ReviewBreakGlass(ctx, f.as("liuyang"), queue[0].ID, records.Unjustified, "")
	wantKind(t, err, medguard.Invalid, "note")
	f.clock.Advance(25 * time.Hour)
	overdue, _, _ := f.svc.ListBreakGlass(ctx, f.as("liuyang"), records.BreakGlassFilter{Status: "overdue"})
	if len(overdue) != 1 || !overdue[0].Overdue {
		t.Fatalf("overdue %+v", overdue)
	}
	rev, err := f.svc.ReviewBreakGlass(ctx, f.as("liuyang"), queue[0].ID, records.Justified, "急诊抢救，合理")
	if err != nil || rev.Outcome != records.Justified || rev.ReviewedBy != "liuyang" {
		t.Fatalf("%+v %v", rev, err)
	}
	_, err = f.svc.ReviewBreakGlass(ctx, f.as("liuyang"), queue[0].ID, records.Justified, "")
	wantKind(t, err, medguard.Conflict, "")
	pending, _, _ := f.svc.ListBreakGlass(ctx, f.as("liuyang"), records.BreakGlassFilter{})
	if len(pending) != 0 {
		t.Fatalf("still pending: %+v", pending)
	}
	// An empty reason is not break-glass; a long one is refused.
	_, err = f.svc.GetRecord(ctx, f.as("lina", strings.Repeat("急", 501)), r.ID)
	wantKind(t, err, medguard.Invalid, "X-Break-Glass-Reason")
	// Nurses may break the glass too; researchers may not.
	_, err = f.svc.GetRecord(ctx, f.as("researcher1", "科研需要"), r.ID)
	wantKind(t, err, medguard.Forbidden, "")
}

// TestUnjustifiedBreakGlass lists the emergency accesses reviewed as
// unjustified in a period, for the accountability candidates: without
// reasons or notes, with the user's id, hospital-wide for an auditor and
// the own department for a department head.
func TestUnjustifiedBreakGlass(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, r := f.patientWithRecord(t)
	from := f.clock.Now()
	for _, who := range []string{"lina", "lina", "zhaolei"} {
		if _, err := f.svc.GetRecord(ctx, f.as(who, "会诊需要查看既往病史"), r.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(records.BreakGlassWindow + time.Minute) // each in a window of its own
	}
	queue, _, err := f.svc.ListBreakGlass(ctx, f.as("liuyang"), records.BreakGlassFilter{})
	if err != nil || len(queue) != 3 {
		t.Fatalf("%+v %v", queue, err)
	}
	for i, outcome := range []string{records.Unjustified, records.Justified, records.Unjustified} {
		if _, err := f.svc.ReviewBreakGlass(ctx, f.as("liuyang"), queue[i].ID, outcome, "与诊疗无关，患者张伟非本人接诊"); err != nil {
			t.Fatal(err)
		}
	}
	auditor := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(f.clock.Now()), Name: "wuyan",
		Roles: []string{"auditor"}}, IP: "10.1.9.9"}
	to := f.clock.Now()
	got, err := f.svc.UnjustifiedBreakGlass(ctx, auditor, from, to)
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	if got[0].ID != queue[0].ID || got[0].UserID != f.calls["lina"].Actor.ID || got[0].Username != "lina" ||
		got[1].ID != queue[2].ID || got[1].Username != "zhaolei" || got[0].AuditIndex == 0 {
		t.Fatalf("%+v", got)
	}
	for _, e := range got {
		if e.Reason != "" || e.Note != "" || e.Outcome != records.Unjustified {
			t.Fatalf("shown with its text: %+v", e)
		}
	}
	if e := f.last(t); e.Action != "breakglass.unjustified" || e.Actor != "wuyan" || e.Decision != audit.Allow {
		t.Fatalf("entry %+v", e)
	}
	// The period is of the accesses, [from, to).
	if got, err := f.svc.UnjustifiedBreakGlass(ctx, auditor, from.Add(time.Minute), to); err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = f.svc.UnjustifiedBreakGlass(ctx, auditor, to, from)
	wantKind(t, err, medguard.Invalid, "to")
	// Department heads see their own department's; doctors nothing.
	if got, err := f.svc.UnjustifiedBreakGlass(ctx, f.as("liuyang"), from, to); err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	if got, err := f.svc.UnjustifiedBreakGlass(ctx, f.as("chenjing"), from, to); err != nil || len(got) != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = f.svc.UnjustifiedBreakGlass(ctx, f.as("zhangwei"), from, to)
	wantKind(t, err, medguard.Forbidden, "")
}

func TestRestrictedRecordTypes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, _ := f.patientWithRecord(t)
	psych, err := f.svc.CreateRecord(ctx, f.as("zhaolei"), p.ID, records.NewRecord{Type: "psychiatric_note", Department: "PSYC",
		Title: "精神科会诊", Text: "患者情绪低落，睡眠差，考虑抑郁状态。"})
	if err != nil {
		t.Fatal(err)
	}
	if psych.Classification != "core" {
		t.Fatalf("classification %s", psych.Classification)
	}
	_, err = f.svc.CreateRecord(ctx, f.as("zhaolei"), p.ID, records.NewRecord{Type: "hiv_test", Department: "PSYC",
		Title: "HIV", Text: "阴性", Classification: "general"})
	wantKind(t, err, medguard.Invalid, "classification")

	// Break-glass never opens it; nor does the records office's hospital scope.
	_, err = f.svc.GetRecord(ctx, f.as("zhangwei", "急诊抢救"), psych.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Rule != "deny.restricted_record_type" {
		t.Fatalf("entry %+v", e)
	}
	_, err = f.svc.GetRecord(ctx, f.as("sunli"), psych.ID)
	wantKind(t, err, medguard.Forbidden, "")
	// The cardiologist's list does not even name it.
	list, _, err := f.svc.ListRecords(ctx, f.as("zhangwei"), p.ID, "", 50)
	if err != nil || len(list) != 1 || list[0].Type != "progress_note" {
		t.Fatalf("list %+v %v", list, err)
	}
	// On the care team, the cardiologist still does not read it: a care
	// team never opens another department's restricted records.
	if _, err := f.svc.AddCareTeamMember(ctx, f.as("liuyang"), p.ID, f.calls["zhangwei"].Actor.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetRecord(ctx, f.as("zhangwei"), psych.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Rule != "deny.restricted_record_type" {
		t.Fatalf("entry %+v", e)
	}
	// Every record of psychiatry is restricted, whatever its type: its
	// admission note opens neither to the care team, nor to the records
	// office, nor to break-glass; only to psychiatry and its head's grants.
	adm, err := f.svc.CreateRecord(ctx, f.as("zhaolei"), p.ID, records.NewRecord{Type: "admission_note", Department: "PSYC",
		Title: "入院记录", Text: "主诉：情绪低落伴自伤观念两周。"})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []*medguard.Call{f.as("zhangwei"), f.as("sunli"), f.as("lina", "急诊抢救")} {
		_, err = f.svc.GetRecord(ctx, who, adm.ID)
		wantKind(t, err, medguard.Forbidden, "")
		if e := f.last(t); e.Rule != "deny.restricted_record_type" {
			t.Fatalf("%s: entry %+v", who.Actor.Name, e)
		}
	}
	if _, err := f.svc.GetRecord(ctx, f.as("zhaolei"), adm.ID); err != nil {
		t.Fatal(err)
	}
	f.grant(t, "lina", records.NewGrant{PatientID: p.ID, GranteeID: f.calls["lina"].Actor.ID, Department: "PSYC",
		Reason: "会诊", ExpiresAt: f.clock.Now().Add(time.Hour)})
	if _, err := f.svc.GetRecord(ctx, f.as("lina"), adm.ID); err != nil {
		t.Fatal(err)
	}
	// The patient's departments show psychiatry only to psychiatry.
	pp, err := f.svc.GetPatient(ctx, f.as("zhangwei"), p.ID)
	if err != nil || strings.Join(pp.Departments, ",") != "CARD" {
		t.Fatalf("%+v %v", pp, err)
	}
	if pp, _ := f.svc.GetPatient(ctx, f.as("zhaolei"), p.ID); strings.Join(pp.Departments, ",") != "CARD,PSYC" {
		t.Fatalf("psychiatry sees %v", pp.Departments)
	}
	// Nurses write nursing notes only.
	_, err = f.svc.CreateRecord(ctx, f.as("wangfang"), p.ID, records.NewRecord{Type: "progress_note", Department: "CARD", Title: "x", Text: "y"})
	wantKind(t, err, medguard.Forbidden, "")
	if _, err := f.svc.CreateRecord(ctx, f.as("wangfang"), p.ID, records.NewRecord{Type: "nursing_note", Department: "CARD",
		Title: "护理记录", Text: "生命体征平稳，T 36.5℃，P 78次/分。"}); err != nil {
		t.Fatal(err)
	}
	// Nobody writes into another department.
	_, err = f.svc.CreateRecord(ctx, f.as("zhangwei"), p.ID, records.NewRecord{Type: "progress_note", Department: "NEUR", Title: "x", Text: "y"})
	wantKind(t, err, medguard.Forbidden, "")
	_, err = f.svc.CreateRecord(ctx, f.as("zhangwei"), p.ID, records.NewRecord{Type: "tarot_reading", Department: "CARD", Title: "x", Text: "y"})
	wantKind(t, err, medguard.Invalid, "type")
}

func TestVersionsAndHistory(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, r := f.patientWithRecord(t)
	newText := note + "\n补充：心电图示ST段压低。"
	v := 1
	up, err := f.svc.UpdateRecord(ctx, f.as("zhangwei"), r.ID, records.RecordChanges{Text: &newText, Version: &v})
	if err != nil || up.Version != 2 || up.Text != newText || up.Title != "张伟 病程记录" {
		t.Fatalf("%+v %v", up, err)
	}
	_, err = f.svc.UpdateRecord(ctx, f.as("zhangwei"), r.ID, records.RecordChanges{Text: &newText, Version: &v})
	wantKind(t, err, medguard.Conflict, "version")
	cur, _ := f.svc.GetRecord(ctx, f.as("zhangwei"), r.ID)
	if cur.Version != 2 || cur.Text != newText {
		t.Fatalf("current %+v", cur)
	}
	// Old versions: the department head and the records office, not the doctor.
	old, err := f.svc.GetRecordVersion(ctx, f.as("liuyang"), r.ID, 1)
	if err != nil || old.Text != note || old.Version != 1 {
		t.Fatalf("%+v %v", old, err)
	}
	_, err = f.svc.GetRecordVersion(ctx, f.as("zhangwei"), r.ID, 1)
	wantKind(t, err, medguard.Forbidden, "")
	vs, err := f.svc.ListVersions(ctx, f.as("sunli"), r.ID)
	if err != nil || len(vs) != 2 {
		t.Fatalf("%+v %v", vs, err)
	}
	_, err = f.svc.GetRecordVersion(ctx, f.as("liuyang"), r.ID, 3)
	wantKind(t, err, medguard.NotFound, "")
}

func TestAttachments(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, r := f.patientWithRecord(t)
	pdf := []byte("%PDF-1.4\n1 0 obj <<>> endobj\n张伟 心电图报告\n%%EOF\n")
	upload := func(name, typ string, content []byte) func() (records.Upload, error) {
		return func() (records.Upload, error) {
			return records.Upload{Filename: name, DeclaredType: typ, Content: content}, nil
		}
	}
	a, err := f.svc.AddAttachment(ctx, f.as("zhangwei"), r.ID, upload("张伟_心电图.pdf", "application/pdf", pdf))
	if err != nil || a.ContentType != "application/pdf" || a.Size != int64(len(pdf)) {
		t.Fatalf("%+v %v", a, err)
	}
	for _, c := range []struct {
		name, typ string
		content   []byte
		field     string
	}{
		{"../../etc/passwd", "", pdf, "filename"},
		{`..\..\boot.ini`, "", pdf, "filename"},
		{"a/b.pdf", "", pdf, "filename"},
		{"", "", pdf, "filename"},
		{"x\x00.pdf", "", pdf, "filename"},
		{"notes.txt", "", []byte("plain text, not a PDF"), "file"},
		{"fake.png", "image/png", pdf, "file"},
		{"empty.pdf", "", nil, "file"},
	} {
		_, err := f.svc.AddAttachment(ctx, f.as("zhangwei"), r.ID, upload(c.name, c.typ, c.content))
		wantKind(t, err, medguard.Invalid, c.field)
	}
	// Nobody without the right makes the server read a body: the upload
	// is never read for a caller the policy refuses.
	read := false
	_, err = f.svc.AddAttachment(ctx, f.as("researcher1"), r.ID, func() (records.Upload, error) {
		read = true
		return records.Upload{}, nil
	})
	wantKind(t, err, medguard.Forbidden, "")
	if read {
		t.Fatal("the body of a refused upload was read")
	}
	got, err := f.svc.GetAttachment(ctx, f.as("wangfang"), a.ID)
	if err != nil || !bytes.Equal(got.Content, pdf) || got.Filename != "张伟_心电图.pdf" {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = f.svc.GetAttachment(ctx, f.as("lina"), a.ID)
	wantKind(t, err, medguard.Forbidden, "")
	rec, _ := f.svc.GetRecord(ctx, f.as("zhangwei"), r.ID)
	if len(rec.Attachments) != 1 || rec.Attachments[0].Filename != "张伟_心电图.pdf" {
		t.Fatalf("attachments %+v", rec.Attachments)
	}
}

// apply commits a mutation as an approved request's run would (package
// approvals is above this one).
func (f *fixture) apply(t *testing.T, m audit.Mutation) {
	t.Helper()
	call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, Name: "approver-in-test"}}
	if _, err := f.gate.Record(context.Background(), gate.Event{Call: call, Action: "test.approved", Allowed: true,
		Rule: "allow.four_eyes:test"}, m); err != nil {
		t.Fatal(err)
	}
}

// grant checks a grant request as the approvals capability does and
// commits it as its approval would.
func (f *fixture) grant(t *testing.T, asker string, in records.NewGrant) *records.AccessGrant {
	t.Helper()
	ctx := context.Background()
	in, u, approvers, err := f.svc.CheckGrantRequest(ctx, f.as(asker), in)
	if err != nil {
		t.Fatal(err)
	}
	g, m, err := f.svc.GrantAccess(ctx, in, u.Username, "head of "+approvers.Department)
	if err != nil {
		t.Fatal(err)
	}
	f.apply(t, m)
	return g
}

func TestGrantsAndCareTeam(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, r := f.patientWithRecord(t)
	lina := f.calls["lina"].Actor.ID
	in := records.NewGrant{PatientID: p.ID, GranteeID: lina, Department: "CARD", Reason: "神经内科会诊",
		ExpiresAt: f.clock.Now().Add(48 * time.Hour)}
	// A grant opens one department's data; only that department's head
	// approves it (approvers), and it is checked like any input.
	_, _, approvers, err := f.svc.CheckGrantRequest(ctx, f.as("lina"), in)
	if err != nil || approvers.Department != "CARD" || approvers.Security {
		t.Fatalf("%+v %v", approvers, err)
	}
	bad := in
	bad.Department = "NEUR"
	_, _, _, err = f.svc.CheckGrantRequest(ctx, f.as("lina"), bad)
	wantKind(t, err, medguard.Invalid, "department")
	bad = in
	bad.ExpiresAt = f.clock.Now().Add(60 * 24 * time.Hour)
	_, _, _, err = f.svc.CheckGrantRequest(ctx, f.as("lina"), bad)
	wantKind(t, err, medguard.Invalid, "expires_at")
	_, err = f.svc.GetRecord(ctx, f.as("lina"), r.ID)
	wantKind(t, err, medguard.Forbidden, "")
	g := f.grant(t, "lina", in)
	if !g.Active {
		t.Fatalf("%+v", g)
	}
	if _, err := f.svc.GetRecord(ctx, f.as("lina"), r.ID); err != nil {
		t.Fatal(err)
	}
	if e := f.last(t); e.Rule != "allow.access_grant" {
		t.Fatalf("entry %+v", e)
	}
	// The grant covers cardiology's data only.
	psych, _ := f.svc.CreateRecord(ctx, f.as("zhaolei"), p.ID, records.NewRecord{Type: "progress_note", Department: "PSYC", Title: "会诊", Text: "情绪稳定"})
	_, err = f.svc.GetRecord(ctx, f.as("lina"), psych.ID)
	wantKind(t, err, medguard.Forbidden, "")
	// It expires...
	f.clock.Advance(49 * time.Hour)
	_, err = f.svc.GetRecord(ctx, f.as("lina"), r.ID)
	wantKind(t, err, medguard.Forbidden, "")
	// ...or is revoked.
	in.ExpiresAt = f.clock.Now().Add(time.Hour)
	g = f.grant(t, "lina", in)
	if _, err := f.svc.GetRecord(ctx, f.as("lina"), r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeGrant(ctx, f.as("liuyang"), g.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetRecord(ctx, f.as("lina"), r.ID)
	wantKind(t, err, medguard.Forbidden, "")
	grants, err := f.svc.ListGrants(ctx, f.as("liuyang"))
	if err != nil || len(grants) != 2 || grants[0].Reason != "神经内科会诊" {
		t.Fatalf("%+v %v", grants, err)
	}

	// Care team: the head adds a colleague of the department at once; a
	// member of another department needs a second person; nobody adds
	// themselves.
	if _, err := f.svc.AddCareTeamMember(ctx, f.as("liuyang"), p.ID, f.calls["wangfang"].Actor.ID, nil); err != nil {
		t.Fatal(err)
	}
	until := f.clock.Now().Add(2 * time.Hour)
	_, err = f.svc.AddCareTeamMember(ctx, f.as("liuyang"), p.ID, lina, &until)
	wantKind(t, err, medguard.Conflict, "")
	_, err = f.svc.AddCareTeamMember(ctx, f.as("liuyang"), p.ID, f.calls["liuyang"].Actor.ID, nil)
	wantKind(t, err, medguard.Forbidden, "")
	if e := f.last(t); e.Rule != "deny.own_relation" {
		t.Fatalf("entry %+v", e)
	}
	_, m := f.svc.CareTeamAdd(records.CareTeamRequest{PatientID: p.ID, UserID: lina, Until: &until}, "lina", "security")
	f.apply(t, m)
	team, err := f.svc.ListCareTeam(ctx, f.as("zhangwei"), p.ID)
	if err != nil || len(team) != 2 {
		t.Fatalf("%+v %v", team, err)
	}
	// The care team opens cardiology's records, never psychiatry's.
	if _, err := f.svc.GetRecord(ctx, f.as("lina"), r.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetRecord(ctx, f.as("lina"), psych.ID)
	wantKind(t, err, medguard.Forbidden, "")
	f.clock.Advance(3 * time.Hour)
	_, err = f.svc.GetRecord(ctx, f.as("lina"), r.ID)
	wantKind(t, err, medguard.Forbidden, "")
	if err := f.svc.RemoveCareTeamMember(ctx, f.as("liuyang"), p.ID, lina); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AddCareTeamMember(ctx, f.as("chenjing"), p.ID, lina, nil)
	wantKind(t, err, medguard.Forbidden, "")
}

func TestAdmissionsAndLateArchiving(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, _ := f.patientWithRecord(t)
	start := f.clock.Now()
	a, err := f.svc.Admit(ctx, f.as("zhangwei"), p.ID, "CARD", start.Add(-72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Admit(ctx, f.as("zhangwei"), p.ID, "NEUR", time.Time{})
	wantKind(t, err, medguard.Forbidden, "")
	d, err := f.svc.Discharge(ctx, f.as("zhangwei"), a.ID, time.Time{})
	if err != nil || d.Status != "discharged" || !d.ArchiveDueAt.Equal(start.Add(7*24*time.Hour)) {
		t.Fatalf("%+v %v", d, err)
	}
	_, err = f.svc.Discharge(ctx, f.as("zhangwei"), a.ID, time.Time{})
	wantKind(t, err, medguard.Conflict, "")

	// Eight days later: overdue by 24 h, listed for the records office.
	f.clock.Advance(8 * 24 * time.Hour)
	late, err := f.svc.LateArchiving(ctx, f.as("sunli"), "", time.Time{})
	if err != nil || len(late) != 1 || late[0].Status != "overdue" || late[0].HoursLate != 24 {
		t.Fatalf("%+v %v", late, err)
	}
	// The cardiology head sees their department's list; not the whole hospital's.
	if got, err := f.svc.LateArchiving(ctx, f.as("liuyang"), "CARD", time.Time{}); err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = f.svc.LateArchiving(ctx, f.as("liuyang"), "", time.Time{})
	wantKind(t, err, medguard.Forbidden, "")
	f.clock.Advance(90 * time.Minute)
	arch, err := f.svc.Archive(ctx, f.as("sunli"), a.ID)
	if err != nil || arch.Status != "archived_late" || arch.HoursLate != 26 {
		t.Fatalf("%+v %v", arch, err)
	}
	late, _ = f.svc.LateArchiving(ctx, f.as("sunli"), "", start)
	if len(late) != 1 || late[0].Status != "archived_late" {
		t.Fatalf("%+v", late)
	}
	_, err = f.svc.Archive(ctx, f.as("sunli"), a.ID)
	wantKind(t, err, medguard.Conflict, "")
}

// TestNoPatientDataInDatabaseFiles writes known Chinese PHI and then reads
// every byte of the SQLite database, its WAL and its shared-memory file:
// none of the PHI may appear, in UTF-8 or in any common encoding.
func TestNoPatientDataInDatabaseFiles(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("checks the SQLite files; the end-to-end test covers the data directory on both engines")
	}
	f := setup(t)
	ctx := context.Background()
	p, r := f.patientWithRecord(t)
	if _, err := f.svc.AddAttachment(ctx, f.as("zhangwei"), r.ID, func() (records.Upload, error) {
		return records.Upload{Filename: "张伟_心电图.pdf", Content: []byte("%PDF-1.4 张伟 心电图 北京市朝阳区")}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetRecord(ctx, f.as("lina", "患者张伟昏迷急诊抢救"), r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SearchPatients(ctx, f.as("lina"), records.Search{Name: "张伟"}); err != nil {
		t.Fatal(err)
	}
	_ = p
	secrets := testkit.PHI(zhang.Name, zhang.IDNumber, zhang.Phone, zhang.Address, zhang.MRN, "冠状动脉粥样硬化", "反复胸闷胸痛",
		"心电图", "昏迷急诊")
	files, _ := filepath.Glob(filepath.Join(f.dir, "*"))
	if len(files) < 2 {
		t.Fatalf("expected the database and its WAL, found %v", files)
	}
	for _, file := range files {
		testkit.AssertNoPHI(t, file, secrets)
	}
}

// TestBornThisMorningInBeijing: a baby born this morning in Beijing is
// registered with today's date although UTC is still on yesterday.
func TestBornThisMorningInBeijing(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	f := setupWith(t, records.Config{Location: shanghai})
	f.clock.Set(time.Date(2026, 12, 5, 18, 30, 0, 0, time.UTC)) // 02:30 on 6 December in Beijing
	if _, err := f.svc.CreatePatient(context.Background(), f.as("zhangwei"), records.NewPatient{Name: "新生儿张宝宝",
		Gender: "female", BirthDate: "2026-12-06"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.CreatePatient(context.Background(), f.as("zhangwei"), records.NewPatient{Name: "未出生",
		Gender: "female", BirthDate: "2026-12-07"})
	wantKind(t, err, medguard.Invalid, "birth_date")
}
