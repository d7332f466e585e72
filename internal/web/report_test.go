package web

import (
	"github.com/pquerna/otp/totp"

	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
	"medguard/internal/trail"
)

// reportServer is the API over plain HTTP on a fresh database (PostgreSQL
// when MEDGUARD_TEST_POSTGRES is set), with a settable clock.
type reportServer struct {
	t     *testing.T
	url   string
	clock *testkit.Clock
	log   *audit.Log
	id    *identity.Service
	ap    *approvals.Service
	// The bootstrap accounts' calls (admin asks, security approves), and
	// each person's TOTP secret and last code step, for signing in again.
	admin, security *medguard.Call
	secrets         map[string]string
	steps           map[string]int64
}

func startReportServer(t *testing.T) (*reportServer, *identity.Service) {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 3, 5, 6, 30, 0, 0, time.UTC)) // 14:30 in Shanghai
	return startAPI(t, clock, nil), nil
}

// startAPI serves the API over plain HTTP on a fresh database (PostgreSQL
// when MEDGUARD_TEST_POSTGRES is set) with its two bootstrap accounts;
// more, if set, adds to the dependencies (incidents).
func startAPI(t *testing.T, clock *testkit.Clock, more func(d *Deps, kr *keys.Keyring)) *reportServer {
	t.Helper()
	ctx := context.Background()
	db := storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), records.Schema(), approvals.Schema(), incidents.Schema())
	log, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	g := gate.New(log, clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, clock.Now()), clock)
	id := identity.New(db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	rec := records.New(db, g, kr, id, records.Config{})
	ap := approvals.New(db, g, kr, id, rec)
	d := Deps{DB: db, Gate: g, Log: log, Identity: id, Records: rec, Approvals: ap, Trail: trail.New(g, nil, id, rec, nil)}
	if more != nil {
		more(&d, kr)
	}
	hs := httptest.NewServer(New(d).Handler())
	t.Cleanup(hs.Close)
	s := &reportServer{t: t, url: hs.URL, clock: clock, log: log, id: id, ap: ap, secrets: map[string]string{},
		steps: map[string]int64{}}
	for _, a := range identity.BootstrapAccounts("Guanli#Mima2026", "Anquan#Mima2026") {
		uid, err := id.Bootstrap(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: uid, Name: a.Username, Roles: []string{a.Role}}}
		if a.Role == "admin" {
			s.admin = call
		} else {
			s.security = call
		}
	}
	return s
}

// department creates a department as the administrator.
func (s *reportServer) department(code, name string) {
	s.t.Helper()
	if _, _, err := s.ap.CreateDepartment(context.Background(), s.admin, code, name, nil); err != nil {
		s.t.Fatal(err)
	}
}

// person creates a member of staff as the administrator; the security
// administrator approves the role if it needs a second person. It returns
// the user's id.
func (s *reportServer) person(username, display, dept, role, password string) string {
	s.t.Helper()
	ctx := context.Background()
	u, pending, err := s.id.CreateUser(ctx, s.admin, identity.NewUser{Username: username, DisplayName: display,
		Department: dept, Roles: []string{role}, Password: password})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, r := range pending {
		a, err := s.ap.GrantRole(ctx, s.admin, u.ID, r, "岗位职责")
		if err != nil {
			s.t.Fatal(err)
		}
		if _, err := s.ap.Approve(ctx, s.security, a.ID, "同意"); err != nil {
			s.t.Fatal(err)
		}
	}
	return u.ID
}

// do makes a request with a JSON body (if any) and header name, value pairs.
func (s *reportServer) do(method, path, token string, body any, headers ...string) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// ok makes a request that must answer want, and decodes the JSON answer into v.
func (s *reportServer) ok(want int, v any, method, path, token string, body any, headers ...string) http.Header {
	s.t.Helper()
	st, h, out := s.do(method, path, token, body, headers...)
	if st != want {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, st, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, out)
		}
	}
	return h
}

// problem makes a request that must fail with want as problem+json.
func (s *reportServer) problem(want int, path, token string, headers ...string) Problem {
	s.t.Helper()
	st, h, out := s.do("GET", path, token, nil, headers...)
	var p Problem
	json.Unmarshal(out, &p)
	if st != want || h.Get("Content-Type") != "application/problem+json" || p.Status != want {
		s.t.Fatalf("GET %s: %d %s, want a %d problem: %s", path, st, h.Get("Content-Type"), want, out)
	}
	return p
}

// login signs a member of staff in with a full session: the first time it
// enrols TOTP, later it sends a code of a step not used yet.
func (s *reportServer) login(username, password string) string {
	s.t.Helper()
	body := map[string]string{"username": username, "password": password}
	if secret, ok := s.secrets[username]; ok {
		step := max(s.clock.Now().Unix()/30, s.steps[username]+1)
		code, err := totp.GenerateCode(secret, time.Unix(step*30, 0))
		if err != nil {
			s.t.Fatal(err)
		}
		body["totp"], s.steps[username] = code, step
	}
	var in identity.SignIn
	s.ok(200, &in, "POST", "/api/v1/auth/login", "", body)
	if !in.MFAEnrollmentRequired {
		return in.Token
	}
	var enr identity.TOTPEnrollment
	s.ok(200, &enr, "POST", "/api/v1/auth/totp", in.Token, nil)
	code, _ := totp.GenerateCode(enr.Secret, s.clock.Now())
	var full identity.SignIn
	s.ok(200, &full, "POST", "/api/v1/auth/totp/confirm", in.Token, map[string]string{"code": code})
	s.secrets[username], s.steps[username] = enr.Secret, s.clock.Now().Unix()/30
	return full.Token
}

// report fetches a report page.
func (s *reportServer) report(path, token string, headers ...string) (AccessReportPage, http.Header) {
	s.t.Helper()
	var page AccessReportPage
	h := s.ok(200, &page, "GET", path, token, nil, headers...)
	return page, h
}

func TestAccessReportOverHTTP(t *testing.T) {
	s, _ := startReportServer(t)
	ctx := context.Background()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}} {
		s.department(d[0], d[1])
	}
	for _, u := range [][2]string{{"zhangwei", "CARD"}, {"lina", "NEUR"}} {
		s.person(u[0], "医生", u[1], "doctor", "Yiyuan#Ceshi2026")
	}
	admin := s.login("admin", "Guanli#Mima2026")
	zhang := s.login("zhangwei", "Yiyuan#Ceshi2026")
	lina := s.login("lina", "Yiyuan#Ceshi2026")

	// 张三 is registered and written up in cardiology, read by her doctor,
	// refused to a neurologist, who breaks the glass.
	var patient records.Patient
	s.ok(201, &patient, "POST", "/api/v1/patients", zhang, map[string]string{"name": "张三", "gender": "female",
		"birth_date": "1949-12-31", "id_number": "11010519491231002X", "phone": "13912345678",
		"address": "北京市朝阳区建国路88号", "mrn": "MR00000001"}, "X-Purpose-Of-Use", "treatment")
	var rec records.Record
	s.ok(201, &rec, "POST", "/api/v1/patients/"+patient.ID+"/records", zhang, map[string]string{"type": "admission_note",
		"department": "CARD", "title": "入院记录", "text": "患者张三，女，76岁，因反复胸闷3年入院。"}, "X-Purpose-Of-Use", "treatment")
	s.clock.Advance(2 * time.Minute) // 14:32
	s.ok(200, nil, "GET", "/api/v1/records/"+rec.ID, zhang, nil, "X-Purpose-Of-Use", "treatment")
	s.clock.Advance(time.Minute)
	s.problem(403, "/api/v1/records/"+rec.ID, lina, "X-Purpose-Of-Use", "treatment")
	s.clock.Advance(time.Minute) // 14:34
	s.ok(200, nil, "GET", "/api/v1/records/"+rec.ID, lina, nil, "X-Purpose-Of-Use", "emergency",
		"X-Break-Glass-Reason", url.PathEscape("患者昏迷，急诊抢救"))
	var other records.Patient
	s.ok(201, &other, "POST", "/api/v1/patients", lina, map[string]string{"name": "李四", "gender": "male"})
	s.clock.Advance(time.Minute) // 14:35

	base := "/api/v1/patients/" + patient.ID + "/access-report"
	zh, h := s.report(base, admin, "X-Purpose-Of-Use", "patient_request")
	if h.Get("Content-Language") != "zh-CN" || zh.Language != trail.Chinese || zh.Next != nil || len(zh.Items) != 5 {
		t.Fatalf("report: %v %+v", h, zh)
	}
	if sum := zh.Summary; sum.Accesses != 4 || sum.Denied != 1 || sum.BreakGlass != 1 || sum.Staff != 2 ||
		sum.Text != "2026年3月5日 14:30 至 2026年3月5日 14:35，共有2名工作人员访问了您的数据4次，其中紧急访问（破窗）1次；另有1次访问被系统拒绝。" {
		t.Errorf("summary %+v", sum)
	}
	for i, want := range []string{
		"2026年3月5日 14:34，神经内科 医生 lina 以紧急访问（破窗）方式查看了病历（用途：急诊抢救）。",
		"2026年3月5日 14:33，神经内科 医生 lina 试图查看病历（用途：诊疗），被系统拒绝。",
		"2026年3月5日 14:32，心内科 医生 zhangwei 查看了病历（用途：诊疗）。",
	} {
		if zh.Items[i].Text != want {
			t.Errorf("line %d: %s, want %s", i, zh.Items[i].Text, want)
		}
	}
	// The report request is in the audit log with the patient's id.
	index, err := strconv.ParseUint(h.Get("X-Audit-Index"), 10, 64)
	if err != nil {
		t.Fatalf("no X-Audit-Index: %v", h)
	}
	st, err := s.log.Entries(ctx, index, index+1)
	if err != nil || len(st) != 1 {
		t.Fatal(err)
	}
	if e := st[0].Entry; e.Action != "audit.access_report" || e.PatientID != patient.ID || e.Actor != "admin" ||
		e.Purpose != "patient_request" || e.Outcome != audit.Success {
		t.Fatalf("the report's entry: %+v", e)
	}
	// No patient data in the answer.
	_, _, raw := s.do("GET", base, admin, nil)
	for _, phi := range []string{"张三", "11010519491231002X", "13912345678", "北京市", "MR00000001", "患者昏迷", other.ID} {
		if bytes.Contains(raw, []byte(phi)) {
			t.Errorf("the report holds %q", phi)
		}
	}

	// The language: lang, else Accept-Language, else Chinese.
	for _, c := range []struct {
		query, accept string
		want          trail.Lang
	}{
		{"", "en-GB,en;q=0.9", trail.English},
		{"", "zh-CN,zh;q=0.9,en;q=0.8", trail.Chinese},
		{"", "fr-FR", trail.Chinese},
		{"", "not a language header", trail.Chinese},
		{"?lang=zh", "en-US", trail.Chinese},
		{"?lang=en", "zh-CN", trail.English},
	} {
		rep, h := s.report(base+c.query, admin, "Accept-Language", c.accept)
		if rep.Language != c.want || h.Get("Content-Language") != string(c.want) || !strings.Contains(h.Get("Vary"), "Accept-Language") {
			t.Errorf("%q with Accept-Language %q: %s (%s)", c.query, c.accept, rep.Language, h.Get("Content-Language"))
		}
	}
	en, _ := s.report(base+"?lang=en", admin)
	if l := en.Items[0]; l.Category != trail.CategoryReport || l.Text != "5 March 2026, 14:35: admin (system administrator) looked up your access report (purpose: not stated)." {
		t.Errorf("the report's own line: %+v", l)
	}
	// The oldest lines are the history, the newer ones the reports above.
	if l := en.Items[len(en.Items)-4]; !l.Denied || l.Result != "denied — the system refused" ||
		l.Text != "5 March 2026, 14:33: lina (doctor, 神经内科) tried to view a medical record (purpose: treatment); denied — the system refused." {
		t.Errorf("the denied line: %+v", l)
	}

	// The period, as dates in the hospital's zone or RFC 3339 times (an
	// unencoded '+' arrives as a space and is still read). Each report
	// adds a line to the next.
	for _, c := range []struct {
		query string
		lines int
	}{
		{"?from=2026-03-05&to=2026-03-05", len(en.Items) + 1},
		{"?to=2026-03-04", 0},
		{"?from=2026-03-05T14:33:00+08:00&to=2026-03-05T14:34:00%2B08:00", 1},
		{"?from=2026-03-05T06:34:00Z&to=2026-03-05T06:35:00Z", 1},
	} {
		rep, _ := s.report(base+c.query, admin)
		if len(rep.Items) != c.lines || rep.Summary.Entries != c.lines {
			t.Errorf("%s: %d lines, summary %+v; want %d", c.query, len(rep.Items), rep.Summary, c.lines)
		}
	}

	// Pages follow the cursor; every page's summary covers the whole period.
	seen := 0
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("the pages never end")
		}
		path := base + "?limit=2&to=2026-03-05T14:35:00%2B08:00"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		rep, _ := s.report(path, admin)
		if len(rep.Items) > 2 || rep.Summary.Entries != 5 {
			t.Fatalf("page %d: %d lines, summary %+v", pages, len(rep.Items), rep.Summary)
		}
		seen += len(rep.Items)
		if rep.Next == nil {
			break
		}
		cursor = *rep.Next
	}
	if seen != 5 {
		t.Fatalf("paged through %d lines, want 5", seen)
	}

	// Bad input names the field; unknown patients are 404; doctors are 403.
	for query, field := range map[string]string{
		"?from=yesterday":                  "from",
		"?to=2026-13-01":                   "to",
		"?from=2026-03-06&to=2026-03-05":   "to",
		"?from=2026-03-06":                 "from",
		"?lang=fr":                         "lang",
		"?form=2026-03-01":                 "form",
		"?from=2026-03-01&from=2026-03-02": "from",
		"?cursor=bm90LWEtbnVtYmVy":         "cursor",
		"?limit=0":                         "limit",
		"?" + url.QueryEscape("张三") + "=1": "query",
	} {
		if p := s.problem(422, base+query, admin); p.Field != field || strings.Contains(p.Detail, "张三") {
			t.Errorf("%s: %+v, want field %s", query, p, field)
		}
	}
	s.problem(404, "/api/v1/patients/"+medguard.NewID(s.clock.Now())+"/access-report", admin)
	s.problem(404, "/api/v1/patients/11010519491231002X/access-report", admin)
	if p := s.problem(403, base, zhang); p.Rule != "deny.no_permission" {
		t.Errorf("a doctor's report: %+v", p)
	}
	s.problem(401, base, "")
}

// FuzzReportQuery feeds the access report's query parsing: any query string
// and Accept-Language header either parse or fail as Invalid naming a
// field, with a message that does not depend on the value given.
func FuzzReportQuery(f *testing.F) {
	for _, s := range [][2]string{
		{"lang=zh&from=2026-03-05&to=2026-03-31", "zh-CN,zh;q=0.9"},
		{"from=2026-03-05T14:32:00+08:00&limit=2", "en-GB;q=0.8"},
		{"to=2026-02-30&form=1", "*"},
		{"cursor=MTI&from=2026-03-05&from=2026-03-06", ";q=x,,"},
		{"%E5%BC%A0%E4%B8%89=1&lang=en", "zh-Hant-TW"},
	} {
		f.Add(s[0], s[1])
	}
	invalid := func(t *testing.T, err error, field string) {
		t.Helper()
		if e, ok := err.(*medguard.Error); !ok || e.Kind != medguard.Invalid || field != "" && e.Field != field {
			t.Fatalf("%v, want Invalid naming %q", err, field)
		}
	}
	f.Fuzz(func(t *testing.T, query, accept string) {
		r := httptest.NewRequest("GET", "/api/v1/patients/x/access-report", nil)
		r.URL.RawQuery = query
		q := r.URL.Query()
		if err := onlyParams(r, accessReportParams...); err != nil {
			invalid(t, err, "")
			return
		}
		lang, err := reportLang(q.Get("lang"), accept)
		switch {
		case err != nil:
			invalid(t, err, "lang")
		case lang != trail.Chinese && lang != trail.English:
			t.Fatalf("language %q", lang)
		}
		for _, field := range []string{"from", "to"} {
			tm, err := parseReportTime(field, q.Get(field), trail.DefaultZone, field == "to")
			if err != nil {
				invalid(t, err, field)
				_, neutral := parseReportTime(field, "x", trail.DefaultZone, field == "to")
				if err.Error() != neutral.Error() {
					t.Fatalf("the error depends on the value: %v", err)
				}
				continue
			}
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Fatalf("%s = %v, not UTC", field, tm)
			}
		}
	})
}
