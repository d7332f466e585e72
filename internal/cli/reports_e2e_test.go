package cli_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"medguard/internal/reports"
)

// The leadership's posture report over HTTPS (issue 14): the leadership
// member generates this month's report, finds it in the list, reads its
// figures, downloads the PDF — whose SHA-256 is the target of the
// report.generate audit entry under the leader's name — and views the
// HTML under its own narrow policy. A doctor is refused generating,
// listing and downloading, each refusal logged; bad input is a 422
// naming the field. The console lists the report with its links.
func TestPostureReportOverHTTPS(t *testing.T) {
	t.Parallel()
	pdfTools := os.Getenv("MEDGUARD_TEST_PDF") == "1"
	if _, err := os.Stat(reports.DefaultFont); err != nil {
		if pdfTools {
			t.Fatalf("MEDGUARD_TEST_PDF=1 but %s is missing (apt-get install fonts-droid-fallback)", reports.DefaultFont)
		}
		t.Skipf("%s is missing (apt-get install fonts-droid-fallback; MEDGUARD_TEST_PDF=1 makes this a failure)", reports.DefaultFont)
	}
	s := start(t, "--hospital-name", "滨江市第一人民医院")
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	for _, u := range [][4]string{{"zhengguohua", "郑国华", "", "leadership"}, {"zhangwei", "张建国", "CARD", "doctor"},
		{"sunli", "孙丽", "", "auditor"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	leader, doctor, auditor := s.token("zhengguohua", staffPassword), s.token("zhangwei", staffPassword), s.token("sunli", staffPassword)

	rule(t, s.problem(403, "POST", "/api/v1/reports", doctor, map[string]string{"kind": "monthly"}), "deny.no_permission")
	rule(t, s.problem(403, "POST", "/api/v1/reports", auditor, map[string]string{"kind": "monthly"}), "deny.no_permission")
	if e := s.problem(422, "POST", "/api/v1/reports", leader, map[string]string{"kind": "yearly"}); e["field"] != "kind" {
		t.Fatalf("kind yearly: %v", e)
	}
	if e := s.problem(422, "POST", "/api/v1/reports", leader, map[string]string{"kind": "monthly", "period": "2999-01"}); e["field"] != "period" {
		t.Fatalf("a period to come: %v", e)
	}
	r := s.json(201, "POST", "/api/v1/reports", leader, map[string]string{"kind": "monthly"})
	id := r["id"].(string)
	if r["partial"] != true || r["generated_by"] != "zhengguohua" || r["trigger"] != "on_demand" || r["lang"] != "zh-CN" {
		t.Fatalf("report %v", r)
	}
	list := s.json(200, "GET", "/api/v1/reports?kind=monthly", auditor, nil)
	found := false
	for _, it := range list["items"].([]any) {
		found = found || it.(map[string]any)["id"] == id
	}
	if !found {
		t.Fatalf("the report is not listed: %v", list)
	}
	got := s.json(200, "GET", "/api/v1/reports/"+id, leader, nil)
	figures := got["figures"].(map[string]any)
	if figures["hospital"] != "滨江市第一人民医院" || figures["generated_by"] != "郑国华" || len(figures["trend"].([]any)) != 12 {
		t.Fatalf("figures %v", figures)
	}

	status, h, pdf := s.do("GET", "/api/v1/reports/"+id+"/pdf", leader, nil)
	if status != 200 || h.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("pdf: %d %v", status, h)
	}
	sum := sha256.Sum256(pdf)
	digest := hex.EncodeToString(sum[:])
	if digest != r["pdf_sha256"] || h.Get("X-Content-SHA256") != digest {
		t.Fatalf("the PDF's SHA-256 %s is not the report's %v", digest, r["pdf_sha256"])
	}
	status, h, html := s.do("GET", "/api/v1/reports/"+id+"/html", leader, nil)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
		!bytes.Contains(html, []byte("安全态势月报")) || !bytes.Contains(html, []byte("<svg")) {
		t.Fatalf("html: %d %v", status, h)
	}
	s.problem(403, "GET", "/api/v1/reports/"+id+"/pdf", doctor, nil)
	s.problem(403, "GET", "/api/v1/reports", doctor, nil)
	s.problem(404, "GET", "/api/v1/reports/0000000000000000000000000a/pdf", leader, nil)

	// The log signs the PDF and keeps the refusals.
	var signed, downloaded bool
	refused := map[string]bool{}
	for _, e := range s.entries(0) {
		switch {
		case e["action"] == "report.generate" && e["actor"] == "zhengguohua" && e["decision"] == "allow":
			if e["target_type"] != "report_pdf" || e["target_id"] != digest {
				t.Errorf("report.generate names %v %v, want the PDF %s", e["target_type"], e["target_id"], digest)
			}
			signed = true
		case e["action"] == "report.download" && e["actor"] == "zhengguohua" && e["target_id"] == id:
			downloaded = true
		case e["decision"] == "deny" && (e["actor"] == "zhangwei" || e["actor"] == "sunli"):
			refused[e["actor"].(string)+" "+e["action"].(string)] = true
		}
	}
	for _, want := range []string{"zhangwei report.generate", "sunli report.generate", "zhangwei report.download", "zhangwei report.list"} {
		if !refused[want] {
			t.Errorf("the refusal %q is not logged (%v)", want, refused)
		}
	}
	if !signed || !downloaded {
		t.Fatalf("audit: signed %v, downloaded %v", signed, downloaded)
	}

	// The PDF's text holds the title, the hospital and the leader.
	if _, err := exec.LookPath("pdftotext"); err == nil {
		path := filepath.Join(t.TempDir(), "r.pdf")
		os.WriteFile(path, pdf, 0o600)
		out, err := exec.Command("pdftotext", "-layout", path, "-").Output()
		if err != nil || !strings.Contains(string(out), "安全态势月报") || !strings.Contains(string(out), "滨江市第一人民医院") ||
			!strings.Contains(string(out), "郑国华") {
			t.Errorf("pdftotext: %v\n%s", err, out)
		}
	} else if pdfTools {
		t.Fatal("MEDGUARD_TEST_PDF=1 but pdftotext is missing (apt-get install poppler-utils)")
	}

	// The console lists it with its links; a doctor is refused the page.
	if code, _, page := s.consolePage("/reports", leader, "zh-CN"); code != 200 || !strings.Contains(page, "安全态势报告") ||
		!strings.Contains(page, "/reports/"+id+"/pdf") || !strings.Contains(page, "report-form") {
		t.Fatalf("/reports: %d %s", code, page)
	}
	if code, h, body := s.consolePage("/reports/"+id+"/pdf", leader, "zh-CN"); code != 200 || h.Get("Content-Type") != "application/pdf" ||
		body != string(pdf) {
		t.Fatalf("console pdf: %d %v", code, h)
	}
	if code, _, _ := s.consolePage("/reports", doctor, "zh-CN"); code != 403 {
		t.Fatalf("a doctor's /reports: %d", code)
	}
}
