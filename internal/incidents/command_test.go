package incidents_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/incidents"
	"medguard/internal/medguardtest"
)

// TestIncidentTypes: the type is one of a closed list, given or inferred
// from the criterion, corrected at the grade's confirmation; a data leak
// by type has the 48-hour cause analysis.
func TestIncidentTypes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	_, err := f.svc.Report(ctx, so, incidents.NewIncident{Type: "earthquake", Title: "机房进水", Description: "机房空调漏水", Grade: 3,
		Criterion: "minor_fault"})
	medguardtest.WantField(t, err, "type")
	for _, c := range []struct {
		in   incidents.NewIncident
		want string
	}{
		{incidents.NewIncident{Type: incidents.TypeMalware, Grade: 2, Criterion: "department_affected"}, incidents.TypeMalware},
		{incidents.NewIncident{Grade: 1, Criterion: "core_data_leak"}, incidents.TypeDataLeak},
		{incidents.NewIncident{Grade: 1, Criterion: "hospital_outage"}, incidents.TypeOutage},
		{incidents.NewIncident{Facts: &incidents.Facts{RecordsAffected: 1}}, incidents.TypeMisoperation},
		{incidents.NewIncident{Grade: 2, Criterion: "local_data_abnormal", Facts: &incidents.Facts{CoreDataLeaked: true}}, incidents.TypeDataLeak},
		{incidents.NewIncident{Grade: 3, Criterion: "minor_fault"}, incidents.TypeOther},
	} {
		if in := f.report(t, c.in); in.Type != c.want {
			t.Errorf("%+v: type %s, want %s", c.in, in.Type, c.want)
		}
	}
	// A device lost, found a data leak when the grade is confirmed: the
	// leak's cause analysis is then due.
	in := f.report(t, incidents.NewIncident{Type: incidents.TypeDeviceLoss, Grade: 2, Criterion: "local_data_abnormal"})
	if slices.ContainsFunc(in.Deadlines, func(d incidents.Deadline) bool { return d.Name == incidents.DeadlineLeakCauseAnalysis }) {
		t.Fatal("a device loss has no leak analysis deadline")
	}
	_, err = f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 2, Criterion: "local_data_abnormal", Type: "flood"})
	medguardtest.WantField(t, err, "type")
	in, err = f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 2, Criterion: "local_data_abnormal", Type: incidents.TypeDataLeak})
	if err != nil || in.Type != incidents.TypeDataLeak {
		t.Fatalf("%+v %v", in, err)
	}
	deadlineOf(t, in, incidents.DeadlineLeakCauseAnalysis)
	if !strings.HasPrefix(in.Timeline[1].Text, "数据泄露 · 二级") {
		t.Errorf("timeline %q", in.Timeline[1].Text)
	}
	frozen, err := f.svc.OpenForFreeze(ctx, "zhangwei", "01jd0000000000000000000007", "批量读取")
	if err != nil || frozen.Type != incidents.TypeUnauthorizedAccess {
		t.Fatalf("%+v %v", frozen, err)
	}
	if len(incidents.Types) != len(incidents.TypeCodes()) || !incidents.ValidType(incidents.TypeOther) {
		t.Error("types")
	}
}

// TestCommanderByGrade: grade 1 is commanded by the leadership, grade 2 by
// a security officer, grade 3 by IT or the department (or someone more
// senior); the commander is assigned when the grade is confirmed — who
// confirms, when they may command it — and changed with a reason, logged;
// the hooks hear of every assignment, and of every incident reported.
func TestCommanderByGrade(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	var reported, commanded []incidents.Incident
	f.svc.OnReported(func(_ context.Context, in incidents.Incident) { reported = append(reported, in) })
	f.svc.OnCommander(func(_ context.Context, in incidents.Incident) { commanded = append(commanded, in) })

	major := f.report(t, incidents.NewIncident{Grade: 1, Criterion: "core_data_leak"})
	if len(reported) != 1 || reported[0].ID != major.ID || reported[0].Title != "" || reported[0].Description != "" {
		t.Fatalf("reported %+v", reported)
	}
	confirm := func(id string, grade int, crit, commander string) (*incidents.Incident, error) {
		return f.svc.ConfirmGrade(ctx, so, id, incidents.GradeConfirmation{Grade: grade, Criterion: crit, Commander: commander})
	}
	for _, who := range []string{"", "zhouqiang", "sunli", "xuming", "nobody", "zhangwei", strings.Repeat("x", 80)} {
		_, err := confirm(major.ID, 1, "core_data_leak", who)
		medguardtest.WantField(t, err, "commander")
	}
	if len(commanded) != 0 {
		t.Fatal("told of a refused assignment")
	}
	in, err := confirm(major.ID, 1, "core_data_leak", f.calls["liuhua"].Actor.ID) // by id
	if err != nil || in.Commander != "liuhua" || in.CommanderAt == nil || !in.CommanderAt.Equal(*in.GradeConfirmedAt) {
		t.Fatalf("%+v %v", in, err)
	}
	if len(commanded) != 1 || commanded[0].Commander != "liuhua" || commanded[0].Title != "" {
		t.Fatalf("commanded %+v", commanded)
	}

	serious := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "department_affected"})
	if in, err = confirm(serious.ID, 2, "department_affected", ""); err != nil || in.Commander != "zhouqiang" {
		t.Fatalf("the confirming officer commands a grade 2: %+v %v", in, err)
	}
	ordinary := f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	if in, err = confirm(ordinary.ID, 3, "minor_fault", "xuming"); err != nil || in.Commander != "xuming" {
		t.Fatalf("IT commands a grade 3: %+v %v", in, err)
	}

	// Handing over: a reason, a commander the grade allows, not the same one.
	_, err = f.svc.ChangeCommander(ctx, so, ordinary.ID, incidents.CommanderChange{Commander: "sunli"})
	medguardtest.WantField(t, err, "reason")
	_, err = f.svc.ChangeCommander(ctx, so, ordinary.ID, incidents.CommanderChange{Commander: "xuming", Reason: "交接"})
	medguardtest.WantField(t, err, "commander")
	_, err = f.svc.ChangeCommander(ctx, so, serious.ID, incidents.CommanderChange{Commander: "xuming", Reason: "信息科接手"})
	medguardtest.WantField(t, err, "commander")
	unconfirmed := f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	_, err = f.svc.ChangeCommander(ctx, so, unconfirmed.ID, incidents.CommanderChange{Commander: "xuming", Reason: "x"})
	medguardtest.WantField(t, err, "grade")
	_, err = f.svc.ChangeCommander(ctx, f.calls["liuhua"], ordinary.ID, incidents.CommanderChange{Commander: "sunli", Reason: "x"})
	medguardtest.WantKind(t, err, medguard.Forbidden) // the leadership reads incidents; the office manages them
	f.clock.Advance(time.Hour)
	in, err = f.svc.ChangeCommander(ctx, so, ordinary.ID, incidents.CommanderChange{Commander: "sunli", Reason: "徐明休假，由孙丽接手"})
	if err != nil || in.Commander != "sunli" || !in.CommanderAt.Equal(f.clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("%+v %v", in, err)
	}
	last := in.Timeline[len(in.Timeline)-1]
	if last.Kind != "commander" || last.Text != "指挥 commander sunli：徐明休假，由孙丽接手" {
		t.Errorf("timeline %+v", last)
	}
	if n := len(commanded); n != 4 || commanded[3].Commander != "sunli" {
		t.Errorf("commanded %d times", n)
	}
	es := f.entries(t)
	if e := es[len(es)-1].Entry; e.Action != "incident.commander_change" || e.Actor != "zhouqiang" || e.TargetID != ordinary.ID {
		t.Errorf("last entry %+v", e)
	}
	// An incident opened by a freeze was announced by the freeze's alert.
	if _, err := f.svc.OpenForFreeze(ctx, "zhangwei", "01jd0000000000000000000008", ""); err != nil {
		t.Fatal(err)
	}
	if len(reported) != 4 {
		t.Errorf("%d incidents reported to the hooks, want 4", len(reported))
	}
}

// TestStepsConfirmedByASecondPerson: a handling step recorded by one
// officer is unconfirmed until another confirms it; the recorder cannot;
// progress is no step; the incident closes only with every step confirmed
// and every corrective action verified.
func TestStepsConfirmedByASecondPerson(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so, sunli := f.calls["zhouqiang"], f.calls["sunli"]
	in := f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	if _, err := f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 3, Criterion: "minor_fault"}); err != nil {
		t.Fatal(err)
	}
	in, err := f.svc.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress, Text: "正在排查"})
	if err != nil {
		t.Fatal(err)
	}
	progress := in.Timeline[len(in.Timeline)-1]
	in, err = f.svc.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: incidents.UpdateFixed, Text: "已更换打印机驱动"})
	if err != nil {
		t.Fatal(err)
	}
	fixed := in.Timeline[len(in.Timeline)-1]
	if !fixed.Step || fixed.ConfirmedAt != nil || progress.Step || in.UnconfirmedSteps != 1 {
		t.Fatalf("%+v %+v %d", fixed, progress, in.UnconfirmedSteps)
	}
	// The deadline is met when the step was done, confirmed or not.
	if d := deadlineOf(t, in, incidents.DeadlineFix); d.State != incidents.Met {
		t.Fatalf("%+v", d)
	}
	_, err = f.svc.Close(ctx, so, in.ID, "已修复")
	medguardtest.WantField(t, err, "steps")
	_, err = f.svc.ConfirmStep(ctx, so, in.ID, fixed.AuditIndex)
	if e := medguardtest.WantKind(t, err, medguard.Forbidden); e.Rule != "deny.own_step" {
		t.Fatalf("rule %s", e.Rule)
	}
	_, err = f.svc.ConfirmStep(ctx, sunli, in.ID, progress.AuditIndex)
	medguardtest.WantField(t, err, "step")
	_, err = f.svc.ConfirmStep(ctx, sunli, in.ID, 99999)
	medguardtest.WantKind(t, err, medguard.NotFound)
	_, err = f.svc.ConfirmStep(ctx, f.calls["wuyan"], in.ID, fixed.AuditIndex)
	medguardtest.WantKind(t, err, medguard.Forbidden) // an auditor reads incidents, manages none
	f.clock.Advance(10 * time.Minute)
	in, err = f.svc.ConfirmStep(ctx, sunli, in.ID, fixed.AuditIndex)
	if err != nil || in.UnconfirmedSteps != 0 {
		t.Fatalf("%+v %v", in, err)
	}
	for _, u := range in.Timeline {
		if u.AuditIndex == fixed.AuditIndex && (u.ConfirmedBy != "sunli" || !u.ConfirmedAt.Equal(f.clock.Now().Truncate(time.Millisecond))) {
			t.Errorf("step %+v", u)
		}
	}
	if last := in.Timeline[len(in.Timeline)-1]; last.Kind != "step_confirmed" || last.By != "sunli" || last.Step {
		t.Errorf("timeline %+v", last)
	}
	_, err = f.svc.ConfirmStep(ctx, f.calls["zhouqiang"], in.ID, fixed.AuditIndex)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	// The confirmer may not confirm twice either.
	_, err = f.svc.ConfirmStep(ctx, sunli, in.ID, fixed.AuditIndex)
	if e := medguardtest.WantKind(t, err, medguard.Conflict); e.Code != "step_confirmed" {
		t.Fatalf("code %s", e.Code)
	}
	// An action not verified keeps it open.
	a, err := f.svc.AddAction(ctx, so, in.ID, incidents.NewAction{Description: "更新打印机驱动", Owner: "ITD", DueAt: f.clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Close(ctx, so, in.ID, "已修复")
	medguardtest.WantField(t, err, "actions")
	if _, err := f.svc.SetActionState(ctx, sunli, in.ID, a.ID, incidents.ActionDone); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.SetActionState(ctx, sunli, in.ID, a.ID, incidents.ActionVerified)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	if _, err := f.svc.SetActionState(ctx, so, in.ID, a.ID, incidents.ActionVerified); err != nil {
		t.Fatal(err)
	}
	if in, err = f.svc.Close(ctx, so, in.ID, "已修复"); err != nil || in.Status != incidents.Closed {
		t.Fatalf("%+v %v", in, err)
	}
	seen := map[string]int{}
	for _, s := range f.entries(t) {
		if s.Entry.Action == "incident.step_confirm" {
			seen[s.Entry.Outcome]++
		}
	}
	if seen["success"] != 1 || seen["denied"] < 3 {
		t.Errorf("step confirmations in the log: %v", seen)
	}
	for _, q := range []string{`DELETE FROM incident_step_confirmations`, `UPDATE incident_step_confirmations SET confirmed_by = 'mallory'`} {
		if _, err := f.db.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: the database allowed it", q)
		}
	}
}

// minimal files of each kind the evidence accepts or refuses.
var (
	pngFile = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 64)...)
	pdfFile = []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	elfFile = append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...)
)

// TestEvidenceFiles: external files are sealed, their SHA-256 recorded
// beside them and on the timeline, limited in type and size, read by those
// who may read the incident (logged), and frozen.
func TestEvidenceFiles(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	in := f.report(t, incidents.NewIncident{Grade: 2, Criterion: "department_affected", Type: incidents.TypeMalware})
	excerpt := []byte("2026-11-23 08:59:12 防火墙日志：主机 10.20.3.7 向外部地址发起异常连接，疑似勒索病毒 LockBit 传播。患者王芳的检查单无法打印。\n")
	upload := func(kind, name, declared string, content []byte) func() (incidents.FileUpload, error) {
		return func() (incidents.FileUpload, error) {
			return incidents.FileUpload{Kind: kind, Filename: name, DeclaredType: declared, Content: content}, nil
		}
	}
	// Nobody without incident.manage makes the server read a body.
	_, err := f.svc.AttachFile(ctx, f.calls["liuhua"], in.ID, func() (incidents.FileUpload, error) {
		t.Fatal("the body was read for a refused caller")
		return incidents.FileUpload{}, nil
	})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	for _, c := range []struct {
		name string
		read func() (incidents.FileUpload, error)
		want string // field, or "413"
	}{
		{"a program", upload(incidents.FileOther, "tool.exe", "", elfFile), "file"},
		{"an empty file", upload(incidents.FileOther, "empty.txt", "", nil), "file"},
		{"a type it is not", upload(incidents.FileScreenshot, "shot.png", "application/pdf", pngFile), "file"},
		{"an unknown kind", upload("video", "x.txt", "", excerpt), "kind"},
		{"a path", upload(incidents.FileLogExcerpt, "../etc/passwd", "", excerpt), "filename"},
		{"text that is not UTF-8", upload(incidents.FileLogExcerpt, "gbk.log", "", []byte{0xc4, 0xe3, 0xba, 0xc3, 0x0a}), "file"},
		{"too large", upload(incidents.FileLogExcerpt, "huge.log", "", bytes.Repeat([]byte("a"), incidents.MaxEvidenceFile+1)), "413"},
	} {
		_, err := f.svc.AttachFile(ctx, so, in.ID, c.read)
		if c.want == "413" {
			medguardtest.WantKind(t, err, medguard.TooLarge)
			continue
		}
		if e, ok := err.(*medguard.Error); !ok || e.Field != c.want {
			t.Errorf("%s: %v, want the field %s", c.name, err, c.want)
		}
	}
	log, err := f.svc.AttachFile(ctx, so, in.ID, upload(incidents.FileLogExcerpt, "防火墙日志摘录.log", "text/x-log", excerpt))
	sum := sha256.Sum256(excerpt)
	if err != nil || log.SHA256 != hex.EncodeToString(sum[:]) || log.ContentType != "text/plain" || log.Size != int64(len(excerpt)) ||
		log.Kind != incidents.FileLogExcerpt || log.Filename != "防火墙日志摘录.log" {
		t.Fatalf("%+v %v", log, err)
	}
	shot, err := f.svc.AttachFile(ctx, so, in.ID, upload(incidents.FileScreenshot, "告警截图.png", "image/png", pngFile))
	if err != nil || shot.ContentType != "image/png" {
		t.Fatalf("%+v %v", shot, err)
	}
	if _, err := f.svc.AttachFile(ctx, so, in.ID, upload(incidents.FileVendorReport, "厂商分析报告.pdf", "", pdfFile)); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, in.ID)
	if len(got.Files) != 3 || got.Files[0].ID != log.ID || got.Files[0].AuditIndex == 0 {
		t.Fatalf("files %+v", got.Files)
	}
	if !slices.ContainsFunc(got.Timeline, func(u incidents.Update) bool {
		return u.Kind == "evidence_file" && strings.Contains(u.Text, "sha256:"+log.SHA256)
	}) {
		t.Errorf("the timeline does not name the file's hash: %+v", got.Timeline)
	}
	// Read back by those who read incidents: the leadership, an auditor.
	for _, who := range []string{"liuhua", "wuyan", "zhouqiang"} {
		meta, content, err := f.svc.GetFile(ctx, f.calls[who], in.ID, log.ID)
		if err != nil || !bytes.Equal(content, excerpt) || meta.SHA256 != log.SHA256 {
			t.Fatalf("%s: %+v %v", who, meta, err)
		}
	}
	_, _, err = f.svc.GetFile(ctx, f.calls["zhangwei"], in.ID, log.ID)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, _, err = f.svc.GetFile(ctx, so, in.ID, in.ID)
	medguardtest.WantKind(t, err, medguard.NotFound)
	_, _, err = f.svc.GetFile(ctx, so, "x", log.ID)
	medguardtest.WantKind(t, err, medguard.NotFound)
	reads := 0
	for _, s := range f.entries(t) {
		if s.Entry.Action == "incident.file_read" && s.Entry.Outcome == "success" && s.Entry.TargetID == in.ID {
			reads++
		}
	}
	if reads != 3 {
		t.Errorf("%d file reads logged, want 3", reads)
	}
	for _, q := range []string{`DELETE FROM incident_files`, `UPDATE incident_files SET sha256 = 'x'`} {
		if _, err := f.db.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: the database allowed it", q)
		}
	}
	// Sealed at rest: neither the name nor the content is in the files.
	if f.dir != "" {
		files, _ := filepath.Glob(filepath.Join(f.dir, "*"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			for _, secret := range []string{"LockBit", "王芳", "防火墙日志摘录"} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s holds %q in clear", filepath.Base(file), secret)
				}
			}
		}
	}
	// A closed incident takes no more.
	f.confirmSteps(t, got)
	if _, err := f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 2, Criterion: "department_affected"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetAnalysis(ctx, so, in.ID, rootCause); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Close(ctx, so, in.ID, "病毒已清除"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AttachFile(ctx, so, in.ID, upload(incidents.FileOther, "late.txt", "", []byte("迟到的证据")))
	medguardtest.WantKind(t, err, medguard.Conflict)
	if _, _, err := f.svc.GetFile(ctx, so, in.ID, shot.ID); err != nil {
		t.Errorf("a closed incident's file: %v", err)
	}
}

// TestCommanderReadsTheIncident: IT commanding a grade 3 reads it, its
// files and the list of what it commands, without incident.read; nothing
// else.
func TestCommanderReadsTheIncident(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so, it := f.calls["zhouqiang"], f.calls["xuming"]
	in := f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault", Type: incidents.TypeOutage})
	other := f.report(t, incidents.NewIncident{Grade: 3, Criterion: "minor_fault"})
	_, err := f.svc.Get(ctx, it, in.ID)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	if _, err := f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 3, Criterion: "minor_fault", Commander: "xuming"}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Get(ctx, it, in.ID)
	if err != nil || got.Commander != "xuming" {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = f.svc.Get(ctx, it, other.ID)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, err = f.svc.AddUpdate(ctx, it, in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress, Text: "x"})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	file, err := f.svc.AttachFile(ctx, so, in.ID, func() (incidents.FileUpload, error) {
		return incidents.FileUpload{Filename: "trace.txt", Content: []byte("打印服务日志")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.GetFile(ctx, it, in.ID, file.ID); err != nil {
		t.Fatal(err)
	}
	mine, err := f.svc.ListCommanded(ctx, it, "")
	if err != nil || len(mine) != 1 || mine[0].ID != in.ID {
		t.Fatalf("%+v %v", mine, err)
	}
	if _, _, err := f.svc.List(ctx, it, "", "", 10); !medguard.IsKind(err, medguard.Forbidden) {
		t.Errorf("IT lists every incident: %v", err)
	}
	es := f.entries(t)
	if e := es[len(es)-1].Entry; e.Action != "incident.list" || e.Rule != "deny.no_permission" {
		t.Errorf("%+v", e)
	}
	if e := es[len(es)-2].Entry; e.Rule != "allow.incident_commander" {
		t.Errorf("%+v", e)
	}
}
