package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestConsoleFlow walks the console as staff use it: a doctor enrols TOTP
// and signs in, finds a patient by POST and opens a record; a doctor of
// another department breaks the glass; the department head reviews it and
// approves a pending request; sessions time out.
func TestConsoleFlow(t *testing.T) {
	h := newHospital(t)

	// The dashboard at / needs a session.
	anon := h.browser("zh-CN")
	if p := anon.get("/"); p.url.Path != "/login" || p.url.Query().Get("m") != "signin_required" || !strings.Contains(p.body, "请先登录") {
		t.Fatalf("anonymous / went to %s", p.url)
	}

	doc := h.browser("zh-CN")
	dash := doc.signIn("zhangwei", staffPassword)
	if !strings.Contains(dash.body, "身份验证器已绑定") {
		t.Fatalf("no enrolment message on the dashboard")
	}
	// The nav shows what a doctor may use: patients, and the approvals
	// page, where a doctor follows their own requests (access grants) but
	// decides nothing.
	if !strings.Contains(dash.body, `href="/patients/search"`) || !strings.Contains(dash.body, `href="/approvals"`) {
		t.Fatalf("doctor's nav: %s", dash.body)
	}
	if p := doc.get("/approvals"); p.status != 200 || strings.Contains(p.body, `/approve"`) {
		t.Fatalf("doctor /approvals: %d", p.status)
	}
	if p := doc.post("/approvals/"+h.approvalID+"/approve", doc.get("/approvals"), url.Values{"note": {"x"}}); p.status != 403 {
		t.Fatalf("a doctor approved: %d", p.status)
	}

	// Search by POST, by 身份证号.
	form := doc.get("/patients/search")
	if !strings.Contains(form.body, `method="post" action="/patients/search"`) {
		t.Fatal("the search form is not a POST")
	}
	res := doc.post("/patients/search", form, url.Values{"id_number": {h.idNum}})
	if res.status != 200 || !strings.Contains(res.body, `href="/patients/`+h.patientID+`"`) || !strings.Contains(res.body, "欧***") {
		t.Fatalf("search: %d %s", res.status, res.body)
	}
	if p := doc.post("/patients/search", form, url.Values{"id_number": {h.idNum}, "name": {h.patientName}}); p.status != 422 ||
		!strings.Contains(p.body, "请只填写一个查询条件") {
		t.Fatalf("two fields: %d", p.status)
	}
	pat := doc.get("/patients/" + h.patientID)
	if pat.status != 200 || !strings.Contains(pat.body, h.patientName) || !strings.Contains(pat.body, `id="patient-banner"`) ||
		!strings.Contains(pat.body, `href="/records/`+h.recordID+`?purpose=treatment"`) {
		t.Fatalf("patient page: %d %s", pat.status, pat.body)
	}
	// A record opens by GET: bookmarkable, with the patient banner.
	rec := doc.get("/records/" + h.recordID + "?purpose=treatment")
	if rec.status != 200 || !strings.Contains(rec.body, "ST 段压低") || strings.Contains(rec.body, "glass-banner") ||
		!strings.Contains(rec.body, "BA2026000123") || !strings.Contains(rec.body, "数据分级") {
		t.Fatalf("record: %d %s", rec.status, rec.body)
	}
	// The old form answers with the record's page.
	if p := doc.post("/records/open", pat, url.Values{"record": {h.recordID}, "purpose": {"treatment"}}); p.status != 200 ||
		p.url.Path != "/records/"+h.recordID || p.url.Query().Get("purpose") != "treatment" || !strings.Contains(p.body, "ST 段压低") {
		t.Fatalf("POST /records/open: %d %s", p.status, p.url)
	}

	// A neurologist has no relation: the break-glass form names the
	// patient about to be opened, then the record with the banner.
	neuro := h.browser("en")
	neuro.signIn("lina", staffPassword)
	dlg := neuro.get("/records/" + h.recordID)
	if dlg.status != 403 || !strings.Contains(dlg.body, `id="glass-form"`) || strings.Contains(dlg.body, "ST 段压低") ||
		!strings.Contains(dlg.body, "欧***") || !strings.Contains(dlg.body, "…0123") || !strings.Contains(dlg.body, "76 y") ||
		strings.Contains(dlg.body, h.patientName) {
		t.Fatalf("break-glass dialog: %d %s", dlg.status, dlg.body)
	}
	if p := neuro.post("/records/"+h.recordID+"/break-glass", dlg, url.Values{"reason": {"  "}, "purpose": {"emergency"}}); p.status != 422 ||
		!strings.Contains(p.body, `id="reason-error"`) {
		t.Fatalf("empty reason: %d", p.status)
	}
	glass := neuro.post("/records/"+h.recordID+"/break-glass", dlg, url.Values{"reason": {"急诊抢救，患者意识不清"}, "purpose": {"emergency"}})
	if glass.status != 200 || glass.url.Path != "/records/"+h.recordID || glass.url.Query().Get("purpose") != "emergency" ||
		!strings.Contains(glass.body, "Emergency access — recorded and to be reviewed by the department head") ||
		!strings.Contains(glass.body, "ST 段压低") || !strings.Contains(glass.body, "30 min left") {
		t.Fatalf("break-glass read: %d %s", glass.status, glass.body)
	}
	// In the window the patient page opens too, and a reload reads again without asking.
	back := neuro.get("/patients/" + h.patientID + "?purpose=emergency")
	if back.status != 200 || !strings.Contains(back.body, `id="glass-banner"`) || !strings.Contains(back.body, h.patientName) {
		t.Fatalf("patient page in the window: %d %s", back.status, back.body)
	}
	if again := neuro.get("/records/" + h.recordID + "?purpose=emergency"); again.status != 200 {
		t.Fatalf("reload: %d", again.status)
	}

	// The department head sees one item naming the patient and the record read.
	head := h.browser("zh-CN")
	hd := head.signIn("liuyang", staffPassword)
	if !strings.Contains(hd.body, `href="/approvals"`) || !strings.Contains(hd.body, `href="/break-glass"`) {
		t.Fatalf("head's nav: %s", hd.body)
	}
	q := head.get("/break-glass")
	if q.status != 200 || strings.Count(q.body, `formaction="/break-glass/`) != 1 || !strings.Contains(q.body, "李娜（神经内科）的紧急访问") ||
		!strings.Contains(q.body, "急诊抢救，患者意识不清") || !strings.Contains(q.body, h.patientName) ||
		!strings.Contains(q.body, "BA2026000123") || strings.Count(q.body, "心内科病程记录 欧阳娜娜") != 2 ||
		strings.Contains(q.body, " checked") {
		t.Fatalf("review queue: %d %s", q.status, q.body)
	}
	id := between(q.body, `formaction="/break-glass/`, `/review"`)
	if p := head.post("/break-glass/"+id+"/review", q, url.Values{"note-" + id: {"先看看"}}); p.status != 422 ||
		!strings.Contains(p.body, "请选择复核结论") || !strings.Contains(p.body, ">先看看</textarea>") {
		t.Fatalf("no outcome: %d %s", p.status, p.body)
	}
	if p := head.post("/break-glass/"+id+"/review", q, url.Values{"outcome-" + id: {"unjustified"}}); p.status != 422 ||
		!strings.Contains(p.body, `id="error-`+id+`"`) || !strings.Contains(p.body, `value="unjustified" checked`) {
		t.Fatalf("unjustified without a note: %d %s", p.status, p.body)
	}
	if p := head.post("/break-glass/"+id+"/review", q, url.Values{"outcome-" + id: {"justified"}, "note-" + id: {"确为急诊"}}); p.status != 200 ||
		p.url.Query().Get("m") != "reviewed" || !strings.Contains(p.body, "复核结果已记录") {
		t.Fatalf("review: %d %s", p.status, p.url)
	}
	// The reviewed window is closed: the patient page asks again, and a
	// declaration there opens a new window and goes back to the page.
	pdlg := neuro.get("/patients/" + h.patientID)
	if pdlg.status != 403 || !strings.Contains(pdlg.body, `action="/patients/`+h.patientID+`/break-glass"`) {
		t.Fatalf("patient dialog: %d", pdlg.status)
	}
	pg := neuro.post("/patients/"+h.patientID+"/break-glass", pdlg, url.Values{"reason": {"会诊需要"}, "purpose": {"care_coordination"}})
	if pg.status != 200 || pg.url.Path != "/patients/"+h.patientID || !strings.Contains(pg.body, `id="glass-banner"`) ||
		!strings.Contains(pg.body, `href="/records/`+h.recordID+`?purpose=care_coordination"`) {
		t.Fatalf("patient break-glass: %d %s", pg.status, pg.body)
	}
	inbox := head.get("/approvals")
	if !strings.Contains(inbox.body, `action="/approvals/`+h.approvalID+`/approve"`) || !strings.Contains(inbox.body, "临时访问授权") {
		t.Fatalf("inbox: %s", inbox.body)
	}
	if p := head.post("/approvals/"+h.approvalID+"/approve", inbox, url.Values{"note": {"同意"}}); p.status != 200 ||
		!strings.Contains(p.body, "已批准") {
		t.Fatalf("approve: %d %s", p.status, p.body)
	}
	// The grant is in force: the neurologist reads cardiology's record.
	h.api(200, "GET", "/api/v1/records/"+h.recordID, h.enrolAPI("lina"), nil)

	// The security officer's dashboard shows the posture and the charts.
	so := h.browser("en")
	sd := so.signIn("zhouqiang", staffPassword)
	for _, want := range []string{"Audit log entries", "latest checkpoint signature verified", "Open alerts", "Open incidents",
		"Record reads per hour", "<svg", "Pending approvals", "Break-glass reviews overdue"} {
		if !strings.Contains(sd.body, want) {
			t.Errorf("security officer's dashboard lacks %q", want)
		}
	}

	// Sign-out ends the session.
	out := doc.post("/logout", rec, nil)
	if out.url.Path != "/login" || !strings.Contains(out.body, "您已安全退出") {
		t.Fatalf("logout: %s", out.url)
	}
	if p := doc.get("/patients/search"); p.url.Path != "/login" {
		t.Fatalf("after logout: %s", p.url)
	}

	// Idle sessions end: a clear message on the sign-in page.
	h.clock.Advance(16 * time.Minute)
	if p := head.get("/approvals"); p.url.Path != "/login" || p.url.Query().Get("m") != "expired" || !strings.Contains(p.body, "会话已超时") {
		t.Fatalf("idle: %s %s", p.url, p.body)
	}

	// A frozen account gets the 423 page.
	fz := h.browser("zh-CN")
	fz.signIn("lina", staffPassword) // lina's next code: a new step
	if _, _, err := h.app.Identity.FreezeAccount(context.Background(), "lina", "test", "", ""); err != nil {
		t.Fatal(err)
	}
	if p := fz.get("/"); p.status != http.StatusLocked || !strings.Contains(p.body, `id="frozen"`) {
		t.Fatalf("frozen: %d %s", p.status, p.body)
	}
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

func anyStrings(v any) []string {
	var out []string
	xs, _ := v.([]any)
	for _, x := range xs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
