package incidents_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/incidents"
	"medguard/internal/medguardtest"
)

var receiptShape = regexp.MustCompile(`^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){4}$`)

// TestAnonymousChannel: a report is filed with nobody's name, followed up
// and added to with its receipt code only; the security office reads it,
// answers (the answer reaches the reporter without the officer's name),
// converts it or closes it, each step logged under the officer's name.
func TestAnonymousChannel(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	so, wuyan := f.calls["zhouqiang"], f.calls["wuyan"]
	if err := f.svc.PrepareAnonymousChannel(ctx); err != nil {
		t.Fatal(err)
	}
	var notices []incidents.AnonymousNotice
	f.svc.OnAnonymousReport(func(_ context.Context, n incidents.AnonymousNotice) { notices = append(notices, n) })
	f.clock.Set(time.Date(2026, 11, 23, 16, 30, 0, 0, time.UTC)) // 00:30 on the 24th in Beijing

	for _, c := range []struct {
		in    incidents.NewAnonymousReport
		field string
	}{
		{incidents.NewAnonymousReport{Category: "gossip", Text: "有人偷看病历"}, "category"},
		{incidents.NewAnonymousReport{Category: incidents.ReportUnauthorizedAccess, Text: "  "}, "text"},
		{incidents.NewAnonymousReport{Category: incidents.ReportUnauthorizedAccess, Text: strings.Repeat("长", incidents.MaxReportText+1)}, "text"},
	} {
		_, err := f.svc.FileAnonymous(ctx, c.in)
		medguardtest.WantField(t, err, c.field)
	}
	words := "心内科张伟医生多次在夜班时查阅神经内科患者王芳的病历，与诊疗无关。"
	rc, err := f.svc.FileAnonymous(ctx, incidents.NewAnonymousReport{Category: incidents.ReportUnauthorizedAccess, Text: words})
	if err != nil || !receiptShape.MatchString(rc.Receipt) || rc.FiledOn != "2026-11-24" || rc.Status != incidents.ReportNew {
		t.Fatalf("%+v %v", rc, err)
	}
	if len(notices) != 1 || notices[0] != (incidents.AnonymousNotice{Day: "2026-11-24", Filed: true}) {
		t.Fatalf("notices %+v", notices)
	}
	// The log shows the channel used, by nobody, for no report.
	es := f.entries(t)
	filed := es[len(es)-1].Entry
	if filed.Action != "anonymous_report.file" || filed.Actor != "anonymous" || filed.IP != "" || filed.RequestID != "" ||
		filed.TargetID != "" || len(filed.ActorRoles) != 0 || filed.ActorDepartment != "" || filed.Outcome != "success" {
		t.Fatalf("%+v", filed)
	}

	// Followed up with the code as a person types it.
	typed := strings.ToLower(strings.ReplaceAll(rc.Receipt, "-", " "))
	v, err := f.svc.ReceiptStatus(ctx, typed)
	if err != nil || v.Status != incidents.ReportNew || len(v.Messages) != 1 || v.Messages[0].Text != words ||
		v.Messages[0].Author != incidents.AuthorReporter || v.Messages[0].On != "2026-11-24" {
		t.Fatalf("%+v %v", v, err)
	}
	_, err = f.svc.ReceiptStatus(ctx, "AAAA-BBBB-CCCC-DDDD-EEEE")
	medguardtest.WantKind(t, err, medguard.NotFound)
	_, err = f.svc.ReceiptStatus(ctx, "not a code")
	medguardtest.WantField(t, err, "receipt")
	f.clock.Advance(26 * time.Hour)
	v, err = f.svc.AddToReport(ctx, rc.Receipt, "补充：时间是11月20日和22日凌晨。")
	if err != nil || len(v.Messages) != 2 || v.UpdatedOn != "2026-11-25" {
		t.Fatalf("%+v %v", v, err)
	}

	// The office triages.
	list, _, err := f.svc.ListReports(ctx, so, "", "", 10)
	if err != nil || len(list) != 1 || list[0].MessageCount != 2 || list[0].Messages != nil || list[0].FiledOn != "2026-11-24" {
		t.Fatalf("%+v %v", list, err)
	}
	id := list[0].ID
	if !strings.HasPrefix(id, "000000000") || !medguard.ValidID(id) {
		t.Errorf("the id %s carries a time", id)
	}
	_, _, err = f.svc.ListReports(ctx, f.calls["zhangwei"], "", "", 10)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, _, err = f.svc.ListReports(ctx, so, "pending", "", 10)
	medguardtest.WantField(t, err, "status")
	r, err := f.svc.ReplyReport(ctx, so, id, "请问涉及哪几次查阅？如方便请补充病区床号。")
	if err != nil || r.Status != incidents.ReportInReview || r.Messages[2].By != "zhouqiang" || r.Messages[2].Author != incidents.AuthorOffice {
		t.Fatalf("%+v %v", r, err)
	}
	if len(notices) != 2 || notices[1] != (incidents.AnonymousNotice{Day: "2026-11-24"}) {
		t.Fatalf("notices %+v", notices)
	}
	v, _ = f.svc.ReceiptStatus(ctx, rc.Receipt)
	if v.Status != incidents.ReportInReview || v.Messages[2].By != "" || v.Messages[2].Text != "请问涉及哪几次查阅？如方便请补充病区床号。" {
		t.Fatalf("%+v", v)
	}

	// Converted into a case: that takes accountability.manage as well.
	_, err = f.svc.ReportToCase(ctx, so, id, incidents.NewCase{SubjectUserID: f.calls["zhangwei"].Actor.ID, Criterion: "unauthorized_queries"})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	c, err := f.svc.ReportToCase(ctx, wuyan, id, incidents.NewCase{SubjectUserID: f.calls["zhangwei"].Actor.ID, Criterion: "unauthorized_queries"})
	if err != nil || c.Summary != "据匿名举报 From an anonymous report: "+words || c.OpenedBy != "wuyan" {
		t.Fatalf("%+v %v", c, err)
	}
	r, err = f.svc.GetReport(ctx, wuyan, id)
	if err != nil || r.Status != incidents.ReportConverted || r.CaseID != c.ID {
		t.Fatalf("%+v %v", r, err)
	}
	_, err = f.svc.ReplyReport(ctx, so, id, "已转立案")
	medguardtest.WantKind(t, err, medguard.Conflict)

	// A second report, converted into an incident: that takes
	// incident.manage; the incident names the report.
	rc2, err := f.svc.FileAnonymous(ctx, incidents.NewAnonymousReport{Category: incidents.ReportDataLeak, Text: "有人把出院病人的名单拍照发到了微信群。"})
	if err != nil {
		t.Fatal(err)
	}
	list, _, _ = f.svc.ListReports(ctx, so, incidents.ReportNew, "", 10)
	if len(list) != 1 {
		t.Fatalf("%+v", list)
	}
	id2 := list[0].ID
	_, err = f.svc.ReportToIncident(ctx, wuyan, id2, incidents.NewIncident{Title: "患者名单外泄", Grade: 2, Criterion: "local_data_abnormal"})
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, err = f.svc.ReportToIncident(ctx, so, id2, incidents.NewIncident{Grade: 2, Criterion: "local_data_abnormal"})
	medguardtest.WantField(t, err, "title")
	var reported []string
	f.svc.OnReported(func(_ context.Context, in incidents.Incident) { reported = append(reported, in.ID) })
	in, err := f.svc.ReportToIncident(ctx, so, id2, incidents.NewIncident{Title: "患者名单外泄", Type: incidents.TypeDataLeak, Grade: 2,
		Criterion: "local_data_abnormal"})
	if err != nil || in.Source != incidents.SourceAnonymous || in.ReportID != id2 || in.Description != "有人把出院病人的名单拍照发到了微信群。" ||
		len(reported) != 1 || reported[0] != in.ID {
		t.Fatalf("%+v %v", in, err)
	}
	v, _ = f.svc.ReceiptStatus(ctx, rc2.Receipt)
	if v.Status != incidents.ReportConverted {
		t.Errorf("%+v", v)
	}

	// A third, closed: the reporter reads why, and can add nothing more.
	rc3, _ := f.svc.FileAnonymous(ctx, incidents.NewAnonymousReport{Category: incidents.ReportOther, Text: "食堂饭菜太咸。"})
	list, _, _ = f.svc.ListReports(ctx, so, incidents.ReportNew, "", 10)
	_, err = f.svc.CloseReport(ctx, so, list[0].ID, "")
	medguardtest.WantField(t, err, "reason")
	if _, err := f.svc.CloseReport(ctx, so, list[0].ID, "与信息安全无关，已转后勤处。"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AddToReport(ctx, rc3.Receipt, "还有")
	medguardtest.WantKind(t, err, medguard.Conflict)
	_, err = f.svc.GetReport(ctx, so, "x")
	medguardtest.WantKind(t, err, medguard.NotFound)

	// The office's steps are logged under its members' names; the
	// channel's, as anonymous, for no report.
	seen := map[string]string{}
	for _, s := range f.entries(t) {
		if strings.HasPrefix(s.Entry.Action, "anonymous_report.") && s.Entry.Outcome == "success" {
			seen[s.Entry.Action] = s.Entry.Actor
			if s.Entry.Actor == "anonymous" && (s.Entry.TargetID != "" || s.Entry.IP != "" || s.Entry.RequestID != "") {
				t.Errorf("%+v", s.Entry)
			}
		}
	}
	for action, actor := range map[string]string{"anonymous_report.file": "anonymous", "anonymous_report.status": "anonymous",
		"anonymous_report.add": "anonymous", "anonymous_report.list": "zhouqiang", "anonymous_report.reply": "zhouqiang",
		"anonymous_report.convert": "zhouqiang", "anonymous_report.read": "wuyan", "anonymous_report.close": "zhouqiang"} {
		if seen[action] != actor {
			t.Errorf("%s by %q, want %q", action, seen[action], actor)
		}
	}
	for _, q := range []string{`DELETE FROM anonymous_reports`, `DELETE FROM anonymous_report_messages`,
		`UPDATE anonymous_report_messages SET author = 'office'`} {
		if _, err := f.db.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: the database allowed it", q)
		}
	}
	// At rest: no receipt code, no words in clear, no time of day.
	if f.dir != "" {
		files, _ := filepath.Glob(filepath.Join(f.dir, "*"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			for _, secret := range []string{rc.Receipt, strings.ReplaceAll(rc.Receipt, "-", ""), "夜班", "微信群", "病区床号"} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s holds %q", filepath.Base(file), secret)
				}
			}
		}
	}
	var cols []string
	rows, err := f.db.QueryContext(ctx, `SELECT * FROM anonymous_reports WHERE id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := rows.Columns()
	rows.Close()
	cols = append(cols, names...)
	for _, c := range cols {
		if strings.Contains(c, "user") || c == "ip" || strings.Contains(c, "address") || strings.Contains(c, "session") ||
			strings.Contains(c, "agent") || strings.HasSuffix(c, "_at") {
			t.Errorf("anonymous_reports has a column %s", c)
		}
	}
}

// TestAnonymousChannelLimit: the channel is bounded for everyone at once,
// not per reporter (it cannot tell them apart).
func TestAnonymousChannelLimit(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	in := incidents.NewAnonymousReport{Category: incidents.ReportOther, Text: "测试"}
	n := 0
	for ; n < 100; n++ {
		if _, err := f.svc.FileAnonymous(ctx, in); err != nil {
			medguardtest.WantKind(t, err, medguard.RateLimited)
			break
		}
	}
	if n != 20 {
		t.Fatalf("%d reports before the limit, want 20", n)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.svc.FileAnonymous(ctx, in); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
	es := f.entries(t)
	if e := es[len(es)-2].Entry; e.Action != "anonymous_report.file" || e.Outcome != "rate_limited" || e.Actor != "anonymous" {
		t.Errorf("the refusal is not logged: %+v", e)
	}
}
