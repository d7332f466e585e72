package cli_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The clinical journeys of issue 10 in headless Chromium on the demo
// hospital, in Simplified Chinese and in English: a doctor lands on the
// department's patients, opens a patient, writes a record and amends it (a
// concurrent amendment is a clear 409); a records clerk registers a
// patient with Chinese data, admits, discharges and archives; a nurse
// writes a nursing note and cannot write other types. Screenshots go to
// MEDGUARD_SCREENSHOTS (default a temporary directory) as
// <lang>-clinical-*.png.
func TestConsoleClinicalJourneys(t *testing.T) {
	t.Parallel()    // slow and independent: runs beside the others (CI time)
	chromiumPath(t) // skips without chromium
	h := startDemo(t, 120, 500)
	shots := os.Getenv("MEDGUARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// Each language's journeys are walked by other members of staff, so
	// that nobody signs in twice within one TOTP step.
	staff := h.staffByRole()
	pick := func(role, lang string) string {
		t.Helper()
		dept := h.Department[role]
		var in []string
		for _, u := range staff[role] {
			if u.dept == dept {
				in = append(in, u.name)
			}
		}
		if len(in) < 2 {
			t.Fatalf("the demo has fewer than two %s in %s", role, dept)
		}
		if lang == "zh-CN" {
			return h.Example[role]
		}
		for _, u := range in {
			if u != h.Example[role] {
				return u
			}
		}
		return ""
	}
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) {
			j := &journey{t: t, h: h, lang: lang, shots: shots, sfx: map[string]string{"zh-CN": "zh", "en": "en"}[lang]}
			t.Run("doctor", func(t *testing.T) { j.t = t; j.doctor(pick("doctor", lang)) })
			t.Run("records clerk", func(t *testing.T) { j.t = t; j.clerk(pick("records_clerk", lang)) })
			t.Run("nurse", func(t *testing.T) { j.t = t; j.nurse(pick("nurse", lang)) })
			if lang == "zh-CN" {
				t.Run("department head", func(t *testing.T) { j.t = t; j.head(h.Example["dept_head"]) })
			}
		})
	}
}

// clinicalStaff is a member of the demo's staff, for the clinical journeys.
type clinicalStaff struct{ name, dept string }

// staffByRole lists the demo's staff by role, as the administrator sees them.
func (h *demoHospital) staffByRole() map[string][]clinicalStaff {
	h.t.Helper()
	out := map[string][]clinicalStaff{}
	admin := h.token("admin")
	after := ""
	for {
		path := "/api/v1/users?limit=200"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		page := h.json(200, "GET", path, admin, nil)
		for _, it := range page["items"].([]any) {
			u := it.(map[string]any)
			for _, r := range u["roles"].([]any) {
				out[r.(string)] = append(out[r.(string)], clinicalStaff{u["username"].(string), u["department"].(string)})
			}
		}
		next, _ := page["next"].(string)
		if next == "" {
			return out
		}
		after = next
	}
}

// journey is one language's walk through the clinical pages.
type journey struct {
	t           *testing.T
	h           *demoHospital
	lang, shots string
	sfx         string
}

// browser opens a browser for one member of staff and signs them in.
func (j *journey) browser(user string) *browser {
	j.t.Helper()
	b := openBrowser(j.t, j.h.server, chromiumPath(j.t), j.lang, 900, 3*time.Minute)
	b.run("viewport", chromedp.EmulateViewport(1366, 900))
	b.signIn(user, j.h.password(user))
	return b
}

// shot saves a screenshot of the page as <lang>-clinical-<name>.png.
func (j *journey) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100: PNG
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(j.shots, j.lang+"-clinical-"+name+".png"), png, 0o644)
	})
}

// say picks the text of the journey's language.
func (j *journey) say(zh, en string) string {
	if j.lang == "zh-CN" {
		return zh
	}
	return en
}

// idOf is the opaque id at the end of a console path.
func idOf(t *testing.T, location, prefix string) string {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(u.Path, prefix) {
		t.Fatalf("location %s, want %s…", location, prefix)
	}
	return strings.SplitN(strings.TrimPrefix(u.Path, prefix), "/", 2)[0]
}

func (j *journey) doctor(user string) {
	t, h := j.t, j.h
	b := j.browser(user)
	run, get := b.run, b.get
	// The home: the department's patients, not an empty dashboard.
	run("home", chromedp.WaitVisible(chromedp.ID("ward")), j.shot("doctor-home"))
	if text := get("heading", chromedp.Text(chromedp.CSS("h1"))); !strings.Contains(text, j.say("本科室患者", "department's patients")) {
		t.Fatalf("the doctor's home is %q", text)
	}
	if text := get("count", chromedp.Text(chromedp.ID("ward-count"))); text == "" {
		t.Fatal("no patients counted")
	}
	// Open a patient from the list, then back to the list.
	run("patient",
		chromedp.Click(chromedp.CSS("#ward tbody tr:first-child td:first-child a")),
		chromedp.WaitVisible(chromedp.ID("patient-info")),
		j.shot("doctor-patient"),
	)
	pid := idOf(t, get("location", chromedp.Location()), "/patients/")
	// Write a progress note (the patient page's own button is the lead's to
	// add; the list offers it for each patient).
	run("write",
		chromedp.Navigate(h.base+"/"),
		chromedp.WaitVisible(chromedp.ID("ward")),
		chromedp.Click(chromedp.ID("write-"+pid)),
		chromedp.WaitVisible(chromedp.ID("record-form")),
		chromedp.WaitVisible(chromedp.ID("patient-banner")),
		chromedp.SendKeys(chromedp.ID("f_progress"), "患者胸闷较前缓解，夜间可平卧，无心悸。"),
		chromedp.SendKeys(chromedp.ID("f_blood_pressure"), "132/80 mmHg"),
		chromedp.SendKeys(chromedp.ID("f_diagnosis"), "冠状动脉粥样硬化性心脏病"),
		chromedp.SendKeys(chromedp.ID("f_plan"), "继续阿司匹林 100 mg qd，阿托伐他汀 20 mg qn。"),
		chromedp.SendKeys(chromedp.ID("text"), "今日查房：患者一般情况可，心电图较前无明显变化。"),
		j.shot("doctor-write"),
		chromedp.Click(chromedp.ID("save-record")),
		chromedp.WaitVisible(chromedp.ID("record-text")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	rid := idOf(t, get("location", chromedp.Location()), "/records/")
	if text := get("record", chromedp.Text(chromedp.ID("record-text"))); !strings.Contains(text, "心电图较前无明显变化") {
		t.Fatalf("record text %q", text)
	}
	// Amend it: a new version.
	run("amend",
		chromedp.Navigate(h.base+"/records/"+rid+"/edit"),
		chromedp.WaitVisible(chromedp.ID("record-form")),
		chromedp.SetValue(chromedp.ID("text"), "今日查房：患者一般情况可，心电图较前无明显变化。补充：肌钙蛋白阴性。"),
		j.shot("doctor-amend"),
		chromedp.Click(chromedp.ID("save-record")),
		chromedp.WaitVisible(chromedp.ID("record-text")),
	)
	if text := get("amended", chromedp.Text(chromedp.ID("record-text"))); !strings.Contains(text, "肌钙蛋白阴性") {
		t.Fatalf("amended text %q", text)
	}
	// A colleague's amendment lands while the doctor edits: a clear 409,
	// nothing overwritten, the doctor's text kept.
	run("edit again", chromedp.Navigate(h.base+"/records/"+rid+"/edit"), chromedp.WaitVisible(chromedp.ID("record-form")))
	two := 2
	text := "同事的修改：加用美托洛尔 25 mg bid。"
	h.json(200, "PATCH", "/api/v1/records/"+rid, h.token(user), map[string]any{"text": text, "version": two})
	run("conflict",
		chromedp.SetValue(chromedp.ID("text"), "我的修改：复查心电图。"),
		chromedp.Click(chromedp.ID("save-record")),
		chromedp.WaitVisible(chromedp.ID("conflict")),
		j.shot("doctor-conflict"),
	)
	msg := get("conflict", chromedp.Text(chromedp.ID("conflict")))
	if !strings.Contains(msg, j.say("病历已被他人修改", "Someone else amended")) || !strings.Contains(msg, "3") {
		t.Fatalf("conflict message %q", msg)
	}
	if v := get("kept", chromedp.Value(chromedp.ID("text"))); v != "我的修改：复查心电图。" {
		t.Fatalf("the doctor's text was not kept: %q", v)
	}
	if v := h.json(200, "GET", "/api/v1/records/"+rid, h.token(user), nil); v["text"] != text {
		t.Fatalf("overwritten: %v", v["text"])
	}
	run("save over", chromedp.Click(chromedp.ID("save-record")), chromedp.WaitVisible(chromedp.ID("record-text")))
	if v := h.json(200, "GET", "/api/v1/records/"+rid, h.token(user), nil); v["version"] != float64(4) {
		t.Fatalf("version %v", v["version"])
	}
	if title := get("title", chromedp.Title()); strings.Contains(title, "冠状动脉") {
		t.Fatalf("title %q holds record data", title)
	}
}

func (j *journey) clerk(user string) {
	t, h := j.t, j.h
	b := j.browser(user)
	run, get := b.run, b.get
	run("home", chromedp.WaitVisible(chromedp.ID("figure-overdue")), j.shot("clerk-home"))
	overdue, _ := strconv.Atoi(strings.TrimSpace(get("overdue", chromedp.Text(chromedp.CSS("#figure-overdue .value")))))
	if overdue > 0 {
		// Overdue archiving is red, not grey: the row and its status.
		run("overdue", chromedp.Click(chromedp.ID("figure-overdue")), chromedp.WaitVisible(chromedp.CSS("#admissions tr.bad .tag.bad")),
			j.shot("clerk-overdue"))
		if text := get("deadline", chromedp.Text(chromedp.CSS("#admissions tr.bad span.overdue"))); !strings.Contains(text, j.say("已超期", "overdue")) {
			t.Fatalf("overdue deadline %q", text)
		}
	}
	// Register a patient with Chinese data: a wrong check digit is refused
	// next to the field, in words.
	name := map[string]string{"zh": "欧阳修", "en": "司马光"}[j.sfx]
	good := map[string]string{"zh": "360824197001010015", "en": "370102198808080022"}[j.sfx]
	bad := good[:17] + map[bool]string{true: "1", false: "0"}[good[17] != '1']
	mrn := "BA2026-" + strings.ToUpper(j.sfx) + "01"
	run("registration",
		chromedp.Click(chromedp.CSS(`nav a[href="/patients/new"]`)),
		chromedp.WaitVisible(chromedp.ID("patient-form")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("id_number"), bad),
		chromedp.SendKeys(chromedp.ID("phone"), "13800138"+map[string]string{"zh": "011", "en": "012"}[j.sfx]),
		chromedp.SendKeys(chromedp.ID("address"), "江西省吉安市永丰县沙溪镇泷冈村 8 号"),
		chromedp.SendKeys(chromedp.ID("mrn"), mrn),
		chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("id_number-error")),
		j.shot("clerk-register-refused"),
	)
	if text := get("refusal", chromedp.Text(chromedp.ID("id_number-error"))); !strings.Contains(text, j.say("校验位", "check character")) {
		t.Fatalf("refusal %q", text)
	}
	run("registration again",
		chromedp.SetValue(chromedp.ID("id_number"), good),
		chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("patient-info")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		j.shot("clerk-registered"),
	)
	loc := get("location", chromedp.Location())
	if strings.Contains(loc, good) || strings.Contains(loc, mrn) || strings.Contains(loc, url.QueryEscape(name)) {
		t.Fatalf("patient data in the URL %s", loc)
	}
	pid := idOf(t, loc, "/patients/")
	if text := get("patient", chromedp.Text(chromedp.ID("patient-info"))); !strings.Contains(text, name) || !strings.Contains(text, "1970-01-01") && j.sfx == "zh" {
		t.Fatalf("patient page %q", text)
	}
	// Admit (the patient page's button is the lead's to add), discharge, archive.
	dept := h.Department["doctor"]
	run("admit",
		chromedp.Navigate(h.base+"/patients/"+pid+"/admissions"),
		chromedp.WaitVisible(chromedp.ID("admit-form")),
		chromedp.SetValue(chromedp.ID("department"), dept),
		chromedp.Click(chromedp.ID("admit")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		chromedp.WaitVisible(chromedp.CSS("button[id^=discharge-]")),
		j.shot("clerk-admitted"),
	)
	// The admission is in the register of patients in hospital.
	run("in hospital",
		chromedp.Navigate(h.base+"/admissions?status=admitted"),
		chromedp.WaitVisible(chromedp.CSS(`#admissions a[href="/patients/`+pid+`/admissions"]`)),
		j.shot("clerk-in-hospital"),
		chromedp.Click(chromedp.CSS(`#admissions a[href="/patients/`+pid+`/admissions"]`)),
		chromedp.WaitVisible(chromedp.CSS("button[id^=discharge-]")),
		chromedp.Click(chromedp.CSS("button[id^=discharge-]")),
		chromedp.WaitVisible(chromedp.ID("archive-h")),
		j.shot("clerk-discharged"),
		chromedp.Click(chromedp.CSS("button[id^=archive-]")),
		chromedp.WaitNotPresent(chromedp.ID("archive-h")), // nothing left to archive
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		j.shot("clerk-archived"),
	)
	if text := get("flash", chromedp.Text(chromedp.CSS(".flash"))); !strings.Contains(text, j.say("已登记归档", "archived")) {
		t.Fatalf("flash %q", text)
	}
	ad := h.json(200, "GET", "/api/v1/patients/"+pid+"/admissions", h.token(user), nil)["items"].([]any)
	if len(ad) != 1 || ad[0].(map[string]any)["status"] != "archived" {
		t.Fatalf("admissions %v", ad)
	}
}

func (j *journey) nurse(user string) {
	t, h := j.t, j.h
	b := j.browser(user)
	run, get := b.run, b.get
	run("home", chromedp.WaitVisible(chromedp.ID("ward")))
	attr, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS("#ward a[id^=write-]"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	href := attr.Value
	pid := idOf(t, href, "/patients/")
	run("nursing note",
		chromedp.Click(chromedp.CSS("#ward a[id^=write-]")),
		chromedp.WaitVisible(chromedp.ID("record-form")),
		chromedp.SendKeys(chromedp.ID("f_nursing_level"), "二级护理"),
		chromedp.SendKeys(chromedp.ID("f_temperature"), "36.8℃"),
		chromedp.SendKeys(chromedp.ID("f_observation"), "患者神志清，精神可，夜间睡眠良好。"),
		chromedp.SendKeys(chromedp.ID("f_nursing_measures"), "遵医嘱用药，指导低盐低脂饮食。"),
		j.shot("nurse-write"),
	)
	if text := get("type", chromedp.Text(chromedp.ID("record-type"))); text != j.say("护理记录", "Nursing note") {
		t.Fatalf("the nurse writes %q", text)
	}
	if n := get("choices", chromedp.Evaluate[string](`String(document.querySelectorAll(".type-choice a").length)`)); n != "0" {
		t.Fatalf("the nurse is offered %s types", n)
	}
	run("save", chromedp.Click(chromedp.ID("save-record")), chromedp.WaitVisible(chromedp.ID("record-text")))
	// Another type, asked for by hand, is refused in words.
	run("progress note",
		chromedp.Navigate(h.base+"/patients/"+pid+"/records/new?type=progress_note"),
		chromedp.WaitVisible(chromedp.ID("rule")),
		j.shot("nurse-refused"),
	)
	if text := get("rule", chromedp.Text(chromedp.ID("rule"))); !strings.Contains(text, j.say("您的角色没有此项权限", "does not have this permission")) {
		t.Fatalf("refusal %q", text)
	}
}

// head: a department head's home is the department's patients with the
// emergency accesses to review and the department's overdue archiving.
func (j *journey) head(user string) {
	b := j.browser(user)
	b.run("home", chromedp.WaitVisible(chromedp.ID("ward")), chromedp.WaitVisible(chromedp.ID("glass-pending")),
		chromedp.WaitVisible(chromedp.ID("dept-overdue")), j.shot("head-home"))
}
