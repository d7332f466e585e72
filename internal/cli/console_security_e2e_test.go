package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// TestConsoleAlertsInBrowser drives the console's alerts page in headless
// Chromium, in Simplified Chinese and in English: failed sign-ins from one
// address raise an alert; a security officer (whose role the department
// head approved) signs in, opens the alerts from the
// navigation bar and acknowledges the alert. Screenshots go where
// TestConsoleInBrowser puts them (MEDGUARD_SCREENSHOTS, default a
// temporary directory).
func TestConsoleAlertsInBrowser(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	chromium := chromiumPath(t)
	s := start(t)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	shots := os.Getenv("MEDGUARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) { alertsInBrowser(t, s, admin, chromium, lang, shots) })
	}
}

func alertsInBrowser(t *testing.T, s *server, admin, chromium, lang, shots string) {
	const password = "Yiyuan#Ceshi2026"
	sfx := map[string]string{"zh-CN": "zh", "en": "en"}[lang]
	officer, head := "officer2-"+sfx, "head2-"+sfx
	s.staff(head, "刘洋", "CARD", "dept_head", password)
	s.staff(officer, "周强", "", "security_officer", password)

	// Ten failed sign-ins from one address (unknown names: nobody is
	// locked out) fire the failed_signin_ip rule.
	before := len(s.json(200, "GET", "/api/v1/alerts?status=new", admin, nil)["items"].([]any))
	for i := range 10 {
		if code, _, _ := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": fmt.Sprintf("intruder%02d-%s", i, sfx),
			"password": "Wrong#Password1"}); code != 401 {
			t.Fatalf("failed sign-in %d: %d", i, code)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.json(200, "GET", "/api/v1/alerts?status=new", admin, nil)["items"].([]any)) <= before {
		if time.Now().After(deadline) {
			t.Fatal("no alert for the failed sign-ins")
		}
		time.Sleep(50 * time.Millisecond)
	}

	b := openBrowser(t, s, chromium, lang, 900, 2*time.Minute)
	run, get := b.run, b.get
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, lang+"-"+name+".png"), png, 0o644)
		})
	}

	// The officer signs in and, like every member of staff, enrols a
	// second factor at the first sign-in.
	run("sign-in",
		chromedp.Navigate(s.base+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), officer),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
	)
	code, err := totp.GenerateCode(strings.TrimSpace(get("secret", chromedp.Text(chromedp.ID("totp-secret")))), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	run("enrolment",
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitNotPresent(chromedp.ID("totp-secret")),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)

	// The alerts page from the navigation bar, in the browser's language.
	run("alerts",
		chromedp.Click(chromedp.CSS(`nav.nav a[href="/alerts"]`)),
		chromedp.WaitVisible(chromedp.ID("alerts")),
		shot("alerts"),
	)
	words := map[string][2]string{"zh-CN": {"同一 IP 多次登录失败", "告警已确认。"}, "en": {"Failed sign-ins from one IP", "Alert acknowledged."}}[lang]
	if text := get("alerts", chromedp.Text(chromedp.ID("alerts"))); !strings.Contains(text, words[0]) {
		t.Fatalf("the alerts page lacks %q: %s", words[0], text)
	}
	run("acknowledge",
		chromedp.Click(chromedp.CSS(`#alerts tbody tr:first-child button[formaction$="/acknowledge"]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		shot("alert-acknowledged"),
	)
	if text := get("flash", chromedp.Text(chromedp.CSS(".flash"))); strings.TrimSpace(text) != words[1] {
		t.Fatalf("flash %q, want %q", text, words[1])
	}
	if loc := get("location", chromedp.Location()); !strings.Contains(loc, "/alerts") {
		t.Fatalf("after acknowledging: %s", loc)
	}
	n := len(s.json(200, "GET", "/api/v1/alerts?status=acknowledged", admin, nil)["items"].([]any))
	if want := map[string]int{"zh-CN": 1, "en": 2}[lang]; n != want {
		t.Fatalf("%d acknowledged alerts, want %d", n, want)
	}
}
