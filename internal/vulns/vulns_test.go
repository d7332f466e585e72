package vulns_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/audit"
	"medguard/internal/exports"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
	"medguard/internal/vulns"
)

// office is vulnerability management on a fresh database (PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set) with the services around it: the asset
// register, four-eyes approvals, records and exports; two IT engineers,
// two security officers, an auditor and a cardiologist; the records
// system's web application and an imaging server in the register.
type office struct {
	t        *testing.T
	db       *storage.DB
	clock    *testkit.Clock
	log      *audit.Log
	vulns    *vulns.Service
	assets   *assets.Service
	ap       *approvals.Service
	rec      *records.Service
	exports  *exports.Service
	calls    map[string]*medguard.Call
	emr, pac string // asset ids: the records system's application, the imaging server

	mu       sync.Mutex
	overdue  []vulns.OverdueVuln
	resolved []string
}

func newOffice(t *testing.T, cfg vulns.Config) *office {
	t.Helper()
	ctx := context.Background()
	db := storagetest.OpenIn(t, t.TempDir(), keys.Schema(), audit.Schema(), identity.Schema(), records.Schema(), approvals.Schema(),
		exports.Schema(), assets.Schema(), vulns.Schema())
	clock := testkit.NewClock(time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)) // Sunday 10:00 in Beijing
	log, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	g := gate.New(log, clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, clock.Now()), clock)
	id := identity.New(db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	rec := records.New(db, g, kr, id, records.Config{})
	ap := approvals.New(db, g, kr, id, rec)
	reg := assets.New(db, g, id, assets.Config{})
	o := &office{t: t, db: db, clock: clock, log: log, assets: reg, ap: ap, rec: rec, calls: map[string]*medguard.Call{}}
	o.vulns = vulns.New(db, g, kr, reg, cfg)
	o.exports = exports.New(db, g, kr, rec, ap, exports.Config{})
	ap.Register(o.vulns.VulnExceptionKind())
	ap.Register(o.vulns.SuspensionLiftKind())
	g.Restrict(o.vulns.Restrictions)
	o.vulns.OnOverdue(func(_ context.Context, v vulns.OverdueVuln) {
		o.mu.Lock()
		o.overdue = append(o.overdue, v)
		o.mu.Unlock()
	})
	o.vulns.OnResolved(func(_ context.Context, id string) {
		o.mu.Lock()
		o.resolved = append(o.resolved, id)
		o.mu.Unlock()
	})
	for _, a := range identity.BootstrapAccounts("Guanli#Mima2026", "Anquan#Mima2026") {
		uid, err := id.Bootstrap(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		o.calls[a.Username] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: uid, Name: a.Username, Roles: []string{a.Role}}}
	}
	for _, d := range [][2]string{{"ITD", "信息科"}, {"CARD", "心内科"}, {"MRD", "病案室"}} {
		if _, _, err := ap.CreateDepartment(ctx, o.calls["admin"], d[0], d[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range [][4]string{{"liqiang", "李强", "ITD", "it_engineer"}, {"wangfang", "王芳", "ITD", "it_engineer"},
		{"zhouqiang", "周强", "ITD", "security_officer"}, {"sunli", "孙丽", "ITD", "auditor"}, {"zhangwei", "张建国", "CARD", "doctor"}} {
		user, pending, err := id.CreateUser(ctx, o.calls["admin"], identity.NewUser{Username: u[0], DisplayName: u[1], Department: u[2],
			Roles: []string{u[3]}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range pending {
			a, err := ap.GrantRole(ctx, o.calls["admin"], user.ID, r, "岗位任命")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ap.Approve(ctx, o.calls["security"], a.ID, "同意"); err != nil {
				t.Fatal(err)
			}
		}
		o.calls[u[0]] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: user.ID, Name: u[0], Department: u[2], Roles: []string{u[3]}}}
	}
	emr, err := reg.Create(ctx, o.calls["liqiang"], assets.NewAsset{Code: "APP-EMR", Name: "电子病历系统", Kind: assets.Application,
		Owner: "liqiang", Department: "MRD", Classification: "core", RecordsSystem: true})
	if err != nil {
		t.Fatal(err)
	}
	pacs, err := reg.Create(ctx, o.calls["liqiang"], assets.NewAsset{Code: "SRV-PACS01", Name: "影像归档服务器", Kind: assets.Server,
		Owner: "wangfang", Department: "ITD", Classification: "important", Address: "10.20.2.21"})
	if err != nil {
		t.Fatal(err)
	}
	o.emr, o.pac = emr.ID, pacs.ID
	if err := o.vulns.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *office) call(name string) *medguard.Call { return o.calls[name] }

func (o *office) importReport(as, format string, report []byte, partial bool) *vulns.Scan {
	o.t.Helper()
	sc, err := o.vulns.Import(context.Background(), o.call("liqiang"), vulns.Import{AssetID: as, Format: format, Report: report, Partial: partial})
	if err != nil {
		o.t.Fatal(err)
	}
	return sc
}

// byRule lists an asset's vulnerabilities by rule id and location.
func (o *office) byRule(as string) map[string]vulns.Vuln {
	o.t.Helper()
	vs, _, err := o.vulns.List(context.Background(), o.call("sunli"), vulns.Query{AssetID: as})
	if err != nil {
		o.t.Fatal(err)
	}
	out := map[string]vulns.Vuln{}
	for _, v := range vs {
		out[v.RuleID+" "+v.Location] = v
	}
	return out
}

// TestImportDeduplicatesAndProposesFixes imports the records system's
// weekly CodeQL scans: the same report twice is one set of
// vulnerabilities seen twice; a later scan where a line moved keeps the
// finding (its fingerprint is line-independent); a finding a later full
// scan lacks is proposed as fixed, not closed, and not by a partial scan
// or another tool's; a proposal is withdrawn when a scan finds it again,
// and a fixed vulnerability found again is reopened with a fresh due date.
func TestImportDeduplicatesAndProposesFixes(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{})
	report := sample(t, "codeql-emr-web.sarif")
	first := o.importReport(o.emr, vulns.SARIF, report, false)
	if first.New != 6 || first.SeenAgain != 0 || first.ProposedFixed != 0 || first.Findings != 6 || first.Tool != "codeql" ||
		!first.ScannedAt.Equal(time.Date(2026, 12, 3, 2, 6, 40, 118e6, time.UTC)) || !first.Full || first.ImportedBy != "liqiang" {
		t.Fatalf("first scan %+v", first)
	}
	again := o.importReport(o.emr, vulns.SARIF, report, false)
	if again.New != 0 || again.SeenAgain != 6 || again.ProposedFixed != 0 {
		t.Fatalf("the same report again %+v", again)
	}
	vs := o.byRule(o.emr)
	if len(vs) != 6 {
		t.Fatalf("%d vulnerabilities: %v", len(vs), vs)
	}
	sqli := vs["java/sql-injection src/main/java/cn/hospital/emr/record/RecordSearchDao.java:87"]
	if sqli.Sightings != 2 || sqli.Status != vulns.StatusNew || sqli.Severity != vulns.High || sqli.AssetID != o.emr {
		t.Fatalf("sql injection %+v", sqli)
	}

	// A week later: the deserialization is gone, a line moved.
	later := strings.NewReplacer(`"startLine": 87`, `"startLine": 90`, `2026-12-03T02:06:40.118Z`, `2026-12-10T02:06:40.118Z`,
		`2026-12-03T01:58:12.402Z`, `2026-12-10T01:58:12.402Z`).Replace(string(report))
	gone := `"partialFingerprints": { "primaryLocationLineHash": "c0ffee12ab34cd56:1" }`
	later = strings.Replace(later, `"ruleId": "java/unsafe-deserialization"`, `"ruleId": "java/unsafe-deserialization", "kind": "pass"`, 1)
	if !strings.Contains(later, gone) {
		t.Fatal("the sample changed")
	}
	o.clock.Advance(5 * 24 * time.Hour) // 11 December
	// Another tool's scan and a partial scan propose nothing.
	if sc := o.importReport(o.emr, vulns.Trivy, sample(t, "trivy-emr-image.json"), false); sc.New != 6 || sc.ProposedFixed != 0 {
		t.Fatalf("trivy %+v", sc)
	}
	if sc := o.importReport(o.emr, vulns.SARIF, []byte(strings.Replace(later, `"name": "CodeQL"`, `"name": "CodeQL"`, 1)), true); sc.ProposedFixed != 0 ||
		sc.SeenAgain != 5 || sc.Full {
		t.Fatalf("partial %+v", sc)
	}
	third := o.importReport(o.emr, vulns.SARIF, []byte(later), false)
	if third.New != 0 || third.SeenAgain != 5 || third.ProposedFixed != 1 {
		t.Fatalf("a week later %+v", third)
	}
	vs = o.byRule(o.emr)
	deser := vs["java/unsafe-deserialization src/main/java/cn/hospital/emr/api/ImportController.java:58"]
	if deser.ProposedFixedAt == nil || deser.Status != vulns.StatusNew {
		t.Fatalf("the finding the scan lacks is proposed, not closed: %+v", deser)
	}
	if moved := vs["java/sql-injection src/main/java/cn/hospital/emr/record/RecordSearchDao.java:87"]; moved.Sightings != 4 {
		t.Fatalf("the moved line is the same finding: %+v", moved)
	}
	if n := len(vs); n != 12 {
		t.Fatalf("%d vulnerabilities", n)
	}

	// The proposal is confirmed by a person: new → fixed.
	if _, err := o.vulns.SetStatus(ctx, o.call("wangfang"), deser.ID, vulns.Transition{Status: vulns.StatusFixed}); err != nil {
		t.Fatal(err)
	}
	// Found again a week later: reopened, due afresh from that scan.
	o.clock.Advance(7 * 24 * time.Hour)
	back := strings.NewReplacer(`2026-12-03T02:06:40.118Z`, `2026-12-17T02:06:40.118Z`, `2026-12-03T01:58:12.402Z`, `2026-12-17T01:58:12.402Z`).Replace(string(report))
	fourth := o.importReport(o.emr, vulns.SARIF, []byte(back), false)
	if fourth.Reopened != 1 || fourth.SeenAgain != 6 {
		t.Fatalf("found again %+v", fourth)
	}
	d, err := o.vulns.Get(ctx, o.call("sunli"), deser.ID)
	if err != nil {
		t.Fatal(err)
	}
	scanned := time.Date(2026, 12, 17, 2, 6, 40, 118e6, time.UTC)
	if d.Status != vulns.StatusConfirmed || !d.DueAt.Equal(scanned.Add(48*time.Hour)) || d.FixedAt != nil || len(d.Scans) != 3 ||
		!strings.Contains(d.Description, "Unsafe deserialization") {
		t.Fatalf("reopened %+v", d)
	}
	var kinds []string
	for _, e := range d.History {
		kinds = append(kinds, e.Kind+":"+e.From+">"+e.To)
	}
	if got := strings.Join(kinds, " "); got != "proposed_fixed:new>new state:new>fixed reopened:fixed>confirmed" {
		t.Fatalf("history %s", got)
	}
	// The scans, newest first.
	scans, err := o.vulns.Scans(ctx, o.call("sunli"), vulns.ScanQuery{AssetID: o.emr})
	if err != nil || len(scans) != 6 || scans[0].ID != fourth.ID {
		t.Fatalf("scans %d %v", len(scans), err)
	}
	// The description is sealed at rest.
	var n int
	if err := o.db.QueryRowContext(ctx, `SELECT count(*) FROM vulns WHERE description IS NOT NULL`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("%d descriptions, %v", n, err)
	}
	var raw []byte
	o.db.QueryRowContext(ctx, `SELECT description FROM vulns WHERE id = $1`, deser.ID).Scan(&raw)
	if bytes.Contains(raw, []byte("deserialization")) {
		t.Fatal("a description in clear")
	}
}

// TestDueDatesInHours: due by severity from the scan's time — critical
// and high 48 hours, medium 7 days, low 30 days, or as configured — in
// hours left, negative once overdue.
func TestDueDatesInHours(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  vulns.Config
		want map[string]int
	}{
		{"default", vulns.Config{}, map[string]int{vulns.Critical: 48, vulns.High: 48, vulns.Medium: 168, vulns.Low: 720}},
		{"configured", vulns.Config{Critical: 24 * time.Hour, High: 72 * time.Hour, Medium: 14 * 24 * time.Hour, Low: 90 * 24 * time.Hour},
			map[string]int{vulns.Critical: 24, vulns.High: 72, vulns.Medium: 336, vulns.Low: 2160}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newOffice(t, c.cfg)
			// The scan without a time of its own: due from the import.
			o.importReport(o.pac, vulns.CSV, sample(t, "nessus-pacs.csv"), false)
			o.clock.Advance(10 * time.Hour)
			for _, v := range o.byRule(o.pac) {
				sla := c.want[v.Severity]
				if v.SLAHours != sla || !v.DueAt.Equal(v.FirstSeen.Add(time.Duration(sla)*time.Hour)) || v.DueInHours != sla-10 || v.Overdue {
					t.Errorf("%s %s: SLA %d h, due %v (first seen %v), %d h left", v.RuleID, v.Severity, v.SLAHours, v.DueAt, v.FirstSeen, v.DueInHours)
				}
			}
			o.clock.Advance(time.Duration(c.want[vulns.Critical]) * time.Hour)
			for _, v := range o.byRule(o.pac) {
				late := c.want[v.Severity] <= c.want[vulns.Critical]
				if v.Overdue != late || late && v.DueInHours != c.want[v.Severity]-c.want[vulns.Critical]-10 {
					t.Errorf("%s %s: overdue %v, %d hours", v.RuleID, v.Severity, v.Overdue, v.DueInHours)
				}
			}
		})
	}
}

// TestTransitions walks a vulnerability through its states: one step at
// a time, a failed fix back to fixing with a note, the fix verified in
// test by someone else, a notes history, refusals for everyone else.
func TestTransitions(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{})
	o.importReport(o.pac, vulns.CSV, sample(t, "nessus-pacs.csv"), false)
	v := o.byRule(o.pac)["97833 10.20.2.21 445/tcp"]
	step := func(who, to, note string) error {
		_, err := o.vulns.SetStatus(ctx, o.call(who), v.ID, vulns.Transition{Status: to, Note: note})
		return err
	}
	for _, c := range []struct {
		who, to, note string
		kind          medguard.Kind
		rule          string
	}{
		{"liqiang", vulns.StatusFixed, "", medguard.Conflict, ""},
		{"liqiang", "done", "", medguard.Invalid, ""},
		{"sunli", vulns.StatusConfirmed, "", medguard.Forbidden, policy.RuleNoPermission},
		{"zhangwei", vulns.StatusConfirmed, "", medguard.Forbidden, policy.RuleNoPermission},
		{"liqiang", vulns.StatusConfirmed, "已复现：SMBv1 未关闭", 0, ""},
		{"liqiang", vulns.StatusFixing, "", 0, ""},
		{"liqiang", vulns.StatusFixed, "已安装 KB4012212 补丁", 0, ""},
		{"liqiang", vulns.StatusFixing, "", medguard.Invalid, ""},
		{"liqiang", vulns.StatusFixing, "测试环境验证失败，补丁未生效", 0, ""},
		{"liqiang", vulns.StatusFixed, "", 0, ""},
		{"liqiang", vulns.StatusVerified, "", medguard.Forbidden, vulns.RuleOwnFix},
		{"wangfang", vulns.StatusDeployed, "", medguard.Conflict, ""},
		{"wangfang", vulns.StatusVerified, "测试环境复扫通过", 0, ""},
		{"zhouqiang", vulns.StatusDeployed, "分批上线完成", 0, ""},
		{"zhouqiang", vulns.StatusFixing, "", medguard.Conflict, ""},
	} {
		err := step(c.who, c.to, c.note)
		switch {
		case c.kind == 0 && err != nil:
			t.Fatalf("%s → %s: %v", c.who, c.to, err)
		case c.kind != 0 && !medguard.IsKind(err, c.kind):
			t.Fatalf("%s → %s: %v, want %v", c.who, c.to, err, c.kind)
		case c.rule != "" && err.(*medguard.Error).Rule != c.rule:
			t.Fatalf("%s → %s: %v, want %s", c.who, c.to, err, c.rule)
		}
	}
	d, err := o.vulns.Get(ctx, o.call("sunli"), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range d.History {
		steps = append(steps, e.Actor+":"+e.To+":"+e.Note)
	}
	want := "liqiang:confirmed:已复现：SMBv1 未关闭 liqiang:fixing: liqiang:fixed:已安装 KB4012212 补丁 liqiang:fixing:测试环境验证失败，补丁未生效 " +
		"liqiang:fixed: wangfang:verified_in_test:测试环境复扫通过 zhouqiang:deployed:分批上线完成"
	if got := strings.Join(steps, " "); got != want {
		t.Fatalf("history\n%s\nwant\n%s", got, want)
	}
	if d.Status != vulns.StatusDeployed || d.FixedBy != "liqiang" || d.Overdue || d.DueInHours != 0 || len(d.Next) != 0 {
		t.Fatalf("deployed %+v", d.Vuln)
	}
	if _, err := o.vulns.SetStatus(ctx, o.call("liqiang"), "06h4j9khpaef1743afn74xhkkm", vulns.Transition{Status: vulns.StatusConfirmed}); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("a missing vulnerability: %v", err)
	}
	// The filters.
	for _, c := range []struct {
		q    vulns.Query
		want int
	}{
		{vulns.Query{Status: vulns.QueryOpen}, 3},
		{vulns.Query{Status: vulns.QueryResolved}, 1},
		{vulns.Query{Status: vulns.StatusDeployed}, 1},
		{vulns.Query{Severity: vulns.Medium}, 2},
		{vulns.Query{Text: "sweet32"}, 1},
		{vulns.Query{Text: "cve-2023-48795"}, 1},
		{vulns.Query{Text: "100%_"}, 0},
		{vulns.Query{Limit: 3}, 3},
	} {
		got, _, err := o.vulns.List(ctx, o.call("sunli"), c.q)
		if err != nil || len(got) != c.want {
			t.Errorf("%+v: %d, %v; want %d", c.q, len(got), err, c.want)
		}
	}
	page, next, _ := o.vulns.List(ctx, o.call("sunli"), vulns.Query{Limit: 3})
	rest, end, _ := o.vulns.List(ctx, o.call("sunli"), vulns.Query{After: next})
	if next != page[2].ID || len(rest) != 1 || end != "" {
		t.Errorf("pages: %q then %d, %q", next, len(rest), end)
	}
	if _, _, err := o.vulns.List(ctx, o.call("sunli"), vulns.Query{Status: "closed"}); !medguard.IsKind(err, medguard.Invalid) {
		t.Errorf("a bad status: %v", err)
	}
}

// TestOverdueAlert announces an open vulnerability past its due date once
// (also when checked twice), and resolves it when it is fixed; a risk
// accepted is a four-eyes request, and once approved resolves the alert
// as well.
func TestOverdueAlert(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{})
	// OpenVAS scanned on 5 December: the highs are due on the 7th.
	sc := o.importReport(o.pac, vulns.OpenVAS, sample(t, "openvas-emr-db.xml"), false)
	if len(o.overdue) != 0 || sc.New != 4 {
		t.Fatalf("overdue at once: %+v; %+v", o.overdue, sc)
	}
	o.clock.Advance(24 * time.Hour) // 7 December 02:00 UTC: the highs were due at 01:00:04
	fresh, err := o.vulns.CheckOverdue(ctx)
	if err != nil || len(fresh) != 2 || len(o.overdue) != 2 {
		t.Fatalf("announced %+v, %v; hooks %+v", fresh, err, o.overdue)
	}
	if again, _ := o.vulns.CheckOverdue(ctx); len(again) != 0 || len(o.overdue) != 2 {
		t.Fatalf("announced twice: %+v", again)
	}
	for _, ov := range o.overdue {
		if ov.Severity != vulns.High || ov.AssetID != o.pac || !ov.DueAt.Equal(time.Date(2026, 12, 7, 1, 0, 4, 0, time.UTC)) {
			t.Errorf("overdue %+v", ov)
		}
	}
	ssh, pg := o.overdue[0].VulnID, o.overdue[1].VulnID
	// Fixed: the alert is resolved.
	for _, to := range []string{vulns.StatusConfirmed, vulns.StatusFixing, vulns.StatusFixed} {
		if _, err := o.vulns.SetStatus(ctx, o.call("liqiang"), ssh, vulns.Transition{Status: to}); err != nil {
			t.Fatal(err)
		}
	}
	if len(o.resolved) != 1 || o.resolved[0] != ssh {
		t.Fatalf("resolved %v", o.resolved)
	}
	// The risk accepted: asked by an engineer, not approved by the other
	// engineer nor by the asker, approved by a security officer.
	ask, err := vulns.ExceptionRequest(pg, vulns.NewException{Outcome: vulns.StatusAccepted, Reason: "数据库仅内网可达，已加访问控制，待年底升级"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := o.ap.Request(ctx, o.call("liqiang"), ask)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.ap.Approve(ctx, o.call("wangfang"), a.ID, "同意"); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("an engineer approves: %v", err)
	}
	if v, _ := o.vulns.Get(ctx, o.call("sunli"), pg); v.Status != vulns.StatusNew {
		t.Fatalf("closed before approval: %s", v.Status)
	}
	if _, err := o.ap.Approve(ctx, o.call("zhouqiang"), a.ID, "同意接受风险"); err != nil {
		t.Fatal(err)
	}
	v, err := o.vulns.Get(ctx, o.call("sunli"), pg)
	if err != nil || v.Status != vulns.StatusAccepted || v.Overdue || len(v.History) != 1 || v.History[0].Ref != a.ID || v.History[0].Actor != "zhouqiang" {
		t.Fatalf("accepted %+v %v", v, err)
	}
	if len(o.resolved) != 2 || o.resolved[1] != pg {
		t.Fatalf("resolved %v", o.resolved)
	}
	if bad, _ := vulns.ExceptionRequest(pg, vulns.NewException{Outcome: vulns.StatusAccepted, Reason: "再次"}); true {
		if _, err := o.ap.Request(ctx, o.call("liqiang"), bad); !medguard.IsKind(err, medguard.Conflict) {
			t.Fatalf("an exception for a closed vulnerability: %v", err)
		}
	}
	// Found again after its fix, the SSH vulnerability is due afresh and
	// alerts again when late.
	o.clock.Advance(24 * time.Hour)
	later := strings.NewReplacer("2026-12-05T01:00:04Z", "2026-12-08T01:00:04Z").Replace(string(sample(t, "openvas-emr-db.xml")))
	if sc := o.importReport(o.pac, vulns.OpenVAS, []byte(later), false); sc.Reopened != 1 {
		t.Fatalf("reopened %+v", sc)
	}
	o.clock.Advance(48 * time.Hour)
	if fresh, _ := o.vulns.CheckOverdue(ctx); len(fresh) != 1 || fresh[0].VulnID != ssh {
		t.Fatalf("the reopened one: %+v", fresh)
	}
}

// TestSuspensionEndToEnd: a critical vulnerability of the records system
// lets a security officer suspend exports; a doctor's export of their own
// patient is then refused with deny.operation_suspended; lifting it early
// is a four-eyes request; once the vulnerability is fixed the export is
// allowed again. Nothing suspends for an imaging server or a medium
// finding, and an engineer suspends nothing.
func TestSuspensionEndToEnd(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{})
	doctor := o.call("zhangwei")
	p, err := o.rec.CreatePatient(ctx, doctor, records.NewPatient{Name: "王秀英", Gender: "female", BirthDate: "1958-03-07",
		IDNumber: "110105195803070025", Phone: "13700001111", Address: "北京市东城区东四十条22号", MRN: "MR20260001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.rec.CreateRecord(ctx, doctor, p.ID, records.NewRecord{Type: "progress_note", Department: "CARD",
		Title: "病程记录", Text: "胸闷较前好转。"}); err != nil {
		t.Fatal(err)
	}
	export := func() error {
		_, _, err := o.exports.Create(ctx, doctor, exports.NewExport{PatientIDs: []string{p.ID}, Format: exports.FHIR,
			Purpose: "treatment", Reason: "转诊至上级医院"})
		return err
	}
	if err := export(); err != nil {
		t.Fatalf("before: %v", err)
	}
	o.importReport(o.emr, vulns.Trivy, sample(t, "trivy-emr-image.json"), false)
	o.importReport(o.pac, vulns.CSV, sample(t, "nessus-pacs.csv"), false)
	emr, pacs := o.byRule(o.emr), o.byRule(o.pac)
	log4shell := emr["CVE-2021-44228 app/WEB-INF/lib/log4j-core-2.14.1.jar: app/WEB-INF/lib/log4j-core-2.14.1.jar org.apache.logging.log4j:log4j-core 2.14.1"]
	if log4shell.Severity != vulns.Critical {
		t.Fatalf("log4shell %+v (%v)", log4shell, emr)
	}
	suspend := func(who, id string, actions ...policy.Permission) (*vulns.Suspension, error) {
		return o.vulns.Suspend(ctx, o.call(who), id, vulns.NewSuspension{Actions: actions, Reason: "Log4j 远程代码执行，修复前暂停病历导出"})
	}
	for _, c := range []struct {
		who, id string
		actions []policy.Permission
		kind    medguard.Kind
	}{
		{"liqiang", log4shell.ID, []policy.Permission{policy.RecordExport}, medguard.Forbidden},
		{"zhouqiang", pacs["97833 10.20.2.21 445/tcp"].ID, []policy.Permission{policy.RecordExport}, medguard.Conflict},
		{"zhouqiang", emr["CVE-2023-4039 registry.hospital.local/emr/emr-web:3.8.2 (debian 12.5): gcc-12-base 12.2.0-14"].ID, []policy.Permission{policy.RecordExport}, medguard.Conflict},
		{"zhouqiang", log4shell.ID, []policy.Permission{policy.RecordRead}, medguard.Invalid},
		{"zhouqiang", log4shell.ID, nil, medguard.Invalid},
	} {
		if _, err := suspend(c.who, c.id, c.actions...); !medguard.IsKind(err, c.kind) {
			t.Fatalf("%s suspends %v on %s: %v, want %v", c.who, c.actions, c.id, err, c.kind)
		}
	}
	sp, err := suspend("zhouqiang", log4shell.ID, policy.RecordExport, policy.DeidRun)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := suspend("security", log4shell.ID, policy.RecordWrite); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("a second suspension: %v", err)
	}
	err = export()
	if me, ok := err.(*medguard.Error); !ok || me.Kind != medguard.Forbidden || me.Rule != policy.RuleOperationSuspended {
		t.Fatalf("an export while suspended: %v", err)
	}
	if _, err := o.rec.CreateRecord(ctx, doctor, p.ID, records.NewRecord{Type: "progress_note", Department: "CARD",
		Title: "病程记录", Text: "病情平稳。"}); err != nil {
		t.Fatalf("a write was not suspended: %v", err)
	}
	if got := o.vulns.Suspended(); len(got) != 2 || got[0] != policy.RecordExport {
		t.Fatalf("suspended %v", got)
	}
	act, err := o.vulns.ListSuspensions(ctx, o.call("sunli"), true)
	if err != nil || len(act) != 1 || act[0].ID != sp.ID || act[0].Reason == "" || act[0].SetBy != "zhouqiang" {
		t.Fatalf("active %+v %v", act, err)
	}
	// Lifting early: four eyes.
	ask, _ := vulns.LiftRequest(sp.ID, "已通过 WAF 规则临时拦截，急需导出转诊病历")
	a, err := o.ap.Request(ctx, o.call("zhouqiang"), ask)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.ap.Approve(ctx, o.call("zhouqiang"), a.ID, "自批"); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("the asker lifts: %v", err)
	}
	if _, err := o.ap.Refuse(ctx, o.call("security"), a.ID, "补丁今晚上线，等修复"); err != nil {
		t.Fatal(err)
	}
	if err := export(); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("after a refused lift: %v", err)
	}
	// Another server's suspension reaches this one on reload; a register
	// that cannot tell refuses every suspendable operation.
	other := vulns.New(o.db, gate.New(o.log, o.clock), keys.NewKeyring(o.db, keys.NewKeyFile(keys.SM4GCM, o.clock.Now()), o.clock), o.assets, vulns.Config{})
	if got := other.Suspended(); len(got) != len(vulns.Suspendable) {
		t.Fatalf("before its first load: %v", got)
	}
	if err := other.Reload(ctx); err != nil || len(other.Suspended()) != 2 {
		t.Fatalf("reloaded %v %v", other.Suspended(), err)
	}
	// Fixed: the suspension ends, exports resume.
	for _, to := range []string{vulns.StatusConfirmed, vulns.StatusFixing, vulns.StatusFixed} {
		if _, err := o.vulns.SetStatus(ctx, o.call("liqiang"), log4shell.ID, vulns.Transition{Status: to}); err != nil {
			t.Fatal(err)
		}
	}
	if err := export(); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	d, err := o.vulns.Get(ctx, o.call("sunli"), log4shell.ID)
	if err != nil || len(d.Suspensions) != 1 || d.Suspensions[0].Active || d.Suspensions[0].LiftReason != vulns.StatusFixed ||
		d.Suspensions[0].LiftedBy != "liqiang" {
		t.Fatalf("ended %+v %v", d.Suspensions, err)
	}
	// The log holds the suspension, the refusal and the end.
	size, _, _ := o.log.Head(ctx)
	es, err := o.log.Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		switch {
		case e.Entry.Action == "vuln.suspend" && e.Entry.Outcome == audit.Success:
			seen["set"] = true
		case e.Entry.Rule == policy.RuleOperationSuspended:
			seen["refused"] = true
		case e.Entry.Action == "vuln.suspension_end" && e.Entry.TargetID == sp.ID:
			seen["ended"] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("logged %v", seen)
	}
}

// TestEarlyLift: a second security officer approves lifting a suspension
// before the fix; the operations resume at once.
func TestEarlyLift(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{})
	o.importReport(o.emr, vulns.Trivy, sample(t, "trivy-emr-image.json"), false)
	var critical string
	for _, v := range o.byRule(o.emr) {
		if v.Severity == vulns.Critical {
			critical = v.ID
		}
	}
	sp, err := o.vulns.Suspend(ctx, o.call("security"), critical, vulns.NewSuspension{Actions: []policy.Permission{policy.CopyManage},
		Reason: "修复前暂停病历复印"})
	if err != nil {
		t.Fatal(err)
	}
	if _, all := o.vulns.Restrictions(nil, o.clock.Now()); len(all) != 1 || all[0].Rule != policy.RuleOperationSuspended {
		t.Fatalf("restrictions %+v", all)
	}
	if _, err := vulns.LiftRequest(sp.ID, ""); err != nil {
		t.Fatal(err)
	}
	noReason, _ := vulns.LiftRequest(sp.ID, "")
	if _, err := o.ap.Request(ctx, o.call("security"), noReason); !medguard.IsKind(err, medguard.Invalid) {
		t.Fatalf("a lift without a reason: %v", err)
	}
	ask, _ := vulns.LiftRequest(sp.ID, "复印为患者转院急需，已评估风险可控")
	if _, err := o.ap.Request(ctx, o.call("liqiang"), ask); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("an engineer asks to lift: %v", err)
	}
	a, err := o.ap.Request(ctx, o.call("security"), ask)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.ap.Approve(ctx, o.call("zhouqiang"), a.ID, "同意恢复复印"); err != nil {
		t.Fatal(err)
	}
	if got := o.vulns.Suspended(); len(got) != 0 {
		t.Fatalf("still suspended: %v", got)
	}
	all, _ := o.vulns.ListSuspensions(ctx, o.call("sunli"), false)
	if len(all) != 1 || all[0].Active || all[0].LiftedBy != "zhouqiang" || all[0].LiftReason != "approval:"+a.ID {
		t.Fatalf("lifted %+v", all)
	}
}

// TestCadence lists the assets in use not scanned within a week: one
// never scanned, one scanned eight days ago; not one scanned yesterday.
func TestCadence(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{})
	fw, err := o.assets.Create(ctx, o.call("liqiang"), assets.NewAsset{Code: "SEC-FW-01", Name: "边界防火墙", Kind: assets.SecurityDevice})
	if err != nil {
		t.Fatal(err)
	}
	o.importReport(o.pac, vulns.CSV, sample(t, "nessus-pacs.csv"), false) // now: 6 December
	o.clock.Advance(8 * 24 * time.Hour)
	o.importReport(o.emr, vulns.Trivy, sample(t, "trivy-emr-image.json"), false) // scanned 3 December, imported now
	o.clock.Advance(24 * time.Hour)
	late, err := o.vulns.Cadence(ctx, o.call("sunli"), true)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, it := range late {
		codes = append(codes, it.Code)
	}
	if got := strings.Join(codes, ","); got != "APP-EMR,SEC-FW-01,SRV-PACS01" {
		t.Fatalf("late %s", got)
	}
	all, _ := o.vulns.Cadence(ctx, o.call("sunli"), false)
	for _, it := range all {
		if it.AssetID == fw.ID && (it.LastScannedAt != nil || !it.Late) || it.AssetID == o.pac && (it.Open != 4 || it.LastScannedAt == nil) {
			t.Errorf("%+v", it)
		}
	}
	sum, err := o.vulns.Summarise(ctx, o.call("sunli"))
	if err != nil || sum.Unscanned != 3 || sum.Open[vulns.Critical] != 4 || sum.Overdue[vulns.Critical] != 4 || sum.Overdue[vulns.Low] != 0 {
		t.Fatalf("summary %+v %v", sum, err)
	}
	if _, err := o.vulns.Cadence(ctx, o.call("zhangwei"), true); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("a doctor: %v", err)
	}
}

// TestImportRefusals: a bad report, an unknown or retired asset, the
// wrong person: nothing is written.
func TestImportRefusals(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{MaxReport: 64 << 10})
	count := func() int {
		var n int
		o.db.QueryRowContext(ctx, `SELECT count(*) FROM vulns`).Scan(&n)
		return n
	}
	retired := assets.Retired
	old, _ := o.assets.Create(ctx, o.call("liqiang"), assets.NewAsset{Code: "SRV-OLD", Name: "旧服务器", Kind: assets.Server})
	if _, err := o.assets.Update(ctx, o.call("liqiang"), old.ID, assets.Changes{Status: &retired}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		who  string
		in   vulns.Import
		kind medguard.Kind
	}{
		{"bad report", "liqiang", vulns.Import{AssetID: o.pac, Format: vulns.SARIF, Report: []byte(`{"version": "2.1.0", "runs": [`)}, medguard.Invalid},
		{"unknown format", "liqiang", vulns.Import{AssetID: o.pac, Format: "nessus", Report: []byte(`x`)}, medguard.Invalid},
		{"no asset", "liqiang", vulns.Import{Format: vulns.CSV, Report: sample(t, "nessus-pacs.csv")}, medguard.Invalid},
		{"unknown asset", "liqiang", vulns.Import{AssetID: "06h4j9khpaef1743afn74xhkkm", Format: vulns.CSV, Report: sample(t, "nessus-pacs.csv")}, medguard.NotFound},
		{"retired asset", "liqiang", vulns.Import{AssetID: old.ID, Format: vulns.CSV, Report: sample(t, "nessus-pacs.csv")}, medguard.Conflict},
		{"too large", "liqiang", vulns.Import{AssetID: o.pac, Format: vulns.CSV, Report: bytes.Repeat([]byte("x"), 65<<10)}, medguard.TooLarge},
		{"an auditor", "sunli", vulns.Import{AssetID: o.pac, Format: vulns.CSV, Report: sample(t, "nessus-pacs.csv")}, medguard.Forbidden},
	} {
		if _, err := o.vulns.Import(ctx, o.call(c.who), c.in); !medguard.IsKind(err, c.kind) {
			t.Errorf("%s: %v, want %v", c.name, err, c.kind)
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("%d vulnerabilities written", n)
	}
}
