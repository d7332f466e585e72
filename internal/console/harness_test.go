package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"medguard/internal/cli"
	"medguard/internal/identity"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

const (
	adminPassword    = "Guanli#Mima2026"
	securityPassword = "Anquan#Mima2026"
	staffPassword    = "Yiyuan#Ceshi2026"
)

// hospital is a small installation served over HTTPS by the real handler
// (API and console), with a clock the test moves.
type hospital struct {
	t     testing.TB
	app   *cli.App
	srv   *httptest.Server
	clock *testkit.Clock
	logs  *testkit.Buffer
	admin string // the administrator's API token
	// A patient of CARD with one record, and their identifying data.
	patientID, recordID string
	patientName, idNum  string
	users               map[string]string // username → id
	approvalID          string            // a pending access grant to CARD's records for lina, for CARD's head
	security            string            // the security administrator's API token
	secrets             map[string]string // username → TOTP secret, once enrolled in the console
}

// newHospital opens a fresh installation (on PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set) with departments CARD and NEUR, staff, a
// patient with a record, and a pending approval.
func newHospital(t testing.TB) *hospital {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)) // 10:00 in Beijing
	logs := &testkit.Buffer{}
	cfg := cli.Config{DataDir: t.TempDir(), Clock: clock, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		cfg.DB = storagetest.FreshSchema(t, dsn)
	}
	app, err := cli.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	for _, a := range identity.BootstrapAccounts(adminPassword, securityPassword) {
		if _, err := app.Identity.Bootstrap(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewTLSServer(app.Web.Handler())
	t.Cleanup(srv.Close)
	h := &hospital{t: t, app: app, srv: srv, clock: clock, logs: logs, users: map[string]string{}, secrets: map[string]string{}}
	h.admin = h.enrolAPIWith("admin", adminPassword)
	h.security = h.enrolAPIWith("security", securityPassword)
	h.api(201, "POST", "/api/v1/departments", h.admin, map[string]string{"code": "CARD", "name": "心内科"})
	h.api(201, "POST", "/api/v1/departments", h.admin, map[string]string{"code": "NEUR", "name": "神经内科"})
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhangwei", "张伟", "CARD", "doctor"}, {"lina", "李娜", "NEUR", "doctor"}, {"liuyang", "刘洋", "CARD", "dept_head"},
		{"wangli", "王丽", "CARD", "doctor"}, {"zhouqiang", "周强", "", "security_officer"},
	} {
		out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": u.name, "display_name": u.display,
			"department": u.dept, "roles": []string{u.role}, "password": staffPassword})
		h.users[u.name] = out["id"].(string)
		// The administrator asked; the security administrator approves.
		for _, p := range out["pending_approvals"].([]any) {
			h.api(200, "POST", "/api/v1/approvals/"+p.(map[string]any)["id"].(string)+"/approve", h.security,
				map[string]string{"note": "同意任命"})
		}
	}
	// A cardiologist (enrolled through the API) registers the patient and writes a record.
	clerk := h.enrolAPI("wangli")
	h.patientName, h.idNum = "欧阳娜娜", "11010519491231002X"
	h.patientID = h.api(201, "POST", "/api/v1/patients", clerk, map[string]string{"name": h.patientName, "gender": "female",
		"birth_date": "1949-12-31", "id_number": h.idNum, "phone": "13800138000", "address": "北京市朝阳区建国路 88 号",
		"mrn": "BA2026000123"})["id"].(string)
	h.api(201, "POST", "/api/v1/patients/"+h.patientID+"/admissions", clerk, map[string]string{"department": "CARD",
		"admitted_at": clock.Now().Add(-48 * time.Hour).Format(time.RFC3339)})
	h.recordID = h.api(201, "POST", "/api/v1/patients/"+h.patientID+"/records", clerk, map[string]any{"type": "progress_note",
		"department": "CARD", "title": "心内科病程记录 欧阳娜娜", "classification": "general",
		"text": "患者欧阳娜娜，胸闷三天，心电图示 ST 段压低。"})["id"].(string)
	// A neurologist asks for cardiology's records of the patient: the
	// request waits for cardiology's head.
	lina := h.enrolAPI("lina")
	h.approvalID = h.api(202, "POST", "/api/v1/grants", lina, map[string]string{"patient_id": h.patientID,
		"grantee_id": h.users["lina"], "department": "CARD", "reason": "会诊需要查阅心内科病历",
		"expires_at": clock.Now().Add(48 * time.Hour).Format(time.RFC3339)})["approval"].(map[string]any)["id"].(string)
	return h
}

// api calls the JSON API and checks the status.
func (h *hospital) api(want int, method, path, token string, body any) map[string]any {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}
	m := map[string]any{}
	json.Unmarshal(out, &m)
	return m
}

// enrolAPI signs a member of staff in through the API with a full token:
// the first time it enrols TOTP (and keeps the secret, which the console's
// sign-in then uses), later it sends a code of the next unused step.
func (h *hospital) enrolAPI(username string) string {
	return h.enrolAPIWith(username, staffPassword)
}

func (h *hospital) enrolAPIWith(username, password string) string {
	h.t.Helper()
	if secret, ok := h.secrets[username]; ok {
		h.clock.Advance(30 * time.Second) // a code is never accepted twice
		code, _ := totp.GenerateCode(secret, h.clock.Now())
		return h.api(200, "POST", "/api/v1/auth/login", "", map[string]string{"username": username, "password": password,
			"totp": code})["token"].(string)
	}
	tok := h.api(200, "POST", "/api/v1/auth/login", "", map[string]string{"username": username, "password": password})["token"].(string)
	secret := h.api(200, "POST", "/api/v1/auth/totp", tok, nil)["secret"].(string)
	h.secrets[username] = secret
	code, _ := totp.GenerateCode(secret, h.clock.Now())
	return h.api(200, "POST", "/api/v1/auth/totp/confirm", tok, map[string]string{"code": code})["token"].(string)
}

// browser is a client with cookies, as a person's browser.
type browser struct {
	h    *hospital
	c    *http.Client
	lang string
	// visited are every URL requested, redirects included.
	visited []string
}

func (h *hospital) browser(lang string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{h: h, lang: lang}
	tr := h.srv.Client().Transport
	b.c = &http.Client{Jar: jar, Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if b.lang != "" {
			r.Header.Set("Accept-Language", b.lang)
		}
		b.visited = append(b.visited, r.URL.String())
		return tr.RoundTrip(r)
	})}
	return b
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// page is a response: status, final URL, headers and body.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (b *browser) get(path string) page {
	b.h.t.Helper()
	resp, err := b.c.Get(b.h.srv.URL + path)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return read(resp)
}

// post submits a form; the CSRF token is taken from the page given (the
// page holding the form), unless noToken.
func (b *browser) post(path string, from page, form url.Values) page {
	b.h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if tok := csrfOf(from.body); tok != "" && !form.Has("csrf_token") {
		form.Set("csrf_token", tok)
	}
	resp, err := b.c.PostForm(b.h.srv.URL+path, form)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return read(resp)
}

func read(resp *http.Response) page {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
}

var (
	csrfPattern   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	secretPattern = regexp.MustCompile(`id="totp-secret"[^>]*>([A-Z2-7]+)<`)
	titlePattern  = regexp.MustCompile(`<title>([^<]*)</title>`)
)

func csrfOf(body string) string {
	m := csrfPattern.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func titleOf(body string) string {
	m := titlePattern.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// signIn signs a user in through the console, enrolling TOTP on the way
// at the first sign-in, and returns the dashboard. Signing in again needs
// a new TOTP step: the caller moves the clock.
func (b *browser) signIn(username, password string) page {
	b.h.t.Helper()
	login := b.get("/login")
	form := url.Values{"username": {username}, "password": {password}}
	if secret, ok := b.h.secrets[username]; ok {
		b.h.clock.Advance(30 * time.Second) // a code is never accepted twice
		code, _ := totp.GenerateCode(secret, b.h.clock.Now())
		form.Set("totp", code)
	}
	p := b.post("/login", login, form)
	if p.url.Path == "/login/totp" {
		m := secretPattern.FindStringSubmatch(p.body)
		if m == nil || !strings.Contains(p.body, `src="data:image/png;base64,`) {
			b.h.t.Fatalf("enrolment page without secret or QR code: %d %s", p.status, p.body)
		}
		b.h.secrets[username] = m[1]
		code, _ := totp.GenerateCode(m[1], b.h.clock.Now())
		p = b.post("/login/totp", p, url.Values{"code": {code}})
	}
	if p.status != 200 || p.url.Path != "/" {
		b.h.t.Fatalf("sign-in of %s ended at %s (%d): %s", username, p.url, p.status, p.body)
	}
	return p
}
