package console_test

import (
	"net/url"
	"strings"
	"testing"
)

// wantHeaders are the security headers every console page carries.
var wantHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
	"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
	"X-Frame-Options":           "DENY",
	"X-Content-Type-Options":    "nosniff",
	"Referrer-Policy":           "no-referrer",
	"Cache-Control":             "no-store",
}

// TestSecurityHeaders checks the headers and cookie flags on every page,
// signed in and not, errors included; and that the API keeps its own.
func TestSecurityHeaders(t *testing.T) {
	h := newHospital(t)
	b := h.browser("zh-CN")
	check := func(name string, p page) {
		t.Helper()
		for k, v := range wantHeaders {
			if got := p.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || strings.Contains(p.body, "javascript:") {
			t.Errorf("%s: inline script or style", name)
		}
	}
	check("/login", b.get("/login"))
	check("/nowhere", b.get("/nowhere"))
	resp, err := b.c.PostForm(h.srv.URL+"/login", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	check("POST /login without token", read(resp))
	dash := b.signIn("liuyang", staffPassword)
	check("/", dash)
	for _, path := range []string{"/patients/search", "/patients/" + h.patientID, "/records/" + h.recordID, "/approvals", "/break-glass",
		"/approvals?status=all", "/break-glass?status=all&after=zzz"} {
		p := b.get(path)
		if p.status != 200 {
			t.Errorf("%s: %d", path, p.status)
		}
		check(path, p)
	}
	// The session cookie's flags (the jar hides them: read Set-Cookie).
	raw, err := b.c.PostForm(h.srv.URL+"/login", url.Values{"username": {"zhangwei"}, "password": {staffPassword}, "csrf_token": {csrfOf(b.get("/login").body)}})
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	var setCookie string
	for r := raw; r != nil; r = r.Request.Response {
		if v := r.Header.Values("Set-Cookie"); len(v) > 0 {
			setCookie = strings.Join(v, "\n")
		}
	}
	for _, want := range []string{"__Host-mg_session=mgs_", "HttpOnly", "Secure", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session cookie %q lacks %s", setCookie, want)
		}
	}
	// Static files: the style sheet and the script, from 'self'.
	if p := b.get("/static/console.css"); p.status != 200 || !strings.Contains(p.header.Get("Content-Type"), "text/css") {
		t.Errorf("console.css: %d %s", p.status, p.header.Get("Content-Type"))
	}
	// The API keeps its headers and problem answers.
	if p := b.get("/api/v1/nowhere"); p.status != 404 || !strings.Contains(p.header.Get("Content-Type"), "problem+json") ||
		p.header.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("API 404: %d %s", p.status, p.header.Get("Content-Type"))
	}
	if p := b.get("/healthz"); p.status != 200 || !strings.Contains(p.body, `"ok"`) {
		t.Errorf("/healthz: %d", p.status)
	}
}

// TestCSRF checks that every POST needs the form's token: before sign-in
// (double submit) and after (bound to the session).
func TestCSRF(t *testing.T) {
	h := newHospital(t)
	b := h.browser("en")
	login := b.get("/login")
	if p := b.post("/login", login, url.Values{"username": {"admin"}, "password": {adminPassword}, "csrf_token": {""}}); p.status != 403 ||
		!strings.Contains(p.body, "deny.csrf") {
		t.Fatalf("sign-in without a token: %d", p.status)
	}
	if p := b.post("/login", login, url.Values{"username": {"admin"}, "password": {adminPassword}, "csrf_token": {"forged"}}); p.status != 403 {
		t.Fatalf("sign-in with a forged token: %d", p.status)
	}
	dash := b.signIn("liuyang", staffPassword)
	form := b.get("/patients/search")
	for _, tc := range []struct{ path, token string }{
		{"/patients/search", ""},
		{"/patients/search", "forged"},
		{"/patients/search", csrfOf(login.body)}, // the pre-session token is no good for a session
		{"/approvals/" + h.approvalID + "/approve", ""},
		{"/logout", ""},
		{"/records/open", ""},
	} {
		p := b.post(tc.path, dash, url.Values{"id_number": {h.idNum}, "record": {h.recordID}, "csrf_token": {tc.token}})
		if p.status != 403 || strings.Contains(p.body, h.patientName) {
			t.Errorf("POST %s with token %q: %d", tc.path, tc.token, p.status)
		}
	}
	// The approval did not happen; with the token, the search works.
	if a := h.api(200, "GET", "/api/v1/approvals/"+h.approvalID, h.enrolAPI("lina"), nil); a["status"] != "pending" {
		t.Fatalf("approval %v", a)
	}
	if p := b.post("/patients/search", form, url.Values{"id_number": {h.idNum}}); p.status != 200 {
		t.Fatalf("search with the token: %d", p.status)
	}
	// Another session's token is refused.
	other := h.browser("en")
	h.clock.Advance(30e9)
	od := other.signIn("liuyang", staffPassword)
	if p := b.post("/patients/search", od, url.Values{"id_number": {h.idNum}}); p.status != 403 {
		t.Fatalf("another session's token: %d", p.status)
	}
}

// TestNoPatientDataInURLsTitlesOrLogs follows a search and a record read
// and checks every URL requested, every page title and the server's logs.
func TestNoPatientDataInURLsTitlesOrLogs(t *testing.T) {
	h := newHospital(t)
	b := h.browser("zh-CN")
	b.signIn("zhangwei", staffPassword)
	secrets := []string{h.patientName, h.idNum, "13800138000", "BA2026000123", "欧阳", "胸闷", "心内科病程记录",
		url.QueryEscape(h.patientName), url.QueryEscape(h.idNum)}
	var pages []page
	form := b.get("/patients/search")
	pages = append(pages, form)
	for _, field := range []url.Values{{"id_number": {h.idNum}}, {"phone": {"13800138000"}}, {"mrn": {"BA2026000123"}}, {"name": {h.patientName}}} {
		p := b.post("/patients/search", form, field)
		if !strings.Contains(p.body, h.patientID) {
			t.Errorf("search by %v found nothing", field)
		}
		pages = append(pages, p)
	}
	pat := b.get("/patients/" + h.patientID)
	rec := b.post("/records/open", pat, url.Values{"record": {h.recordID}})
	if !strings.Contains(rec.body, "胸闷") {
		t.Fatalf("record not shown")
	}
	pages = append(pages, pat, rec, b.get("/records/"+h.recordID))
	for _, p := range pages {
		title := titleOf(p.body)
		if title == "" {
			t.Errorf("%s: no title", p.url)
		}
		for _, s := range secrets {
			if strings.Contains(title, s) {
				t.Errorf("title %q of %s holds patient data", title, p.url)
			}
		}
	}
	if got := titleOf(rec.body); got != "病历 · medguard 病案安全管理" {
		t.Errorf("record page title %q", got)
	}
	for _, u := range b.visited {
		for _, s := range secrets {
			if strings.Contains(u, s) {
				t.Errorf("URL %s holds patient data", u)
			}
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"route":"console: `) {
		t.Fatal("no console access log")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold %q", s)
		}
	}
}
