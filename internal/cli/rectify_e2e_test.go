package cli_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard/internal/rectify"
)

// The rectification register over HTTPS (issue 14): a third-party audit
// report in CSV with Chinese headers is refused whole for one bad line,
// naming its line, column and field; the good report opens its items, one
// already past its deadline, which raises one rectification_overdue
// alert. The owner reports it done with evidence (the alert is resolved);
// the owner cannot verify it (403 with the rule, in the audit log);
// another officer verifies it. A department head sees their department's
// items only; a doctor none. The month's figures and the signed review.
func TestRectificationOverHTTPS(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"ITD", "信息科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	for _, u := range [][4]string{{"zhouqiang", "周强", "ITD", "security_officer"}, {"qianmin", "钱敏", "ITD", "security_officer"},
		{"wuyan", "吴燕", "ITD", "it_engineer"}, {"lizhuren", "李建华", "CARD", "dept_head"}, {"zhangwei", "张建国", "CARD", "doctor"},
		{"zhengguohua", "郑国华", "", "leadership"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	officer, officer2, engineer := s.token("zhouqiang", staffPassword), s.token("qianmin", staffPassword), s.token("wuyan", staffPassword)
	head, doctor, leader := s.token("lizhuren", staffPassword), s.token("zhangwei", staffPassword), s.token("zhengguohua", staffPassword)

	past := time.Now().AddDate(0, 0, -3).Format("2006-01-02")
	future := time.Now().AddDate(0, 2, 0).Format("2006-01-02")
	good := "编号,问题,条款,科室,责任人,严重程度,整改期限,描述\n" +
		"DJCP-01,管理员账户未启用双因素认证,GB/T 22239-2019 8.1.4.1,信息科,zhouqiang,高," + past + ",堡垒机管理员仅口令认证\n" +
		"DJCP-02,病案室门禁记录保存不足6个月,GB/T 22239-2019 8.1.1.2,心内科,lizhuren,中," + future + ",\n" +
		"DJCP-03,数据库备份未异地存放,GB/T 22239-2019 8.1.4.9,信息科,wuyan,低," + future + ",\n"
	bad := strings.Replace(good, "lizhuren", "李主任", 1)
	importPath := "/api/v1/rectifications/import?auditor=" + url.QueryEscape("某某信息安全测评中心") + "&report=" + url.QueryEscape("2026-等保-017")
	e := s.problem(422, "POST", importPath, officer, []byte(bad), "Content-Type", "text/csv")
	if e["field"] != "owner" || !strings.Contains(e["detail"].(string), "line 3") || !strings.Contains(e["detail"].(string), "责任人") {
		t.Fatalf("bad report: %v", e)
	}
	if l := s.json(200, "GET", "/api/v1/rectifications", officer, nil); len(l["items"].([]any)) != 0 {
		t.Fatalf("a refused report left items: %v", l)
	}
	rule(t, s.problem(403, "POST", importPath, doctor, []byte(good), "Content-Type", "text/csv"), "deny.no_permission")
	sum := s.json(201, "POST", importPath, officer, []byte(good), "Content-Type", "text/csv")
	if sum["created"] != float64(3) {
		t.Fatalf("import %v", sum)
	}
	items := s.json(200, "GET", "/api/v1/rectifications?kind=third_party", leader, nil)["items"].([]any)
	byRef := map[string]map[string]any{}
	for _, it := range items {
		m := it.(map[string]any)
		byRef[m["ref"].(string)] = m
	}
	late := byRef["2026-等保-017/DJCP-01"]
	if late == nil || late["overdue"] != true || late["owner"] != "zhouqiang" || late["department"] != "ITD" || late["severity"] != "high" {
		t.Fatalf("items %v", items)
	}
	id := late["id"].(string)
	// Announced at once, once.
	if a := s.alertsOf(officer, rectify.OverdueRule, id); len(a) != 1 || a[0]["status"] != "new" {
		t.Fatalf("overdue alerts %v", a)
	}
	if a := s.alertsOf(officer, rectify.OverdueRule, byRef["2026-等保-017/DJCP-02"]["id"].(string)); len(a) != 0 {
		t.Fatalf("an item not due is alerted: %v", a)
	}

	// Only the owner reports progress; the owner reports it done with
	// evidence; the alert is resolved.
	rule(t, s.problem(403, "POST", "/api/v1/rectifications/"+id+"/start", engineer, map[string]string{"note": "代为开始"}), "deny.not_rectification_owner")
	s.json(200, "POST", "/api/v1/rectifications/"+id+"/start", officer, map[string]string{"note": "已申请堡垒机升级"})
	evidence := []byte("双因素认证配置截图：堡垒机已启用TOTP")
	if e := s.problem(422, "POST", "/api/v1/rectifications/"+id+"/done", officer, map[string]any{"note": ""}); e["field"] != "note" {
		t.Fatalf("done without a note: %v", e)
	}
	done := s.json(200, "POST", "/api/v1/rectifications/"+id+"/done", officer, map[string]any{"note": "堡垒机管理员账户已全部启用TOTP",
		"evidence_name": "双因素认证.png", "evidence": base64.StdEncoding.EncodeToString(evidence)})
	if done["status"] != "done" || done["overdue"] != false {
		t.Fatalf("done %v", done)
	}
	if a := s.alertsOf(officer, rectify.OverdueRule, id); len(a) != 1 || a[0]["status"] == "new" {
		t.Fatalf("the alert is not resolved: %v", a)
	}

	// The owner, a security officer, cannot verify their own item.
	rule(t, s.problem(403, "POST", "/api/v1/rectifications/"+id+"/verify", officer, map[string]string{"note": "已完成"}), "deny.own_rectification")
	rule(t, s.problem(403, "POST", "/api/v1/rectifications/"+id+"/verify", leader, map[string]string{"note": "同意"}), "deny.no_permission")
	v := s.json(200, "POST", "/api/v1/rectifications/"+id+"/verify", officer2, map[string]string{"note": "抽查3个管理员账户，均需TOTP"})
	if v["status"] != "verified" || v["verified_by"] != "qianmin" {
		t.Fatalf("verified %v", v)
	}
	got := s.json(200, "GET", "/api/v1/rectifications/"+id, leader, nil)
	var kinds []string
	seq := 0
	for _, ev := range got["history"].([]any) {
		m := ev.(map[string]any)
		kinds = append(kinds, m["kind"].(string))
		if m["evidence_name"] == "双因素认证.png" {
			seq = int(m["seq"].(float64))
		}
	}
	if !slices.Equal(kinds, []string{"created", "overdue", "started", "done", "verified"}) || seq == 0 {
		t.Fatalf("history %v", got["history"])
	}
	if b := s.body(200, "GET", fmt.Sprintf("/api/v1/rectifications/%s/evidence/%d", id, seq), officer2); string(b) != string(evidence) {
		t.Fatalf("evidence %q", b)
	}

	// A department head sees their department's items; a doctor none.
	mine := s.json(200, "GET", "/api/v1/rectifications", head, nil)["items"].([]any)
	if len(mine) != 1 || mine[0].(map[string]any)["department"] != "CARD" {
		t.Fatalf("the head's items %v", mine)
	}
	rule(t, s.problem(403, "GET", "/api/v1/rectifications/"+id, head, nil), "deny.other_department")
	rule(t, s.problem(403, "GET", "/api/v1/rectifications/"+id, doctor, nil), "deny.no_permission")
	if l := s.json(200, "GET", "/api/v1/rectifications", doctor, nil); len(l["items"].([]any)) != 0 {
		t.Fatalf("the doctor's items %v", l)
	}
	s.problem(404, "GET", "/api/v1/rectifications/06hcse78r0ayntddtvvvxnsrz8", officer, nil)

	// The month's figures and the security office's signed review.
	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	m := s.json(200, "GET", "/api/v1/rectifications/monthly?month="+month, leader, nil)
	if m["total"].(map[string]any)["opened"] != float64(3) {
		t.Fatalf("month %v", m)
	}
	rule(t, s.problem(403, "POST", "/api/v1/rectifications/reviews", leader, map[string]string{"month": month}), "deny.no_permission")
	rv := s.json(201, "POST", "/api/v1/rectifications/reviews", officer, map[string]string{"month": month, "note": "本月第三方测评问题已启动整改"})
	if rv["reviewed_by"] != "zhouqiang" || len(rv["figures_sha256"].(string)) != 64 {
		t.Fatalf("review %v", rv)
	}

	// The console's pages in Chinese, without raw codes; the grid's CSV.
	for _, p := range []struct{ path, token, want string }{
		{"/rectifications", officer, "整改台账"}, {"/rectifications?overdue=true", leader, "整改台账"},
		{"/rectifications/" + id, officer2, "验证通过"}, {"/rectifications/" + byRef["2026-等保-017/DJCP-02"]["id"].(string), head, "病案室门禁"},
		{"/rectifications/import", officer, "导入第三方审计报告"}, {"/rectifications/monthly?month=" + month, leader, "整改进度"},
		{"/rectifications/mine", engineer, "我负责的整改项"}, {"/", leader, "未关闭整改项"},
	} {
		st, _, page := s.consolePage(p.path, p.token, "zh-CN")
		if st != 200 || !strings.Contains(page, p.want) {
			t.Fatalf("%s: %d, no %q", p.path, st, p.want)
		}
		for _, raw := range []string{"rectify.", "quarterly.", "third_party", "internal_audit", "in_progress", "%!"} {
			if strings.Contains(visibleText(page), raw) {
				t.Fatalf("%s shows the raw code %q", p.path, raw)
			}
		}
	}
	if st, hdr, csv := s.consolePage("/rectifications?format=csv", officer, "en"); st != 200 || !strings.Contains(hdr.Get("Content-Type"), "csv") ||
		!strings.Contains(csv, "管理员账户未启用双因素认证") {
		t.Fatalf("CSV: %d %s", st, hdr.Get("Content-Type"))
	}
	if st, _, _ := s.consolePage("/rectifications/import", head, "zh-CN"); st != 403 {
		t.Fatalf("a department head reached the import: %d", st)
	}

	// The log: the refusal with its rule, the import, the review.
	var refused, imported, reviewed bool
	for _, e := range s.entries(0) {
		switch {
		case e["action"] == "rectification.verify" && e["actor"] == "zhouqiang" && e["rule"] == "deny.own_rectification" && e["decision"] == "deny":
			refused = true
		case e["action"] == "rectification.import" && e["actor"] == "zhouqiang" && e["decision"] == "allow":
			imported = true
		case e["action"] == "rectification.review" && e["target_id"] == rv["id"]:
			reviewed = true
		}
	}
	if !refused || !imported || !reviewed {
		t.Fatalf("audit: refused %v imported %v reviewed %v", refused, imported, reviewed)
	}
}

// The quarterly compliance check over HTTPS (issue 14): the auditor
// samples 30 % of ten departments with a seed — the same seed, the same
// sample —, records the findings, publishes the run; the failing finding
// opens a rectification item; a department head reads the results
// (their department's findings, the summary), which is logged and
// leaves their notices; a doctor is refused.
func TestQuarterlyComplianceCheck(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin := s.admin()
	depts := [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"GAST", "消化内科"}, {"ORTH", "骨科"}, {"PEDS", "儿科"},
		{"OBGY", "妇产科"}, {"EMER", "急诊科"}, {"RADI", "放射科"}, {"LAB", "检验科"}, {"ITD", "信息科"}}
	var codes []string
	for _, d := range depts {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
		codes = append(codes, d[0])
	}
	for _, u := range [][4]string{{"sunli", "孙丽", "", "auditor"}, {"lizhuren", "李建华", "CARD", "dept_head"},
		{"wangzhuren", "王志明", "NEUR", "dept_head"}, {"zhangwei", "张建国", "CARD", "doctor"}, {"zhengguohua", "郑国华", "", "leadership"},
		{"zhouqiang", "周强", "ITD", "security_officer"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	auditor, head, doctor := s.token("sunli", staffPassword), s.token("lizhuren", staffPassword), s.token("zhangwei", staffPassword)
	leader, officer := s.token("zhengguohua", staffPassword), s.token("zhouqiang", staffPassword)

	// A seed whose sample holds 心内科.
	var seed int64
	for seed = 2026; !slices.Contains(rectify.Sample(seed, codes), "CARD"); seed++ {
	}
	rule(t, s.problem(403, "POST", "/api/v1/compliance/quarterly", officer, map[string]any{"quarter": "2026-Q4"}), "deny.no_permission")
	if e := s.problem(422, "POST", "/api/v1/compliance/quarterly", auditor, map[string]any{"quarter": "2026年第四季度"}); e["field"] != "quarter" {
		t.Fatalf("bad quarter %v", e)
	}
	run := s.json(201, "POST", "/api/v1/compliance/quarterly", auditor, map[string]any{"quarter": "2026-Q4", "seed": seed})
	sampled := strs(run["sampled"])
	if len(sampled) != 3 || run["sampled_share"].(float64) < 0.3 || run["seed"] != float64(seed) || !slices.Contains(sampled, "CARD") {
		t.Fatalf("run %v", run)
	}
	again := s.json(201, "POST", "/api/v1/compliance/quarterly", auditor, map[string]any{"quarter": "2026-Q4", "seed": seed})
	if !slices.Equal(strs(again["sampled"]), sampled) {
		t.Fatalf("the same seed drew %v, then %v", sampled, again["sampled"])
	}
	random := s.json(201, "POST", "/api/v1/compliance/quarterly", auditor, map[string]any{"quarter": "2026-Q3"})
	if !slices.Equal(strs(random["sampled"]), rectify.Sample(int64(random["seed"].(float64)), codes)) {
		t.Fatalf("a random seed's sample is not reproducible: %v", random)
	}
	id := run["id"].(string)
	path := "/api/v1/compliance/quarterly/" + id
	findings := run["findings"].([]any)
	if len(findings) != 9 {
		t.Fatalf("findings %v", findings)
	}
	s.problem(409, "POST", path+"/publish", auditor, nil)
	// The auditor records what the checks measured where they measured a
	// failure (on PostgreSQL without TLS, transmission fails: a pass is
	// refused), and a failure of their own in 心内科.
	failed, cardFailed := 0, 0
	for _, f := range findings {
		m := f.(map[string]any)
		res := map[string]string{"department": m["department"].(string), "item": m["item"].(string), "result": "pass"}
		switch {
		case m["department"] == "CARD" && m["item"] == "paper_electronic_sync":
			res["result"] = "fail"
			if e := s.problem(422, "POST", path+"/findings", auditor, res); e["field"] != "note" {
				t.Fatalf("a fail without a note: %v", e)
			}
			res["note"] = "抽查20份出院病历，2份纸质病历未在7日内归档"
		case m["measured_pass"] == false:
			if e := s.problem(422, "POST", path+"/findings", auditor, res); e["field"] != "result" {
				t.Fatalf("a pass against a failing measure: %v", e)
			}
			res["result"], res["note"] = "fail", "实测未达标，按实测记录"
		}
		if res["result"] == "fail" {
			failed++
			if m["department"] == "CARD" {
				cardFailed++
			}
		}
		s.json(200, "POST", path+"/findings", auditor, res)
	}
	rule(t, s.problem(403, "POST", path+"/publish", officer, nil), "deny.no_permission")
	pub := s.json(200, "POST", path+"/publish", auditor, nil)
	if pub["status"] != "published" || pub["summary"].(map[string]any)["failed"] != float64(failed) || len(pub["recipients"].([]any)) != 2 {
		t.Fatalf("published %v", pub)
	}

	// The head of 心内科: a notice on the home page, the results, the item.
	if st, _, home := s.consolePage("/", head, "zh-CN"); st != 200 || !strings.Contains(home, "2026-Q4") || !strings.Contains(home, "季度合规检查") {
		t.Fatalf("the head's home page has no notice of the run (%d)", st)
	}
	r := s.json(200, "GET", path, head, nil)
	for _, f := range r["findings"].([]any) {
		if f.(map[string]any)["department"] != "CARD" {
			t.Fatalf("the head reads another department's finding: %v", f)
		}
	}
	if len(r["findings"].([]any)) != 3 || r["summary"].(map[string]any)["failed"] != float64(failed) || r["read_at"] == nil || r["recipients"] != nil {
		t.Fatalf("the head's run %v", r)
	}
	its := s.json(200, "GET", "/api/v1/rectifications?kind=quarterly", head, nil)["items"].([]any)
	if len(its) != cardFailed {
		t.Fatalf("the quarterly items %v, want %d", its, cardFailed)
	}
	for _, it := range its {
		if it.(map[string]any)["owner"] != "lizhuren" || it.(map[string]any)["severity"] != "high" {
			t.Fatalf("the quarterly item %v", it)
		}
	}
	// A draft is not theirs to read; a doctor reads nothing.
	s.problem(404, "GET", "/api/v1/compliance/quarterly/"+again["id"].(string), head, nil)
	rule(t, s.problem(403, "GET", path, doctor, nil), "deny.no_permission")
	rule(t, s.problem(403, "GET", "/api/v1/compliance/quarterly", doctor, nil), "deny.no_permission")
	// The leadership reads the whole run, with who read it.
	whole := s.json(200, "GET", path, leader, nil)
	readers := 0
	for _, rc := range whole["recipients"].([]any) {
		if rc.(map[string]any)["read_at"] != nil {
			readers++
		}
	}
	if len(whole["findings"].([]any)) != 9 || readers != 1 {
		t.Fatalf("the leader's run %v", whole)
	}
	for _, p := range []struct{ path, token, want string }{
		{"/compliance/quarterly", auditor, "季度合规检查"}, {path[len("/api/v1"):], auditor, "纸电同步率"},
		{"/compliance/quarterly", head, "季度合规检查"}, {path[len("/api/v1"):], leader, "通报对象"},
	} {
		st, _, page := s.consolePage(p.path, p.token, "zh-CN")
		if st != 200 || !strings.Contains(page, p.want) {
			t.Fatalf("%s: %d, no %q", p.path, st, p.want)
		}
		for _, raw := range []string{"rectify.", "quarterly.", "paper_electronic_sync", "departed_revoked", "%!"} {
			if strings.Contains(visibleText(page), raw) {
				t.Fatalf("%s shows the raw code %q", p.path, raw)
			}
		}
	}
	if st, _, _ := s.consolePage("/compliance/quarterly", doctor, "zh-CN"); st != 403 {
		t.Fatalf("a doctor reached the quarterly checks: %d", st)
	}
	var published, read bool
	for _, e := range s.entries(0) {
		switch {
		case e["action"] == "compliance.quarterly_publish" && e["actor"] == "sunli" && e["decision"] == "allow":
			published = true
		case e["action"] == "compliance.quarterly_results_read" && e["actor"] == "lizhuren" && e["target_id"] == id:
			read = true
		}
	}
	if !published || !read {
		t.Fatalf("audit: published %v read %v", published, read)
	}
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

var rectifyMarkup = regexp.MustCompile(`(?s)<[^>]*>`)

// visibleText is a page's text without its markup (attribute values
// hold codes a reader never sees).
func visibleText(page string) string { return rectifyMarkup.ReplaceAllString(page, " ") }
