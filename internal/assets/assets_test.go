package assets_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// register is an asset register on a fresh database (PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set), with two departments and two IT
// engineers whose usernames may own assets.
type register struct {
	svc      *assets.Service
	db       *storage.DB
	log      *audit.Log
	clock    *testkit.Clock
	engineer *medguard.Call
	auditor  *medguard.Call
	doctor   *medguard.Call
}

func newRegister(t *testing.T) *register {
	t.Helper()
	ctx := context.Background()
	db := storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), records.Schema(), approvals.Schema(), assets.Schema())
	clock := testkit.NewClock(time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)) // 10:00 in Beijing
	log, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	g := gate.New(log, clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, clock.Now()), clock)
	id := identity.New(db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	ap := approvals.New(db, g, kr, id, records.New(db, g, kr, id, records.Config{}))
	admin := &medguard.Call{}
	for _, a := range identity.BootstrapAccounts("Guanli#Mima2026", "Anquan#Mima2026") {
		uid, err := id.Bootstrap(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if a.Username == "admin" {
			admin = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: uid, Name: a.Username, Roles: []string{a.Role}}}
		}
	}
	for _, d := range [][2]string{{"ITD", "信息科"}, {"MRD", "病案室"}} {
		if _, _, err := ap.CreateDepartment(ctx, admin, d[0], d[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range [][2]string{{"liqiang", "李强"}, {"wangfang", "王芳"}} {
		if _, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: u[0], DisplayName: u[1], Department: "ITD",
			Roles: []string{"it_engineer"}, Password: "Yiyuan#Ceshi2026"}); err != nil {
			t.Fatal(err)
		}
	}
	call := func(name, role string) *medguard.Call {
		return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: name,
			Department: "ITD", Roles: []string{role}}}
	}
	zone := time.FixedZone("CST", 8*3600)
	return &register{svc: assets.New(db, g, id, assets.Config{Location: zone}), db: db, log: log, clock: clock,
		engineer: call("liqiang", "it_engineer"), auditor: call("sunli", "auditor"), doctor: call("zhangwei", "doctor")}
}

// count counts the assets in the table.
func (r *register) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := r.db.QueryRowContext(context.Background(), `SELECT count(*) FROM assets`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRegisterAndFlag registers assets one by one, changes one, lists
// them with filters, and flags the equipment past its end of support
// from the day after the date, in Beijing.
func TestRegisterAndFlag(t *testing.T) {
	ctx := context.Background()
	r := newRegister(t)
	db, err := r.svc.Create(ctx, r.engineer, assets.NewAsset{Code: "SRV-EMR-DB01", Name: "电子病历数据库服务器", Kind: "服务器",
		Owner: "liqiang", Department: "ITD", Location: "信息中心机房 A-03", Address: "10.20.1.11", Classification: "核心",
		Labels: []string{"等保三级", " 核心业务 ", "等保三级"}, EndOfSupport: "2029-06-30", RecordsSystem: true})
	if err != nil {
		t.Fatal(err)
	}
	if db.Kind != assets.Server || db.Classification != "core" || len(db.Labels) != 2 || db.Labels[1] != "核心业务" ||
		db.PastEndOfSupport || !db.RecordsSystem || db.Status != assets.InUse || db.CreatedBy != "liqiang" {
		t.Fatalf("registered %+v", db)
	}
	// The last day of support is today in Beijing: not past yet.
	ct, err := r.svc.Create(ctx, r.engineer, assets.NewAsset{Code: "MED-CT-01", Name: "CT 机控制工作站", Kind: "medical_device",
		Department: "ITD", EndOfSupport: "2026-12-06"})
	if err != nil {
		t.Fatal(err)
	}
	if ct.PastEndOfSupport || ct.Classification != "general" {
		t.Fatalf("on its last day: %+v", ct)
	}
	r.clock.Advance(14 * time.Hour) // 00:00 on 7 December in Beijing
	got, err := r.svc.Get(ctx, r.auditor, ct.ID)
	if err != nil || !got.PastEndOfSupport {
		t.Fatalf("the day after: %+v %v", got, err)
	}

	for _, c := range []struct {
		in    assets.NewAsset
		field string
	}{
		{assets.NewAsset{Code: "X-1", Name: "某设备", Kind: "toaster"}, "kind"},
		{assets.NewAsset{Code: "X-1", Name: "某设备", Kind: "server", Owner: "nobody"}, "owner"},
		{assets.NewAsset{Code: "X-1", Name: "某设备", Kind: "server", Department: "ZZZ"}, "department"},
		{assets.NewAsset{Code: "X 1", Name: "某设备", Kind: "server"}, "code"},
		{assets.NewAsset{Code: "X-1", Name: "", Kind: "server"}, "name"},
		{assets.NewAsset{Code: "X-1", Name: "某设备", Kind: "server", EndOfSupport: "2026-13-01"}, "end_of_support"},
		{assets.NewAsset{Code: "X-1", Name: "某设备", Kind: "server", Classification: "secret"}, "classification"},
		{assets.NewAsset{Code: "X-1", Name: "某设备", Kind: "server", Labels: []string{"a,b"}}, "labels"},
		{assets.NewAsset{Code: "X-1", Name: "某设备\x07", Kind: "server"}, "name"},
	} {
		if _, err := r.svc.Create(ctx, r.engineer, c.in); !medguard.IsKind(err, medguard.Invalid) || err.(*medguard.Error).Field != c.field {
			t.Errorf("%+v: %v, want invalid %s", c.in, err, c.field)
		}
	}
	if _, err := r.svc.Create(ctx, r.engineer, assets.NewAsset{Code: "SRV-EMR-DB01", Name: "重名", Kind: "server"}); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("a second SRV-EMR-DB01: %v", err)
	}
	if _, err := r.svc.Create(ctx, r.auditor, assets.NewAsset{Code: "X-2", Name: "审计员登记", Kind: "server"}); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("an auditor registers: %v", err)
	}
	if _, _, err := r.svc.List(ctx, r.doctor, assets.Query{}); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("a doctor lists: %v", err)
	}

	retired, name := assets.Retired, "电子病历数据库服务器（旧）"
	no := false
	up, err := r.svc.Update(ctx, r.engineer, db.ID, assets.Changes{Name: &name, Status: &retired, RecordsSystem: &no})
	if err != nil || up.Name != name || up.Status != assets.Retired || up.RecordsSystem || up.Code != "SRV-EMR-DB01" || up.Owner != "liqiang" {
		t.Fatalf("updated %+v %v", up, err)
	}
	if _, err := r.svc.Update(ctx, r.engineer, "06h4j9khpaef1743afn74xhkkm", assets.Changes{Name: &name}); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("a missing asset: %v", err)
	}

	yes := true
	for _, c := range []struct {
		q    assets.Query
		want []string
	}{
		{assets.Query{}, []string{"MED-CT-01", "SRV-EMR-DB01"}},
		{assets.Query{Kind: assets.MedicalDevice}, []string{"MED-CT-01"}},
		{assets.Query{PastEndOfSupport: true}, []string{"MED-CT-01"}},
		{assets.Query{Status: assets.InUse}, []string{"MED-CT-01"}},
		{assets.Query{RecordsSystem: &yes}, nil},
		{assets.Query{Label: "核心业务"}, []string{"SRV-EMR-DB01"}},
		{assets.Query{Text: "ct 机"}, []string{"MED-CT-01"}},
		{assets.Query{Limit: 1}, []string{"MED-CT-01"}},
		{assets.Query{After: "MED-CT-01"}, []string{"SRV-EMR-DB01"}},
	} {
		as, _, err := r.svc.List(ctx, r.auditor, c.q)
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, a := range as {
			codes = append(codes, a.Code)
		}
		if strings.Join(codes, ",") != strings.Join(c.want, ",") {
			t.Errorf("%+v: %v, want %v", c.q, codes, c.want)
		}
	}
	if _, next, _ := r.svc.List(ctx, r.auditor, assets.Query{Limit: 1}); next != "MED-CT-01" {
		t.Errorf("next %q", next)
	}
	refs, err := r.svc.Lookup(ctx, db.ID, ct.ID, "06h4j9khpaef1743afn74xhkkm")
	if err != nil || len(refs) != 2 || refs[db.ID].Code != "SRV-EMR-DB01" {
		t.Fatalf("lookup %+v %v", refs, err)
	}
	if in, err := r.svc.InUse(ctx); err != nil || len(in) != 1 || in[0].ID != ct.ID {
		t.Fatalf("in use %+v %v", in, err)
	}
}

// TestImportCSV imports a real-format register exported from a
// spreadsheet (Chinese headers and names), then imports it again with one
// change, and refuses a file with errors whole, naming each line and
// column.
func TestImportCSV(t *testing.T) {
	ctx := context.Background()
	r := newRegister(t)
	file, err := os.ReadFile("testdata/register.csv")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.svc.Import(ctx, r.engineer, append([]byte("\ufeff"), file...))
	if err != nil {
		t.Fatal(err)
	}
	if *sum != (assets.ImportSummary{Rows: 9, Created: 9}) {
		t.Fatalf("summary %+v", sum)
	}
	as, _, err := r.svc.List(ctx, r.auditor, assets.Query{})
	if err != nil || len(as) != 9 {
		t.Fatalf("%d assets, %v", len(as), err)
	}
	byCode := map[string]assets.Asset{}
	for _, a := range as {
		byCode[a.Code] = a
	}
	emr := byCode["SRV-EMR-DB01"]
	if emr.Kind != assets.Server || emr.Classification != "core" || !emr.RecordsSystem || len(emr.Labels) != 2 || emr.Department != "ITD" {
		t.Fatalf("SRV-EMR-DB01 %+v", emr)
	}
	if !byCode["MED-CT-01"].PastEndOfSupport || !byCode["SRV-PACS01"].PastEndOfSupport || byCode["MOB-NUR-07"].PastEndOfSupport ||
		byCode["MOB-NUR-07"].Kind != assets.MobileDevice || byCode["SEC-FW-01"].Kind != assets.SecurityDevice {
		t.Fatalf("flags %+v", byCode)
	}

	again := strings.Replace(string(file), "边界防火墙", "边界防火墙（主）", 1)
	sum, err = r.svc.Import(ctx, r.engineer, []byte(again))
	if err != nil || *sum != (assets.ImportSummary{Rows: 9, Updated: 1, Unchanged: 8}) {
		t.Fatalf("again %+v %v", sum, err)
	}

	before := r.count(t)
	size, _, _ := r.log.Head(ctx)
	for _, c := range []struct {
		name, file, field string
		parts             []string
	}{
		{"bad rows", "code,name,kind,owner,department,records_system\n" +
			"NEW-1,新服务器,server,liqiang,ITD,yes\n" +
			"NEW-2,坏类型,toaster,,ITD,no\n" +
			"NEW-3,无人,server,nobody,ITD,no\n" +
			"NEW-4,病案系统,server,,ITD,maybe\n" +
			"NEW-1,重复,server,,ITD,no\n",
			"kind", []string{"line 3, column kind", "line 4, column owner", "line 5, column records_system", "line 6, column code"}},
		{"unknown column", "code,name,kind,colour\nA,甲,server,red\n", "4", []string{"line 1, column 4"}},
		{"missing column", "code,name\nA,甲\n", "kind", []string{"line 1, column kind"}},
		{"ragged row", "code,name,kind\nA,甲,server,extra\n", "file", []string{"line 2"}},
		{"bad quote", "code,name,kind\n\"A,甲,server\n", "file", []string{"not valid CSV"}},
		{"not UTF-8", "code,name,kind\nA,\xb7\xfe\xce\xf1\xc6\xf7,server\n", "file", []string{"UTF-8"}},
		{"header only", "code,name,kind\n", "file", []string{"no rows"}},
		{"empty", "", "file", []string{"empty"}},
		{"a second date", "code,name,kind,end_of_support\nA,甲,server,2026/12/31\n", "end_of_support", []string{"line 2, column end_of_support"}},
	} {
		_, err := r.svc.Import(ctx, r.engineer, []byte(c.file))
		me, ok := err.(*medguard.Error)
		if !ok || me.Kind != medguard.Invalid || me.Field != c.field {
			t.Errorf("%s: %v, want invalid %s", c.name, err, c.field)
			continue
		}
		for _, p := range c.parts {
			if !strings.Contains(me.Message, p) {
				t.Errorf("%s: %q lacks %q", c.name, me.Message, p)
			}
		}
	}
	if n := r.count(t); n != before {
		t.Fatalf("bad files wrote: %d assets, %d before", n, before)
	}
	// Refused files leave at most their own refusals in the log: no
	// asset.import succeeded.
	es, err := r.log.Entries(ctx, size, size+100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Entry.Action == "asset.import" && e.Entry.Outcome == audit.Success {
			t.Fatalf("a bad file was imported: %+v", e.Entry)
		}
	}
	if _, err := r.svc.Import(ctx, r.auditor, file); !medguard.IsKind(err, medguard.Forbidden) {
		t.Fatalf("an auditor imports: %v", err)
	}
}

// FuzzParseCSV feeds the import's parser arbitrary files: it never
// panics, and what it accepts has the header's known columns only.
func FuzzParseCSV(f *testing.F) {
	file, _ := os.ReadFile("testdata/register.csv")
	f.Add(file)
	f.Add([]byte("code,name,kind\nA,甲,server\n"))
	f.Add([]byte("code,name,kind\n\"A\"\"\",\"甲\n乙\",server\n"))
	f.Add([]byte("\ufeffcode,code\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := assets.ParseCSV(data)
		if err != nil {
			return
		}
		for _, r := range rows {
			for col := range r.Values {
				if !containsString(assets.Columns, col) {
					t.Fatalf("unknown column %q accepted", col)
				}
			}
		}
	})
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
