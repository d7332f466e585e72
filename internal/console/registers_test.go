package console_test

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// registersHospital is the console's hospital with the security office's
// registers' people: an IT engineer (吴燕), a leader (郑国华) and an auditor
// (孙丽), besides the security officer (周强) and the doctors.
func registersHospital(t *testing.T) *hospital {
	t.Helper()
	h := newHospital(t)
	for _, u := range []struct{ name, display, dept, role string }{
		{"wuyan", "吴燕", "", "it_engineer"}, {"zhengguohua", "郑国华", "", "leadership"}, {"sunli", "孙丽", "", "auditor"},
	} {
		out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": u.name, "display_name": u.display,
			"department": u.dept, "roles": []string{u.role}, "password": staffPassword})
		h.users[u.name] = out["id"].(string)
		for _, p := range out["pending_approvals"].([]any) {
			h.api(200, "POST", "/api/v1/approvals/"+p.(map[string]any)["id"].(string)+"/approve", h.security,
				map[string]string{"note": "同意任命"})
		}
	}
	return h
}

// chineseOnly reports what a Chinese page shows that is not Chinese: the
// crawl's patterns (crawl_test.go), for the pages of one test.
func chineseOnly(t *testing.T, path, body string) {
	t.Helper()
	text := allowedWords.ReplaceAllString(visibleText(body), " ")
	for _, r := range rawIdentifier {
		if m := r.pattern.FindAllString(text, 5); len(m) > 0 {
			t.Errorf("%s shows %s: %q", path, r.what, m)
		}
	}
}

// TestRiskRegisterPages: the security officer records a risk in the
// console, sees it in the grid and on the heat map, exports the grid; a
// high risk treated by acceptance waits for the leader, who accepts it on
// its page; the auditor reads without forms; a doctor is refused; every
// page speaks Chinese.
func TestRiskRegisterPages(t *testing.T) {
	h := registersHospital(t)
	officer := h.browser("zh-CN")
	officer.signIn("zhouqiang", staffPassword)
	list := officer.get("/risks")
	if list.status != 200 || !strings.Contains(list.body, `id="heatmap"`) || !strings.Contains(list.body, `id="risk-form"`) ||
		!strings.Contains(list.body, `id="risks-empty"`) {
		t.Fatalf("/risks: %d %s", list.status, list.body)
	}
	p := officer.post("/risks", list, url.Values{"title": {"移动护理终端丢失"}, "asset_name": {"移动护理终端（心内科）"},
		"threat": {"设备遗失或被盗"}, "vulnerability": {"终端未启用远程擦除"}, "likelihood": {"4"}, "impact": {"4"},
		"treatment": {"accept"}, "treatment_plan": {"终端已全盘加密，残余风险由领导小组决定是否接受"}, "owner": {"wuyan"}})
	if p.status != 200 || !strings.HasPrefix(p.url.Path, "/risks/") || !strings.Contains(p.body, "风险已登记。") ||
		!strings.Contains(p.body, "待领导批准") || !strings.Contains(p.body, "4×4=16") || strings.Contains(p.body, `id="acceptance-form"`) {
		t.Fatalf("recorded: %d %s %s", p.status, p.url, p.body)
	}
	riskPath := p.url.Path
	chineseOnly(t, riskPath, p.body)
	// Bad input is refused with the field, and records nothing.
	bad := officer.post("/risks", list, url.Values{"title": {"x"}, "threat": {"x"}, "vulnerability": {"x"}, "likelihood": {"7"},
		"impact": {"1"}, "treatment": {"reduce"}, "treatment_plan": {"x"}, "owner": {"wuyan"}})
	if bad.status != 422 {
		t.Fatalf("likelihood 7: %d", bad.status)
	}
	list = officer.get("/risks")
	grid := between(list.body, `id="risks"`, `</table>`)
	if !strings.Contains(grid, "移动护理终端丢失") || !strings.Contains(grid, "吴燕") || !strings.Contains(grid, "高") ||
		!strings.Contains(between(list.body, `id="heat-4-4"`, `</td>`), ">1<") {
		t.Fatalf("the grid and heat map: %s", list.body)
	}
	chineseOnly(t, "/risks", list.body)
	csv := officer.get("/risks?format=csv")
	if csv.status != 200 || !strings.Contains(csv.body, "移动护理终端丢失") || !strings.Contains(csv.body, "可能性×影响") {
		t.Fatalf("CSV: %d %s", csv.status, csv.body)
	}
	hm := officer.get("/risks/heatmap")
	if hm.status != 200 || !strings.Contains(hm.body, "10–16 分") || !strings.Contains(between(hm.body, `id="heat-4-4"`, `</td>`), `href="/risks?likelihood=4&amp;impact=4&amp;status=open"`) {
		t.Fatalf("/risks/heatmap: %d %s", hm.status, hm.body)
	}
	chineseOnly(t, "/risks/heatmap", hm.body)
	if cell := officer.get("/risks?likelihood=4&impact=4&status=open"); !strings.Contains(cell.body, "移动护理终端丢失") {
		t.Fatalf("the cell's risks: %s", cell.body)
	}

	// The leader accepts it on its page; the officer could not have.
	h.clock.Advance(time.Minute)
	leader := h.browser("zh-CN")
	dash := leader.signIn("zhengguohua", staffPassword)
	if !strings.Contains(dash.body, `id="tile-risks"`) || !strings.Contains(dash.body, `id="tile-risks-pending"`) ||
		!strings.Contains(dash.body, `id="tile-drills"`) {
		t.Fatalf("the leader's dashboard: %s", dash.body)
	}
	page := leader.get(riskPath)
	if !strings.Contains(page.body, `id="acceptance-form"`) || strings.Contains(page.body, `id="review-form"`) {
		t.Fatalf("the leader's risk page: %s", page.body)
	}
	done := leader.post(riskPath+"/acceptance", page, url.Values{"decision": {"accept"}, "note": {"终端已加密，同意接受残余风险"}})
	if done.status != 200 || !strings.Contains(done.body, "已批准接受该风险。") || !strings.Contains(done.body, "领导已批准接受") ||
		!strings.Contains(between(done.body, `id="risk-history"`, `</table>`), "同意接受残余风险") {
		t.Fatalf("accepted: %d %s", done.status, done.body)
	}

	// The auditor reads, without forms; a doctor is refused.
	auditor := h.browser("en")
	auditor.signIn("sunli", staffPassword)
	if a := auditor.get(riskPath); a.status != 200 || strings.Contains(a.body, "<form method=\"post\" action=\"/risks/") ||
		!strings.Contains(a.body, "Accepted by the leadership") {
		t.Fatalf("the auditor's page: %d %s", a.status, a.body)
	}
	doctor := h.browser("zh-CN")
	doctor.signIn("zhangwei", staffPassword)
	if d := doctor.get("/risks"); d.status != 403 {
		t.Fatalf("a doctor on /risks: %d", d.status)
	}

	// A new system's checklist needs a completed assessment.
	ap := officer.get("/risk-assessments")
	a := officer.post("/risk-assessments", ap, url.Values{"title": {"移动护理系统上线前评估"}, "system": {"移动护理系统"}})
	if a.status != 200 || !strings.Contains(a.body, "风险评估已发起。") {
		t.Fatalf("assessment: %d %s", a.status, a.body)
	}
	intro := officer.post("/system-introductions", ap, url.Values{"system": {"移动护理系统"},
		"planned_at": {h.clock.Now().Add(30 * 24 * time.Hour).Format("2006-01-02")}})
	if intro.status != 200 || !strings.Contains(intro.body, "尚无已完成的风险评估") || !strings.Contains(intro.body, "已完成 0/7") {
		t.Fatalf("introduction: %d %s", intro.status, intro.body)
	}
	chineseOnly(t, intro.url.Path, intro.body)
	if ap = officer.get("/risk-assessments"); !strings.Contains(ap.body, "移动护理系统上线前评估") || !strings.Contains(ap.body, "检查中") {
		t.Fatalf("assessments page: %s", ap.body)
	}
	chineseOnly(t, "/risk-assessments", ap.body)
}

// beijing is the console's time zone (trail.DefaultZone).
var beijing = time.FixedZone("CST", 8*60*60)

var idInPath = regexp.MustCompile(`/(?:plans|drills)/([0-9a-z]{26})`)

// TestPlanAndDrillPages takes a plan through the workflow in the console
// — written by the officer, reviewed by the engineer, published by the
// leader, each seeing only their own step's form — then records a drill
// with a late step and a gap through the drill form, and reads it back.
func TestPlanAndDrillPages(t *testing.T) {
	h := registersHospital(t)
	officer := h.browser("zh-CN")
	officer.signIn("zhouqiang", staffPassword)
	pl := officer.get("/plans")
	if pl.status != 200 || !strings.Contains(pl.body, `id="plan-form"`) {
		t.Fatalf("/plans: %d %s", pl.status, pl.body)
	}
	p := officer.post("/plans", pl, url.Values{"type": {"technical_failure"}, "title": {"电子病历系统宕机应急预案"},
		"scenario":   {"电子病历数据库服务器故障，临床科室无法书写和调阅病历。"},
		"responders": {"总指挥｜郑国华｜决定启动预案\n技术处置组｜吴燕｜恢复服务"},
		"steps":      {"发现与报告｜技术处置组｜15｜值班工程师确认故障并报告\n恢复服务｜技术处置组｜120｜切换备用服务器"}})
	if p.status != 200 || !strings.Contains(p.body, "预案草稿已保存。") || !strings.Contains(p.body, `id="submit-form"`) {
		t.Fatalf("written: %d %s", p.status, p.body)
	}
	planPath := idInPath.FindString(p.url.Path)
	version := planPath + "/versions/1"
	p = officer.post(version+"/submit", p, url.Values{"note": {"请评审"}})
	if !strings.Contains(p.body, "已提交专家评审。") || strings.Contains(p.body, `id="review-form"`) {
		t.Fatalf("submitted: %s", p.body)
	}
	// The author may not review (the page offers the form: the policy refuses).
	p2 := officer.post(version+"/review", p, url.Values{"decision": {"approve"}, "note": {"自审"}})
	if p2.status != 403 || !strings.Contains(p2.body, "职责分离") {
		t.Fatalf("the author's review: %d %s", p2.status, p2.body)
	}
	h.clock.Advance(time.Minute)
	engineer := h.browser("zh-CN")
	engineer.signIn("wuyan", staffPassword)
	e := engineer.get(planPath)
	if !strings.Contains(e.body, `id="review-form"`) || strings.Contains(e.body, `id="approve-form"`) {
		t.Fatalf("the engineer's plan page: %s", e.body)
	}
	e = engineer.post(version+"/review", e, url.Values{"decision": {"approve"}, "note": {"流程完整"}})
	if !strings.Contains(e.body, "专家评审通过，等待领导审批。") {
		t.Fatalf("reviewed: %s", e.body)
	}
	h.clock.Advance(time.Minute)
	leader := h.browser("zh-CN")
	leader.signIn("zhengguohua", staffPassword)
	l := leader.get(planPath)
	if !strings.Contains(l.body, `id="approve-form"`) {
		t.Fatalf("the leader's plan page: %s", l.body)
	}
	l = leader.post(version+"/approve", l, url.Values{"decision": {"approve"}, "note": {"同意发布"}})
	if !strings.Contains(l.body, "预案已发布实施。") || !strings.Contains(between(l.body, `id="plan-in-force"`, `</dd>`), "第 1 版") {
		t.Fatalf("published: %s", l.body)
	}
	chineseOnly(t, planPath, l.body)

	// The drills: the cadence has started; a drill is recorded.
	d := officer.get("/drills")
	if d.status != 200 || !strings.Contains(d.body, "本期待演练") || !strings.Contains(d.body, `id="pick-plan"`) {
		t.Fatalf("/drills: %d %s", d.status, d.body)
	}
	chineseOnly(t, "/drills", d.body)
	form := officer.get("/drills/new?plan=" + strings.TrimPrefix(planPath, "/plans/"))
	if form.status != 200 || !strings.Contains(form.body, `id="step-2-took"`) {
		t.Fatalf("the drill form: %d %s", form.status, form.body)
	}
	chineseOnly(t, "/drills/new", form.body)
	h.clock.Advance(10 * time.Minute) // held after the plan was published
	rec := officer.post("/drills", form, url.Values{"plan_id": {strings.TrimPrefix(planPath, "/plans/")}, "plan_version": {"1"}, "steps": {"2"},
		"kind": {"tabletop"}, "held_at": {h.clock.Now().Add(-5 * time.Minute).In(beijing).Format("2006-01-02T15:04")}, "departments": {"CARD", "NEUR"},
		"participants": {"吴燕｜心内科｜技术处置组\n李娜｜神经内科"}, "step_1_took": {"10"}, "step_2_took": {"150"}, "step_2_department": {"CARD"},
		"gap_0_department": {"CARD"}, "gap_0_severity": {"major"}, "gap_0_description": {"夜班护士不知道纸质病历存放位置"},
		"improvement_0_action": {"每月组织纸质病历流程培训"}, "improvement_0_owner": {"zhangwei"}, "improvement_0_department": {"CARD"},
		"improvement_0_due": {h.clock.Now().Add(14 * 24 * time.Hour).Format("2006-01-02")}})
	if rec.status != 200 || !strings.Contains(rec.body, "演练已登记。") || !strings.Contains(rec.body, "夜班护士不知道纸质病历存放位置") ||
		!strings.Contains(between(rec.body, `id="drill-departments"`, `</dd>`), "心内科 · 不合格") ||
		!strings.Contains(between(rec.body, `id="drill-departments"`, `</dd>`), "神经内科 · 合格") ||
		!strings.Contains(rec.body, "超时或未完成") || !strings.Contains(rec.body, "每月组织纸质病历流程培训") {
		t.Fatalf("recorded: %d %s", rec.status, rec.body)
	}
	chineseOnly(t, rec.url.Path, rec.body)
	d = officer.get("/drills")
	if !strings.Contains(between(d.body, `id="drills"`, `</table>`), "电子病历系统宕机应急预案") || !strings.Contains(d.body, "本期已演练") {
		t.Fatalf("/drills after recording: %s", d.body)
	}
	// The improvement item is closed on the drill's page.
	im := regexp.MustCompile(`action="(/drills/[0-9a-z]+/improvements/[0-9a-z]+/done)"`).FindStringSubmatch(rec.body)
	if im == nil {
		t.Fatalf("no improvement form: %s", rec.body)
	}
	closed := officer.post(im[1], rec, url.Values{"note": {"已培训"}})
	if !strings.Contains(closed.body, "整改项已完成。") {
		t.Fatalf("closed: %s", closed.body)
	}
	// In English too.
	en := h.browser("en")
	en.signIn("sunli", staffPassword)
	if page := en.get(rec.url.Path); !strings.Contains(page.body, "Major") || !strings.Contains(page.body, fmt.Sprint("Late or not done")) {
		t.Fatalf("the drill in English: %s", page.body)
	}
}
