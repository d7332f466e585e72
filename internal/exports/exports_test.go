package exports_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/exports"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// An export's file lives until it expires (default 7 days): then it is
// refused (410) and its ciphertext is deleted, logged as medguard's own
// export.expire. Runs on SQLite and, with MEDGUARD_TEST_POSTGRES, on
// PostgreSQL; time is the test's clock.
func TestExpiredExportIsGone(t *testing.T) {
	ctx := context.Background()
	db := storagetest.OpenIn(t, t.TempDir(), keys.Schema(), audit.Schema(), identity.Schema(), records.Schema(),
		approvals.Schema(), exports.Schema())
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
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
	ex := exports.New(db, g, kr, rec, ap, exports.Config{})
	calls := map[string]*medguard.Call{}
	for _, a := range identity.BootstrapAccounts("Guanli#Mima2026", "Anquan#Mima2026") {
		uid, err := id.Bootstrap(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		calls[a.Username] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: uid, Name: a.Username, Roles: []string{a.Role}}}
	}
	if _, _, err := ap.CreateDepartment(ctx, calls["admin"], "CARD", "心内科", nil); err != nil {
		t.Fatal(err)
	}
	u, pending, err := id.CreateUser(ctx, calls["admin"], identity.NewUser{Username: "zhangwei", DisplayName: "张建国",
		Department: "CARD", Roles: []string{"doctor"}, Password: "Yiyuan#Ceshi2026"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pending {
		a, err := ap.GrantRole(ctx, calls["admin"], u.ID, r, "岗位任命")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ap.Approve(ctx, calls["security"], a.ID, "同意"); err != nil {
			t.Fatal(err)
		}
	}
	doctor := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: u.ID, Name: "zhangwei", Department: "CARD",
		Roles: []string{"doctor"}}}
	p, err := rec.CreatePatient(ctx, doctor, records.NewPatient{Name: "王秀英", Gender: "female", BirthDate: "1958-03-07",
		IDNumber: "110105195803070025", Phone: "13700001111", Address: "北京市东城区东四十条22号", MRN: "MR20260001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.CreateRecord(ctx, doctor, p.ID, records.NewRecord{Type: "progress_note", Department: "CARD",
		Title: "病程记录", Text: "胸闷较前好转。"}); err != nil {
		t.Fatal(err)
	}
	e, _, err := ex.Create(ctx, doctor, exports.NewExport{PatientIDs: []string{p.ID}, Format: exports.FHIR,
		Purpose: "treatment", Reason: "转诊"})
	if err != nil {
		t.Fatal(err)
	}
	file, _, err := ex.Download(ctx, doctor, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, content, err := exports.Decrypt(file, e.Key); err != nil || !containsAll(string(content), `"resourceType":"Bundle"`,
		`"resourceType":"DocumentReference"`, "王秀英") {
		t.Fatalf("the FHIR bundle: %v %s", err, content)
	}
	clock.Advance(7*24*time.Hour + time.Millisecond)
	if _, _, err := ex.Download(ctx, doctor, e.ID); !medguard.IsKind(err, medguard.Gone) {
		t.Fatalf("after 7 days: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM exports WHERE ciphertext IS NOT NULL`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("ciphertexts left: %d %v", n, err)
	}
	got, _ := ex.Get(ctx, doctor, e.ID)
	if got.Status != exports.Expired || got.Available {
		t.Fatalf("shown as %s", got.Status)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
