package cli_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/detect"
	"medguard/internal/identity"
	"medguard/internal/partners"
	"medguard/internal/testkit"
)

// External partners over HTTPS (SPEC §8, issue 12): medical affairs
// registers a partner and links its researcher's account; an agreement is
// a four-eyes request that neither the requester nor medical affairs may
// approve, and a security officer does; an extension asked by a security
// officer is approved by another; the researcher's activity is listed
// against the scope — the directory in scope, a patient list flagged and
// refused, anything after the termination flagged — with no patient data;
// the deletion confirmation is refused while the agreement runs, needs a
// statement or a document, and is recorded once.
func TestPartnersOverHTTPS(t *testing.T) {
	s := start(t)
	admin, security := s.admin(), s.security()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"YWK", "医务科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	ids := map[string]string{}
	for _, u := range [][4]string{{"wangli", "王丽", "YWK", "medical_affairs"}, {"zhouqiang", "周强", "", "security_officer"},
		{"sunli", "孙丽", "", "auditor"}, {"liuyang", "刘洋", "", "researcher"}, {"zhangwei", "张建国", "CARD", "doctor"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	affairs, security2, auditor := s.token("wangli", staffPassword), s.token("zhouqiang", staffPassword), s.token("sunli", staffPassword)
	researcher := s.token("liuyang", staffPassword)

	// Registering: medical affairs may, a researcher may not; the
	// organisation code is unique.
	partner := map[string]string{"name": "北京协和医学院 合作课题组", "org_code": "12100000400000624D", "contact_name": "张晓明",
		"contact_phone": "010-69156114", "contact_email": "zhangxm@pumc.edu.cn"}
	rule(t, s.problem(403, "POST", "/api/v1/partners", researcher, partner), "deny.no_permission")
	p := s.json(201, "POST", "/api/v1/partners", affairs, partner)
	pid := p["id"].(string)
	if p["status"] != "none" || p["contact_name"] != "张晓明" {
		t.Fatalf("partner %v", p)
	}
	if e := s.problem(409, "POST", "/api/v1/partners", affairs, partner); e["field"] != "org_code" {
		t.Fatalf("duplicate code: %v", e)
	}
	if e := s.problem(422, "POST", "/api/v1/partners", affairs, map[string]string{"name": "某公司", "org_code": "X", "contact_name": "李四"}); e["field"] != "org_code" {
		t.Fatalf("bad code: %v", e)
	}

	// Only a researcher's account is linked, once.
	if e := s.problem(422, "POST", "/api/v1/partners/"+pid+"/accounts", affairs, map[string]string{"user_id": ids["zhangwei"]}); e["field"] != "user_id" {
		t.Fatalf("a doctor linked: %v", e)
	}
	s.json(201, "POST", "/api/v1/partners/"+pid+"/accounts", affairs, map[string]string{"user_id": ids["liuyang"]})
	s.problem(409, "POST", "/api/v1/partners/"+pid+"/accounts", affairs, map[string]string{"user_id": ids["liuyang"]})
	s.problem(404, "POST", "/api/v1/partners/06h4j9khpaef1743afn74xhkkm/accounts", affairs, map[string]string{"user_id": ids["liuyang"]})

	// The agreement: four eyes.
	ask := map[string]any{"title": "冠心病队列随访研究", "purposes": []string{"research"}, "dataset_kinds": []string{"deid_output"},
		"min_k": 5, "departments": []string{"CARD"}, "expires_at": time.Now().Add(180 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"confidentiality": "保密协议 PUMC-2026-017 第5条", "document_sha256": strings.Repeat("ab", 32), "reason": "科研合作，伦理批件 2026-伦审-031"}
	bad := map[string]any{"title": "x", "purposes": []string{"marketing"}, "dataset_kinds": []string{"deid_output"},
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "confidentiality": "第5条", "reason": "试"}
	if e := s.problem(422, "POST", "/api/v1/partners/"+pid+"/agreements", affairs, bad); e["field"] != "payload.purposes" {
		t.Fatalf("a marketing purpose: %v", e)
	}
	rule(t, s.problem(403, "POST", "/api/v1/partners/"+pid+"/agreements", researcher, ask), "deny.no_permission")
	a := s.json(202, "POST", "/api/v1/partners/"+pid+"/agreements", affairs, ask)
	aid := a["id"].(string)
	if a["kind"] != "partners.agreement" || a["status"] != "pending" {
		t.Fatalf("request %v", a)
	}
	if st := s.json(200, "GET", "/api/v1/partners/"+pid, auditor, nil); len(st["agreements"].([]any)) != 0 {
		t.Fatalf("in force before approval: %v", st)
	}
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+aid+"/approve", affairs, map[string]string{"note": "自批"}), "deny.own_request")
	if ok := s.approve(security, aid); ok["status"] != "approved" {
		t.Fatalf("approved %v", ok)
	}
	got := s.json(200, "GET", "/api/v1/partners/"+pid, auditor, nil)
	ag := got["agreements"].([]any)
	if len(ag) != 1 || got["status"] != "live" || got["live_agreements"] != float64(1) {
		t.Fatalf("partner after approval %v", got)
	}
	agreement := ag[0].(map[string]any)
	if agreement["id"] != aid || agreement["status"] != "live" || agreement["requested_by"] != "wangli" || agreement["approved_by"] != "security" ||
		agreement["deletion"] != "not_due" || agreement["min_k"] != float64(5) {
		t.Fatalf("agreement %v", agreement)
	}

	// An extension asked by a security officer: not theirs to approve.
	ext := s.json(202, "POST", "/api/v1/agreements/"+aid+"/extend", security, map[string]string{"reason": "课题延期一年",
		"expires_at": time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)})
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+ext["id"].(string)+"/approve", security, map[string]string{"note": "自批"}), "deny.own_request")
	s.approve(security2, ext["id"].(string))
	got = s.json(200, "GET", "/api/v1/partners/"+pid, auditor, nil)
	if e := got["agreements"].([]any)[0].(map[string]any); e["extended_by"] != ext["id"] || e["expires_at"] == agreement["expires_at"] {
		t.Fatalf("extended %v", e)
	}

	// The researcher at work: the directory is in scope; a patient list
	// is not.
	s.json(200, "GET", "/api/v1/departments", researcher, nil)
	s.problem(403, "GET", "/api/v1/patients", researcher, nil)
	rule(t, s.problem(403, "GET", "/api/v1/partners/"+pid+"/activity", researcher, nil), "deny.no_permission")
	if e := s.problem(422, "GET", "/api/v1/partners/"+pid+"/activity?months=13", auditor, nil); e["field"] != "months" {
		t.Fatalf("13 months: %v", e)
	}
	activity := func() (map[string]any, []map[string]any) {
		t.Helper()
		_, _, raw := s.do("GET", "/api/v1/partners/"+pid+"/activity?months=3", auditor, nil)
		if strings.Contains(string(raw), "patient_id") {
			t.Fatalf("the activity names patients: %s", raw)
		}
		act := s.json(200, "GET", "/api/v1/partners/"+pid+"/activity?months=3", auditor, nil)
		var es []map[string]any
		for _, e := range act["entries"].([]any) {
			es = append(es, e.(map[string]any))
		}
		return act, es
	}
	flagsOf := func(e map[string]any) []string {
		var out []string
		for _, f := range e["flags"].([]any) {
			out = append(out, f.(string))
		}
		return out
	}
	act, es := activity()
	if act["accounts"].([]any)[0] != "liuyang" || act["months"] != float64(3) {
		t.Fatalf("activity %v", act)
	}
	var sawLogin, sawDirectory, sawPatients bool
	for _, e := range es {
		if e["actor"] != "liuyang" {
			t.Fatalf("another's entry: %v", e)
		}
		switch e["action"] {
		case "auth.login":
			sawLogin = sawLogin || len(flagsOf(e)) == 0
		case "department.list":
			sawDirectory = len(flagsOf(e)) == 0 && e["agreement_id"] == aid
		case "patient.list":
			sawPatients = slices.Contains(flagsOf(e), "outside_scope") && slices.Contains(flagsOf(e), "refused")
		}
	}
	if !sawLogin || !sawDirectory || !sawPatients || act["flagged"].(float64) < 1 {
		t.Fatalf("login %v, directory in scope %v, patients flagged %v: %v", sawLogin, sawDirectory, sawPatients, es)
	}

	// The deletion confirmation waits for the end; the end is early.
	confirm := map[string]string{"representative": "张晓明", "statement": "本单位已于2026年删除依协议获得的全部脱敏数据及其副本。"}
	s.problem(409, "POST", "/api/v1/agreements/"+aid+"/deletion-confirmation", affairs, confirm)
	rule(t, s.problem(403, "POST", "/api/v1/agreements/"+aid+"/terminate", auditor, nil), "deny.no_permission")
	if end := s.json(200, "POST", "/api/v1/agreements/"+aid+"/terminate", affairs, nil); end["status"] != "terminated" || end["deletion"] != "due" {
		t.Fatalf("terminated %v", end)
	}
	s.problem(409, "POST", "/api/v1/agreements/"+aid+"/terminate", affairs, nil)
	s.problem(409, "POST", "/api/v1/agreements/"+aid+"/extend", affairs, map[string]string{"reason": "再续",
		"expires_at": time.Now().Add(500 * 24 * time.Hour).UTC().Format(time.RFC3339)})
	if st := s.json(200, "GET", "/api/v1/partners?status=deletion_due", auditor, nil)["items"].([]any); len(st) != 1 {
		t.Fatalf("partners with a deletion due: %v", st)
	}
	s.json(200, "GET", "/api/v1/departments", researcher, nil)
	_, es = activity()
	if e := es[0]; e["action"] != "department.list" || !slices.Contains(flagsOf(e), "after_expiry") {
		t.Fatalf("after the termination: %v", e)
	}

	// The console shows the partner in both languages: the deletion due,
	// the flagged activity, and the form to record the confirmation.
	for _, c := range []struct{ lang, want string }{{"zh-CN", "待删除确认"}, {"en", "Deletion confirmation due"}} {
		st, _, page := s.consolePage("/partners", affairs, c.lang)
		if st != 200 || !strings.Contains(page, "北京协和医学院 合作课题组") || !strings.Contains(page, c.want) {
			t.Fatalf("/partners (%s): %d %s", c.lang, st, page)
		}
	}
	st, _, page := s.consolePage("/partners/"+pid, affairs, "zh-CN")
	for _, want := range []string{"冠心病队列随访研究", "已终止", "待确认", "/agreements/" + aid + "/deletion-confirmation", "协议结束后",
		"超出范围的操作", "liuyang"} {
		if st != 200 || !strings.Contains(page, want) {
			t.Fatalf("/partners/{id} lacks %q: %d %s", want, st, page)
		}
	}
	if st, _, page := s.consolePage("/partners/"+pid, auditor, "en"); st != 200 || !strings.Contains(page, "Outside the scope") ||
		strings.Contains(page, "deletion-confirmation") {
		t.Fatalf("the auditor's page: %d %s", st, page)
	}
	if st, _, _ := s.consolePage("/partners", researcher, "zh-CN"); st != 403 {
		t.Fatalf("a researcher on /partners: %d", st)
	}

	if e := s.problem(422, "POST", "/api/v1/agreements/"+aid+"/deletion-confirmation", affairs,
		map[string]string{"representative": "张晓明"}); e["field"] != "statement" {
		t.Fatalf("a confirmation with nothing signed: %v", e)
	}
	rule(t, s.problem(403, "POST", "/api/v1/agreements/"+aid+"/deletion-confirmation", researcher, confirm), "deny.no_permission")
	c := s.json(201, "POST", "/api/v1/agreements/"+aid+"/deletion-confirmation", affairs, confirm)
	if c["representative"] != "张晓明" || c["received_by"] != "wangli" {
		t.Fatalf("confirmation %v", c)
	}
	s.problem(409, "POST", "/api/v1/agreements/"+aid+"/deletion-confirmation", affairs, confirm)
	got = s.json(200, "GET", "/api/v1/partners/"+pid, security, nil)
	if e := got["agreements"].([]any)[0].(map[string]any); got["status"] != "ended" || e["deletion"] != "confirmed" {
		t.Fatalf("after the confirmation %v", got)
	}
	s.problem(404, "POST", "/api/v1/agreements/06h4j9khpaef1743afn74xhkkm/deletion-confirmation", affairs, confirm)
}

// An agreement's period ends by itself: a partner's researcher receives
// outputs within the scope while it is live and nothing after; internal
// staff are not partners; the deletion confirmation overdue raises one
// alert, which the recorded confirmation resolves — driven through the
// app's services on a test clock (the real server's clock cannot be
// moved).
func TestPartnerAgreementEndsAndDeletionOverdue(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	app := openApp(t, clock)
	call := func(name, dept string, roles ...string) *medguard.Call {
		return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: name,
			Department: dept, Roles: roles}, IP: "10.9.0.7"}
	}
	admin := call("admin", "", "admin")
	if _, err := app.Identity.CreateDepartment(ctx, admin, "CARD", "心内科"); err != nil {
		t.Fatal(err)
	}
	user := func(name, display, role string) *medguard.Call {
		t.Helper()
		u, _, err := app.Identity.CreateUser(ctx, admin, identity.NewUser{Username: name, DisplayName: display, Roles: []string{role},
			Password: staffPassword})
		if err != nil {
			t.Fatal(err)
		}
		c := call(name, "", role)
		c.Actor.ID = u.ID
		return c
	}
	affairs, security, auditor := call("wangli", "", "medical_affairs"), call("zhouqiang", "", "security_officer"), call("sunli", "", "auditor")
	outsider, insider := user("liuyang", "刘洋", "researcher"), user("zhaomin", "赵敏", "researcher")

	p, err := app.Partners.CreatePartner(ctx, affairs, partners.NewPartner{Name: "北京协和医学院 合作课题组", OrgCode: "12100000400000624D",
		ContactName: "张晓明"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Partners.LinkAccount(ctx, affairs, p.ID, partners.LinkAccount{UserID: outsider.Actor.ID}); err != nil {
		t.Fatal(err)
	}
	// Before any agreement: nothing.
	if _, err := app.Partners.CheckJob(ctx, outsider.Actor.ID, "research", clock.Now()); !errors.Is(err, partners.ErrNoAgreement) {
		t.Fatalf("without an agreement: %v", err)
	}
	ask, err := partners.NewAgreementRequest(p.ID, partners.NewAgreement{Title: "冠心病队列随访研究", Purposes: []string{"research"},
		DatasetKinds: []string{"deid_output"}, Departments: []string{"CARD"}, ExpiresAt: clock.Now().Add(90 * 24 * time.Hour),
		Confidentiality: "保密协议第5条", Reason: "科研合作"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := app.Approvals.Request(ctx, affairs, ask)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Approvals.Approve(ctx, affairs, req.ID, "自批"); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("medical affairs approving: %v", err)
	}
	if _, err := app.Approvals.Approve(ctx, security, req.ID, "同意"); err != nil {
		t.Fatal(err)
	}

	// Live: within the scope only; staff are not partners.
	if id, err := app.Partners.CheckJob(ctx, outsider.Actor.ID, "research", clock.Now()); err != nil || id != req.ID {
		t.Fatalf("while live: %q %v", id, err)
	}
	if _, err := app.Partners.CheckJob(ctx, outsider.Actor.ID, "operations", clock.Now()); !errors.Is(err, partners.ErrOutsideScope) {
		t.Fatalf("another purpose: %v", err)
	}
	for _, out := range []partners.Output{{Purpose: "research", K: 3}, {Purpose: "research", DatasetKind: partners.Synthetic},
		{Purpose: "research", Departments: []string{"CARD", "PSYC"}}} {
		if _, err := app.Partners.CheckOutput(ctx, outsider.Actor.ID, out, clock.Now()); !errors.Is(err, partners.ErrOutsideScope) {
			t.Fatalf("%+v: %v", out, err)
		}
	}
	if id, err := app.Partners.CheckOutput(ctx, outsider.Actor.ID, partners.Output{Purpose: "research", K: 7,
		Departments: []string{"CARD"}}, clock.Now()); err != nil || id != req.ID {
		t.Fatalf("an output within the scope: %q %v", id, err)
	}
	if id, err := app.Partners.CheckJob(ctx, insider.Actor.ID, "research", clock.Now()); err != nil || id != "" {
		t.Fatalf("a member of staff: %q %v", id, err)
	}

	// Expired: nothing more; a deletion confirmation due in 30 days.
	clock.Advance(90 * 24 * time.Hour)
	if _, err := app.Partners.CheckJob(ctx, outsider.Actor.ID, "research", clock.Now()); !errors.Is(err, partners.ErrNoAgreement) ||
		!medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("after the expiry: %v", err)
	}
	if _, err := app.Partners.ListPartners(ctx, outsider, ""); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("a researcher listing partners: %v", err)
	}
	if fresh, err := app.Partners.CheckOverdue(ctx); err != nil || len(fresh) != 0 {
		t.Fatalf("before the confirmation is due: %v %v", fresh, err)
	}
	clock.Advance(31 * 24 * time.Hour)
	for range 2 {
		if _, err := app.Partners.CheckOverdue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	alerts, _, err := app.Detect.Alerts(ctx, security, detect.AlertQuery{Rule: partners.DeletionOverdueRule, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Key != req.ID || alerts[0].Status != detect.StatusNew {
		t.Fatalf("overdue alerts %+v", alerts)
	}
	if ps, err := app.Partners.ListPartners(ctx, auditor, partners.PartnerDeletionOverdue); err != nil || len(ps) != 1 {
		t.Fatalf("partners with a confirmation overdue: %+v %v", ps, err)
	}

	// The inspection: the refused listing after the expiry is flagged.
	act, err := app.Partners.Activity(ctx, auditor, p.ID, 6)
	if err != nil {
		t.Fatal(err)
	}
	flagged := false
	for _, e := range act.Entries {
		flagged = flagged || e.Action == "partner.list" && slices.Contains(e.Flags, partners.FlagAfterExpiry) &&
			slices.Contains(e.Flags, partners.FlagOutsideScope) && slices.Contains(e.Flags, partners.FlagRefused)
	}
	if !flagged || act.Flags[partners.FlagAfterExpiry] == 0 {
		t.Fatalf("activity %+v", act)
	}

	// The confirmation recorded resolves the alert.
	if _, err := app.Partners.ConfirmDeletion(ctx, affairs, req.ID, partners.NewDeletionConfirmation{Representative: "张晓明",
		DocumentSHA256: strings.Repeat("0f", 32), DeletedAt: clock.Now().Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	alerts, _, err = app.Detect.Alerts(ctx, security, detect.AlertQuery{Rule: partners.DeletionOverdueRule, Limit: 100})
	if err != nil || len(alerts) != 1 || alerts[0].Status == detect.StatusNew {
		t.Fatalf("after the confirmation: %+v %v", alerts, err)
	}
	if fresh, err := app.Partners.CheckOverdue(ctx); err != nil || len(fresh) != 0 {
		t.Fatalf("announced again: %v %v", fresh, err)
	}
	if ps, err := app.Partners.ListPartners(ctx, auditor, ""); err != nil || ps[0].Status != partners.PartnerEnded {
		t.Fatalf("partners %+v %v", ps, err)
	}
}
