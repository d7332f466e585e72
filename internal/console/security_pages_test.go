package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/incidents"
)

// securityHospital is the test hospital with its security staff in post:
// the pending access grant approved by the department head, and two
// quality auditors (孙丽, 赵磊) approved by the security administrator.
//
// It returns the department head's API token too (a cardiologist, who may
// register patients and write records).
func securityHospital(t *testing.T) (*hospital, string) {
	t.Helper()
	h := newHospital(t)
	head := h.enrolAPI("liuyang")
	h.api(200, "POST", "/api/v1/approvals/"+h.approvalID+"/approve", head, map[string]string{"note": "同意"})
	for _, u := range []struct{ name, display string }{{"sunli", "孙丽"}, {"zhaolei", "赵磊"}} {
		out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": u.name, "display_name": u.display,
			"roles": []string{"auditor"}, "password": staffPassword})
		h.users[u.name] = out["id"].(string)
		p := out["pending_approvals"].([]any)
		h.api(200, "POST", "/api/v1/approvals/"+p[0].(map[string]any)["id"].(string)+"/approve", h.security, map[string]string{"note": "同意"})
	}
	return h, head
}

// TestSecurityPages renders every security and administration page in
// both languages for a role allowed to see it, and refuses it to a role
// that is not; no page title carries patient data.
func TestSecurityPages(t *testing.T) {
	h, _ := securityHospital(t)
	browsers := map[string]*browser{}
	for _, u := range []string{"zhouqiang", "sunli", "admin", "zhangwei"} {
		b := h.browser("zh-CN")
		pw := staffPassword
		if u == "admin" {
			pw = adminPassword
		}
		b.signIn(u, pw)
		browsers[u] = b
	}
	// The officer's nav has the security pages, the doctor's none of them.
	dash := browsers["zhouqiang"].get("/")
	for _, p := range []string{"/audit", "/alerts", "/incidents"} {
		if !strings.Contains(dash.body, `href="`+p+`"`) {
			t.Errorf("officer's nav lacks %s", p)
		}
	}
	if strings.Contains(dash.body, `href="/accountability"`) || strings.Contains(dash.body, `href="/admin/departments"`) {
		t.Errorf("officer's nav shows pages the role may not use")
	}
	doc := browsers["zhangwei"].get("/")
	for _, p := range []string{"/audit", "/alerts", "/incidents", "/accountability", "/admin/users", "/admin/roles", "/admin/departments"} {
		if strings.Contains(doc.body, `href="`+p+`"`) {
			t.Errorf("doctor's nav shows %s", p)
		}
	}
	if a := browsers["admin"].get("/"); !strings.Contains(a.body, `href="/admin/users"`) || !strings.Contains(a.body, `href="/admin/departments"`) {
		t.Errorf("admin's nav lacks the administration pages")
	}

	for _, tc := range []struct {
		path, who, refused string
		zh, en             []string
	}{
		{"/audit", "zhouqiang", "zhangwei", []string{"审计日志（操作留痕）", "最新检查点签名已用验证公钥验证通过", "查找患者"},
			[]string{"Audit log", "verifies with the verifier key", "Find a patient"}},
		{"/audit/entries/1", "zhouqiang", "zhangwei", []string{"审计条目 #1", "已在服务器端验证"}, []string{"Audit entry #1", "Verified on the server"}},
		{"/patients/" + h.patientID + "/access-report", "zhouqiang", "zhangwei", []string{"患者访问记录", "访问明细", "王丽（心内科）",
			"欧阳娜娜的访问记录", "BA2026000123"},
			[]string{"Patient access report", "Accesses", "王丽 (心内科)", "Access report of 欧阳娜娜", "BA2026000123"}},
		{"/alerts", "zhouqiang", "zhangwei", []string{"告警与冻结账号", "目前没有被冻结的账号"}, []string{"Alerts and frozen accounts", "No account is frozen"}},
		{"/incidents", "zhouqiang", "zhangwei", []string{"安全事件", "登记安全事件"}, []string{"Security incidents", "Report an incident"}},
		{"/incidents/new", "zhouqiang", "sunli", []string{"登记安全事件", "影响范围", "单个科室受影响"}, []string{"Report a security incident", "Reach", "One department affected"}},
		{"/accountability", "sunli", "zhouqiang", []string{"违规责任追究", "疑似违规线索"}, []string{"Accountability cases", "Possible violations"}},
		{"/accountability/candidates", "sunli", "zhangwei", []string{"疑似违规线索（近 30 天）", "立案"}, []string{"Possible violations (last 30 days)", "Open a case"}},
		{"/admin/users", "admin", "zhangwei", []string{"用户与角色", "zhouqiang", "信息安全专员", "新建用户"}, []string{"Users and roles", "Security officer", "New user"}},
		{"/admin/roles", "admin", "zhangwei", []string{"角色与权限", "质控审计员", "科室主任"}, []string{"Roles and permissions", "Quality auditor", "Department head"}},
		{"/admin/departments", "admin", "zhouqiang", []string{"科室", "心内科", "CARD"}, []string{"Departments", "心内科", "New department"}},
	} {
		b := browsers[tc.who]
		for _, lang := range []string{"zh-CN", "en"} {
			b.lang = lang
			p := b.get(tc.path)
			want := tc.zh
			if lang == "en" {
				want = tc.en
			}
			if p.status != 200 {
				t.Errorf("%s %s as %s: %d", lang, tc.path, tc.who, p.status)
				continue
			}
			for _, w := range want {
				if !strings.Contains(p.body, w) {
					t.Errorf("%s %s lacks %q", lang, tc.path, w)
				}
			}
			if !strings.Contains(p.body, `<html lang="`+lang+`">`) {
				t.Errorf("%s %s: wrong language", lang, tc.path)
			}
			title := titleOf(p.body)
			for _, s := range []string{h.patientName, h.idNum, h.patientID, "欧阳"} {
				if title == "" || strings.Contains(title, s) {
					t.Errorf("%s %s: title %q", lang, tc.path, title)
				}
			}
		}
		b.lang = "zh-CN"
		r := browsers[tc.refused]
		if p := r.get(tc.path); p.status != http.StatusForbidden || !strings.Contains(p.body, "deny.no_permission") ||
			!strings.Contains(p.body, "无权访问") {
			t.Errorf("%s as %s: %d, want the 403 page", tc.path, tc.refused, p.status)
		}
	}

	// The access report comes from the audit page's form (POST → the report).
	b := browsers["zhouqiang"]
	audit := b.get("/audit")
	if p := b.post("/audit/access-report", audit, url.Values{"patient": {h.patientID}}); p.status != 200 ||
		p.url.Path != "/patients/"+h.patientID+"/access-report" || !strings.Contains(p.body, "id=\"report-lines\"") {
		t.Fatalf("report form: %d %s", p.status, p.url)
	}
	// A name is looked up: the match links to the report.
	if p := b.post("/audit/access-report", audit, url.Values{"patient": {"欧阳娜娜"}}); p.status != 200 ||
		!strings.Contains(p.body, `href="/patients/`+h.patientID+`/access-report"`) || !strings.Contains(p.body, "欧**") {
		t.Fatalf("report form with a name: %d", p.status)
	}
	// Search by POST, by patient: the record's creation is found, the
	// patient id stays out of the URL.
	res := b.post("/audit", audit, url.Values{"patient": {h.patientID}})
	if res.status != 200 || res.url.Path != "/patients/"+h.patientID+"/audit" || !strings.Contains(res.body, "新建病历") ||
		!strings.Contains(res.body, `id="audit-results"`) || strings.Contains(res.body, "record.create<") {
		t.Fatalf("audit search: %d %s %s", res.status, res.url, res.body)
	}
	if p := b.post("/audit", audit, url.Values{"from": {"昨天"}}); p.status != 422 || !strings.Contains(p.body, "起始时间格式不正确") {
		t.Fatalf("bad from: %d", p.status)
	}
	for _, u := range b.visited {
		if strings.Contains(u, h.patientName) || strings.Contains(u, url.QueryEscape(h.patientName)) {
			t.Errorf("URL %s holds patient data", u)
		}
	}
	// An entry past the log's end is not found.
	if p := b.get("/audit/entries/999999"); p.status != 404 {
		t.Errorf("missing entry: %d", p.status)
	}
}

// TestSecurityFormsNeedCSRF posts each of the security and administration
// forms without the token: every one is refused before it does anything.
func TestSecurityFormsNeedCSRF(t *testing.T) {
	h, _ := securityHospital(t)
	b := h.browser("zh-CN")
	dash := b.signIn("zhouqiang", staffPassword)
	for _, path := range []string{"/audit", "/audit/access-report", "/audit/patients", "/alerts/bulk", "/alerts/x/acknowledge", "/alerts/x/false-positive",
		"/alerts/x/escalate", "/accounts/" + h.users["zhangwei"] + "/release", "/incidents", "/incidents/x/grade",
		"/incidents/x/updates", "/incidents/x/evidence", "/incidents/x/analysis", "/incidents/x/actions",
		"/incidents/x/actions/y/state", "/incidents/x/close", "/accountability", "/accountability/x/findings",
		"/accountability/x/statement", "/accountability/x/decision", "/accountability/x/appeal", "/accountability/x/review",
		"/admin/users", "/admin/users/" + h.users["lina"] + "/deactivate", "/admin/departments"} {
		for _, tok := range []string{"", "forged"} {
			p := b.post(path, dash, url.Values{"csrf_token": {tok}, "title": {"测试"}, "reason": {"测试"}, "code": {"ORTH"}, "name": {"骨科"}})
			if p.status != 403 || !strings.Contains(p.body, "deny.csrf") {
				t.Errorf("POST %s with token %q: %d", path, tok, p.status)
			}
		}
	}
	// Nothing happened.
	if u := h.api(200, "GET", "/api/v1/users/"+h.users["lina"], h.admin, nil); u["status"] != "active" {
		t.Errorf("lina was deactivated: %v", u)
	}
	if inc := h.api(200, "GET", "/api/v1/incidents", h.enrolAPI("zhouqiang"), nil); len(inc["items"].([]any)) != 0 {
		t.Errorf("an incident was reported: %v", inc)
	}
}

// TestAlertAndFreezeFlow has a doctor read 51 patients' records in a
// burst through the records service: detection freezes the account. The
// security officer sees the alert and the frozen account in the console,
// acknowledges the alert and releases the account with a reason.
func TestAlertAndFreezeFlow(t *testing.T) {
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) { alertAndFreeze(t, lang) })
	}
}

func alertAndFreeze(t *testing.T, lang string) {
	h, clerk := securityHospital(t)
	ctx := context.Background()
	recs := []string{h.recordID}
	for i := 1; len(recs) < 51; i++ {
		pid := h.api(201, "POST", "/api/v1/patients", clerk, map[string]string{"name": fmt.Sprintf("测试患者%02d", i),
			"gender": "male", "birth_date": "1970-05-01"})["id"].(string)
		h.api(201, "POST", "/api/v1/patients/"+pid+"/admissions", clerk, map[string]string{"department": "CARD",
			"admitted_at": h.clock.Now().Add(-24 * time.Hour).Format(time.RFC3339)})
		recs = append(recs, h.api(201, "POST", "/api/v1/patients/"+pid+"/records", clerk, map[string]any{"type": "progress_note",
			"department": "CARD", "title": "病程记录", "classification": "general", "text": "病情平稳。"})["id"].(string))
	}
	tok := h.enrolAPI("zhangwei")
	pr, err := h.app.Identity.Authenticate(ctx, tok, "10.1.2.3", "test")
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for _, rid := range recs {
		call := &medguard.Call{Actor: pr.Actor, IP: "10.1.2.3", RequestID: medguard.NewID(h.clock.Now()), Purpose: "treatment"}
		_, last = h.app.Records.GetRecord(ctx, call, rid)
		if last != nil {
			break
		}
	}
	if !medguard.IsKind(last, medguard.Locked) {
		t.Fatalf("the 51st read: %v", last)
	}
	if frozen, _ := h.app.Identity.IsFrozen(ctx, "zhangwei"); !frozen {
		t.Fatal("zhangwei is not frozen")
	}

	words := map[string][]string{
		"zh-CN": {"张伟（心内科）", "单用户批量查看患者数据", "新告警", "告警已确认。", "请填写解冻理由", "账号已解冻"},
		"en":    {"张伟 (心内科)", "One user views the data of many patients", "New", "Alert acknowledged.", "Give the reason for the release", "Account released"},
	}[lang]
	b := h.browser(lang)
	b.signIn("zhouqiang", staffPassword)
	page := b.get("/alerts")
	for _, w := range words[:3] {
		if !strings.Contains(page.body, w) {
			t.Fatalf("alerts page lacks %q: %s", w, page.body)
		}
	}
	alertID := between(page.body, `formaction="/alerts/`, `/acknowledge"`)
	if alertID == "" {
		t.Fatalf("no acknowledge form: %s", page.body)
	}
	ack := b.post("/alerts/"+alertID+"/acknowledge", page, url.Values{"back_status": {"new"}})
	if ack.status != 200 || ack.url.Query().Get("m") != "alert_acknowledged" || !strings.Contains(ack.body, words[3]) {
		t.Fatalf("acknowledge: %d %s", ack.status, ack.url)
	}
	if strings.Contains(between(ack.body, `id="alerts"`, `</table>`), `href="/alerts/`+alertID+`"`) {
		t.Errorf("the acknowledged alert is still listed among the new ones")
	}
	acked := b.get("/alerts?status=acknowledged")
	if !strings.Contains(between(acked.body, `id="alerts"`, `</table>`), `href="/alerts/`+alertID+`"`) ||
		strings.Contains(acked.body, "/alerts/"+alertID+"/acknowledge\"") {
		t.Errorf("acknowledged list: %s", acked.body)
	}
	// The alert's page offers what is left: escalation, not acknowledgement.
	if one := b.get("/alerts/" + alertID); one.status != 200 || !strings.Contains(one.body, "/alerts/"+alertID+"/escalate") ||
		strings.Contains(one.body, "/alerts/"+alertID+"/acknowledge\"") {
		t.Errorf("the alert's page: %d %s", one.status, one.body)
	}
	// Acknowledging twice is a conflict shown on the page.
	if p := b.post("/alerts/"+alertID+"/acknowledge", page, nil); p.status != 422 {
		t.Errorf("second acknowledge: %d", p.status)
	}

	// The release needs a reason.
	release := "/accounts/" + h.users["zhangwei"] + "/release"
	if !strings.Contains(page.body, `action="`+release+`"`) {
		t.Fatalf("no release form")
	}
	if p := b.post(release, page, url.Values{"reason": {"  "}}); p.status != 422 || !strings.Contains(p.body, words[4]) {
		t.Fatalf("release without a reason: %d", p.status)
	}
	if frozen, _ := h.app.Identity.IsFrozen(ctx, "zhangwei"); !frozen {
		t.Fatal("released without a reason")
	}
	rel := b.post(release, page, url.Values{"reason": {"经核实为科室质控抽查，已与科主任确认"}})
	if rel.status != 200 || !strings.Contains(rel.body, words[5]) || !strings.Contains(rel.body, `id="no-freezes"`) {
		t.Fatalf("release: %d %s", rel.status, rel.body)
	}
	if frozen, err := h.app.Identity.IsFrozen(ctx, "zhangwei"); err != nil || frozen {
		t.Fatalf("zhangwei still frozen: %v", err)
	}
	// The alert that froze the account shows it released now, not frozen.
	released := map[string]string{"zh-CN": "已解冻", "en": "Released"}[lang]
	frozenTag := map[string]string{"zh-CN": ">账号已冻结<", "en": ">Account frozen<"}[lang]
	froze := h.alerts("", "bulk_read_user")
	if len(froze) != 1 || !froze[0].Frozen {
		t.Fatalf("the freeze's alert: %+v", froze)
	}
	if row := between(b.get("/alerts?status=all").body, `href="/alerts/`+froze[0].ID+`"`, `</tr>`); !strings.Contains(row, released) ||
		strings.Contains(row, frozenTag) {
		t.Errorf("the released account's alert: %s", row)
	}
	// The freeze opened an incident, which the incidents page lists, in
	// the page's language with the person by name.
	list := b.get("/incidents")
	incID := between(list.body, `href="/incidents/`, `"`)
	if incID == "" || strings.HasPrefix(incID, "new") || incID == "commanded" {
		incID = between(between(list.body, `id="incidents"`, `</table>`), `<a href="/incidents/`, `"`)
	}
	inc := b.get("/incidents/" + incID)
	title := map[string]string{"zh-CN": "账号已冻结：张伟（心内科）", "en": "Account frozen: 张伟 (心内科)"}[lang]
	if inc.status != 200 || !strings.Contains(inc.body, title) || !strings.Contains(inc.body, `id="incident-alert"`) ||
		strings.Contains(inc.body, "Account frozen") && lang == "zh-CN" || strings.Contains(inc.body, "patients' records read") {
		t.Errorf("the freeze's incident %s: %d %s", incID, inc.status, between(inc.body, `<main`, `id="deadlines"`))
	}
	// A doctor may not release accounts (and the nav hides alerts).
	doc := h.browser(lang)
	h.clock.Advance(30 * time.Second)
	d := doc.signIn("lina", staffPassword)
	if p := doc.post(release, d, url.Values{"reason": {"x"}}); p.status != 403 {
		t.Errorf("doctor's release: %d", p.status)
	}
}

// TestIncidentFlow reports an incident in the console and takes it through
// grade confirmation, a progress update, evidence, the 5W1H analysis, a
// corrective action and closure; the deadlines count down and then show
// how long they are overdue.
func TestIncidentFlow(t *testing.T) {
	h, _ := securityHospital(t)
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)
	form := b.get("/incidents/new")
	if p := b.post("/incidents", form, url.Values{"title": {""}}); p.status != 422 || !strings.Contains(p.body, "请填写事件标题") {
		t.Fatalf("empty report: %d", p.status)
	}
	rep := b.post("/incidents", form, url.Values{"title": {"心内科工作站病历查询异常"}, "description": {"上午 9 点起心内科无法打开病历。"},
		"departments_affected": {"1"}, "departments_total": {"20"}})
	if rep.status != 200 || !strings.HasPrefix(rep.url.Path, "/incidents/") || !strings.Contains(rep.body, "安全事件已登记") {
		t.Fatalf("report: %d %s %s", rep.status, rep.url, rep.body)
	}
	id := strings.TrimPrefix(rep.url.Path, "/incidents/")
	for _, w := range []string{"2 级", "单个科室受影响", "等级待确认", "30 分钟内确认等级", "剩余 30 分钟", "48 小时内提交分析报告", "剩余 2 天 0 小时"} {
		if !strings.Contains(rep.body, w) {
			t.Errorf("incident page lacks %q", w)
		}
	}
	// Time passes (in steps shorter than the idle timeout): the grade
	// confirmation is overdue, in words, on the list and the page.
	for range 3 {
		h.clock.Advance(14 * time.Minute)
		b.get("/incidents")
	}
	list := b.get("/incidents")
	if !strings.Contains(list.body, "已超期 27 分钟") || !strings.Contains(list.body, "15 分钟内召开应急会议") ||
		!strings.Contains(list.body, "心内科工作站病历查询异常") {
		t.Fatalf("list: %s", list.body)
	}
	b.lang = "en"
	if p := b.get("/incidents/" + id); !strings.Contains(p.body, "overdue by 12 min") || !strings.Contains(p.body, "Grade 2") {
		t.Errorf("English page: %s", p.body)
	}
	b.lang = "zh-CN"
	page := b.get("/incidents/" + id)
	// Closing asks for confirmation first; closing before the grade is
	// confirmed is then refused with the reason.
	confirm := b.post("/incidents/"+id+"/close", page, nil)
	if confirm.status != 200 || !strings.Contains(confirm.body, `id="close-confirm-form"`) || !strings.Contains(confirm.body, "确认关闭事件") {
		t.Fatalf("close without confirmation: %d %s", confirm.status, confirm.body)
	}
	if p := b.post("/incidents/"+id+"/close", confirm, url.Values{"confirm": {"1"}}); p.status != 422 || !strings.Contains(p.body, "请先确认事件等级") {
		t.Fatalf("early close: %d", p.status)
	}
	steps := []struct {
		path  string
		form  url.Values
		flash string
	}{
		{"/grade", url.Values{"grade": {"2"}, "criterion": {"department_affected"}}, "事件等级已确认"},
		{"/updates", url.Values{"kind": {"progress"}, "text": {"已切换备用数据库，正在恢复。"}}, "进展已记录"},
		{"/evidence", url.Values{"indexes": {"1，2, 3"}}, "证据已附加并固定"},
	}
	for _, s := range steps {
		p := b.post("/incidents/"+id+s.path, page, s.form)
		if p.status != 200 || !strings.Contains(p.body, s.flash) {
			t.Fatalf("%s: %d %s", s.path, p.status, p.body)
		}
		page = p
	}
	if strings.Count(page.body, "证明有效（树大小") != 3 || strings.Count(page.body, "检查点签名有效") != 3 {
		t.Errorf("evidence not shown verified: %s", between(page.body, `id="evidence"`, `</section>`))
	}
	if p := b.post("/incidents/"+id+"/close", page, url.Values{"confirm": {"1"}}); p.status != 422 || !strings.Contains(p.body, "原因分析（5W1H）") {
		t.Fatalf("close without analysis: %d", p.status)
	}
	page = b.post("/incidents/"+id+"/analysis", page, url.Values{"what": {"病历查询失败"}, "when": {"3 月 2 日 9:00–11:00"},
		"where": {"心内科"}, "who": {"信息科值班"}, "why": {"数据库连接池耗尽"}, "how": {"批量报表占满连接"}})
	if page.status != 200 || !strings.Contains(page.body, "原因分析（5W1H）已保存") || !strings.Contains(page.body, "数据库连接池耗尽") {
		t.Fatalf("analysis: %d", page.status)
	}
	page = b.post("/incidents/"+id+"/actions", page, url.Values{"description": {"报表改到只读副本"}, "owner": {"CARD"},
		"due_at": {"2026-03-09T18:00"}})
	if page.status != 200 || !strings.Contains(page.body, "整改措施已添加") || !strings.Contains(page.body, "报表改到只读副本") {
		t.Fatalf("action: %d %s", page.status, page.body)
	}
	actionID := between(page.body, `/actions/`, `/state"`)
	page = b.post("/incidents/"+id+"/actions/"+actionID+"/state", page, url.Values{"state": {"done"}})
	if page.status != 200 || !strings.Contains(page.body, "整改措施状态已更新") {
		t.Fatalf("action state: %d", page.status)
	}
	// Who marked it done does not verify it: the security administrator
	// does, a second person.
	if p := b.post("/incidents/"+id+"/actions/"+actionID+"/state", page, url.Values{"state": {"verified"}}); p.status != 403 ||
		!strings.Contains(p.body, "deny.own_step") {
		t.Fatalf("own verification: %d", p.status)
	}
	h.api(200, "PATCH", "/api/v1/incidents/"+id+"/actions/"+actionID, h.enrolAPIWith("security", securityPassword),
		map[string]string{"state": "verified"})
	page = b.get("/incidents/" + id)
	if !strings.Contains(page.body, "周强 标记完成") {
		t.Errorf("the action does not say who marked it done: %s", between(page.body, `id="actions"`, `</section>`))
	}
	closed := b.post("/incidents/"+id+"/close", page, url.Values{"summary": {"已恢复并完成整改。"}, "confirm": {"1"}})
	if closed.status != 200 || !strings.Contains(closed.body, "事件已关闭") || strings.Contains(closed.body, `id="close-form"`) {
		t.Fatalf("close: %d", closed.status)
	}
	for _, w := range []string{"登记", "确认等级", "进展更新", "附加证据", "原因分析", "新增整改措施", "关闭"} {
		if !strings.Contains(between(closed.body, `id="timeline"`, `</section>`), w) {
			t.Errorf("timeline lacks %q", w)
		}
	}
	if p := b.get("/incidents?status=closed"); !strings.Contains(p.body, "/incidents/"+id) {
		t.Errorf("not in the closed list")
	}
	// An auditor reads it but has no forms.
	a := h.browser("zh-CN")
	a.signIn("sunli", staffPassword)
	if p := a.get("/incidents/" + id); p.status != 200 || strings.Contains(p.body, `method="post" action="/incidents/`) {
		t.Errorf("auditor's view: %d", p.status)
	}
}

// TestIncidentClocksInWords reports a grade-1 data leak in the console:
// every one of its deadlines (emergency meeting, the health authority told
// at once, the emergency plan, the 24-hour report, the leak's cause, the
// grade confirmation and progress) is shown in words in both languages,
// never as its code; the update form offers each step in words, and the
// meeting held shows its deadline met.
func TestIncidentClocksInWords(t *testing.T) {
	h, _ := securityHospital(t)
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)
	form := b.get("/incidents/new")
	rep := b.post("/incidents", form, url.Values{"title": {"病案数据疑似外泄"}, "description": {"发现病案首页数据在外部网站出现。"},
		"core_data_leaked": {"1"}})
	if rep.status != 200 || !strings.HasPrefix(rep.url.Path, "/incidents/") {
		t.Fatalf("report: %d %s", rep.status, rep.url)
	}
	id := strings.TrimPrefix(rep.url.Path, "/incidents/")
	words := map[string][]string{
		"zh-CN": {"30 分钟内确认等级", "15 分钟内召开应急会议", "立即报告卫健委（1 小时内）", "1 小时内启动应急预案",
			"24 小时内上报卫健委", "48 小时内查明数据泄露原因", "每 2 小时更新进展", "剩余 15 分钟"},
		"en": {"Grade confirmed within 30 min", "Emergency meeting within 15 min", "Health authority told at once (within 1 h)",
			"Emergency plan started within 1 h", "Reported to the health authority within 24 h",
			"Cause of the data leak analysed within 48 h", "Progress update every 2 h", "15 min left"},
	}
	steps := map[string][]string{
		"zh-CN": {"已召开应急会议", "已启动应急预案", "已初报卫健委", "风险已隔离", "已查明泄露原因"},
		"en":    {"Emergency meeting held", "Emergency plan started", "Health authority told (first notice)", "Risk isolated", "Cause of the leak analysed"},
	}
	for _, lang := range []string{"zh-CN", "en"} {
		b.lang = lang
		page := b.get("/incidents/" + id)
		table := between(page.body, `id="deadlines"`, `</table>`)
		for _, w := range words[lang] {
			if !strings.Contains(table, w) {
				t.Errorf("%s: the deadlines lack %q", lang, w)
			}
		}
		for _, code := range incidents.DeadlineNames {
			if strings.Contains(table, code) {
				t.Errorf("%s: the deadlines show the code %q", lang, code)
			}
		}
		kinds := between(page.body, `id="u-kind"`, `</select>`)
		for _, w := range steps[lang] {
			if !strings.Contains(kinds, w) {
				t.Errorf("%s: the update form lacks %q", lang, w)
			}
		}
	}
	b.lang = "zh-CN"
	page := b.get("/incidents/" + id)
	h.clock.Advance(10 * time.Minute)
	page = b.post("/incidents/"+id+"/updates", page, url.Values{"kind": {"meeting_held"}, "text": {"院领导、信息科、医务处召开应急会议"}})
	if page.status != 200 || !strings.Contains(between(page.body, `id="timeline"`, `</section>`), "已召开应急会议") {
		t.Fatalf("meeting: %d", page.status)
	}
	row := between(page.body, "15 分钟内召开应急会议", `</tr>`)
	if !strings.Contains(row, "已完成") || strings.Contains(row, "countdown") {
		t.Errorf("the meeting's deadline is not shown met: %s", row)
	}
}

// TestAccountabilityFlow opens a case in the console against a doctor; the
// doctor answers it; an auditor decides; the doctor appeals; another
// auditor, who did not investigate, reviews the appeal.
func TestAccountabilityFlow(t *testing.T) {
	h, _ := securityHospital(t)
	aud := h.browser("zh-CN")
	aud.signIn("sunli", staffPassword)
	cands := aud.get("/accountability/candidates")
	if p := aud.post("/accountability", cands, url.Values{"subject": {"nobody"}, "criterion": {"procedure_not_followed"},
		"summary": {"x"}}); p.status != 422 || !strings.Contains(p.body, "找不到该当事人") {
		t.Fatalf("unknown subject: %d", p.status)
	}
	opened := aud.post("/accountability", cands, url.Values{"subject": {"lina"}, "criterion": {"procedure_not_followed"},
		"summary": {"未按流程办理病历借阅"}, "evidence": {"2"}})
	if opened.status != 200 || !strings.Contains(opened.body, "追责案件已立案") || !strings.Contains(opened.body, "李娜（神经内科）的追责案件") ||
		!strings.Contains(opened.body, "72 小时内查明事实") {
		t.Fatalf("open: %d %s", opened.status, opened.body)
	}
	id := strings.TrimPrefix(opened.url.Path, "/accountability/")
	p := aud.post("/accountability/"+id+"/findings", opened, url.Values{"text": {"借阅登记缺失"}})
	if p.status != 200 || !strings.Contains(p.body, "调查发现已记录") {
		t.Fatalf("finding: %d", p.status)
	}

	// The person concerned reads the case and makes a statement.
	lina := h.browser("en")
	lina.signIn("lina", staffPassword)
	mine := lina.get("/accountability/" + id)
	if mine.status != 200 || !strings.Contains(mine.body, `id="statement-form"`) || strings.Contains(mine.body, `id="decision-form"`) {
		t.Fatalf("subject's view: %d %s", mine.status, mine.body)
	}
	if p := lina.get("/accountability"); p.status != 403 {
		t.Errorf("the subject lists cases: %d", p.status)
	}
	if p := lina.post("/accountability/"+id+"/statement", mine, url.Values{"text": {"当时急诊，事后已补登记。"}}); p.status != 200 ||
		!strings.Contains(p.body, "Your statement has been submitted") {
		t.Fatalf("statement: %d", p.status)
	}
	// Another doctor may not read it.
	other := h.browser("zh-CN")
	other.signIn("zhangwei", staffPassword)
	if p := other.get("/accountability/" + id); p.status != 403 || strings.Contains(p.body, "当时急诊") {
		t.Errorf("another doctor: %d", p.status)
	}

	page := aud.get("/accountability/" + id)
	p = aud.post("/accountability/"+id+"/decision", page, url.Values{"outcome": {"upheld"}, "grade": {"3"}, "text": {"违规成立，予以通报。"}})
	if p.status != 200 || !strings.Contains(p.body, "处理决定已作出") || !strings.Contains(p.body, "维持（违规成立）") {
		t.Fatalf("decision: %d %s", p.status, p.body)
	}
	// The handling opinion: proposed, due in working days, given.
	if !strings.Contains(p.body, `id="opinion-form"`) || !strings.Contains(p.body, "系统建议：3 级，警告并重新培训") ||
		!strings.Contains(p.body, "立案后 5 个工作日") {
		t.Fatalf("opinion: %s", between(p.body, `id="opinion"`, `</section>`))
	}
	if mine = lina.get("/accountability/" + id); strings.Contains(mine.body, `id="appeal-form"`) || strings.Contains(mine.body, `id="opinion-form"`) {
		t.Fatalf("the subject may appeal before the opinion")
	}
	if q := aud.post("/accountability/"+id+"/opinion", p, url.Values{"sanction": {"fine"}, "text": {"罚款"}}); q.status != 422 ||
		!strings.Contains(q.body, "请从列表中选择处理措施") {
		t.Fatalf("bad sanction: %d", q.status)
	}
	p = aud.post("/accountability/"+id+"/opinion", p, url.Values{"sanction": {"warning_retraining"}, "text": {"予以警告，重新参加隐私保护培训。"}})
	if p.status != 200 || !strings.Contains(p.body, "处理意见已出具") || !strings.Contains(between(p.body, `id="case-sanction"`, `</strong>`), "警告并重新培训") {
		t.Fatalf("opinion given: %d %s", p.status, between(p.body, `id="opinion"`, `</section>`))
	}
	if l := aud.get("/accountability?status=all"); !strings.Contains(l.body, "警告并重新培训") {
		t.Errorf("the list lacks the sanction")
	}
	mine = lina.get("/accountability/" + id)
	if !strings.Contains(mine.body, `id="appeal-form"`) {
		t.Fatalf("no appeal form for the subject")
	}
	if p := lina.post("/accountability/"+id+"/appeal", mine, url.Values{"text": {"请求复核：有急诊记录为证。"}}); p.status != 200 {
		t.Fatalf("appeal: %d", p.status)
	}
	// The investigator may not review; another auditor does.
	page = aud.get("/accountability/" + id)
	if p := aud.post("/accountability/"+id+"/review", page, url.Values{"outcome": {"upheld"}, "text": {"维持"}}); p.status != 403 ||
		!strings.Contains(p.body, "deny.own_investigation") {
		t.Errorf("investigator's review: %d", p.status)
	}
	rev := h.browser("zh-CN")
	rev.signIn("zhaolei", staffPassword)
	rp := rev.get("/accountability/" + id)
	p = rev.post("/accountability/"+id+"/review", rp, url.Values{"outcome": {"overturned"}, "text": {"急诊记录属实，撤销原决定。"}})
	if p.status != 200 || !strings.Contains(p.body, "申诉复核结论已记录") || !strings.Contains(p.body, "撤销原决定") || !strings.Contains(p.body, "复核完毕") {
		t.Fatalf("review: %d %s", p.status, p.body)
	}
}

// TestAdministrationFlow creates a department and users in the console: a
// privileged role goes to the four-eyes inbox instead of being granted.
func TestAdministrationFlow(t *testing.T) {
	h := newHospital(t)
	b := h.browser("zh-CN")
	b.signIn("admin", adminPassword)
	depts := b.get("/admin/departments")
	if p := b.post("/admin/departments", depts, url.Values{"code": {"CARD"}, "name": {"心内科"}}); p.status != 422 ||
		!strings.Contains(p.body, "该科室代码已存在") {
		t.Fatalf("duplicate department: %d", p.status)
	}
	if p := b.post("/admin/departments", depts, url.Values{"code": {"ORTH"}, "name": {"骨科"}}); p.status != 200 ||
		!strings.Contains(p.body, "科室已创建") || !strings.Contains(p.body, "骨科") {
		t.Fatalf("department: %d", p.status)
	}
	users := b.get("/admin/users")
	if p := b.post("/admin/users", users, url.Values{"username": {"zhangwei"}, "display_name": {"张伟"}, "roles": {"doctor"},
		"password": {staffPassword}, "reason": {"新入职"}}); p.status != 422 || !strings.Contains(p.body, "该用户名已被使用") {
		t.Fatalf("duplicate user: %d", p.status)
	}
	// A role that needs a second person needs a reason for them.
	if p := b.post("/admin/users", users, url.Values{"username": {"chenjing"}, "display_name": {"陈静"}, "department": {"ORTH"},
		"roles": {"doctor"}, "password": {staffPassword}}); p.status != 422 || !strings.Contains(p.body, "请填写申请理由") {
		t.Fatalf("no reason: %d", p.status)
	}
	p := b.post("/admin/users", users, url.Values{"username": {"chenjing"}, "display_name": {"陈静"}, "department": {"ORTH"},
		"roles": {"doctor", "auditor"}, "password": {staffPassword}, "reason": {"骨科新入职医生，兼任质控"}})
	// The new user's page: both roles wait for a second person, in words.
	if p.status != 200 || !strings.Contains(p.body, "已提交双人审批") || !strings.Contains(p.body, `id="user-pending"`) ||
		!strings.Contains(p.body, "授予 陈静（骨科）“医生”角色") || !strings.Contains(p.body, "骨科新入职医生，兼任质控") {
		t.Fatalf("create: %d %s", p.status, p.body)
	}
	if held := between(p.body, `id="user-facts"`, `</dl>`); strings.Contains(held, "医生") || strings.Contains(held, "质控审计员") {
		t.Errorf("chenjing's roles: %s", held)
	}
	var pending []any
	for _, a := range h.api(200, "GET", "/api/v1/approvals?status=pending", h.admin, nil)["items"].([]any) {
		if strings.Contains(fmt.Sprint(a), "auditor") || strings.Contains(fmt.Sprint(a), "doctor") {
			pending = append(pending, a)
		}
	}
	if len(pending) != 2 {
		t.Fatalf("%d four-eyes requests for the roles, want 2", len(pending))
	}
	// The list shows the roles waiting; deactivation asks first.
	list := b.get("/admin/users")
	row := between(list.body, `id="user-chenjing"`, `</tr>`)
	if !strings.Contains(row, "待审批") {
		t.Errorf("chenjing's row: %s", row)
	}
	if strings.Contains(between(list.body, `id="user-admin"`, `</tr>`), "/deactivate") {
		t.Error("the administrator is offered to deactivate themselves")
	}
	id := between(row, `href="/admin/users/`, `/deactivate"`)
	confirm := b.get("/admin/users/" + id + "/deactivate")
	if confirm.status != 200 || !strings.Contains(confirm.body, "确认停用 陈静（骨科）") {
		t.Fatalf("confirmation: %d", confirm.status)
	}
	p = b.post("/admin/users/"+id+"/deactivate", confirm, nil)
	if p.status != 200 || !strings.Contains(p.body, "用户已停用") || !strings.Contains(between(p.body, `id="user-chenjing"`, `</tr>`), "已停用") {
		t.Fatalf("deactivate: %d", p.status)
	}
}
