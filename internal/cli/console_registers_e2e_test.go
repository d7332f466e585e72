package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The security office's registers (issue 13) in headless Chromium, over
// HTTPS against the real server, in Chinese: a security officer opens the
// risk register and finds the heat map with the recorded risk in its cell,
// then records a tabletop drill of the published plan on the drill form —
// a step late, a major gap in cardiology, an improvement item — and reads
// it back: cardiology failed, the gap and the item listed; the drills page
// shows it under the quarter's cadence.
func TestConsoleRegistersJourney(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"ITD", "信息科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	for _, u := range [][4]string{{"zhouqiang", "周强", "ITD", "security_officer"}, {"wuyan", "吴燕", "ITD", "it_engineer"},
		{"zhengguohua", "郑国华", "", "leadership"}, {"zhangwei", "张建国", "CARD", "doctor"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	officer := s.token("zhouqiang", staffPassword)
	s.json(201, "POST", "/api/v1/risks", officer, map[string]any{"title": "电子病历数据库单点故障", "asset_name": "电子病历数据库服务器",
		"threat": "硬件故障", "vulnerability": "无热备节点", "likelihood": 3, "impact": 5, "treatment": "reduce",
		"treatment_plan": "建设双机热备", "owner": "wuyan"})
	p := s.json(201, "POST", "/api/v1/plans", officer, map[string]any{"type": "technical_failure", "title": "电子病历系统宕机应急预案",
		"scenario":   "电子病历数据库服务器故障，临床科室无法书写和调阅病历。",
		"responders": []map[string]string{{"role": "总指挥", "duty": "决定启动预案"}, {"role": "技术处置组", "duty": "恢复服务"}},
		"steps": []map[string]any{{"title": "发现与报告", "action": "确认故障并报告", "role": "技术处置组", "limit_minutes": 15},
			{"title": "恢复服务", "action": "切换至备用服务器", "role": "技术处置组", "limit_minutes": 120}}})
	pid := p["id"].(string)
	v1 := "/api/v1/plans/" + pid + "/versions/1"
	s.json(200, "POST", v1+"/submit", officer, map[string]string{})
	s.json(200, "POST", v1+"/review", s.token("wuyan", staffPassword), map[string]any{"approve": true, "note": "同意报批"})
	s.json(200, "POST", v1+"/approve", s.token("zhengguohua", staffPassword), map[string]any{"approve": true, "note": "同意发布"})

	b := openBrowser(t, s, chromium, "zh-CN", 1600, 4*time.Minute)
	b.signIn("zhouqiang", staffPassword)
	b.run("the risk register", chromedp.Navigate(s.base+"/risks"), chromedp.WaitVisible(chromedp.ID("heatmap")))
	if cell := strings.TrimSpace(b.get("the heat map's cell", chromedp.Text(chromedp.ID("heat-3-5")))); cell != "1" {
		t.Errorf("the heat map's cell 3×5: %q", cell)
	}
	if caption := b.get("the heat map", chromedp.Text(chromedp.ID("heatmap"))); !strings.Contains(caption, "开放风险共 1 项") ||
		!strings.Contains(caption, "5 灾难性") {
		t.Errorf("the heat map: %q", caption)
	}
	if row := b.get("the grid", chromedp.Text(chromedp.ID("risks"))); !strings.Contains(row, "电子病历数据库单点故障") || !strings.Contains(row, "3×5=15") {
		t.Errorf("the register's grid: %q", row)
	}

	// A drill recorded with its gaps.
	// Held after the plan was published: the form takes minutes, so the
	// minute after now (the server allows a minute ahead).
	held := time.Now().Add(time.Minute).Truncate(time.Minute).In(time.FixedZone("CST", 8*60*60)).Format("2006-01-02T15:04")
	due := time.Now().Add(14 * 24 * time.Hour).In(time.FixedZone("CST", 8*60*60)).Format("2006-01-02")
	b.run("the drill form",
		chromedp.Navigate(s.base+"/drills"),
		chromedp.WaitVisible(chromedp.ID("pick-plan")),
		chromedp.Click(chromedp.ID("start-record")),
		chromedp.WaitVisible(chromedp.ID("drill-form")),
		chromedp.SetValue(chromedp.ID("kind"), "tabletop"),
		chromedp.SetValue(chromedp.ID("held_at"), held),
		chromedp.Click(chromedp.ID("dept-ITD")),
		chromedp.Click(chromedp.ID("dept-CARD")),
		chromedp.SendKeys(chromedp.ID("participants"), "吴燕｜信息科｜技术处置组\n张建国｜心内科"),
		chromedp.SendKeys(chromedp.ID("step-1-took"), "10"),
		chromedp.SetValue(chromedp.ID("step-1-department"), "ITD"),
		chromedp.SendKeys(chromedp.ID("step-2-took"), "150"),
		chromedp.SetValue(chromedp.ID("step-2-department"), "CARD"),
		chromedp.SetValue(chromedp.ID("gap-0-department"), "CARD"),
		chromedp.SetValue(chromedp.ID("gap-0-severity"), "major"),
		chromedp.SendKeys(chromedp.ID("gap-0-description"), "夜班护士不知道纸质病历存放位置"),
		chromedp.SendKeys(chromedp.ID("improvement-0-action"), "每月组织纸质病历流程培训"),
		chromedp.SendKeys(chromedp.ID("improvement-0-owner"), "zhangwei"),
		chromedp.SetValue(chromedp.ID("improvement-0-department"), "CARD"),
		chromedp.SetValue(chromedp.ID("improvement-0-due"), due),
		chromedp.Click(chromedp.ID("record-drill")),
		chromedp.WaitVisible(chromedp.ID("drill-result")),
	)
	page := b.get("the drill", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"演练已登记。", "不合格", "夜班护士不知道纸质病历存放位置", "严重", "每月组织纸质病历流程培训", "超时或未完成"} {
		if !strings.Contains(page, want) {
			t.Errorf("the recorded drill lacks %q: %q", want, page)
		}
	}
	if depts := b.get("departments", chromedp.Text(chromedp.ID("drill-departments"))); !strings.Contains(depts, "心内科 · 不合格") ||
		!strings.Contains(depts, "信息科 · 合格") {
		t.Errorf("the departments' results: %q", depts)
	}
	b.run("the drills", chromedp.Navigate(s.base+"/drills"), chromedp.WaitVisible(chromedp.ID("cadence")))
	if c := b.get("the cadence", chromedp.Text(chromedp.ID("cadence-tabletop"))); !strings.Contains(c, "本期已演练") {
		t.Errorf("the tabletop cadence: %q", c)
	}
	if g := b.get("the grid", chromedp.Text(chromedp.ID("drills"))); !strings.Contains(g, "电子病历系统宕机应急预案") || !strings.Contains(g, "1/2 步按时") {
		t.Errorf("the drills' grid: %q", g)
	}
}
