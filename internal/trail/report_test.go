package trail_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/detect"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
	"medguard/internal/trail"
)

var shanghai = trail.DefaultZone

// at is a time on the hospital's clock.
func at(month time.Month, day, hour, min int) time.Time {
	return time.Date(2026, month, day, hour, min, 0, 0, shanghai)
}

type fixture struct {
	clock *testkit.Clock
	log   *audit.Log
	rec   *records.Service
	trail *trail.Service
	calls map[string]*medguard.Call
}

// setup builds the archive and the trail on SQLite, or on PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set, with two departments and their doctors,
// and a security officer and a quality auditor.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(at(time.March, 5, 14, 0)), calls: map[string]*medguard.Call{}}
	db := storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), records.Schema())
	var err error
	if f.log, err = audit.Open(ctx, db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	id := identity.New(db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.rec = records.New(db, g, kr, id, records.Config{})
	f.trail = trail.New(g, nil, id, f.rec, nil)
	adminID, err := id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}} {
		if _, err := id.CreateDepartment(ctx, admin, d[0], d[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhangwei", "张建国", "CARD", policy.Doctor}, {"lina", "李娜", "NEUR", policy.Doctor},
	} {
		created, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}, IP: "10.1.1.1", Purpose: "treatment"}
	}
	// The privileged roles would need a four-eyes approval to be granted;
	// the policy decides on the call, so the calls say them directly.
	for _, u := range []struct{ name, role string }{{"zhouqiang", policy.SecurityOfficer}, {"wuyan", policy.Auditor}} {
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(f.clock.Now()),
			Name: u.name, Roles: []string{u.role}}, IP: "10.1.9.9", Purpose: "patient_request"}
	}
	return f
}

// as returns the named user's call, with purpose and break-glass reason.
func (f *fixture) as(name, purpose string, breakGlass ...string) *medguard.Call {
	c := *f.calls[name]
	c.Purpose = purpose
	if len(breakGlass) > 0 {
		c.BreakGlassReason = breakGlass[0]
	}
	return &c
}

func (f *fixture) last(t *testing.T) *audit.Entry {
	t.Helper()
	size, _, err := f.log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.log.Entries(context.Background(), size-1, size)
	if err != nil || len(got) != 1 {
		t.Fatal(err)
	}
	return got[0].Entry
}

// history makes the story the report tells: 张三 registered and written up
// in cardiology, read by her doctor, refused to a neurologist who then
// broke the glass, and a failed change; and another patient, 李四, whose
// accesses must not appear in 张三's report.
func (f *fixture) history(t *testing.T) (zhang, li string) {
	t.Helper()
	ctx := context.Background()
	f.clock.Set(at(time.March, 5, 14, 0))
	p, err := f.rec.CreatePatient(ctx, f.as("zhangwei", "treatment"), records.NewPatient{Name: "张三", Gender: "female",
		BirthDate: "1949-12-31", IDNumber: "11010519491231002X", Phone: "13812345678",
		Address: "北京市海淀区中关村大街27号", MRN: "MR20260305"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(at(time.March, 5, 14, 5))
	rec, err := f.rec.CreateRecord(ctx, f.as("zhangwei", "treatment"), p.ID, records.NewRecord{Type: "admission_note",
		Department: "CARD", Title: "入院记录", Text: "患者张三，女，76岁，因反复胸闷3年入院。"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(at(time.March, 5, 14, 32))
	if _, err := f.rec.GetRecord(ctx, f.as("zhangwei", "treatment"), rec.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(at(time.March, 5, 15, 10))
	if _, err := f.rec.GetRecord(ctx, f.as("lina", "treatment"), rec.ID); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("a neurologist reads a cardiology record: %v", err)
	}
	f.clock.Set(at(time.March, 5, 15, 12))
	if _, err := f.rec.GetRecord(ctx, f.as("lina", "emergency", "患者昏迷，急诊抢救"), rec.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(at(time.March, 5, 16, 0))
	bad := "11010519491231002Y"
	if _, err := f.rec.UpdatePatient(ctx, f.as("zhangwei", ""), p.ID, records.PatientChanges{IDNumber: &bad}); !medguard.IsKind(err, medguard.Invalid) {
		t.Fatalf("an invalid ID number: %v", err)
	}

	f.clock.Set(at(time.March, 5, 17, 0))
	other, err := f.rec.CreatePatient(ctx, f.as("lina", "treatment"), records.NewPatient{Name: "李四", Gender: "female"})
	if err != nil {
		t.Fatal(err)
	}
	otherRec, err := f.rec.CreateRecord(ctx, f.as("lina", "treatment"), other.ID, records.NewRecord{Type: "progress_note",
		Department: "NEUR", Title: "病程记录", Text: "头痛好转。"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.GetRecord(ctx, f.as("zhangwei", "treatment", "会诊需要"), otherRec.ID); err != nil {
		t.Fatal(err)
	}
	return p.ID, other.ID
}

func (f *fixture) report(t *testing.T, who string, q trail.ReportQuery) (*trail.AccessReport, uint64) {
	t.Helper()
	rep, next, err := f.trail.AccessReport(context.Background(), f.as(who, "patient_request"), q)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	return rep, next
}

func TestAccessReport(t *testing.T) {
	f := setup(t)
	zhang, li := f.history(t)
	ctx := context.Background()

	f.clock.Set(at(time.March, 6, 9, 0))
	zh, next := f.report(t, "zhouqiang", trail.ReportQuery{PatientID: zhang})
	if next != 0 || zh.PatientID != zhang || zh.Language != trail.Chinese || zh.TimeZone != "Asia/Shanghai" {
		t.Fatalf("report %+v, next %d", zh, next)
	}
	wantZH := []string{
		"2026年3月5日 16:00，心内科 医生 zhangwei 试图修改您的基本信息（用途：未说明），但未完成。",
		"2026年3月5日 15:12，神经内科 医生 lina 以紧急访问（破窗）方式查看了病历（用途：急诊抢救）。",
		"2026年3月5日 15:10，神经内科 医生 lina 试图查看病历（用途：诊疗），被系统拒绝。",
		"2026年3月5日 14:32，心内科 医生 zhangwei 查看了病历（用途：诊疗）。",
		"2026年3月5日 14:05，心内科 医生 zhangwei 新建了一份病历（用途：诊疗）。",
		"2026年3月5日 14:00，心内科 医生 zhangwei 建立了您的患者档案（用途：诊疗）。",
	}
	if got := texts(zh.Items); !slices.Equal(got, wantZH) {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantZH, "\n"))
	}
	glass, denied, read := zh.Items[1], zh.Items[2], zh.Items[3]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"break-glass flag", glass.BreakGlass, true},
		{"break-glass note", glass.BreakGlassNote, "紧急访问（破窗）：在紧急情况下超出常规权限的访问，事后须经科室主任复核"},
		{"break-glass why", glass.Why, "急诊抢救"},
		{"break-glass status", glass.Status, trail.StatusCompleted},
		{"denied flag", denied.Denied, true},
		{"denied status", denied.Status, trail.StatusDenied},
		{"denied what", denied.What, "试图查看病历"},
		{"denied result", denied.Result, "被系统拒绝"},
		{"denied break-glass", denied.BreakGlass, false},
		{"read what", read.What, "查看了病历"},
		{"read category", read.Category, trail.CategoryRead},
		{"read local time", read.LocalTime, "2026年3月5日 14:32"},
		{"read time", read.Time, at(time.March, 5, 14, 32).UTC()},
		{"read who", read.Who, "心内科 医生 zhangwei"},
		{"read department", read.Department + "/" + read.DepartmentName, "CARD/心内科"},
		{"read roles", strings.Join(read.Roles, ","), "医生"},
		{"read actor kind", read.ActorKind, trail.ActorStaff},
		{"read purpose", read.Purpose + "/" + read.Why, "treatment/诊疗"},
		{"read target", read.TargetType, "record"},
		{"read result", read.Result, "已完成"},
		{"read denied", read.Denied, false},
		{"create category", zh.Items[5].Category, trail.CategoryChange},
		{"incomplete status", zh.Items[0].Status, trail.StatusIncomplete},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	s := zh.Summary
	if s.Entries != 6 || s.Accesses != 4 || s.Staff != 2 || s.Systems != 0 || s.BreakGlass != 1 || s.Denied != 1 ||
		s.Incomplete != 1 {
		t.Errorf("summary %+v", s)
	}
	if s.From == nil || !s.From.Equal(at(time.March, 5, 14, 0)) || !s.To.Equal(at(time.March, 6, 9, 0)) {
		t.Errorf("period %v to %v", s.From, s.To)
	}
	if want := "2026年3月5日 14:00 至 2026年3月6日 09:00，共有2名工作人员访问了您的数据4次，其中紧急访问（破窗）1次；" +
		"另有1次访问被系统拒绝；1次操作未完成。"; s.Text != want {
		t.Errorf("summary text\n%s\nwant\n%s", s.Text, want)
	}

	// The report request is in the audit log with the patient's id.
	e := f.last(t)
	if e.Action != trail.ReportAction || e.PatientID != zhang || e.TargetType != "patient" || e.TargetID != zhang ||
		e.Actor != "zhouqiang" || e.Purpose != "patient_request" || e.Decision != audit.Allow || e.Outcome != audit.Success {
		t.Fatalf("the report's own entry: %+v", e)
	}

	// In English, a day later, the Chinese report is a line too.
	f.clock.Set(at(time.March, 7, 10, 30))
	en, _ := f.report(t, "wuyan", trail.ReportQuery{PatientID: zhang, Lang: trail.English})
	wantEN := []string{
		"6 March 2026, 09:00: zhouqiang (information security officer) looked up your access report (purpose: your own request).",
		"5 March 2026, 16:00: zhangwei (doctor, 心内科) tried to change your personal details (purpose: not stated), but it did not complete.",
		"5 March 2026, 15:12: lina (doctor, 神经内科) viewed a medical record (purpose: emergency care) using emergency access (break-glass).",
		"5 March 2026, 15:10: lina (doctor, 神经内科) tried to view a medical record (purpose: treatment); denied — the system refused.",
		"5 March 2026, 14:32: zhangwei (doctor, 心内科) viewed a medical record (purpose: treatment).",
		"5 March 2026, 14:05: zhangwei (doctor, 心内科) added a medical record (purpose: treatment).",
		"5 March 2026, 14:00: zhangwei (doctor, 心内科) registered you as a patient (purpose: treatment).",
	}
	if got := texts(en.Items); !slices.Equal(got, wantEN) {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantEN, "\n"))
	}
	if r := en.Items[0]; r.Category != trail.CategoryReport || r.What != "looked up your access report" ||
		r.Why != "your own request" || r.Roles[0] != "information security officer" {
		t.Errorf("the report's line: %+v", r)
	}
	if d := en.Items[3]; d.Result != "denied — the system refused" || d.What != "tried to view a medical record" {
		t.Errorf("the denied line: %+v", d)
	}
	if want := "From 5 March 2026, 14:00 to 7 March 2026, 10:30, 3 members of staff accessed your data 5 times, " +
		"1 of these by emergency access (break-glass); 1 attempt was denied by the system; 1 operation did not complete."; en.Summary.Text != want {
		t.Errorf("summary text\n%s\nwant\n%s", en.Summary.Text, want)
	}

	// Nothing of the other patient, and no patient data at all.
	for _, rep := range []*trail.AccessReport{zh, en} {
		for _, l := range rep.Items {
			if l.TargetID == li || l.Actor == "zhangwei" && l.BreakGlass {
				t.Errorf("another patient's access in the report: %+v", l)
			}
		}
		b, _ := json.Marshal(rep)
		for _, phi := range []string{"张三", "11010519491231002X", "13812345678", "北京市", "MR20260305", "胸闷",
			"患者昏迷", "李四", li} {
			if strings.Contains(string(b), phi) {
				t.Errorf("the report holds %q", phi)
			}
		}
	}
	other, _ := f.report(t, "zhouqiang", trail.ReportQuery{PatientID: li})
	if other.Summary.Entries != 3 || other.Summary.BreakGlass != 1 || other.Items[0].Who != "心内科 医生 zhangwei" {
		t.Errorf("李四's report: %+v", other.Summary)
	}

	// Unknown patients are not found; a malformed id is not logged.
	for _, id := range []string{medguard.NewID(f.clock.Now()), "11010519491231002X"} {
		_, _, err := f.trail.AccessReport(ctx, f.as("zhouqiang", "patient_request"), trail.ReportQuery{PatientID: id})
		if !medguard.IsKind(err, medguard.NotFound) {
			t.Fatalf("report of %s: %v", id, err)
		}
		e := f.last(t)
		wantTarget := id
		if !medguard.ValidID(id) {
			wantTarget = ""
		}
		if e.Action != trail.ReportAction || e.Outcome != audit.Missing || e.PatientID != "" || e.TargetID != wantTarget {
			t.Fatalf("entry of a missing patient: %+v", e)
		}
	}

	// A doctor may not make the report; the attempt is logged, and is a
	// line of the patient's next report.
	_, _, err := f.trail.AccessReport(ctx, f.as("zhangwei", "treatment"), trail.ReportQuery{PatientID: zhang})
	if !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("a doctor's report: %v", err)
	}
	if e := f.last(t); e.Decision != audit.Deny || e.Rule != policy.RuleNoPermission || e.PatientID != zhang {
		t.Fatalf("the refused report's entry: %+v", e)
	}
	again, _ := f.report(t, "zhouqiang", trail.ReportQuery{PatientID: zhang})
	if l := again.Items[0]; !l.Denied || l.Category != trail.CategoryReport || l.What != "试图调阅您的访问记录报告" {
		t.Errorf("the refused report's line: %+v", l)
	}

	// The period: from 15:00 on the 5th to the end of that day.
	day, _ := f.report(t, "zhouqiang", trail.ReportQuery{PatientID: zhang, From: at(time.March, 5, 15, 0),
		To: at(time.March, 6, 0, 0)})
	if got := len(day.Items); got != 3 || day.Summary.Entries != 3 || day.Summary.Accesses != 1 ||
		!day.Summary.From.Equal(at(time.March, 5, 15, 0)) || !day.Summary.To.Equal(at(time.March, 6, 0, 0)) {
		t.Fatalf("period report: %d lines, %+v", got, day.Summary)
	}
	_, _, err = f.trail.AccessReport(ctx, f.as("zhouqiang", "patient_request"), trail.ReportQuery{PatientID: zhang,
		From: at(time.March, 6, 0, 0), To: at(time.March, 5, 0, 0)})
	if e, ok := err.(*medguard.Error); !ok || e.Kind != medguard.Invalid || e.Field != "to" {
		t.Fatalf("to before from: %v", err)
	}
	_, _, err = f.trail.AccessReport(ctx, f.as("zhouqiang", "patient_request"), trail.ReportQuery{PatientID: zhang, Lang: "fr"})
	if e, ok := err.(*medguard.Error); !ok || e.Kind != medguard.Invalid || e.Field != "lang" {
		t.Fatalf("lang fr: %v", err)
	}
}

func TestAccessReportPages(t *testing.T) {
	f := setup(t)
	zhang, _ := f.history(t)
	f.clock.Set(at(time.March, 6, 9, 0))
	full, _ := f.report(t, "zhouqiang", trail.ReportQuery{PatientID: zhang})
	var paged []trail.AccessLine
	var before uint64
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the pages never end")
		}
		rep, next := f.report(t, "zhouqiang", trail.ReportQuery{PatientID: zhang, Before: before, Limit: 2})
		if len(rep.Items) > 2 {
			t.Fatalf("page of %d lines", len(rep.Items))
		}
		// Each page's summary covers the whole period, which grows by the
		// earlier pages' own report entries.
		if rep.Summary.Denied != full.Summary.Denied || rep.Summary.BreakGlass != 1 || rep.Summary.Entries < full.Summary.Entries {
			t.Fatalf("page summary %+v", rep.Summary)
		}
		paged = append(paged, rep.Items...)
		if next == 0 {
			break
		}
		if next != rep.Items[len(rep.Items)-1].Index {
			t.Fatalf("next %d, last line %d", next, rep.Items[len(rep.Items)-1].Index)
		}
		before = next
	}
	// The first page starts with the first report's own entry; the rest are
	// the lines of the full report, in order.
	if got, want := texts(paged[1:]), texts(full.Items); !slices.Equal(got, want) {
		t.Fatalf("paged:\n%s\nfull:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAccessReportNobody(t *testing.T) {
	f := setup(t)
	zhang, _ := f.history(t)
	rep, _ := f.report(t, "zhouqiang", trail.ReportQuery{PatientID: zhang, Lang: trail.English,
		From: at(time.April, 1, 0, 0), To: at(time.May, 1, 0, 0)})
	if len(rep.Items) != 0 || rep.Summary.Entries != 0 ||
		rep.Summary.Text != "From 1 April 2026, 00:00 to 1 May 2026, 00:00, nobody accessed your data." {
		t.Fatalf("empty report: %+v", rep)
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"items":[]`) {
		t.Errorf("items must be an empty list: %s", b)
	}
}

func texts(ls []trail.AccessLine) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Text
	}
	return out
}

// TestAccessReportNamed names the patient in a report asked for with
// Named (the console's, handed to the patient), and in no other; the
// named report is the same logged disclosure as any.
func TestAccessReportNamed(t *testing.T) {
	f := setup(t)
	zhang, _ := f.history(t)
	plain, _ := f.report(t, "wuyan", trail.ReportQuery{PatientID: zhang})
	if plain.Patient != nil {
		t.Fatalf("an unnamed report names %+v", plain.Patient)
	}
	named, _ := f.report(t, "wuyan", trail.ReportQuery{PatientID: zhang, Named: true})
	if named.Patient == nil || named.Patient.Name != "张三" || named.Patient.MRN != "MR20260305" {
		t.Fatalf("patient %+v", named.Patient)
	}
	if e := f.last(t); e.Action != trail.ReportAction || e.PatientID != zhang || e.Actor != "wuyan" {
		t.Fatalf("the named report's entry: %+v", e)
	}
	if !slices.Contains(detect.DisclosureActions, trail.ReportAction) {
		t.Fatalf("%s is not counted as a disclosure", trail.ReportAction)
	}
}
