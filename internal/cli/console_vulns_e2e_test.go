package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The vulnerability journey (issue 13) in headless Chromium, over HTTPS
// against the real server, in Chinese: the security officer uploads the
// records system's Trivy report on /vulns and sees its findings with their
// due dates in hours, opens Log4Shell and suspends exports; a cardiologist
// then finds the banner on his home page.
func TestConsoleVulnerabilityJourney(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	s := start(t)
	admin, security := s.admin(), s.security()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"ITD", "信息科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	s.staff("zhangwei", "张建国", "CARD", "doctor", staffPassword)
	asset := s.json(201, "POST", "/api/v1/assets", security, map[string]any{"code": "ZC-2019-0002", "name": "电子病历应用容器",
		"kind": "server", "department": "ITD", "classification": "core", "records_system": true})["id"].(string)
	trivy, err := os.ReadFile("../vulns/testdata/trivy-emr-image.json")
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "trivy.json")
	trivy = []byte(strings.Replace(string(trivy), "2026-12-04T03:15:27.481920113+08:00", time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), 1))
	if err := os.WriteFile(report, trivy, 0o600); err != nil {
		t.Fatal(err)
	}

	officer := openBrowser(t, s, chromium, "zh-CN", 1600, 4*time.Minute)
	officer.signIn("security", securityPassword)
	officer.run("uploading the report",
		chromedp.Navigate(s.base+"/vulns"),
		chromedp.WaitVisible(chromedp.ID("scan-import-form")),
		chromedp.SetValue(chromedp.ID("scan-asset"), asset),
		chromedp.SetValue(chromedp.ID("scan-format"), "trivy"),
		chromedp.SetUploadFiles(chromedp.ID("scan-file"), []string{report}),
		chromedp.Click(chromedp.ID("scan-import")),
		chromedp.WaitVisible(chromedp.ID("import-result")),
	)
	if got := officer.get("the result", chromedp.Text(chromedp.ID("import-result"))); !strings.Contains(got, "新发现 6 条") || !strings.Contains(got, "电子病历应用容器") {
		t.Errorf("the import's result: %q", got)
	}
	grid := officer.get("the grid", chromedp.Text(chromedp.ID("vulns")))
	if !strings.Contains(grid, "剩余 46 小时") && !strings.Contains(grid, "剩余 47 小时") || !strings.Contains(grid, "Apache Log4j") && !strings.Contains(grid, "log4j-core") {
		t.Errorf("the grid: %q", grid)
	}
	id := s.json(200, "GET", "/api/v1/vulns?q=CVE-2021-44228", security, nil)["items"].([]any)[0].(map[string]any)["id"].(string)
	officer.run("suspending exports",
		chromedp.Navigate(s.base+"/vulns/"+id),
		chromedp.WaitVisible(chromedp.ID("suspend-form")),
		chromedp.SendKeys(chromedp.ID("suspend-reason"), "Log4j 远程代码执行，修复前暂停病历导出"),
		chromedp.Click(chromedp.ID("suspend")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	)
	if page := officer.get("the vulnerability", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(page, "已暂停：导出病历") ||
		!strings.Contains(page, "申请提前恢复") {
		t.Errorf("the vulnerability's page: %q", page)
	}

	doctor := openBrowser(t, s, chromium, "zh-CN", 1000, 4*time.Minute)
	doctor.signIn("zhangwei", staffPassword)
	if banner := doctor.get("the banner", chromedp.Text(chromedp.ID("suspended-banner"))); !strings.Contains(banner, "导出病历") {
		t.Errorf("the doctor's banner: %q", banner)
	}
}
