package rectify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/medguardtest"
	"medguard/internal/policy"
	"medguard/internal/rectify"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

type fixture struct {
	clock *testkit.Clock
	db    *storage.DB
	log   *audit.Log
	svc   *rectify.Service
	id    *identity.Service
	calls map[string]*medguard.Call
}

// start is 31 December 2026, 23:30 in Beijing (still the 31st in UTC).
var start = time.Date(2026, 12, 31, 15, 30, 0, 0, time.UTC)

var beijing = time.FixedZone("CST", 8*3600)

// setup builds the register on SQLite, or PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set, with ten departments, a security officer
// (周强) and another (钱敏), an auditor (孙丽), a leader (郑国华), an IT
// engineer (吴燕), the heads of 心内科 (李主任) and 神经内科 (王主任), and a
// doctor of 心内科 (张伟).
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: testkit.NewClock(start), calls: map[string]*medguard.Call{}}
	f.db = storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), rectify.Schema())
	var err error
	if f.log, err = audit.Open(ctx, f.db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	kr := keys.NewKeyring(f.db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	id := identity.New(f.db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.id = id
	f.svc = rectify.New(f.db, g, kr, id, rectify.Config{Location: beijing})
	adminID, err := id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"GAST", "消化内科"}, {"ORTH", "骨科"}, {"PEDS", "儿科"},
		{"OBGY", "妇产科"}, {"EMER", "急诊科"}, {"RADI", "放射科"}, {"LAB", "检验科"}, {"ITD", "信息科"}} {
		if _, err := id.CreateDepartment(ctx, admin, d[0], d[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ name, display, dept, role string }{
		{"zhouqiang", "周强", "ITD", policy.SecurityOfficer}, {"qianmin", "钱敏", "ITD", policy.SecurityOfficer},
		{"sunli", "孙丽", "", policy.Auditor}, {"zhengguohua", "郑国华", "", policy.Leadership}, {"wuyan", "吴燕", "ITD", policy.ITEngineer},
		{"lizhuren", "李主任", "CARD", policy.DeptHead}, {"wangzhuren", "王主任", "NEUR", policy.DeptHead},
		{"zhangwei", "张伟", "CARD", policy.Doctor},
	} {
		created, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: u.name, DisplayName: u.display,
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		// Privileged roles would need a four-eyes approval; the policy
		// decides on the call, so the calls name them directly.
		if err := grant(ctx, f.db, created.ID, u.role); err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}, IP: "10.1.1.1"}
	}
	return f
}

// grant gives a privileged role directly in the test database (the roster
// the register reads a department's head from must list it).
func grant(ctx context.Context, db *storage.DB, userID, role string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO user_roles (user_id, role, granted_at, granted_by) VALUES ($1, $2, 0, 'test')
		ON CONFLICT DO NOTHING`, userID, role)
	return err
}

// entries returns the audit entries of action, oldest first.
func (f *fixture) entries(t *testing.T, action string) []*audit.Entry {
	t.Helper()
	var out []*audit.Entry
	size, _, err := f.log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < size; i += audit.MaxEntries {
		es, err := f.log.Entries(context.Background(), i, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Entry.Action == action {
				out = append(out, e.Entry)
			}
		}
	}
	return out
}

// TestItemLifecycle opens an internal audit's finding, lets its owner
// start and finish it with evidence, refuses the verification to the
// owner and to anyone but the owner's progress, verifies it by another
// officer, and keeps every change in the history, sealed at rest.
func TestItemLifecycle(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	sec, sec2, engineer := f.calls["zhouqiang"], f.calls["qianmin"], f.calls["wuyan"]
	it, err := f.svc.CreateItem(ctx, f.calls["sunli"], rectify.NewItem{Kind: rectify.KindInternalAudit, Ref: "内审-2026-07",
		Title: "心内科护士站电脑未设置锁屏", Clauses: []string{"GB/T 22239-2019 8.1.4.1", "GB/T 22239-2019 8.1.4.1"}, Department: "心内科",
		Owner: "wuyan", Severity: rectify.High, Description: "护士站3台电脑离开后未锁屏，屏幕显示患者列表"})
	if err != nil {
		t.Fatal(err)
	}
	if it.Department != "CARD" || it.Status != rectify.Open || len(it.Clauses) != 1 || !it.DueAt.Equal(start.Add(30*24*time.Hour)) {
		t.Fatalf("item %+v", it)
	}
	// Bad input names its field; nothing is stored.
	for _, c := range []struct {
		in    rectify.NewItem
		field string
	}{
		{rectify.NewItem{Kind: rectify.KindCheck, Title: "x", Owner: "wuyan", Severity: rectify.Low}, "kind"},
		{rectify.NewItem{Kind: rectify.KindInternalAudit, Owner: "wuyan", Severity: rectify.Low}, "title"},
		{rectify.NewItem{Kind: rectify.KindInternalAudit, Title: "x", Owner: "nobody", Severity: rectify.Low}, "owner"},
		{rectify.NewItem{Kind: rectify.KindInternalAudit, Title: "x", Owner: "wuyan", Severity: "高"}, "severity"},
		{rectify.NewItem{Kind: rectify.KindInternalAudit, Title: "x", Owner: "wuyan", Severity: rectify.Low, Department: "外科"}, "department"},
	} {
		_, err := f.svc.CreateItem(ctx, sec, c.in)
		medguardtest.WantField(t, err, c.field)
	}
	_, err = f.svc.CreateItem(ctx, f.calls["zhengguohua"], rectify.NewItem{Kind: rectify.KindInternalAudit, Title: "x", Owner: "wuyan", Severity: rectify.Low})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)

	// Only the owner reports progress.
	_, err = f.svc.Start(ctx, sec, it.ID, rectify.Progress{Note: "代为开始"})
	medguardtest.WantRule(t, err, policy.RuleNotRectificationOwner)
	if _, err := f.svc.Start(ctx, engineer, it.ID, rectify.Progress{Note: "已联系设备科"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.MarkDone(ctx, engineer, it.ID, rectify.Progress{})
	medguardtest.WantField(t, err, "note")
	evidence := []byte("%PDF-1.4 锁屏策略截图")
	done, err := f.svc.MarkDone(ctx, engineer, it.ID, rectify.Progress{Note: "已下发域策略：5分钟无操作自动锁屏", EvidenceName: "锁屏策略.pdf", Evidence: evidence})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != rectify.Done || done.DoneBy != "wuyan" {
		t.Fatalf("done %+v", done)
	}
	// The security officer who is not the owner verifies; the owner, even
	// with the permission, never does.
	ownCall := *engineer
	ownCall.Actor.Roles = []string{policy.ITEngineer, policy.SecurityOfficer}
	_, err = f.svc.Verify(ctx, &ownCall, it.ID, rectify.Verification{Note: "自己验证"})
	medguardtest.WantRule(t, err, policy.RuleOwnRectification)
	if n := len(f.entries(t, "rectification.verify")); n != 1 {
		t.Fatalf("%d verify entries, want the refusal logged", n)
	}
	_, err = f.svc.Verify(ctx, sec, it.ID, rectify.Verification{})
	medguardtest.WantField(t, err, "note")
	v, err := f.svc.Verify(ctx, sec2, it.ID, rectify.Verification{Note: "现场抽查3台，均已锁屏"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != rectify.Verified || v.VerifiedBy != "qianmin" {
		t.Fatalf("verified %+v", v)
	}
	_, err = f.svc.Verify(ctx, sec, it.ID, rectify.Verification{Note: "再次"})
	medguardtest.WantKind(t, err, medguard.Conflict)

	// The history, read by the department's head; the evidence back.
	got, err := f.svc.GetItem(ctx, f.calls["lizhuren"], it.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range got.History {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"created", "started", "done", "verified"}; !slices.Equal(kinds, want) {
		t.Fatalf("history %v, want %v", kinds, want)
	}
	if got.History[2].Note != "已下发域策略：5分钟无操作自动锁屏" || got.History[2].EvidenceName != "锁屏策略.pdf" ||
		got.Description != "护士站3台电脑离开后未锁屏，屏幕显示患者列表" {
		t.Fatalf("history %+v", got.History[2])
	}
	name, content, err := f.svc.Evidence(ctx, sec, it.ID, 3)
	if err != nil || name != "锁屏策略.pdf" || !bytes.Equal(content, evidence) {
		t.Fatalf("evidence %q %q %v", name, content, err)
	}
	// Another department's head and a doctor read nothing.
	_, err = f.svc.GetItem(ctx, f.calls["wangzhuren"], it.ID)
	medguardtest.WantRule(t, err, policy.RuleOtherDepartment)
	_, err = f.svc.GetItem(ctx, f.calls["zhangwei"], it.ID)
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	// Sealed at rest: no note nor description in clear.
	var raw []byte
	if err := f.db.QueryRowContext(ctx, `SELECT description FROM rectification_items WHERE id = $1`, it.ID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("护士站")) {
		t.Fatal("the description is stored in clear")
	}
	// A reopened item goes back to its owner.
	re, err := f.svc.Reopen(ctx, sec, it.ID, rectify.Verification{Note: "复查发现2台仍未锁屏"})
	if err != nil || re.Status != rectify.Reopened {
		t.Fatalf("reopen %+v %v", re, err)
	}
}

// TestListScopes lists as the security office (everything), a department
// head (their department only), an owner (their own items) and filters.
func TestListScopes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	sec := f.calls["zhouqiang"]
	for i, d := range []string{"CARD", "CARD", "NEUR", ""} {
		if _, err := f.svc.CreateItem(ctx, sec, rectify.NewItem{Kind: rectify.KindInternalAudit, Ref: fmt.Sprintf("内审-%d", i),
			Title: "病历借阅登记不全", Department: d, Owner: "wuyan", Severity: rectify.Medium}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		who  string
		q    rectify.Query
		want int
	}{
		{"zhouqiang", rectify.Query{}, 4}, {"zhengguohua", rectify.Query{}, 4}, {"lizhuren", rectify.Query{}, 2},
		{"wangzhuren", rectify.Query{}, 1}, {"wuyan", rectify.Query{}, 4}, {"zhangwei", rectify.Query{}, 0},
		{"zhouqiang", rectify.Query{Department: "CARD"}, 2}, {"lizhuren", rectify.Query{Department: "NEUR"}, 0},
		{"zhouqiang", rectify.Query{Status: rectify.Done}, 0}, {"zhouqiang", rectify.Query{Overdue: true}, 0},
	} {
		items, _, err := f.svc.ListItems(ctx, f.calls[c.who], c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.who, err)
		}
		if len(items) != c.want {
			t.Errorf("%s %+v: %d items, want %d", c.who, c.q, len(items), c.want)
		}
	}
	_, _, err := f.svc.ListItems(ctx, sec, rectify.Query{Kind: "外审"})
	medguardtest.WantField(t, err, "kind")
	// Pages.
	page, next, err := f.svc.ListItems(ctx, sec, rectify.Query{Limit: 3})
	if err != nil || len(page) != 3 || next == "" {
		t.Fatalf("page %d next %q %v", len(page), next, err)
	}
	rest, next, err := f.svc.ListItems(ctx, sec, rectify.Query{Limit: 3, After: next})
	if err != nil || len(rest) != 1 || next != "" {
		t.Fatalf("rest %d next %q %v", len(rest), next, err)
	}
}

// TestOpenFrom opens items for failing checks as medguard itself, once
// while an item of the same check is not verified, with the default
// deadline by severity and the department head as owner; a check failing
// again after verification opens a new item.
func TestOpenFrom(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	o := rectify.Origin{Kind: rectify.KindCheck, Ref: "departed_staff_access", Title: "离职人员仍有有效会话或密钥",
		TitleEN: "Departed staff with live access", Clauses: []string{"GB/T 22239-2019 8.1.4.2"}, Severity: rectify.Critical,
		Department: "CARD"}
	id, created, err := f.svc.OpenFrom(ctx, o)
	if err != nil || !created {
		t.Fatalf("open: %v %v", created, err)
	}
	again, created, err := f.svc.OpenFrom(ctx, o)
	if err != nil || created || again != id {
		t.Fatalf("again: %s %v %v, want %s not created", again, created, err, id)
	}
	it, err := f.svc.GetItem(ctx, f.calls["zhouqiang"], id)
	if err != nil {
		t.Fatal(err)
	}
	if it.Owner != "lizhuren" || it.CreatedBy != "system" || !it.DueAt.Equal(start.Add(7*24*time.Hour)) || it.TitleEN != o.TitleEN {
		t.Fatalf("item %+v", it)
	}
	es := f.entries(t, "rectification.open")
	if len(es) != 1 || es[0].Actor != "system" || es[0].TargetID != id {
		t.Fatalf("open entries %+v", es)
	}
	// Bad origins name their field.
	_, _, err = f.svc.OpenFrom(ctx, rectify.Origin{Kind: "risk", Ref: "x", Title: "x"})
	medguardtest.WantField(t, err, "kind")
	_, _, err = f.svc.OpenFrom(ctx, rectify.Origin{Kind: rectify.KindCheck, Title: "x"})
	medguardtest.WantField(t, err, "ref")
	_, _, err = f.svc.OpenFrom(ctx, rectify.Origin{Kind: rectify.KindCheck, Ref: "y", Title: "x", Severity: "严重"})
	medguardtest.WantField(t, err, "severity")
	// Without a department nobody owns it until assigned; a default
	// severity is medium (60 days).
	id2, _, err := f.svc.OpenFrom(ctx, rectify.Origin{Kind: rectify.KindCheck, Ref: "audit_retention", Title: "审计日志保存不足180天"})
	if err != nil {
		t.Fatal(err)
	}
	it2, err := f.svc.GetItem(ctx, f.calls["zhouqiang"], id2)
	if err != nil || it2.Owner != "" || it2.Severity != rectify.Medium || !it2.DueAt.Equal(start.Add(60*24*time.Hour)) {
		t.Fatalf("item %+v %v", it2, err)
	}
	_, err = f.svc.Start(ctx, f.calls["lizhuren"], id2, rectify.Progress{})
	medguardtest.WantRule(t, err, policy.RuleNotRectificationOwner)
	owner := "wuyan"
	if _, err := f.svc.UpdateItem(ctx, f.calls["zhouqiang"], id2, rectify.ItemChanges{Owner: &owner, Note: "信息科负责"}); err != nil {
		t.Fatal(err)
	}
	// Done and verified, the check failing again opens a new item.
	head := f.calls["lizhuren"]
	if _, err := f.svc.MarkDone(ctx, head, id, rectify.Progress{Note: "已停用离职医生的API密钥"}); err != nil {
		t.Fatal(err)
	}
	if again, created, err := f.svc.OpenFrom(ctx, o); err != nil || created || again != id {
		t.Fatalf("while done: %s %v %v", again, created, err)
	}
	if _, err := f.svc.Verify(ctx, f.calls["sunli"], id, rectify.Verification{Note: "复核无离职人员有效凭据"}); err != nil {
		t.Fatal(err)
	}
	// Reopened after verification, it is the finding's item again.
	if _, err := f.svc.Reopen(ctx, f.calls["qianmin"], id, rectify.Verification{Note: "复查又发现一名离职医生的会话"}); err != nil {
		t.Fatal(err)
	}
	if again, created, err := f.svc.OpenFrom(ctx, o); err != nil || created || again != id {
		t.Fatalf("reopened: %s %v %v, want %s", again, created, err, id)
	}
	if _, err := f.svc.MarkDone(ctx, head, id, rectify.Progress{Note: "已强制注销全部会话"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(ctx, f.calls["sunli"], id, rectify.Verification{Note: "复核通过"}); err != nil {
		t.Fatal(err)
	}
	fresh, created, err := f.svc.OpenFrom(ctx, o)
	if err != nil || !created || fresh == id {
		t.Fatalf("after verification: %s %v %v", fresh, created, err)
	}
	// Reopening the old one now leaves the new one the finding's item.
	if _, err := f.svc.Reopen(ctx, f.calls["qianmin"], id, rectify.Verification{Note: "再次退回"}); err != nil {
		t.Fatal(err)
	}
	if again, created, err := f.svc.OpenFrom(ctx, o); err != nil || created || again != fresh {
		t.Fatalf("two open: %s %v %v, want %s", again, created, err, fresh)
	}
}

// TestOpenFromAtOnce opens the same finding from many goroutines at once
// (several servers' checks): one item, created once.
func TestOpenFromAtOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	o := rectify.Origin{Kind: rectify.KindCheck, Ref: "audit_tree_verified", Title: "审计日志完整性校验超过24小时未执行", Severity: rectify.High}
	type result struct {
		id      string
		created bool
		err     error
	}
	out := make(chan result, 8)
	for range 8 {
		go func() {
			id, created, err := f.svc.OpenFrom(ctx, o)
			out <- result{id, created, err}
		}()
	}
	ids, created := map[string]bool{}, 0
	for range 8 {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		ids[r.id] = true
		if r.created {
			created++
		}
	}
	if len(ids) != 1 || created != 1 {
		t.Fatalf("%d items, %d created", len(ids), created)
	}
}

// TestImportReport imports a third-party audit report with Chinese
// headers: a bad line refuses the whole report naming its line, column
// and field, and nothing is stored; the good report opens every line.
func TestImportReport(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	sec := f.calls["zhouqiang"]
	good := "\ufeff编号,问题,条款,科室,责任人,严重程度,整改期限,描述\n" +
		"DJCP-01,未启用双因素认证,GB/T 22239-2019 8.1.4.1；GB/T 39786-2021 8.4,信息科,wuyan,高,2027-01-31,管理员账户仅口令认证\n" +
		"DJCP-02,\"审计记录未异地备份\",GB/T 22239-2019 8.1.4.3,ITD,zhouqiang,中,,\n" +
		"DJCP-03,病案室门禁记录保存不足6个月,,心内科,lizhuren,low,2027/3/1,\n"
	bad := strings.Replace(good, "lizhuren", "不存在的人", 1)
	_, err := f.svc.ImportReport(ctx, sec, rectify.Import{Auditor: "某某信息安全测评中心", Report: "2026-等保-017", CSV: []byte(bad)})
	me := medguardtest.WantField(t, err, "owner")
	if !strings.Contains(me.Message, "line 4") || !strings.Contains(me.Message, "责任人") {
		t.Fatalf("message %q names no line and column", me.Message)
	}
	for _, c := range []struct{ csv, field string }{
		{"编号,问题,责任人\nA,b,wuyan\n", "severity"},
		{"编号,问题,责任人,严重程度,颜色\nA,b,wuyan,高,红\n", "csv"},
		{"编号,问题,责任人,严重程度,整改期限\nA,b,wuyan,高,明年\n", "due_at"},
		{"编号,问题,责任人,严重程度\nA,b,wuyan,高\nA,c,wuyan,低\n", "ref"},
		{"编号,问题,责任人,严重程度\n,b,wuyan,高\n", "ref"},
		{"编号,问题,责任人,严重程度\nA,b,wuyan,严重,x\n", "csv"},
		{"", "csv"},
	} {
		_, err := f.svc.ImportReport(ctx, sec, rectify.Import{Auditor: "测评中心", CSV: []byte(c.csv)})
		medguardtest.WantField(t, err, c.field)
	}
	items, _, err := f.svc.ListItems(ctx, sec, rectify.Query{})
	if err != nil || len(items) != 0 {
		t.Fatalf("%d items stored after refusals (%v)", len(items), err)
	}
	_, err = f.svc.ImportReport(ctx, f.calls["zhengguohua"], rectify.Import{Auditor: "测评中心", CSV: []byte(good)})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	sum, err := f.svc.ImportReport(ctx, sec, rectify.Import{Auditor: "某某信息安全测评中心", Report: "2026-等保-017", CSV: []byte(good)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 3 {
		t.Fatalf("created %d", sum.Created)
	}
	items, _, err = f.svc.ListItems(ctx, sec, rectify.Query{Kind: rectify.KindThirdParty})
	if err != nil || len(items) != 3 {
		t.Fatalf("%d items %v", len(items), err)
	}
	byRef := map[string]rectify.Item{}
	for _, it := range items {
		byRef[it.Ref] = it
	}
	a := byRef["2026-等保-017/DJCP-01"]
	if a.Severity != rectify.High || a.Department != "ITD" || len(a.Clauses) != 2 || a.Auditor != "某某信息安全测评中心" ||
		!a.DueAt.Equal(time.Date(2027, 1, 31, 23, 59, 59, 999e6, beijing).UTC()) {
		t.Fatalf("DJCP-01 %+v", a)
	}
	if c := byRef["2026-等保-017/DJCP-03"]; c.Severity != rectify.Low || c.Department != "CARD" || c.Owner != "lizhuren" {
		t.Fatalf("DJCP-03 %+v", c)
	}
	// The same report again: its items are open already.
	_, err = f.svc.ImportReport(ctx, sec, rectify.Import{Auditor: "某某信息安全测评中心", Report: "2026-等保-017", CSV: []byte(good)})
	medguardtest.WantKind(t, err, medguard.Conflict)
}

// TestOverdue announces an item past its deadline once, with an event in
// its history, and tells the hooks when it is done.
func TestOverdue(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	var announced []rectify.OverdueItem
	var resolved []string
	f.svc.OnOverdue(func(_ context.Context, o rectify.OverdueItem) { announced = append(announced, o) })
	f.svc.OnDone(func(_ context.Context, it rectify.Item) { resolved = append(resolved, it.ID) })
	it, err := f.svc.CreateItem(ctx, f.calls["zhouqiang"], rectify.NewItem{Kind: rectify.KindInternalAudit, Title: "备份恢复演练记录缺失",
		Owner: "wuyan", Severity: rectify.Critical})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.svc.CheckOverdue(ctx); len(got) != 0 {
		t.Fatalf("announced before the deadline: %+v", got)
	}
	f.clock.Advance(7*24*time.Hour + time.Minute)
	for range 2 {
		if _, err := f.svc.CheckOverdue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(announced) != 1 || announced[0].ItemID != it.ID {
		t.Fatalf("announced %+v", announced)
	}
	items, _, err := f.svc.ListItems(ctx, f.calls["zhengguohua"], rectify.Query{Overdue: true})
	if err != nil || len(items) != 1 || !items[0].Overdue {
		t.Fatalf("overdue list %+v %v", items, err)
	}
	if _, err := f.svc.MarkDone(ctx, f.calls["wuyan"], it.ID, rectify.Progress{Note: "已完成恢复演练并存档"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resolved, []string{it.ID}) {
		t.Fatalf("resolved %v", resolved)
	}
	if got, _ := f.svc.CheckOverdue(ctx); len(got) != 0 {
		t.Fatalf("announced when done: %+v", got)
	}
	es := f.entries(t, "rectification.overdue")
	if len(es) != 1 || es[0].Actor != "system" {
		t.Fatalf("overdue entries %+v", es)
	}
	got, err := f.svc.GetItem(ctx, f.calls["zhouqiang"], it.ID)
	if err != nil || !slices.ContainsFunc(got.History, func(e rectify.Event) bool { return e.Kind == rectify.EventOverdue }) {
		t.Fatalf("history %+v %v", got, err)
	}
}

// TestMonthlyReview counts a month's progress by department and source,
// and records the security office's signed review of it.
func TestMonthlyReview(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.clock.Set(time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC))
	sec := f.calls["zhouqiang"]
	mk := func(dept, sev string) string {
		it, err := f.svc.CreateItem(ctx, sec, rectify.NewItem{Kind: rectify.KindInternalAudit, Title: "科室培训记录缺失", Department: dept,
			Owner: "wuyan", Severity: sev})
		if err != nil {
			t.Fatal(err)
		}
		return it.ID
	}
	a, _ := mk("CARD", rectify.Critical), mk("CARD", rectify.Low)
	if _, _, err := f.svc.OpenFrom(ctx, rectify.Origin{Kind: rectify.KindCheck, Ref: "training_coverage", Title: "培训覆盖率不足",
		Department: "NEUR", Severity: rectify.Critical}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * 24 * time.Hour)
	if _, err := f.svc.MarkDone(ctx, f.calls["wuyan"], a, rectify.Progress{Note: "已补训"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(ctx, f.calls["qianmin"], a, rectify.Verification{Note: "已核对签到表"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC))
	m, err := f.svc.MonthlyProgress(ctx, f.calls["zhengguohua"], "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	want := rectify.MonthCount{Opened: 3, Done: 1, Closed: 1, Open: 2, Overdue: 1}
	if m.Total != want {
		t.Fatalf("total %+v, want %+v", m.Total, want)
	}
	if len(m.ByDepartment) != 2 || m.ByDepartment[0].Key != "CARD" || m.ByDepartment[0].Opened != 2 || m.ByDepartment[1].Overdue != 1 {
		t.Fatalf("by department %+v", m.ByDepartment)
	}
	if len(m.BySource) != 2 || m.BySource[0].Key != rectify.KindCheck || m.BySource[1].Opened != 2 {
		t.Fatalf("by source %+v", m.BySource)
	}
	_, err = f.svc.MonthlyProgress(ctx, sec, "2026-13")
	medguardtest.WantField(t, err, "month")
	_, err = f.svc.MonthlyProgress(ctx, f.calls["lizhuren"], "2026-11")
	medguardtest.WantRule(t, err, policy.RuleOtherDepartment)
	_, err = f.svc.RecordReview(ctx, f.calls["sunli"], rectify.NewReview{Month: "2026-11"})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	rv, err := f.svc.RecordReview(ctx, sec, rectify.NewReview{Month: "2026-11", Note: "11月整改进度正常，神经内科培训项逾期需督办"})
	if err != nil {
		t.Fatal(err)
	}
	if rv.ReviewedBy != "zhouqiang" || rv.Figures.Total != want || len(rv.FiguresSHA256) != 64 {
		t.Fatalf("review %+v", rv)
	}
	rs, err := f.svc.ListReviews(ctx, f.calls["zhengguohua"])
	if err != nil || len(rs) != 1 || rs[0].FiguresSHA256 != rv.FiguresSHA256 || rs[0].Note != rv.Note {
		t.Fatalf("reviews %+v %v", rs, err)
	}
	_, err = f.svc.RecordReview(ctx, sec, rectify.NewReview{Month: "2027-05"})
	medguardtest.WantField(t, err, "month")
}

// fakeFigures measures every department's figures: 神经内科 has a
// departed doctor's access not revoked.
type fakeFigures struct {
	ids   map[string]string // department id → code
	calls int
}

func (f *fakeFigures) Figures(_ context.Context, call *medguard.Call, deptID string) ([]rectify.Figure, error) {
	f.calls++
	if call == nil || call.Actor.Name != "sunli" {
		return nil, errors.New("figures read without the auditor's call")
	}
	revoked := rectify.Figure{ID: "departed_revoked", Title: "离职人员权限回收率", Value: "100%", Pass: true, Evidence: "/compliance/checks/departed"}
	if f.ids[deptID] == "NEUR" {
		revoked.Value, revoked.Pass = "50% (1/2)", false
	}
	return []rectify.Figure{revoked, {ID: "transmission_encrypted", Value: "100%", Pass: true, Evidence: "TLS 1.3 on every link"}}, nil
}

// TestSample checks the sample's size (30 % rounded up, at least one) and
// that the same seed and departments give the same sample, in any order.
func TestSample(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 3: 1, 4: 2, 10: 3, 11: 4, 20: 6, 34: 11} {
		if got := rectify.SampleSize(n); got != want {
			t.Errorf("SampleSize(%d) = %d, want %d", n, got, want)
		}
	}
	deps := []string{"CARD", "NEUR", "GAST", "ORTH", "PEDS", "OBGY", "EMER", "RADI", "LAB", "ITD"}
	a := rectify.Sample(20261231, deps)
	rev := slices.Clone(deps)
	slices.Reverse(rev)
	if b := rectify.Sample(20261231, rev); !slices.Equal(a, b) {
		t.Fatalf("same seed, different samples: %v %v", a, b)
	}
	if len(a) != 3 || !slices.IsSorted(a) {
		t.Fatalf("sample %v", a)
	}
	differ := false
	for seed := int64(1); seed < 20; seed++ {
		if !slices.Equal(rectify.Sample(seed, deps), a) {
			differ = true
		}
	}
	if !differ {
		t.Fatal("every seed gives the same sample")
	}
}

// TestQuarterlyRun runs a quarter's check as the auditor with the figures
// prefilled, records the findings (a failing measure never passes),
// publishes it (failing findings open items) to every department head,
// who reads their department's findings and the summary once as a notice;
// a doctor reads nothing.
func TestQuarterlyRun(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	auditor := f.calls["sunli"]
	fig := &fakeFigures{ids: map[string]string{}}
	_, deps, err := f.id.Directory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		fig.ids[d.ID] = d.Code
	}
	f.svc.SetFigures(fig)
	// Find a seed whose sample holds 心内科 and 神经内科 (reproducible).
	var seed int64
	codes := []string{"CARD", "EMER", "GAST", "ITD", "LAB", "NEUR", "OBGY", "ORTH", "PEDS", "RADI"}
	for seed = 1; ; seed++ {
		s := rectify.Sample(seed, codes)
		if slices.Contains(s, "CARD") && slices.Contains(s, "NEUR") {
			break
		}
	}
	_, err = f.svc.StartRun(ctx, auditor, rectify.NewRun{Quarter: "2026Q4"})
	medguardtest.WantField(t, err, "quarter")
	_, err = f.svc.StartRun(ctx, f.calls["zhouqiang"], rectify.NewRun{Quarter: "2026-Q4"})
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	run, err := f.svc.StartRun(ctx, auditor, rectify.NewRun{Quarter: "2026-Q4", Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(run.Sampled, rectify.Sample(seed, run.Departments)) || len(run.Sampled) != 3 || run.SampledShare < 0.3 || fig.calls != 3 {
		t.Fatalf("run %+v (figures read %d times)", run, fig.calls)
	}
	if len(run.Findings) != 9 || run.Summary.Pending != 9 {
		t.Fatalf("findings %+v", run.Findings)
	}
	// A random seed is stored and shown.
	other, err := f.svc.StartRun(ctx, auditor, rectify.NewRun{Quarter: "2026-Q3"})
	if err != nil || !slices.Equal(other.Sampled, rectify.Sample(other.Seed, other.Departments)) {
		t.Fatalf("other %+v %v", other, err)
	}
	for _, fd := range run.Findings {
		res := rectify.FindingResult{Department: fd.Department, Item: fd.Item, Result: rectify.ResultPass}
		if fd.MeasuredPass != nil && !*fd.MeasuredPass {
			_, err := f.svc.RecordFinding(ctx, auditor, run.ID, res)
			medguardtest.WantField(t, err, "result")
			res.Result, res.Note = rectify.ResultFail, "王某离职后门诊工作站账号未停用"
		}
		if fd.Department == "CARD" && fd.Item == "paper_electronic_sync" {
			res.Result, res.Note = rectify.ResultFail, "抽查20份出院病历，2份纸质病历未归档"
		}
		if _, err := f.svc.Publish(ctx, auditor, run.ID); !medguard.IsKind(err, medguard.Conflict) {
			t.Fatalf("published with findings pending: %v", err)
		}
		if _, err := f.svc.RecordFinding(ctx, auditor, run.ID, res); err != nil {
			t.Fatalf("%s %s: %v", fd.Department, fd.Item, err)
		}
	}
	_, err = f.svc.RecordFinding(ctx, auditor, run.ID, rectify.FindingResult{Department: "ORTH-X", Item: "paper_electronic_sync", Result: "pass"})
	medguardtest.WantField(t, err, "department")
	_, err = f.svc.Publish(ctx, f.calls["zhouqiang"], run.ID)
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	pub, err := f.svc.Publish(ctx, auditor, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Status != rectify.RunPublished || pub.Summary.Failed != 2 || len(pub.Recipients) != 2 {
		t.Fatalf("published %+v", pub)
	}
	_, err = f.svc.RecordFinding(ctx, auditor, run.ID, rectify.FindingResult{Department: "CARD", Item: "paper_electronic_sync", Result: "pass"})
	medguardtest.WantKind(t, err, medguard.Conflict)
	items, _, err := f.svc.ListItems(ctx, f.calls["zhouqiang"], rectify.Query{Kind: rectify.KindQuarterly})
	if err != nil || len(items) != 2 {
		t.Fatalf("quarterly items %+v %v", items, err)
	}
	for _, it := range items {
		if it.Severity != rectify.High || (it.Department == "CARD") != (it.Owner == "lizhuren") || !strings.Contains(it.Title, "2026-Q4") {
			t.Fatalf("item %+v", it)
		}
	}
	// The head of 心内科 has a notice, reads their department's findings
	// and the summary; the notice goes.
	head := f.calls["lizhuren"]
	ns, err := f.svc.Notices(ctx, head)
	if err != nil || len(ns) != 1 || ns[0].ID != run.ID {
		t.Fatalf("notices %+v %v", ns, err)
	}
	got, err := f.svc.GetRun(ctx, head, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != 3 || got.Findings[0].Department != "CARD" || got.Summary.Failed != 2 || got.ReadAt == nil || len(got.Recipients) != 0 {
		t.Fatalf("head's run %+v", got)
	}
	if ns, _ := f.svc.Notices(ctx, head); len(ns) != 0 {
		t.Fatalf("notice kept after reading: %+v", ns)
	}
	if n := len(f.entries(t, "compliance.quarterly_results_read")); n != 1 {
		t.Fatalf("%d reads logged", n)
	}
	if n := len(f.entries(t, "compliance.quarterly_publish")); n < 1 {
		t.Fatal("the publication is not logged")
	}
	// A draft is no department head's business; a doctor reads nothing.
	_, err = f.svc.GetRun(ctx, head, other.ID)
	medguardtest.WantKind(t, err, medguard.NotFound)
	_, err = f.svc.GetRun(ctx, f.calls["zhangwei"], run.ID)
	medguardtest.WantRule(t, err, policy.RuleNoPermission)
	runs, err := f.svc.ListRuns(ctx, head)
	if err != nil || len(runs) != 1 {
		t.Fatalf("head's runs %+v %v", runs, err)
	}
	all, err := f.svc.GetRun(ctx, f.calls["zhengguohua"], run.ID)
	if err != nil || len(all.Findings) != 9 || len(all.Recipients) != 2 || all.Recipients[0].ReadAt == nil {
		t.Fatalf("leader's run %+v %v", all, err)
	}
}
