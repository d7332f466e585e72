package cli_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// TestConsoleReadingInBrowser walks finding and reading patients and
// break-glass (issue 10) on the demo hospital in headless Chromium, in
// Simplified Chinese and in English:
//
//   - a doctor searches a patient by name, tells two results of that name
//     apart (age, the end of the 病案号, departments), opens the patient
//     (banner, records newest first, a type filter) and a record by GET,
//     reloads it and comes back to it by its address (a bookmark);
//   - the record's address survives sign-in: a nurse's first sign-in with
//     enrolment of the second factor, and the doctor's with a code, both
//     end on the record;
//   - a doctor of another department breaks the glass once — the form names
//     the patient about to be opened — reads two records and goes back to
//     the patient's page each time, never to the form;
//   - the department head sees one review item naming the patient and the
//     two records read, with nothing chosen; 不合理 without a note is
//     refused next to that item while another item keeps what was chosen
//     and typed; then the head judges it.
//
// Screenshots (reading-*.png) go to MEDGUARD_SCREENSHOTS or a temporary
// directory.
func TestConsoleReadingInBrowser(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	chromium := chromiumPath(t)
	h := startDemo(t, 120, 500)
	shots := os.Getenv("MEDGUARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	w := readingWorld(t, h)
	for i, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) { readingJourneys(t, h, w, w.cast[i], chromium, lang, shots) })
	}
}

// demoStaff is a member of the demo's staff as the API lists them.
type demoStaff struct {
	Username, DisplayName, Department string
	Roles                             []string
	Frozen                            bool
	Status                            string
}

// demoPatient is a patient of the department under review, with their
// records there.
type demoPatient struct {
	ID, Name, Gender, BirthDate, MRN string
	Records                          []string // ids of the department's records
}

// readingCast is who plays each part in one language's journeys.
type readingCast struct {
	doctor, nurse, outsider demoStaff
	// found is the patient the doctor finds; glass the one the outsider
	// opens by breaking the glass, other a second break-glass (by the API)
	// for the review queue.
	found, glass, other demoPatient
}

type readingWorldT struct {
	dept, head string            // the department under review and its head
	names      map[string]string // department code → name
	clerk      string            // a records clerk's API token
	cast       [2]readingCast
}

// readingWorld picks, through the API, the people and patients of the
// journeys: the demo's department head and their department D; for each
// language a doctor and a nurse of D, a doctor of another department with
// no relation to the patients chosen, and three patients of D.
func readingWorld(t *testing.T, h *demoHospital) *readingWorldT {
	t.Helper()
	w := &readingWorldT{dept: h.Department["dept_head"], head: h.Example["dept_head"], names: map[string]string{}}
	if w.dept == "" || w.dept == "PSYC" {
		t.Fatalf("the demo's department head is in %q", w.dept)
	}
	admin := h.token("admin")
	for _, d := range h.json(200, "GET", "/api/v1/departments?limit=200", admin, nil)["items"].([]any) {
		m := d.(map[string]any)
		w.names[m["code"].(string)] = m["name"].(string)
	}
	var staff []demoStaff
	for cursor := ""; ; {
		page := h.json(200, "GET", "/api/v1/users?limit=200"+cursor, admin, nil)
		for _, u := range page["items"].([]any) {
			m := u.(map[string]any)
			s := demoStaff{Username: m["username"].(string), DisplayName: m["display_name"].(string),
				Department: m["department"].(string), Frozen: m["frozen"].(bool), Status: m["status"].(string)}
			for _, r := range m["roles"].([]any) {
				s.Roles = append(s.Roles, r.(string))
			}
			staff = append(staff, s)
		}
		next, _ := page["next"].(string)
		if next == "" {
			break
		}
		cursor = "&cursor=" + url.QueryEscape(next)
	}
	pick := func(role string, inDept bool) []demoStaff {
		var out []demoStaff
		for _, s := range staff {
			if slices.Equal(s.Roles, []string{role}) && s.Status == "active" && !s.Frozen && s.Username != h.Example[role] &&
				(s.Department == w.dept) == inDept && s.Department != "" && s.Department != "PSYC" {
				out = append(out, s)
			}
		}
		return out
	}
	doctors, nurses, outsiders := pick("doctor", true), pick("nurse", true), pick("doctor", false)
	if len(doctors) < 2 || len(nurses) < 2 || len(outsiders) < 2 {
		t.Fatalf("the demo has too few staff in %s: %d doctors, %d nurses; %d doctors elsewhere", w.dept, len(doctors), len(nurses), len(outsiders))
	}
	// The department's patients, as a records clerk lists them (few: every
	// patient listed counts towards the clerk's bulk-read rule).
	w.clerk = h.token(h.Example["records_clerk"])
	var patients []demoPatient
	for _, p := range h.json(200, "GET", "/api/v1/patients?department="+w.dept+"&limit=24", w.clerk, nil)["items"].([]any) {
		m := p.(map[string]any)
		dp := demoPatient{ID: m["id"].(string), Name: m["name"].(string), Gender: m["gender"].(string)}
		dp.BirthDate, _ = m["birth_date"].(string)
		dp.MRN, _ = m["mrn"].(string)
		for _, r := range h.json(200, "GET", "/api/v1/patients/"+dp.ID+"/records?limit=200", w.clerk, nil)["items"].([]any) {
			rm := r.(map[string]any)
			if rm["department"] == w.dept {
				dp.Records = append(dp.Records, rm["id"].(string))
			}
		}
		if dp.MRN != "" && len(dp.Records) > 0 {
			patients = append(patients, dp)
		}
	}
	used := map[string]bool{}
	take := func(minRecords int, outsider string) demoPatient {
		for _, p := range patients {
			if used[p.ID] || len(p.Records) < minRecords {
				continue
			}
			if outsider != "" {
				// No relation: the outsider's read of the patient is refused.
				if st, _, _ := h.do("GET", "/api/v1/patients/"+p.ID, h.token(outsider), nil); st != 403 {
					continue
				}
			}
			used[p.ID] = true
			return p
		}
		t.Fatalf("no patient of %s fits (%d records, without a relation to %s)", w.dept, minRecords, outsider)
		return demoPatient{}
	}
	for i := range w.cast {
		c := &w.cast[i]
		c.doctor, c.nurse, c.outsider = doctors[i], nurses[i], outsiders[i]
		c.found = take(1, "")
		c.glass = take(2, c.outsider.Username)
		c.other = take(1, c.outsider.Username)
	}
	return w
}

func readingJourneys(t *testing.T, h *demoHospital, w *readingWorldT, c readingCast, chromium, lang, shots string) {
	zh := lang == "zh-CN"
	say := func(zhText, enText string) string {
		if zh {
			return zhText
		}
		return enText
	}
	b := openBrowser(t, h.server, chromium, lang, 900, 4*time.Minute)
	run, get := b.run, b.get
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, lang+"-reading-"+name+".png"), png, 0o644)
		})
	}
	texts := func(what, selector string) []string {
		t.Helper()
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
			`Array.from(document.querySelectorAll(%q)).map(e => e.innerText.trim())`, selector)))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	truth := func(what, expr string) bool {
		t.Helper()
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	tail := func(mrn string) string {
		r := []rune(mrn)
		return string(r[max(0, len(r)-4):])
	}
	pw := demoStaffPassword
	other := c.outsider.Department

	// A namesake of the patient the doctor will find, born elsewhen,
	// admitted to another department.
	twin := h.json(201, "POST", "/api/v1/patients", w.clerk, map[string]string{"name": c.found.Name, "gender": c.found.Gender,
		"birth_date": "1991-06-15", "mrn": "TW" + strings.ToUpper(lang[:2]) + fmt.Sprint(time.Now().UnixNano()%100000)})
	twinID, twinMRN := twin["id"].(string), twin["mrn"].(string)
	h.json(201, "POST", "/api/v1/patients/"+twinID+"/admissions", w.clerk, map[string]string{"department": other,
		"admitted_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})

	// 1. The doctor finds the patient and tells the two apart.
	b.signIn(c.doctor.Username, pw)
	run("search",
		chromedp.Navigate(h.base+"/patients/search"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), c.found.Name),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.ID("matches")),
		shot("search"),
	)
	rows := texts("results", "#matches tbody tr")
	mine, theirs := -1, -1
	for i, r := range rows {
		switch {
		case strings.Contains(r, "…"+tail(c.found.MRN)) && strings.Contains(r, w.names[w.dept]):
			mine = i
		case strings.Contains(r, "…"+tail(twinMRN)) && strings.Contains(r, w.names[other]):
			theirs = i
		}
	}
	if len(rows) < 2 || mine < 0 || theirs < 0 || rows[mine] == rows[theirs] {
		t.Fatalf("the two %s are not told apart: %q", c.found.Name, rows)
	}
	if loc := get("location", chromedp.Location()); strings.Contains(loc, url.QueryEscape(c.found.Name)) || !strings.HasSuffix(loc, "/patients/search") {
		t.Fatalf("search URL %s", loc)
	}
	run("patient",
		chromedp.Click(chromedp.CSS(fmt.Sprintf("#matches tbody tr:nth-child(%d) a", mine+1))),
		chromedp.WaitVisible(chromedp.ID("patient-banner")),
		chromedp.WaitVisible(chromedp.ID("records")),
		shot("patient"),
	)
	if got := get("banner", chromedp.Text(chromedp.ID("banner-mrn"))); got != c.found.MRN {
		t.Fatalf("banner 病案号 %q, want %q", got, c.found.MRN)
	}
	times := texts("record times", "#records tbody tr td:first-child")
	if len(times) == 0 || !slices.IsSortedFunc(times, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Fatalf("records not newest first: %v", times)
	}
	// The type filter keeps one type.
	first := texts("types", "#records tbody tr td:nth-child(2)")[0]
	code := get("type option", chromedp.Evaluate[string](fmt.Sprintf(
		`Array.from(document.querySelectorAll('#type option')).find(o => o.textContent.trim() === %q).value`, first)))
	run("type filter",
		chromedp.SetValue(chromedp.ID("type"), code),
		chromedp.Click(chromedp.ID("filter")),
		chromedp.WaitReady(chromedp.CSS(`#type option[value="`+code+`"][selected]`)),
	)
	for _, ty := range texts("filtered types", "#records tbody tr td:nth-child(2)") {
		if ty != first {
			t.Fatalf("filtered by %s, a %s is listed", first, ty)
		}
	}
	// A record opens by GET; a reload and the address again show it.
	run("record",
		chromedp.Click(chromedp.CSS(`#records tbody tr:first-child a[href^="/records/"]`)),
		chromedp.WaitVisible(chromedp.ID("record-text")),
		shot("record"),
	)
	link := get("location", chromedp.Location())
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(h.base) + `/records/[0-9a-z]{26}\?purpose=treatment$`).MatchString(link) {
		t.Fatalf("record address %s", link)
	}
	if title := get("title", chromedp.Title()); strings.Contains(title, c.found.Name) {
		t.Fatalf("the title %q names the patient", title)
	}
	fields := texts("fields", "#record-fields dt")
	order := []string{"主诉", "现病史", "既往史", "体格检查", "辅助检查", "诊断", "初步诊断", "处理", "诊疗计划"}
	var at []int
	for _, f := range order {
		if i := slices.Index(fields, f); i >= 0 {
			at = append(at, i)
		}
	}
	if !slices.IsSorted(at) {
		t.Fatalf("fields not in clinical order: %v", fields)
	}
	text := get("text", chromedp.Text(chromedp.ID("record-text")))
	run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("record-text")))
	run("bookmark",
		chromedp.Navigate(h.base+"/"),
		chromedp.WaitVisible(chromedp.ID("logout")),
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("record-text")),
	)
	if again := get("text", chromedp.Text(chromedp.ID("record-text"))); again != text || get("location", chromedp.Location()) != link {
		t.Fatalf("the bookmark shows another page")
	}
	b.signOut()

	// 2. The record's address survives sign-in: the nurse's first (with
	// enrolment), then the doctor's with a code.
	run("deep link",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), c.nurse.Username),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
	)
	secret := strings.TrimSpace(get("secret", chromedp.Text(chromedp.ID("totp-secret"))))
	otp, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.book.secrets[c.nurse.Username], h.book.steps[c.nurse.Username] = secret, time.Now().Unix()/30
	run("enrolment",
		chromedp.SendKeys(chromedp.ID("code"), otp),
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("record-text")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if loc := get("location", chromedp.Location()); !strings.HasPrefix(loc, link) {
		t.Fatalf("after enrolment at %s, want %s", loc, link)
	}
	b.signOut()
	run("deep link with a code",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), c.doctor.Username),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.SendKeys(chromedp.ID("totp"), h.code(c.doctor.Username)),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("record-text")),
	)
	if loc := get("location", chromedp.Location()); loc != link {
		t.Fatalf("after sign-in at %s, want %s", loc, link)
	}
	b.signOut()

	// 3. A doctor of another department breaks the glass once and reads two records.
	reason := say("急诊抢救，患者意识不清，需查阅既往病历", "Emergency: unconscious patient, need the history")
	b.signIn(c.outsider.Username, pw)
	run("break-glass form",
		chromedp.Navigate(h.base+"/patients/search"),
		chromedp.WaitVisible(chromedp.ID("mrn")),
		chromedp.SendKeys(chromedp.ID("mrn"), c.glass.MRN),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.ID("matches")),
		chromedp.Click(chromedp.CSS("#matches a")),
		chromedp.WaitVisible(chromedp.ID("glass-form")),
		chromedp.SendKeys(chromedp.ID("reason"), reason),
		shot("breakglass-form"),
	)
	masked := get("masked name", chromedp.Text(chromedp.ID("glass-name")))
	firstRune, _ := utf8.DecodeRuneInString(c.glass.Name)
	if !strings.HasPrefix(masked, string(firstRune)) || !strings.Contains(masked, "*") || strings.Contains(masked, c.glass.Name) ||
		get("mrn tail", chromedp.Text(chromedp.ID("glass-mrn"))) != "…"+tail(c.glass.MRN) ||
		!strings.Contains(get("departments", chromedp.Text(chromedp.ID("glass-departments"))), w.names[w.dept]) {
		t.Fatalf("the form does not name the patient: %q", texts("preview", "#glass-patient"))
	}
	run("break the glass",
		chromedp.Click(chromedp.ID("break-glass")),
		chromedp.WaitVisible(chromedp.ID("glass-banner")),
		chromedp.WaitVisible(chromedp.ID("patient-banner")),
		shot("breakglass-patient"),
	)
	if loc, _ := url.Parse(get("location", chromedp.Location())); loc.Path != "/patients/"+c.glass.ID || loc.Query().Get("purpose") != "emergency" {
		t.Fatalf("after break-glass at %s", loc)
	}
	var read []string
	for i := 1; i <= 2; i++ {
		sel := fmt.Sprintf("#records tbody tr:nth-child(%d)", i)
		read = append(read, texts("title", sel+" td:nth-child(3)")[0])
		run(fmt.Sprintf("record %d", i),
			chromedp.Click(chromedp.CSS(sel+` a[href^="/records/"]`)),
			chromedp.WaitVisible(chromedp.ID("record-text")),
			chromedp.WaitVisible(chromedp.ID("glass-banner")),
		)
		if i == 1 {
			run("screenshot", shot("breakglass-record"))
		}
		run("back to the patient",
			chromedp.Click(chromedp.ID("back")),
			chromedp.WaitVisible(chromedp.ID("records")),
		)
		if truth("form", `document.getElementById('glass-form') !== null`) {
			t.Fatalf("返回患者信息 led back to the break-glass form")
		}
	}
	b.signOut()
	// A second emergency access, by the API, for the queue.
	h.json(200, "GET", "/api/v1/records/"+c.other.Records[0], h.token(c.outsider.Username), nil,
		"X-Break-Glass-Reason", url.PathEscape("会诊需要"), "X-Purpose-Of-Use", "care_coordination")

	// 4. The department head: one item naming the patient and the records read.
	b.signIn(w.head, pw)
	run("queue",
		chromedp.Click(chromedp.CSS(`a[href="/break-glass"]`)),
		chromedp.WaitVisible(chromedp.ID("reviews")),
	)
	// This test's items: the patient's (by name and 病案号) and read by the
	// outsider — the demo hospital's own queue may hold other emergency
	// accesses to the same patient.
	ids := func(name, mrn string) []string {
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
			`Array.from(document.querySelectorAll('#reviews > li')).filter(li => li.querySelector('.review-patient').innerText.includes(%q) && li.innerText.includes(%q) && li.innerText.includes(%q)).map(li => li.id)`,
			name, mrn, c.outsider.DisplayName)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	mineIDs, otherIDs := ids(c.glass.Name, c.glass.MRN), ids(c.other.Name, c.other.MRN)
	if len(mineIDs) != 1 || len(otherIDs) != 1 {
		t.Fatalf("items naming %s: %v, naming %s: %v", c.glass.Name, mineIDs, c.other.Name, otherIDs)
	}
	item, second := "#"+mineIDs[0], "#"+otherIDs[0]
	body := texts("item", item)[0]
	for _, want := range []string{c.glass.MRN, c.outsider.DisplayName, w.names[c.outsider.Department], reason} {
		if !strings.Contains(body, want) {
			t.Fatalf("the item lacks %q:\n%s", want, body)
		}
	}
	reads := texts("reads", item+" .review-reads tbody tr")
	if len(reads) != 2 {
		t.Fatalf("records read: %q", reads)
	}
	for _, title := range read {
		if !slices.ContainsFunc(reads, func(r string) bool { return strings.Contains(r, title) }) &&
			!slices.ContainsFunc(reads, func(r string) bool { return strings.Contains(r, say("无权查看标题", "not shown")) }) {
			t.Fatalf("record %q is not among %q", title, reads)
		}
	}
	if truth("pre-selected", `document.querySelectorAll('#reviews input[type=radio]:checked').length > 0`) {
		t.Fatal("an outcome is chosen already")
	}
	note := say("其他条目：会诊属实", "other item: a real consultation")
	run("unjustified without a note",
		chromedp.Click(chromedp.CSS(second+` input[value=justified]`)),
		chromedp.SendKeys(chromedp.CSS(second+" textarea"), note),
		chromedp.Click(chromedp.CSS(item+` input[value=unjustified]`)),
		chromedp.Click(chromedp.CSS(item+" button[formaction]")),
		chromedp.WaitVisible(chromedp.ID("error-"+strings.TrimPrefix(mineIDs[0], "review-"))),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).scrollIntoView({block: "center"})`,
			"error-"+strings.TrimPrefix(mineIDs[0], "review-"))),
		shot("review-error"),
	)
	if !truth("kept", fmt.Sprintf(`document.querySelector('%s input[value=justified]').checked && document.querySelector('%s textarea').value === %q && document.querySelector('%s input[value=unjustified]').checked && document.querySelectorAll('#reviews input[type=radio]:checked').length === 2`,
		second, second, note, item)) {
		t.Fatal("the forms were not kept after the error")
	}
	run("judge",
		chromedp.SendKeys(chromedp.CSS(item+" textarea"), say("非急诊，无会诊申请", "no emergency, no consultation request")),
		chromedp.Click(chromedp.CSS(item+" button[formaction]")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		shot("review-done"),
	)
	if truth("gone", fmt.Sprintf(`document.querySelector('%s') !== null`, item)) {
		t.Fatal("the judged item is still pending")
	}
	judged := false
	for _, e := range h.json(200, "GET", "/api/v1/break-glass?status=reviewed&limit=200", h.token(w.head), nil)["items"].([]any) {
		m := e.(map[string]any)
		if "review-"+m["id"].(string) == mineIDs[0] && m["outcome"] == "unjustified" && len(m["reads"].([]any)) >= 2 {
			judged = true
		}
	}
	if !judged {
		t.Fatal("the judgement is not recorded")
	}
	b.signOut()
}
