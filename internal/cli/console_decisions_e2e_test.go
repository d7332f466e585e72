package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleDecisionsInBrowser walks the four-eyes requests and the
// administration of accounts in headless Chromium, in Simplified Chinese
// and in English, on the demo hospital (issue 10: approvals that read like
// decisions, safer administration):
//
//   - the administrator creates a nurse from the console — the role is a
//     four-eyes request, filed with the administrator's reason — and reads
//     the pending request in words, on the user's page and in the inbox,
//     where they see 撤回 and not 批准, and withdraw a second request;
//   - the administrator resets a doctor's password and is shown their half
//     once; the security officer approves the nurse's role from the inbox,
//     reading the sentence with the names, and the reset, and is shown the
//     other half once; the two halves sign the doctor in;
//   - the administrator deactivates a user after the confirmation page, is
//     offered no 停用 on their own row, and lifts a sign-in lockout.
//
// Screenshots go to MEDGUARD_SCREENSHOTS (default a temporary directory).
func TestConsoleDecisionsInBrowser(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	chromium := chromiumPath(t)
	h := startDemo(t, 120, 500)
	shots := os.Getenv("MEDGUARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) { decisionsInBrowser(t, h, chromium, lang, shots) })
	}
}

func decisionsInBrowser(t *testing.T, h *demoHospital, chromium, lang, shots string) {
	const password = "Yiyuan#Ceshi2026"
	zh := lang == "zh-CN"
	sfx := map[bool]string{true: "zh", false: "en"}[zh]
	say := func(zhText, enText string) string {
		if zh {
			return zhText
		}
		return enText
	}
	dept := h.Department["doctor"]
	var deptName string
	for _, d := range h.json(200, "GET", "/api/v1/departments", h.token("admin"), nil)["items"].([]any) {
		if m := d.(map[string]any); m["code"] == dept {
			deptName = m["name"].(string)
		}
	}
	// The people of this walk, made through the API: a doctor whose
	// password is reset, a researcher who leaves, one who is locked out.
	doctor := "wangfang-" + sfx
	doctorID := h.staff(doctor, "王芳", dept, "doctor", password)
	leaver := "zhoujie-" + sfx
	leaverID := h.staff(leaver, "周杰", dept, "researcher", password)
	locked := "sunmei-" + sfx
	lockedID := h.staff(locked, "孙梅", dept, "researcher", password)
	for range 5 {
		h.do("POST", "/api/v1/auth/login", "", map[string]string{"username": locked, "password": "Wrong#Password1"})
	}
	if st, _, _ := h.do("POST", "/api/v1/auth/login", "", map[string]string{"username": locked, "password": password}); st != 423 {
		t.Fatalf("%s is not locked out: %d", locked, st)
	}

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, lang+"-decisions-"+name+".png"), png, 0o644)
		})
	}
	count := func(b *browser, css string) int {
		t.Helper()
		nodes, err := chromedp.Run(b.ctx, chromedp.Nodes(chromedp.CSS(css), chromedp.AtLeast(0)))
		if err != nil {
			t.Fatalf("%s: %v", css, err)
		}
		return len(nodes)
	}
	text := func(b *browser, css string) string {
		t.Helper()
		return b.get(css, chromedp.Text(chromedp.CSS(css)))
	}
	pendingOf := func(kind, subject string) string {
		t.Helper()
		for _, a := range h.json(200, "GET", "/api/v1/approvals?status=pending", h.token("admin"), nil)["items"].([]any) {
			m := a.(map[string]any)
			if m["kind"] == kind && m["subject_user_id"] == subject {
				return m["id"].(string)
			}
		}
		t.Fatalf("no pending %s for %s", kind, subject)
		return ""
	}

	admin := openBrowser(t, h.server, chromium, lang, 900, 5*time.Minute)
	admin.signIn("admin", h.password("admin"))

	// The administrator creates a nurse: the role waits for a second
	// person, with the reason given, and the user's page says so in words.
	nurse := "zhaoxue-" + sfx
	reason := say("新入职护士，分配至"+deptName, "New nurse for "+deptName)
	admin.run("create a nurse",
		chromedp.Click(chromedp.CSS(`a[href="/admin/users"]`)),
		chromedp.Click(chromedp.ID("new-user")),
		chromedp.WaitVisible(chromedp.ID("user-form")),
		chromedp.SendKeys(chromedp.ID("u-username"), nurse),
		chromedp.SendKeys(chromedp.ID("u-name"), "赵雪"),
		chromedp.SetValue(chromedp.ID("u-dept"), dept),
		chromedp.Click(chromedp.CSS(`input[name=roles][value=nurse]`)),
		chromedp.SendKeys(chromedp.ID("u-reason"), reason),
		chromedp.SendKeys(chromedp.ID("u-password"), password),
		shot("create"),
		chromedp.Click(chromedp.ID("create-user")),
		chromedp.WaitVisible(chromedp.ID("user-pending")),
		shot("created"),
	)
	nurseID := strings.TrimPrefix(admin.get("location", chromedp.Location()), h.base+"/admin/users/")
	nurseID = strings.SplitN(nurseID, "?", 2)[0]
	grant := say(fmt.Sprintf("授予 赵雪（%s）“护士”角色", deptName), fmt.Sprintf("Grant 赵雪 (%s) the role Nurse", deptName))
	if got := text(admin, "#user-pending"); !strings.Contains(got, grant) || !strings.Contains(got, reason) {
		t.Fatalf("the pending request reads %q, want %q and the reason", got, grant)
	}
	roleRequest := pendingOf("role.grant", nurseID)

	// In the inbox the requester reads the same sentence and may withdraw,
	// not decide.
	admin.run("the requester's inbox",
		chromedp.Click(chromedp.CSS(`a[href="/approvals"]`)),
		chromedp.WaitVisible(chromedp.ID("what-"+roleRequest)),
		shot("requester"),
	)
	if got := text(admin, "#what-"+roleRequest); !strings.Contains(got, grant) {
		t.Fatalf("the inbox reads %q, want %q", got, grant)
	}
	if n := count(admin, `form[action="/approvals/`+roleRequest+`/approve"]`); n != 0 {
		t.Fatal("the requester is offered to approve their own request")
	}
	if n := count(admin, `form[action="/approvals/`+roleRequest+`/cancel"]`); n != 1 {
		t.Fatal("the requester is not offered to withdraw their request")
	}
	if got := text(admin, `form[action="/approvals/`+roleRequest+`/cancel"] button`); got != say("撤回", "Withdraw") {
		t.Fatalf("the withdraw button reads %q", got)
	}

	// A second request, for the doctor, withdrawn from the inbox.
	admin.run("ask for a role and withdraw it",
		chromedp.Navigate(h.base+"/admin/users/"+doctorID),
		chromedp.WaitVisible(chromedp.ID("role-form")),
		chromedp.SetValue(chromedp.ID("r-role"), "dept_head"),
		chromedp.SendKeys(chromedp.ID("r-reason"), say("拟任科室主任", "To head the department")),
		chromedp.Click(chromedp.ID("request-role")),
		chromedp.WaitVisible(chromedp.ID("user-pending")),
	)
	headRequest := pendingOf("role.grant", doctorID)
	admin.run("withdraw",
		chromedp.Navigate(h.base+"/approvals?who=mine"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/approvals/`+headRequest+`/cancel"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/approvals/`+headRequest+`/cancel"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if a := h.json(200, "GET", "/api/v1/approvals/"+headRequest, h.token("admin"), nil); a["status"] != "cancelled" {
		t.Fatalf("the withdrawn request is %v", a["status"])
	}

	// The administrator resets the doctor's password: their half, once.
	admin.run("reset a password",
		chromedp.Navigate(h.base+"/admin/users/"+doctorID),
		chromedp.WaitVisible(chromedp.ID("password-form")),
		chromedp.SendKeys(chromedp.ID("p-reason"), say("本人遗忘密码，已核实身份", "Forgot the password; identity checked")),
		chromedp.Click(chromedp.ID("reset-password")),
		chromedp.WaitVisible(chromedp.ID("secret-half")),
		shot("reset-requested"),
	)
	first := strings.TrimSpace(text(admin, "#secret-half code"))
	if len(first) != 10 {
		t.Fatalf("the requester's half %q", first)
	}
	admin.run("the half is shown once", chromedp.Navigate(h.base+"/admin/users/"+doctorID), chromedp.WaitVisible(chromedp.ID("user-facts")))
	if count(admin, "#secret-half") != 0 {
		t.Fatal("the requester's half is shown again")
	}
	resetRequest := pendingOf("user.password_reset", doctorID)

	// The security officer approves the nurse's role, reading who asked
	// for what and why, then the reset: the other half, once.
	officer := openBrowser(t, h.server, chromium, lang, 900, 5*time.Minute)
	officer.signIn("security", h.password("security"))
	officer.run("the officer's inbox",
		chromedp.Click(chromedp.CSS(`a[href="/approvals"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/approvals/`+roleRequest+`/approve"]`)),
		shot("inbox"),
	)
	row := text(officer, "#what-"+roleRequest) + " " + officer.get("row", chromedp.Text(chromedp.CSS(`#approvals tr:has(#what-`+roleRequest+`)`)))
	for _, want := range []string{grant, reason, say("系统管理员", "系统管理员")} {
		if !strings.Contains(row, want) {
			t.Fatalf("the officer reads %q, want %q", row, want)
		}
	}
	if strings.Contains(row, "{") || strings.Contains(row, "user_id") || strings.Contains(row, "role.grant") {
		t.Fatalf("the request shows its code: %q", row)
	}
	officer.run("approve the role",
		chromedp.SendKeys(chromedp.CSS(`form[action="/approvals/`+roleRequest+`/approve"] input[name=note]`), say("同意", "Agreed")),
		chromedp.Click(chromedp.CSS(`form[action="/approvals/`+roleRequest+`/approve"] button.approve`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if a := h.json(200, "GET", "/api/v1/approvals/"+roleRequest, h.token("admin"), nil); a["status"] != "approved" {
		t.Fatalf("the role request is %v", a["status"])
	}
	// Refusing needs a note: the page says so and keeps the other rows.
	officer.run("refuse without a note",
		chromedp.WaitVisible(chromedp.CSS(`form[action="/approvals/`+resetRequest+`/approve"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/approvals/`+resetRequest+`/approve"] button.refuse`)),
		chromedp.WaitVisible(chromedp.ID("approvals-error")),
	)
	officer.run("approve the reset",
		chromedp.SendKeys(chromedp.CSS(`form[action="/approvals/`+resetRequest+`/approve"] input[name=note]`), say("已电话核实", "Checked by phone")),
		chromedp.Click(chromedp.CSS(`form[action="/approvals/`+resetRequest+`/approve"] button.approve`)),
		chromedp.WaitVisible(chromedp.ID("secret-half")),
		shot("reset-approved"),
	)
	second := strings.TrimSpace(text(officer, "#secret-half code"))
	if len(second) != 10 || second == first {
		t.Fatalf("the approver's half %q", second)
	}
	if got := text(officer, "#secret-half"); !strings.Contains(got, "王芳") {
		t.Fatalf("the approver's half does not say whose it is: %q", got)
	}
	officer.run("the half is shown once", chromedp.Navigate(h.base+"/approvals"), chromedp.WaitVisible(chromedp.ID("approvals-summary")))
	if count(officer, "#secret-half") != 0 {
		t.Fatal("the approver's half is shown again")
	}
	in := h.json(200, "POST", "/api/v1/auth/login", "", map[string]string{"username": doctor, "password": first + "-" + second})
	if in["password_change_required"] != true || in["mfa_enrollment_required"] != true {
		t.Fatalf("the reset doctor's sign-in: %v", in)
	}
	officer.run("the decided requests",
		chromedp.Navigate(h.base+"/approvals?status=all"),
		chromedp.WaitVisible(chromedp.ID("approvals")),
		shot("decided"),
	)

	// Deactivation asks first; nobody is offered to deactivate themselves.
	admin.run("find the leaver",
		chromedp.Navigate(h.base+"/admin/users"),
		chromedp.WaitVisible(chromedp.ID("f-q")),
		chromedp.SendKeys(chromedp.ID("f-q"), leaver),
		chromedp.Click(chromedp.ID("users-search")),
		chromedp.WaitVisible(chromedp.ID("user-"+leaver)),
		shot("search"),
		chromedp.Click(chromedp.CSS(`a[href="/admin/users/`+leaverID+`/deactivate"]`)),
		chromedp.WaitVisible(chromedp.ID("deactivate-confirm")),
		shot("confirm"),
	)
	if got := text(admin, "h1"); !strings.Contains(got, "周杰") {
		t.Fatalf("the confirmation asks %q", got)
	}
	if u := h.json(200, "GET", "/api/v1/users/"+leaverID, h.token("admin"), nil); u["status"] != "active" {
		t.Fatal("the confirmation page deactivated the user")
	}
	admin.run("confirm",
		chromedp.Click(chromedp.ID("confirm-deactivate")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if u := h.json(200, "GET", "/api/v1/users/"+leaverID, h.token("admin"), nil); u["status"] != "deactivated" {
		t.Fatalf("the leaver is %v", u["status"])
	}
	admin.run("the administrator's own row",
		chromedp.Navigate(h.base+"/admin/users?q=admin"),
		chromedp.WaitVisible(chromedp.ID("user-admin")),
	)
	if n := count(admin, `#users a[href$="/deactivate"]`); n != 0 {
		t.Fatalf("%d deactivate links beside the administrator's own row", n)
	}

	// A lockout, found by its status and lifted.
	admin.run("unlock",
		chromedp.Navigate(h.base+"/admin/users?status=locked"),
		chromedp.WaitVisible(chromedp.ID("user-"+locked)),
		chromedp.Click(chromedp.ID("user-"+locked)),
		chromedp.WaitVisible(chromedp.ID("unlock-form")),
		shot("locked"),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if count(admin, "#unlock-form") != 0 {
		t.Fatal("the user is still shown locked out")
	}
	if u := h.json(200, "GET", "/api/v1/users/"+lockedID, h.token("admin"), nil); u["locked_until"] != nil {
		t.Fatalf("still locked until %v", u["locked_until"])
	}
	h.json(200, "POST", "/api/v1/auth/login", "", map[string]string{"username": locked, "password": password})

	// The roles page says each role's permissions in words.
	admin.run("roles",
		chromedp.Click(chromedp.CSS(`a[href="/admin/roles"]`)),
		chromedp.WaitVisible(chromedp.ID("roles")),
		shot("roles"),
	)
	if got := text(admin, "#role-nurse"); !strings.Contains(got, say("书写病历（仅护理记录）", "Write records (Nursing note only)")) {
		t.Fatalf("the nurse's permissions read %q", got)
	}
	admin.run("departments",
		chromedp.Click(chromedp.CSS(`a[href="/admin/departments"]`)),
		chromedp.WaitVisible(chromedp.ID("departments")),
		shot("departments"),
	)
}
