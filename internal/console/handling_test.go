package console_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// postFile submits a multipart form with one file, the CSRF token taken
// from the page given.
func (b *browser) postFile(path string, from page, fields url.Values, name, contentType string, content []byte) page {
	b.h.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("csrf_token", csrfOf(from.body))
	for k, vs := range fields {
		for _, v := range vs {
			w.WriteField(k, v)
		}
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	hdr.Set("Content-Type", contentType)
	part, _ := w.CreatePart(hdr)
	part.Write(content)
	w.Close()
	req, _ := http.NewRequest("POST", b.h.srv.URL+path, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return read(resp)
}

var stepButton = regexp.MustCompile(`id="confirm-step-(\d+)"`)

// TestIncidentHandlingPages: the type and commander on the page and the
// list; the grade confirmed with a named commander, handed over with a
// reason; a step recorded by one officer and confirmed by another, who
// alone sees the button; an evidence file uploaded and downloaded with
// its SHA-256.
func TestIncidentHandlingPages(t *testing.T) {
	h, _ := securityHospital(t)
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)
	form := b.get("/incidents/new")
	if !strings.Contains(form.body, `id="i-type"`) || !strings.Contains(form.body, "勒索病毒/恶意代码") {
		t.Fatalf("the report form lacks the types")
	}
	rep := b.post("/incidents", form, url.Values{"title": {"放射科工作站文件被加密"}, "description": {"疑似勒索病毒，文件扩展名变为 .locked。"},
		"type": {"malware"}, "grade": {"2"}, "criterion": {"department_affected"}})
	if rep.status != 200 || !strings.Contains(rep.body, "勒索病毒/恶意代码") || !strings.Contains(rep.body, "确认等级时指定") {
		t.Fatalf("report: %d %s", rep.status, between(rep.body, `class="facts"`, `</dl>`))
	}
	id := strings.TrimPrefix(rep.url.Path, "/incidents/")
	// A grade 1 needs the leadership: the officer is refused, with the reason.
	p := b.post("/incidents/"+id+"/grade", rep, url.Values{"grade": {"1"}, "criterion": {"majority_departments"}})
	if p.status != 422 || !strings.Contains(p.body, "一级由领导小组") {
		t.Fatalf("grade 1 without a commander: %d", p.status)
	}
	p = b.post("/incidents/"+id+"/grade", rep, url.Values{"grade": {"2"}, "criterion": {"department_affected"}})
	if p.status != 200 || !strings.Contains(between(p.body, `id="incident-commander"`, `</dd>`), "周强") || !strings.Contains(p.body, `id="commander-form"`) {
		t.Fatalf("grade: %d %s", p.status, between(p.body, `class="facts"`, `</dl>`))
	}
	// Handed over to the security administrator, with a reason.
	if q := b.post("/incidents/"+id+"/commander", p, url.Values{"commander": {"security"}}); q.status != 422 || !strings.Contains(q.body, "请填写交接原因") {
		t.Fatalf("no reason: %d", q.status)
	}
	p = b.post("/incidents/"+id+"/commander", p, url.Values{"commander": {"security"}, "reason": {"周强外出培训"}})
	if p.status != 200 || !strings.Contains(p.body, "已更换应急指挥") || !strings.Contains(between(p.body, `id="incident-commander"`, `</dd>`), "安全管理员") {
		t.Fatalf("handover: %d", p.status)
	}
	// The officer records the meeting; only another officer may confirm it.
	p = b.post("/incidents/"+id+"/updates", p, url.Values{"kind": {"meeting_held"}, "text": {"信息科、放射科召开应急会议"}})
	if p.status != 200 || !strings.Contains(p.body, "待第二人复核确认") || stepButton.MatchString(p.body) {
		t.Fatalf("step: %d %s", p.status, between(p.body, `id="timeline"`, `</section>`))
	}
	sec := h.browser("zh-CN")
	sec.signIn("security", securityPassword)
	sp := sec.get("/incidents/" + id)
	m := stepButton.FindStringSubmatch(sp.body)
	if m == nil {
		t.Fatalf("no confirmation for the second officer: %s", between(sp.body, `id="timeline"`, `</section>`))
	}
	if q := b.post("/incidents/"+id+"/steps/"+m[1]+"/confirm", p, nil); q.status != 403 || !strings.Contains(q.body, "deny.own_step") {
		t.Fatalf("own confirmation: %d", q.status)
	}
	sp = sec.post("/incidents/"+id+"/steps/"+m[1]+"/confirm", sp, nil)
	if sp.status != 200 || !strings.Contains(sp.body, "步骤已复核确认") || !strings.Contains(sp.body, "已由 安全管理员 复核确认") {
		t.Fatalf("confirmation: %d %s", sp.status, between(sp.body, `id="timeline"`, `</section>`))
	}

	// An evidence file: uploaded, listed with its hash, downloaded.
	p = b.get("/incidents/" + id)
	log := []byte("09:12 终端防护：检测到批量写入 .locked 文件\n")
	up := b.postFile("/incidents/"+id+"/files", p, url.Values{"kind": {"log_excerpt"}}, "防护日志.txt", "text/plain", log)
	if up.status != 200 || !strings.Contains(up.body, "证据文件已上传") || !strings.Contains(up.body, "防护日志.txt") ||
		!strings.Contains(up.body, "日志摘录") {
		t.Fatalf("upload: %d %s", up.status, up.body)
	}
	bad := b.postFile("/incidents/"+id+"/files", up, url.Values{"kind": {"other"}}, "tool.exe", "application/octet-stream",
		append([]byte("\x7fELF"), make([]byte, 40)...))
	if bad.status != 422 || !strings.Contains(bad.body, "内容与类型相符") {
		t.Fatalf("a program: %d", bad.status)
	}
	href := regexp.MustCompile(`href="(/incidents/[^/]+/files/[^"]+)" download`).FindStringSubmatch(up.body)
	if href == nil {
		t.Fatal("no download link")
	}
	resp, err := b.c.Get(h.srv.URL + href[1])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, log) || !strings.Contains(up.body, resp.Header.Get("X-Content-SHA256")) {
		t.Fatalf("download: %d %q", resp.StatusCode, got)
	}
	// The list shows the type and the commander.
	l := b.get("/incidents?status=all")
	row := between(l.body, `href="/incidents/`+id+`"`, `</tr>`)
	if !strings.Contains(row, "勒索病毒/恶意代码") || !strings.Contains(row, "安全管理员") {
		t.Errorf("list row: %s", row)
	}
}

// TestAnonymousReportPages: a doctor signed in to the console reports from
// the channel's page, which reads no session (the doctor's name is nowhere
// in the answer nor in the server's log of it); the receipt code shows the
// office's answer; the office triages in its own pages.
func TestAnonymousReportPages(t *testing.T) {
	h, _ := securityHospital(t)
	if l := h.browser("zh-CN").get("/login"); !strings.Contains(l.body, `href="/anonymous/report"`) {
		t.Fatal("the sign-in page does not lead to the channel")
	}
	doc := h.browser("zh-CN")
	home := doc.signIn("zhangwei", staffPassword)
	if !strings.Contains(home.body, `href="/anonymous/report"`) {
		t.Fatal("no link in the navigation")
	}
	before := h.logs.String()
	form := doc.get("/anonymous/report")
	if form.status != 200 || strings.Contains(form.body, "张伟") || strings.Contains(form.body, `action="/logout"`) ||
		!strings.Contains(form.body, `href="/anonymous/lang/en?next=`) {
		t.Fatalf("the form knows who asks, or leads out of the channel: %d", form.status)
	}
	if en := doc.get("/anonymous/lang/en?next=/anonymous/report"); en.status != 200 || !strings.Contains(en.body, "Report a suspected violation") {
		t.Fatalf("the language switch: %d", en.status)
	}
	doc.get("/lang/zh-CN?next=/")
	form = doc.get("/anonymous/report")
	if p := doc.post("/anonymous/report", form, url.Values{"category": {"unauthorized_access"}}); p.status != 422 ||
		!strings.Contains(p.body, "请填写举报内容") {
		t.Fatalf("empty report: %d", p.status)
	}
	filed := doc.post("/anonymous/report", form, url.Values{"category": {"account_sharing"},
		"text": {"心内科有医生把自己的账号借给实习生查阅病历。"}})
	code := between(filed.body, `id="receipt-code">`, `</strong>`)
	if filed.status != 200 || len(code) != 24 || strings.Contains(filed.body, "张伟") {
		t.Fatalf("receipt: %d %q", filed.status, code)
	}
	if strings.Contains(filed.url.String(), code) {
		t.Error("the code is in the URL")
	}
	logged := strings.TrimPrefix(h.logs.String(), before)
	for _, line := range strings.Split(logged, "\n") {
		if strings.Contains(line, "anonymous") || strings.Contains(line, "/anonymous/") {
			if strings.Contains(line, "zhangwei") || strings.Contains(line, `"ip"`) || strings.Contains(line, "request_id") {
				t.Errorf("the log names the reporter: %s", line)
			}
		}
	}

	// The office answers; the reporter reads it with the code.
	aud := h.browser("zh-CN")
	aud.signIn("sunli", staffPassword)
	list := aud.get("/anonymous-reports")
	link := regexp.MustCompile(`href="(/anonymous-reports/[0-9a-z]+)"`).FindStringSubmatch(list.body)
	if list.status != 200 || link == nil || !strings.Contains(list.body, "借用或共享账号") {
		t.Fatalf("list: %d", list.status)
	}
	rp := aud.get(link[1])
	if msgs := between(rp.body, `id="report-messages"`, `</ol>`); !strings.Contains(msgs, "把自己的账号借给实习生") || strings.Contains(msgs, "张伟") {
		t.Fatalf("report: %s", rp.body)
	}
	rp = aud.post(link[1]+"/reply", rp, url.Values{"text": {"请问是哪一天？"}})
	if rp.status != 200 || !strings.Contains(rp.body, "答复已发送") {
		t.Fatalf("reply: %d", rp.status)
	}
	anon := h.browser("en")
	ff := anon.get("/anonymous/follow-up")
	if q := anon.post("/anonymous/follow-up", ff, url.Values{"receipt": {"AAAA-BBBB-CCCC-DDDD-EEEE"}}); q.status != 422 ||
		!strings.Contains(q.body, "No report has this receipt code") {
		t.Fatalf("unknown code: %d", q.status)
	}
	view := anon.post("/anonymous/follow-up", ff, url.Values{"receipt": {strings.ToLower(code)}})
	if view.status != 200 || !strings.Contains(view.body, "请问是哪一天？") || strings.Contains(view.body, "孙丽") ||
		!strings.Contains(view.body, "In review") {
		t.Fatalf("follow-up: %d %s", view.status, view.body)
	}
	added := anon.post("/anonymous/follow-up/add", view, url.Values{"receipt": {code}, "text": {"上周三夜班。"}})
	if added.status != 200 || !strings.Contains(added.body, "Your information was added") || !strings.Contains(added.body, "上周三夜班") {
		t.Fatalf("add: %d", added.status)
	}
	// The doctor may not triage.
	if p := doc.get("/anonymous-reports"); p.status != 403 {
		t.Errorf("a doctor lists reports: %d", p.status)
	}
	// Converted into a case by the auditor (accountability.manage), named
	// from the directory.
	rp = aud.get(link[1])
	cs := aud.post(link[1]+"/case", rp, url.Values{"subject": {"wangli"}, "criterion": {"procedure_not_followed"}})
	if cs.status != 200 || !strings.HasPrefix(cs.url.Path, "/accountability/") || !strings.Contains(cs.body, "From an anonymous report") &&
		!strings.Contains(cs.body, "据匿名举报") {
		t.Fatalf("to a case: %d %s", cs.status, cs.url)
	}
}

// TestCommanderPages: IT commanding a grade 3 finds it under 我指挥的事件
// and reads it, with no form to change it; other incidents stay closed.
func TestCommanderPages(t *testing.T) {
	h, _ := securityHospital(t)
	out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": "xuming", "display_name": "徐明",
		"roles": []string{"it_engineer"}, "password": staffPassword})
	h.api(200, "POST", "/api/v1/approvals/"+out["pending_approvals"].([]any)[0].(map[string]any)["id"].(string)+"/approve", h.security,
		map[string]string{"note": "同意"})
	so := h.enrolAPI("zhouqiang")
	id := h.api(201, "POST", "/api/v1/incidents", so, map[string]any{"title": "门诊叫号屏黑屏", "description": "门诊二楼叫号屏无显示",
		"grade": 3, "criterion": "minor_fault", "type": "outage"})["id"].(string)
	other := h.api(201, "POST", "/api/v1/incidents", so, map[string]any{"title": "打印机卡纸", "description": "病案室打印机卡纸",
		"grade": 3, "criterion": "minor_fault"})["id"].(string)
	h.api(200, "POST", "/api/v1/incidents/"+id+"/grade", so, map[string]any{"grade": 3, "criterion": "minor_fault", "commander": "xuming"})
	b := h.browser("zh-CN")
	home := b.signIn("xuming", staffPassword)
	if !strings.Contains(home.body, `href="/incidents/commanded"`) || strings.Contains(home.body, `href="/incidents"`) {
		t.Fatalf("IT's navigation: %s", between(home.body, `class="nav"`, `</nav>`))
	}
	l := b.get("/incidents/commanded")
	if l.status != 200 || !strings.Contains(l.body, "门诊叫号屏黑屏") || strings.Contains(l.body, "打印机卡纸") {
		t.Fatalf("commanded: %d", l.status)
	}
	p := b.get("/incidents/" + id)
	if p.status != 200 || !strings.Contains(p.body, "门诊二楼叫号屏无显示") || strings.Contains(p.body, `method="post" action="/incidents/`) {
		t.Fatalf("the incident: %d", p.status)
	}
	if p := b.get("/incidents/" + other); p.status != 403 {
		t.Errorf("another incident: %d", p.status)
	}
}
