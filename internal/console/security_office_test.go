package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/detect"
	"medguard/internal/incidents"
)

// auditEntries returns the audit entries of an action by an actor, as
// the API's search shows them.
func (h *hospital) auditEntries(actor, action string) []map[string]any {
	h.t.Helper()
	out := h.api(200, "GET", "/api/v1/audit/search?"+url.Values{"actor": {actor}, "action": {action}}.Encode(), h.security, nil)
	var es []map[string]any
	for _, it := range out["items"].([]any) {
		m := it.(map[string]any)
		if e, ok := m["entry"].(map[string]any); ok {
			m = e
		}
		es = append(es, m)
	}
	return es
}

// TestAuditorFindsAPatient has a quality auditor (audit.read, no patient
// permission) find a patient by name, resident ID number and 病案号, POSTed:
// the matches show what tells patients apart and link to the report and
// the trail; no search text reaches a URL; every match is a logged
// disclosure; a doctor may not use the lookup.
func TestAuditorFindsAPatient(t *testing.T) {
	h, _ := securityHospital(t)
	b := h.browser("zh-CN")
	b.signIn("sunli", staffPassword)
	audit := b.get("/audit")
	for _, q := range []string{h.patientName, h.idNum, "BA2026000123"} {
		p := b.post("/audit/patients", audit, url.Values{"q": {q}})
		rows := between(p.body, `id="lookup-results"`, `</table>`)
		if p.status != 200 || p.url.Path != "/audit/patients" || !strings.Contains(rows, "欧***") || !strings.Contains(rows, "1949") ||
			!strings.Contains(rows, "…0123") || !strings.Contains(rows, "心内科") || !strings.Contains(rows, "女") ||
			!strings.Contains(rows, `href="/patients/`+h.patientID+`/access-report"`) || !strings.Contains(rows, `href="/patients/`+h.patientID+`/audit"`) {
			t.Fatalf("lookup %q: %d %s", q, p.status, p.body)
		}
		for _, s := range []string{h.patientName, h.idNum, "13800138000", "BA2026000123"} {
			if strings.Contains(rows, s) {
				t.Errorf("lookup %q shows %q", q, s)
			}
		}
	}
	if p := b.post("/audit/patients", audit, url.Values{"q": {"司马相如"}}); p.status != 200 || !strings.Contains(p.body, `id="lookup-none"`) {
		t.Errorf("nobody: %d", p.status)
	}
	if p := b.post("/audit/patients", audit, url.Values{"q": {"110105194912310021"}}); p.status != 422 || !strings.Contains(p.body, "身份证号不正确") {
		t.Errorf("a mistyped ID number: %d", p.status)
	}
	for _, u := range b.visited {
		for _, s := range []string{h.patientName, url.QueryEscape(h.patientName), h.idNum, "BA2026000123"} {
			if strings.Contains(u, s) {
				t.Errorf("URL %s holds %q", u, s)
			}
		}
	}
	matches := 0
	for _, e := range h.auditEntries("sunli", "patient.search_match") {
		if e["patient_id"] == h.patientID && e["decision"] == "allow" {
			matches++
		}
	}
	if matches != 3 {
		t.Errorf("%d patient.search_match entries for the auditor, want 3", matches)
	}
	if !detectCounts("patient.search_match") {
		t.Error("patient.search_match does not count as a disclosure")
	}
	doc := h.browser("zh-CN")
	h.clock.Advance(30 * time.Second)
	d := doc.signIn("zhangwei", staffPassword)
	if p := doc.post("/audit/patients", d, url.Values{"q": {h.patientName}}); p.status != 403 {
		t.Errorf("a doctor's lookup: %d", p.status)
	}
}

func detectCounts(action string) bool {
	for _, a := range detect.DisclosureActions {
		if a == action {
			return true
		}
	}
	return false
}

// TestAccessReportForThePatient opens a patient's access report as the
// auditor: it names the patient (it is handed to them), lists people by
// name and department and actions in words, exports CSV and prints; each
// of the three is an audit.access_report entry about the patient.
func TestAccessReportForThePatient(t *testing.T) {
	h, _ := securityHospital(t)
	b := h.browser("zh-CN")
	b.signIn("sunli", staffPassword)
	before := len(h.auditEntries("sunli", "audit.access_report"))
	path := "/patients/" + h.patientID + "/access-report"
	p := b.get(path)
	if p.status != 200 || !strings.Contains(p.body, `<dd id="report-patient">欧阳娜娜</dd>`) || !strings.Contains(p.body, "BA2026000123") ||
		!strings.Contains(between(p.body, `id="report-lines"`, `</table>`), "王丽（心内科）") ||
		!strings.Contains(p.body, "新建了一份病历") || !strings.Contains(p.body, `id="report-lines-csv"`) {
		t.Fatalf("report: %d %s", p.status, p.body)
	}
	if title := titleOf(p.body); strings.Contains(title, "欧阳") {
		t.Errorf("title %q names the patient", title)
	}
	c := b.get(path + "?format=csv")
	if c.status != 200 || !strings.HasPrefix(c.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(c.header.Get("Content-Disposition"), "access-report-") {
		t.Fatalf("CSV: %d %v", c.status, c.header)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(c.body, "\ufeff"))).ReadAll()
	if err != nil || len(rows) < 3 || rows[0][0] != "时间" || rows[0][1] != "访问人" {
		t.Fatalf("CSV %q: %v", c.body, err)
	}
	if !strings.Contains(c.body, "王丽（心内科）") || strings.Contains(c.body, "wangli") {
		t.Errorf("CSV people: %s", c.body)
	}
	pr := b.get(path + "?print=1")
	if pr.status != 200 || strings.Contains(pr.body, `class="nav"`) || !strings.Contains(pr.body, "欧阳娜娜") ||
		!strings.Contains(pr.body, "打印人：孙丽") || strings.Contains(pr.body, `id="report-lines-next"`) {
		t.Fatalf("print: %d %s", pr.status, pr.body)
	}
	n := 0
	for _, e := range h.auditEntries("sunli", "audit.access_report") {
		if e["patient_id"] == h.patientID {
			n++
		}
	}
	if n-before != 3 {
		t.Errorf("%d access_report entries for page, CSV and print, want 3", n-before)
	}
	// In English the report speaks English, the patient still named.
	b.lang = "en"
	if p := b.get(path); !strings.Contains(p.body, "Access report of 欧阳娜娜") || !strings.Contains(p.body, "added a medical record") {
		t.Errorf("English report: %s", p.body)
	}
}

// TestAuditSearchGrid searches the log by person, action, result and time
// as a grid in words; the patient's trail keeps the patient out of the
// query; CSV and print export the rows.
func TestAuditSearchGrid(t *testing.T) {
	h, _ := securityHospital(t)
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)
	p := b.get("/audit/search?actor=wangli&action=record.create")
	grid := between(p.body, `id="audit-results"`, `</table>`)
	if p.status != 200 || !strings.Contains(grid, "王丽（心内科）") || !strings.Contains(grid, "新建病历") || !strings.Contains(grid, "医生") ||
		!strings.Contains(grid, "允许") || !strings.Contains(grid, "本科室的数据") || !strings.Contains(grid, "成功") ||
		strings.Contains(visibleText(grid), "record.create") {
		t.Fatalf("search: %d %s", p.status, visibleText(grid))
	}
	if !strings.Contains(p.body, "操作人：王丽（心内科）") || !strings.Contains(p.body, "操作：新建病历") {
		t.Errorf("the filters are not said: %s", between(p.body, `id="filters-said"`, `</p>`))
	}
	// Refused: a cardiologist reads neurology's record, by status.
	neuro, rec := h.neurologyRecord()
	h.refusedReads("zhangwei", rec, 1)
	d := b.get("/audit/search?status=denied&actor=zhangwei")
	grid = between(d.body, `id="audit-results"`, `</table>`)
	if !strings.Contains(grid, "张伟（心内科）") || !strings.Contains(grid, "查阅病历") || !strings.Contains(grid, "拒绝") ||
		!strings.Contains(grid, "您与该患者没有诊疗关系") || !strings.Contains(grid, `<tr class="flag">`) {
		t.Fatalf("denied: %s", grid)
	}
	// The patient's trail: the patient in the path, not the query.
	trail := b.get("/patients/" + neuro + "/audit?status=denied")
	if !strings.Contains(trail.body, "张伟（心内科）") || strings.Contains(trail.body, "李娜（神经内科）</td>") {
		t.Errorf("patient trail: %s", between(trail.body, `id="audit-results"`, `</table>`))
	}
	c := b.get("/audit/search?actor=wangli&format=csv")
	if c.status != 200 || !strings.Contains(c.body, "序号,时间,操作人") || !strings.Contains(c.body, "新建病历") {
		t.Errorf("CSV: %d %s", c.status, c.body)
	}
	if p := b.get("/audit/search?from=昨天"); p.status != 422 || !strings.Contains(p.body, "起始时间格式不正确") {
		t.Errorf("bad from: %d", p.status)
	}
	// An entry's page: in words, Beijing time only.
	idx := between(grid, `href="/audit/entries/`, `"`)
	e := b.get("/audit/entries/" + idx)
	if !strings.Contains(e.body, "查阅病历") || !strings.Contains(e.body, "张伟（心内科）") || strings.Contains(e.body, "Z</code>") ||
		strings.Contains(e.body, "deny.no_relation</") {
		t.Errorf("entry %s: %s", idx, between(e.body, `id="entry-fields"`, `</dl>`))
	}
}

// neurologyRecord has the neurologist register a patient with a record in
// neurology, which cardiologists may not read.
func (h *hospital) neurologyRecord() (patient, record string) {
	h.t.Helper()
	lina := h.enrolAPI("lina")
	patient = h.api(201, "POST", "/api/v1/patients", lina, map[string]string{"name": "上官云", "gender": "male",
		"birth_date": "1961-07-09"})["id"].(string)
	record = h.api(201, "POST", "/api/v1/patients/"+patient+"/records", lina, map[string]any{"type": "progress_note",
		"department": "NEUR", "title": "神经内科病程记录", "classification": "general", "text": "头痛三天。"})["id"].(string)
	return patient, record
}

// refusedReads has a member of staff try to read a record n times, each
// refused by the policy.
func (h *hospital) refusedReads(username, record string, n int) {
	h.t.Helper()
	call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: h.users[username], Name: username, Department: "CARD",
		Roles: []string{"doctor"}}, IP: "10.1.2.3", Purpose: "treatment"}
	for range n {
		if _, err := h.app.Records.GetRecord(context.Background(), call, record); !medguard.IsKind(err, medguard.Forbidden) {
			h.t.Fatalf("%s reads %s: %v", username, record, err)
		}
	}
}

// failedSignIns makes n failed sign-ins from one address (unknown names,
// so nobody is locked out).
func (h *hospital) failedSignIns(n int, tag string) {
	h.t.Helper()
	for i := range n {
		h.api(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": fmt.Sprintf("intruder%02d-%s", i, tag),
			"password": "Wrong#Password1"})
	}
}

// newAlerts lists the new alerts of a rule through the service.
func (h *hospital) alerts(status, rule string) []detect.Alert {
	h.t.Helper()
	officer := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: h.users["zhouqiang"], Name: "zhouqiang",
		Roles: []string{"security_officer"}}, IP: "10.9.9.9"}
	as, _, err := h.app.Detect.Alerts(context.Background(), officer, detect.AlertQuery{Status: status, Rule: rule, Limit: 200})
	if err != nil {
		h.t.Fatal(err)
	}
	return as
}

// TestAlertsTable filters the alerts, acknowledges two with one POST,
// escalates a third to an incident picked from a list, and exports.
func TestAlertsTable(t *testing.T) {
	h, _ := securityHospital(t)
	for i := range 3 {
		h.failedSignIns(10, fmt.Sprint(i))
		h.clock.Advance(time.Minute)
	}
	as := h.alerts(detect.StatusNew, "failed_signin_ip")
	if len(as) != 3 {
		t.Fatalf("%d alerts", len(as))
	}
	so := h.enrolAPI("zhouqiang")
	inc := h.api(201, "POST", "/api/v1/incidents", so, map[string]any{"title": "外部地址暴力破解登录", "description": "多次登录失败",
		"grade": 3, "criterion": "minor_fault"})
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)
	list := b.get("/alerts?status=new&rule=failed_signin_ip&severity=medium")
	grid := between(list.body, `id="alerts"`, `</table>`)
	for _, w := range []string{"同一 IP 多次登录失败", "中", "新告警", "地址 127.0.0.1 在 10 分钟内登录失败 10 次（阈值 10 次）", `name="alert"`} {
		if !strings.Contains(grid, w) {
			t.Errorf("the table lacks %q", w)
		}
	}
	if text := visibleText(grid); strings.Contains(text, "10m0s") || strings.Contains(text, "UTC") || strings.Contains(text, "failed_signin_ip") {
		t.Errorf("codes in the table: %s", text)
	}
	if p := b.get("/alerts?status=new&severity=high"); !strings.Contains(p.body, `id="alerts-empty"`) {
		t.Errorf("severity filter: %s", between(p.body, `id="alerts"`, `</table>`))
	}
	// Two acknowledged with one POST.
	ack := b.post("/alerts/bulk", list, url.Values{"alert": {as[0].ID, as[1].ID}, "do": {"acknowledge"},
		"back": {"status=new&rule=failed_signin_ip"}})
	if ack.status != 200 || !strings.Contains(ack.body, "所选告警已确认") || ack.url.Query().Get("rule") != "failed_signin_ip" {
		t.Fatalf("bulk: %d %s", ack.status, ack.url)
	}
	if left := h.alerts(detect.StatusNew, "failed_signin_ip"); len(left) != 1 || left[0].ID != as[2].ID {
		t.Fatalf("left new: %+v", left)
	}
	// Again: moved on meanwhile, said so.
	if p := b.post("/alerts/bulk", list, url.Values{"alert": {as[0].ID}, "do": {"acknowledge"}}); !strings.Contains(p.body, "部分告警已被他人处理") {
		t.Errorf("second bulk: %s", p.url)
	}
	// Escalated to an incident picked from the list on the alert's page.
	one := b.get("/alerts/" + as[2].ID)
	if !strings.Contains(between(one.body, `id="escalate-incident"`, `</select>`), `value="`+inc["id"].(string)+`"`) ||
		!strings.Contains(one.body, "外部地址暴力破解登录") {
		t.Fatalf("no incident to pick: %s", one.body)
	}
	esc := b.post("/alerts/"+as[2].ID+"/escalate", one, url.Values{"incident_id": {inc["id"].(string)}, "from_alert": {"1"}})
	if esc.status != 200 || esc.url.Path != "/alerts/"+as[2].ID || !strings.Contains(esc.body, "告警已升级处理") ||
		!strings.Contains(between(esc.body, `id="alert-incident"`, `</a>`), "外部地址暴力破解登录") {
		t.Fatalf("escalate: %d %s", esc.status, esc.body)
	}
	// A typed id that is not one is refused.
	if p := b.post("/alerts/"+as[0].ID+"/escalate", one, url.Values{"incident_id": {"x"}, "from_alert": {"1"}}); p.status != 422 {
		t.Errorf("bad incident: %d", p.status)
	}
	c := b.get("/alerts?status=all&format=csv")
	if c.status != 200 || !strings.Contains(c.body, "同一 IP 多次登录失败") || !strings.Contains(c.body, "已升级") {
		t.Errorf("CSV: %s", c.body)
	}
	if p := b.get("/alerts?status=all&print=1"); p.status != 200 || strings.Contains(p.body, `name="alert"`) || strings.Contains(p.body, `id="bulk-form"`) {
		t.Errorf("print: %d", p.status)
	}
}

// TestClosingAnIncidentClearsItsAlerts: an incident whose deadlines went
// overdue is closed through the confirmation, which says how many alerts
// it clears; afterwards no new alert of it is left.
func TestClosingAnIncidentClearsItsAlerts(t *testing.T) {
	h, _ := securityHospital(t)
	so := h.enrolAPI("zhouqiang")
	inc := h.api(201, "POST", "/api/v1/incidents", so, map[string]any{"title": "打印服务故障", "description": "门诊打印机无法打印",
		"grade": 3, "criterion": "minor_fault"})
	id := inc["id"].(string)
	h.clock.Advance(40 * time.Minute)
	if _, err := h.app.Incidents.CheckOverdue(context.Background()); err != nil {
		t.Fatal(err)
	}
	mine := func() int {
		n := 0
		for _, a := range h.alerts(detect.StatusNew, detect.DeadlineOverdueRule) {
			if a.Key == id {
				n++
			}
		}
		return n
	}
	if mine() == 0 {
		t.Fatal("no overdue alert")
	}
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)
	list := b.get("/alerts?rule=incident_deadline_overdue")
	if !strings.Contains(list.body, "安全事件的处置时限“30 分钟内确认等级”已超期") || !strings.Contains(list.body, `href="/incidents/`+id+`"`) {
		t.Fatalf("overdue alerts: %s", between(list.body, `id="alerts"`, `</table>`))
	}
	page := b.get("/incidents/" + id)
	page = b.post("/incidents/"+id+"/grade", page, url.Values{"grade": {"3"}, "criterion": {"minor_fault"}})
	confirm := b.post("/incidents/"+id+"/close", page, url.Values{"summary": {"已修复"}})
	if confirm.status != 200 || !strings.Contains(confirm.body, "关闭后，该事件的 1 条超期告警将被自动确认") ||
		!strings.Contains(confirm.body, `value="已修复"`) {
		t.Fatalf("confirmation: %d %s", confirm.status, confirm.body)
	}
	if mine() == 0 {
		t.Fatal("the confirmation closed it")
	}
	closed := b.post("/incidents/"+id+"/close", confirm, url.Values{"summary": {"已修复"}, "confirm": {"1"}})
	if closed.status != 200 || !strings.Contains(closed.body, "事件已关闭") {
		t.Fatalf("close: %d", closed.status)
	}
	if n := mine(); n != 0 {
		t.Errorf("%d alerts of the closed incident still new", n)
	}
	if p := b.get("/alerts?rule=incident_deadline_overdue"); strings.Contains(p.body, `href="/incidents/`+id+`"`) {
		t.Errorf("the list still shows them")
	}
	// The list of incidents: a grid, the closed one without a deadline.
	l := b.get("/incidents?status=all")
	row := between(l.body, `href="/incidents/`+id+`"`, `</tr>`)
	if !strings.Contains(row, "已关闭") || strings.Contains(row, "已超期") {
		t.Errorf("closed row: %s", row)
	}
}

// TestOverdueShownOverdue: on the incidents list and the dashboard an
// overdue deadline is red and says how long overdue, and the dashboard's
// tiles and charts link to their lists.
func TestOverdueShownOverdue(t *testing.T) {
	h, _ := securityHospital(t)
	so := h.enrolAPI("zhouqiang")
	id := h.api(201, "POST", "/api/v1/incidents", so, map[string]any{"title": "病案库存储告急", "description": "磁盘剩余空间不足",
		"grade": 2, "criterion": "local_data_abnormal"})["id"].(string)
	h.clock.Advance(20 * time.Minute)
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)
	row := between(b.get("/incidents").body, `href="/incidents/`+id+`"`, `</tr>`)
	if !strings.Contains(row, "15 分钟内召开应急会议") || !regexp.MustCompile(`class="tag bad overdue">已超期 \d+ 分钟`).MatchString(row) {
		t.Errorf("list row: %s", row)
	}
	d := b.get("/")
	for _, href := range []string{`href="/alerts?status=new"`, `href="/incidents?status=open"`, `href="/audit"`, `href="/alerts#freezes"`,
		`href="/incidents/` + id + `"`, `href="/incidents?grade=2&amp;status=open"`, `href="/audit/search?action=record.read&amp;from=`} {
		if !strings.Contains(d.body, href) {
			t.Errorf("the dashboard lacks %s", href)
		}
	}
	tile := between(d.body, `id="tile-deadline"`, `</li>`)
	if !strings.Contains(tile, "已超期的处置时限") || !strings.Contains(tile, `bad overdue`) || !strings.Contains(tile, "已超期") {
		t.Errorf("deadline tile: %s", tile)
	}
	for _, link := range regexp.MustCompile(`href="(/(?:alerts|incidents|audit)[^"#]*)"`).FindAllStringSubmatch(d.body, -1) {
		p := b.get(strings.ReplaceAll(link[1], "&amp;", "&"))
		if p.status != 200 {
			t.Errorf("%s: %d", link[1], p.status)
		}
	}
}

// TestCandidatesGrid lists the possible violations as a grid with the
// person by name and the entries as links; a candidate's link fills the
// open-case form in, which otherwise has no violation chosen.
func TestCandidatesGrid(t *testing.T) {
	h, _ := securityHospital(t)
	_, rec := h.neurologyRecord()
	h.refusedReads("zhangwei", rec, 4)
	b := h.browser("zh-CN")
	b.signIn("sunli", staffPassword)
	p := b.get("/accountability/candidates")
	grid := between(p.body, `id="candidates"`, `</table>`)
	if p.status != 200 || !strings.Contains(grid, "张伟（心内科）") || !strings.Contains(grid, "越权查询超过3次") ||
		!strings.Contains(grid, "4 次") || strings.Count(grid, `href="/audit/entries/`) != 4 {
		t.Fatalf("candidates: %d %s", p.status, p.body)
	}
	form := between(p.body, `id="case-form"`, `</form>`)
	if !strings.Contains(form, `<option value="">请选择违规类型</option>`) || strings.Contains(form, " selected") {
		t.Errorf("the form chooses for the user: %s", form)
	}
	m := regexp.MustCompile(`href="/accountability/candidates\?([^"]*)#case-form"`).FindStringSubmatch(grid)
	if m == nil {
		t.Fatalf("no link opens a case: %s", grid)
	}
	f := b.get("/accountability/candidates?" + strings.ReplaceAll(m[1], "&amp;", "&"))
	form = between(f.body, `id="case-form"`, `</form>`)
	if !strings.Contains(form, `value="zhangwei"`) || !strings.Contains(form, `value="unauthorized_queries" selected`) {
		t.Errorf("the candidate's form: %s", form)
	}
	if c := b.get("/accountability/candidates?format=csv"); !strings.Contains(c.body, "张伟（心内科）") {
		t.Errorf("CSV: %s", c.body)
	}
	if c := b.get("/accountability"); c.status != 200 || !strings.Contains(c.body, `id="cases-empty"`) {
		t.Errorf("cases: %d", c.status)
	}
	_ = incidents.Open
}
