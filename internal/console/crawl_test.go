package console_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The console crawled as its users see it: each role of the demo hospital
// signs in and follows every link its pages offer (GET, on this site), as
// far as maxPages pages and a few instances of each page. Every link must
// lead to a page that answers 200 — a link that ends on 403 is a journey
// that cannot be finished — and, in Chinese, no page may show a raw
// identifier: a code (record.read, bulk_read_user, not_found), an English
// word or phrase, a Go duration (10m0s), or a department's code where its
// name belongs.

const (
	maxPages      = 400 // per role
	maxPerPattern = 3   // pages of one pattern (/records/{id}) per role
)

// crawled is one page a role reached.
type crawled struct {
	path, from string
	status     int
	body       string
}

// crawl follows the links of the console from "/" as the session token's
// user, in lang.
func crawl(t *testing.T, h http.Handler, token, lang string) []crawled {
	t.Helper()
	seen := map[string]bool{"/": true}
	perPattern := map[string]int{}
	queue := []crawled{{path: "/"}}
	var out []crawled
	for len(queue) > 0 && len(out) < maxPages {
		c := queue[0]
		queue = queue[1:]
		req := httptest.NewRequest("GET", c.path, nil)
		req.Header.Set("Accept-Language", lang)
		req.AddCookie(&http.Cookie{Name: "__Host-mg_session", Value: token})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		c.status, c.body = w.Code, w.Body.String()
		out = append(out, c)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			continue
		}
		for _, m := range hrefPattern.FindAllStringSubmatch(c.body, -1) {
			link := html.UnescapeString(m[1])
			u, err := url.Parse(link)
			if err != nil || u.Host != "" || !strings.HasPrefix(u.Path, "/") || skipLink(u) {
				continue
			}
			if u.Path == "" {
				u.Path = c.path
			}
			key := u.Path + "?" + u.RawQuery
			if seen[key] {
				continue
			}
			seen[key] = true
			pattern := idPattern.ReplaceAllString(u.Path, "{id}")
			if q := u.Query(); len(q) > 0 {
				names := slices.Sorted(func(yield func(string) bool) {
					for k := range q {
						if !yield(k) {
							return
						}
					}
				})
				pattern += "?" + strings.Join(names, "&")
			}
			if perPattern[pattern] >= maxPerPattern {
				continue
			}
			perPattern[pattern]++
			queue = append(queue, crawled{path: u.RequestURI(), from: c.path})
		}
	}
	return out
}

var (
	hrefPattern = regexp.MustCompile(`href="([^"]*)"`)
	idPattern   = regexp.MustCompile(`[0-9a-z]{26}|/[0-9]+(/|$)`)
)

// skipLink leaves out what is not a page to read: signing out, switching
// language, static files, downloads and the print view (the grid test
// covers them), the demo's exports and the posture reports' PDFs.
func skipLink(u *url.URL) bool {
	q := u.Query()
	return u.Path == "/logout" || strings.HasPrefix(u.Path, "/lang/") || strings.HasPrefix(u.Path, "/anonymous/lang/") ||
		strings.HasPrefix(u.Path, "/static/") ||
		strings.HasPrefix(u.Path, "/attachments/") || q.Get("format") != "" || q.Get("print") != "" ||
		strings.HasPrefix(u.Path, "/reports/") && strings.HasSuffix(u.Path, "/pdf")
}

// visibleText is what a reader of the page meets: the text between tags
// and the title, aria-label, placeholder and alt attributes, without
// scripts and styles.
func visibleText(page string) string {
	page = scriptPattern.ReplaceAllString(page, " ")
	var attrs []string
	for _, m := range attrPattern.FindAllStringSubmatch(page, -1) {
		attrs = append(attrs, m[1])
	}
	text := tagPattern.ReplaceAllString(page, " ")
	return html.UnescapeString(text + " " + strings.Join(attrs, " "))
}

var (
	scriptPattern = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>`)
	attrPattern   = regexp.MustCompile(`(?:title|aria-label|placeholder|alt)="([^"]*)"`)
	tagPattern    = regexp.MustCompile(`<[^>]*>`)
)

// rawIdentifier finds what no Chinese page may show.
var rawIdentifier = []struct {
	what    string
	pattern *regexp.Regexp
}{
	{"a code", regexp.MustCompile(`\b[a-z][a-z0-9]*(?:[._][a-z0-9]+)+\b`)},
	{"a Go duration", regexp.MustCompile(`\b\d+h\d+m\d+s\b|\b\d+m\d+s\b`)},
	{"an English phrase", regexp.MustCompile(`\b[A-Za-z]{2,}(?:[ ,'’-]+[A-Za-z]{2,}){1,}\b`)},
	{"an English word", regexp.MustCompile(`\b(?:allow|deny|denied|success|failed|pending|approved|refused|expired|cancelled|true|false|null|none|unknown|open|closed|new|acknowledged|escalated|active|deactivated|frozen)\b`)},
}

// allowedWords are the Latin words a Chinese page may hold: the product's
// name, acronyms every Chinese hospital uses, and units.
var allowedWords = regexp.MustCompile(`\b(?:medguard|CSV|TOTP|UTC|ID|PDF|HIV|SIEM|API|CT|MRI|ECG|ST|SM4|SM3|GCM|TLS|HTTPS|IP|Ctrl|P|CPU|MB|GB|KiB|MiB|PNG|JPEG|QR|HIS|LIS|PACS|ICU|CCU|DR|B超|mmHg|mmol|L|mg|ml|kg|cm|bpm|g|dL|U|x|kB|SpO2|OK)\b`)

// courseCode is a training course's code, as the register names courses.
var courseCode = regexp.MustCompile(`\b[A-Z]{2,5}-\d{2,4}\b`)

func TestEveryPageSpeaksChinese(t *testing.T) {
	app, sum := loadDemo(t, 120)
	h := app.Web.Handler()
	_, departments, err := app.Identity.Directory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range departments {
		if len(d.Code) >= 2 {
			codes = append(codes, regexp.QuoteMeta(d.Code))
		}
	}
	deptCode := regexp.MustCompile(`\b(?:` + strings.Join(codes, "|") + `)\b`)
	found := map[string][]string{} // finding → pages
	for _, ex := range sum.Examples {
		token := signInDemo(t, app, ex.Username)
		pages := crawl(t, h, token, "zh-CN")
		t.Logf("%s (%s): %d pages", ex.Username, ex.Role, len(pages))
		for _, p := range pages {
			if p.status != 200 {
				t.Errorf("%s (%s): %s, linked from %s, answered %d", ex.Username, ex.Role, p.path, p.from, p.status)
				continue
			}
			text := visibleText(p.body)
			text = allowedWords.ReplaceAllString(text, " ")
			page := idPattern.ReplaceAllString(strings.SplitN(p.path, "?", 2)[0], "{id}")
			for _, r := range rawIdentifier {
				for _, m := range r.pattern.FindAllString(text, -1) {
					k := r.what + ": " + m
					if !slices.Contains(found[k], page) {
						found[k] = append(found[k], page)
					}
				}
			}
			if page != "/admin/departments" {
				// A course's code (MRD-301) may begin with a department's;
				// it is the course's name in the register, not the department.
				for _, m := range deptCode.FindAllString(courseCode.ReplaceAllString(text, " "), -1) {
					k := "a department code: " + m
					if !slices.Contains(found[k], page) {
						found[k] = append(found[k], page)
					}
				}
			}
		}
	}
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("%s — on %s", k, strings.Join(found[k], ", "))
	}
}
