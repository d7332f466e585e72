package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFormsMustBeUTF8 posts forms whose names or values are not valid
// UTF-8 — signed in and at sign-in — and checks that each is refused with
// 400 before any handler runs, and that nothing was stored; a form too
// large is 413, one that does not parse 400, and the CSRF check still
// comes first.
func TestFormsMustBeUTF8(t *testing.T) {
	h := newHospital(t)
	b := h.browser("en")
	login := b.get("/login")
	if p := b.post("/login", login, url.Values{"username": {"admin\xff"}, "password": {adminPassword}}); p.status != 400 ||
		!strings.Contains(p.body, "not valid text (UTF-8)") {
		t.Fatalf("sign-in with invalid UTF-8: %d %s", p.status, p.body)
	}
	b.signIn("admin", adminPassword)
	depts := b.get("/admin/departments")
	for _, form := range []url.Values{
		{"code": {"ORTH"}, "name": {"骨\xff科"}},           // a stray byte
		{"code": {"ORTH"}, "name": {"\xb9\xc7\xbf\xc6"}}, // 骨科 in GBK
		{"code": {"ORTH"}, "name": {"骨\xe7\xa7"}},        // a character cut short
		{"code": {"ORTH"}, "name": {"\xed\xa0\x80"}},     // a UTF-16 surrogate
		{"code": {"ORTH"}, "name": {"骨科"}, "\xff": {"x"}},
	} {
		p := b.post("/admin/departments", depts, form)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "not valid text (UTF-8)") {
			t.Errorf("%q: %d", form.Encode(), p.status)
		}
	}
	// Without the token the CSRF refusal comes first.
	if p := b.post("/admin/departments", depts, url.Values{"code": {"ORTH"}, "name": {"\xff"}, "csrf_token": {""}}); p.status != 403 {
		t.Errorf("invalid UTF-8 without the token: %d", p.status)
	}
	// A form that does not parse, and one too large.
	tok := url.QueryEscape(csrfOf(depts.body))
	for _, c := range []struct {
		body string
		want int
	}{
		{"csrf_token=" + tok + "&code=ORTH&name=%zz", 400},
		{"csrf_token=" + tok + "&code=ORTH&name=" + strings.Repeat("x", 70<<10), 413},
	} {
		resp, err := b.c.Post(h.srv.URL+"/admin/departments", "application/x-www-form-urlencoded", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if p := read(resp); p.status != c.want {
			t.Errorf("%.60s…: %d, want %d", c.body, p.status, c.want)
		}
	}
	// Nothing was stored: only CARD and NEUR exist.
	if ds := h.api(200, "GET", "/api/v1/departments", h.admin, nil)["items"].([]any); len(ds) != 2 {
		t.Fatalf("departments: %v", ds)
	}
	// The same form in UTF-8 works.
	if p := b.post("/admin/departments", depts, url.Values{"code": {"ORTH"}, "name": {"骨科"}}); p.status != 200 ||
		!strings.Contains(p.body, "骨科") {
		t.Fatalf("department in UTF-8: %d", p.status)
	}
}
