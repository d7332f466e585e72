package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The data-use journeys (issue 12) in headless Chromium, over HTTPS
// against the real server, in Chinese: a neurologist with no relation to a
// cardiology patient is refused the record, asks for it through the
// record-use form (借阅申请), the records clerk approves it on the same
// page and the neurologist opens the record; the clerk registers the
// patient's paper folder and lends it to the neurologist, who signs with
// her name; a researcher asks for a de-identification job on /deid,
// medical affairs approves it in the approvals inbox, and the researcher
// sees the job done with its signed manifest — and, after switching the
// language, the same page in English.
func TestConsoleDataUseJourneys(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	chromium := chromiumPath(t)
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"MRD", "病案室"}, {"YWK", "医务科"}, {"RES", "科研处"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	ids := map[string]string{}
	for _, u := range [][4]string{{"zhangwei", "张建国", "CARD", "doctor"}, {"lina", "李娜", "NEUR", "doctor"},
		{"chenjing", "陈静", "MRD", "records_clerk"}, {"zhouli", "周丽", "YWK", "medical_affairs"}, {"zhaolei", "赵磊", "RES", "researcher"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	cardio := s.token("zhangwei", staffPassword)
	var patient, record string
	for i, p := range [][3]string{{"王秀英", "110105195803070025", "13700001111"}, {"李建华", "110101196205120036", "13911112222"}} {
		birth := p[1][6:10] + "-" + p[1][10:12] + "-" + p[1][12:14]
		pid := s.json(201, "POST", "/api/v1/patients", cardio, map[string]any{"name": p[0], "gender": []string{"female", "male"}[i],
			"birth_date": birth, "id_number": p[1], "phone": p[2], "address": "北京市东城区东四十条22号",
			"mrn": "MR2026010" + string(rune('1'+i))})["id"].(string)
		rid := s.json(201, "POST", "/api/v1/patients/"+pid+"/records", cardio, map[string]any{"type": "progress_note",
			"department": "CARD", "title": "病程记录", "text": "胸闷较前好转，继续阿司匹林抗血小板治疗。"})["id"].(string)
		if i == 0 {
			patient, record = pid, rid
		}
	}
	day := func(d int) string { return time.Now().Add(time.Duration(d) * 24 * time.Hour).Format("2006-01-02") }

	// The neurologist: refused (offered only the break-glass form), then
	// asks through the record-use form.
	doctor := openBrowser(t, s, chromium, "zh-CN", 1200, 4*time.Minute)
	doctor.signIn("lina", staffPassword)
	doctor.run("the record, unrelated", chromedp.Navigate(s.base+"/records/"+record), chromedp.WaitVisible(chromedp.ID("glass-h")))
	if h := doctor.get("refusal", chromedp.Text(chromedp.CSS("main"))); strings.Contains(h, "阿司匹林") || strings.Contains(h, "王秀英") {
		t.Fatalf("the record shown before any request: %q", h)
	}
	doctor.run("asking for the record",
		chromedp.Navigate(s.base+"/use-requests"),
		chromedp.WaitVisible(chromedp.ID("ask-form")),
		chromedp.SendKeys(chromedp.ID("patient_id"), patient),
		chromedp.SendKeys(chromedp.ID("record_ids"), record),
		chromedp.SetValue(chromedp.ID("purpose"), "care_coordination"),
		chromedp.SendKeys(chromedp.ID("reason"), "神经内科会诊需查阅心内科病程记录"),
		chromedp.SetValue(chromedp.ID("until"), day(7)),
		chromedp.Click(chromedp.ID("ask")),
		chromedp.WaitVisible(chromedp.ID("use-requests")),
	)
	mine := doctor.get("my requests", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"申请已提交，等待审批。", "待审批", "神经内科会诊需查阅心内科病程记录", record} {
		if !strings.Contains(mine, want) {
			t.Errorf("/use-requests?mine=true lacks %q: %q", want, mine)
		}
	}
	useID := strings.TrimSpace(doctor.get("request id", chromedp.Text(chromedp.CSS("#use-requests tbody tr td code"))))

	// The records clerk approves it in the console.
	clerk := openBrowser(t, s, chromium, "zh-CN", 1400, 4*time.Minute)
	clerk.signIn("chenjing", staffPassword)
	clerk.run("the requests", chromedp.Navigate(s.base+"/use-requests"), chromedp.WaitVisible(chromedp.ID("u-"+useID)))
	if row := clerk.get("the request's row", chromedp.Text(chromedp.ID("u-"+useID))); !strings.Contains(row, "lina") || !strings.Contains(row, "待审批") {
		t.Errorf("the clerk's row: %q", row)
	}
	clerk.run("approving",
		chromedp.SendKeys(chromedp.CSS("#u-"+useID+" form[action$='/approve'] input[name=note]"), "同意调阅"),
		chromedp.Click(chromedp.CSS("#u-"+useID+" form[action$='/approve'] button")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	)
	if row := clerk.get("after approving", chromedp.Text(chromedp.ID("u-"+useID))); !strings.Contains(row, "已批准") || !strings.Contains(row, "chenjing") {
		t.Errorf("the approved row: %q", row)
	}

	// The neurologist opens the approved record.
	doctor.run("the approved record", chromedp.Navigate(s.base+"/records/"+record), chromedp.WaitVisible(chromedp.ID("record-text")))
	if text := doctor.get("record text", chromedp.Text(chromedp.ID("record-text"))); !strings.Contains(text, "阿司匹林") {
		t.Errorf("the record's text: %q", text)
	}
	if h := doctor.get("record title", chromedp.Text(chromedp.ID("record-h"))); !strings.Contains(h, "病程记录") {
		t.Errorf("the record's title: %q", h)
	}

	// The clerk registers the paper folder and lends it; the borrower signs.
	clerk.run("registering a folder",
		chromedp.Navigate(s.base+"/folders"),
		chromedp.WaitVisible(chromedp.ID("register-form")),
		chromedp.SendKeys(chromedp.ID("barcode"), "BA2026000123"),
		chromedp.SendKeys(chromedp.ID("patient_id"), patient),
		chromedp.SendKeys(chromedp.ID("location"), "A区-03架-05层"),
		chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("folders")),
	)
	reg := clerk.get("registry", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"纸质病案已登记。", "BA2026000123", "A区-03架-05层", "在架"} {
		if !strings.Contains(reg, want) {
			t.Errorf("/folders after registering lacks %q: %q", want, reg)
		}
	}
	row, err := chromedp.Run(clerk.ctx, chromedp.AttributeValue(chromedp.CSS("#folders tbody tr"), "id"))
	if err != nil {
		t.Fatal(err)
	}
	folder := "#" + row.Value
	clerk.run("lending the folder",
		chromedp.SendKeys(chromedp.CSS(folder+" input[name=borrower_id]"), ids["lina"]),
		chromedp.SetValue(chromedp.CSS(folder+" select[name=purpose]"), "treatment"),
		chromedp.SetValue(chromedp.CSS(folder+" input[name=due_at]"), day(14)),
		chromedp.SendKeys(chromedp.CSS(folder+" input[name=signature]"), "李娜"),
		chromedp.Click(chromedp.CSS(folder+" form[action$='/lend'] button")),
		chromedp.WaitVisible(chromedp.CSS(folder+" form[action$='/return']")),
	)
	lent := clerk.get("the lent folder", chromedp.Text(chromedp.CSS(folder)))
	for _, want := range []string{"已借出", "lina", "签收", "李娜"} {
		if !strings.Contains(lent, want) {
			t.Errorf("the lent folder's row lacks %q: %q", want, lent)
		}
	}
	if flash := clerk.get("flash", chromedp.Text(chromedp.CSS("p.flash"))); !strings.Contains(flash, "已借出") {
		t.Errorf("the lending's message: %q", flash)
	}

	// A researcher asks for a de-identification job.
	researcher := openBrowser(t, s, chromium, "zh-CN", 1600, 4*time.Minute)
	researcher.signIn("zhaolei", staffPassword)
	researcher.run("asking for a job",
		chromedp.Navigate(s.base+"/deid"),
		chromedp.WaitVisible(chromedp.ID("ask-form")),
		chromedp.SetValue(chromedp.ID("purpose"), "research"),
		chromedp.SendKeys(chromedp.ID("reason"), "冠心病二级预防队列研究"),
		chromedp.SendKeys(chromedp.ID("department"), "CARD"),
		chromedp.SetValue(chromedp.ID("record_type"), "progress_note"),
		chromedp.SetValue(chromedp.ID("field_name"), "mask"),
		chromedp.SetValue(chromedp.ID("field_gender"), "keep"),
		chromedp.SetValue(chromedp.ID("field_text"), "scrub"),
		chromedp.Click(chromedp.ID("ask")),
		chromedp.WaitVisible(chromedp.ID("job")),
	)
	jobID := idOf(t, researcher.get("location", chromedp.Location()), "/deid/")
	asked := researcher.get("the job", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"任务已提交，等待医务科审批。", "待审批", "赵磊"} {
		if !strings.Contains(asked, want) {
			t.Errorf("/deid/%s after asking lacks %q: %q", jobID, want, asked)
		}
	}
	approvalID := strings.TrimSpace(researcher.get("the approval", chromedp.Text(chromedp.CSS("#job dd code"))))

	// Medical affairs approves it in the approvals inbox.
	affairs := openBrowser(t, s, chromium, "zh-CN", 1400, 4*time.Minute)
	affairs.signIn("zhouli", staffPassword)
	affairs.run("the inbox", chromedp.Navigate(s.base+"/approvals"), chromedp.WaitVisible(chromedp.ID("what-"+approvalID)))
	if what := affairs.get("the request", chromedp.Text(chromedp.ID("what-"+approvalID))); !strings.Contains(what, "脱敏任务") {
		t.Errorf("the inbox's request: %q", what)
	}
	affairs.run("approving the job",
		chromedp.SendKeys(chromedp.ID("note-"+approvalID), "伦理批件齐全，同意"),
		chromedp.Click(chromedp.CSS("form[action='/approvals/"+approvalID+"/approve'] button.approve")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	)
	if flash := affairs.get("flash", chromedp.Text(chromedp.CSS("p.flash"))); !strings.Contains(flash, "已批准") {
		t.Errorf("the approval's message: %q", flash)
	}

	// The researcher sees it done, with its manifest (the page is read
	// again until the worker beside the server has run it).
	var job string
	for i := 0; ; i++ {
		researcher.run("the job's page", chromedp.Navigate(s.base+"/deid/"+jobID), chromedp.WaitVisible(chromedp.ID("status")))
		job = researcher.get("status", chromedp.Text(chromedp.ID("status")))
		if strings.Contains(job, "已完成") || strings.Contains(job, "失败") {
			break
		}
		if i > 300 {
			t.Fatalf("the job never finished: %q\n%s", job, s.logs)
		}
		time.Sleep(100 * time.Millisecond) // waiting for the worker, not timing it
	}
	if !strings.Contains(job, "已完成") {
		t.Fatalf("the job: %q", job)
	}
	page := researcher.get("the done job", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"签名清单", "周丽", "下载"} {
		if !strings.Contains(page, want) {
			t.Errorf("/deid/%s lacks %q: %q", jobID, want, page)
		}
	}
	manifest := researcher.get("manifest", chromedp.Text(chromedp.ID("manifest")))
	for _, want := range []string{`"requested_by": "zhaolei"`, `"approved_by": "zhouli"`, `"patients_read": 2`, jobID} {
		if !strings.Contains(manifest, want) {
			t.Errorf("the manifest lacks %s: %s", want, manifest)
		}
	}
	for _, name := range []string{"王秀英", "李建华", "110105195803070025"} {
		if strings.Contains(page, name) {
			t.Errorf("the job's page shows %q", name)
		}
	}

	// The same page in English.
	researcher.run("the job in English", chromedp.Navigate(s.base+"/lang/en?next=/deid/"+jobID), chromedp.WaitVisible(chromedp.ID("manifest")))
	if en := researcher.get("in English", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(en, "Done") || !strings.Contains(en, "Signed manifest") {
		t.Errorf("/deid/%s in English: %q", jobID, en)
	}
}
