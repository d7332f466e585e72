package cli_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestInputRefusedOverHTTPS sends the real server, over HTTPS, the input an
// attack found accepted: record contents in invalid UTF-8 and with a field
// named twice; a sign-in form in invalid UTF-8; the language switch with a
// next= that a browser reads as another site; and /static/ asked for its
// listing. Each is refused and nothing is stored.
func TestInputRefusedOverHTTPS(t *testing.T) {
	s := start(t)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	s.staff("zhangwei", "张建国", "CARD", "doctor", "Xinnei#Ke2026")
	doc, _ := s.enrol("zhangwei", "Xinnei#Ke2026")
	pid := s.json(201, "POST", "/api/v1/patients", doc, map[string]any{"name": "张伟", "gender": "female"})["id"].(string)
	records := "/api/v1/patients/" + pid + "/records"

	for _, c := range []struct{ body, detail string }{
		{"{\"type\":\"admission_note\",\"department\":\"CARD\",\"title\":\"入院记录\",\"text\":\"患者\xd5\xc5\xce\xb0胸闷\"}",
			"the body is not valid UTF-8"},
		{`{"type":"admission_note","department":"CARD","title":"入院记录","text":"患者胸闷","fields":{"诊断":"冠心病","诊断":"心绞痛"}}`,
			"a key is duplicated"},
		{`{"type":"admission_note","department":"CARD","title":"入院记录","text":"患者胸闷","fields":{"diagnosis":"冠心病","diagnos\u0069s":"心绞痛"}}`,
			`the key "diagnosis" appears twice`},
		{`{"type":"admission_note","department":"CARD","title":"入院记录","text":"患者胸闷","title":"出院记录"}`,
			`the key "title" appears twice`},
	} {
		p := s.problem(400, "POST", records, doc, []byte(c.body))
		detail, _ := p["detail"].(string)
		if !strings.Contains(detail, c.detail) || strings.ContainsAny(detail, "患者胸闷诊断冠心病心绞痛入院出院") {
			t.Errorf("%q: %v", c.body, p)
		}
	}
	p := s.problem(415, "POST", records, doc, []byte(`{"type":"admission_note","department":"CARD","title":"入院记录","text":"患者胸闷"}`),
		"Content-Type", "application/json; charset=gbk")
	if !strings.Contains(p["detail"].(string), `"gbk"`) {
		t.Errorf("charset: %v", p)
	}
	if items := s.json(200, "GET", records, doc, nil)["items"].([]any); len(items) != 0 {
		t.Fatalf("a refused record was stored: %v", items)
	}
	// The same record, in good form, is stored as sent.
	rid := s.json(201, "POST", records, doc, map[string]any{"type": "admission_note", "department": "CARD", "title": "入院记录",
		"text": "患者张伟胸闷", "fields": map[string]string{"诊断": "冠心病"}})["id"].(string)
	if r := s.json(200, "GET", "/api/v1/records/"+rid, doc, nil, "X-Purpose-Of-Use", "treatment"); r["text"] != "患者张伟胸闷" {
		t.Fatalf("record %v", r)
	}

	// The console, as a browser without redirects followed.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: s.client.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, http.Header, string) {
		t.Helper()
		resp, err := browser.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	base, _ := url.Parse(s.base)
	for _, next := range []string{
		"%2F%09%2F" + base.Host + "%2Fx", // "/\t/host/x": Chromium drops the tab and goes to //host/x
		"%2F%0A%2Fevil.example", "%2F%5Cevil.example", "%2F%2Fevil.example", "https%3A%2F%2Fevil.example%2F",
	} {
		st, h, _ := get("/lang/en?next=" + next)
		loc, err := base.Parse(h.Get("Location"))
		if st != http.StatusSeeOther || err != nil || h.Get("Location") != "/" || loc.Host != base.Host {
			t.Errorf("next=%s: %d to %q", next, st, h.Get("Location"))
		}
	}
	if st, h, _ := get("/lang/zh-CN?next=%2Fpatients%2Fsearch"); st != http.StatusSeeOther || h.Get("Location") != "/patients/search" {
		t.Errorf("a local next: %d to %q", st, h.Get("Location"))
	}
	for _, path := range []string{"/static/", "/static/./"} {
		st, _, body := get(path)
		if st == http.StatusMovedPermanently || st == http.StatusTemporaryRedirect {
			st, _, body = get("/static/")
		}
		if st != 404 || strings.Contains(body, `href="console.css"`) {
			t.Errorf("%s: %d", path, st)
		}
	}
	if st, h, _ := get("/static/console.css"); st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/css") {
		t.Errorf("console.css: %d %s", st, h.Get("Content-Type"))
	}
	// A sign-in form in invalid UTF-8 (the username in GBK) is refused.
	_, _, login := get("/login")
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(login)
	if m == nil {
		t.Fatal("no CSRF token on /login")
	}
	resp, err := browser.PostForm(s.base+"/login", url.Values{"csrf_token": {m[1]}, "username": {"\xd5\xc5\xce\xb0"}, "password": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("sign-in form in GBK: %d", resp.StatusCode)
	}
}
