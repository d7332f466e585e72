package cli_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Risks, emergency plans and drills over HTTPS (issue 13): a security
// officer records a high risk and sees it on the heat map; accepting it
// waits for the leader. The officer writes a plan and submits it; the
// officer's own review is refused for separation of duties, an IT
// engineer reviews it, the engineer cannot approve it, the leader
// publishes it — and a published version stays as it is. A drill is
// recorded with a late step, a major gap and an improvement item;
// cardiology fails it; it is listed, read back with its gaps, counted in
// the status; the refusals and the record are in the audit log; the
// console lists the drill.
func TestRisksPlansAndDrillsOverHTTPS(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"ITD", "信息科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	for _, u := range [][4]string{{"zhouqiang", "周强", "ITD", "security_officer"}, {"wuyan", "吴燕", "ITD", "it_engineer"},
		{"zhengguohua", "郑国华", "", "leadership"}, {"zhangwei", "张建国", "CARD", "doctor"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	officer, engineer := s.token("zhouqiang", staffPassword), s.token("wuyan", staffPassword)
	leader, doctor := s.token("zhengguohua", staffPassword), s.token("zhangwei", staffPassword)

	// A risk: scored, levelled, on the heat map; its acceptance waits.
	risk := map[string]any{"title": "第三方运维远程维护失控", "asset_id": "ZC-APP-0005", "asset_name": "检验信息系统",
		"threat": "运维人员远程操作越权", "vulnerability": "远程维护账号长期开通", "likelihood": 4, "impact": 4, "treatment": "accept",
		"treatment_plan": "运维账号按需开通并全程录屏", "owner": "wuyan"}
	rule(t, s.problem(403, "POST", "/api/v1/risks", doctor, risk), "deny.no_permission")
	bad := map[string]any{}
	for k, v := range risk {
		bad[k] = v
	}
	bad["impact"] = 6
	if e := s.problem(422, "POST", "/api/v1/risks", officer, bad); e["field"] != "impact" {
		t.Fatalf("impact 6: %v", e)
	}
	r := s.json(201, "POST", "/api/v1/risks", officer, risk)
	if r["score"] != float64(16) || r["level"] != "high" || r["acceptance"] != "pending" {
		t.Fatalf("risk %v", r)
	}
	rid := r["id"].(string)
	if h := s.json(200, "GET", "/api/v1/risks/heatmap", leader, nil); h["open"] != float64(1) || h["pending_acceptance"] != float64(1) ||
		h["cells"].([]any)[3*5+3].(map[string]any)["count"] != float64(1) {
		t.Fatalf("heat map %v", h)
	}
	rule(t, s.problem(403, "POST", "/api/v1/risks/"+rid+"/acceptance", officer, map[string]any{"accept": true, "note": "自批"}), "deny.no_permission")
	if ok := s.json(200, "POST", "/api/v1/risks/"+rid+"/acceptance", leader, map[string]any{"accept": true, "note": "全程录屏，同意接受"}); ok["acceptance"] != "accepted" {
		t.Fatalf("accepted %v", ok)
	}
	if list := s.json(200, "GET", "/api/v1/risks?level=high&limit=10", officer, nil); len(list["items"].([]any)) != 1 || list["next"] != nil {
		t.Fatalf("high risks %v", list)
	}

	// A plan through review and approval.
	plan := map[string]any{"type": "technical_failure", "title": "电子病历系统宕机应急预案",
		"scenario":   "电子病历数据库服务器故障，临床科室无法书写和调阅病历。",
		"responders": []map[string]string{{"role": "总指挥", "name": "郑国华", "duty": "决定启动预案"}, {"role": "技术处置组", "duty": "恢复服务"}},
		"steps": []map[string]any{{"title": "发现与报告", "action": "值班工程师确认故障并报告", "role": "技术处置组", "limit_minutes": 15},
			{"title": "恢复服务", "action": "切换至备用服务器", "role": "技术处置组", "limit_minutes": 120}}}
	p := s.json(201, "POST", "/api/v1/plans", officer, plan)
	pid := p["id"].(string)
	v1 := "/api/v1/plans/" + pid + "/versions/1"
	s.json(200, "POST", v1+"/submit", officer, map[string]string{"note": "请专家评审"})
	rule(t, s.problem(403, "POST", v1+"/review", officer, map[string]any{"approve": true, "note": "自审"}), "deny.separation_of_duties")
	if rv := s.json(200, "POST", v1+"/review", engineer, map[string]any{"approve": true, "note": "流程完整"}); rv["open_status"] != "reviewed" {
		t.Fatalf("reviewed %v", rv)
	}
	rule(t, s.problem(403, "POST", v1+"/approve", engineer, map[string]any{"approve": true, "note": "同意"}), "deny.no_permission")
	pub := s.json(200, "POST", v1+"/approve", leader, map[string]any{"approve": true, "note": "同意发布"})
	if pub["published_version"] != float64(1) || pub["review_due_at"] == nil {
		t.Fatalf("published %v", pub)
	}
	if e := s.problem(409, "PUT", v1, officer, map[string]any{"title": "改", "scenario": "改", "responders": plan["responders"],
		"steps": plan["steps"]}); e["type"] != "urn:medguard:problem:conflict:version_immutable" {
		t.Fatalf("a published version changed: %v", e)
	}
	s.problem(404, "POST", "/api/v1/plans/"+pid+"/versions/x/submit", officer, map[string]string{})

	// A drill with a late step, a major gap and an improvement item.
	took := []any{10, 150}
	drill := map[string]any{"kind": "tabletop", "plan_id": pid, "held_at": time.Now().UTC().Format(time.RFC3339Nano),
		"departments":  []string{"ITD", "CARD"},
		"participants": []map[string]string{{"name": "吴燕", "department": "ITD", "role": "技术处置组"}, {"name": "张建国", "department": "CARD"}},
		"steps":        []map[string]any{{"step": 1, "took_minutes": took[0], "department": "ITD"}, {"step": 2, "took_minutes": took[1], "department": "CARD"}},
		"gaps":         []map[string]string{{"department": "CARD", "severity": "major", "description": "夜班护士不知道纸质病历存放位置"}},
		"improvements": []map[string]string{{"action": "每月组织纸质病历流程培训", "owner": "zhangwei", "department": "CARD",
			"due_at": time.Now().Add(14 * 24 * time.Hour).UTC().Format(time.RFC3339)}},
		"notes": "切换超时，需加强培训"}
	rule(t, s.problem(403, "POST", "/api/v1/drills", doctor, drill), "deny.no_permission")
	d := s.json(201, "POST", "/api/v1/drills", officer, drill)
	did := d["id"].(string)
	if d["passed"] != false || len(d["gaps"].([]any)) != 1 || len(d["improvements"].([]any)) != 1 {
		t.Fatalf("drill %v", d)
	}
	list := s.json(200, "GET", "/api/v1/drills?kind=tabletop", leader, nil)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != did || list["next"] != nil {
		t.Fatalf("drills %v", list)
	}
	got := s.json(200, "GET", "/api/v1/drills/"+did, leader, nil)
	gap := got["gaps"].([]any)[0].(map[string]any)
	steps := got["steps"].([]any)
	depts := map[string]bool{}
	for _, x := range got["departments"].([]any) {
		depts[x.(map[string]any)["department"].(string)] = x.(map[string]any)["passed"].(bool)
	}
	if gap["description"] != "夜班护士不知道纸质病历存放位置" || gap["severity"] != "major" || steps[1].(map[string]any)["met"] != false ||
		steps[0].(map[string]any)["met"] != true || depts["CARD"] || !depts["ITD"] {
		t.Fatalf("drill read back %v", got)
	}
	st := s.json(200, "GET", "/api/v1/drills/status", leader, nil)
	if st["open_improvements"] != float64(1) || len(st["cadence"].([]any)) != 2 {
		t.Fatalf("status %v", st)
	}
	for _, c := range st["cadence"].([]any) {
		if c := c.(map[string]any); c["kind"] == "tabletop" && c["done"] != true {
			t.Fatalf("tabletop cadence %v", c)
		}
	}
	s.problem(403, "GET", "/api/v1/drills", doctor, nil)

	// The log: the drill recorded, the author's review refused with its rule.
	var recorded, refused bool
	for _, e := range s.entries(0) {
		switch {
		case e["action"] == "drill.record" && e["target_id"] == did && e["decision"] == "allow":
			recorded = true
		case e["action"] == "plan.review" && e["actor"] == "zhouqiang" && e["rule"] == "deny.separation_of_duties":
			refused = true
		}
	}
	if !recorded || !refused {
		t.Fatalf("audit: drill recorded %v, review refused %v", recorded, refused)
	}

	// The console lists the drill and shows its gap.
	if code, _, page := s.consolePage("/drills?"+url.Values{"kind": {"tabletop"}}.Encode(), leader, "zh-CN"); code != 200 ||
		!strings.Contains(page, "电子病历系统宕机应急预案") || !strings.Contains(page, "不合格") {
		t.Fatalf("/drills: %d %s", code, page)
	}
	if code, _, page := s.consolePage("/drills/"+did, leader, "zh-CN"); code != 200 || !strings.Contains(page, "夜班护士不知道纸质病历存放位置") {
		t.Fatalf("/drills/{id}: %d %s", code, page)
	}
}
