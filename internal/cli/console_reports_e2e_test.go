package cli_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"medguard/internal/reports"
)

// The posture reports (issue 14) in headless Chromium, over HTTPS, in
// Chinese: the leadership member opens the dashboard, follows its reports
// tile to /reports, generates this month's report on the form, finds it
// listed, and opens its HTML view: the document's own style applies (its
// policy lets it) and its charts are drawn as SVG with bars.
func TestConsoleReportsJourney(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	if _, err := os.Stat(reports.DefaultFont); err != nil {
		if os.Getenv("MEDGUARD_TEST_PDF") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s := start(t, "--hospital-name", "滨江市第一人民医院")
	s.staff("zhengguohua", "郑国华", "", "leadership", staffPassword)
	// An alert and an incident, so that the month has bars to draw.
	s.staff("zhouqiang", "周强", "", "security_officer", staffPassword)
	s.json(201, "POST", "/api/v1/incidents", s.token("zhouqiang", staffPassword), map[string]any{"title": "门诊挂号缓慢",
		"description": "门诊挂号系统响应缓慢", "grade": 3, "criterion": "minor_fault"})

	b := openBrowser(t, s, chromium, "zh-CN", 1400, 3*time.Minute)
	b.signIn("zhengguohua", staffPassword)
	b.run("the dashboard's reports tile", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.ID("tile-reports")),
		chromedp.Click(chromedp.ID("tile-reports")), chromedp.WaitVisible(chromedp.ID("report-form")))
	b.run("generating this month's report",
		chromedp.SetValue(chromedp.ID("kind"), "monthly"),
		chromedp.Click(chromedp.CSS(`#report-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("reports")))
	row := b.get("the list", chromedp.Text(chromedp.ID("reports")))
	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	if !strings.Contains(row, month) || !strings.Contains(row, "月报") || !strings.Contains(row, "郑国华") || !strings.Contains(row, "下载 PDF") {
		t.Fatalf("the list: %q", row)
	}
	b.run("the HTML view", chromedp.Click(chromedp.CSS(`#reports a[id^="html-"]`)), chromedp.WaitVisible(chromedp.CSS(`svg`)))
	if title := b.get("the title", chromedp.Text(chromedp.CSS(`h1`))); title != "安全态势月报" {
		t.Errorf("the report's title: %q", title)
	}
	// The inline style applies (the document's policy allows it): tables
	// collapse their borders; the charts have bars.
	if v := b.get("the style", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("table")).borderCollapse`)); v != "collapse" {
		t.Errorf("the report's style is not applied: border-collapse %q", v)
	}
	if n := b.get("the bars", chromedp.Evaluate[string](`String(document.querySelectorAll("svg rect").length)`)); n == "0" || n == "" {
		t.Errorf("no bars drawn: %s", n)
	}
	if text := b.get("the report", chromedp.Text(chromedp.CSS(`body`))); !strings.Contains(text, "滨江市第一人民医院") || !strings.Contains(text, "一级") {
		t.Errorf("the report's text: %q", text)
	}
}
