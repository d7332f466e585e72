package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// The security office's and the auditors' journeys (issue 10) in headless
// Chromium, in Chinese and English, on a demo hospital that lived a few
// hours before the server started: an incident reported three hours ago
// (its grade never confirmed: overdue, alerted as soon as the server
// starts), intruders' failed sign-ins (alerts), and doctors' refused
// reads of one patient's record (possible violations).

// officeDemo is the demo hospital with what the journeys work on.
type officeDemo struct {
	*demoHospital
	// incident and title are, per language, the incident the officer
	// closes.
	incident, title map[string]string
	// patient is the patient the auditor looks up.
	patientID, patientName string
}

// startOfficeDemo builds a demo hospital, lives three hours of its past
// through the services, and serves it.
func startOfficeDemo(t *testing.T, patients, records int) *officeDemo {
	t.Helper()
	dir := t.TempDir()
	argv := []string{"demo", "--data", dir, "--patients", strconv.Itoa(patients), "--records", strconv.Itoa(records), "--workers", "8"}
	var db []string
	dsn := ""
	if pg := os.Getenv(storagetest.PostgresEnv); pg != "" {
		dsn = storagetest.FreshSchema(t, pg)
		db = []string{"--db", dsn}
		argv = append(argv, db...)
	}
	env := map[string]string{"MEDGUARD_ADMIN_PASSWORD": adminPassword, "MEDGUARD_SECURITY_PASSWORD": securityPassword}
	var out, errs bytes.Buffer
	if err := cli.Run(context.Background(), argv, func(k string) string { return env[k] }, &out, &errs); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, out.String(), errs.String())
	}
	h := &demoHospital{Example: map[string]string{}, Department: map[string]string{}}
	table := false
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[0] == "role" && f[1] == "username":
			table = true
		case table && len(f) == 4:
			h.Example[f[0]], h.Department[f[0]] = f[1], f[2]
		case table && len(f) == 3:
			h.Example[f[0]] = f[1]
		case table && len(f) == 0 && len(h.Example) > 0:
			table = false
		}
	}
	o := &officeDemo{demoHospital: h, incident: map[string]string{}, title: map[string]string{}}
	o.livePast(t, dir, dsn)
	h.server = start(t, append([]string{"--data", dir}, db...)...)
	return o
}

// livePast opens the demo's data three hours back on the clock and, as its
// staff would have: reports an incident per language that nobody grades
// since, fails to sign in from two addresses (four alerts each), and has
// doctors of other departments try to read one cardiology record four
// times each (refused: possible violations, more than a page of them).
func (o *officeDemo) livePast(t *testing.T, dir, dsn string) {
	t.Helper()
	ctx := context.Background()
	clock := testkit.NewClock(time.Now().Add(-3 * time.Hour).Truncate(time.Second))
	app, err := cli.Open(ctx, cli.Config{DataDir: dir, DB: dsn, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: "admin",
		Roles: []string{"admin"}}, IP: "10.9.0.1"}
	var users []*identity.User
	for after := ""; ; {
		us, next, err := app.Identity.ListUsers(ctx, admin, after, 200)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, us...)
		if next == "" {
			break
		}
		after = next
	}
	callOf := func(u *identity.User) *medguard.Call {
		return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: u.ID, Name: u.Username, Department: u.Department,
			Roles: u.Roles}, IP: "10.20.1." + strconv.Itoa(len(u.Username)), Purpose: "treatment"}
	}
	byName := map[string]*identity.User{}
	for _, u := range users {
		byName[u.Username] = u
	}
	officer := byName[o.Example["security_officer"]]
	// Another officer records the fix, for the journey's officer to confirm
	// as the second person (issue 13).
	var second *identity.User
	for _, u := range users {
		if slices.Contains(u.Roles, "security_officer") && u.Username != officer.Username && u.Status == identity.Active {
			second = u
		}
	}
	if second == nil {
		t.Fatal("no second security officer in the demo")
	}
	for i, lang := range []string{"zh-CN", "en"} {
		o.title[lang] = []string{"门诊自助机打印故障", "住院部条码打印机故障"}[i]
		in, err := app.Incidents.Report(ctx, callOf(officer), incidents.NewIncident{Title: o.title[lang],
			Description: "打印队列阻塞，影响病案首页打印。", Grade: 3, Criterion: "minor_fault"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.Incidents.AddUpdate(ctx, callOf(second), in.ID, incidents.NewUpdate{Kind: incidents.UpdateFixed,
			Text: "已清空打印队列并更换驱动。"}); err != nil {
			t.Fatal(err)
		}
		o.incident[lang] = in.ID
	}
	clock.Advance(time.Minute)
	for i, ip := range []string{"10.66.0.11", "10.66.0.12"} {
		for n := range 40 {
			_, err := app.Identity.Login(ctx, &medguard.Call{IP: ip, RequestID: "demo-intruder"},
				identity.Credentials{Username: fmt.Sprintf("intruder%d-%02d", i, n), Password: "Wrong#Password1"})
			if !medguard.IsKind(err, medguard.Unauthenticated) {
				t.Fatalf("an intruder's sign-in: %v", err)
			}
		}
	}
	// One cardiology patient's record, and the doctors of other
	// departments.
	cardio := callOf(byName[o.Example["doctor"]])
	ps, _, err := app.Records.ListPatients(ctx, cardio, "", "", 20)
	if err != nil || len(ps) == 0 {
		t.Fatalf("cardiology's patients: %v", err)
	}
	record := ""
	for _, p := range ps {
		rs, _, err := app.Records.ListRecords(ctx, cardio, p.ID, "", 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Department == cardio.Actor.Department && r.Type != "psychiatric_note" && r.Type != "hiv_test" {
				record, o.patientID, o.patientName = r.ID, p.ID, p.Name
				break
			}
		}
		if record != "" {
			break
		}
	}
	if record == "" {
		t.Fatal("no cardiology record")
	}
	clock.Advance(time.Minute)
	readers := 0
	for _, u := range users {
		if !slices.Contains(u.Roles, "doctor") || u.Department == cardio.Actor.Department || u.Department == "" {
			continue
		}
		refused := 0
		for range 4 {
			_, err := app.Records.GetRecord(ctx, callOf(u), record)
			if medguard.IsKind(err, medguard.Forbidden) {
				refused++
			}
		}
		if refused == 4 {
			readers++
		}
		clock.Advance(15 * time.Second)
	}
	if readers <= 25 {
		t.Fatalf("%d doctors refused four times: not a page of candidates", readers)
	}
}

// waitAlerts waits until the server has raised the overdue alerts of the
// journeys' incidents (it checks deadlines as it starts).
func (o *officeDemo) waitAlerts(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		found := map[string]bool{}
		for _, it := range o.json(200, "GET", "/api/v1/alerts?status=new&rule=incident_deadline_overdue&limit=200", admin, nil)["items"].([]any) {
			found[it.(map[string]any)["key"].(string)] = true
		}
		if found[o.incident["zh-CN"]] && found[o.incident["en"]] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no overdue alerts for the incidents: %v", found)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alertsOf lists the alerts of a rule in a state, through the API.
func (o *officeDemo) alertsOf(admin, status, rule string) []map[string]any {
	var out []map[string]any
	for _, it := range o.json(200, "GET", "/api/v1/alerts?status="+status+"&rule="+rule+"&limit=200", admin, nil)["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

func TestConsoleSecurityOfficeJourneys(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	chromium := chromiumPath(t)
	o := startOfficeDemo(t, 120, 500)
	admin := o.token("admin")
	o.waitAlerts(t, admin)
	shots := os.Getenv("MEDGUARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run("auditor/"+lang, func(t *testing.T) { auditorJourney(t, o, chromium, lang, shots) })
		t.Run("officer/"+lang, func(t *testing.T) { officerJourney(t, o, admin, chromium, lang, shots) })
	}
}

// screenshot is a step that saves a screenshot as <lang>-office-<name>.png.
func screenshot(shots, lang, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.CaptureScreenshot()(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(shots, lang+"-office-"+name+".png"), png, 0o644)
	})
}

// auditorJourney: a quality auditor finds the patient by name, opens the
// access report that names them, exports it as CSV and opens the print
// view; then pages through the possible violations.
func auditorJourney(t *testing.T, o *officeDemo, chromium, lang, shots string) {
	auditor := o.Example["auditor"]
	b := openBrowser(t, o.server, chromium, lang, 1000, 3*time.Minute)
	b.signIn(auditor, o.password(auditor))
	shot := func(name string) chromedp.Action[chromedp.Void] { return screenshot(shots, lang, name) }
	words := map[string]struct{ report, csvHead, page2 string }{
		"zh-CN": {"的访问记录", "时间,访问人,角色,做了什么", "第 2 / "},
		"en":    {"Access report of", "Time,Who,Roles,What", "Page 2 of "},
	}[lang]

	b.run("lookup",
		chromedp.WaitVisible(chromedp.ID("figures")),
		shot("dashboard"),
		chromedp.Click(chromedp.CSS(`nav.nav a[href="/audit"]`)),
		chromedp.WaitVisible(chromedp.ID("lookup-q")),
		chromedp.SendKeys(chromedp.ID("lookup-q"), o.patientName),
		chromedp.Click(chromedp.ID("lookup-submit")),
		chromedp.WaitVisible(chromedp.ID("lookup-results")),
		shot("lookup"),
	)
	if loc := b.get("location", chromedp.Location()); !strings.HasSuffix(loc, "/audit/patients") {
		t.Errorf("after the lookup: %s", loc)
	}
	results := b.get("results", chromedp.Text(chromedp.ID("lookup-results")))
	if strings.Contains(results, o.patientName) && len([]rune(o.patientName)) > 1 {
		t.Errorf("the lookup shows the whole name: %s", results)
	}
	b.run("report",
		chromedp.Click(chromedp.CSS(`#lookup-results a[href="/patients/`+o.patientID+`/access-report"]`)),
		chromedp.WaitVisible(chromedp.ID("report-lines")),
		shot("access-report"),
		chromedp.ScrollIntoView(chromedp.ID("report-lines")),
		shot("access-report-lines"),
	)
	if name := strings.TrimSpace(b.get("patient", chromedp.Text(chromedp.ID("report-patient")))); name != o.patientName {
		t.Errorf("the report names %q, want %q", name, o.patientName)
	}
	if h := b.get("heading", chromedp.Text(chromedp.ID("summary-h"))); !strings.Contains(h, words.report) || !strings.Contains(h, o.patientName) {
		t.Errorf("report heading %q", h)
	}
	lines := b.get("lines", chromedp.Text(chromedp.ID("report-lines")))
	for _, code := range []string{"record.read", "deny", "not_found", "UTC"} {
		if strings.Contains(lines, code) {
			t.Errorf("the report shows %q", code)
		}
	}
	// The CSV export, as the page's link downloads it.
	body := b.get("csv", chromedp.Evaluate[string](`fetch(document.getElementById("report-lines-csv").href).then(r => r.text())`,
		chromedp.EvalAwaitPromise))
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
	if err != nil || len(rows) < 5 || !strings.HasPrefix(strings.Join(rows[0], ","), words.csvHead) {
		t.Fatalf("CSV: %v %q", err, body)
	}
	// The print view: no navigation, the patient named, every line.
	href := b.get("print link", chromedp.Evaluate[string](`document.getElementById("report-lines-print").href`))
	b.run("print",
		chromedp.Navigate(href),
		chromedp.WaitVisible(chromedp.CSS(".print-head")),
		shot("access-report-print"),
	)
	if n := b.get("nav", chromedp.Evaluate[string](`String(document.querySelectorAll("nav.nav").length)`)); n != "0" {
		t.Errorf("the print view has navigation")
	}
	if name := strings.TrimSpace(b.get("patient", chromedp.Text(chromedp.ID("report-patient")))); name != o.patientName {
		t.Errorf("the print view names %q", name)
	}

	// The possible violations, a page at a time.
	b.run("candidates",
		chromedp.Navigate(o.base+"/"),
		chromedp.Click(chromedp.CSS(`nav.nav a[href="/accountability"]`)),
		chromedp.Click(chromedp.ID("candidates-link")),
		chromedp.WaitVisible(chromedp.ID("candidates")),
		shot("candidates"),
		chromedp.Click(chromedp.ID("candidates-next")),
		chromedp.WaitVisible(chromedp.ID("candidates-prev")),
		shot("candidates-page-2"),
	)
	if p := b.get("pager", chromedp.Text(chromedp.CSS("nav.pager span"))); !strings.Contains(p, words.page2) {
		t.Errorf("pager %q", p)
	}
	grid := b.get("candidates", chromedp.Text(chromedp.ID("candidates")))
	if strings.Contains(grid, "unauthorized_queries") || !strings.Contains(grid, "#") {
		t.Errorf("candidates: %s", grid)
	}
}

// officerJourney: a security officer filters the alerts, acknowledges two
// at once, escalates one to an incident picked from a list, and closes the
// incident through the confirmation; its overdue-deadline alerts are
// cleared.
func officerJourney(t *testing.T, o *officeDemo, admin, chromium, lang, shots string) {
	officer := o.Example["security_officer"]
	incident, title := o.incident[lang], o.title[lang]
	b := openBrowser(t, o.server, chromium, lang, 1000, 3*time.Minute)
	b.signIn(officer, o.password(officer))
	shot := func(name string) chromedp.Action[chromedp.Void] { return screenshot(shots, lang, name) }
	words := map[string]struct{ acked, escalated, closed, rule string }{
		"zh-CN": {"所选告警已确认。", "告警已升级处理。", "事件已关闭。", "同一 IP 多次登录失败"},
		"en":    {"The alerts ticked are acknowledged.", "Alert escalated.", "Incident closed.", "Failed sign-ins from one IP"},
	}[lang]

	// The dashboard's charts lead to their lists.
	b.run("dashboard",
		chromedp.WaitVisible(chromedp.ID("figures")),
		shot("dashboard"),
		chromedp.Click(chromedp.CSS(`#chart-alerts a`)),
		chromedp.WaitVisible(chromedp.ID("alert-filters")),
	)
	if loc := b.get("location", chromedp.Location()); !strings.Contains(loc, "/alerts?") || !strings.Contains(loc, "rule=") {
		t.Errorf("the chart's bar led to %s", loc)
	}
	acked := len(o.alertsOf(admin, "acknowledged", "failed_signin_ip"))
	// The chart's list has the same filters as the full list: navigate (and
	// wait for the load), or the form filled could be the old page's.
	b.run("filter alerts",
		chromedp.Navigate(o.server.base+"/alerts"),
		chromedp.WaitVisible(chromedp.ID("alert-filters")),
		chromedp.SetValue(chromedp.ID("f-rule"), "failed_signin_ip"),
		chromedp.SetValue(chromedp.ID("f-severity"), "medium"),
		chromedp.Click(chromedp.ID("alert-filters-submit")),
		chromedp.WaitVisible(chromedp.ID("bulk-form")),
		shot("alerts-filtered"),
	)
	if loc := b.get("location", chromedp.Location()); !strings.Contains(loc, "rule=failed_signin_ip") || !strings.Contains(loc, "severity=medium") {
		t.Fatalf("the filter: %s", loc)
	}
	if grid := b.get("alerts", chromedp.Text(chromedp.ID("alerts"))); !strings.Contains(grid, words.rule) || strings.Contains(grid, "10m0s") {
		t.Fatalf("alerts: %s", grid)
	}
	b.run("bulk acknowledge",
		chromedp.Click(chromedp.CSS(`#alerts tbody tr:nth-child(1) input[name="alert"]`)),
		chromedp.Click(chromedp.CSS(`#alerts tbody tr:nth-child(2) input[name="alert"]`)),
		chromedp.Click(chromedp.ID("bulk-acknowledge")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		shot("alerts-acknowledged"),
	)
	if f := strings.TrimSpace(b.get("flash", chromedp.Text(chromedp.CSS(".flash")))); f != words.acked {
		t.Errorf("flash %q", f)
	}
	if n := len(o.alertsOf(admin, "acknowledged", "failed_signin_ip")); n != acked+2 {
		t.Errorf("%d acknowledged, want %d", n, acked+2)
	}
	// Escalated from the alert's page to the incident picked from a list.
	b.run("escalate",
		chromedp.Click(chromedp.CSS(`#alerts tbody tr:nth-child(1) a[href^="/alerts/"]`)),
		chromedp.WaitVisible(chromedp.ID("escalate-incident")),
		chromedp.SetValue(chromedp.ID("escalate-incident"), incident),
		shot("alert-escalate"),
		chromedp.Click(chromedp.ID("alert-escalate")),
		chromedp.WaitVisible(chromedp.ID("alert-incident")),
	)
	if f := strings.TrimSpace(b.get("flash", chromedp.Text(chromedp.CSS(".flash")))); f != words.escalated {
		t.Errorf("flash %q", f)
	}
	if got := b.get("incident", chromedp.Text(chromedp.ID("alert-incident"))); got != title {
		t.Errorf("escalated to %q, want %q", got, title)
	}

	// The incident: grade confirmed, the other officer's fix confirmed as
	// the second person, then closed through the confirmation.
	if n := len(o.mine(admin, incident)); n == 0 {
		t.Fatalf("no overdue alert of %s before closing", incident)
	}
	b.run("incident",
		chromedp.Click(chromedp.CSS(`nav.nav a[href="/incidents"]`)),
		chromedp.WaitVisible(chromedp.ID("incidents")),
		shot("incidents"),
		chromedp.Click(chromedp.CSS(`#incidents a[href="/incidents/`+incident+`"]`)),
		chromedp.WaitVisible(chromedp.ID("grade-form")),
		chromedp.Click(chromedp.CSS(`#grade-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("commander-form")),
		chromedp.Click(chromedp.CSS(`#timeline button[id^="confirm-step-"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline .step-confirmed`)),
		shot("incident-step-confirmed"),
		chromedp.WaitVisible(chromedp.ID("close-form")),
		chromedp.SendKeys(chromedp.ID("c-summary"), "已更换打印机驱动，恢复正常。"),
		chromedp.Click(chromedp.ID("close-submit")),
		chromedp.WaitVisible(chromedp.ID("close-confirm")),
		shot("incident-close-confirm"),
	)
	if n := len(o.mine(admin, incident)); n == 0 {
		t.Fatal("the confirmation closed the incident")
	}
	b.run("close",
		chromedp.Click(chromedp.ID("close-confirm-submit")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		shot("incident-closed"),
	)
	if f := strings.TrimSpace(b.get("flash", chromedp.Text(chromedp.CSS(".flash")))); f != words.closed {
		t.Errorf("flash %q", f)
	}
	if n := len(o.mine(admin, incident)); n != 0 {
		t.Errorf("%d overdue alerts of the closed incident are still new", n)
	}
	b.run("cleared",
		chromedp.Navigate(o.base+"/alerts?status=new&rule=incident_deadline_overdue"),
		chromedp.WaitVisible(chromedp.ID("alert-filters")),
		shot("deadline-alerts-cleared"),
	)
	if n := b.get("links", chromedp.Evaluate[string](`String(document.querySelectorAll('#alerts a[href="/incidents/`+incident+`"]').length)`)); n != "0" {
		t.Errorf("%s links to the closed incident's alerts", n)
	}
}

// mine lists the new overdue alerts of an incident.
func (o *officeDemo) mine(admin, incident string) []map[string]any {
	var out []map[string]any
	for _, a := range o.alertsOf(admin, "new", "incident_deadline_overdue") {
		if a["key"] == incident {
			out = append(out, a)
		}
	}
	return out
}
