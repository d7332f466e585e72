package console_test

import (
	"net/url"
	"strings"
	"testing"
)

// Issue 10: four-eyes requests read like decisions, and only those who may
// decide a request are offered to.

// fileRequests files one request of every kind through the API, as the
// administrator (and, for the care team, the head of cardiology), and
// returns their ids by kind.
func fileRequests(t *testing.T, h *hospital) map[string]string {
	t.Helper()
	ids := map[string]string{"access.grant": h.approvalID}
	approvalOf := func(m map[string]any) string { return m["approval"].(map[string]any)["id"].(string) }
	out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": "sunli", "display_name": "孙丽",
		"roles": []string{"auditor"}, "password": staffPassword})
	h.users["sunli"] = out["id"].(string)
	ids["role.grant"] = out["pending_approvals"].([]any)[0].(map[string]any)["id"].(string)
	ids["user.password_reset"] = approvalOf(h.api(202, "POST", "/api/v1/users/"+h.users["zhangwei"]+"/password", h.admin,
		map[string]string{"reason": "本人遗忘密码，已核实身份"}))
	ids["user.department_change"] = approvalOf(h.api(202, "POST", "/api/v1/users/"+h.users["zhangwei"]+"/department", h.admin,
		map[string]string{"department": "NEUR"}))
	ids["apikey.create"] = approvalOf(h.api(202, "POST", "/api/v1/api-keys", h.admin, map[string]any{"name": "lis",
		"scopes": []string{"patient.search", "record.write:lab_report"}, "department": "CARD", "reason": "检验结果回传"}))
	h.api(201, "POST", "/api/v1/departments", h.admin, map[string]string{"code": "PSYC", "name": "精神科"})
	ids["department.unrestrict"] = approvalOf(h.api(202, "PUT", "/api/v1/departments/PSYC/restricted", h.admin,
		map[string]any{"restricted": false, "reason": "科室合并后不再单独保护"}))
	ids["careteam.add"] = approvalOf(h.api(202, "POST", "/api/v1/patients/"+h.patientID+"/care-team", h.enrolAPI("liuyang"),
		map[string]string{"user_id": h.users["lina"], "reason": "神经内科会诊"}))
	return ids
}

// rowOf is the grid row holding the request's sentence.
func rowOf(body, id string) string {
	i := strings.Index(body, `id="what-`+id+`"`)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(body[:i], "<tr")
	end := strings.Index(body[i:], "</tr>")
	return body[start : i+end]
}

func TestApprovalsReadAsDecisions(t *testing.T) {
	h := newHospital(t)
	ids := fileRequests(t, h)

	// The security officer: every kind in words, names not ids, the
	// patient hidden (no relation), the default reason in Chinese.
	sec := h.browser("zh-CN")
	sec.signIn("security", securityPassword)
	inbox := sec.get("/approvals")
	if inbox.status != 200 {
		t.Fatalf("inbox: %d", inbox.status)
	}
	for kind, want := range map[string][]string{
		"role.grant":             {"授予 孙丽“质控审计员”角色", "申请人 系统管理员", "创建用户时一并申请"},
		"user.password_reset":    {"重置 张伟（心内科）的密码", "本人遗忘密码，已核实身份", "信息安全专员或心内科主任"},
		"user.department_change": {"将 张伟（心内科）调至神经内科", "申请调整科室", "信息安全专员或神经内科主任"},
		"apikey.create":          {"启用接口密钥“lis”，权限：检索患者、书写病历（仅检验报告）；限心内科", "检验结果回传"},
		"department.unrestrict":  {"解除精神科的受限病历保护", "科室合并后不再单独保护"},
		"careteam.add":           {"将 李娜（神经内科）加入患者 某患者（姓名不向您显示）的诊疗组，不限期", "申请人 刘洋（心内科）"},
	} {
		row := rowOf(inbox.body, ids[kind])
		if row == "" {
			t.Errorf("%s is not in the security officer's inbox", kind)
			continue
		}
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("%s reads %q, lacking %q", kind, visible(row), w)
			}
		}
		if !strings.Contains(row, `action="/approvals/`+ids[kind]+`/approve"`) {
			t.Errorf("%s: the security officer is not offered the decision", kind)
		}
	}
	// The grant is the head of cardiology's alone.
	if rowOf(inbox.body, ids["access.grant"]) != "" {
		t.Error("the security officer sees cardiology's access grant")
	}
	if strings.Contains(inbox.body, h.patientName) {
		t.Error("the security officer sees the patient's name")
	}
	checkWords(t, "/approvals", inbox.body)
	all := sec.get("/approvals?status=all")
	checkWords(t, "/approvals?status=all", all.body)

	// In English.
	sec.lang = "en"
	en := sec.get("/approvals")
	for _, w := range []string{"Grant 孙丽 the role Quality auditor", "Move 张伟 (心内科) to 神经内科",
		"Lift the restriction on the records of 精神科", "Requested when the user was created"} {
		if !strings.Contains(en.body, w) {
			t.Errorf("the English inbox lacks %q", w)
		}
	}

	// The head of cardiology: the grant to cardiology's records names the
	// patient (a read of the patient, logged as one); the care-team
	// request they asked for can be withdrawn, not decided.
	head := h.browser("zh-CN")
	head.signIn("liuyang", staffPassword)
	hb := head.get("/approvals")
	grant := rowOf(hb.body, ids["access.grant"])
	for _, w := range []string{"准许 李娜（神经内科）查阅患者 欧阳娜娜（病案号尾号 0123）在心内科的病历", "会诊需要查阅心内科病历", "（2 天）",
		`action="/approvals/` + ids["access.grant"] + `/approve"`} {
		if !strings.Contains(grant, w) {
			t.Errorf("the head's grant reads %q, lacking %q", visible(grant), w)
		}
	}
	care := rowOf(hb.body, ids["careteam.add"])
	if !strings.Contains(care, "欧阳娜娜") || strings.Contains(care, "/approve\"") || !strings.Contains(care, `action="/approvals/`+ids["careteam.add"]+`/cancel"`) {
		t.Errorf("the head's own care-team request: %s", visible(care))
	}
	if n := len(h.api(200, "GET", "/api/v1/audit/search?actor=liuyang&action=patient.read", h.security, nil)["items"].([]any)); n == 0 {
		t.Error("the head's inbox named the patient without a logged read")
	}
	// The doctor who asked for the grant: withdraw, not decide, and the
	// patient not read (no refused read to count against them).
	lina := h.browser("zh-CN")
	lina.signIn("lina", staffPassword)
	lb := lina.get("/approvals")
	mine := rowOf(lb.body, ids["access.grant"])
	if strings.Contains(mine, "/approve\"") || !strings.Contains(mine, ">撤回<") || !strings.Contains(mine, "某患者") {
		t.Errorf("lina's own request: %s", visible(mine))
	}
	if strings.Contains(lb.body, "待我审批") {
		t.Error("a doctor is offered requests to decide")
	}
	entries := h.api(200, "GET", "/api/v1/audit/search?actor=lina&action=patient.read", h.security, nil)["items"].([]any)
	if len(entries) != 0 {
		t.Errorf("lina's inbox read the patient: %v", entries)
	}

	// Filters: by kind, by department, the caller's own.
	if p := sec.get("/approvals?kind=user.password_reset"); rowOf(p.body, ids["user.password_reset"]) == "" ||
		rowOf(p.body, ids["role.grant"]) != "" {
		t.Error("the kind filter")
	}
	sec.lang = "zh-CN"
	if p := sec.get("/approvals?department=NEUR"); rowOf(p.body, ids["user.department_change"]) == "" ||
		rowOf(p.body, ids["user.password_reset"]) != "" {
		t.Errorf("the department filter: %s", visible(p.body))
	}
	if p := lina.get("/approvals?who=mine"); rowOf(p.body, ids["access.grant"]) == "" {
		t.Error("the requester's own requests")
	}

	// Refusing without a note: the message, the row marked, the others kept.
	refused := sec.post("/approvals/"+ids["apikey.create"]+"/refuse", inbox, url.Values{"note": {""}})
	if refused.status != 422 || !strings.Contains(refused.body, "拒绝申请时须在“审批意见”中写明理由") ||
		!strings.Contains(rowOf(refused.body, ids["apikey.create"]), `class="failed"`) ||
		rowOf(refused.body, ids["role.grant"]) == "" || strings.Contains(refused.body, `href="/approvals/`+ids["apikey.create"]+`/refuse?`) {
		t.Fatalf("refusing without a note: %d %s", refused.status, visible(refused.body))
	}
	if p := sec.post("/approvals/"+ids["apikey.create"]+"/refuse", inbox, url.Values{"note": {"范围过大"}}); p.status != 200 ||
		!strings.Contains(p.body, "已拒绝") {
		t.Fatalf("refuse: %d", p.status)
	}
	decided := sec.get("/approvals?status=refused")
	if row := rowOf(decided.body, ids["apikey.create"]); !strings.Contains(row, "安全管理员于") || !strings.Contains(row, "拒绝：范围过大") {
		t.Errorf("the refused request: %s", visible(row))
	}

	// Withdrawing one's own request, from the inbox.
	admin := h.browser("zh-CN")
	admin.signIn("admin", adminPassword)
	ab := admin.get("/approvals")
	row := rowOf(ab.body, ids["user.department_change"])
	if strings.Contains(row, "/approve\"") || !strings.Contains(row, "/cancel\"") {
		t.Fatalf("the administrator's own request: %s", visible(row))
	}
	if p := admin.post("/approvals/"+ids["user.department_change"]+"/cancel", ab, nil); p.status != 200 || !strings.Contains(p.body, "申请已撤回") {
		t.Fatalf("withdraw: %d", p.status)
	}
	if a := h.api(200, "GET", "/api/v1/approvals/"+ids["user.department_change"], h.admin, nil); a["status"] != "cancelled" {
		t.Fatalf("withdrawn request: %v", a["status"])
	}
	// Nobody withdraws another's request.
	if p := sec.post("/approvals/"+ids["role.grant"]+"/cancel", inbox, nil); p.status == 200 {
		t.Fatal("the security officer withdrew the administrator's request")
	}
}

// TestNoButtonThatRefuses: a department head the administrator created is
// no second person to the administrator; their inbox shows the request to
// their department but no button the policy would refuse.
func TestNoButtonThatRefuses(t *testing.T) {
	h := newHospital(t)
	out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": "xuming", "display_name": "徐明",
		"department": "CARD", "roles": []string{"researcher"}, "password": staffPassword})
	a := h.api(202, "POST", "/api/v1/users/"+out["id"].(string)+"/roles", h.admin, map[string]string{"role": "doctor",
		"reason": "转岗临床"})["approval"].(map[string]any)["id"].(string)
	head := h.browser("zh-CN")
	head.signIn("liuyang", staffPassword)
	p := head.get("/approvals")
	row := rowOf(p.body, a)
	if row == "" || strings.Contains(row, "/approve\"") || strings.Contains(row, "/cancel\"") {
		t.Fatalf("the puppet head's row: %s", visible(row))
	}
	if p := head.post("/approvals/"+a+"/approve", p, url.Values{"note": {"同意"}}); p.status != 403 {
		t.Fatalf("the puppet approved: %d", p.status)
	}
	sec := h.browser("zh-CN")
	sec.signIn("security", securityPassword)
	if row := rowOf(sec.get("/approvals").body, a); !strings.Contains(row, "/approve\"") {
		t.Fatalf("the security officer's row: %s", visible(row))
	}
}

// TestUserAdministration: the console does what the API does, to others'
// accounts, asking for a reason where a second person decides.
func TestUserAdministration(t *testing.T) {
	h := newHospital(t)
	admin := h.browser("zh-CN")
	admin.signIn("admin", adminPassword)
	z := "/admin/users/" + h.users["zhangwei"]
	page := admin.get(z)
	if page.status != 200 || !strings.Contains(page.body, "须提交双人审批") || !strings.Contains(page.body, `id="role-form"`) {
		t.Fatalf("zhangwei's page: %d", page.status)
	}
	if p := admin.post(z+"/roles", page, url.Values{"role": {"dept_head"}}); p.status != 422 || !strings.Contains(p.body, "请填写理由") {
		t.Fatalf("a role without a reason: %d", p.status)
	}
	if p := admin.post(z+"/roles", page, url.Values{"role": {"dept_head"}, "reason": {"拟任副主任"}}); p.status != 200 ||
		!strings.Contains(p.body, "已提交授予角色的双人审批申请") || !strings.Contains(p.body, "授予 张伟（心内科）“科室主任”角色") {
		t.Fatalf("a role: %d", p.status)
	}
	if p := admin.post(z+"/roles", page, url.Values{"role": {"dept_head"}, "reason": {"拟任副主任"}}); p.status != 422 ||
		!strings.Contains(p.body, "同样的申请正在等待审批") {
		t.Fatalf("the same role twice: %d", p.status)
	}
	if p := admin.post(z+"/department", page, url.Values{"department": {"NEUR"}, "reason": {"支援神经内科"}}); p.status != 200 ||
		!strings.Contains(p.body, "已提交调整科室的双人审批申请") || !strings.Contains(p.body, "将 张伟（心内科）调至神经内科") {
		t.Fatalf("a move: %d", p.status)
	}
	reset := admin.post(z+"/password", page, url.Values{"reason": {"本人遗忘密码"}})
	half := between(reset.body, `<code class="secret">`, `</code>`)
	if reset.status != 200 || len(half) != 10 || !strings.Contains(reset.body, "前一半（仅显示这一次）") {
		t.Fatalf("a reset: %d %q", reset.status, half)
	}
	if strings.Contains(admin.get(z).body, half) {
		t.Fatal("the requester's half is shown twice")
	}
	// zhangwei never chose a password: a second factor's reset is refused.
	if p := admin.post(z+"/totp", page, url.Values{"reason": {"手机丢失"}}); p.status != 422 || !strings.Contains(p.body, "请改为重置密码") {
		t.Fatalf("a second factor: %d", p.status)
	}
	if p := admin.post(z+"/unlock", page, nil); p.status != 422 || !strings.Contains(p.body, "该用户当前未被锁定") {
		t.Fatalf("unlocking the unlocked: %d", p.status)
	}

	// An account that reaches nothing changes at once.
	x := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": "xuming", "display_name": "徐明",
		"department": "CARD", "roles": []string{"researcher"}, "password": staffPassword})["id"].(string)
	xp := admin.get("/admin/users/" + x)
	if !strings.Contains(xp.body, "立即生效") || !strings.Contains(xp.body, `id="p-password"`) {
		t.Fatal("the researcher's page does not offer a direct reset")
	}
	if p := admin.post("/admin/users/"+x+"/department", xp, url.Values{"department": {"NEUR"}, "reason": {"调岗"}}); p.status != 200 ||
		!strings.Contains(p.body, "科室已调整") || !strings.Contains(p.body, "徐明（神经内科）") {
		t.Fatalf("a direct move: %d", p.status)
	}
	if p := admin.post("/admin/users/"+x+"/password", xp, url.Values{"reason": {"遗忘"}, "password": {"short"}}); p.status != 422 ||
		!strings.Contains(p.body, "新密码不符合要求") {
		t.Fatalf("a weak password: %d", p.status)
	}
	if p := admin.post("/admin/users/"+x+"/password", xp, url.Values{"reason": {"遗忘"}, "password": {"Xin#Mima2026"}}); p.status != 200 ||
		!strings.Contains(p.body, "密码已重置") {
		t.Fatalf("a direct reset: %d", p.status)
	}
	if p := admin.post("/admin/users/"+x+"/roles/researcher/revoke", xp, nil); p.status != 200 || !strings.Contains(p.body, "角色已撤销") {
		t.Fatalf("revoke: %d", p.status)
	}

	// A lockout: shown in the list, found by status, lifted.
	for range 5 {
		h.api(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "wangli", "password": "Wrong#Pass2026"})
	}
	list := admin.get("/admin/users?status=locked")
	if !strings.Contains(list.body, `id="user-wangli"`) || strings.Contains(list.body, `id="user-zhangwei"`) ||
		!strings.Contains(list.body, "登录已锁定") {
		t.Fatalf("locked users: %s", visible(list.body))
	}
	wp := admin.get("/admin/users/" + h.users["wangli"])
	if p := admin.post("/admin/users/"+h.users["wangli"]+"/unlock", wp, nil); p.status != 200 || !strings.Contains(p.body, "登录锁定已解除") ||
		strings.Contains(p.body, `id="unlock-form"`) {
		t.Fatalf("unlock: %d", p.status)
	}

	// Search, department and role filters; CSV.
	if p := admin.get("/admin/users?q=" + url.QueryEscape("张伟")); !strings.Contains(p.body, `id="user-zhangwei"`) ||
		strings.Contains(p.body, `id="user-lina"`) || !strings.Contains(p.body, "共 1 条") {
		t.Errorf("search by name: %s", visible(p.body))
	}
	if p := admin.get("/admin/users?department=NEUR"); !strings.Contains(p.body, `id="user-lina"`) || strings.Contains(p.body, `id="user-zhangwei"`) {
		t.Error("the department filter")
	}
	if p := admin.get("/admin/users?role=security_officer"); !strings.Contains(p.body, `id="user-zhouqiang"`) || strings.Contains(p.body, `id="user-lina"`) {
		t.Error("the role filter")
	}
	if p := admin.get("/admin/users?format=csv&q=" + url.QueryEscape("李娜")); p.status != 200 || !strings.Contains(p.body, "姓名") ||
		!strings.Contains(p.body, "李娜,lina,神经内科,医生") {
		t.Errorf("CSV: %d %q", p.status, p.body)
	}

	// One's own account: no forms, no deactivation, even by URL.
	own := admin.get("/admin/users/" + idOf(t, h, "admin"))
	if !strings.Contains(own.body, `id="user-self"`) || strings.Contains(own.body, `id="role-form"`) || strings.Contains(own.body, "/deactivate\"") {
		t.Fatal("the administrator is offered to change their own account")
	}
	if p := admin.get("/admin/users/" + idOf(t, h, "admin") + "/deactivate"); p.status != 403 {
		t.Fatalf("the confirmation of one's own deactivation: %d", p.status)
	}
	// A security officer reads users but changes nothing.
	sec := h.browser("zh-CN")
	sec.signIn("zhouqiang", staffPassword)
	if p := sec.get(z); p.status != 200 || strings.Contains(p.body, `action="/admin/users/`) || strings.Contains(p.body, "/deactivate\"") {
		t.Fatalf("a security officer's view of a user: %d", p.status)
	}
	if p := sec.get("/admin/users"); strings.Contains(p.body, "/deactivate\"") || strings.Contains(p.body, `href="/admin/users/new"`) {
		t.Fatal("a security officer is offered to manage users")
	}
	checkWords(t, "/admin/users", admin.get("/admin/users").body)
	checkWords(t, "/admin/users/{id}", admin.get(z).body)
}

// TestDepartmentsAndRoles: departments by name, restricted in words,
// restricting at once and lifting through a request; roles' permissions
// in words.
func TestDepartmentsAndRoles(t *testing.T) {
	h := newHospital(t)
	admin := h.browser("zh-CN")
	admin.signIn("admin", adminPassword)
	list := admin.get("/admin/departments")
	if p := admin.post("/admin/departments", list, url.Values{"code": {"PSYC"}, "name": {"精神科"}}); p.status != 200 ||
		!strings.Contains(p.body, "受限") {
		t.Fatalf("psychiatry: %d", p.status)
	}
	psyc := admin.get("/admin/departments/PSYC")
	if !strings.Contains(psyc.body, `id="unrestrict-form"`) || strings.Contains(psyc.body, `id="restrict-form"`) {
		t.Fatalf("psychiatry's page: %s", visible(psyc.body))
	}
	if p := admin.post("/admin/departments/PSYC/unrestrict", psyc, nil); p.status != 422 || !strings.Contains(p.body, "请填写理由") {
		t.Fatalf("lifting without a reason: %d", p.status)
	}
	if p := admin.post("/admin/departments/PSYC/unrestrict", psyc, url.Values{"reason": {"科室撤并"}}); p.status != 200 ||
		!strings.Contains(p.body, "解除受限的申请已提交") || !strings.Contains(p.body, "受限（解除申请待审批）") {
		t.Fatalf("lifting: %d", p.status)
	}
	if p := admin.get("/admin/departments/PSYC"); !strings.Contains(p.body, `id="lifting"`) || strings.Contains(p.body, `id="unrestrict-form"`) {
		t.Fatal("the pending lift is not shown")
	}
	neur := admin.get("/admin/departments/NEUR")
	if p := admin.post("/admin/departments/NEUR/restrict", neur, nil); p.status != 200 || !strings.Contains(p.body, "科室已设为受限") {
		t.Fatalf("restrict: %d", p.status)
	}
	restricted := h.api(200, "GET", "/api/v1/departments", h.admin, nil)["items"].([]any)
	for _, d := range restricted {
		m := d.(map[string]any)
		if (m["code"] == "NEUR" || m["code"] == "PSYC") != (m["restricted"] == true) {
			t.Errorf("%v restricted: %v", m["code"], m["restricted"])
		}
	}
	if p := admin.get("/admin/departments/ORTH"); p.status != 404 {
		t.Fatalf("an unknown department: %d", p.status)
	}
	checkWords(t, "/admin/departments/{code}", admin.get("/admin/departments/PSYC").body)

	roles := admin.get("/admin/roles")
	for _, w := range []string{"书写病历（仅护理记录）", "审批本科室的双人审批申请", "全院范围（受限病历除外）", "信息安全专员或该用户所在科室的主任"} {
		if !strings.Contains(roles.body, w) {
			t.Errorf("the roles page lacks %q", w)
		}
	}
	checkWords(t, "/admin/roles", roles.body)
	admin.lang = "en"
	if p := admin.get("/admin/roles"); !strings.Contains(p.body, "Write records (Nursing note only)") {
		t.Error("the English roles page")
	}
}

// checkWords fails on what the crawler (crawl_test.go) refuses on a
// Chinese page: codes, English, Go durations.
func checkWords(t *testing.T, page, body string) {
	t.Helper()
	text := allowedWords.ReplaceAllString(visibleText(body), " ")
	for _, r := range rawIdentifier {
		for _, m := range r.pattern.FindAllString(text, -1) {
			t.Errorf("%s shows %s: %q", page, r.what, m)
		}
	}
}

// visible is a page's text, for messages.
func visible(s string) string {
	return strings.Join(strings.Fields(tagPattern.ReplaceAllString(s, " ")), " ")
}

// idOf is the id of a username.
func idOf(t *testing.T, h *hospital, username string) string {
	t.Helper()
	for _, u := range h.api(200, "GET", "/api/v1/users?limit=100", h.admin, nil)["items"].([]any) {
		if m := u.(map[string]any); m["username"] == username {
			return m["id"].(string)
		}
	}
	t.Fatalf("no user %s", username)
	return ""
}

// TestNamesOfNewcomers: a request about someone made a moment ago through
// the API names them, though the console's directory was read before.
func TestNamesOfNewcomers(t *testing.T) {
	h := newHospital(t)
	sec := h.browser("zh-CN")
	sec.signIn("security", securityPassword)
	sec.get("/approvals")
	out := h.api(201, "POST", "/api/v1/users", h.admin, map[string]any{"username": "sunli", "display_name": "孙丽",
		"roles": []string{"auditor"}, "password": staffPassword})
	id := out["pending_approvals"].([]any)[0].(map[string]any)["id"].(string)
	if row := rowOf(sec.get("/approvals").body, id); !strings.Contains(row, "授予 孙丽“质控审计员”角色") {
		t.Fatalf("the newcomer's request: %s", visible(row))
	}
	if p := sec.get("/admin/users/" + out["id"].(string)); !strings.Contains(p.body, "用户：孙丽") {
		t.Fatalf("the newcomer's page: %s", visible(p.body))
	}
}
