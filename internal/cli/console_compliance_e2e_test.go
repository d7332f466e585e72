package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The compliance checks (issue 14) in headless Chromium, over HTTPS
// against the real server, in Chinese: a doctor of the laboratory, its
// interface administrator, made the LIS key and left; the auditor opens
// 合规检查, runs the checks from the page, finds the key's check failing
// with its clause, opens it and reads the key and its departed maker as the
// evidence; the score's trend is drawn.
func TestConsoleComplianceJourney(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"LAB", "检验科"}, {"QCD", "质控科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	s.staff("sunli", "孙丽", "QCD", "auditor", staffPassword)
	out := s.json(201, "POST", "/api/v1/users", admin, map[string]any{"username": "zhaolei", "display_name": "赵磊",
		"department": "LAB", "roles": []string{"doctor", "admin"}, "password": staffPassword})
	for _, p := range out["pending_approvals"].([]any) {
		s.json(200, "POST", "/api/v1/approvals/"+p.(map[string]any)["id"].(string)+"/approve", s.security(), map[string]string{"note": "同意"})
	}
	s.json(201, "POST", "/api/v1/api-keys", s.token("zhaolei", staffPassword),
		map[string]any{"name": "lisgateway", "scopes": []string{"record.write"}, "department": "LAB"})
	s.json(200, "POST", "/api/v1/users/"+out["id"].(string)+"/deactivate", admin, nil)

	b := openBrowser(t, s, chromium, "zh-CN", 1600, 3*time.Minute)
	b.signIn("sunli", staffPassword)
	b.run("the compliance page", chromedp.Navigate(s.base+"/compliance"), chromedp.WaitVisible(chromedp.ID("compliance-checks")),
		chromedp.Click(chromedp.ID("run-now")), chromedp.WaitVisible(chromedp.ID("compliance-trend")))
	row := b.get("the key's check", chromedp.Text(chromedp.ID("check-departed_owner_api_keys")))
	for _, want := range []string{"创建人已离职的 API 密钥", "不通过", "GB/T 22239-2019 8.1.4.2", "实测"} {
		if !strings.Contains(row, want) {
			t.Errorf("the key's check lacks %q: %q", want, row)
		}
	}
	if score := b.get("the score", chromedp.Text(chromedp.ID("compliance-score"))); !strings.Contains(score, "适用检查项通过率") {
		t.Errorf("the score: %q", score)
	}
	b.run("the check's page", chromedp.Navigate(s.base+"/compliance/checks/departed_owner_api_keys"), chromedp.WaitVisible(chromedp.ID("evidence")))
	ev := b.get("the evidence", chromedp.Text(chromedp.ID("evidence")))
	for _, want := range []string{"API 密钥", "lisgateway", "赵磊", "检验科"} {
		if !strings.Contains(ev, want) {
			t.Errorf("the evidence lacks %q: %q", want, ev)
		}
	}
}
