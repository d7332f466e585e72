package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The daily inspection in headless Chromium, over HTTPS against the real
// server, in Chinese (issue 13): an IT engineer fills in today's form —
// the ranges beside every item, medguard's own readings filled in — with
// the archive room at 25.3 °C, signs it, and sees the reading marked out
// of range; the security officer finds the alert, opens the inspection
// and countersigns it.
func TestConsoleInspectionJourney(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	s := start(t)
	s.json(201, "POST", "/api/v1/departments", s.admin(), map[string]string{"code": "ITD", "name": "信息科"})
	for _, u := range [][4]string{{"chenjing", "陈静", "ITD", "it_engineer"}, {"zhouqiang", "周强", "ITD", "security_officer"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}

	inspector := openBrowser(t, s, chromium, "zh-CN", 1400, 3*time.Minute)
	inspector.signIn("chenjing", staffPassword)
	inspector.run("today's form", chromedp.Navigate(s.base+"/inspections"), chromedp.WaitVisible(chromedp.ID("inspection-form")))
	if r := inspector.get("the temperature's range", chromedp.Text(chromedp.CSS("#item-room_temperature .range"))); r != "20–24 °C" {
		t.Fatalf("the temperature's range: %q", r)
	}
	if r := inspector.get("the humidity's range", chromedp.Text(chromedp.CSS("#item-room_humidity .range"))); r != "45–60 %" {
		t.Fatalf("the humidity's range: %q", r)
	}
	if load := inspector.get("the server's load", chromedp.Text(chromedp.ID("item-server_load"))); !strings.Contains(load, "系统读取") ||
		!strings.Contains(load, "15 分钟平均负载") {
		t.Fatalf("the server's load: %q", load)
	}
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.ID("in-room_temperature"), "25.3"),
		chromedp.SendKeys(chromedp.ID("in-room_humidity"), "52"),
		chromedp.SendKeys(chromedp.CSS("input[name='note.room_temperature']"), "空调制冷不足，已报修"),
	}
	for _, k := range []string{"fire_devices", "anti_theft_devices", "access_devices", "storage_devices", "backup_status"} {
		steps = append(steps, chromedp.SetValue(chromedp.ID("in-"+k), "true"))
	}
	steps = append(steps, chromedp.SendKeys(chromedp.ID("note"), "上午巡查"), chromedp.Click(chromedp.ID("sign-inspection")),
		chromedp.WaitVisible(chromedp.ID("inspection-status")))
	inspector.run("signing the inspection", steps...)
	if flash := inspector.get("flash", chromedp.Text(chromedp.CSS("p.flash"))); !strings.Contains(flash, "有读数超出范围，已告警") {
		t.Fatalf("the signing's message: %q", flash)
	}
	if row := inspector.get("the temperature", chromedp.Text(chromedp.ID("r-room_temperature"))); !strings.Contains(row, "25.3 °C") ||
		!strings.Contains(row, "超出范围") {
		t.Fatalf("the temperature's row: %q", row)
	}
	id := idOf(t, inspector.get("location", chromedp.Location()), "/inspections/")

	reviewer := openBrowser(t, s, chromium, "zh-CN", 1400, 3*time.Minute)
	reviewer.signIn("zhouqiang", staffPassword)
	reviewer.run("the alerts", chromedp.Navigate(s.base+"/alerts?rule=inspection_out_of_range"), chromedp.WaitVisible(chromedp.ID("alerts")))
	if alerts := reviewer.get("the alert", chromedp.Text(chromedp.ID("alerts"))); !strings.Contains(alerts, "巡查读数超出范围") ||
		!strings.Contains(alerts, "读数 25.3 °C，超出正常范围 20–24 °C") {
		t.Fatalf("the alerts: %q", alerts)
	}
	reviewer.run("countersigning",
		chromedp.Navigate(s.base+"/inspections/"+id),
		chromedp.WaitVisible(chromedp.ID("review-form")),
		chromedp.SendKeys(chromedp.ID("review-note"), "已通知后勤维修空调"),
		chromedp.Click(chromedp.ID("countersign")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	)
	if status := reviewer.get("the status", chromedp.Text(chromedp.ID("inspection-status"))); !strings.Contains(status, "已复核签字") {
		t.Fatalf("after countersigning: %q", status)
	}
	if who := reviewer.get("the reviewer", chromedp.Text(chromedp.ID("reviewer"))); !strings.Contains(who, "周强") {
		t.Fatalf("the reviewer: %q", who)
	}
}
