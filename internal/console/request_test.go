package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestLocalPath tries the tricks that take a redirect off-site. Browsers
// drop tabs and newlines anywhere in a URL, read "\" as "/" and "//host" as
// another site; whatever comes in, what goes out is "/" or a path on this
// site that no browser reads as another host.
func TestLocalPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Local paths pass, rebuilt.
		{"/", "/"},
		{"/patients/search", "/patients/search"},
		{"/alerts?status=all&rule=mass_read", "/alerts?status=all&rule=mass_read"},
		{"/approvals/", "/approvals/"},
		{"/a/./b/../c", "/a/c"},
		{"/..", "/"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"/.//evil.example", "/evil.example"}, // a browser would resolve it to "//evil.example" on this host; cleaned anyway
		{"/x#frag", "/x"},
		{"/x?q=a b", "/x?q=a%20b"},
		{"/x?q=张伟", "/x?q=%E5%BC%A0%E4%BC%9F"},
		{"/x?next=//evil.example", "/x?next=//evil.example"}, // only this redirect's target matters
		{"/a%20b", "/a%20b"},
		{"/患者", "/%E6%82%A3%E8%80%85"},
		{"/／evil.example", "/%EF%BC%8Fevil.example"}, // U+FF0F is a path character; escaped, it stays one
		{"/∕evil.example", "/%E2%88%95evil.example"}, // U+2215 likewise
		{"/javascript:alert(1)", "/javascript:alert%281%29"},
		{"/@evil.example", "/@evil.example"},
		// Off-site, or not a path: "/".
		{"", "/"},
		{"patients", "/"},
		{"./x", "/"},
		{"../x", "/"},
		{"?x=1", "/"},
		{"#x", "/"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"\\/evil.example", "/"},
		{"/x\\y", "/"},
		{"/x?q=\\", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{"/\r\n/evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\x7f/evil.example", "/"},
		{"/x\x1b", "/"},
		{"/x?q=\t", "/"},
		{"\t//evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/%0a/evil.example", "/"},
		{"/%0D%0A/evil.example", "/"},
		{"/%00", "/"},
		{"/%2F/evil.example", "/"},
		{"/%2f%2fevil.example", "/"},
		{"/%5C/evil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/%zz", "/"},
		{" /x", "/"},
		{" //evil.example", "/"},
		{"\u00a0/x", "/"},
		{"\ufeff/x", "/"},
		{"／／evil.example", "/"},
		{"https://evil.example/", "/"},
		{"HTTPS://evil.example/", "/"},
		{"https:evil.example", "/"},
		{"http:/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"JaVaScRiPt:alert(1)", "/"},
		{"data:text/html,<script>alert(1)</script>", "/"},
		{"//user:pass@evil.example/", "/"},
		{"/\u2028/evil.example", "/%E2%80%A8/evil.example"}, // a line separator is no control to browsers' URL parsers
	} {
		got := localPath(c.in)
		if got != c.want {
			t.Errorf("localPath(%q) = %q, want %q", c.in, got, c.want)
		}
		// Whatever it is, it is a path on this site, as a browser reads it.
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Errorf("localPath(%q) = %q leaves the site", c.in, got)
		}
		base, _ := url.Parse("https://medguard.example:8443/lang/en")
		if u, err := base.Parse(got); err != nil || u.Host != base.Host || u.Scheme != "https" {
			t.Errorf("localPath(%q) = %q resolves to %v", c.in, got, u)
		}
	}
}

// TestLanguageSwitchStaysLocal sends the language switch's next= every
// trick of TestLocalPath that is off-site, escaped as a link would carry
// it, and checks the redirect.
func TestLanguageSwitchStaysLocal(t *testing.T) {
	c, err := build(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c2 := range []struct{ next, want string }{
		{"%2F%09%2F127.0.0.1:8443%2Fx", "/"}, // the attack: "/\t/host" is "//host" to Chromium
		{"%2F%0A%2Fevil.example", "/"},
		{"%2F%0D%2Fevil.example", "/"},
		{"%09%2F%2Fevil.example", "/"},
		{"%2F%5Cevil.example", "/"},
		{"%2F%252F%2Fevil.example", "/"}, // "/%2F/…"
		{"%2F%2509%2Fevil.example", "/"}, // "/%09/…"
		{"%2F%2Fevil.example", "/"},
		{"https%3A%2F%2Fevil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"%20%2F%2Fevil.example", "/"},
		{"%EF%BC%8F%EF%BC%8Fevil.example", "/"},
		{"%2Fpatients%2Fsearch", "/patients/search"},
		{"/alerts%3Fstatus%3Dall", "/alerts?status=all"},
	} {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest("GET", "/lang/en?next="+c2.next, nil))
		loc := w.Header().Get("Location")
		if w.Code != http.StatusSeeOther || loc != c2.want {
			t.Errorf("next=%s: %d to %q, want %q", c2.next, w.Code, loc, c2.want)
		}
	}
}

// TestStaticFilesOnly checks that /static/ serves its files and never
// lists a directory.
func TestStaticFilesOnly(t *testing.T) {
	c, err := build(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	for _, f := range []struct{ path, ctype string }{{"/static/console.css", "text/css"}, {"/static/console.js", "javascript"}} {
		w := get("GET", f.path)
		if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), f.ctype) || w.Body.Len() == 0 ||
			w.Header().Get("Cache-Control") != "public, max-age=3600" {
			t.Errorf("%s: %d %s", f.path, w.Code, w.Header().Get("Content-Type"))
		}
		if w := get("HEAD", f.path); w.Code != 200 {
			t.Errorf("HEAD %s: %d", f.path, w.Code)
		}
	}
	for _, path := range []string{"/static/", "/static", "/static/.", "/static/./", "/static//", "/static/console.css/",
		"/static/nothing.css", "/static/templates/", "/static/../templates/", "/static/%2e%2e/templates/",
		"/static/..%2ftemplates%2ferror.html", "/static/%2E/"} {
		w := get("GET", path)
		// ServeMux redirects unclean paths to their clean form; follow
		// such a redirect once, as a browser would.
		if w.Code == http.StatusMovedPermanently || w.Code == http.StatusTemporaryRedirect {
			w = get("GET", w.Header().Get("Location"))
		}
		body := w.Body.String()
		if w.Code != 404 || strings.Contains(body, `href="console.css"`) || strings.Contains(body, "<pre>") {
			t.Errorf("%s: %d %q", path, w.Code, body)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, w.Header().Get("Cache-Control"))
		}
	}
}
