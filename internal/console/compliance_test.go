package console_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestCompliancePages: the auditor (孙丽) sees every check before any run
// (computed now), runs the checks from the page, and sees the score, its
// trend and each check with its clauses; a check's page shows how it is
// computed, its evidence and history; the leadership reads without the
// run button; the IT engineer sees the form to attach an attested check's
// evidence, and an upload without a file is refused naming it; a doctor
// is refused; every page speaks Chinese.
func TestCompliancePages(t *testing.T) {
	h := registersHospital(t)
	auditor := h.browser("zh-CN")
	auditor.signIn("sunli", staffPassword)
	before := auditor.get("/compliance")
	if before.status != 200 || !strings.Contains(before.body, `id="compliance-checks"`) || !strings.Contains(before.body, "尚无运行记录") ||
		!strings.Contains(before.body, `id="run-form"`) || !strings.Contains(before.body, "离职人员仍有访问") {
		t.Fatalf("/compliance before a run: %d %s", before.status, before.body)
	}
	chineseOnly(t, "/compliance", before.body)
	ran := auditor.post("/compliance/runs", before, nil)
	if ran.status != 200 || ran.url.Path != "/compliance" || !strings.Contains(ran.body, "检查已运行，结果已保存。") ||
		!strings.Contains(ran.body, `id="compliance-trend"`) || !strings.Contains(ran.body, "GB/T 22239-2019 8.1.4.3") ||
		strings.Contains(ran.body, "尚无运行记录") {
		t.Fatalf("after the run: %d %s %s", ran.status, ran.url, ran.body)
	}
	row := between(ran.body, `id="check-audit_tree_verified"`, `</tr>`)
	if !strings.Contains(row, `data-status="pass"`) || !strings.Contains(row, "通过") || !strings.Contains(row, `href="/audit"`) {
		t.Errorf("the audit check's row: %s", row)
	}
	if row := between(ran.body, `id="check-machine_room"`, `</tr>`); !strings.Contains(row, "待补证据") || !strings.Contains(row, "证据") {
		t.Errorf("the machine room's row: %s", row)
	}
	chineseOnly(t, "/compliance", ran.body)
	check := auditor.get("/compliance/checks/audit_tree_verified")
	if check.status != 200 || !strings.Contains(check.body, `id="evidence"`) || !strings.Contains(check.body, `id="history"`) ||
		!strings.Contains(check.body, "每次检查时从存储的叶子重算整棵默克尔树") {
		t.Fatalf("a check's page: %d %s", check.status, check.body)
	}
	chineseOnly(t, "/compliance/checks/audit_tree_verified", check.body)
	if nf := auditor.get("/compliance/checks/no_such_check"); nf.status != 404 {
		t.Errorf("an unknown check: %d", nf.status)
	}

	leader := h.browser("zh-CN")
	leader.signIn("zhengguohua", staffPassword)
	if p := leader.get("/compliance"); p.status != 200 || strings.Contains(p.body, `id="run-form"`) || !strings.Contains(p.body, "离职人员仍有访问") {
		t.Fatalf("the leadership's page: %d %s", p.status, p.body)
	}
	if p := leader.get("/"); !strings.Contains(p.body, `id="tile-compliance"`) {
		t.Errorf("no compliance tile on the leadership's dashboard")
	}

	engineer := h.browser("zh-CN")
	engineer.signIn("wuyan", staffPassword)
	room := engineer.get("/compliance/checks/machine_room")
	if room.status != 200 || !strings.Contains(room.body, `id="attest-form"`) || !strings.Contains(room.body, "尚未上传证据。") {
		t.Fatalf("the machine room's page: %d %s", room.status, room.body)
	}
	chineseOnly(t, "/compliance/checks/machine_room", room.body)
	if bad := engineer.post("/compliance/checks/machine_room/attestations", room, url.Values{"note": {"机房照片"}}); bad.status != 422 {
		t.Errorf("evidence without a file: %d", bad.status)
	}

	doctor := h.browser("zh-CN")
	doctor.signIn("zhangwei", staffPassword)
	if p := doctor.get("/compliance"); p.status != 403 {
		t.Errorf("a doctor's /compliance: %d", p.status)
	}
}
