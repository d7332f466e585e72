package console_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/assets"
	"medguard/internal/vulns"
)

// upload posts a form with one file, as a browser does, the CSRF token
// taken from the page holding the form.
func (b *browser) upload(path string, from page, fields map[string]string, field, name string, file []byte) page {
	b.h.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("csrf_token", csrfOf(from.body))
	for k, v := range fields {
		w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile(field, name)
	fw.Write(file)
	w.Close()
	resp, err := b.c.Post(b.h.srv.URL+path, w.FormDataContentType(), &buf)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return read(resp)
}

// TestAssetsAndVulnerabilitiesPages: a security officer imports the
// register from a spreadsheet (a bad file first: shown back by line and
// column, nothing changed), sees equipment past its end of support
// marked, imports a Trivy report for the records system (a bad report
// first), sees the due dates in hours, then overdue and alerted; suspends
// exports for a critical finding — the banner reaches a doctor, whose
// export is refused with the rule — and the fix lifts it. In Chinese.
func TestAssetsAndVulnerabilitiesPages(t *testing.T) {
	h := newHospital(t)
	b := h.browser("zh-CN")
	b.signIn("zhouqiang", staffPassword)

	list := b.get("/assets")
	if list.status != 200 || titleOf(list.body) != "资产台账 · medguard 病案安全管理" || !strings.Contains(list.body, `id="asset-import-form"`) {
		t.Fatalf("assets page %d %q", list.status, titleOf(list.body))
	}
	bad := "资产编号,资产名称,资产类型,科室\nSRV-1,服务器甲,烤面包机,CARD\nSRV-2,服务器乙,服务器,ZZZ\n"
	p := b.upload("/assets/import", list, nil, "file", "台账.csv", []byte(bad))
	if p.status != 422 || !strings.Contains(p.body, "line 2, column kind") || !strings.Contains(p.body, "line 3, column department") ||
		!strings.Contains(p.body, "文件未导入") {
		t.Fatalf("a bad file: %d %s", p.status, between(p.body, `id="import-error"`, `</div>`))
	}
	good := "资产编号,资产名称,资产类型,负责人,科室,存放位置,IP地址,数据分级,标签,停止支持日期,病案系统\n" +
		"APP-EMR,电子病历系统,应用系统,zhouqiang,CARD,信息中心机房,10.20.1.12,核心,等保三级;核心业务,2029-06-30,是\n" +
		"MED-CT-01,CT 机控制工作站,医疗设备,,CARD,医技楼一层 CT 室,10.40.1.5,重要,不可打补丁,2024-01-31,否\n"
	p = b.upload("/assets/import", list, nil, "file", "台账.csv", []byte(good))
	if p.status != 200 || !strings.Contains(p.body, "已导入 2 行：新登记 2 项") {
		t.Fatalf("import: %d %s", p.status, between(p.body, `<main`, `</form>`))
	}
	list = b.get("/assets")
	ct := between(list.body, `>MED-CT-01<`, `</tr>`)
	if !strings.Contains(ct, "已于 2024-01-31 停止支持") || !strings.Contains(ct, "从未扫描") {
		t.Errorf("the CT row: %s", ct)
	}
	probe := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Roles: []string{"security_officer"}}}
	as, _, err := h.app.Assets.List(context.Background(), probe, assets.Query{})
	if err != nil || len(as) != 2 {
		t.Fatalf("assets %v %v", as, err)
	}
	emr := as[0].ID
	assetPage := b.get("/assets/" + emr)
	if !strings.Contains(assetPage.body, `id="asset-scan-form"`) || !strings.Contains(assetPage.body, "属于病案系统") && !strings.Contains(assetPage.body, "出现严重漏洞时可暂停病历相关操作") {
		t.Fatalf("asset page: %s", between(assetPage.body, `<main`, `</dl>`))
	}

	vp := b.get("/vulns")
	if vp.status != 200 || !strings.Contains(vp.body, `id="scan-import-form"`) || !strings.Contains(vp.body, "超过 7 天 未扫描的资产") {
		t.Fatalf("vulns page %d", vp.status)
	}
	p = b.upload("/vulns/import", vp, map[string]string{"asset": emr, "format": "sarif"}, "file", "report.sarif", []byte(`{"version": "2.0.0"}`))
	if p.status != 422 || !strings.Contains(p.body, "not SARIF 2.1.0") {
		t.Fatalf("a bad report: %d", p.status)
	}
	trivy, err := os.ReadFile("../vulns/testdata/trivy-emr-image.json")
	if err != nil {
		t.Fatal(err)
	}
	p = b.upload("/vulns/import", vp, map[string]string{"asset": emr, "format": "trivy"}, "file", "trivy.json", trivy)
	if p.status != 201 || !strings.Contains(p.body, "新发现 6 条") {
		t.Fatalf("import: %d %s", p.status, between(p.body, `<main`, `</section>`))
	}
	// The report's time is after the test's clock: due from the import.
	if !regexp.MustCompile(`剩余 4[78] 小时`).MatchString(p.body) || !strings.Contains(p.body, "剩余 720 小时") && !strings.Contains(p.body, "剩余 719 小时") {
		t.Errorf("due dates in hours: %s", between(p.body, `id="vulns"`, `</table>`))
	}
	h.clock.Advance(50 * time.Hour)
	if _, err := h.app.Vulns.CheckOverdue(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.signIn("zhouqiang", staffPassword) // the session ended meanwhile
	vp = b.get("/vulns?overdue=1")
	if !strings.Contains(vp.body, "已逾期 2 小时") || !strings.Contains(vp.body, `class="overdue nowrap"`) {
		t.Errorf("overdue in hours: %s", between(vp.body, `id="vulns"`, `</table>`))
	}
	alerts := b.get("/alerts?status=new&rule=" + vulns.OverdueRule)
	if !strings.Contains(alerts.body, "漏洞逾期未修复") || !strings.Contains(alerts.body, "一个严重漏洞已超过修复期限仍未修复") {
		t.Errorf("the alert in words: %s", between(alerts.body, `id="alerts"`, `</table>`))
	}
	dash := b.get("/")
	if tile := between(dash.body, `id="tile-vulns-figure"`, `</li>`); !strings.Contains(tile, `id="tile-vulns-value">4<`) {
		t.Errorf("dashboard tile: %s", tile)
	}

	// Log4Shell on the records system: exports are suspended.
	vs, _, err := h.app.Vulns.List(context.Background(), probe, vulns.Query{AssetID: emr, Text: "CVE-2021-44228"})
	if err != nil || len(vs) != 1 {
		t.Fatalf("log4shell %v %v", vs, err)
	}
	page := b.get("/vulns/" + vs[0].ID)
	if !strings.Contains(page.body, `id="suspend-form"`) || !strings.Contains(page.body, "已逾期") {
		t.Fatalf("the vulnerability's page: %s", between(page.body, `<main`, `</dl>`))
	}
	p = b.post("/vulns/"+vs[0].ID+"/suspension", page, map[string][]string{"actions": {"record.export"}, "reason": {"Log4j 远程代码执行，修复前暂停病历导出"}})
	if p.status != 200 || !strings.Contains(p.body, "相关操作已暂停") || !strings.Contains(p.body, "已暂停：导出病历") {
		t.Fatalf("suspend: %d %s", p.status, between(p.body, `<main`, `</section>`))
	}
	doctor := h.browser("zh-CN")
	home := doctor.signIn("zhangwei", staffPassword)
	if banner := between(home.body, `id="suspended-banner"`, `</div>`); !strings.Contains(banner, "导出病历") || strings.Contains(banner, "详情") {
		t.Errorf("the doctor's banner: %q", banner)
	}
	if nurseless := between(b.get("/").body, `id="suspended-banner"`, `</div>`); nurseless != "" {
		t.Errorf("a security officer holds no export, yet sees the banner: %s", nurseless)
	}
	tok := h.enrolAPI("zhangwei")
	export := map[string]any{"patient_ids": []string{h.patientID}, "format": "fhir", "purpose": "treatment", "reason": "转诊至上级医院"}
	refused := h.api(403, "POST", "/api/v1/exports", tok, export)
	if refused["rule"] != "deny.operation_suspended" {
		t.Fatalf("export refused with %v", refused)
	}
	// The fix: confirmed, fixing, fixed — by the officer; exports resume.
	for _, to := range []string{"confirmed", "fixing", "fixed"} {
		page = b.get("/vulns/" + vs[0].ID)
		if p := b.post("/vulns/"+vs[0].ID+"/status", page, map[string][]string{"status": {to}}); p.status != 200 {
			t.Fatalf("→ %s: %d", to, p.status)
		}
	}
	if banner := between(doctor.get("/").body, `id="suspended-banner"`, `</div>`); banner != "" {
		t.Errorf("the banner after the fix: %s", banner)
	}
	h.api(201, "POST", "/api/v1/exports", tok, export)
	page = b.get("/vulns/" + vs[0].ID)
	if !strings.Contains(page.body, "已修复 → 测试环境已验证") && !strings.Contains(page.body, `id="move-verified_in_test"`) {
		t.Errorf("next step: %s", between(page.body, `id="vuln-move-form"`, `</form>`))
	}
	if !strings.Contains(page.body, "修复中 → 已修复") || !strings.Contains(page.body, "已由") {
		t.Errorf("history and ended suspension: %s", between(page.body, `id="vuln-history"`, `</ol>`))
	}
	// The zlib finding will not be fixed: an exception, asked here and
	// shown in words in the approvals inbox.
	zlib, _, err := h.app.Vulns.List(context.Background(), probe, vulns.Query{AssetID: emr, Text: "CVE-2023-45853"})
	if err != nil || len(zlib) != 1 {
		t.Fatalf("zlib %v %v", zlib, err)
	}
	page = b.get("/vulns/" + zlib[0].ID)
	if p := b.post("/vulns/"+zlib[0].ID+"/exception", page, map[string][]string{"outcome": {"accepted"}, "reason": {"MiniZip 未被调用，接受风险"}}); p.status != 200 ||
		!strings.Contains(p.body, "等待信息安全专员审批") {
		t.Fatalf("the exception: %d", p.status)
	}
	if inbox := b.get("/approvals?who=mine&status=pending").body; !strings.Contains(inbox, "将漏洞以“风险已接受”关闭：zlib: integer overflow") {
		t.Errorf("the inbox: %s", between(inbox, `<main`, `</table>`))
	}
	alerts = b.get("/alerts?status=new&rule=" + vulns.OverdueRule)
	if n := strings.Count(alerts.body, "一个严重漏洞已超过修复期限仍未修复"); n != 2 {
		t.Errorf("%d critical alerts still new after one fix, want 2", n)
	}
}
