package console_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestDeepLinkSurvivesSignIn: a record's address opened without a session
// leads to sign-in and, after the password, the enrolment of the second
// factor and later a sign-in with the code, back to the record; a next
// that leaves the site is dropped.
func TestDeepLinkSurvivesSignIn(t *testing.T) {
	h := newHospital(t)
	link := "/records/" + h.recordID + "?purpose=treatment"
	b := h.browser("zh-CN")
	p := b.get(link)
	if p.url.Path != "/login" || p.url.Query().Get("next") != link || !strings.Contains(p.body, `name="next" value="/records/`+h.recordID) {
		t.Fatalf("deep link went to %s", p.url)
	}
	// First sign-in: the password, then the enrolment, then the record.
	enrol := b.post("/login", p, url.Values{"username": {"zhangwei"}, "password": {staffPassword}, "next": {link}})
	if enrol.url.Path != "/login/totp" || enrol.url.Query().Get("next") != link || !strings.Contains(enrol.body, `name="next"`) {
		t.Fatalf("enrolment at %s", enrol.url)
	}
	m := secretPattern.FindStringSubmatch(enrol.body)
	if m == nil {
		t.Fatalf("no secret: %s", enrol.body)
	}
	h.secrets["zhangwei"] = m[1]
	code, _ := totp.GenerateCode(m[1], h.clock.Now())
	rec := b.post("/login/totp", enrol, url.Values{"code": {code}, "next": {link}, "otpauth": {between(enrol.body, `name="otpauth" value="`, `"`)}})
	if rec.status != 200 || rec.url.Path != "/records/"+h.recordID || rec.url.Query().Get("purpose") != "treatment" ||
		!strings.Contains(rec.body, "ST 段压低") || !strings.Contains(rec.body, "身份验证器已绑定") {
		t.Fatalf("after enrolment: %d %s", rec.status, rec.url)
	}
	// Signed out (the session idles out), the link again: sign-in with the code goes back.
	h.clock.Advance(16 * time.Minute)
	p = b.get(link)
	if p.url.Path != "/login" || p.url.Query().Get("m") != "expired" || p.url.Query().Get("next") != link {
		t.Fatalf("expired: %s", p.url)
	}
	h.clock.Advance(30 * time.Second)
	code, _ = totp.GenerateCode(m[1], h.clock.Now())
	rec = b.post("/login", p, url.Values{"username": {"zhangwei"}, "password": {staffPassword}, "totp": {code}, "next": {link}})
	if rec.status != 200 || rec.url.RequestURI() != link || !strings.Contains(rec.body, "ST 段压低") {
		t.Fatalf("after sign-in: %d %s", rec.status, rec.url)
	}
	// Signed in, /login?next= goes straight there; a next off the site or
	// to the sign-in pages is dropped.
	if p := b.get("/login?next=" + url.QueryEscape(link)); p.url.RequestURI() != link {
		t.Fatalf("signed in: %s", p.url)
	}
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "/login/totp", "/logout"} {
		if p := b.get("/login?next=" + url.QueryEscape(next)); p.url.Path != "/" || p.url.Host != strings.TrimPrefix(h.srv.URL, "https://") {
			t.Errorf("next %q went to %s", next, p.url)
		}
	}
	// A POST is not a link to come back to.
	anon := h.browser("zh-CN")
	if p := anon.post("/patients/search", anon.get("/login"), url.Values{"name": {h.patientName}}); p.url.Query().Has("next") {
		t.Errorf("POST kept as next: %s", p.url)
	}
}

// TestRecordPageFieldsInClinicalOrder: structured fields read as a
// clinician reads a note, the classification is 数据分级, and the
// patient's records are newest first with a type filter.
func TestRecordPageFieldsInClinicalOrder(t *testing.T) {
	h := newHospital(t)
	h.clock.Advance(time.Hour)
	clerk := h.enrolAPI("wangli")
	newer := h.api(201, "POST", "/api/v1/patients/"+h.patientID+"/records", clerk, map[string]any{"type": "admission_note",
		"department": "CARD", "title": "入院记录", "text": "患者胸闷三天。",
		"fields": map[string]string{"诊断": "不稳定型心绞痛", "主诉": "胸闷三天", "血压": "150/95 mmHg", "处理": "阿司匹林",
			"既往史": "高血压十年", "体格检查": "心率 88 次/分", "现病史": "活动后加重", "辅助检查": "心电图 ST 段压低", "备注": "无"}})["id"].(string)
	b := h.browser("zh-CN")
	b.signIn("zhangwei", staffPassword)
	rec := b.get("/records/" + newer)
	var order []int
	for _, f := range []string{"主诉", "现病史", "既往史", "体格检查", "血压", "辅助检查", "诊断", "处理", "备注"} {
		order = append(order, strings.Index(rec.body, "<dt>"+f+"</dt>"))
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] < 0 || order[i] <= order[i-1] {
			t.Fatalf("fields out of clinical order %v: %s", order, rec.body)
		}
	}
	if !strings.Contains(rec.body, "<dt>数据分级</dt>") || strings.Contains(rec.body, "密级") {
		t.Errorf("classification is not 数据分级")
	}
	pat := b.get("/patients/" + h.patientID)
	if i, j := strings.Index(pat.body, "/records/"+newer), strings.Index(pat.body, "/records/"+h.recordID); i < 0 || j < 0 || i > j {
		t.Fatalf("not newest first: %d %d", i, j)
	}
	only := b.get("/patients/" + h.patientID + "?type=progress_note")
	if strings.Contains(only.body, "/records/"+newer) || !strings.Contains(only.body, "/records/"+h.recordID) ||
		!strings.Contains(only.body, `<option value="progress_note" selected>`) {
		t.Fatalf("type filter: %s", only.body)
	}
}

// TestReadingPagesSpeakChinese renders the pages of finding and reading
// patients and of break-glass in zh-CN — search results, the patient and
// record pages, the break-glass form and banners, the review queue with an
// error and after review — and finds no raw identifier (the crawler's
// patterns) and no department code.
func TestReadingPagesSpeakChinese(t *testing.T) {
	h := newHospital(t)
	doc := h.browser("zh-CN")
	doc.signIn("zhangwei", staffPassword)
	form := doc.get("/patients/search")
	pages := map[string]page{
		"search":  doc.post("/patients/search", form, url.Values{"name": {h.patientName}}),
		"patient": doc.get("/patients/" + h.patientID),
		"record":  doc.get("/records/" + h.recordID),
	}
	neuro := h.browser("zh-CN")
	neuro.signIn("lina", staffPassword)
	dlg := neuro.get("/patients/" + h.patientID)
	pages["break-glass form"] = dlg
	pages["break-glass error"] = neuro.post("/patients/"+h.patientID+"/break-glass", dlg, url.Values{"reason": {""}, "purpose": {"emergency"}})
	pages["patient in the window"] = neuro.post("/patients/"+h.patientID+"/break-glass", dlg,
		url.Values{"reason": {"急诊抢救"}, "purpose": {"emergency"}})
	pages["record in the window"] = neuro.get("/records/" + h.recordID + "?purpose=emergency")
	head := h.browser("zh-CN")
	head.signIn("liuyang", staffPassword)
	q := head.get("/break-glass")
	pages["queue"] = q
	id := between(q.body, `formaction="/break-glass/`, `/review"`)
	pages["queue with an error"] = head.post("/break-glass/"+id+"/review", q, url.Values{"outcome-" + id: {"unjustified"}})
	head.post("/break-glass/"+id+"/review", q, url.Values{"outcome-" + id: {"unjustified"}, "note-" + id: {"理由不充分"}})
	pages["reviewed"] = head.get("/break-glass?status=reviewed")
	if !strings.Contains(pages["reviewed"].body, "理由不充分") || !strings.Contains(pages["reviewed"].body, "不合理") {
		t.Fatalf("reviewed: %s", pages["reviewed"].body)
	}
	codes := regexp.MustCompile(`\b(?:CARD|NEUR)\b`)
	for name, p := range pages {
		if p.status >= 500 || !strings.Contains(p.body, `<html lang="zh-CN">`) {
			t.Errorf("%s: %d", name, p.status)
			continue
		}
		text := allowedWords.ReplaceAllString(visibleText(p.body), " ")
		for _, r := range rawIdentifier {
			for _, m := range r.pattern.FindAllString(text, -1) {
				t.Errorf("%s: %s %q", name, r.what, m)
			}
		}
		for _, m := range codes.FindAllString(text, -1) {
			t.Errorf("%s: a department code %q", name, m)
		}
	}
}
