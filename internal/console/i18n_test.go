package console

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"medguard/internal/policy"
)

// TestCatalogParity checks that every message exists in both languages,
// and that the codes the templates name through helpers have texts.
func TestCatalogParity(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if m := cat.missing(); len(m) > 0 {
		t.Fatalf("keys missing from a language:\n%s", strings.Join(m, "\n"))
	}
	var want []string
	for _, p := range policy.Purposes {
		want = append(want, "purpose."+p)
	}
	for _, r := range []string{policy.RuleNoPermission, policy.RuleNoRelation, policy.RuleRestrictedType, policy.RuleBreakGlassDenied,
		policy.RuleBreakGlassReadOnly, policy.RuleWriteOtherDept, policy.RuleOwnRequest, policy.RuleOwnElevation, policy.RuleInactive} {
		want = append(want, "rule."+r)
	}
	for _, c := range policy.Classifications {
		want = append(want, "class."+c)
	}
	for _, s := range []int{400, 403, 404, 409, 413, 422, 423, 429, 500} {
		want = append(want, "error.title."+strconv.Itoa(s))
	}
	for _, p := range pages {
		if p.Nav != nil {
			want = append(want, p.Nav.Key)
		}
	}
	for _, k := range want {
		if err := cat.check(k); err != nil {
			t.Error(err)
		}
	}
	for lang, msgs := range cat.msgs {
		for k, v := range msgs {
			if strings.TrimSpace(v) == "" {
				t.Errorf("%s: %s is empty", lang, k)
			}
		}
	}
}

// TestTemplatesUseKnownKeys checks the startup check itself: the templates
// parse, name keys that exist, and a missing key is caught.
func TestTemplatesUseKnownKeys(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	v, err := loadViews(cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	login, err := v.page("en", "login")
	if err != nil || login == nil {
		t.Fatalf("login page: %v", err)
	}
	n := 0
	for _, tt := range login.Templates() {
		if tt.Tree != nil {
			n += len(usedKeys(tt.Tree.Root))
		}
	}
	if n < 5 {
		t.Fatalf("found only %d keys in the login page: the check is blind", n)
	}
	// Each page gets the partial files it calls, and those they call.
	if files := v.files["login"]; slices.Contains(files, "templates/_clinical.html") || slices.Contains(files, "templates/_grid.html") {
		t.Errorf("the login page is parsed with partials it does not call: %v", files)
	}
	for page, files := range v.files {
		if !slices.Contains(files, layoutFile) || files[len(files)-1] != "templates/"+page+".html" {
			t.Errorf("%s is parsed without the layout: %v", page, files)
		}
	}
	// Every page builds in every language (the start parsed each file on
	// its own; a page is put together on its first render).
	for page := range v.files {
		for _, lang := range Languages {
			if p, err := v.page(lang, page); p == nil || err != nil {
				t.Errorf("%s in %s: %v", page, lang, err)
			}
		}
	}
	if p, err := v.page("zh", "no-such-page"); p != nil || err != nil {
		t.Errorf("a page that does not exist: %v, %v", p, err)
	}
	delete(cat.msgs["en"], "login.username")
	if _, err := loadViews(cat, nil, nil); err == nil || !strings.Contains(err.Error(), "login.username") {
		t.Fatalf("a missing key was not caught: %v", err)
	}
}

// TestLanguage checks the choice by Accept-Language, the lang cookie and
// the switch.
func TestLanguage(t *testing.T) {
	c, err := build(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ accept, cookie, want, text string }{
		{"", "", "zh-CN", "登录"},
		{"en-US,en;q=0.9", "", "en", "Sign in"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "", "zh-CN", "用户名"},
		{"zh-TW", "", "zh-CN", "用户名"},
		{"fr-FR", "", "zh-CN", "用户名"},
		{"zh-CN", "en", "en", "Username"},
		{"en", "zh-CN", "zh-CN", "用户名"},
	} {
		r := httptest.NewRequest("GET", "/login", nil)
		r.Header.Set("Accept-Language", tc.accept)
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: langCookie, Value: tc.cookie})
		}
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, `<html lang="`+tc.want+`">`) || !strings.Contains(body, tc.text) {
			t.Errorf("Accept-Language %q, cookie %q: %d, want %s", tc.accept, tc.cookie, w.Code, tc.want)
		}
	}
	for _, tc := range []struct{ path, lang, next string }{
		{"/lang/en?next=/patients/search", "en", "/patients/search"},
		{"/lang/zh-CN?next=//evil.example/", "zh-CN", "/"},
		{"/lang/en?next=https://evil.example/", "en", "/"},
	} {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		ck := w.Result().Cookies()
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tc.next || len(ck) != 1 || ck[0].Value != tc.lang {
			t.Errorf("%s: %d to %q, cookies %v", tc.path, w.Code, w.Header().Get("Location"), ck)
		}
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, httptest.NewRequest("GET", "/lang/fr", nil))
	if w.Code != 404 {
		t.Errorf("unknown language: %d", w.Code)
	}
}

// TestChineseTerms keeps one word for one thing in the Chinese catalog:
// 账号 (not 账户), 双人审批 (not 四眼原则 or 双人复核), 数据分级 (not 密级).
func TestChineseTerms(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for key, text := range cat.msgs["zh-CN"] {
		for _, bad := range []string{"账户", "四眼", "双人复核", "密级"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s: %q uses %s", key, text, bad)
			}
		}
	}
}
