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
	if pat.status != 200 || !strings.Contains(pat.body, h.patientName) || !strings.Contains(pat.body, `value="`+h.recordID+`"`) {
		t.Fatalf("patient page: %d %s", pat.status, pat.body)
	}
	rec := doc.post("/records/open", pat, url.Values{"record": {h.recordID}, "purpose": {"treatment"}})
	if rec.status != 200 || !strings.Contains(rec.body, "ST 段压低") || strings.Contains(rec.body, "glass-banner") {
		t.Fatalf("record: %d %s", rec.status, rec.body)
	}
	if got := doc.get("/records/" + h.recordID); got.status != 200 || !strings.Contains(got.body, "ST 段压低") {
		t.Fatalf("GET record: %d", got.status)
	}

	// A neurologist has no relation: the break-glass dialog, then the record with the banner.
	neuro := h.browser("en")
	neuro.signIn("lina", staffPassword)
	dlg := neuro.get("/records/" + h.recordID)
	if dlg.status != 403 || !strings.Contains(dlg.body, `id="glass-form"`) || strings.Contains(dlg.body, "ST 段压低") {
		t.Fatalf("break-glass dialog: %d %s", dlg.status, dlg.body)
	}
	if p := neuro.post("/records/open", dlg, url.Values{"record": {h.recordID}, "reason": {"  "}}); p.status != 422 {
		t.Fatalf("empty reason: %d", p.status)
	}
	glass := neuro.post("/records/open", dlg, url.Values{"record": {h.recordID}, "reason": {"急诊抢救，患者意识不清"}, "purpose": {"emergency"}})
	if glass.status != 200 || !strings.Contains(glass.body, "Emergency access — recorded and to be reviewed by the department head") ||
		!strings.Contains(glass.body, "ST 段压低") {
		t.Fatalf("break-glass read: %d %s", glass.status, glass.body)
	}
	// The patient page, too, offers the glass and then lists the records with the reason carried in the form.
	pdlg := neuro.get("/patients/" + h.patientID)
	if pdlg.status != 403 || !strings.Contains(pdlg.body, `action="/patients/`+h.patientID+`/break-glass"`) {
		t.Fatalf("patient dialog: %d", pdlg.status)
	}
	pg := neuro.post("/patients/"+h.patientID+"/break-glass", pdlg, url.Values{"reason": {"会诊需要"}})
	if pg.status != 200 || !strings.Contains(pg.body, `id="glass-banner"`) || !strings.Contains(pg.body, `name="reason" value="会诊需要"`) {
		t.Fatalf("patient break-glass: %d %s", pg.status, pg.body)
	}

	// The department head reviews the emergency access and approves the pending request.
	head := h.browser("zh-CN")
	hd := head.signIn("liuyang", staffPassword)
	if !strings.Contains(hd.body, `href="/approvals"`) || !strings.Contains(hd.body, `href="/break-glass"`) {
		t.Fatalf("head's nav: %s", hd.body)
	}
	q := head.get("/break-glass")
	if q.status != 200 || !strings.Contains(q.body, "lina 的紧急访问") || !strings.Contains(q.body, "急诊抢救，患者意识不清") {
		t.Fatalf("review queue: %d %s", q.status, q.body)
	}
	id := between(q.body, `action="/break-glass/`, `/review"`)
	if p := head.post("/break-glass/"+id+"/review", q, url.Values{"outcome": {"unjustified"}}); p.status != 422 {
		t.Fatalf("unjustified without a note: %d", p.status)
	}
	if p := head.post("/break-glass/"+id+"/review", q, url.Values{"outcome": {"justified"}, "note": {"确为急诊"}}); p.status != 200 ||
		p.url.Query().Get("m") != "reviewed" || !strings.Contains(p.body, "复核结果已记录") {
		t.Fatalf("review: %d %s", p.status, p.url)
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
