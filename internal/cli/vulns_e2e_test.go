package cli_test

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Vulnerabilities over HTTPS (issue 13): an IT engineer imports the asset
// register from a spreadsheet (CSV), then a real-format CodeQL SARIF report
// of the records system's web application scanned three days ago, and a
// Trivy report of its container image scanned an hour ago. Importing the
// SARIF again merges every finding with the known ones; the due dates are
// in hours (48 for critical and high, 7 days for medium); what the
// three-day-old scan found critical or high is overdue at once and
// alerted. A security officer suspends exports for Log4Shell on the
// records system: a doctor's export of his own patient is refused with
// deny.operation_suspended, and allowed again once it is fixed. The wrong
// people, reports and assets are refused; everything is in the audit log.
func TestVulnerabilitiesOverHTTPS(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin, security := s.admin(), s.security()
	for _, d := range [][2]string{{"ITD", "信息科"}, {"CARD", "心内科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	for _, u := range [][4]string{{"liqiang", "李强", "ITD", "it_engineer"}, {"sunli", "孙丽", "", "auditor"},
		{"zhangwei", "张建国", "CARD", "doctor"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	engineer, auditor, doctor := s.token("liqiang", staffPassword), s.token("sunli", staffPassword), s.token("zhangwei", staffPassword)

	// The register, from a spreadsheet.
	register := "资产编号,资产名称,资产类型,负责人,科室,IP地址,数据分级,标签,停止支持日期,病案系统\n" +
		"ZC-2019-0001,电子病历系统,应用系统,liqiang,ITD,10.20.1.12,核心,等保三级;核心业务,2029-06-30,是\n" +
		"ZC-2017-0041,CT 机控制工作站,医疗设备,,ITD,10.40.1.5,重要,不可打补丁,2024-01-31,否\n"
	csvType := []string{"Content-Type", "text/csv"}
	if e := s.problem(422, "POST", "/api/v1/assets/import", engineer, []byte(strings.Replace(register, "医疗设备", "烤面包机", 1)), csvType...); e["field"] != "kind" ||
		!strings.Contains(e["detail"].(string), "line 3, column kind") {
		t.Fatalf("a bad register: %v", e)
	}
	rule(t, s.problem(403, "POST", "/api/v1/assets/import", auditor, []byte(register), csvType...), "deny.no_permission")
	if sum := s.json(200, "POST", "/api/v1/assets/import", engineer, []byte(register), csvType...); sum["created"] != float64(2) {
		t.Fatalf("import %v", sum)
	}
	as := s.json(200, "GET", "/api/v1/assets", auditor, nil)["items"].([]any)
	if len(as) != 2 {
		t.Fatalf("assets %v", as)
	}
	emr, ct := as[1].(map[string]any), as[0].(map[string]any)
	if emr["code"] != "ZC-2019-0001" || emr["records_system"] != true || ct["past_end_of_support"] != true {
		t.Fatalf("assets %v", as)
	}
	asset := emr["id"].(string)

	// The reports, dated relative to now.
	sarif, err := os.ReadFile("../vulns/testdata/codeql-emr-web.sarif")
	if err != nil {
		t.Fatal(err)
	}
	scanned := time.Now().UTC().Add(-72 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	sarif = []byte(strings.NewReplacer("2026-12-03T01:58:12.402Z", scanned, "2026-12-03T02:06:40.118Z", scanned).Replace(string(sarif)))
	trivy, err := os.ReadFile("../vulns/testdata/trivy-emr-image.json")
	if err != nil {
		t.Fatal(err)
	}
	trivy = []byte(strings.Replace(string(trivy), "2026-12-04T03:15:27.481920113+08:00", time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), 1))
	sarifType := []string{"Content-Type", "application/sarif+json"}
	imp := "/api/v1/vulns/import?format=sarif&asset=" + asset

	rule(t, s.problem(403, "POST", imp, auditor, sarif, sarifType...), "deny.no_permission")
	if e := s.problem(422, "POST", "/api/v1/vulns/import?format=nessus&asset="+asset, engineer, sarif, sarifType...); e["field"] != "format" {
		t.Fatalf("a bad format: %v", e)
	}
	if e := s.problem(422, "POST", imp, engineer, []byte(`{"version": "2.1.0", "runs": [`), sarifType...); e["field"] != "report" {
		t.Fatalf("a broken report: %v", e)
	}
	s.problem(404, "POST", "/api/v1/vulns/import?format=sarif&asset=06h4j9khpaef1743afn74xhkkm", engineer, sarif, sarifType...)
	s.problem(415, "POST", imp, engineer, sarif, "Content-Type", "multipart/form-data; boundary=x")
	first := s.json(201, "POST", imp, engineer, sarif, sarifType...)
	if first["new"] != float64(6) || first["seen_again"] != float64(0) || first["tool"] != "codeql" || first["full"] != true {
		t.Fatalf("the first import %v", first)
	}
	again := s.json(201, "POST", imp, engineer, sarif, sarifType...)
	if again["new"] != float64(0) || again["seen_again"] != float64(6) || again["proposed_fixed"] != float64(0) {
		t.Fatalf("the same report again: %v", again)
	}
	image := s.json(201, "POST", "/api/v1/vulns/import?format=trivy&asset="+asset, engineer, trivy, "Content-Type", "application/json")
	if image["new"] != float64(6) {
		t.Fatalf("the image %v", image)
	}

	list := s.json(200, "GET", "/api/v1/vulns?asset="+asset+"&limit=200", auditor, nil)
	items := list["items"].([]any)
	if len(items) != 12 || list["next"] != nil {
		t.Fatalf("%d vulnerabilities, next %v", len(items), list["next"])
	}
	byRule := map[string]map[string]any{}
	for _, it := range items {
		v := it.(map[string]any)
		for _, k := range []string{"id", "asset_id", "title", "severity", "status", "due_at"} {
			if v[k] == nil || v[k] == "" {
				t.Fatalf("item lacks %s: %v", k, v)
			}
		}
		byRule[v["rule_id"].(string)+" "+v["location"].(string)] = v
	}
	sqli := byRule["java/sql-injection src/main/java/cn/hospital/emr/record/RecordSearchDao.java:87"]
	if sqli["sightings"] != float64(2) || sqli["sla_hours"] != float64(48) || sqli["overdue"] != true || sqli["due_in_hours"].(float64) > -23 {
		t.Fatalf("the SQL injection, seen twice, overdue: %v", sqli)
	}
	log4shell := byRule["CVE-2021-44228 app/WEB-INF/lib/log4j-core-2.14.1.jar: app/WEB-INF/lib/log4j-core-2.14.1.jar org.apache.logging.log4j:log4j-core 2.14.1"]
	if log4shell == nil || log4shell["severity"] != "critical" || log4shell["overdue"] != false || log4shell["due_in_hours"] != float64(46) && log4shell["due_in_hours"] != float64(47) {
		t.Fatalf("Log4Shell, due in hours: %v", log4shell)
	}
	due, _ := time.Parse(time.RFC3339, log4shell["due_at"].(string))
	first_, _ := time.Parse(time.RFC3339, log4shell["first_seen"].(string))
	if due.Sub(first_) != 48*time.Hour {
		t.Fatalf("due %v, first seen %v", due, first_)
	}
	if n := len(s.json(200, "GET", "/api/v1/vulns?overdue=true", auditor, nil)["items"].([]any)); n != 3 {
		t.Fatalf("%d overdue, want the critical and two highs of the three-day-old scan", n)
	}

	// The overdue alerts, raised at once.
	alerts := s.json(200, "GET", "/api/v1/alerts?rule=vuln_overdue", security, nil)["items"].([]any)
	if len(alerts) != 3 {
		t.Fatalf("%d overdue alerts", len(alerts))
	}
	if a := alerts[0].(map[string]any); a["severity"] == nil || !strings.Contains(a["explanation"].(string), "of asset "+asset) {
		t.Fatalf("alert %v", a)
	}

	// Exports suspended for Log4Shell on the records system.
	patient := s.json(201, "POST", "/api/v1/patients", doctor, map[string]any{"name": "王秀英", "gender": "female",
		"birth_date": "1958-03-07", "id_number": "110105195803070025", "phone": "13700001111", "address": "北京市东城区东四十条22号",
		"mrn": "MR20260001"})["id"].(string)
	s.json(201, "POST", "/api/v1/patients/"+patient+"/records", doctor, map[string]any{"type": "progress_note",
		"department": "CARD", "title": "病程记录", "text": "胸闷较前好转。"})
	export := map[string]any{"patient_ids": []string{patient}, "format": "jsonl", "purpose": "treatment", "reason": "转诊需携带病历"}
	id := log4shell["id"].(string)
	suspend := map[string]any{"actions": []string{"record.export"}, "reason": "Log4j 远程代码执行，修复前暂停病历导出"}
	rule(t, s.problem(403, "POST", "/api/v1/vulns/"+id+"/suspension", engineer, suspend), "deny.no_permission")
	sp := s.json(201, "POST", "/api/v1/vulns/"+id+"/suspension", security, suspend)
	if sp["active"] != true {
		t.Fatalf("suspension %v", sp)
	}
	rule(t, s.problem(403, "POST", "/api/v1/exports", doctor, export), "deny.operation_suspended")
	if act := s.json(200, "GET", "/api/v1/suspensions?active=true", auditor, nil)["items"].([]any); len(act) != 1 {
		t.Fatalf("active suspensions %v", act)
	}
	// Lifting early needs a second security officer: asked, it waits.
	lift := s.json(202, "POST", "/api/v1/suspensions/"+sp["id"].(string)+"/lift", security, map[string]string{"reason": "急需转诊导出"})
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+lift["id"].(string)+"/approve", security, map[string]string{"note": "自批"}), "deny.own_request")
	rule(t, s.problem(403, "POST", "/api/v1/exports", doctor, export), "deny.operation_suspended")
	// The fix: one step at a time; a jump is refused.
	if e := s.problem(409, "POST", "/api/v1/vulns/"+id+"/status", engineer, map[string]string{"status": "deployed"}); e["field"] != "status" {
		t.Fatalf("a jump: %v", e)
	}
	for _, to := range []string{"confirmed", "fixing", "fixed"} {
		if v := s.json(200, "POST", "/api/v1/vulns/"+id+"/status", engineer, map[string]string{"status": to, "note": "升级 log4j-core 至 2.17.1"}); v["status"] != to {
			t.Fatalf("→ %s: %v", to, v)
		}
	}
	rule(t, s.problem(403, "POST", "/api/v1/vulns/"+id+"/status", engineer, map[string]string{"status": "verified_in_test"}), "deny.own_fix")
	s.json(201, "POST", "/api/v1/exports", doctor, export)
	d := s.json(200, "GET", "/api/v1/vulns/"+id, auditor, nil)
	sps := d["suspensions"].([]any)
	if len(sps) != 1 || sps[0].(map[string]any)["active"] != false || len(d["history"].([]any)) != 3 || d["description"] == "" {
		t.Fatalf("detail %v", d)
	}

	// The log: the imports, the suspension, the refusals, its end.
	seen := map[string]bool{}
	for _, a := range []string{"vuln.import", "vuln.suspend", "vuln.suspension_end", "vuln.overdue", "asset.import"} {
		for _, e := range s.json(200, "GET", "/api/v1/audit/search?action="+a, security, nil)["items"].([]any) {
			entry := e.(map[string]any)
			if en, ok := entry["entry"].(map[string]any); ok {
				entry = en
			}
			seen[a+":"+entry["outcome"].(string)] = true
		}
	}
	for _, want := range []string{"vuln.import:success", "vuln.import:denied", "vuln.suspend:success", "vuln.suspension_end:success",
		"vuln.overdue:success", "asset.import:success", "asset.import:invalid"} {
		if !seen[want] {
			t.Errorf("the log lacks %s: %v", want, seen)
		}
	}
}
