package console_test

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"medguard/internal/reports"
)

// TestPostureReportPages: the leader finds the reports' tile on the
// dashboard, generates this month's report on /reports, sees it listed
// with its links, downloads the PDF and views the HTML under its own
// policy; bad input is refused and stores nothing; the auditor reads
// the list without the form; a doctor is refused; every page speaks
// Chinese.
func TestPostureReportPages(t *testing.T) {
	if _, err := os.Stat(reports.DefaultFont); err != nil {
		if os.Getenv("MEDGUARD_TEST_PDF") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	h := registersHospital(t)
	leader := h.browser("zh-CN")
	dash := leader.signIn("zhengguohua", staffPassword)
	if !strings.Contains(dash.body, `id="tile-reports"`) || !strings.Contains(dash.body, `id="tile-reports-none"`) {
		t.Fatalf("the leader's dashboard: %s", dash.body)
	}
	list := leader.get("/reports")
	if list.status != 200 || !strings.Contains(list.body, `id="report-form"`) || !strings.Contains(list.body, `id="no-reports"`) {
		t.Fatalf("/reports: %d %s", list.status, list.body)
	}
	chineseOnly(t, "/reports", list.body)
	if bad := leader.post("/reports", list, url.Values{"kind": {"yearly"}}); bad.status != 422 {
		t.Fatalf("kind yearly: %d", bad.status)
	}
	if bad := leader.post("/reports", list, url.Values{"kind": {"monthly"}, "period": {"2999-01"}}); bad.status != 422 {
		t.Fatalf("a period to come: %d", bad.status)
	}
	p := leader.post("/reports", list, url.Values{"kind": {"monthly"}, "lang": {"zh-CN"}})
	if p.status != 200 || p.url.Path != "/reports" || !strings.Contains(p.body, "报告已生成。") {
		t.Fatalf("generated: %d %s %s", p.status, p.url, p.body)
	}
	rows := between(p.body, `id="reports"`, `</table>`)
	if strings.Count(rows, `<tr id="r-`) != 1 || !strings.Contains(rows, "月报") || !strings.Contains(rows, "郑国华") ||
		!strings.Contains(rows, "截至生成时") {
		t.Fatalf("the list: %s", rows)
	}
	chineseOnly(t, "/reports", p.body)
	i := strings.Index(rows, `href="/reports/`)
	if i < 0 {
		t.Fatalf("no link: %s", rows)
	}
	id := rows[i+len(`href="/reports/`) : i+len(`href="/reports/`)+26]
	pdf := leader.get("/reports/" + id + "/pdf")
	if pdf.status != 200 || pdf.header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf.body, "%PDF-") ||
		pdf.header.Get("X-Content-SHA256") == "" {
		t.Fatalf("the PDF: %d %v", pdf.status, pdf.header)
	}
	html := leader.get("/reports/" + id + "/html")
	if html.status != 200 || !strings.Contains(html.header.Get("Content-Security-Policy"), "style-src 'unsafe-inline'") ||
		strings.Contains(html.header.Get("Content-Security-Policy"), "script-src 'self'") || !strings.Contains(html.body, "安全态势月报") {
		t.Fatalf("the HTML: %d %v", html.status, html.header)
	}
	chineseOnly(t, "/reports/{id}/html", html.body)
	if dash := leader.get("/"); !strings.Contains(dash.body, `id="tile-reports-latest"`) {
		t.Fatalf("the dashboard's latest report: %s", dash.body)
	}

	auditor := h.browser("zh-CN")
	auditor.signIn("sunli", staffPassword)
	if a := auditor.get("/reports"); a.status != 200 || strings.Contains(a.body, `id="report-form"`) || !strings.Contains(a.body, id) {
		t.Fatalf("the auditor's /reports: %d", a.status)
	}
	doctor := h.browser("zh-CN")
	doctor.signIn("zhangwei", staffPassword)
	if d := doctor.get("/reports"); d.status != 403 {
		t.Fatalf("a doctor's /reports: %d", d.status)
	}
	if d := doctor.get("/reports/" + id + "/pdf"); d.status != 403 {
		t.Fatalf("a doctor's PDF: %d", d.status)
	}
}
