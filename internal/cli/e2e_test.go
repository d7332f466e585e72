package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

const (
	adminPassword    = "Guanli#Mima2026"
	securityPassword = "Anquan#Mima2026"
)

// server is a running "medguard serve" and a client that trusts its
// self-signed certificate.
type server struct {
	t      *testing.T
	base   string
	dir    string
	client *http.Client
	logs   *testkit.Buffer
	stop   func()
	// book keeps the staff's TOTP secrets and full tokens, shared by the
	// servers of one database.
	book *staffBook
}

// staffBook is what a test knows of the staff it signed in.
type staffBook struct {
	secrets map[string]string
	tokens  map[string]string
	steps   map[string]int64 // the last TOTP step each used
}

// start runs "medguard serve" in-process on a free port with a fresh data
// directory (and a fresh PostgreSQL schema when MEDGUARD_TEST_POSTGRES is
// set), and waits for /readyz.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with extra environment variables.
func startEnv(t *testing.T, extra map[string]string, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--data" {
			dir = args[i+1] // a data directory made beforehand (a demo)
		}
	}
	env := map[string]string{"MEDGUARD_ADMIN_PASSWORD": adminPassword, "MEDGUARD_SECURITY_PASSWORD": securityPassword}
	for k, v := range extra {
		env[k] = v
	}
	argv := append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" && !slices.Contains(args, "--db") {
		argv = append(argv, "--db", storagetest.FreshSchema(t, dsn))
	}
	outR, outW := io.Pipe()
	logs := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, argv, func(k string) string { return env[k] }, outW, logs)
		outW.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "medguard "); ok && strings.Contains(a, "serving https://") {
				f := strings.Fields(a[strings.Index(a, "https://"):])
				addr <- f[0]
			}
		}
	}()
	s := &server{t: t, dir: dir, logs: logs, book: &staffBook{secrets: map[string]string{}, tokens: map[string]string{},
		steps: map[string]int64{}}}
	select {
	case a := <-addr:
		s.base = a
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start\n%s", logs)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:     (&net.Dialer{LocalAddr: directSource(args)}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	s.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(func() {
		if s.stop != nil {
			s.stop()
		}
	})
	for i := 0; ; i++ {
		if st, _, _ := s.do("GET", "/readyz", "", nil); st == 200 {
			break
		}
		if i > 200 {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond) // polling readiness, not timing anything
	}
	return s
}

// do makes a request; body may be nil, a []byte (sent as JSON) or a value
// encoded as JSON. Extra headers come in name, value pairs.
func (s *server) do(method, path, token string, body any, headers ...string) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
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
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// json makes a request that must answer want, and decodes the answer.
func (s *server) json(want int, method, path, token string, body any, headers ...string) map[string]any {
	s.t.Helper()
	st, h, out := s.do(method, path, token, body, headers...)
	if st != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, out)
	}
	var m map[string]any
	if len(out) > 0 && strings.Contains(h.Get("Content-Type"), "json") {
		if err := json.Unmarshal(out, &m); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, out)
		}
	}
	return m
}

// problem makes a request that must fail with want, as problem+json, and
// returns the problem.
func (s *server) problem(want int, method, path, token string, body any, headers ...string) map[string]any {
	s.t.Helper()
	st, h, out := s.do(method, path, token, body, headers...)
	if st != want || h.Get("Content-Type") != "application/problem+json" {
		s.t.Fatalf("%s %s: status %d (%s), want %d problem: %s", method, path, st, h.Get("Content-Type"), want, out)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	if m["type"] == "" || m["status"] != float64(want) {
		s.t.Fatalf("bad problem %s", out)
	}
	return m
}

func (s *server) login(username, password, code string) map[string]any {
	s.t.Helper()
	body := map[string]string{"username": username, "password": password}
	if code != "" {
		body["totp"] = code
	}
	return s.json(200, "POST", "/api/v1/auth/login", "", body)
}

// token returns a full session of a member of staff: the one this test
// made already, or — the first time — a new one, enrolling TOTP at the
// first sign-in and later sending a code.
func (s *server) token(username, password string) string {
	s.t.Helper()
	if tok, ok := s.book.tokens[username]; ok {
		return tok
	}
	if _, ok := s.book.secrets[username]; ok {
		tok := s.login(username, password, s.code(username))["token"].(string)
		s.book.tokens[username] = tok
		return tok
	}
	tok, _ := s.enrol(username, password)
	return tok
}

// relogin signs a member of staff in again (after a freeze ended the
// session, say) and returns the new full token.
func (s *server) relogin(username, password string) string {
	s.t.Helper()
	delete(s.book.tokens, username)
	return s.token(username, password)
}

// code returns a TOTP code of a step the user has not used yet: the
// current one, or the next (within the server's tolerance), or — after
// both — the one after, once its time comes.
func (s *server) code(username string) string {
	step := max(time.Now().Unix()/30, s.book.steps[username]+1)
	for step > time.Now().Unix()/30+1 {
		time.Sleep(time.Until(time.Unix((step-1)*30, 0))) // waiting for a step, not timing anything
	}
	s.book.steps[username] = step
	code, _ := totp.GenerateCode(s.book.secrets[username], time.Unix(step*30, 0))
	return code
}

// admin and security are the bootstrap accounts' full sessions.
func (s *server) admin() string    { return s.token("admin", adminPassword) }
func (s *server) security() string { return s.token("security", securityPassword) }

// staff creates a member of staff as the administrator and has the
// security administrator approve the roles that need a second person; it
// returns the user's id.
func (s *server) staff(username, display, dept, role, password string) string {
	s.t.Helper()
	out := s.json(201, "POST", "/api/v1/users", s.admin(), map[string]any{"username": username, "display_name": display,
		"department": dept, "roles": []string{role}, "password": password})
	for _, p := range out["pending_approvals"].([]any) {
		s.json(200, "POST", "/api/v1/approvals/"+p.(map[string]any)["id"].(string)+"/approve", s.security(),
			map[string]string{"note": "同意任命"})
	}
	return out["id"].(string)
}

// enrol signs a new user in, enrols TOTP and returns a full token and the secret.
func (s *server) enrol(username, password string) (string, string) {
	s.t.Helper()
	in := s.login(username, password, "")
	if in["mfa_enrollment_required"] != true {
		s.t.Fatalf("%s: expected enrolment, got %v", username, in)
	}
	tok := in["token"].(string)
	s.problem(401, "GET", "/api/v1/patients", tok, nil)
	enr := s.json(200, "POST", "/api/v1/auth/totp", tok, nil)
	secret := enr["secret"].(string)
	if !strings.HasPrefix(enr["otpauth_url"].(string), "otpauth://totp/medguard:"+username) {
		s.t.Fatalf("otpauth_url %v", enr["otpauth_url"])
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	full := s.json(200, "POST", "/api/v1/auth/totp/confirm", tok, map[string]string{"code": code})
	s.book.secrets[username], s.book.tokens[username] = secret, full["token"].(string)
	s.book.steps[username] = time.Now().Unix() / 30
	return full["token"].(string), secret
}

func TestAppendixAWalkthrough(t *testing.T) {
	s := start(t)

	// Operational endpoints.
	s.json(200, "GET", "/healthz", "", nil)
	if st, _, body := s.do("GET", "/metrics", "", nil); st != 200 {
		t.Fatalf("metrics: %d", st)
	} else {
		for _, name := range []string{"medguard_audit_tree_size", `medguard_audit_commits_total{path="transaction"}`, `medguard_audit_range_loads_total{from="head"}`,
			"medguard_db_connection_waits_total"} {
			if !bytes.Contains(body, []byte(name)) {
				t.Fatalf("metrics: no %s in\n%s", name, body)
			}
		}
	}
	var doc map[string]any
	_, _, raw := s.do("GET", "/api/v1/openapi.json", "", nil)
	if err := json.Unmarshal(raw, &doc); err != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %v", err)
	}

	// The administrator, like every member of staff, enrols a second
	// factor at the first sign-in: the password alone opens nothing else.
	in := s.login("admin", adminPassword, "")
	if in["mfa_enrollment_required"] != true || in["expires_at"] == nil {
		t.Fatalf("admin login %v", in)
	}
	s.problem(401, "GET", "/api/v1/departments", in["token"].(string), nil)
	admin, _ := s.enrol("admin", adminPassword)

	// Departments and staff.
	d := s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	if d["id"] == "" || d["code"] != "CARD" || d["name"] != "心内科" {
		t.Fatalf("department %v", d)
	}
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "NEUR", "name": "神经内科"})
	s.problem(409, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	// Every role that opens patient data waits for a second person; the
	// administrator approves nothing.
	security, _ := s.enrol("security", securityPassword)
	staff := map[string]string{}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhangwei", "张建国", "CARD", "doctor"}, {"lina", "李娜", "NEUR", "doctor"}, {"liuyang", "刘洋", "CARD", "dept_head"},
	} {
		created := s.json(201, "POST", "/api/v1/users", admin, map[string]any{"username": u.name, "display_name": u.display,
			"department": u.dept, "roles": []string{u.role}, "password": "Yiyuan#Ceshi2026"})
		staff[u.name] = created["id"].(string)
		pending := created["pending_approvals"].([]any)
		if len(pending) != 1 || len(created["roles"].([]any)) != 0 {
			t.Fatalf("created %v", created)
		}
		id := pending[0].(map[string]any)["id"].(string)
		s.problem(403, "POST", "/api/v1/approvals/"+id+"/approve", admin, map[string]string{"note": "自己批准"})
		s.json(200, "POST", "/api/v1/approvals/"+id+"/approve", security, map[string]string{"note": "同意"})
	}
	p := s.problem(422, "POST", "/api/v1/users", admin, map[string]any{"username": "weak", "display_name": "弱",
		"department": "CARD", "roles": []string{"nurse"}, "password": "123456"})
	if p["field"] != "password" {
		t.Fatalf("weak password problem %v", p)
	}
	// A privileged role waits for a second person.
	so := s.json(201, "POST", "/api/v1/users", admin, map[string]any{"username": "zhouqiang", "display_name": "周强",
		"roles": []string{"security_officer"}, "password": "Anquan#Zhuanyuan26"})
	pending := so["pending_approvals"].([]any)
	if len(pending) != 1 || len(so["roles"].([]any)) != 0 {
		t.Fatalf("security officer %v", so)
	}
	approvalID := pending[0].(map[string]any)["id"].(string)
	s.problem(403, "POST", "/api/v1/approvals/"+approvalID+"/approve", admin, map[string]string{"note": "自己批准"})

	// Doctors enrol TOTP.
	zhang, _ := s.enrol("zhangwei", "Yiyuan#Ceshi2026")
	lina, linaSecret := s.enrol("lina", "Yiyuan#Ceshi2026")
	head, _ := s.enrol("liuyang", "Yiyuan#Ceshi2026")
	// A department head never approves a privileged role; the security
	// administrator does.
	s.problem(403, "POST", "/api/v1/approvals/"+approvalID+"/approve", head, map[string]string{"note": "同意"})
	done := s.json(200, "POST", "/api/v1/approvals/"+approvalID+"/approve", security, map[string]string{"note": "同意"})
	if done["status"] != "approved" {
		t.Fatalf("approval %v", done)
	}
	// Signing in again needs a code; a fresh one (next step) works.
	p = s.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "lina", "password": "Yiyuan#Ceshi2026"})
	if p["code"] != "totp_required" {
		t.Fatalf("problem %v", p)
	}
	next, _ := totp.GenerateCode(linaSecret, time.Now().Add(30*time.Second))
	s.login("lina", "Yiyuan#Ceshi2026", next)

	// Patients and records.
	patient := map[string]any{"name": "张伟", "gender": "female", "birth_date": "1949-12-31", "id_number": "11010519491231002X",
		"phone": "13912345678", "address": "北京市朝阳区建国路88号3号楼502室", "mrn": "MR00000001"}
	bad := map[string]any{}
	for k, v := range patient {
		bad[k] = v
	}
	bad["id_number"] = "110105194912310021"
	if p := s.problem(422, "POST", "/api/v1/patients", zhang, bad); p["field"] != "id_number" {
		t.Fatalf("problem %v", p)
	}
	pt := s.json(201, "POST", "/api/v1/patients", zhang, patient)
	pid := pt["id"].(string)
	rec := s.json(201, "POST", "/api/v1/patients/"+pid+"/records", zhang, map[string]any{"type": "admission_note",
		"department": "CARD", "title": "入院记录", "text": "患者张伟，女，76岁，因反复胸闷胸痛3年入院。",
		"classification": "important", "fields": map[string]string{"主诉": "反复胸闷胸痛3年"}})
	rid := rec["id"].(string)
	got := s.json(200, "GET", "/api/v1/records/"+rid, zhang, nil, "X-Request-Id", "his-req-0001", "X-Purpose-Of-Use", "treatment")
	if got["patient_id"] != pid || got["type"] != "admission_note" || got["department"] != "CARD" ||
		got["title"] != "入院记录" || !strings.Contains(got["text"].(string), "胸闷胸痛") {
		t.Fatalf("record %v", got)
	}
	found := s.json(200, "POST", "/api/v1/patients/search", lina, map[string]string{"id_number": "11010519491231002X"})
	if items := found["items"].([]any); len(items) != 1 || items[0].(map[string]any)["masked_name"] != "张*" {
		t.Fatalf("search %v", found)
	}

	// A doctor from another department is refused, and can break the glass.
	p = s.problem(403, "GET", "/api/v1/records/"+rid, lina, nil)
	if p["rule"] != "deny.no_relation" {
		t.Fatalf("problem %v", p)
	}
	bg := s.json(200, "GET", "/api/v1/records/"+rid, lina, nil, "X-Break-Glass-Reason", url.PathEscape("患者昏迷，急诊抢救"))
	if bg["break_glass"] == nil || bg["text"] == "" {
		t.Fatalf("break-glass %v", bg)
	}
	queue := s.json(200, "GET", "/api/v1/break-glass", head, nil)
	items := queue["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["reason"] != "患者昏迷，急诊抢救" {
		t.Fatalf("queue %v", queue)
	}
	s.json(200, "POST", "/api/v1/break-glass/"+items[0].(map[string]any)["id"].(string)+"/review", head,
		map[string]string{"outcome": "justified", "note": "急诊抢救"})

	// The audit log holds all of it, with the client's request id.
	st, h, lines := s.do("GET", "/api/v1/audit/entries?start=0&end=1000", admin, nil)
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/jsonl") {
		t.Fatalf("entries: %d %s", st, lines)
	}
	var sawRequestID, sawBreakGlass, sawDeny bool
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
		var e struct {
			Index uint64         `json:"index"`
			Leaf  string         `json:"leaf"`
			Entry map[string]any `json:"entry"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		leaf, _ := base64.StdEncoding.DecodeString(e.Leaf)
		var fromLeaf map[string]any
		json.Unmarshal(leaf, &fromLeaf)
		if e.Index != uint64(n) || fromLeaf["action"] != e.Entry["action"] {
			t.Fatalf("entry %d: %s", n, line)
		}
		for _, f := range []string{"time", "actor", "actor_department", "actor_roles", "ip", "action", "target_type",
			"target_id", "patient_id", "purpose", "decision", "rule", "outcome", "break_glass", "request_id"} {
			if _, ok := e.Entry[f]; !ok {
				t.Fatalf("entry %d lacks %s", n, f)
			}
		}
		sawRequestID = sawRequestID || e.Entry["request_id"] == "his-req-0001" && e.Entry["purpose"] == "treatment"
		sawBreakGlass = sawBreakGlass || e.Entry["break_glass"] == true && e.Entry["actor"] == "lina"
		sawDeny = sawDeny || e.Entry["decision"] == "deny" && e.Entry["rule"] == "deny.no_relation"
		n++
	}
	if !sawRequestID || !sawBreakGlass || !sawDeny || n < 30 {
		t.Fatalf("entries: %d, request id %v, break-glass %v, deny %v", n, sawRequestID, sawBreakGlass, sawDeny)
	}
	s.problem(403, "GET", "/api/v1/audit/entries?start=0&end=10", zhang, nil)
	_ = security

	// Deactivation ends access at once.
	s.json(200, "POST", "/api/v1/users/"+staff["lina"]+"/deactivate", admin, nil)
	s.problem(401, "GET", "/api/v1/patients/"+pid, lina, nil)

	// No patient data anywhere in the data directory or the server's logs.
	s.stop()
	s.stop = nil
	secrets := testkit.PHI("张伟", "11010519491231002X", "13912345678", "北京市朝阳区建国路88号", "MR00000001",
		"胸闷胸痛", "患者昏迷", "急诊抢救")
	filepath.Walk(s.dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			testkit.AssertNoPHI(t, path, secrets)
		}
		return nil
	})
	logFile := filepath.Join(t.TempDir(), "server.log")
	os.WriteFile(logFile, []byte(s.logs.String()), 0o600)
	testkit.AssertNoPHI(t, logFile, secrets)
	if !strings.Contains(s.logs.String(), `"route":"GET /api/v1/records/{id}"`) {
		t.Fatal("the access log is missing")
	}
}

func TestErrorContract(t *testing.T) {
	s := start(t, "--signin-rate", "600", "--signin-burst", "100")
	admin := s.admin()

	s.problem(401, "GET", "/api/v1/departments", "", nil)
	s.problem(401, "GET", "/api/v1/departments", "mgs_not-a-session", nil)
	s.problem(404, "GET", "/api/v1/no-such-thing", admin, nil)
	s.problem(405, "DELETE", "/api/v1/departments", admin, nil)
	s.problem(400, "POST", "/api/v1/departments", admin, []byte(`{"code": "X",`))
	s.problem(400, "POST", "/api/v1/departments", admin, []byte(``))
	s.problem(400, "POST", "/api/v1/departments", admin, []byte(`{"code":"A","name":"B"} {"again":1}`))
	if p := s.problem(422, "POST", "/api/v1/departments", admin, []byte(`{"code":"ICU","name":"重症医学科","colour":"red"}`)); p["field"] != "colour" {
		t.Fatalf("unknown field: %v", p)
	}
	if p := s.problem(422, "POST", "/api/v1/departments", admin, []byte(`{"code":7,"name":"x"}`)); p["field"] != "code" {
		t.Fatalf("wrong type: %v", p)
	}
	if p := s.problem(422, "POST", "/api/v1/departments", admin, map[string]string{"code": "ICU"}); p["field"] != "name" {
		t.Fatalf("missing field: %v", p)
	}
	s.problem(413, "POST", "/api/v1/departments", admin, append(append([]byte(`{"code":"ICU","name":"`), bytes.Repeat([]byte("x"), 2<<20)...), '"', '}'))
	st, _, _ := s.do("POST", "/api/v1/departments", admin, nil, "Content-Type", "text/plain")
	if st != 415 {
		t.Fatalf("text/plain: %d", st)
	}
	// Bodies that encoding/json alone would take, changed: invalid UTF-8
	// (stored as U+FFFD), another charset (ignored), a key twice (last
	// wins) — refused, naming the problem but never the body's values.
	for _, c := range []struct {
		status      int
		body, ctype string
		detail      string
	}{
		{400, "{\"code\":\"BAD\",\"name\":\"\xd6\xd8\xd6\xa2\"}", "", "the body is not valid UTF-8"},
		{400, `{"code":"SUR","name":"重症\ud800"}`, "", "unpaired UTF-16 surrogate"},
		{415, `{"code":"GBK","name":"重症医学科"}`, "application/json; charset=gbk", `charset "gbk"`},
		{415, `{"code":"GBK","name":"重症医学科"}`, "application/json; charset=GB2312", `charset "GB2312"`},
		{400, `{"code":"DUP","name":"重症医学科","name":"心内科"}`, "", `the key "name" appears twice`},
		{400, `{"code":"DUP","n\u0061me":"重症医学科","name":"心内科"}`, "", `the key "name" appears twice`},
		{400, `{"code":"DUP","name":"重症医学科","code":"ICU"}`, "", `the key "code" appears twice`},
		{400, `{"code":"DUP","name":"重症医学科","name":"心内科"}`, "", `the key "name" appears twice`},
	} {
		var headers []string
		if c.ctype != "" {
			headers = []string{"Content-Type", c.ctype}
		}
		p := s.problem(c.status, "POST", "/api/v1/departments", admin, []byte(c.body), headers...)
		detail, _ := p["detail"].(string)
		if !strings.Contains(detail, c.detail) || strings.ContainsAny(detail, "重症医学科心内张伟") {
			t.Errorf("%q: %v", c.body, p)
		}
	}
	if p := s.problem(422, "GET", "/api/v1/users?limit=100000", admin, nil); p["field"] != "limit" {
		t.Fatalf("limit: %v", p)
	}
	if p := s.problem(422, "GET", "/api/v1/departments", admin, nil, "X-Request-Id", "bad id with spaces"); p["field"] != "X-Request-Id" {
		t.Fatalf("request id: %v", p)
	}
	// SQL and HTML in input are data, not code.
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "ICU", "name": "重症'); DROP TABLE users;--<script>"})
	deps := s.json(200, "GET", "/api/v1/departments", admin, nil)
	if len(deps["items"].([]any)) != 1 {
		t.Fatalf("departments %v", deps)
	}
	// Nothing changed by the rejected requests: only ICU exists.
	// Security headers on every answer.
	_, h, _ := s.do("GET", "/api/v1/departments", admin, nil)
	for k, v := range map[string]string{"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if h.Get(k) != v {
			t.Errorf("%s: %q", k, h.Get(k))
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Error("CSP missing")
	}

	// Lockout: five failures, then 423 even with the right password.
	for i := 0; i < 5; i++ {
		s.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "Wrong#Pass2026"})
	}
	p := s.problem(423, "POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": adminPassword, "totp": s.code("admin")})
	if p["code"] != "locked_out" {
		t.Fatalf("lockout %v", p)
	}
	// The admin's existing session is unaffected by a lockout of new sign-ins.
	s.json(200, "GET", "/api/v1/departments", admin, nil)

	// Pagination with cursors.
	for i := 0; i < 5; i++ {
		s.json(201, "POST", "/api/v1/users", admin, map[string]any{"username": "nurse0" + string(rune('1'+i)), "display_name": "护士",
			"department": "ICU", "roles": []string{"nurse"}, "password": "Huli#Jilu2026ab"})
	}
	seen := 0
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		q := "/api/v1/users?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		pg := s.json(200, "GET", q, admin, nil)
		seen += len(pg["items"].([]any))
		if pg["next"] == nil {
			break
		}
		cursor = pg["next"].(string)
	}
	if seen != 7 { // the two bootstrap accounts and five nurses
		t.Fatalf("paged through %d users, want 7", seen)
	}
}

func TestSignInRateLimit(t *testing.T) {
	s := start(t, "--signin-rate", "1", "--signin-burst", "3")
	for i := 0; i < 3; i++ {
		s.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "x" + string(rune('a'+i)), "password": "Wrong#Pass2026"})
	}
	s.problem(429, "POST", "/api/v1/auth/login", "", map[string]string{"username": "xz", "password": "Wrong#Pass2026"})
}

func TestAttachmentOverHTTPS(t *testing.T) {
	s := start(t)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "RAD", "name": "放射科"})
	s.staff("wangli", "王丽", "RAD", "doctor", "Fangshe#Ke2026")
	doc, _ := s.enrol("wangli", "Fangshe#Ke2026")
	pid := s.json(201, "POST", "/api/v1/patients", doc, map[string]any{"name": "欧阳娜娜", "gender": "female"})["id"].(string)
	rid := s.json(201, "POST", "/api/v1/patients/"+pid+"/records", doc, map[string]any{"type": "imaging_report",
		"department": "RAD", "title": "胸部CT", "text": "双肺纹理增粗，未见明确占位。"})["id"].(string)
	upload := func(name string, content []byte) (int, []byte) { return s.upload(doc, rid, name, content) }
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 64)...)
	st, out := upload("欧阳娜娜_胸片.png", png)
	if st != 201 {
		t.Fatalf("upload: %d %s", st, out)
	}
	var a map[string]any
	json.Unmarshal(out, &a)
	if st, out := upload("../../../etc/cron.d/x.png", png); st != 422 || !bytes.Contains(out, []byte(`"field":"filename"`)) {
		t.Fatalf("traversal: %d %s", st, out)
	}
	if st, _ := upload("big.pdf", append([]byte("%PDF-1.4\n"), make([]byte, 21<<20)...)); st != 413 {
		t.Fatalf("oversize: %d", st)
	}
	st, h, body := s.do("GET", "/api/v1/attachments/"+a["id"].(string), doc, nil)
	if st != 200 || !bytes.Equal(body, png) || h.Get("Content-Type") != "image/png" ||
		!strings.Contains(h.Get("Content-Disposition"), "filename*=UTF-8''") {
		t.Fatalf("download: %d %v", st, h)
	}
}
