package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// addStaff creates a member of staff (the administrator asks, the security
// administrator approves) and returns their id.
func (h *hospital) addStaff(name, display, dept, role string) string {
	h.t.Helper()
	out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": name, "display_name": display,
		"department": dept, "roles": []string{role}, "password": staffPassword})
	for _, p := range out["pending_approvals"].([]any) {
		h.api(200, "POST", "/api/v1/approvals/"+p.(map[string]any)["id"].(string)+"/approve", h.security,
			map[string]string{"note": "同意任命"})
	}
	h.users[name] = out["id"].(string)
	return out["id"].(string)
}

// contains fails the test unless the page holds every text.
func contains(t *testing.T, what string, p page, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(p.body, s) {
			t.Fatalf("%s (%d, %s) lacks %q:\n%s", what, p.status, p.url, s, p.body)
		}
	}
}

// TestDoctorsHomeRegistrationAndRecords: a doctor lands on the
// department's patients, registers a patient (refusals next to the field,
// in words), writes a record with structured fields in clinical order and
// amends it; an amendment made from a stale version is a clear 409 that
// keeps what was typed.
func TestDoctorsHomeRegistrationAndRecords(t *testing.T) {
	h := newHospital(t)
	doc := h.browser("zh-CN")
	home := doc.signIn("zhangwei", staffPassword)
	contains(t, "home", home, "心内科 · 本科室患者", h.patientName, "…0123", "76 岁", "在院", "病程记录",
		`href="/patients/`+h.patientID+`/records/new"`, `href="/patients/new"`)
	if strings.Contains(home.body, "没有可显示的指标") || strings.Contains(titleOf(home.body), h.patientName) {
		t.Fatal("the doctor's home is the empty dashboard, or its title names the patient")
	}
	if p := doc.get("/?state=pending"); p.status != 200 || strings.Contains(p.body, h.patientName) {
		t.Fatalf("pending filter: %d", p.status)
	}

	// Registration: refusals in words next to their field, values kept.
	form := doc.get("/patients/new")
	contains(t, "registration form", form, `action="/patients/new"`, `name="csrf_token"`, "身份证号", "病案号")
	patient := url.Values{"name": {"司马相如"}, "gender": {"male"}, "birth_date": {""}, "id_number": {"110105194912310021"},
		"phone": {"13912345678"}, "address": {"四川省成都市武侯区人民南路四段 1 号"}, "mrn": {"BA2026-0042"}}
	p := doc.post("/patients/new", form, patient)
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad check digit: %d", p.status)
	}
	contains(t, "refused ID number", p, "身份证号校验位（最后一位）不正确", `id="id_number-error"`, `value="司马相如"`,
		`aria-describedby="id_number-help id_number-error" aria-invalid="true"`)
	if strings.Contains(p.body, "id_number is not") || strings.Contains(p.body, "<code>") {
		t.Fatal("the refusal speaks code")
	}
	for _, c := range []struct {
		field, value, want string
	}{
		{"id_number", "1101051949123100", "身份证号应为 18 位"},
		{"phone", "12345", "联系电话应为 11 位手机号"},
		{"birth_date", "2099-01-01", "出生日期须在 1900 年至今天之间"},
		{"name", "", "请填写患者姓名"},
		{"mrn", "病案/1", "病案号为 1–32 位字母、数字"},
	} {
		bad := url.Values{}
		for k, v := range patient {
			bad[k] = v
		}
		bad.Set("id_number", "11010519491231002X")
		bad.Set("gender", "female")
		bad.Set(c.field, c.value)
		if c.field == "id_number" || c.field == "birth_date" {
			bad.Set("id_number", "")
			if c.field == "id_number" {
				bad.Set("id_number", c.value)
			}
		}
		p := doc.post("/patients/new", form, bad)
		if p.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d", c.field, p.status)
		}
		contains(t, c.field, p, c.want, `id="`+c.field+`-error"`)
	}
	// The ID number is another patient's (欧阳娜娜's): a conflict.
	dup := url.Values{"name": {"司马相如"}, "id_number": {h.idNum}}
	if p := doc.post("/patients/new", form, dup); p.status != http.StatusConflict || !strings.Contains(p.body, "已有患者使用此身份证号") {
		t.Fatalf("duplicate ID number: %d", p.status)
	}
	// A valid registration opens the patient's page; nothing of it in the URL.
	patient.Set("id_number", "510107198507150013")
	patient.Set("gender", "male")
	p = doc.post("/patients/new", form, patient)
	if p.status != 200 || !strings.HasPrefix(p.url.Path, "/patients/") || p.url.Query().Get("m") != "patient_registered" {
		t.Fatalf("registration: %d %s %s", p.status, p.url, p.body)
	}
	contains(t, "patient page", p, "司马相如", "患者已登记")
	for _, s := range doc.visited {
		if strings.Contains(s, "510107") || strings.Contains(s, "BA2026") || strings.Contains(s, url.QueryEscape("司马")) {
			t.Fatalf("patient data in a URL: %s", s)
		}
	}
	pid := strings.TrimPrefix(p.url.Path, "/patients/")

	// Writing: the types a doctor may write, fields in clinical order.
	nw := doc.get("/patients/" + pid + "/records/new?type=admission_note")
	contains(t, "new record", nw, "司马相如", "BA2026-0042", "40 岁", "数据分级", `href="?type=nursing_note"`, "入院记录")
	order := []string{"主诉", "现病史", "既往史", "体格检查", "辅助检查", "初步诊断", "诊疗计划"}
	last := 0
	for _, f := range order {
		i := strings.Index(nw.body, `>`+f+`</label>`)
		if i < last {
			t.Fatalf("field %s out of clinical order", f)
		}
		last = i
	}
	if strings.Contains(nw.body, "密级") {
		t.Fatal("密级 instead of 数据分级")
	}
	rec := doc.post("/patients/"+pid+"/records/new", nw, url.Values{"type": {"admission_note"}, "title": {"入院记录"},
		"classification": {"core"}, "f_chief_complaint": {"反复胸闷 3 年，加重 1 天"}, "f_present_illness": {"患者 3 年前活动后出现胸闷。"},
		"f_blood_pressure": {"150/95 mmHg"}, "f_past_history": {"  "}, "text": {"患者司马相如，男，40 岁，因反复胸闷入院。"}})
	if rec.status != 200 || !strings.HasPrefix(rec.url.Path, "/records/") || rec.url.Query().Get("m") != "record_written" {
		t.Fatalf("write: %d %s %s", rec.status, rec.url, rec.body)
	}
	rid := strings.TrimPrefix(rec.url.Path, "/records/")
	stored := h.api(200, "GET", "/api/v1/records/"+rid, h.enrolAPI("zhangwei"), nil)
	fields, _ := stored["fields"].(map[string]any)
	if fields["主诉"] != "反复胸闷 3 年，加重 1 天" || fields["血压"] != "150/95 mmHg" || fields["既往史"] != nil ||
		stored["classification"] != "core" || stored["department"] != "CARD" {
		t.Fatalf("stored record %v", stored)
	}
	// An empty title is refused next to the field.
	if p := doc.post("/patients/"+pid+"/records/new", nw, url.Values{"type": {"progress_note"}, "title": {" "}}); p.status != 422 ||
		!strings.Contains(p.body, "请填写标题") || !strings.Contains(p.body, `id="title-error"`) {
		t.Fatalf("empty title: %d", p.status)
	}

	// Amending: a new version, from the version seen.
	ed := doc.get("/records/" + rid + "/edit")
	contains(t, "edit", ed, `name="version" value="1"`, "反复胸闷 3 年，加重 1 天", "修改病历 — 入院记录（第 1 版）")
	amend := url.Values{"type": {"admission_note"}, "version": {"1"}, "title": {"入院记录"}, "classification": {"core"},
		"f_chief_complaint": {"反复胸闷 3 年，加重 1 天"}, "f_preliminary_diagnosis": {"冠状动脉粥样硬化性心脏病"},
		"text": {"患者司马相如，男，40 岁。补充：心电图示 ST 段压低。"}}
	p = doc.post("/records/"+rid+"/edit", ed, amend)
	if p.status != 200 || p.url.Path != "/records/"+rid || p.url.Query().Get("m") != "record_amended" {
		t.Fatalf("amend: %d %s", p.status, p.url)
	}
	// The same form again: someone else's version 2 is in the way.
	amend.Set("text", "我的另一处修改")
	p = doc.post("/records/"+rid+"/edit", ed, amend)
	if p.status != http.StatusConflict {
		t.Fatalf("stale amendment: %d", p.status)
	}
	contains(t, "conflict", p, "病历已被他人修改，您的修改尚未保存", "您修改的是第 1 版，现已是第 2 版", "我的另一处修改",
		"心电图示 ST 段压低", `name="version" value="2"`, "当前版本（第 2 版）")
	amend.Set("version", "2")
	if p := doc.post("/records/"+rid+"/edit", p, amend); p.status != 200 || p.url.Query().Get("m") != "record_amended" {
		t.Fatalf("amend over version 2: %d", p.status)
	}
	if v := h.api(200, "GET", "/api/v1/records/"+rid, h.enrolAPI("zhangwei"), nil); v["version"] != float64(3) || v["text"] != "我的另一处修改" {
		t.Fatalf("version 3: %v", v)
	}

	// English: the same words in English.
	en := h.browser("en")
	en.signIn("wangli", staffPassword)
	f := en.get("/patients/new")
	bad := url.Values{"name": {"诸葛亮"}, "id_number": {"110105194912310021"}}
	contains(t, "English refusal", en.post("/patients/new", f, bad), "check character (the last one) does not match")
	contains(t, "English home", en.get("/"), "the department&#39;s patients", "In hospital")
}

// TestNursesWriteNursingNotesOnly: a nurse is offered nursing notes only,
// and refused the other types however asked.
func TestNursesWriteNursingNotesOnly(t *testing.T) {
	h := newHospital(t)
	h.addStaff("wangfang", "王芳", "CARD", "nurse")
	nurse := h.browser("zh-CN")
	home := nurse.signIn("wangfang", staffPassword)
	contains(t, "nurse's home", home, h.patientName, `/records/new"`)
	nw := nurse.get("/patients/" + h.patientID + "/records/new")
	contains(t, "nursing form", nw, `name="type" value="nursing_note"`, "护理级别", "病情观察", "护理措施")
	if strings.Contains(nw.body, `?type=progress_note`) {
		t.Fatal("a nurse is offered progress notes")
	}
	for _, p := range []page{
		nurse.get("/patients/" + h.patientID + "/records/new?type=progress_note"),
		nurse.post("/patients/"+h.patientID+"/records/new", nw, url.Values{"type": {"progress_note"}, "title": {"病程记录"}}),
		nurse.get("/records/" + h.recordID + "/edit"),
	} {
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "您的角色没有此项权限") {
			t.Fatalf("nurse and a progress note: %d %s", p.status, p.url)
		}
	}
	p := nurse.post("/patients/"+h.patientID+"/records/new", nw, url.Values{"type": {"nursing_note"}, "title": {"护理记录"},
		"f_nursing_level": {"二级护理"}, "f_observation": {"患者神志清，精神可。"}, "classification": {"important"}})
	if p.status != 200 || p.url.Query().Get("m") != "record_written" || !strings.Contains(p.body, "患者神志清") {
		t.Fatalf("nursing note: %d %s", p.status, p.url)
	}
}

// TestRecordsOffice: a records clerk registers and admits a patient, the
// doctor discharges, the clerk archives from the queue; an overdue
// archiving is red with the deadline in words; the register exports CSV
// without patient data. Privileged roles keep the dashboard.
func TestRecordsOffice(t *testing.T) {
	h := newHospital(t)
	h.api(201, "POST", "/api/v1/departments", h.admin, map[string]string{"code": "MRD", "name": "病案室"})
	h.addStaff("sunli", "孙丽", "MRD", "records_clerk")
	h.addStaff("qianjin", "钱进", "", "auditor")
	clerk := h.browser("zh-CN")
	home := clerk.signIn("sunli", staffPassword)
	contains(t, "clerk's home", home, "病案室工作台", "在院患者", "归档超期", `href="/patients/new"`, `id="figure-admitted"`)
	if strings.Contains(home.body, h.patientName) {
		t.Fatal("the queue names a patient")
	}
	form := clerk.get("/patients/new")
	contains(t, "clerk's registration", form, `<option value="CARD">心内科</option>`, `<option value="NEUR">神经内科</option>`)
	p := clerk.post("/patients/new", form, url.Values{"name": {"欧阳修"}, "gender": {""}, "id_number": {"360824197001010015"},
		"phone": {"13800138001"}, "address": {"江西省吉安市永丰县沙溪镇"}, "mrn": {"BA2026000200"}, "department": {"CARD"},
		"admitted_at": {h.clock.Now().In(time.FixedZone("CST", 8*3600)).Add(-time.Hour).Format("2006-01-02T15:04")}})
	if p.status != 200 || p.url.Query().Get("m") != "patient_registered_admitted" {
		t.Fatalf("register and admit: %d %s %s", p.status, p.url, p.body)
	}
	pid := strings.TrimPrefix(p.url.Path, "/patients/")
	if got := h.api(200, "GET", "/api/v1/patients/"+pid, h.enrolAPI("zhangwei"), nil); got["gender"] != "male" || got["birth_date"] != "1970-01-01" {
		t.Fatalf("gender and birth date from the ID number: %v", got)
	}
	adm := clerk.get("/admissions?status=admitted")
	contains(t, "in hospital", adm, `href="/patients/`+pid+`/admissions"`, "心内科")
	pa := clerk.get("/patients/" + pid + "/admissions")
	contains(t, "patient's admissions", pa, "欧阳修", "BA2026000200", "办理出院 — 心内科", `id="admit-form"`)
	if !strings.Contains(pa.body, `<option value="CARD" selected>`) {
		t.Fatal("the admission form does not offer the patient's department")
	}
	if p := clerk.post("/patients/"+pid+"/admissions", pa, url.Values{"department": {""}, "admitted_at": {""}}); p.status != 422 ||
		!strings.Contains(p.body, "请选择入院科室") || !strings.Contains(p.body, `id="department-error"`) {
		t.Fatalf("admission without a department: %d", p.status)
	}
	aid := between(pa.body, `action="/admissions/`, `/discharge"`)
	if p := clerk.post("/admissions/"+aid+"/discharge", pa, url.Values{"patient": {pid}, "discharged_at": {"2099-01-01T08:00"}}); p.status != 422 ||
		!strings.Contains(p.body, "出院时间不正确") {
		t.Fatalf("discharge in the future: %d", p.status)
	}
	p = clerk.post("/admissions/"+aid+"/discharge", pa, url.Values{"patient": {pid}, "discharged_at": {""}})
	if p.status != 200 || p.url.Query().Get("m") != "discharged" || !strings.Contains(p.body, "剩余 7 天") {
		t.Fatalf("discharge: %d %s", p.status, p.body)
	}

	// Eight days on: overdue, in red, the deadline in words.
	h.clock.Advance(8*24*time.Hour + time.Hour)
	clerk = h.browser("zh-CN")
	home = clerk.signIn("sunli", staffPassword)
	contains(t, "overdue queue", home, `<tr class="bad">`, `<span class="tag bad">归档超期</span>`, "已超期 1 天", `id="archive-`+aid+`"`,
		`class="figure alert"`)
	q := clerk.get("/admissions?status=overdue")
	contains(t, "overdue register", q, `aria-current="true" class="bad"`, `formaction="/admissions/`+aid+`/archive"`)
	csv := clerk.get("/admissions?status=overdue&format=csv")
	if !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") || !strings.Contains(csv.body, "科室,入院时间") ||
		!strings.Contains(csv.body, "归档超期") || strings.Contains(csv.body, "欧阳修") {
		t.Fatalf("CSV: %s", csv.body)
	}
	p = clerk.post("/admissions/"+aid+"/archive", q, url.Values{"back": {"/admissions?status=overdue"}})
	if p.status != 200 || p.url.Query().Get("m") != "archived_late" || p.url.Query().Get("status") != "overdue" {
		t.Fatalf("archive: %d %s", p.status, p.url)
	}
	if strings.Contains(p.body, `name="back" value="/admissions?m=`) || strings.Contains(p.body, "&amp;m=") {
		t.Fatal("the next archiving would return with this one's message")
	}
	if p := clerk.post("/admissions/"+aid+"/archive", q, url.Values{"back": {"/"}}); p.url.Query().Get("m") != "archive_refused" {
		t.Fatalf("archived twice: %s", p.url)
	}
	contains(t, "archived late", clerk.get("/admissions?status=archived_late"), "延迟归档", "超期 1 天 2 小时后归档")

	// An auditor reads the register, without links to patients or buttons.
	aud := h.browser("zh-CN")
	dash := aud.signIn("qianjin", staffPassword)
	if strings.Contains(dash.body, "本科室患者") || strings.Contains(dash.body, "病案室工作台") {
		t.Fatal("an auditor lost the dashboard")
	}
	reg := aud.get("/admissions?status=")
	if reg.status != 200 || !strings.Contains(reg.body, "延迟归档") || strings.Contains(reg.body, `href="/patients/`) ||
		strings.Contains(reg.body, "archive-form") {
		t.Fatalf("auditor's register: %d %s", reg.status, reg.body)
	}
	// The department head: the department's patients, and the reviews to do.
	head := h.browser("zh-CN")
	contains(t, "head's home", head.signIn("liuyang", staffPassword), "心内科 · 本科室患者", "待复核的紧急访问", "本科室归档超期")
}
