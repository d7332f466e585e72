package cli_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"medguard/internal/reports"
)

// The compliance checks over HTTPS (issue 14): a doctor of the laboratory
// who is also its interface administrator makes the LIS key and leaves;
// the auditor's run fails the departed-staff checks and the JSON report
// names the key as evidence; the key revoked, the next run passes them and
// the alert is resolved. A doctor is refused the report and a run, and
// the refusals are in the audit log; the leadership reads the report; a
// PDF is refused 406 while the server cannot render one. An IT engineer
// attaches the machine room's evidence; the auditor signs it and the check
// passes.
func TestComplianceOverHTTPS(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"LAB", "检验科"}, {"QCD", "质控科"}, {"ITD", "信息科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	for _, u := range [][4]string{{"sunli", "孙丽", "QCD", "auditor"}, {"zhengguohua", "郑国华", "", "leadership"},
		{"zhangwei", "张伟", "CARD", "doctor"}, {"wuyan", "吴燕", "ITD", "it_engineer"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	out := s.json(201, "POST", "/api/v1/users", admin, map[string]any{"username": "zhaolei", "display_name": "赵磊",
		"department": "LAB", "roles": []string{"doctor", "admin"}, "password": staffPassword})
	for _, p := range out["pending_approvals"].([]any) {
		s.json(200, "POST", "/api/v1/approvals/"+p.(map[string]any)["id"].(string)+"/approve", s.security(), map[string]string{"note": "兼任科室信息联络员"})
	}
	zhaoleiID := out["id"].(string)
	auditor, leader, doctor, engineer := s.token("sunli", staffPassword), s.token("zhengguohua", staffPassword),
		s.token("zhangwei", staffPassword), s.token("wuyan", staffPassword)
	key := s.json(201, "POST", "/api/v1/api-keys", s.token("zhaolei", staffPassword),
		map[string]any{"name": "lisgateway", "scopes": []string{"record.write"}, "department": "LAB"})
	keyID := key["id"].(string)
	s.json(200, "POST", "/api/v1/users/"+zhaoleiID+"/deactivate", admin, nil)

	check := func(doc map[string]any, id string) map[string]any {
		t.Helper()
		for _, c := range doc["checks"].([]any) {
			if c := c.(map[string]any); c["id"] == id {
				return c
			}
		}
		t.Fatalf("no check %s in %v", id, doc)
		return nil
	}
	results := func(run map[string]any) map[string]any { return map[string]any{"checks": run["results"]} }

	// The doctor is refused, before and after; nothing is run.
	rule(t, s.problem(403, "GET", "/api/v1/compliance/report", doctor, nil), "deny.no_permission")
	rule(t, s.problem(403, "POST", "/api/v1/compliance/runs", doctor, nil), "deny.no_permission")
	rule(t, s.problem(403, "POST", "/api/v1/compliance/runs", leader, nil), "deny.no_permission")

	run := s.json(201, "POST", "/api/v1/compliance/runs", auditor, nil)
	for _, id := range []string{"departed_owner_api_keys", "departed_staff_access"} {
		if c := check(results(run), id); c["status"] != "fail" || c["value"] != "1" {
			t.Fatalf("%s after the doctor left: %v", id, c)
		}
	}
	rep := s.json(200, "GET", "/api/v1/compliance/report", leader, nil, "Accept-Language", "zh-CN")
	if rep["generated_at"] == nil || rep["run_id"] != run["id"] || rep["catalogue_version"] == "" {
		t.Fatalf("report %v", rep)
	}
	c := check(rep, "departed_owner_api_keys")
	ev := c["evidence"].(map[string]any)
	items := ev["items"].([]any)
	if c["status"] != "fail" || c["title"] != "创建人已离职的 API 密钥" || len(c["clauses"].([]any)) == 0 || len(items) != 1 {
		t.Fatalf("keys check %v", c)
	}
	if it := items[0].(map[string]any); it["id"] != keyID || it["name"] != "lisgateway" || it["who"] != "zhaolei" || it["department"] != "LAB" {
		t.Fatalf("evidence %v", it)
	}
	if cl := check(rep, "audit_tree_verified"); cl["status"] != "pass" || cl["clauses"].([]any)[0] != "GB/T 22239-2019 8.1.4.3" {
		t.Fatalf("audit check %v", cl)
	}
	if cl := check(rep, "machine_room"); cl["kind"] != "attested" || cl["status"] != "needs_evidence" {
		t.Fatalf("machine room %v", cl)
	}
	// The failing checks raised their alerts (on PostgreSQL with
	// sslmode=disable, the database link fails transport_encrypted too).
	departedAlerts := func(status string) int {
		n := 0
		for _, a := range s.json(200, "GET", "/api/v1/alerts?rule=compliance_check_failed", s.security(), nil)["items"].([]any) {
			a := a.(map[string]any)
			if strings.HasPrefix(a["key"].(string), "departed_") && a["status"] == status {
				n++
			}
		}
		return n
	}
	if n := departedAlerts("new"); n != 2 {
		t.Fatalf("%d alerts of the departed-staff checks", n)
	}
	// The same report as a PDF (in the reports' CJK font, when the
	// machine has it): by ?format=pdf or by Accept, the checks in it.
	if _, err := os.Stat(reports.DefaultFont); err == nil {
		for _, h := range [][]string{nil, {"Accept", "application/pdf"}} {
			path := "/api/v1/compliance/report?format=pdf&lang=zh"
			if h != nil {
				path = "/api/v1/compliance/report?lang=zh"
			}
			st, hdr, body := s.do("GET", path, leader, nil, h...)
			if st != 200 || hdr.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(body, []byte("%PDF-")) {
				t.Fatalf("GET %s %v: %d %s", path, h, st, hdr.Get("Content-Type"))
			}
			if h != nil {
				continue
			}
			if _, err := exec.LookPath("pdftotext"); err == nil {
				f := filepath.Join(t.TempDir(), "c.pdf")
				os.WriteFile(f, body, 0o600)
				out, err := exec.Command("pdftotext", "-layout", f, "-").Output()
				if err != nil || !strings.Contains(string(out), "departed_owner_api_keys") || !strings.Contains(string(out), "8.1.4") {
					t.Errorf("pdftotext of the compliance PDF: %v\n%s", err, out)
				}
			} else if os.Getenv("MEDGUARD_TEST_PDF") == "1" {
				t.Fatal("MEDGUARD_TEST_PDF=1 but pdftotext is missing (apt-get install poppler-utils)")
			}
		}
	} else if os.Getenv("MEDGUARD_TEST_PDF") == "1" {
		t.Fatalf("MEDGUARD_TEST_PDF=1 but %s is missing", reports.DefaultFont)
	}
	if p := s.problem(422, "GET", "/api/v1/compliance/report?format=docx", leader, nil); p["field"] != "format" {
		t.Fatalf("format %v", p)
	}

	// The catalogue for an outside GRC tool (a CISO Assistant library).
	if st, hdr, body := s.do("GET", "/api/v1/compliance/catalogue?format=ciso-assistant", leader, nil); st != 200 ||
		!strings.HasPrefix(hdr.Get("Content-Type"), "application/yaml") || !strings.Contains(string(body), "requirement_nodes:") ||
		!strings.Contains(string(body), "GB/T 22239-2019 8.1.4.2") {
		t.Fatalf("catalogue: %d %v %.300s", st, hdr, body)
	}
	if cat := s.json(200, "GET", "/api/v1/compliance/catalogue", leader, nil); len(cat["checks"].([]any)) < 30 || cat["version"] == "" {
		t.Fatalf("catalogue %v", cat)
	}

	// The key revoked, the next run passes both checks and resolves the alerts.
	if st, _, body := s.do("POST", "/api/v1/api-keys/"+keyID+"/revoke", admin, nil); st != 204 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	run2 := s.json(201, "POST", "/api/v1/compliance/runs", auditor, nil)
	for _, id := range []string{"departed_owner_api_keys", "departed_staff_access"} {
		if c := check(results(run2), id); c["status"] != "pass" || c["value"] != "0" {
			t.Fatalf("%s after the key was revoked: %v", id, c)
		}
	}
	if n := departedAlerts("new"); n != 0 {
		t.Fatalf("%d alerts of the departed-staff checks still open", n)
	}
	hist := s.json(200, "GET", "/api/v1/compliance/checks/departed_owner_api_keys", leader, nil)["items"].([]any)
	if len(hist) != 2 || hist[0].(map[string]any)["status"] != "pass" || hist[1].(map[string]any)["status"] != "fail" {
		t.Fatalf("history %v", hist)
	}
	if sc := s.json(200, "GET", "/api/v1/compliance/scores", leader, nil)["items"].([]any); len(sc) != 2 {
		t.Fatalf("scores %v", sc)
	}

	// Attested evidence: attached by the engineer, signed by the auditor.
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.WriteField("note", "机房门禁与温湿度记录，2026 年 12 月")
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="file"; filename="机房检查.txt"`)
	hdr.Set("Content-Type", "text/plain")
	part, _ := w.CreatePart(hdr)
	part.Write([]byte("机房温度 22 ℃，湿度 50 %，门禁记录完整。\n"))
	w.Close()
	req, _ := http.NewRequest("POST", s.base+"/api/v1/compliance/checks/machine_room/attestations?kind=report", &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+engineer)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("attest: %d %s", resp.StatusCode, body)
	}
	att := s.json(200, "GET", "/api/v1/compliance/checks/machine_room/attestations", leader, nil)["items"].([]any)[0].(map[string]any)
	aid := att["id"].(string)
	rule(t, s.problem(403, "POST", "/api/v1/compliance/attestations/"+aid+"/review", engineer, map[string]string{"note": "自签"}), "deny.no_permission")
	if signed := s.json(200, "POST", "/api/v1/compliance/attestations/"+aid+"/review", auditor, map[string]string{"note": "已核对"}); signed["state"] != "in_force" {
		t.Fatalf("signed %v", signed)
	}
	run3 := s.json(201, "POST", "/api/v1/compliance/runs", auditor, nil)
	if c := check(results(run3), "machine_room"); c["status"] != "pass" {
		t.Fatalf("machine room after signing: %v", c)
	}

	// The refusals are in the audit log, with their rule.
	var refusedReport, refusedRun bool
	for _, e := range s.entries(0) {
		switch {
		case e["action"] == "compliance.report" && e["actor"] == "zhangwei" && e["rule"] == "deny.no_permission":
			refusedReport = true
		case e["action"] == "compliance.run" && e["actor"] == "zhangwei" && e["decision"] == "deny":
			refusedRun = true
		}
	}
	if !refusedReport || !refusedRun {
		t.Fatalf("audit: report refused %v, run refused %v", refusedReport, refusedRun)
	}
}
